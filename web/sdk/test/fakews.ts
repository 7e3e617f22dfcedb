// A fake WebSocket for gateway tests: records what the client sends and lets
// the test play the server.
export class FakeWS {
  static all: FakeWS[] = [];
  readyState = 0;
  sent: any[] = [];
  closed: { code?: number; reason?: string } | null = null;
  onopen: ((ev: any) => void) | null = null;
  onmessage: ((ev: { data: any }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: any) => void) | null = null;
  constructor(public url: string) { FakeWS.all.push(this); }
  static last() { return FakeWS.all[FakeWS.all.length - 1]; }
  send(data: string) { this.sent.push(JSON.parse(data)); }
  close(code?: number, reason?: string) { this.closed = { code, reason }; this.serverClose(code ?? 1000, reason ?? ''); }
  // server side
  open() { this.readyState = 1; this.onopen?.({}); }
  push(f: any) { this.onmessage?.({ data: JSON.stringify(f) }); }
  serverClose(code: number, reason = '') {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  take(): any[] { const s = this.sent; this.sent = []; return s; }
}
