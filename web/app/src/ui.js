// Small shared pieces: avatars, badges, the modal dialogs and the notice toast.
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';
import { state, closeModal, createServer, joinInvite, rest, say } from './store.js';

export function Avatar({ name }) {
  let h = 0;
  for (const ch of name || '?') h = Math.imul(h ^ ch.charCodeAt(0), 2654435761) >>> 0;
  return html`<span class="avatar" style=${`--hue:${h % 360}`} aria-hidden="true">${(name || '?')[0].toUpperCase()}</span>`;
}

export function Badge({ n, kind }) {
  return html`<span class=${'badge' + (kind === 'mention' ? ' mention' : '')} data-badge=${kind || 'unread'}
    aria-label=${kind === 'mention' ? `${n} mentions` : `${n} unread`}>${n > 99 ? '99+' : n}</span>`;
}

export function Notice() {
  const n = state.notice;
  if (!n) return null;
  return html`<div class=${'notice ' + n.kind} role=${n.kind === 'error' ? 'alert' : 'status'}>
    <span>${n.text}</span><button class="icon-btn" aria-label="Dismiss" onClick=${() => { state.notice = null; closeModal(); }}>✕</button></div>`;
}

export function Modal() {
  const m = state.modal;
  useEffect(() => {
    if (!m) return;
    const onKey = (e) => { if (e.key === 'Escape') closeModal(); };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [m]);
  if (!m) return null;
  const body = m.name === 'addServer' ? html`<${AddServer} />` : m.name === 'invite' ? html`<${InviteDialog} serverId=${m.serverId} />` : null;
  return html`<div class="modal-scrim" onClick=${(e) => { if (e.target === e.currentTarget) closeModal(); }}>
    <div class="card modal" role="dialog" aria-modal="true">${body}</div></div>`;
}

function AddServer() {
  const [name, setName] = useState('');
  const [code, setCode] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  async function run(fn) {
    setBusy(true); setError('');
    try { await fn(); closeModal(); } catch (e) { setError(say(e)); } finally { setBusy(false); }
  }
  return html`
    <h2>Create a server</h2>
    <form class="row" onSubmit=${(e) => { e.preventDefault(); run(() => createServer(name)); }}>
      <input aria-label="Server name" placeholder="Server name" value=${name} onInput=${(e) => setName(e.target.value)} required maxlength="100" />
      <button class="primary" disabled=${busy}>Create</button>
    </form>
    <h2>Join with an invite</h2>
    <form class="row" onSubmit=${(e) => { e.preventDefault(); run(() => joinInvite(code)); }}>
      <input aria-label="Invite code or link" placeholder="Invite code or link" value=${code} onInput=${(e) => setCode(e.target.value)} required />
      <button class="primary" disabled=${busy}>Join</button>
    </form>
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
    <div class="row end"><button onClick=${closeModal}>Close</button></div>`;
}

function InviteDialog({ serverId }) {
  const [maxUses, setMaxUses] = useState('0');
  const [maxAge, setMaxAge] = useState('86400');
  const [invite, setInvite] = useState(null);
  const [error, setError] = useState('');
  async function create(e) {
    e.preventDefault();
    setError('');
    try { setInvite(await rest.createInvite(serverId, { max_uses: Number(maxUses), max_age: Number(maxAge) })); } catch (err) { setError(say(err)); }
  }
  const link = invite ? `${location.origin}/invite/${invite.code}` : '';
  return html`
    <h2>Invite people</h2>
    <form class="stack" onSubmit=${create}>
      <label>Expires after
        <select value=${maxAge} onChange=${(e) => setMaxAge(e.target.value)}>
          <option value="1800">30 minutes</option><option value="3600">1 hour</option><option value="86400">1 day</option>
          <option value="604800">7 days</option><option value="0">Never</option>
        </select></label>
      <label>Max uses
        <select value=${maxUses} onChange=${(e) => setMaxUses(e.target.value)}>
          <option value="0">No limit</option><option value="1">1</option><option value="10">10</option><option value="100">100</option>
        </select></label>
      <button class="primary">Create invite</button>
    </form>
    ${invite && html`<div class="invite-out">
      <label>Share this link<input readonly value=${link} data-invite-code=${invite.code} onFocus=${(e) => e.target.select()} /></label>
      <p class="muted small">Code <code>${invite.code}</code>${invite.expires_at ? ` · expires ${new Date(invite.expires_at).toLocaleString()}` : ' · never expires'}</p>
      <button onClick=${() => navigator.clipboard?.writeText(link)}>Copy link</button></div>`}
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
    <div class="row end"><button onClick=${closeModal}>Close</button></div>`;
}

// Icons as inline SVG (no emoji: not every system has an emoji font).
const PATHS = {
  members: 'M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm-7 9c0-3.3 3.1-6 7-6s7 2.7 7 6v1H2v-1zm15.5-9a3.5 3.5 0 1 0-1.6-6.6A5.9 5.9 0 0 1 17 7a5.9 5.9 0 0 1-1.1 3.6c.5.3 1 .4 1.6.4zM18 14c2.4.6 4 2.3 4 4.5V21h-4v-1c0-2.3-1-4.4-2.7-5.8.9-.2 1.8-.2 2.7 0z',
  trash: 'M9 3h6l1 2h4v2H4V5h4l1-2zM6 9h12l-1 12H7L6 9zm4 2v8h1.5v-8H10zm2.5 0v8H14v-8h-1.5z',
  edit: 'M4 17.3V20h2.7l8.9-8.9-2.7-2.7L4 17.3zM19.7 7a1 1 0 0 0 0-1.4l-1.3-1.3a1 1 0 0 0-1.4 0l-1.6 1.6 2.7 2.7L19.7 7z',
};
export function Icon({ name }) {
  return html`<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true" fill="currentColor"><path d=${PATHS[name]} /></svg>`;
}
