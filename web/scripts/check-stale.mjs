// check-stale: rebuilds the web app into a temporary directory and fails if
// the result differs from the committed bundle in web/dist (which web.go
// embeds). The Vite build is deterministic: same sources and lockfile, same
// bytes. Fix a failure with `npm run build` in web/ and commit web/dist.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const committed = join(web, 'dist');
const fresh = mkdtempSync(join(tmpdir(), 'gh-web-dist-'));

function files(dir) {
  const out = [];
  const walk = (d) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p); else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

try {
  execFileSync(join(web, 'node_modules', '.bin', 'vite'), ['build', '--config', 'app/vite.config.mjs'], {
    cwd: web, stdio: 'inherit', env: { ...process.env, GUILDHALL_WEB_OUT: fresh },
  });
  const a = files(committed), b = files(fresh);
  const problems = [];
  for (const f of b) if (!a.includes(f)) problems.push(`missing from web/dist: ${f}`);
  for (const f of a) if (!b.includes(f)) problems.push(`stale file in web/dist: ${f}`);
  for (const f of a) if (b.includes(f) && !readFileSync(join(committed, f)).equals(readFileSync(join(fresh, f)))) problems.push(`differs: ${f}`);
  if (problems.length) {
    console.error('web/dist is stale — run `npm run build` in web/ and commit web/dist:\n  ' + problems.join('\n  '));
    process.exit(1);
  }
  console.log(`web/dist is up to date (${a.length} files)`);
} finally {
  rmSync(fresh, { recursive: true, force: true });
}
