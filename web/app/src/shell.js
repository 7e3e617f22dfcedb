// The three-column chat layout: server rail + channel list, messages, members.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { html } from './html.js';
import {
  state, changed, currentServerId, currentChannelId, server, channel, serverUnread, canServer, loadOlder,
  send, retry, discard, editMessage, deleteMessage, typing, typers, openModal, togglePanel, logout, setTheme, rest, say,
  mentionsMe, searchMembers, learnUser, divider,
} from './store.js';
import { idTime } from '../../sdk/src/snowflake.ts';
import { Avatar, Badge, Icon } from './ui.js';

export function Shell() {
  const sid = currentServerId();
  return html`
    <div class=${'shell' + (state.panels.nav ? ' nav-open' : '') + (state.panels.members ? ' members-open' : '')}>
      <${ServerRail} />
      <${ChannelSidebar} serverId=${sid} />
      <main class="main">
        <${ConnectionBar} />
        ${sid ? html`<${ChatView} serverId=${sid} channelId=${currentChannelId()} />` : html`<${Home} />`}
      </main>
      ${sid && html`<${MemberList} serverId=${sid} key=${sid} />`}
      <div class="scrim" onClick=${() => { state.panels.nav = false; state.panels.members = false; changed(); }}></div>
    </div>`;
}

export function ConnectionBar() {
  const s = state.conn;
  const text = {
    idle: 'Not connected', connecting: 'Connecting…', identifying: 'Connecting…', resuming: 'Reconnecting…',
    reconnecting: 'Connection lost — reconnecting…', ready: 'Connected', closed: 'Disconnected', auth_failed: 'Logged out',
  }[s] || s;
  return html`<div class=${'conn conn-' + (s === 'ready' ? 'ok' : 'bad')} role="status" aria-live="polite" data-state=${s}>
    <span class="dot"></span>${text}</div>`;
}

function ServerRail() {
  const sid = currentServerId();
  return html`
    <nav class="rail" aria-label="Servers">
      <a class=${'rail-item home' + (!sid ? ' active' : '')} href="/channels/@me" title="Home">G</a>
      <div class="rail-sep"></div>
      ${state.servers.map((s) => {
        const u = serverUnread(s.id);
        return html`<a class=${'rail-item' + (s.id === sid ? ' active' : '') + (u.count ? ' has-unread' : '')}
            href=${`/channels/${s.id}`} title=${s.name} data-server=${s.id} aria-label=${`${s.name}${u.count ? `, ${u.count} unread` : ''}${u.mentions ? `, ${u.mentions} mentions` : ''}`}>
          ${initials(s.name)}
          ${u.mentions ? html`<${Badge} n=${u.mentions} kind="mention" />` : u.count ? html`<span class="unread-pip"></span>` : null}
        </a>`;
      })}
      <button class="rail-item add" title="Create or join a server" aria-label="Create or join a server" onClick=${() => openModal('addServer')}>+</button>
    </nav>`;
}

function initials(name) {
  return name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0]).join('').toUpperCase() || '?';
}

function ChannelSidebar({ serverId }) {
  const s = server(serverId);
  const list = state.channels[serverId] || [];
  const cur = currentChannelId();
  const cats = list.filter((c) => c.type === 'category');
  const loose = list.filter((c) => c.type === 'text' && !c.parent_id);
  const admin = s && (canServer(serverId, 'MANAGE_CHANNELS') || canServer(serverId, 'MANAGE_ROLES') || canServer(serverId, 'KICK_MEMBERS')
    || canServer(serverId, 'BAN_MEMBERS') || canServer(serverId, 'VIEW_AUDIT_LOG'));
  const item = (c) => {
    const u = state.unread[c.id];
    return html`<li><a class=${'chan' + (c.id === cur ? ' active' : '') + (u && c.id !== cur ? ' unread' : '')}
        href=${`/channels/${serverId}/${c.id}`} data-channel=${c.id} data-name=${c.name}>
      <span class="hash">#</span><span class="chan-name">${c.name}</span>
      ${u && c.id !== cur && (u.mentions ? html`<${Badge} n=${u.mentions} kind="mention" />` : u.count ? html`<${Badge} n=${u.count} />` : null)}
    </a></li>`;
  };
  return html`
    <aside class="sidebar" aria-label="Channels">
      <header class="sidebar-head">
        <h2 title=${s ? s.name : 'Home'}>${s ? s.name : 'Home'}</h2>
        ${s && html`<a class="icon-btn" href=${`/servers/${serverId}/settings`} title=${admin ? 'Server settings' : 'Server info and your nickname'} aria-label="Server settings">⚙</a>`}
      </header>
      <div class="sidebar-body">
        ${s ? html`
          ${canServer(serverId, 'CREATE_INVITE') && html`<button class="invite-btn" onClick=${() => openModal('invite', { serverId })}>Invite people</button>`}
          <ul class="chan-list">${loose.map(item)}</ul>
          ${cats.map((cat) => html`
            <section class="cat" data-category=${cat.id}>
              <h3>${cat.name}</h3>
              <ul class="chan-list">${list.filter((c) => c.parent_id === cat.id && c.type === 'text').map(item)}</ul>
            </section>`)}
        ` : html`<p class="muted pad">Pick a server on the left, or create or join one with +.</p>`}
      </div>
      <${UserPanel} />
    </aside>`;
}

function UserPanel() {
  const me = state.me;
  const next = { auto: 'light', light: 'dark', dark: 'auto' }[state.theme];
  return html`<footer class="user-panel">
    ${me && html`<${Avatar} name=${me.username} />`}
    <span class="me-name">${me ? me.username : '…'}</span>
    <button class="icon-btn" title=${`Theme: ${state.theme} (switch to ${next})`} aria-label="Switch theme" onClick=${() => setTheme(next)}>
      ${state.theme === 'dark' ? '☾' : state.theme === 'light' ? '☀' : '◐'}</button>
    <button class="icon-btn" title="Log out" aria-label="Log out" onClick=${() => logout()}>⎋</button>
  </footer>`;
}

function Home() {
  return html`<section class="home-view">
    <header class="chat-head"><button class="icon-btn narrow-only" aria-label="Show channels" onClick=${() => togglePanel('nav')}>☰</button><h2>Home</h2></header>
    <div class="empty">
      <h3>Welcome${state.me ? ', ' + state.me.username : ''}!</h3>
      <p>${state.servers.length ? 'Pick a server on the left.' : 'You are not in any server yet.'}</p>
      <button class="primary" onClick=${() => openModal('addServer')}>Create or join a server</button>
    </div>
  </section>`;
}

function ChatView({ serverId, channelId }) {
  const c = channel(channelId);
  if (!channelId || !c) {
    return html`<section class="chat"><header class="chat-head">
      <button class="icon-btn narrow-only" aria-label="Show channels" onClick=${() => togglePanel('nav')}>☰</button><h2>${server(serverId)?.name || ''}</h2></header>
      <div class="empty"><p>${(state.channels[serverId] || []).length ? 'Pick a channel.' : 'No channels you can see here yet.'}</p></div></section>`;
  }
  return html`<section class="chat" key=${channelId}>
    <header class="chat-head">
      <button class="icon-btn narrow-only" aria-label="Show channels" onClick=${() => togglePanel('nav')}>☰</button>
      <h2><span class="hash">#</span>${c.name}</h2>
      <span class="grow"></span>
      <button class="icon-btn" aria-label="Show members" title="Members" onClick=${() => togglePanel('members')}><${Icon} name="members" /></button>
    </header>
    <${MessageList} channelId=${channelId} />
    <${Composer} channelId=${channelId} name=${c.name} />
  </section>`;
}

function MessageList({ channelId }) {
  const ref = useRef(null);
  const stick = useRef(true);
  const prevHeight = useRef(0);
  const prevFirst = useRef('');
  const prevLast = useRef('');
  const [below, setBelow] = useState(false); // new messages arrived below while scrolled up
  const b = state.messages[channelId] || { list: [], more: true, loading: true };
  const pend = state.pending[channelId] || [];
  const me = state.me?.id;

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const first = b.list[0]?.id || '';
    if (prevFirst.current && first !== prevFirst.current && !stick.current) {
      // older messages were put above: keep what the user looks at in place
      el.scrollTop += el.scrollHeight - prevHeight.current;
    } else if (stick.current) {
      el.scrollTop = el.scrollHeight;
    }
    const last = b.list[b.list.length - 1]?.id || '';
    if (prevLast.current && last !== prevLast.current && !stick.current && !below) setBelow(true);
    prevFirst.current = first;
    prevLast.current = last;
    prevHeight.current = el.scrollHeight;
  });

  function onScroll() {
    const el = ref.current;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (stick.current && below) setBelow(false);
    if (el.scrollTop < 80 && b.more && !b.loading) loadOlder(channelId);
  }

  let lastAuthor = '', lastTime = 0;
  const jump = () => { const el = ref.current; stick.current = true; setBelow(false); el.scrollTop = el.scrollHeight; };
  return html`<div class="messages-wrap">
  ${below && html`<button class="jump" onClick=${jump}>New messages below ↓</button>`}
  <div class="messages" ref=${ref} onScroll=${onScroll} role="log" aria-label="Messages" aria-live="polite">
    ${b.more === false ? html`<p class="muted history-start">This is the start of the channel.</p>`
      : b.loading ? html`<p class="muted history-start">Loading…</p>`
      : html`<button class="link history-start" onClick=${() => loadOlder(channelId)}>Load older messages</button>`}
    ${b.error && html`<p class="form-error" role="alert">${b.error} <button class="link" onClick=${() => loadOlder(channelId, !b.list.length)}>Try again</button></p>`}
    ${b.list.map((m) => {
      const t = Date.parse(m.created_at) || idTime(m.id).getTime();
      const compact = m.author_id === lastAuthor && t - lastTime < 5 * 60000;
      lastAuthor = m.author_id; lastTime = t;
      const isNew = divider[channelId] === m.id;
      const row = html`<${MessageRow} key=${m.id} m=${m} compact=${compact && !isNew} mine=${m.author_id === me} />`;
      return isNew ? [html`<div class="new-divider" key=${'new-' + m.id} role="separator"><span>New</span></div>`, row] : row;
    })}
    ${pend.map((p) => html`<div class=${'msg pending ' + p.status} key=${p.nonce} data-nonce=${p.nonce}>
      <${Avatar} name=${state.me?.username || '?'} />
      <div class="msg-body">
        <div class="msg-meta"><b>${state.me?.username}</b> <span class="muted small">${p.status === 'sending' ? 'sending…' : 'not sent'}</span></div>
        <div class="msg-text">${p.content}</div>
        ${p.status === 'failed' && html`<div class="form-error" role="alert">${p.error}
          <button class="link" onClick=${() => retry(channelId, p.nonce)}>Retry</button>
          <button class="link" onClick=${() => discard(channelId, p.nonce)}>Discard</button></div>`}
      </div></div>`)}
  </div></div>`;
}

function MessageRow({ m, compact, mine }) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(m.content);
  // ArrowUp in an empty composer edits your last message
  useEffect(() => {
    if (state.editId === m.id) { state.editId = ''; setDraft(m.content); setEditing(true); }
  });
  const name = state.users[m.author_id] || '…';
  const time = new Date(Date.parse(m.created_at) || idTime(m.id).getTime());
  const sid = currentServerId();
  const canDelete = mine || canServer(sid, 'MANAGE_MESSAGES');
  async function save(e) {
    e?.preventDefault();
    if (draft.trim() && draft !== m.content) { if (!(await editMessage(m, draft))) return; }
    setEditing(false);
    document.querySelector('.composer textarea')?.focus();
  }
  return html`<div class=${'msg' + (compact ? ' compact' : '') + (mentionsMe(m) && !mine ? ' mentioned' : '')} data-id=${m.id} data-author=${m.author_id}>
    ${compact ? html`<span class="msg-gutter muted small" title=${time.toLocaleString()}>${time.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}</span>`
      : html`<${Avatar} name=${name} />`}
    <div class="msg-body">
      ${!compact && html`<div class="msg-meta"><b class="author">${name}</b> <time class="muted small" datetime=${time.toISOString()} title=${time.toLocaleString()}>${time.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' })}</time></div>`}
      ${editing ? html`<form class="edit" onSubmit=${save}>
          <textarea aria-label="Edit message" value=${draft} onInput=${(e) => setDraft(e.target.value)} autofocus
            onKeyDown=${(e) => { if (e.key === 'Enter' && !e.shiftKey) save(e); if (e.key === 'Escape') { setEditing(false); setDraft(m.content); } }}></textarea>
          <div class="small muted">Enter to save · Esc to cancel</div></form>`
        : html`<div class="msg-text">${renderContent(m.content, m.server_id)}${m.edited_at && html` <span class="muted small" title=${m.edited_at}>(edited)</span>`}</div>`}
    </div>
    ${!editing && (mine || canDelete) && html`<div class="msg-actions">
      ${mine && html`<button class="icon-btn" title="Edit" aria-label="Edit message" onClick=${() => { setDraft(m.content); setEditing(true); }}><${Icon} name="edit" /></button>`}
      ${canDelete && html`<button class="icon-btn danger" title="Delete" aria-label="Delete message" onClick=${() => { if (confirm('Delete this message?')) deleteMessage(m); }}><${Icon} name="trash" /></button>`}
    </div>`}
  </div>`;
}

/** renderContent shows <@user> and <@&role> mentions as @names. */
function renderContent(text, serverId) {
  const out = [];
  let last = 0;
  for (const mt of text.matchAll(/<@(&?)(\d+)>/g)) {
    out.push(text.slice(last, mt.index));
    let label;
    if (mt[1]) label = (state.roles[serverId] || []).find((r) => r.id === mt[2])?.name || 'role';
    else { learnUser(serverId, mt[2]); label = state.users[mt[2]] || 'user'; }
    const me = !mt[1] && state.me && mt[2] === state.me.id;
    out.push(html`<span class=${'mention-tag' + (me ? ' me' : '')} data-mention=${mt[2]}>@${label}</span>`);
    last = mt.index + mt[0].length;
  }
  out.push(text.slice(last));
  return out;
}

function Composer({ channelId, name }) {
  const [text, setText] = useState('');
  const [error, setError] = useState('');
  const [picks, setPicks] = useState([]); // mention completion
  const [sel, setSel] = useState(0);
  const picked = useRef({}); // "@name" -> user id, turned into <@id> on send
  const area = useRef(null);
  const sid = currentServerId();
  useEffect(() => { area.current?.focus(); }, [channelId]);
  useEffect(() => { if (!text && area.current) area.current.style.height = ''; }, [text]);
  const grow = (el) => { el.style.height = ''; el.style.height = Math.min(el.scrollHeight + 2, innerHeight * 0.4) + 'px'; };

  // the "@prefix" being typed just before the cursor, if any
  function query(v, pos) {
    const mt = /(^|\s)@([A-Za-z0-9_.-]{1,32})$/.exec(v.slice(0, pos));
    return mt ? mt[2] : null;
  }
  let seq = useRef(0);
  async function complete(v, pos) {
    const q = query(v, pos);
    if (!q) { setPicks([]); return; }
    const n = ++seq.current;
    try {
      const list = await searchMembers(sid, q);
      if (n === seq.current) { setPicks(list); setSel(0); }
    } catch { setPicks([]); }
  }
  function choose(m) {
    const el = area.current, pos = el.selectionStart;
    const before = text.slice(0, pos).replace(/@([A-Za-z0-9_.-]{1,32})$/, `@${m.username} `);
    picked.current['@' + m.username] = m.user_id;
    setText(before + text.slice(pos));
    setPicks([]);
    queueMicrotask(() => { el.focus(); el.selectionStart = el.selectionEnd = before.length; });
  }
  function submit(e) {
    e?.preventDefault();
    let v = text;
    if (!v.trim()) return;
    if ([...v].length > 4000) { setError('A message can be at most 4000 characters.'); return; }
    for (const [tag, id] of Object.entries(picked.current)) v = v.split(tag).join(`<@${id}>`);
    picked.current = {};
    setError('');
    setText('');
    setPicks([]);
    send(channelId, v);
  }
  function onKeyDown(e) {
    if (picks.length) {
      if (e.key === 'ArrowDown') { e.preventDefault(); setSel((sel + 1) % picks.length); return; }
      if (e.key === 'ArrowUp') { e.preventDefault(); setSel((sel + picks.length - 1) % picks.length); return; }
      if (e.key === 'Enter' || e.key === 'Tab') { e.preventDefault(); choose(picks[sel]); return; }
      if (e.key === 'Escape') { setPicks([]); return; }
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) submit(e);
    if (e.key === 'ArrowUp' && !text) {
      const list = state.messages[channelId]?.list || [];
      const mine = [...list].reverse().find((m) => m.author_id === state.me?.id);
      if (mine) { e.preventDefault(); state.editId = mine.id; changed(); }
    }
  }
  const who = typers(channelId);
  return html`<form class="composer" onSubmit=${submit}>
    ${picks.length > 0 && html`<ul class="mention-picks" role="listbox" aria-label="Members to mention">
      ${picks.map((m, i) => html`<li role="option" aria-selected=${i === sel} class=${i === sel ? 'sel' : ''}
        onMouseDown=${(e) => { e.preventDefault(); choose(m); }}><${Avatar} name=${m.username} /> ${m.nick || m.username}
        ${m.nick && html`<span class="muted small">${m.username}</span>`}</li>`)}</ul>`}
    <textarea ref=${area} rows="1" aria-label=${`Message #${name}`} placeholder=${`Message #${name}`} value=${text}
      onInput=${(e) => { grow(e.target); setText(e.target.value); if (e.target.value) typing(channelId); complete(e.target.value, e.target.selectionStart); }}
      onKeyDown=${onKeyDown}></textarea>
    <button class="primary send" type="submit" aria-label="Send">Send</button>
    <div class="below-composer">
      ${error ? html`<span class="form-error" role="alert">${error}</span>`
        : who.length ? html`<span class="typing" aria-live="polite"><span class="dots"><i></i><i></i><i></i></span>
            ${who.length === 1 ? `${who[0]} is typing…` : who.length < 4 ? `${who.join(', ')} are typing…` : 'Several people are typing…'}</span>` : ''}
    </div>
  </form>`;
}

function MemberList({ serverId }) {
  const [q, setQ] = useState('');
  const [list, setList] = useState([]);
  const [more, setMore] = useState(false);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const PAGE = 50;
  async function load(reset, query = q) {
    setBusy(true);
    try {
      const after = reset ? undefined : list[list.length - 1]?.user_id;
      const page = await rest.members(serverId, { limit: PAGE, after, q: query || undefined });
      for (const m of page) state.users[m.user_id] ||= m.nick || m.username;
      setList(reset ? page : [...list, ...page]);
      setMore(page.length === PAGE);
      setError('');
    } catch (e) { setError(say(e)); } finally { setBusy(false); }
  }
  useEffect(() => { const t = setTimeout(() => load(true, q), q ? 200 : 0); return () => clearTimeout(t); }, [q, serverId]);
  const s = server(serverId);
  return html`<aside class="members" aria-label="Members">
    <header class="sidebar-head"><h2>Members</h2><button class="icon-btn narrow-only" aria-label="Hide members" onClick=${() => togglePanel('members')}>✕</button></header>
    <input class="search" type="search" placeholder="Search members" aria-label="Search members" value=${q} onInput=${(e) => setQ(e.target.value)} />
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
    <ul class="member-list" onScroll=${(e) => { const el = e.target; if (more && !busy && el.scrollHeight - el.scrollTop - el.clientHeight < 60) load(false); }}>
      ${list.map((m) => html`<li class="member" key=${m.user_id} data-user=${m.user_id}>
        <${Avatar} name=${m.nick || m.username} />
        <span class="member-name">${m.nick || m.username}${m.nick && html` <span class="muted small">${m.username}</span>`}</span>
        ${s && s.owner_id === m.user_id && html`<span class="crown" title="Server owner">♛</span>`}
      </li>`)}
      ${!list.length && !busy && !error && html`<li class="muted pad">No members match.</li>`}
      ${more && html`<li><button class="link" disabled=${busy} onClick=${() => load(false)}>${busy ? 'Loading…' : 'Load more'}</button></li>`}
    </ul>
  </aside>`;
}
