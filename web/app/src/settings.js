// Server settings for admins: overview and channels, roles, channel
// permissions (overwrites and allow/deny lists), members (kick, ban, roles),
// bans and the audit log. Each tab loads from REST and shows errors in words.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from './html.js';
import { state, server, rest, say, canServer, refreshChannels, navigate, leaveServer, loadPerms, renameServer } from './store.js';
import { PermissionNames, ChannelPermissionNames, has, withBit } from '../../sdk/src/permissions.ts';
import { idTime } from '../../sdk/src/snowflake.ts';
import { Avatar } from './ui.js';
import { ConnectionBar } from './shell.js';

// Tabs and who sees them (the server still checks every request).
const TABS = [
  ['overview', 'Overview', []], ['roles', 'Roles', ['MANAGE_ROLES']], ['permissions', 'Channel permissions', ['MANAGE_ROLES']],
  ['members', 'Members', ['KICK_MEMBERS', 'BAN_MEMBERS', 'MANAGE_ROLES', 'MANAGE_NICKNAMES']], ['bans', 'Bans', ['BAN_MEMBERS']],
  ['audit-log', 'Audit log', ['VIEW_AUDIT_LOG']],
];

export function Settings({ serverId, tab }) {
  const s = server(serverId);
  if (!s) return html`<main class="settings"><p class="pad">Loading…</p></main>`;
  const back = `/channels/${serverId}`;
  return html`<div class="settings-page">
    <nav class="settings-nav" aria-label="Settings">
      <h2 title=${s.name}>${s.name}</h2>
      ${TABS.filter(([, , need]) => !need.length || need.some((p) => canServer(serverId, p)))
        .map(([id, label]) => html`<a class=${'tab' + (tab === id ? ' active' : '')} href=${`/servers/${serverId}/settings/${id}`}>${label}</a>`)}
      <a class="tab" href=${back}>← Back to chat</a>
    </nav>
    <main class="settings-body">
      <${ConnectionBar} />
      <a class="close-settings" href=${back} aria-label="Close settings">✕</a>
      ${tab === 'overview' ? html`<${Overview} s=${s} />`
        : tab === 'roles' ? html`<${Roles} serverId=${serverId} key=${serverId} />`
        : tab === 'permissions' ? html`<${ChannelPerms} serverId=${serverId} key=${serverId} />`
        : tab === 'members' ? html`<${Members} serverId=${serverId} key=${serverId} />`
        : tab === 'bans' ? html`<${Bans} serverId=${serverId} key=${serverId} />`
        : tab === 'audit-log' ? html`<${Audit} serverId=${serverId} key=${serverId} />` : null}
    </main>
  </div>`;
}

/** useAction wraps an async action: busy flag, the error in words, and a success note. */
function useAction() {
  const [error, setError] = useState('');
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  async function run(fn, ok) {
    setBusy(true); setError(''); setNote('');
    try { const r = await fn(); if (ok) setNote(ok); return r ?? true; } catch (e) { setError(say(e)); return undefined; } finally { setBusy(false); }
  }
  const view = html`${error && html`<p class="form-error" role="alert">${error}</p>`}${note && html`<p class="ok-note" role="status">${note}</p>`}`;
  return { run, busy, view };
}

function Overview({ s }) {
  const a = useAction();
  const [name, setName] = useState('');
  const [type, setType] = useState('text');
  const [parent, setParent] = useState('');
  const chans = state.channels[s.id] || [];
  const cats = chans.filter((c) => c.type === 'category');
  const mine = state.me && s.owner_id === state.me.id;
  async function create(e) {
    e.preventDefault();
    const ok = await a.run(() => rest.createChannel(s.id, { name, type, parent_id: type === 'text' && parent ? parent : null }), `Created ${type === 'text' ? '#' : ''}${name}.`);
    if (ok) { setName(''); refreshChannels(s.id); }
  }
  return html`<section>
    <h1>Overview</h1>
    <dl class="facts">
      <dt>Name</dt><dd>${s.name}</dd>
      <dt>Server ID</dt><dd><code>${s.id}</code></dd>
      <dt>Owner</dt><dd>${mine ? 'You' : state.users[s.owner_id] || s.owner_id}</dd>
      <dt>Created</dt><dd>${idTime(s.id).toLocaleString()}</dd>
    </dl>
    ${canServer(s.id, 'MANAGE_SERVER') && html`<${ServerName} s=${s} key=${s.id} />`}
    <h2>Channels</h2>
    ${canServer(s.id, 'MANAGE_CHANNELS') ? html`<form class="row wrap" onSubmit=${create}>
      <input aria-label="New channel name" placeholder="new-channel" value=${name} onInput=${(e) => setName(e.target.value)} required maxlength="100" />
      <select aria-label="Channel type" value=${type} onChange=${(e) => setType(e.target.value)}><option value="text">Text channel</option><option value="category">Category</option></select>
      ${type === 'text' && html`<select aria-label="Category" value=${parent} onChange=${(e) => setParent(e.target.value)}>
        <option value="">No category</option>${cats.map((c) => html`<option value=${c.id}>${c.name}</option>`)}</select>`}
      <button class="primary" disabled=${a.busy}>Create</button>
    </form>` : html`<p class="muted">You need Manage Channels to create channels.</p>`}
    ${a.view}
    <ul class="plain-list">${chans.map((c) => html`<${ChannelRow} c=${c} cats=${cats} key=${c.id} />`)}</ul>
    <${Nickname} serverId=${s.id} />
    ${!mine && html`<h2>Leave</h2><button class="danger" onClick=${() => { if (confirm(`Leave ${s.name}?`)) leaveServer(s.id).catch((e) => alert(say(e))); }}>Leave server</button>`}
  </section>`;
}

/** ServerName renames the server; shown to those with MANAGE_SERVER. The server checks the name. */
function ServerName({ s }) {
  const a = useAction();
  const [name, setName] = useState(s.name);
  async function save(e) {
    e.preventDefault();
    const r = await a.run(() => renameServer(s.id, name), 'Server renamed.');
    if (r) setName(r.name);
  }
  return html`<h2>Server name</h2>
    <form class="row wrap" data-form="rename-server" onSubmit=${save}>
      <input aria-label="Server name" value=${name} onInput=${(e) => setName(e.target.value)} />
      <button class="primary" disabled=${a.busy || name === s.name}>Rename</button>
    </form>${a.view}`;
}

function Nickname({ serverId }) {
  const a = useAction();
  const [nick, setNick] = useState('');
  useEffect(() => { rest.member(serverId, '@me').then((m) => setNick(m.nick || '')).catch(() => {}); }, [serverId]);
  return html`<h2>Your nickname</h2>
    <form class="row wrap" onSubmit=${async (e) => {
      e.preventDefault();
      const m = await a.run(() => rest.setNick(serverId, '@me', nick), nick ? 'Nickname saved.' : 'Nickname cleared.');
      if (m && state.me) { state.users[state.me.id] = m.nick || m.username; }
    }}>
      <input aria-label="Nickname" placeholder=${state.me ? state.me.username : ''} value=${nick} maxlength="32" onInput=${(e) => setNick(e.target.value)} />
      <button class="primary" disabled=${a.busy}>Save</button>
    </form>${a.view}`;
}

/**
 * moveChannel swaps c with its neighbour among the channels shown beside it
 * (same category, or the categories among themselves) and renumbers that
 * group 0, 1, 2…: the server does not renumber, and equal positions fall
 * back to ID order.
 */
async function moveChannel(c, dir) {
  const all = state.channels[c.server_id] || [];
  const group = all.filter((x) => (c.type === 'category' ? x.type === 'category' : x.type === 'text' && (x.parent_id || null) === (c.parent_id || null)));
  const i = group.findIndex((x) => x.id === c.id), j = i + dir;
  if (j < 0 || j >= group.length) return;
  [group[i], group[j]] = [group[j], group[i]];
  for (let k = 0; k < group.length; k++) {
    if (group[k].position !== k) await rest.updateChannel(group[k].id, { position: k });
  }
  await refreshChannels(c.server_id);
}

function ChannelRow({ c, cats }) {
  const a = useAction();
  const [name, setName] = useState(c.name);
  const save = (patch, ok) => a.run(async () => { await rest.updateChannel(c.id, patch); await refreshChannels(c.server_id); }, ok);
  return html`<li class="chan-row">
    <span class="muted">${c.type === 'category' ? '▸' : '#'}</span>
    <input aria-label=${`Name of ${c.name}`} value=${name} onInput=${(e) => setName(e.target.value)}
      onKeyDown=${(e) => { if (e.key === 'Enter') save({ name }, 'Renamed.'); }} />
    ${c.type === 'text' && html`<select aria-label="Category" value=${c.parent_id || ''} onChange=${(e) => save({ parent_id: e.target.value }, 'Moved.')}>
      <option value="">No category</option>${cats.map((k) => html`<option value=${k.id}>${k.name}</option>`)}</select>`}
    <button onClick=${() => a.run(() => moveChannel(c, -1))} aria-label=${`Move ${c.name} up`} title="Move up">↑</button>
    <button onClick=${() => a.run(() => moveChannel(c, 1))} aria-label=${`Move ${c.name} down`} title="Move down">↓</button>
    <button class="danger" onClick=${() => { if (confirm(`Delete ${c.name}? Its history goes with it.`)) a.run(async () => { await rest.deleteChannel(c.id); await refreshChannels(c.server_id); }); }}>Delete</button>
    ${a.view}
  </li>`;
}

// ---- roles

function Roles({ serverId }) {
  const a = useAction();
  const [roles, setRoles] = useState(null);
  const [sel, setSel] = useState('');
  const [drag, setDrag] = useState('');
  const seq = useRef(0);
  // load applies only the newest reply: an older one landing late must not undo a newer list
  async function load() {
    const n = ++seq.current;
    const r = await a.run(() => rest.roles(serverId));
    if (r && n === seq.current) setRoles(r);
    return r;
  }
  useEffect(() => { load(); }, [serverId]);
  if (!roles) return html`<section><h1>Roles</h1>${a.view || html`<p>Loading…</p>`}</section>`;
  // highest first, as people read a role list; @everyone last
  const sorted = roles.slice().sort((x, y) => (y.position - x.position) || (x.id < y.id ? 1 : -1));
  const current = roles.find((r) => r.id === sel) || sorted[0];
  async function create() {
    const r = await a.run(() => rest.createRole(serverId, { name: 'new role' }), 'Role created.');
    if (r) { await load(); setSel(r.id); }
  }
  // move puts role `id` at index `to` of the sorted list (0 = top) and renumbers positions above @everyone.
  async function move(id, to) {
    const target = sorted[to];
    const r = await a.run(async () => {
      // work on the server's current list, not what this page last saw
      const fresh = (await rest.roles(serverId)).sort((x, y) => (y.position - x.position) || (x.id < y.id ? 1 : -1));
      const list = fresh.filter((x) => x.id !== serverId && x.id !== id);
      const at = target ? list.findIndex((x) => x.id === target.id) : list.length;
      list.splice(at < 0 ? list.length : at + (to > sorted.findIndex((x) => x.id === id) ? 1 : 0), 0, fresh.find((x) => x.id === id));
      const moves = list.map((x, i) => ({ id: x.id, position: list.length - i })).filter((m) => fresh.find((x) => x.id === m.id).position !== m.position);
      return moves.length ? rest.reorderRoles(serverId, moves) : fresh;
    }, 'Order saved.');
    if (r) { seq.current++; setRoles(r); }
  }
  return html`<section>
    <h1>Roles</h1>
    <p class="muted">Members get the permissions of @everyone and of every role they hold. Higher roles manage lower ones: drag to reorder, or use the arrows.</p>
    ${a.view}
    <div class="roles">
      <div class="role-list">
        ${canServer(serverId, 'MANAGE_ROLES') && html`<button class="primary" onClick=${create} disabled=${a.busy}>Create role</button>`}
        <ol>${sorted.map((r, i) => {
          const everyone = r.id === serverId;
          return html`<li key=${r.id} class=${'role-item' + (current && r.id === current.id ? ' active' : '') + (drag === r.id ? ' dragging' : '')}
              draggable=${!everyone} data-role=${r.id}
              onDragStart=${(e) => { setDrag(r.id); e.dataTransfer.effectAllowed = 'move'; }}
              onDragOver=${(e) => { if (drag && !everyone) e.preventDefault(); }}
              onDrop=${(e) => { e.preventDefault(); if (drag && drag !== r.id) move(drag, i); setDrag(''); }}
              onDragEnd=${() => setDrag('')}>
            <button class="role-pick" onClick=${() => setSel(r.id)}>
              <span class="swatch" style=${`background:${r.color ? '#' + r.color.toString(16).padStart(6, '0') : 'var(--muted)'}`}></span>${r.name}</button>
            ${!everyone && html`<span class="role-move">
              <button class="icon-btn" aria-label=${`Move ${r.name} up`} disabled=${i === 0} onClick=${() => move(r.id, i - 1)}>▲</button>
              <button class="icon-btn" aria-label=${`Move ${r.name} down`} disabled=${i >= sorted.length - 2} onClick=${() => move(r.id, i + 1)}>▼</button></span>`}
          </li>`;
        })}</ol>
      </div>
      ${current && html`<${RoleEditor} serverId=${serverId} role=${current} key=${current.id + current.permissions + current.name}
        onSaved=${load} onDeleted=${() => { setSel(''); load(); }} />`}
    </div>
  </section>`;
}

function RoleEditor({ serverId, role, onSaved, onDeleted }) {
  const a = useAction();
  const everyone = role.id === serverId;
  const [name, setName] = useState(role.name);
  const [color, setColor] = useState('#' + (role.color || 0).toString(16).padStart(6, '0'));
  const [perms, setPerms] = useState(role.permissions);
  const [hoist, setHoist] = useState(role.hoist);
  const [mentionable, setMentionable] = useState(role.mentionable);
  async function save(e) {
    e.preventDefault();
    const patch = { permissions: perms, hoist, mentionable, color: parseInt(color.slice(1), 16) || 0 };
    if (!everyone) patch.name = name;
    if (await a.run(() => rest.updateRole(serverId, role.id, patch), 'Saved.')) { onSaved(); loadPerms(serverId); }
  }
  return html`<form class="role-editor" onSubmit=${save} aria-label=${`Edit role ${role.name}`}>
    <h2>${everyone ? '@everyone' : `Edit role — ${role.name}`}</h2>
    <div class="row wrap">
      <label>Name<input value=${name} disabled=${everyone} onInput=${(e) => setName(e.target.value)} maxlength="100" /></label>
      <label>Color<input type="color" value=${color} onInput=${(e) => setColor(e.target.value)} /></label>
      <label class="check"><input type="checkbox" checked=${hoist} onChange=${(e) => setHoist(e.target.checked)} /> Show apart</label>
      <label class="check"><input type="checkbox" checked=${mentionable} onChange=${(e) => setMentionable(e.target.checked)} /> Mentionable</label>
    </div>
    <h3>Permissions</h3>
    <ul class="perm-toggles">${PermissionNames.map((p) => html`<li>
      <label class="switch"><input type="checkbox" role="switch" data-perm=${p} checked=${has(perms, p)} onChange=${(e) => setPerms(withBit(perms, p, e.target.checked))} />
        <span>${pretty(p)}</span></label></li>`)}</ul>
    ${a.view}
    <div class="row">
      <button class="primary" disabled=${a.busy}>Save changes</button>
      ${!everyone && html`<button type="button" class="danger" onClick=${async () => { if (confirm(`Delete role ${role.name}?`) && await a.run(() => rest.deleteRole(serverId, role.id))) onDeleted(); }}>Delete role</button>`}
    </div>
  </form>`;
}

function pretty(p) { return p.toLowerCase().replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase()); }

// ---- channel permissions

function ChannelPerms({ serverId }) {
  const chans = (state.channels[serverId] || []);
  const [cid, setCid] = useState(chans[0]?.id || '');
  const [roles, setRoles] = useState([]);
  const [ows, setOws] = useState(null);
  const [vis, setVis] = useState(null);
  const [target, setTarget] = useState('');
  // Columns added but without any bit yet: the server keeps no empty overwrite.
  const [drafts, setDrafts] = useState([]);
  const [memberQ, setMemberQ] = useState('');
  const [found, setFound] = useState([]);
  const a = useAction();
  const c = chans.find((x) => x.id === cid);
  const current = useRef({}).current;
  current.cid = cid;
  async function load() {
    if (!cid) return;
    const want = cid;
    const r = await a.run(async () => {
      const [rs, o, v] = await Promise.all([rest.roles(serverId), rest.overwrites(want), rest.visibility(want)]);
      if (want !== current.cid) return true; // another channel was picked meanwhile
      setRoles(rs); setOws(o); setVis(v);
      for (const x of o) if (x.type === 'member') learn(x.id);
      return true;
    });
    return r;
  }
  function learn(id) { if (!state.users[id]) rest.member(serverId, id).then((m) => { state.users[id] = m.username; setOws((o) => o && o.slice()); }).catch(() => {}); }
  useEffect(() => { setDrafts([]); load(); }, [cid]);
  const cols = ows ? [...ows, ...drafts.filter((d) => !ows.some((o) => o.id === d.id))] : [];
  const addDraft = (d) => setDrafts((l) => [...l.filter((x) => x.id !== d.id), d]);
  useEffect(() => {
    if (!memberQ) { setFound([]); return; }
    const t = setTimeout(() => rest.members(serverId, { q: memberQ, limit: 10 }).then(setFound).catch(() => setFound([])), 200);
    return () => clearTimeout(t);
  }, [memberQ]);
  const name = (o) => o.type === 'role' ? (o.id === serverId ? '@everyone' : roles.find((r) => r.id === o.id)?.name || 'deleted role') : '@' + (state.users[o.id] || o.id);
  const act = (fn, ok) => a.run(async () => { await fn(); await load(); await refreshChannels(serverId, true); }, ok);
  const listed = (list, type, id) => vis && vis[list].some((e) => e.type === type && e.id === id);
  return html`<section>
    <h1>Channel permissions</h1>
    <label>Channel
      <select aria-label="Channel" value=${cid} onChange=${(e) => setCid(e.target.value)}>
        ${chans.map((x) => html`<option value=${x.id}>${x.type === 'category' ? 'Category: ' : '#'}${x.name}</option>`)}</select></label>
    ${c && c.synced && html`<p class="muted">#${c.name} is synced to its category: edit the category's permissions, or unsync it.
      <button class="link" onClick=${() => act(() => rest.updateChannel(c.id, { sync: false }), 'Unsynced.')}>Unsync</button></p>`}
    ${a.view}
    ${vis && html`<div class="vis">
      <h2>Who can see ${c ? (c.type === 'category' ? c.name : '#' + c.name) : ''}</h2>
      <p>${vis.private ? html`<b>Private.</b> Only the allow list, administrators and the owner see it.` : html`<b>Public.</b> Everyone who can see the server sees it, except the deny list.`}</p>
      <div class="row wrap">
        ${vis.private
          ? html`<button onClick=${() => act(async () => {
              const ev = (ows || []).find((o) => o.id === serverId);
              await rest.setOverwrite(cid, serverId, { type: 'role', allow: ev ? ev.allow : '0', deny: withBit(ev ? ev.deny : '0', 'VIEW_CHANNEL', false) });
            }, 'The channel is public now.')}>Make public</button>`
          : html`<button data-action="make-private" onClick=${() => act(async () => {
              const ev = (ows || []).find((o) => o.id === serverId);
              await rest.setOverwrite(cid, serverId, { type: 'role', allow: withBit(ev ? ev.allow : '0', 'VIEW_CHANNEL', false), deny: withBit(ev ? ev.deny : '0', 'VIEW_CHANNEL', true) });
            }, 'The channel is private now.')}>Make private</button>`}
      </div>
      <div class="lists">
        ${['allow', 'deny'].map((list) => html`<div class="vis-list" data-list=${list}>
          <h3>${list === 'allow' ? 'Allow list' : 'Deny list'}</h3>
          <ul class="plain-list">${vis[list].map((e) => html`<li>${name(e)}
            <button class="link" onClick=${() => act(() => rest.setVisibility(cid, list, e.id, e.type, false), 'Removed.')}>remove</button></li>`)}
            ${!vis[list].length && html`<li class="muted">Nobody.</li>`}</ul>
          <select aria-label=${`Add a role to the ${list} list`} onChange=${(e) => { const id = e.target.value; e.target.value = ''; if (id) act(() => rest.setVisibility(cid, list, id, 'role', true), 'Added.'); }}>
            <option value="">Add a role…</option>
            ${roles.filter((r) => r.id !== serverId && !listed(list, 'role', r.id)).map((r) => html`<option value=${r.id}>${r.name}</option>`)}</select>
        </div>`)}
      </div>
    </div>`}
    ${ows && html`<div>
      <h2>Overwrites</h2>
      <p class="muted small">For each role or member: allow (✓), deny (✕) or inherit (/). Deny beats @everyone, role allows beat role denies, member overwrites come last.</p>
      <div class="row wrap">
        <select aria-label="Add an overwrite for a role" value=${target} onChange=${(e) => setTarget(e.target.value)}>
          <option value="">Add a role…</option>
          ${roles.filter((r) => !cols.some((o) => o.id === r.id)).map((r) => html`<option value=${r.id}>${r.name}</option>`)}</select>
        <button disabled=${!target} onClick=${() => { const t = target; setTarget(''); addDraft({ id: t, type: 'role', allow: '0', deny: '0' }); }}>Add role</button>
        <input type="search" aria-label="Find a member to add" placeholder="Add a member…" value=${memberQ} onInput=${(e) => setMemberQ(e.target.value)} />
      </div>
      ${found.length > 0 && html`<ul class="plain-list picks">${found.map((m) => html`<li><button class="link" onClick=${() => { setMemberQ(''); state.users[m.user_id] = m.username; addDraft({ id: m.user_id, type: 'member', allow: '0', deny: '0' }); }}>${m.username}</button></li>`)}</ul>`}
      ${!cols.length && html`<p class="muted ow-empty">No overwrites: everyone here has their server-level permissions.</p>`}
      ${cols.length > 0 && html`<div class="ow-table-wrap"><table class="ow-table">
        <thead><tr><th>Permission</th>${cols.map((o) => html`<th>${name(o)}<br />
          <button class="link small" onClick=${() => ows.some((x) => x.id === o.id) ? act(() => rest.deleteOverwrite(cid, o.id), 'Overwrite removed.') : setDrafts((l) => l.filter((x) => x.id !== o.id))}>remove</button></th>`)}</tr></thead>
        <tbody>${ChannelPermissionNames.map((p) => html`<tr><th>${pretty(p)}</th>${cols.map((o) => {
          const st = has(o.allow, p) ? 'allow' : has(o.deny, p) ? 'deny' : 'inherit';
          const next = { inherit: 'allow', allow: 'deny', deny: 'inherit' }[st];
          return html`<td><button class=${'tri ' + st} title=${`${st} — click to ${next}`} aria-label=${`${pretty(p)} for ${name(o)}: ${st}`}
            onClick=${() => act(() => rest.setOverwrite(cid, o.id, { type: o.type, allow: withBit(o.allow, p, next === 'allow'), deny: withBit(o.deny, p, next === 'deny') }))}>
            ${st === 'allow' ? '✓' : st === 'deny' ? '✕' : '/'}</button></td>`;
        })}</tr>`)}</tbody></table></div>`}
    </div>`}
  </section>`;
}

// ---- members

function Members({ serverId }) {
  const a = useAction();
  const [q, setQ] = useState('');
  const [list, setList] = useState([]);
  const [more, setMore] = useState(false);
  const [roles, setRoles] = useState([]);
  const [open, setOpen] = useState('');
  const [detail, setDetail] = useState(null);
  async function load(reset) {
    const after = reset ? undefined : list[list.length - 1]?.user_id;
    const page = await a.run(() => rest.members(serverId, { q: q || undefined, after, limit: 50 }));
    if (page) { setList(reset ? page : [...list, ...page]); setMore(page.length === 50); }
  }
  useEffect(() => { const t = setTimeout(() => load(true), 200); return () => clearTimeout(t); }, [q]);
  useEffect(() => { rest.roles(serverId).then(setRoles).catch(() => {}); }, [serverId]);
  async function pick(id) {
    setOpen(id === open ? '' : id);
    setDetail(null);
    if (id !== open) { const d = await a.run(() => rest.member(serverId, id)); if (d) setDetail(d); }
  }
  return html`<section>
    <h1>Members</h1>
    <input type="search" aria-label="Search members" placeholder="Search by username" value=${q} onInput=${(e) => setQ(e.target.value)} />
    ${a.view}
    <ul class="plain-list admin-members">${list.map((m) => html`<li key=${m.user_id} data-user=${m.user_id}>
      <div class="row"><${Avatar} name=${m.username} /><b>${m.nick || m.username}</b>${m.nick && html`<span class="muted">${m.username}</span>`}
        <span class="grow"></span><button onClick=${() => pick(m.user_id)}>${open === m.user_id ? 'Close' : 'Manage'}</button></div>
      ${open === m.user_id && html`<${MemberAdmin} serverId=${serverId} m=${m} roles=${roles} detail=${detail}
        onChanged=${() => { load(true); pick(m.user_id); }} />`}
    </li>`)}</ul>
    ${more && html`<button onClick=${() => load(false)}>Load more</button>`}
  </section>`;
}

function MemberAdmin({ serverId, m, roles, detail, onChanged }) {
  const a = useAction();
  const [reason, setReason] = useState('');
  const held = new Set(detail?.roles || []);
  return html`<div class="member-admin">
    <p class="muted small">Joined ${new Date(m.joined_at).toLocaleString()}</p>
    ${detail && html`<div class="row wrap">${roles.filter((r) => r.id !== serverId).map((r) => html`<label class="check">
      <input type="checkbox" checked=${held.has(r.id)} onChange=${(e) => a.run(() => e.target.checked ? rest.addRole(serverId, m.user_id, r.id) : rest.removeRole(serverId, m.user_id, r.id), 'Roles updated.')} /> ${r.name}</label>`)}</div>`}
    <div class="row wrap">
      <input aria-label="Reason" placeholder="Reason (for the audit log)" value=${reason} onInput=${(e) => setReason(e.target.value)} maxlength="512" />
      <button class="danger" data-action="kick" onClick=${async () => { if (confirm(`Kick ${m.username}?`) && await a.run(() => rest.kick(serverId, m.user_id, { reason }), `${m.username} was kicked.`)) onChanged(); }}>Kick</button>
      <button class="danger" data-action="ban" onClick=${async () => { if (confirm(`Ban ${m.username}?`) && await a.run(() => rest.ban(serverId, m.user_id, reason), `${m.username} was banned.`)) onChanged(); }}>Ban</button>
    </div>
    ${a.view}
  </div>`;
}

function Bans({ serverId }) {
  const a = useAction();
  const [list, setList] = useState(null);
  const load = async () => { const r = await a.run(() => rest.bans(serverId, { limit: 1000 })); if (r) setList(r); };
  useEffect(() => { load(); }, [serverId]);
  return html`<section><h1>Bans</h1>${a.view}
    ${list && (list.length ? html`<ul class="plain-list">${list.map((b) => html`<li class="row"><b>${b.username}</b>
      <span class="muted">${b.reason || 'no reason given'} · ${new Date(b.created_at).toLocaleString()}</span><span class="grow"></span>
      <button onClick=${async () => { if (await a.run(() => rest.unban(serverId, b.user_id), `${b.username} was unbanned.`)) setList((l) => l.filter((x) => x.user_id !== b.user_id)); }}>Unban</button></li>`)}</ul>`
      : html`<p class="muted">Nobody is banned.</p>`)}
  </section>`;
}

const ACTIONS = ['server_update', 'channel_create', 'channel_update', 'channel_delete', 'overwrite_update', 'overwrite_delete', 'role_create', 'role_update', 'role_delete',
  'member_role_add', 'member_role_remove', 'member_kick', 'member_ban_add', 'member_ban_remove', 'member_update', 'invite_create'];

function Audit({ serverId }) {
  const a = useAction();
  const [list, setList] = useState([]);
  const [action, setAction] = useState('');
  const [more, setMore] = useState(false);
  async function load(reset) {
    const before = reset ? undefined : list[list.length - 1]?.id;
    const page = await a.run(() => rest.auditLog(serverId, { limit: 50, before, action: action || undefined }));
    if (page) {
      for (const e of page) if (e.actor_id && !state.users[e.actor_id]) rest.member(serverId, e.actor_id).then((m) => { state.users[e.actor_id] = m.username; setList((l) => l.slice()); }).catch(() => {});
      setList(reset ? page : [...list, ...page]); setMore(page.length === 50);
    }
  }
  useEffect(() => { load(true); }, [action]);
  return html`<section><h1>Audit log</h1>
    <select aria-label="Filter by action" value=${action} onChange=${(e) => setAction(e.target.value)}>
      <option value="">All actions</option>${ACTIONS.map((x) => html`<option value=${x}>${x.replace(/_/g, ' ')}</option>`)}</select>
    ${a.view}
    <ul class="plain-list audit">${list.map((e) => html`<li key=${e.id} data-action=${e.action}>
      <div><b>${state.users[e.actor_id] || e.actor_id}</b> · <span class="pill">${e.action.replace(/_/g, ' ')}</span>
        ${e.target_id && html` · target <code>${state.users[e.target_id] || e.target_id}</code>`}
        <span class="muted small"> · ${new Date(e.created_at).toLocaleString()}</span></div>
      ${e.reason && html`<div class="small">Reason: ${e.reason}</div>`}
      ${(e.changes || []).length > 0 && html`<ul class="changes small">${e.changes.map((ch) => html`<li><code>${ch.key}</code>: ${ch.old ?? '—'} → ${ch.new ?? '—'}</li>`)}</ul>`}
    </li>`)}</ul>
    ${!list.length && !a.busy && html`<p class="muted">No entries.</p>`}
    ${more && html`<button onClick=${() => load(false)}>Older entries</button>`}
  </section>`;
}

export { navigate };
