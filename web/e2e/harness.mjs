// Test harness for the browser tests: builds and runs a real guildhall
// process on a free port with a temporary data dir, launches Debian's
// Chromium through playwright-core, and offers REST helpers for setup.
//
// Environment:
//   GUILDHALL_BIN       use this binary instead of building one
//   CHROMIUM            browser path (default /usr/bin/chromium)
//   UPDATE_SCREENSHOTS  1: write screenshots to docs/screenshots (else web/e2e/out)
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = join(here, '..', '..');
export const shotDir = process.env.UPDATE_SCREENSHOTS === '1' ? join(repoRoot, 'docs', 'screenshots') : join(here, 'out');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

/** waitFor polls fn until it returns a truthy value (no fixed sleeps in tests). */
export async function waitFor(fn, what = 'condition', timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try { const v = await fn(); if (v) return v; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? ': ' + last.message : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class Guildhall {
  async start() {
    this.dir = mkdtempSync(join(tmpdir(), 'gh-web-e2e-'));
    let bin = process.env.GUILDHALL_BIN;
    if (!bin) {
      bin = join(this.dir, 'guildhall');
      execFileSync('go', ['build', '-o', bin, './cmd/guildhall'], { cwd: repoRoot, stdio: 'inherit' });
    }
    this.port = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    this.log = '';
    this.proc = spawn(bin, ['--addr', `127.0.0.1:${this.port}`, '--data-dir', join(this.dir, 'data'), '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout.on('data', (d) => { this.log += d; });
    this.proc.stderr.on('data', (d) => { this.log += d; });
    this.exited = new Promise((r) => this.proc.on('exit', r));
    await waitFor(async () => (await fetch(`${this.url}/healthz`)).ok, `guildhall on ${this.url}\n${this.log}`);
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null) { this.proc.kill('SIGTERM'); await this.exited; }
    rmSync(this.dir, { recursive: true, force: true });
  }

  async api(method, path, token, body) {
    const res = await fetch(`${this.url}/api/v1${path}`, {
      method, headers: token ? { Authorization: `Bearer ${token}` } : {}, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }

  /** user registers a fresh account (prefix + random suffix, or exactly prefix) and returns {id, username, token}. */
  async user(prefix, exact = false) {
    const username = exact ? prefix : `${prefix}${Math.random().toString(36).slice(2, 8)}`;
    const r = await this.api('POST', '/auth/register', undefined, { username, password: 'correct horse battery' });
    return { ...r.user, token: r.token, password: 'correct horse battery' };
  }

  /** guild makes a server owned by `owner`, with the given text channels, that `members` join. */
  async guild(owner, name, channelNames = [], members = []) {
    const s = await this.api('POST', '/servers', owner.token, { name });
    const chans = { general: (await this.api('GET', `/servers/${s.id}/channels`, owner.token))[0] };
    for (const c of channelNames) chans[c] = await this.api('POST', `/servers/${s.id}/channels`, owner.token, { name: c });
    const inv = await this.api('POST', `/servers/${s.id}/invites`, owner.token, {});
    for (const m of members) await this.api('POST', `/invites/${inv.code}`, m.token);
    return { ...s, chans };
  }
}

/**
 * Proxy is a TCP proxy in front of guildhall, so a test can cut a browser's
 * connections the way a network loss would (no WebSocket close frame).
 */
export class Proxy {
  constructor(targetPort) { this.targetPort = targetPort; this.conns = new Set(); this.down = false; }
  async start() {
    this.server = createServer((c) => {
      if (this.down) { c.destroy(); return; }
      const up = connect(this.targetPort, '127.0.0.1');
      const pair = [c, up];
      this.conns.add(pair);
      c.pipe(up); up.pipe(c);
      const end = () => { c.destroy(); up.destroy(); this.conns.delete(pair); };
      c.on('error', end); up.on('error', end); c.on('close', end); up.on('close', end);
    });
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
  }
  /** cut drops every connection and refuses new ones until restore(). */
  cut() { this.down = true; for (const [c, up] of this.conns) { c.destroy(); up.destroy(); } this.conns.clear(); }
  restore() { this.down = false; }
  async stop() { this.cut(); await new Promise((r) => this.server.close(r)); }
}

/** chromiumPath: $CHROMIUM, Debian's /usr/bin/chromium, or the first chromium on PATH. */
function chromiumPath() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  if (existsSync('/usr/bin/chromium')) return '/usr/bin/chromium';
  for (const name of ['chromium', 'chromium-browser']) {
    try { return execFileSync('sh', ['-c', `command -v ${name}`]).toString().trim(); } catch { /* next */ }
  }
  throw new Error('no Chromium found: install Debian\'s chromium package or set CHROMIUM=/path/to/chromium');
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}

/** openAs opens a page in a new browser context, logged in as `user` (token in localStorage). */
export async function openAs(browser, baseUrl, user, path = '/channels/@me', opts = {}) {
  const ctx = await browser.newContext({ viewport: opts.viewport || { width: 1280, height: 800 }, colorScheme: opts.colorScheme || 'light' });
  // the channel list is re-read every second (10 s by default) so tests of hidden channels finish fast
  await ctx.addInitScript(() => { localStorage.setItem('guildhall.channelPollMs', '1000'); });
  if (user) await ctx.addInitScript((t) => { if (!sessionStorage.getItem('gh-init')) { sessionStorage.setItem('gh-init', '1'); localStorage.setItem('guildhall.token', t); } }, user.token);
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.error(`[page error ${user ? user.username : 'anon'}]`, e.message));
  await page.goto(baseUrl + path);
  if (user) await page.waitForSelector('.conn[data-state="ready"]', { timeout: 20000 });
  return page;
}

export async function shot(page, name) {
  mkdirSync(shotDir, { recursive: true });
  await page.screenshot({ path: join(shotDir, `${name}.png`) });
}

/**
 * watch connects a gateway client (the SDK, from Node) as `user`, follows
 * `channelId`, and returns {seen(content): Promise, close()}. Tests use it
 * to know the server has fanned a message out (to every session at once).
 */
export async function watch(baseUrl, user, channelId) {
  const web = join(here, '..');
  if (!existsSync(join(web, 'sdk', 'dist', 'index.js'))) execFileSync('npm', ['run', 'build:sdk'], { cwd: web, stdio: 'inherit' });
  const sdk = await import('../sdk/dist/index.js');
  const gw = new sdk.Gateway({ url: sdk.gatewayURL(baseUrl), token: user.token });
  const got = [];
  gw.on('message_create', (m) => got.push(m.content));
  gw.connect();
  await waitFor(() => gw.state === 'ready', 'the watcher to connect');
  gw.subscribe([channelId]);
  await gw.whenSynced();
  return { seen: (content) => waitFor(() => got.includes(content), `the watcher to see "${content}"`), close: () => gw.close() };
}
