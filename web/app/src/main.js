// Entry point: renders the app and wires the router.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';
import { state, onChange, routeChanged, start, applyTheme } from './store.js';
import { AuthPage } from './auth.js';
import { Shell } from './shell.js';
import { Settings } from './settings.js';
import { Modal, Notice } from './ui.js';
import './styles.css';

function App() {
  const [, tick] = useState(0);
  useEffect(() => {
    const off = onChange(() => tick((n) => n + 1));
    tick((n) => n + 1); // whatever changed before we listened
    return off;
  }, []);
  const r = state.route;
  let page;
  if (r.name === 'login' || r.name === 'register') page = html`<${AuthPage} mode=${r.name} />`;
  else if (r.name === 'settings') page = html`<${Settings} serverId=${r.serverId} tab=${r.tab} />`;
  else page = html`<${Shell} />`;
  return html`${page}<${Modal} /><${Notice} />`;
}

applyTheme();
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', applyTheme);
addEventListener('popstate', routeChanged);
document.addEventListener('click', (e) => {
  // Internal links navigate without a reload.
  const a = e.target.closest && e.target.closest('a[href^="/"]');
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || a.target) return;
  e.preventDefault();
  history.pushState(null, '', a.getAttribute('href'));
  routeChanged();
});
if (state.token) start();
routeChanged();
render(html`<${App} />`, document.getElementById('app'));
