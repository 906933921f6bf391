// Worker -> daemon events: POST WEBHOOK_URL {sessionId, type, data, timestamp}, signed.
//
// One event on the wire at a time, in the order they were posted. A connection error,
// a timeout, 5xx, 408 or 429 keeps the event at the head and retries it with back-off
// (the daemon may be restarting); any other answer ends it: 2xx delivered, other 4xx
// refused and dropped with a log line (sending it again would not help). The queue is
// bounded: when full, the oldest PING goes first (a later PING says the same), else the
// oldest event that is not on the wire. The body is signed again at every attempt, so a
// retry after a long outage carries a fresh timestamp.
import http from 'node:http';
import https from 'node:https';
import { signHeaders } from './sign.js';

export const EVENT_MAX_BYTES = 64 * 1024;
const RESPONSE_MAX = 64 * 1024;
const EXCERPT_MAX = 200;

// Cuts a string to at most maxBytes of UTF-8 without splitting a character.
export function cutUtf8(s, maxBytes) {
  if (Buffer.byteLength(s) <= maxBytes) return s;
  let out = Buffer.from(s).subarray(0, maxBytes).toString('utf8');
  // a cut multi-byte sequence decodes to U+FFFD at the end: drop it
  while (out.endsWith('\uFFFD') && Buffer.byteLength(out) > 0) out = out.slice(0, -1);
  return out;
}

export class EventQueue {
  constructor({ url, sessionId, secret, log, max = 1000, timeoutMs = 10000, backoffMinMs = 250, backoffMaxMs = 5000, maxBytes = EVENT_MAX_BYTES }) {
    this.url = url instanceof URL ? url : new URL(url);
    this.sessionId = sessionId;
    this.secret = secret;
    this.log = log;
    this.max = max;
    this.timeoutMs = timeoutMs;
    this.backoffMinMs = backoffMinMs;
    this.backoffMaxMs = backoffMaxMs;
    this.maxBytes = maxBytes;
    this.items = [];
    this.inflight = false;
    this.backoffMs = 0;
    this.timer = null;
    this.req = null;
    this.closed = false;
    this.waiters = [];
    this.stats = { posted: 0, delivered: 0, refused: 0, dropped: 0, retries: 0 };
    const mod = this.url.protocol === 'https:' ? https : http;
    this.mod = mod;
    // one kept-alive connection: events are sent one at a time anyway
    this.agent = new mod.Agent({ keepAlive: true, maxSockets: 1, keepAliveMsecs: 10000 });
    this.target = `${this.url.protocol}//${this.url.host}${this.url.pathname}`; // no query in logs
  }

  get length() {
    return this.items.length;
  }

  // Queues an event. The envelope's timestamp is now (when it happened), not when it
  // is finally delivered.
  post(type, data) {
    if (this.closed) return false;
    let body = JSON.stringify({ sessionId: this.sessionId, type, data, timestamp: Date.now() });
    if (Buffer.byteLength(body) > this.maxBytes) {
      body = this.shrink(type, data);
      if (!body) {
        this.log.error({ type, bytes: Buffer.byteLength(JSON.stringify(data)) }, 'event larger than the daemon accepts, dropped');
        this.stats.dropped++;
        return false;
      }
    }
    if (this.items.length >= this.max) this.dropOne();
    this.items.push({ type, body });
    this.stats.posted++;
    this.wake();
    return true;
  }

  // A text too long for one event is cut (at a character boundary) and marked.
  shrink(type, data) {
    if (!data || typeof data.text !== 'string') return null;
    const envelope = (text) => JSON.stringify({ sessionId: this.sessionId, type, data: { ...data, text, truncated: true }, timestamp: Date.now() });
    let keep = this.maxBytes - Buffer.byteLength(envelope('')) - 16;
    for (let i = 0; i < 8 && keep > 0; i++) {
      const body = envelope(cutUtf8(data.text, keep));
      const over = Buffer.byteLength(body) - this.maxBytes;
      if (over <= 0) return body;
      keep -= over; // JSON escaping made it longer than its UTF-8: cut that much more
    }
    return null;
  }

  dropOne() {
    const start = this.inflight ? 1 : 0;
    let victim = start;
    for (let i = start; i < this.items.length; i++) {
      if (this.items[i].type === 'PING') {
        victim = i;
        break;
      }
    }
    const [gone] = this.items.splice(victim, 1);
    this.stats.dropped++;
    this.log.warn({ type: gone.type, queued: this.items.length }, 'event queue full, dropped an event');
  }

  wake() {
    if (this.closed || this.inflight || this.timer || this.items.length === 0) return;
    this.schedule(0);
  }

  schedule(ms) {
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.inflight && this.items.length && !this.closed) this.sendHead();
    }, ms);
  }

  backoff(why) {
    this.backoffMs = this.backoffMs ? Math.min(this.backoffMs * 2, this.backoffMaxMs) : this.backoffMinMs;
    this.stats.retries++;
    this.log.warn({ type: this.items[0]?.type, ...why, retryMs: this.backoffMs }, 'event not delivered, will retry');
    this.schedule(this.backoffMs);
  }

  sendHead() {
    const it = this.items[0];
    this.inflight = true;
    const headers = {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(it.body),
      'User-Agent': 'switchboard-baileys-worker',
      ...signHeaders(this.secret, it.body),
    };
    let settled = false;
    const done = (status, excerpt, error) => {
      if (settled) return;
      settled = true;
      this.req = null;
      this.inflight = false;
      this.onAnswer(it, status, excerpt, error);
    };
    let req;
    try {
      req = this.mod.request(this.url, { method: 'POST', headers, agent: this.agent, timeout: this.timeoutMs }, (res) => {
        const chunks = [];
        let n = 0;
        res.on('data', (c) => {
          if (n < RESPONSE_MAX) chunks.push(c);
          n += c.length;
        });
        res.on('end', () => done(res.statusCode, Buffer.concat(chunks).toString('utf8', 0, Math.min(n, EXCERPT_MAX))));
        res.on('error', (e) => done(0, '', e));
      });
    } catch (e) {
      done(0, '', e);
      return;
    }
    this.req = req;
    req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
    req.on('error', (e) => done(0, '', e));
    req.end(it.body);
  }

  onAnswer(it, status, excerpt, error) {
    if (this.closed) return;
    if (this.items[0] !== it) {
      // the head was dropped meanwhile (cannot happen: the head on the wire is never dropped)
      this.wake();
      return;
    }
    if (status === 0 || status >= 500 || status === 408 || status === 429) {
      this.backoff(status ? { status } : { error: error?.code || error?.message || 'connection' });
      return;
    }
    this.items.shift();
    if (status >= 200 && status < 300) {
      this.stats.delivered++;
      if (it.type !== 'PING' || this.backoffMs) this.log.info({ type: it.type, status }, 'event delivered');
    } else {
      this.stats.refused++;
      this.log.warn({ type: it.type, status, body: excerpt.replace(/[\x00-\x1f\x7f]/g, '?') }, 'event refused by the daemon, dropped');
    }
    this.backoffMs = 0;
    if (this.items.length === 0) this.notifyEmpty();
    this.wake();
  }

  notifyEmpty() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f(true);
  }

  // Resolves true once everything queued is delivered (or refused), false after timeoutMs.
  drain(timeoutMs) {
    if (this.items.length === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((f) => f !== f2);
        resolve(false);
      }, timeoutMs);
      const f2 = (v) => {
        clearTimeout(t);
        resolve(v);
      };
      this.waiters.push(f2);
    });
  }

  close() {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.req) this.req.destroy();
    this.agent.destroy();
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f(this.items.length === 0);
  }
}
