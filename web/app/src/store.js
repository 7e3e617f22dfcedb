// The app's state and every action that changes it. Components read `state`
// and call actions; `changed()` re-renders. Server data comes from the SDK:
// REST for lists and history, the gateway for live events.
import { RestClient, ApiError, Gateway, GatewayError, gatewayURL, sendWithRetry, newNonce, cmpId, MESSAGES, UNREAD_COUNT } from '../../sdk/src/index.ts';

const TOKEN_KEY = 'guildhall.token';
const THEME_KEY = 'guildhall.theme';
const PAGE = 50;
// How often the channel list of the open server is re-read: the gateway does
// not announce channel or permission changes (docs/gateway.md), so a channel
// an admin hides disappears within this time, without a reload.
// (localStorage 'guildhall.channelPollMs' overrides it; the tests use 1 s.)
const CHANNEL_POLL_MS = Number(globalThis.localStorage?.getItem('guildhall.channelPollMs')) || 10000;

export const state = {
  token: localStorage.getItem(TOKEN_KEY) || '',
  me: null, // {id, username}
  conn: 'idle',
  servers: [], // [{id, name, owner_id}]
  channels: {}, // serverId -> [{id, server_id, name, type, position, parent_id, synced}]
  route: { name: 'home' },
  messages: {}, // channelId -> {list: [msg asc], more: bool, loading: bool, error: ''}
  pending: {}, // channelId -> [{nonce, content, status: 'sending'|'failed', error}]
  unread: {}, // channelId -> {count, mentions}
  typing: {}, // channelId -> {userId: expiresAtMs}
  users: {}, // userId -> username
  perms: {}, // serverId -> {permissions, names}
  roles: {}, // serverId -> [role] (for role mentions)
  notice: null, // {kind: 'error'|'info', text}
  modal: null, // {name, ...}
  theme: localStorage.getItem(THEME_KEY) || 'auto',
  panels: { nav: false, members: false }, // narrow-window drawers
};

const listeners = new Set();
let scheduled = false;
export function onChange(fn) { listeners.add(fn); return () => listeners.delete(fn); }
export function changed() {
  if (scheduled) return;
  scheduled = true;
  queueMicrotask(() => { scheduled = false; for (const fn of listeners) fn(); });
}

export const rest = new RestClient({ token: state.token });
export let gateway = null;

// ---- errors and notices

/** say turns any error into words for the user. */
export function say(e) {
  if (e instanceof ApiError) {
    if (e.code === 'network') return 'Cannot reach the server. Check your connection and try again.';
    return e.message.charAt(0).toUpperCase() + e.message.slice(1) + '.';
  }
  if (e instanceof GatewayError) {
    if (e.code === 'disconnected') return 'Not connected to the server right now; try again in a moment.';
    return e.message + '.';
  }
  return (e && e.message) || String(e);
}

export function notify(text, kind = 'error') {
  state.notice = { text, kind, at: Date.now() };
  changed();
  const n = state.notice;
  setTimeout(() => { if (state.notice === n) { state.notice = null; changed(); } }, kind === 'error' ? 8000 : 4000);
}

/** attempt runs an action and shows its error in words; it returns undefined on failure. */
export async function attempt(fn) {
  try { return await fn(); } catch (e) {
    if (e instanceof ApiError && e.code === 'unauthenticated' && state.token) { logout(true); return; }
    notify(say(e));
  }
}

// ---- theme

export function setTheme(t) {
  state.theme = t;
  localStorage.setItem(THEME_KEY, t);
  applyTheme();
  changed();
}
export function applyTheme() {
  const dark = state.theme === 'dark' || (state.theme === 'auto' && matchMedia('(prefers-color-scheme: dark)').matches);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
}

// ---- routing: /login, /register, /channels/@me, /channels/:server/:channel, /servers/:server/settings/:tab, /invite/:code

export function parseRoute(path) {
  let m;
  if (path === '/login') return { name: 'login' };
  if (path === '/register') return { name: 'register' };
  if ((m = /^\/invite\/([^/]+)$/.exec(path))) return { name: 'invite', code: decodeURIComponent(m[1]) };
  if ((m = /^\/channels\/(\d+)(?:\/(\d+))?$/.exec(path))) return { name: 'channel', serverId: m[1], channelId: m[2] || '' };
  if ((m = /^\/servers\/(\d+)\/settings(?:\/([a-z-]+))?$/.exec(path))) return { name: 'settings', serverId: m[1], tab: m[2] || 'overview' };
  return { name: 'home' };
}

export function navigate(path, replace = false) {
  if (replace) history.replaceState(null, '', path); else history.pushState(null, '', path);
  routeChanged();
}

export function routeChanged() {
  const r = parseRoute(location.pathname);
  if (!state.token && r.name !== 'login' && r.name !== 'register') {
    if (r.name === 'invite') sessionStorage.setItem('guildhall.invite', r.code);
    state.route = { name: 'login' };
    history.replaceState(null, '', '/login');
    changed();
    return;
  }
  if (state.token && (r.name === 'login' || r.name === 'register')) { navigate('/channels/@me', true); return; }
  state.route = r;
  state.panels.nav = false;
  if (r.name === 'invite') { acceptInvite(r.code); return; }
  if (r.name === 'channel' || r.name === 'settings') openServer(r.serverId, r.channelId);
  updateSubscriptions();
  changed();
}

// ---- session

export async function login(username, password, register) {
  const res = register ? await rest.register(username, password) : await rest.login(username, password);
  state.token = res.token;
  state.me = res.user;
  rest.token = res.token;
  localStorage.setItem(TOKEN_KEY, res.token);
  start();
  const code = sessionStorage.getItem('guildhall.invite');
  sessionStorage.removeItem('guildhall.invite');
  navigate(code ? `/invite/${encodeURIComponent(code)}` : '/channels/@me', true);
}

export async function logout(expired = false) {
  if (!expired) { try { await rest.logout(); } catch { /* the token goes anyway */ } }
  localStorage.removeItem(TOKEN_KEY);
  gateway?.close();
  gateway = null;
  Object.assign(state, { token: '', me: null, conn: 'idle', servers: [], channels: {}, messages: {}, pending: {}, unread: {}, typing: {}, perms: {} });
  rest.token = '';
  if (expired) notify('Your session has ended. Please log in again.');
  navigate('/login', true);
}

let pollTimer = null;

/** start connects the gateway and loads what the first screen needs. */
export function start() {
  if (!state.token) return;
  gateway?.close();
  const gw = new Gateway({
    url: gatewayURL(''), token: state.token,
    // what the client has of the open channel, for an exact resume on another node
    positions: () => {
      const id = currentChannelId(), b = state.messages[id];
      return b && b.list.length ? [{ channel_id: id, message_id: b.list[b.list.length - 1].id }] : [];
    },
  });
  gateway = gw;
  globalThis.__guildhall = { gateway: gw, state, readSeq }; // for tests and the console
  gw.on('state', (s) => {
    state.conn = s;
    if (s === 'auth_failed') logout(true);
    changed();
  });
  gw.on('ready', (r, info) => onReady(r, info.reconnect));
  gw.on('resumed', () => changed());
  gw.on('message_create', (m) => onMessage(m));
  gw.on('message_update', (m) => onMessageUpdate(m));
  gw.on('message_delete', (d) => onMessageDelete(d));
  gw.on('typing_start', (t, ev) => onTyping(ev.channel_id, t.user_id));
  gw.on('unread_update', (u) => onUnreadUpdate(u));
  gw.on('read_state_update', (rs) => onUnreadUpdate({ channel_id: rs.channel_id, unread_count: rs.unread_count, mention_count: rs.mention_count }));
  gw.on('subscription_error', () => refreshChannels(currentServerId()));
  gw.connect();
  if (!start.focusHooked) {
    start.focusHooked = true;
    // Coming back to the tab: re-read what the gateway does not announce.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && state.token && currentServerId()) refreshChannels(currentServerId(), true);
    });
  }
  clearInterval(pollTimer);
  pollTimer = setInterval(() => { if (state.token && currentServerId()) refreshChannels(currentServerId(), true); }, CHANNEL_POLL_MS);
}

function onReady(r, reconnect) {
  state.me = r.user ? { id: r.user.id, username: r.user.username } : state.me;
  if (state.me) state.users[state.me.id] = state.me.username;
  state.servers = (r.servers || []).map((s) => ({ id: s.id, name: s.name, owner_id: s.owner_id }));
  const byServer = {};
  for (const c of r.channels || []) (byServer[c.server_id] ||= []).push(fromProtoChannel(c));
  for (const s of state.servers) state.channels[s.id] = sortChannels(byServer[s.id] || []);
  if (r.read_states) {
    state.unread = {};
    for (const rs of r.read_states) if (rs.channel_id !== currentChannelId()) setUnread(rs.channel_id, rs.unread_count, rs.mention_count);
  }
  if (reconnect) catchUp();
  const rt = state.route;
  if (rt.name === 'channel' || rt.name === 'settings') openServer(rt.serverId, rt.channelId);
  updateSubscriptions();
  changed();
}

function fromProtoChannel(c) {
  return {
    id: c.id, server_id: c.server_id, name: c.name || '',
    type: c.type === 'CHANNEL_TYPE_CATEGORY' ? 'category' : 'text',
    position: c.position || 0, parent_id: c.parent_id && c.parent_id !== '0' ? c.parent_id : null,
  };
}

function sortChannels(list) {
  return list.slice().sort((a, b) => (a.position - b.position) || cmpId(a.id, b.id));
}

/** loadReadStates reads the unread counts of one server from REST (a server joined after READY). */
async function loadReadStates(serverId) {
  try {
    const { read_states: list } = await rest.readStates({ server_id: serverId });
    for (const rs of list || []) {
      if (rs.channel_id === currentChannelId()) continue;
      setUnread(rs.channel_id, rs.unread_count, rs.mention_count);
    }
    changed();
  } catch { /* older servers have no read states: counts come from live events */ }
}

// ---- servers and channels

export function currentServerId() {
  const r = state.route;
  return r.name === 'channel' || r.name === 'settings' ? r.serverId : '';
}
export function currentChannelId() {
  return state.route.name === 'channel' ? state.route.channelId : '';
}
export function server(id) { return state.servers.find((s) => s.id === id); }
export function channel(id) {
  for (const list of Object.values(state.channels)) { const c = list.find((x) => x.id === id); if (c) return c; }
  return null;
}

export async function refreshServers() {
  const list = await rest.myServers();
  state.servers = list;
  changed();
}

/** refreshChannels re-reads the channel list (what this user can see). */
export async function refreshChannels(serverId, quiet = false) {
  if (!serverId) return;
  let list;
  try { list = await rest.channels(serverId); } catch (e) {
    if (e instanceof ApiError && e.status === 404) { // kicked, banned or the server is gone
      state.servers = state.servers.filter((s) => s.id !== serverId);
      delete state.channels[serverId];
      if (currentServerId() === serverId) { notify('You are no longer a member of that server.'); navigate('/channels/@me', true); }
      updateSubscriptions();
      changed();
      return;
    }
    if (!quiet) notify(say(e));
    return;
  }
  const prev = state.channels[serverId] || [];
  const before = JSON.stringify(prev);
  const next = sortChannels(list.map((c) => ({ ...c, parent_id: c.parent_id || null })));
  if (JSON.stringify(next) === before) return;
  state.channels[serverId] = next;
  const cur = currentChannelId();
  if (currentServerId() === serverId && cur && !next.some((c) => c.id === cur)) {
    const gone = prev.find((c) => c.id === cur);
    notify(`You can no longer see ${gone ? '#' + gone.name : 'that channel'}.`, 'info');
    const first = next.find((c) => c.type === 'text');
    navigate(first ? `/channels/${serverId}/${first.id}` : `/channels/${serverId}`, true);
  }
  updateSubscriptions();
  changed();
}

let openedServer = '';
function openServer(serverId, channelId) {
  if (!state.me) return; // before ready: onReady opens it
  if (!state.servers.some((s) => s.id === serverId)) { navigate('/channels/@me', true); return; }
  if (openedServer !== serverId) {
    openedServer = serverId;
    refreshChannels(serverId, true);
    loadPerms(serverId);
    rest.roles(serverId).then((r) => { state.roles[serverId] = r; changed(); }).catch(() => {});
  }
  if (state.route.name !== 'channel') return;
  const list = state.channels[serverId] || [];
  if (!channelId) {
    const first = list.find((c) => c.type === 'text');
    if (first) navigate(`/channels/${serverId}/${first.id}`, true);
    return;
  }
  openChannel(channelId);
}

export async function loadPerms(serverId) {
  try { state.perms[serverId] = await rest.myServerPermissions(serverId); changed(); } catch { /* shown where used */ }
}

export function canServer(serverId, name) {
  const s = server(serverId);
  if (s && state.me && s.owner_id === state.me.id) return true;
  const p = state.perms[serverId];
  return !!p && (p.names.includes(name) || p.names.includes('ADMINISTRATOR'));
}

// ---- subscriptions: the open channel gets MESSAGES, every other channel UNREAD_COUNT

// A session follows at most 1000 channels (docs/gateway.md): the open
// channel first, then the open server's, then the other servers' in list
// order. Channels past the budget keep the counts READY gave them.
const MAX_SUBSCRIPTIONS = 1000;

export function updateSubscriptions() {
  if (!gateway) return;
  const want = new Map();
  const open = currentChannelId(), sid = currentServerId();
  if (open) want.set(open, MESSAGES);
  const order = [sid, ...state.servers.map((s) => s.id).filter((id) => id !== sid)];
  for (const id of order) {
    for (const c of state.channels[id] || []) {
      if (want.size >= MAX_SUBSCRIPTIONS) break;
      if (c.type === 'text' && !want.has(c.id)) want.set(c.id, UNREAD_COUNT);
    }
  }
  gateway.setSubscriptions(want);
}

// ---- unread counts

function setUnread(channelId, count, mentions, unreadFlag) {
  const n = Number(count || 0), m = Number(mentions || 0);
  if (!n && !m && !unreadFlag) delete state.unread[channelId];
  else state.unread[channelId] = { count: n, mentions: m, dot: !!unreadFlag };
}

// readSeq: channel -> the newest message seq this client has shown. If the
// server could not store an ack (read states off, or the ack was lost), an
// unread update it sends later still counts from the old position: what the
// user has seen here is taken off.
const readSeq = {};

function onUnreadUpdate(u) {
  if (u.channel_id === currentChannelId() && document.visibilityState !== 'hidden') return;
  let count = Number(u.unread_count || 0);
  const last = Number(u.last_seq || 0), seen = readSeq[u.channel_id] || 0;
  if (last && seen) {
    if (last <= seen && !Number(u.mention_count || 0)) { delete state.unread[u.channel_id]; changed(); return; }
    count = Math.min(count, Math.max(0, last - seen));
  }
  setUnread(u.channel_id, count, u.mention_count, u.unread && (!last || last > seen));
  changed();
}

export function serverUnread(serverId) {
  let count = 0, mentions = 0;
  for (const c of state.channels[serverId] || []) {
    const u = state.unread[c.id];
    if (u) { count += u.count || (u.dot ? 1 : 0); mentions += u.mentions; }
  }
  return { count, mentions };
}

export function mentionsMe(m) {
  if (!state.me) return false;
  return (m.mention_user_ids || []).includes(state.me.id) || !!m.mention_everyone || (m.content || '').includes(`<@${state.me.id}>`);
}

/** searchMembers: mention completion, server-side (prefix of the username). */
export async function searchMembers(serverId, q) {
  const list = await rest.members(serverId, { q, limit: 8 });
  for (const m of list) state.users[m.user_id] ||= m.nick || m.username;
  return list;
}

let ackTimer = null;
function markRead(channelId, messageId) {
  delete state.unread[channelId];
  if (!messageId) return;
  const m = state.messages[channelId]?.list.find((x) => x.id === messageId);
  if (m && m.seq > (readSeq[channelId] || 0)) readSeq[channelId] = m.seq;
  clearTimeout(ackTimer);
  ackTimer = setTimeout(() => {
    // Acks are best effort: the next one, or opening the channel again, catches up.
    if (gateway?.features.ack && gateway.state === 'ready') gateway.ack(channelId, messageId).catch(() => rest.ack(channelId, messageId).catch(() => {}));
    else rest.ack(channelId, messageId).catch(() => {});
  }, 300);
}

// ---- messages

function bucket(channelId) {
  return (state.messages[channelId] ||= { list: [], more: true, loading: false, error: '', loaded: false });
}

function insert(b, m) {
  const i = b.list.findIndex((x) => x.id === m.id);
  if (i >= 0) { b.list[i] = m; return; }
  if (!b.list.length || cmpId(b.list[b.list.length - 1].id, m.id) < 0) { b.list.push(m); return; }
  b.list.push(m);
  b.list.sort((a, c) => cmpId(a.id, c.id));
}

function normalize(m) {
  return { ...m, seq: Number(m.seq || 0), edited_at: m.edited_at || null };
}

/** synced waits (at most 3 s) until the server confirmed the subscriptions, so a fetch after it misses nothing. */
function synced() {
  if (!gateway) return Promise.resolve();
  return Promise.race([gateway.whenSynced(), new Promise((r) => setTimeout(r, 3000))]);
}

// divider: channel -> ID of the first message that was unread when it was opened ("New" line)
export const divider = {};

function placeDivider(channelId, unread) {
  const list = state.messages[channelId]?.list || [];
  delete divider[channelId];
  if (unread > 0 && unread <= list.length) divider[channelId] = list[list.length - unread].id;
}

async function openChannel(channelId) {
  const b = bucket(channelId);
  if (b.loading) return;
  const unread = state.unread[channelId]?.count || 0;
  await synced();
  if (!b.loaded) { await loadOlder(channelId, true); placeDivider(channelId, unread); changed(); return; }
  // While it was not open it was followed for counts only: fetch what came meanwhile.
  await fetchAfter(channelId);
  if (channelId !== currentChannelId()) return;
  placeDivider(channelId, unread);
  if (b.list.length) markRead(channelId, b.list[b.list.length - 1].id);
  else delete state.unread[channelId];
  changed();
}

/** fetchAfter pages forwards from the newest message held (after=), newest first pages. */
async function fetchAfter(channelId) {
  const b = bucket(channelId);
  let after = b.list.length ? b.list[b.list.length - 1].id : undefined;
  if (!after) return;
  try {
    for (let pages = 0; ; pages++) {
      if (pages === 3) { // far behind: start again from the newest page instead
        state.messages[channelId] = { list: [], more: true, loading: false, error: '', loaded: false };
        await loadOlder(channelId, true);
        return;
      }
      const page = await rest.messages(channelId, { limit: 100, after });
      for (const m of page) { insert(b, normalize(m)); learnAuthor(m); }
      if (page.length < 100) break;
      after = page[0].id;
    }
  } catch (e) { notify(say(e)); }
  changed();
}

/** loadOlder fetches the page before the oldest message shown (scroll-back). */
export async function loadOlder(channelId, first = false) {
  const b = bucket(channelId);
  if (b.loading || (!first && !b.more)) return;
  b.loading = true; b.error = '';
  changed();
  try {
    const before = !first && b.list.length ? b.list[0].id : undefined;
    const page = await rest.messages(channelId, { limit: PAGE, before });
    for (const m of page) { insert(b, normalize(m)); learnAuthor(m); }
    b.more = page.length === PAGE;
    b.loaded = true;
    if (first && b.list.length && channelId === currentChannelId()) markRead(channelId, b.list[b.list.length - 1].id);
    if (first) delete state.unread[channelId];
  } catch (e) {
    b.error = say(e);
  } finally {
    b.loading = false;
    changed();
  }
}

/** catchUp pulls what the open channel missed while the session was new (after=last seen, paged forwards). */
async function catchUp() {
  await synced();
  for (const id of Object.keys(state.messages)) {
    if (id === currentChannelId()) await fetchAfter(id); // others catch up when opened
  }
  changed();
}

function onMessage(m) {
  m = normalize(m);
  learnAuthor(m);
  const b = state.messages[m.channel_id];
  if (b) insert(b, m);
  // the sender's own pending copy is replaced by the real one
  const p = state.pending[m.channel_id];
  if (p && m.nonce) state.pending[m.channel_id] = p.filter((x) => x.nonce !== m.nonce);
  const t = state.typing[m.channel_id];
  if (t) delete t[m.author_id];
  if (m.channel_id === currentChannelId() && document.visibilityState !== 'hidden') {
    markRead(m.channel_id, m.id);
  } else if (!gateway?.features.subscriptionTypes && state.me && m.author_id !== state.me.id) {
    // Without unread_update events the client counts what it is sent.
    const u = state.unread[m.channel_id] || { count: 0, mentions: 0 };
    state.unread[m.channel_id] = { count: u.count + 1, mentions: u.mentions + (mentionsMe(m) ? 1 : 0) };
  }
  changed();
}

function onMessageUpdate(m) {
  m = normalize(m);
  const b = state.messages[m.channel_id];
  if (b && b.list.some((x) => x.id === m.id)) { insert(b, m); changed(); }
}

function onMessageDelete(d) {
  const b = state.messages[d.channel_id];
  if (b) { b.list = b.list.filter((x) => x.id !== d.id); changed(); }
}

/** send shows the message at once as pending, then posts it; a failure keeps it with a Retry button (same nonce). */
export function send(channelId, content) {
  const p = { nonce: newNonce(), content, status: 'sending', error: '' };
  (state.pending[channelId] ||= []).push(p);
  changed();
  deliver(channelId, p);
}

export function retry(channelId, nonce) {
  const p = (state.pending[channelId] || []).find((x) => x.nonce === nonce);
  if (!p) return;
  p.status = 'sending'; p.error = '';
  changed();
  deliver(channelId, p);
}

export function discard(channelId, nonce) {
  state.pending[channelId] = (state.pending[channelId] || []).filter((x) => x.nonce !== nonce);
  changed();
}

async function deliver(channelId, p) {
  try {
    const m = await sendWithRetry(rest, channelId, p.content, p.nonce, { attempts: 4 });
    state.pending[channelId] = (state.pending[channelId] || []).filter((x) => x.nonce !== p.nonce);
    const b = state.messages[channelId];
    if (b) insert(b, normalize(m));
    learnAuthor(m);
    if (channelId === currentChannelId()) markRead(channelId, m.id);
  } catch (e) {
    p.status = 'failed';
    p.error = say(e);
  }
  changed();
}

export async function editMessage(m, content) {
  const r = await attempt(() => rest.editMessage(m.channel_id, m.id, content));
  if (r) onMessageUpdate(r);
  return !!r;
}

export async function deleteMessage(m) {
  const ok = await attempt(async () => { await rest.deleteMessage(m.channel_id, m.id); return true; });
  if (ok) onMessageDelete({ id: m.id, channel_id: m.channel_id });
}

// ---- typing

const lastTypingSent = {}; // channel -> ms
export function typing(channelId) {
  if (!gateway || gateway.state !== 'ready') return;
  if (Date.now() - (lastTypingSent[channelId] || 0) < 4000) return;
  lastTypingSent[channelId] = Date.now();
  gateway.typing(channelId).catch(() => { /* typing is best effort */ });
}

function onTyping(channelId, userId) {
  if (state.me && userId === state.me.id) return;
  (state.typing[channelId] ||= {})[userId] = Date.now() + 10000;
  learnUser(currentServerId(), userId);
  changed();
  setTimeout(changed, 10100);
}

export function typers(channelId) {
  const t = state.typing[channelId] || {};
  const now = Date.now();
  return Object.entries(t).filter(([, until]) => until > now).map(([id]) => state.users[id] || 'Someone');
}

// ---- user names (messages carry author IDs only)

const asking = new Set();
function learnAuthor(m) { learnUser(m.server_id, m.author_id); }
export function learnUser(serverId, userId) {
  if (!userId || state.users[userId] || asking.has(userId) || !serverId) return;
  asking.add(userId);
  rest.member(serverId, userId).then((mem) => {
    state.users[userId] = mem.nick || mem.username;
    changed();
  }).catch(() => { state.users[userId] = 'unknown user'; changed(); }).finally(() => asking.delete(userId));
}

// ---- servers, invites

export async function createServer(name) {
  const s = await rest.createServer(name);
  await afterJoin(s);
}

export async function joinInvite(codeOrLink) {
  const code = String(codeOrLink).trim().replace(/^.*\/invite\//, '');
  const s = await rest.joinInvite(code);
  await afterJoin(s);
}

async function afterJoin(s) {
  if (!state.servers.some((x) => x.id === s.id)) state.servers.push(s);
  await refreshChannels(s.id, true);
  // Channels of a server joined after ready are not followed implicitly: subscribe them.
  updateSubscriptions();
  loadReadStates(s.id);
  navigate(`/channels/${s.id}`);
}

async function acceptInvite(code) {
  if (!state.me) { setTimeout(() => acceptInvite(code), 200); return; }
  try { await joinInvite(code); } catch (e) {
    notify(`Could not join with invite ${code}: ${say(e)}`);
    navigate('/channels/@me', true);
  }
}

/** renameServer renames a server (MANAGE_SERVER) and shows the new name everywhere. */
export async function renameServer(serverId, name) {
  const s = await rest.renameServer(serverId, name);
  state.servers = state.servers.map((x) => (x.id === s.id ? { ...x, name: s.name } : x));
  changed();
  return s;
}

export async function leaveServer(serverId) {
  await rest.leave(serverId);
  state.servers = state.servers.filter((s) => s.id !== serverId);
  delete state.channels[serverId];
  updateSubscriptions();
  navigate('/channels/@me');
}

export function openModal(name, props = {}) { state.modal = { name, ...props }; changed(); }
export function closeModal() { state.modal = null; changed(); }
export function togglePanel(p) { state.panels[p] = !state.panels[p]; changed(); }
