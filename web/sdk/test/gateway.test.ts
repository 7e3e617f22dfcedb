import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest';
import { Gateway, GatewayError, MESSAGES, UNREAD_COUNT, gatewayURL } from '../src/gateway';
import { FakeWS } from './fakews';

function newGateway(features = {}) {
  return new Gateway({ url: 'ws://h/gateway', token: 'tok', WebSocket: FakeWS as any, random: () => 0.5, features, minBackoffMs: 100 });
}

// connectReady plays hello + ready on a fresh socket and returns it.
function connectReady(gw: Gateway, sessionId = 's1') {
  if (gw.state === 'idle') gw.connect();
  const ws = FakeWS.last();
  ws.open();
  ws.push({ hello: { heartbeat_interval_ms: 1000 } });
  ws.push({ ready: { session_id: sessionId, user: { id: '1', username: 'a' }, servers: [], channels: [] } });
  return ws;
}

// answer replies ok to every request the client sent.
function answerAll(ws: FakeWS) {
  const got = ws.take();
  for (const f of got) if (f.ref) ws.push({ ref: f.ref, ok: {} });
  return got;
}

beforeEach(() => { FakeWS.all = []; vi.useFakeTimers(); });
afterEach(() => { vi.useRealTimers(); });

describe('Gateway', () => {
  it('identifies after hello, with batch, on a JSON connection', () => {
    const gw = newGateway();
    gw.connect();
    const ws = FakeWS.last();
    expect(ws.url).toBe('ws://h/gateway?encoding=json');
    ws.open();
    ws.push({ hello: { heartbeat_interval_ms: 1000 } });
    expect(ws.take()).toEqual([{ identify: { token: 'tok', batch: true } }]);
    expect(gw.state).toBe('identifying');
    const readies: any[] = [];
    gw.on('ready', (r, info) => readies.push([r.session_id, info.reconnect]));
    ws.push({ ready: { session_id: 's1' } });
    expect(gw.state).toBe('ready');
    expect(readies).toEqual([['s1', false]]);
  });

  it('heartbeats with last_seq and drops a connection whose acks stop', async () => {
    const gw = newGateway();
    const ws = connectReady(gw);
    ws.take();
    ws.push({ seq: '1', event: { channel_id: '5', message_create: { id: '9', content: 'x' } } });
    vi.advanceTimersByTime(1000);
    expect(ws.take()).toEqual([{ heartbeat: { last_seq: '1' } }]);
    ws.push({ heartbeat_ack: {} });
    vi.advanceTimersByTime(1000);
    expect(ws.take()).toEqual([{ heartbeat: { last_seq: '1' } }]);
    // no ack this time: the next beat closes the socket and reconnects
    vi.advanceTimersByTime(1000);
    expect(ws.closed).not.toBeNull();
    expect(FakeWS.all.length).toBe(2);
  });

  it('resumes with session and last_seq after a drop, and ignores replayed duplicates', () => {
    const gw = newGateway();
    const ws = connectReady(gw, 'sess-A');
    const got: string[] = [];
    gw.on('message_create', (m) => got.push(m.id!));
    ws.push({ seq: '1', event: { channel_id: '5', message_create: { id: 'm1' } } });
    ws.push({ seq: '2', event: { channel_id: '5', message_create: { id: 'm2' } } });
    ws.serverClose(1006);
    expect(gw.state).toBe('reconnecting');
    vi.advanceTimersByTime(200);
    const ws2 = FakeWS.last();
    expect(ws2).not.toBe(ws);
    ws2.open();
    ws2.push({ hello: { heartbeat_interval_ms: 1000 } });
    expect(ws2.take()).toEqual([{ resume: { token: 'tok', session_id: 'sess-A', last_seq: '2', batch: true } }]);
    expect(gw.state).toBe('resuming');
    const resumed: number[] = [];
    gw.on('resumed', (r) => resumed.push(r.replayed));
    ws2.push({ batch: { frames: [
      { seq: '2', event: { channel_id: '5', message_create: { id: 'm2' } } },
      { seq: '3', event: { channel_id: '5', message_create: { id: 'm3' } } },
    ] } });
    ws2.push({ resumed: { session_id: 'sess-A', replayed: 2 } });
    expect(got).toEqual(['m1', 'm2', 'm3']);
    expect(resumed).toEqual([2]);
    expect(gw.state).toBe('ready');
  });

  it('identifies again on invalid_session and tells the app to catch up', async () => {
    const gw = newGateway();
    const ws = connectReady(gw, 'old');
    gw.subscribe(['10'], MESSAGES);
    answerAll(ws);
    ws.serverClose(4009);
    vi.advanceTimersByTime(200);
    const ws2 = FakeWS.last();
    ws2.open();
    ws2.push({ hello: { heartbeat_interval_ms: 1000 } });
    ws2.take();
    ws2.push({ invalid_session: {} });
    expect(ws2.take()).toEqual([{ identify: { token: 'tok', batch: true } }]);
    const readies: boolean[] = [];
    gw.on('ready', (_r, info) => readies.push(info.reconnect));
    ws2.push({ ready: { session_id: 'new' } });
    await vi.advanceTimersByTimeAsync(0);
    expect(readies).toEqual([true]);
    // a new session has no subscriptions: they are sent again
    expect(ws2.take().map((f) => f.subscribe)).toEqual([{ channel_ids: ['10'], type: MESSAGES }]);
  });

  it('reconnects at once after 1012 without trying to resume', () => {
    const gw = newGateway();
    const ws = connectReady(gw, 'x');
    ws.push({ reconnect: {} });
    ws.serverClose(1012);
    vi.advanceTimersByTime(0);
    const ws2 = FakeWS.last();
    expect(ws2).not.toBe(ws);
    ws2.open();
    ws2.push({ hello: { heartbeat_interval_ms: 1000 } });
    expect(ws2.take()[0].identify).toBeTruthy();
  });

  it('refuses requests before ready instead of breaking the protocol', async () => {
    const gw = newGateway();
    gw.connect();
    const ws = FakeWS.last();
    ws.open();
    ws.push({ hello: { heartbeat_interval_ms: 1000 } });
    ws.take();
    await expect(gw.typing('5')).rejects.toMatchObject({ code: 'disconnected' });
    expect(ws.take()).toEqual([]);
  });

  it('stops on 4004 (token refused)', () => {
    const gw = newGateway();
    const ws = connectReady(gw);
    ws.serverClose(4004);
    expect(gw.state).toBe('auth_failed');
    vi.advanceTimersByTime(60000);
    expect(FakeWS.all.length).toBe(1);
  });

  it('matches replies by ref and rejects on error and on disconnect', async () => {
    const gw = newGateway();
    const ws = connectReady(gw);
    ws.take();
    const p1 = gw.sendMessage('5', 'hi', 'n1');
    const p2 = gw.typing('5');
    const [f1, f2] = ws.take();
    expect(f1.send_message).toEqual({ channel_id: '5', content: 'hi', nonce: 'n1' });
    ws.push({ ref: f2.ref, error: { code: 'forbidden', message: 'missing permission SEND_MESSAGES' } });
    ws.push({ ref: f1.ref, sent: { message: { id: '77', content: 'hi' } } });
    expect((await p1).id).toBe('77');
    await expect(p2).rejects.toMatchObject({ code: 'forbidden', message: 'missing permission SEND_MESSAGES' });
    const p3 = gw.typing('5');
    ws.serverClose(1006);
    await expect(p3).rejects.toBeInstanceOf(GatewayError);
    await expect(p3).rejects.toMatchObject({ code: 'disconnected' });
  });

  it('sends subscription types only when the protocol has them', () => {
    const gw = newGateway({ subscriptionTypes: true });
    const ws = connectReady(gw);
    ws.take();
    gw.setSubscriptions({ a: MESSAGES, b: UNREAD_COUNT, c: UNREAD_COUNT });
    const sent = ws.take();
    expect(sent[0].subscribe).toEqual({ channel_ids: ['a'], type: MESSAGES });

    const gw2 = newGateway({ subscriptionTypes: false });
    const ws2 = connectReady(gw2);
    ws2.take();
    gw2.setSubscriptions({ a: MESSAGES, b: UNREAD_COUNT });
    // without types, counts can only come from messages: both are asked for, without a type field
    expect(ws2.take()).toEqual([expect.objectContaining({ subscribe: { channel_ids: ['a', 'b'] } })]);
  });

  it('switches the open channel between MESSAGES and UNREAD_COUNT', async () => {
    const gw = newGateway({ subscriptionTypes: true });
    const ws = connectReady(gw);
    ws.take();
    gw.setSubscriptions({ a: MESSAGES, b: UNREAD_COUNT });
    for (let i = 0; i < 2; i++) { await vi.advanceTimersByTimeAsync(0); answerAll(ws); }
    await vi.advanceTimersByTimeAsync(0);
    gw.setSubscriptions({ a: UNREAD_COUNT, b: MESSAGES });
    const sent: any[] = [];
    for (let i = 0; i < 3; i++) { await vi.advanceTimersByTimeAsync(0); sent.push(...answerAll(ws)); }
    expect(sent.map((f) => f.subscribe)).toEqual(expect.arrayContaining([
      { channel_ids: ['a'], type: UNREAD_COUNT }, { channel_ids: ['b'], type: MESSAGES }]));
    expect(sent.some((f) => f.unsubscribe)).toBe(false);
  });

  it('splits subscriptions into frames of 100 and isolates a refused channel', async () => {
    const gw = newGateway({ subscriptionTypes: false });
    const ws = connectReady(gw);
    ws.take();
    const ids = Array.from({ length: 150 }, (_, i) => String(1000 + i));
    const refused: string[] = [];
    gw.on('subscription_error', (id) => refused.push(id));
    gw.subscribe(ids);
    const first = ws.take();
    expect(first[0].subscribe.channel_ids.length).toBe(100);
    ws.push({ ref: first[0].ref, ok: {} });
    await vi.advanceTimersByTimeAsync(0);
    const second = ws.take();
    expect(second[0].subscribe.channel_ids.length).toBe(50);
    // all or nothing: the client retries one by one to find the refused one
    ws.push({ ref: second[0].ref, error: { code: 'not_found', message: 'unknown channel' } });
    for (let i = 0; i < 60; i++) {
      await vi.advanceTimersByTimeAsync(0);
      for (const f of ws.take()) {
        if (f.subscribe.channel_ids[0] === '1120') ws.push({ ref: f.ref, error: { code: 'not_found', message: 'unknown channel' } });
        else ws.push({ ref: f.ref, ok: {} });
      }
    }
    expect(refused).toEqual(['1120']);
    expect(gw.subscriptions().has('1120')).toBe(false);
    expect(gw.subscriptions().size).toBe(149);
  });

  it('emits unread and read-state notices and acks by request', async () => {
    const gw = newGateway({ ack: true });
    const ws = connectReady(gw);
    ws.take();
    const seen: any[] = [];
    gw.on('unread_update', (u) => seen.push(['unread', u.channel_id, u.unread_count, u.mention_count]));
    gw.on('read_state_update', (r) => seen.push(['read', r.channel_id, r.unread_count]));
    ws.push({ unread_update: { channel_id: '7', server_id: '1', last_seq: '9', unread_count: '3', mention_count: '1', unread: true } });
    ws.push({ read_state_update: { read_state: { channel_id: '7', last_read_seq: '9' } } });
    expect(seen).toEqual([['unread', '7', '3', '1'], ['read', '7', undefined]]);
    expect(gw.lastSeq).toBe(0); // notices are not numbered
    const p = gw.ack('7', '99');
    const [f] = ws.take();
    expect(f.ack).toEqual({ channel_id: '7', message_id: '99' });
    ws.push({ ref: f.ref, acked: { read_state: { channel_id: '7', last_read_id: '99' } } });
    expect((await p).last_read_id).toBe('99');
  });

  it('sends channel positions on resume when the protocol has them', () => {
    const gw = new Gateway({ url: 'ws://h/gateway', token: 'tok', WebSocket: FakeWS as any, random: () => 0.5, minBackoffMs: 100,
      features: { resumePositions: true }, positions: () => [{ channel_id: '5', message_id: '42' }] });
    const ws = connectReady(gw, 'S');
    ws.serverClose(1006);
    vi.advanceTimersByTime(200);
    const ws2 = FakeWS.last();
    ws2.open();
    ws2.push({ hello: { heartbeat_interval_ms: 1000 } });
    expect(ws2.take()[0].resume).toEqual({ token: 'tok', session_id: 'S', last_seq: '0', batch: true, positions: [{ channel_id: '5', message_id: '42' }] });
  });

  it('builds the gateway URL from an http base', () => {
    expect(gatewayURL('http://127.0.0.1:8080')).toBe('ws://127.0.0.1:8080/gateway');
    expect(gatewayURL('https://chat.example.com/')).toBe('wss://chat.example.com/gateway');
  });
});

describe('Gateway hello timeout', () => {
  beforeEach(() => { FakeWS.all = []; vi.useFakeTimers(); });
  afterEach(() => { vi.useRealTimers(); });
  it('abandons a socket that never says hello and tries again', () => {
    const gw = new Gateway({ url: 'ws://h/gateway', token: 't', WebSocket: FakeWS as any, random: () => 0.5, minBackoffMs: 100, helloTimeoutMs: 1000 });
    gw.connect();
    FakeWS.last().open();
    vi.advanceTimersByTime(999);
    expect(FakeWS.all.length).toBe(1);
    vi.advanceTimersByTime(1);
    expect(gw.state).toBe('reconnecting');
    vi.advanceTimersByTime(200);
    expect(FakeWS.all.length).toBe(2);
  });
});
