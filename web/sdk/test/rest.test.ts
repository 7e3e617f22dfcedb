import { describe, it, expect } from 'vitest';
import { RestClient, ApiError, sendWithRetry, newNonce } from '../src/rest';
import { has, withBit, names } from '../src/permissions';
import { cmpId, idTime } from '../src/snowflake';

function fakeFetch(replies: Array<{ status: number; body?: any } | Error>) {
  const calls: { url: string; init: any }[] = [];
  const f = async (url: any, init: any) => {
    calls.push({ url: String(url), init });
    const r = replies.shift()!;
    if (r instanceof Error) throw r;
    return new Response(r.body === undefined ? null : JSON.stringify(r.body), { status: r.status });
  };
  return { f: f as typeof fetch, calls };
}

describe('RestClient', () => {
  it('sends the token, JSON body, reason header and query', async () => {
    const { f, calls } = fakeFetch([{ status: 200, body: [] }, { status: 204 }]);
    const rest = new RestClient({ baseUrl: 'http://h/', token: 'gh_x', fetch: f });
    await rest.members('7', { q: 'al', limit: 2, after: undefined });
    expect(calls[0].url).toBe('http://h/api/v1/servers/7/members?q=al&limit=2');
    expect(calls[0].init.headers.Authorization).toBe('Bearer gh_x');
    await rest.kick('7', '9', { reason: 'spam' });
    expect(calls[1].init.method).toBe('DELETE');
    expect(calls[1].init.headers['X-Audit-Log-Reason']).toBe('spam');
  });

  it('percent-encodes reasons so any text fits a header', async () => {
    const { f, calls } = fakeFetch([{ status: 204 }]);
    const rest = new RestClient({ baseUrl: 'http://h', token: 'gh_x', fetch: f });
    await rest.kick('7', '9', { reason: 'spam in #général' });
    expect(calls[0].init.headers['X-Audit-Log-Reason']).toBe('spam%20in%20%23g%C3%A9n%C3%A9ral');
  });

  it('renames a server with PATCH /servers/{id}, the name in the body and the reason in the header', async () => {
    const { f, calls } = fakeFetch([
      { status: 200, body: { id: '7', name: 'Guild Hall', owner_id: '1' } },
      { status: 403, body: { code: 'forbidden', message: 'missing permission MANAGE_SERVER' } },
    ]);
    const rest = new RestClient({ baseUrl: 'http://h', token: 'gh_x', fetch: f });
    const srv = await rest.renameServer('7', 'Guild Hall', { reason: 'rebrand' });
    expect(srv).toEqual({ id: '7', name: 'Guild Hall', owner_id: '1' });
    expect(calls[0].url).toBe('http://h/api/v1/servers/7');
    expect(calls[0].init.method).toBe('PATCH');
    expect(JSON.parse(calls[0].init.body)).toEqual({ name: 'Guild Hall' });
    expect(calls[0].init.headers['Content-Type']).toBe('application/json');
    expect(calls[0].init.headers['X-Audit-Log-Reason']).toBe('rebrand');
    const e = await rest.renameServer('7', 'x').catch((e) => e);
    expect(e).toMatchObject({ status: 403, code: 'forbidden', message: 'missing permission MANAGE_SERVER' });
    expect(calls[1].init.headers['X-Audit-Log-Reason']).toBeUndefined();
  });

  it('turns error bodies into ApiError with code and message', async () => {
    const { f } = fakeFetch([{ status: 403, body: { code: 'forbidden', message: 'missing permission MANAGE_ROLES' } }]);
    const rest = new RestClient({ fetch: f });
    const e = await rest.roles('1').catch((e) => e);
    expect(e).toBeInstanceOf(ApiError);
    expect(e).toMatchObject({ status: 403, code: 'forbidden', message: 'missing permission MANAGE_ROLES', retryable: false });
  });

  it('reports network failures in words', async () => {
    const { f } = fakeFetch([new TypeError('Failed to fetch')]);
    const e = await new RestClient({ fetch: f }).me().catch((e) => e);
    expect(e).toMatchObject({ status: 0, code: 'network', retryable: true });
    expect(e.message).toMatch(/cannot reach the server/);
  });

  it('sendWithRetry retries a 503 and a network error with the same nonce, and not a 400', async () => {
    const { f, calls } = fakeFetch([
      new TypeError('down'),
      { status: 503, body: { code: 'unavailable', message: 'message service overloaded, retry' } },
      { status: 201, body: { id: '5', content: 'hi', nonce: 'n-1' } },
    ]);
    const rest = new RestClient({ fetch: f });
    const m = await sendWithRetry(rest, '3', 'hi', 'n-1', { sleep: async () => {} });
    expect(m.id).toBe('5');
    expect(calls.map((c) => JSON.parse(c.init.body).nonce)).toEqual(['n-1', 'n-1', 'n-1']);

    const bad = fakeFetch([{ status: 400, body: { code: 'invalid_argument', message: 'content must not be empty' } }]);
    const e = await sendWithRetry(new RestClient({ fetch: bad.f }), '3', ' ', 'n-2', { sleep: async () => {} }).catch((e) => e);
    expect(e.code).toBe('invalid_argument');
    expect(bad.calls.length).toBe(1);
  });

  it('makes nonces within 64 bytes', () => {
    const n = newNonce();
    expect(n.length).toBeLessThanOrEqual(64);
    expect(newNonce()).not.toBe(n);
  });
});

describe('permissions and IDs', () => {
  it('reads and sets bits in decimal strings', () => {
    expect(names('67226689')).toEqual(['CREATE_INVITE', 'ADD_REACTIONS', 'VIEW_CHANNEL', 'SEND_MESSAGES', 'EMBED_LINKS', 'ATTACH_FILES', 'READ_MESSAGE_HISTORY', 'CHANGE_NICKNAME']);
    expect(has('6', 'KICK_MEMBERS')).toBe(true);
    expect(withBit('6', 'MANAGE_ROLES', true)).toBe('268435462');
    expect(withBit('6', 'KICK_MEMBERS', false)).toBe('4');
  });
  it('orders snowflakes numerically and reads their time', () => {
    expect(cmpId('99', '100')).toBeLessThan(0);
    expect(cmpId('118353554517250049', '118353554517250048')).toBeGreaterThan(0);
    expect(idTime(String(1000n << 22n)).toISOString()).toBe('2026-01-01T00:00:01.000Z');
  });
});
