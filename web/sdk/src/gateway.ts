// Gateway client (docs/gateway.md): JSON encoding, heartbeats, resume and
// reconnect with backoff, request/reply by ref, and subscription management
// that survives reconnects.
import type { Frame, Event, Ready, Message, MessageDelete, TypingStart, Hello, ReadState, ChannelPosition } from './proto.gen.js';
import * as gen from './proto.gen.js';

export type ConnectionState =
  | 'idle'          // not started
  | 'connecting'    // opening the WebSocket
  | 'identifying'   // sent identify, waiting for ready
  | 'resuming'      // sent resume, waiting for the replay to end
  | 'ready'         // live
  | 'reconnecting'  // lost the connection; waiting to try again
  | 'closed'        // close() was called
  | 'auth_failed';  // the token was refused (close 4004): log in again

export type SubscriptionType = 'SUBSCRIPTION_TYPE_MESSAGES' | 'SUBSCRIPTION_TYPE_UNREAD_COUNT' | 'SUBSCRIPTION_TYPE_UNREAD_STATUS';
export const MESSAGES: SubscriptionType = 'SUBSCRIPTION_TYPE_MESSAGES';
export const UNREAD_COUNT: SubscriptionType = 'SUBSCRIPTION_TYPE_UNREAD_COUNT';
export const UNREAD_STATUS: SubscriptionType = 'SUBSCRIPTION_TYPE_UNREAD_STATUS';

/** GatewayError is an `error` reply to a request, or a request cut off by a disconnect (code "disconnected"). */
export class GatewayError extends Error {
  constructor(public code: string, message: string) { super(message); this.name = 'GatewayError'; }
}

/** The events a Gateway emits, with their arguments. */
export interface GatewayEvents {
  state: [ConnectionState];
  /** A new session: on the first connect, and after a reconnect that could not resume (catch up through REST). */
  ready: [Ready, { reconnect: boolean }];
  /** The old session was resumed; `replayed` dispatches were re-sent. */
  resumed: [{ replayed: number }];
  /** Every dispatch, before its typed event. */
  event: [Event, number];
  message_create: [Message, Event];
  message_update: [Message, Event];
  message_delete: [MessageDelete, Event];
  typing_start: [TypingStart, Event];
  /** The compact state of a channel followed as UNREAD_COUNT or UNREAD_STATUS (not numbered, not replayed: the newest wins). */
  unread_update: [UnreadUpdateBody];
  /** The user read a channel in another session or through REST. */
  read_state_update: [ReadState];
  /** A subscription the server refused (the channel is gone or hidden). */
  subscription_error: [string, GatewayError];
  /** The socket closed: code and reason. */
  close: [number, string];
}

/** UnreadUpdate (gateway.proto); declared here so the SDK builds against older protos too. */
export interface UnreadUpdateBody {
  channel_id?: string; server_id?: string; last_seq?: string; unread_count?: string; mention_count?: string; unread?: boolean; capped?: boolean;
}

export interface WebSocketLike {
  readyState: number;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface GatewayOptions {
  /** ws:// or wss:// URL of /gateway; `?encoding=json` is added. */
  url: string;
  token: string;
  WebSocket?: new (url: string) => WebSocketLike;
  /** Reconnect backoff bounds (default 500 ms to 15 s, with jitter). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Override the protocol feature detection (tests). */
  features?: Partial<Features>;
  /**
   * positions, when given, is asked on every resume for the newest message
   * the client has per channel it follows as MESSAGES, so a session rebuilt
   * on another node replays exactly what is missing.
   */
  positions?: () => ChannelPosition[];
  /** How long to wait from opening the socket to hello before giving up on it (default 10 s). */
  helloTimeoutMs?: number;
  setTimeout?: (fn: () => void, ms: number) => any;
  clearTimeout?: (t: any) => void;
  random?: () => number;
}

/** What the server's protocol offers, read from the generated proto types. */
export interface Features { subscriptionTypes: boolean; ack: boolean; serverSubscriptions: boolean; resumePositions: boolean }
export function protocolFeatures(): Features {
  const sub = (gen as any).SubscribeFields as readonly string[] | undefined ?? [];
  const frame = (gen as any).FrameFields as readonly string[] | undefined ?? [];
  const resume = (gen as any).ResumeFields as readonly string[] | undefined ?? [];
  return { subscriptionTypes: sub.includes('type'), ack: frame.includes('ack'), serverSubscriptions: sub.includes('server_ids'), resumePositions: resume.includes('positions') };
}

const MAX_PER_FRAME = 100;

type Listener<K extends keyof GatewayEvents> = (...args: GatewayEvents[K]) => void;

export class Gateway {
  state: ConnectionState = 'idle';
  sessionId = '';
  lastSeq = 0;
  ready: Ready | null = null;
  heartbeatIntervalMs = 30000;
  readonly features: Features;

  private opts: GatewayOptions;
  private ws: WebSocketLike | null = null;
  private listeners = new Map<string, Set<Function>>();
  private pending = new Map<string, { resolve: (f: Frame) => void; reject: (e: Error) => void }>();
  private nextRef = 1;
  private hbTimer: any = null;
  private reconnectTimer: any = null;
  private helloTimer: any = null;
  private awaitingAck = false;
  private attempts = 0;
  private everReady = false;
  private wanted = new Map<string, SubscriptionType>();
  private active = new Map<string, SubscriptionType>();
  private syncing = false;
  private syncAgain = false;
  private epoch = 0; // bumped by every new connection: replies from an old one must not touch `active`
  private st: (fn: () => void, ms: number) => any;
  private ct: (t: any) => void;

  constructor(opts: GatewayOptions) {
    this.opts = opts;
    this.features = { ...protocolFeatures(), ...opts.features };
    this.st = opts.setTimeout ?? ((fn, ms) => setTimeout(fn, ms));
    this.ct = opts.clearTimeout ?? ((t) => clearTimeout(t));
  }

  on<K extends keyof GatewayEvents>(type: K, fn: Listener<K>): () => void {
    let s = this.listeners.get(type);
    if (!s) this.listeners.set(type, (s = new Set()));
    s.add(fn);
    return () => s!.delete(fn);
  }

  private emit<K extends keyof GatewayEvents>(type: K, ...args: GatewayEvents[K]) {
    for (const fn of this.listeners.get(type) ?? []) {
      try { (fn as any)(...args); } catch (e) { console.error(`guildhall: ${type} listener failed`, e); }
    }
  }

  private setState(s: ConnectionState) {
    if (this.state === s) return;
    this.state = s;
    this.emit('state', s);
  }

  /** connect opens the connection; it reconnects on its own until close(). */
  connect() {
    if (this.state !== 'idle' && this.state !== 'reconnecting' && this.state !== 'closed') return;
    this.open();
  }

  /** close ends the session for good (code 1000: the server drops it). */
  close() {
    this.setState('closed');
    this.ct(this.reconnectTimer);
    this.ct(this.helloTimer);
    this.stopHeartbeat();
    const ws = this.ws;
    this.ws = null;
    this.sessionId = '';
    if (ws) { ws.onclose = null; ws.onmessage = null; try { ws.close(1000, 'bye'); } catch { /* closed */ } }
    this.failPending('the connection was closed');
  }

  /** drop closes the socket without ending the session, as a network loss would (tests, "reconnect now" buttons). */
  drop() {
    try { this.ws?.close(4000, 'client dropped'); } catch { /* closed */ }
  }

  private open() {
    this.setState('connecting');
    const url = new URL(this.opts.url);
    url.searchParams.set('encoding', 'json');
    const WS = this.opts.WebSocket ?? (globalThis as any).WebSocket;
    let ws: WebSocketLike;
    try {
      ws = new WS(url.toString());
    } catch (e) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    // A socket that never says hello (a handshake that hangs, a proxy that
    // swallowed it) is abandoned as if it had closed.
    this.ct(this.helloTimer);
    this.helloTimer = this.st(() => {
      if (this.ws !== ws) return;
      ws.onclose = null; ws.onmessage = null;
      try { ws.close(4000, 'no hello'); } catch { /* never opened */ }
      this.onClose(1006, 'no hello from the server');
    }, this.opts.helloTimeoutMs ?? 10000);
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      let f: Frame;
      try { f = JSON.parse(typeof ev.data === 'string' ? ev.data : String(ev.data)); } catch { return; }
      this.handle(f);
    };
    ws.onclose = (ev) => { if (this.ws === ws) this.onClose(ev.code, ev.reason); };
    ws.onerror = () => { /* onclose follows */ };
  }

  private write(f: Frame) {
    if (!this.ws || this.ws.readyState !== 1) throw new GatewayError('disconnected', 'not connected to the server');
    this.ws.send(JSON.stringify(f));
  }

  private handle(f: Frame) {
    if (f.batch) { for (const inner of f.batch.frames ?? []) this.handle(inner); return; }
    if (f.hello) return this.onHello(f.hello);
    if (f.ready) return this.onReady(f.ready);
    if (f.resumed) {
      this.attempts = 0;
      this.setState('ready');
      this.startHeartbeat();
      this.emit('resumed', { replayed: f.resumed.replayed ?? 0 });
      this.sync();
      return;
    }
    if (f.invalid_session) {
      this.sessionId = '';
      this.lastSeq = 0;
      this.identify();
      return;
    }
    if (f.heartbeat_ack) { this.awaitingAck = false; return; }
    if ((f as any).unread_update) { this.emit('unread_update', (f as any).unread_update); return; }
    if ((f as any).read_state_update) { this.emit('read_state_update', (f as any).read_state_update.read_state ?? {}); return; }
    if (f.reconnect) { this.sessionId = ''; return; } // close 1012 follows; the node keeps no session
    if (f.event) {
      const seq = Number(f.seq ?? 0);
      if (seq && seq <= this.lastSeq) return; // already handled (replay overlap)
      if (seq) this.lastSeq = seq;
      this.dispatch(f.event, seq);
      return;
    }
    if (f.ref && this.pending.has(f.ref)) {
      const p = this.pending.get(f.ref)!;
      this.pending.delete(f.ref);
      if (f.error) p.reject(new GatewayError(f.error.code ?? 'internal', f.error.message ?? 'error'));
      else p.resolve(f);
    }
  }

  private dispatch(ev: Event, seq: number) {
    this.emit('event', ev, seq);
    for (const k of Object.keys(ev)) {
      if (k === 'server_id' || k === 'channel_id') continue;
      this.emit(k as any, (ev as any)[k], ev);
    }
  }

  private onHello(h: Hello) {
    this.ct(this.helloTimer);
    this.heartbeatIntervalMs = h.heartbeat_interval_ms || 30000;
    if (this.sessionId) {
      this.setState('resuming');
      const resume: any = { token: this.opts.token, session_id: this.sessionId, last_seq: String(this.lastSeq), batch: true };
      if (this.features.resumePositions && this.opts.positions) {
        const pos = this.opts.positions().filter((p) => p.channel_id && p.message_id);
        if (pos.length) resume.positions = pos;
      }
      this.write({ resume });
    } else {
      this.identify();
    }
  }

  private identify() {
    this.setState('identifying');
    this.write({ identify: { token: this.opts.token, batch: true } });
  }

  private onReady(r: Ready) {
    const reconnect = this.everReady;
    this.everReady = true;
    this.attempts = 0;
    this.ready = r;
    this.sessionId = r.session_id ?? '';
    this.lastSeq = 0;
    this.epoch++;
    this.active.clear();
    this.setState('ready');
    this.startHeartbeat();
    this.emit('ready', r, { reconnect });
    this.sync();
  }

  private startHeartbeat() {
    this.stopHeartbeat();
    this.awaitingAck = false;
    const beat = () => {
      if (this.awaitingAck) { // no ack for a whole interval: the connection is dead
        this.drop();
        return;
      }
      this.awaitingAck = true;
      try { this.write({ heartbeat: { last_seq: String(this.lastSeq) } }); } catch { /* closing */ }
      this.hbTimer = this.st(beat, this.heartbeatIntervalMs);
    };
    // The first beat is jittered so many clients do not beat in step.
    const r = this.opts.random ?? Math.random;
    this.hbTimer = this.st(beat, Math.floor(this.heartbeatIntervalMs * (0.5 + r() * 0.5)));
  }

  private stopHeartbeat() { this.ct(this.hbTimer); this.hbTimer = null; }

  private failPending(msg: string) {
    for (const p of this.pending.values()) p.reject(new GatewayError('disconnected', msg));
    this.pending.clear();
  }

  private onClose(code: number, reason: string) {
    this.ws = null;
    this.ct(this.helloTimer);
    this.epoch++;
    this.stopHeartbeat();
    this.failPending('the connection to the server was lost');
    this.emit('close', code, reason);
    if (this.state === 'closed') return;
    if (code === 4004) { this.sessionId = ''; this.setState('auth_failed'); return; }
    // Protocol errors and shutdowns end the session: start fresh.
    if (code === 1012 || code === 4001 || code === 4002 || code === 4003 || code === 4005) this.sessionId = '';
    this.scheduleReconnect(code === 1012 ? 0 : undefined);
  }

  private scheduleReconnect(delay?: number) {
    this.setState('reconnecting');
    if (delay === undefined) {
      const min = this.opts.minBackoffMs ?? 500, max = this.opts.maxBackoffMs ?? 15000;
      const base = Math.min(max, min * 2 ** Math.min(this.attempts, 10));
      const r = this.opts.random ?? Math.random;
      delay = Math.floor(base / 2 + r() * base / 2);
    }
    this.attempts++;
    this.ct(this.reconnectTimer);
    this.reconnectTimer = this.st(() => { if (this.state === 'reconnecting') this.open(); }, delay);
  }

  /** request sends a frame with a fresh ref and resolves with the reply (ok, sent); an error reply rejects. */
  request(body: Omit<Frame, 'ref' | 'seq'>): Promise<Frame> {
    const ref = 'r' + this.nextRef++;
    // Before ready (or resumed) the server takes nothing but identify/resume: it would close with 4003.
    if (this.state !== 'ready') return Promise.reject(new GatewayError('disconnected', 'not connected to the server yet'));
    return new Promise<Frame>((resolve, reject) => {
      try { this.write({ ref, ...body }); } catch (e) { reject(e); return; }
      this.pending.set(ref, { resolve, reject });
    });
  }

  /** sendMessage posts through the gateway; retry with the same nonce on a 'disconnected' or 'unavailable' error. */
  async sendMessage(channelId: string, content: string, nonce?: string): Promise<Message> {
    const f = await this.request({ send_message: { channel_id: channelId, content, nonce } });
    return f.sent!.message!;
  }

  /** typing tells the channel the user is typing (send every few seconds while they type). */
  typing(channelId: string): Promise<Frame> { return this.request({ typing: { channel_id: channelId } }); }

  /** ack marks a channel read up to messageId (inclusive) and resolves with the new read state. */
  async ack(channelId: string, messageId: string): Promise<ReadState> {
    if (!this.features.ack) throw new GatewayError('unsupported', 'the server has no ack op');
    const f: any = await this.request({ ack: { channel_id: channelId, message_id: messageId } } as any);
    return f.acked?.read_state ?? {};
  }

  // ---- subscriptions

  /** subscriptions: what this client asked for, channel ID → type. */
  subscriptions(): Map<string, SubscriptionType> { return new Map(this.wanted); }

  /**
   * setSubscriptions replaces the wanted subscriptions. The gateway sends
   * the difference now (or after the next ready), in frames of at most 100
   * channels, and again after every reconnect that could not resume.
   */
  setSubscriptions(want: Map<string, SubscriptionType> | Record<string, SubscriptionType>) {
    this.wanted = want instanceof Map ? new Map(want) : new Map(Object.entries(want));
    this.sync();
  }

  subscribe(channelIds: string[], type: SubscriptionType = MESSAGES) {
    for (const id of channelIds) this.wanted.set(id, type);
    this.sync();
  }

  unsubscribe(channelIds: string[]) {
    for (const id of channelIds) this.wanted.delete(id);
    this.sync();
  }

  /** whenSynced resolves once the server confirmed the current subscriptions. */
  async whenSynced(): Promise<void> {
    while (this.syncing || this.state !== 'ready' || this.diff().sub.size || this.diff().unsub.length) {
      await new Promise((r) => this.st(() => r(undefined), 20));
    }
  }

  private diff() {
    const sub = new Map<SubscriptionType, string[]>();
    const unsub: string[] = [];
    for (const [id, t0] of this.wanted) {
      // Without subscription types in the protocol every channel is
      // subscribed for messages: that is what the server would deliver to a
      // small server's sessions anyway, and the only way to count unreads.
      const t = this.features.subscriptionTypes ? t0 : MESSAGES;
      if (this.active.get(id) !== t) {
        if (!sub.has(t)) sub.set(t, []);
        sub.get(t)!.push(id);
      }
    }
    for (const id of this.active.keys()) if (!this.wanted.has(id)) unsub.push(id);
    return { sub, unsub };
  }

  private async sync() {
    if (this.syncing) { this.syncAgain = true; return; }
    if (this.state !== 'ready') return;
    this.syncing = true;
    try {
      do {
        this.syncAgain = false;
        const { sub, unsub } = this.diff();
        for (let i = 0; i < unsub.length; i += MAX_PER_FRAME) {
          const ids = unsub.slice(i, i + MAX_PER_FRAME);
          const ep = this.epoch;
          await this.request({ unsubscribe: { channel_ids: ids } });
          if (ep !== this.epoch) return;
          for (const id of ids) this.active.delete(id);
        }
        for (const [type, all] of sub) {
          for (let i = 0; i < all.length; i += MAX_PER_FRAME) await this.subscribeChunk(all.slice(i, i + MAX_PER_FRAME), type);
        }
      } while (this.syncAgain && this.state === 'ready');
    } catch (e) {
      // Disconnected: the next ready/resumed syncs again.
    } finally {
      this.syncing = false;
      if (this.syncAgain && this.state === 'ready') { this.syncAgain = false; void this.sync(); }
    }
  }

  private async subscribeChunk(ids: string[], type: SubscriptionType) {
    const body: any = { channel_ids: ids };
    if (this.features.subscriptionTypes) body.type = type;
    const ep = this.epoch;
    try {
      await this.request({ subscribe: body });
      if (ep !== this.epoch) throw new GatewayError('disconnected', 'reconnected meanwhile');
      for (const id of ids) this.active.set(id, type);
    } catch (e) {
      if (!(e instanceof GatewayError) || e.code === 'disconnected' || ep !== this.epoch) throw e;
      // All or nothing: find the refused channels one by one.
      if (ids.length > 1) { for (const id of ids) await this.subscribeChunk([id], type); return; }
      this.wanted.delete(ids[0]);
      this.emit('subscription_error', ids[0], e);
    }
  }
}

/** gatewayURL turns an http(s) base URL (or '' for the page's origin) into the gateway's ws(s) URL. */
export function gatewayURL(base: string): string {
  const b = base || (globalThis as any).location?.origin || 'http://127.0.0.1:8080';
  const u = new URL('/gateway', b);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}
