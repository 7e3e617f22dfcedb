// The SDK from Node (as a bot would use it) against a real guildhall:
// REST, the gateway with subscriptions, sends, typing, acks and a resume.
// Needs the built SDK (npm run build:sdk) and Node's WebSocket
// (Node 22+, or Node 20 with --experimental-websocket).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Guildhall, Proxy, waitFor, watch } from './harness.mjs';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
let gh, sdk;

before(async () => {
  if (!existsSync(join(web, 'sdk', 'dist', 'index.js'))) execFileSync('npm', ['run', 'build:sdk'], { cwd: web, stdio: 'inherit' });
  sdk = await import('../sdk/dist/index.js');
  gh = new Guildhall();
  await gh.start();
});
after(async () => { await gh?.stop(); });

function connect(base, token) {
  const gw = new sdk.Gateway({ url: sdk.gatewayURL(base), token, minBackoffMs: 50, maxBackoffMs: 500, helloTimeoutMs: 2000 });
  const events = [];
  gw.on('message_create', (m) => events.push(['create', m.channel_id, m.content]));
  gw.on('message_update', (m) => events.push(['update', m.channel_id, m.content]));
  gw.on('message_delete', (d) => events.push(['delete', d.channel_id, d.id]));
  gw.on('typing_start', (t, ev) => events.push(['typing', ev.channel_id, t.user_id]));
  gw.on('unread_update', (u) => events.push(['unread', u.channel_id, u.unread_count]));
  gw.connect();
  return { gw, events };
}

test('SDK: REST errors, gateway subscriptions, send, typing, unread counts and ack', { skip: typeof WebSocket === 'undefined' && 'no WebSocket in this Node' }, async () => {
  const anon = new sdk.RestClient({ baseUrl: gh.url });
  const err = await anon.login('nobody', 'wrong password').catch((e) => e);
  assert.ok(err instanceof sdk.ApiError);
  assert.equal(err.code, 'unauthenticated');

  const a = await gh.user('sdka'), b = await gh.user('sdkb');
  const g = await gh.guild(a, 'SDK Test', ['random'], [b]);
  const restA = new sdk.RestClient({ baseUrl: gh.url, token: a.token });
  const { gw, events } = connect(gh.url, b.token);
  await waitFor(() => gw.state === 'ready', 'ready');
  assert.equal(gw.ready.user.id, b.id);
  gw.setSubscriptions({ [g.chans.general.id]: sdk.MESSAGES, [g.chans.random.id]: sdk.UNREAD_COUNT });
  await gw.whenSynced();

  const m = await sdk.sendWithRetry(restA, g.chans.general.id, 'from the sdk', sdk.newNonce());
  await waitFor(() => events.some((e) => e[0] === 'create' && e[2] === 'from the sdk'), 'message_create');
  await restA.editMessage(g.chans.general.id, m.id, 'edited');
  await waitFor(() => events.some((e) => e[0] === 'update' && e[2] === 'edited'), 'message_update');
  await restA.deleteMessage(g.chans.general.id, m.id);
  await waitFor(() => events.some((e) => e[0] === 'delete' && e[2] === m.id), 'message_delete');

  await restA.sendMessage(g.chans.random.id, 'counted, not sent', 'n-1');
  await waitFor(() => events.some((e) => e[0] === 'unread' && e[1] === g.chans.random.id && e[2] === '1'), 'unread_update');
  assert.ok(!events.some((e) => e[2] === 'counted, not sent'), 'no full message on an UNREAD_COUNT channel');

  // b sends through the gateway; a's typing reaches b
  const sent = await gw.sendMessage(g.chans.general.id, 'via gateway', 'g-1');
  assert.equal(sent.content, 'via gateway');
  const again = await gw.sendMessage(g.chans.general.id, 'via gateway', 'g-1');
  assert.equal(again.id, sent.id, 'the same nonce gives the same message');
  const { gw: gwA } = connect(gh.url, a.token);
  await waitFor(() => gwA.state === 'ready', 'a ready');
  await gwA.typing(g.chans.general.id);
  await waitFor(() => events.some((e) => e[0] === 'typing' && e[2] === a.id), 'typing_start');

  // a refused request is a GatewayError with the server's code
  const bad = await gw.sendMessage(g.chans.general.id, '   ').catch((e) => e);
  assert.ok(bad instanceof sdk.GatewayError);
  assert.equal(bad.code, 'invalid_argument');

  // ack: through the gateway when the server keeps read states
  const ack = await gw.ack(g.chans.random.id, (await restA.messages(g.chans.random.id, { limit: 1 }))[0].id).catch((e) => e);
  if (ack instanceof Error) assert.equal(ack.code, 'unavailable'); // read states not enabled in this build
  else assert.equal(String(ack.unread_count ?? 0), '0');
  gw.close();
  gwA.close();
});

test('SDK: a cut connection resumes and replays what it missed', { skip: typeof WebSocket === 'undefined' && 'no WebSocket in this Node' }, async () => {
  const a = await gh.user('sdka'), b = await gh.user('sdkb');
  const g = await gh.guild(a, 'SDK Resume', [], [b]);
  const proxy = new Proxy(gh.port);
  await proxy.start();
  try {
    const { gw, events } = connect(proxy.url, b.token);
    const resumed = [];
    gw.on('resumed', (r) => resumed.push(r.replayed));
    await waitFor(() => gw.state === 'ready', 'ready');
    gw.subscribe([g.chans.general.id]);
    await gw.whenSynced();
    const session = gw.sessionId;
    const watcher = await watch(gh.url, a, g.chans.general.id);
    proxy.cut();
    await waitFor(() => gw.state !== 'ready', 'the drop to be noticed');
    await gh.api('POST', `/channels/${g.chans.general.id}/messages`, a.token, { content: 'missed', nonce: 'x' });
    await watcher.seen('missed'); // fanned out while b is away
    watcher.close();
    proxy.restore();
    await waitFor(() => events.some((e) => e[2] === 'missed'), 'the missed message');
    assert.equal(gw.sessionId, session, 'same session');
    assert.ok(resumed[0] >= 1);
    gw.close();
  } finally {
    await proxy.stop();
  }
});
