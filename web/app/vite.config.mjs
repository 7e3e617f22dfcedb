// Vite config of the web app. `npm run build` writes ../dist, which web.go
// embeds; the output is deterministic (web/scripts/check-stale.mjs checks it).
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  logLevel: 'warn',
  build: {
    outDir: process.env.GUILDHALL_WEB_OUT || fileURLToPath(new URL('../dist', import.meta.url)),
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
    reportCompressedSize: false,
  },
  server: {
    proxy: {
      '/api': process.env.GUILDHALL_URL || 'http://127.0.0.1:8080',
      '/gateway': { target: (process.env.GUILDHALL_URL || 'http://127.0.0.1:8080').replace(/^http/, 'ws'), ws: true },
    },
  },
});
