// Test helpers: a fake daemon that checks every event's signature independently (with
// node:crypto, not the worker's sign.js), a fake Baileys socket factory, signed command
// calls, and an in-process worker. Everything waits on events with a deadline; nothing
// sleeps and hopes.
import { EventEmitter } from 'node:events';
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../src/config.js';
import { makeLogger } from '../src/log.js';
import { startWorker } from '../src/worker.js';

export const SECRET = 'f'.repeat(8) + '0123456789abcdef'.repeat(3) + 'e'.repeat(8);
export const WORKER_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
export const MAIN = path.join(WORKER_DIR, 'src', 'main.js');

export function hmacHex(key, text) {
  return createHmac('sha256', key).update(text).digest('hex');
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function tmpDir(prefix = 'bw-test-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// Resolves when pred() is truthy (checked on every notify() and every 25 ms), rejects
// after timeoutMs with what.
export function until(pred, { timeout = 5000, what = 'condition' } = {}) {
  return new Promise((resolve, reject) => {
    const end = Date.now() + timeout;
    const tick = () => {
      let v;
      try {
        v = pred();
      } catch (e) {
        reject(e);
        return;
      }
      if (v) return resolve(v);
      if (Date.now() > end) return reject(new Error(`timed out after ${timeout} ms waiting for ${what}`));
      setTimeout(tick, 25);
    };
    tick();
  });
}

// A daemon's POST /webhook: verifies X-Timestamp/X-Signature with the key, keeps the
// events in order. `respond` can be replaced to answer with other statuses.
export class FakeDaemon {
  constructor(secret = SECRET) {
    this.secret = secret;
    this.events = [];
    this.rejected = [];
    this.requests = 0;
    this.respond = () => 200;
    this.emitter = new EventEmitter();
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        this.requests++;
        const raw = Buffer.concat(chunks).toString('utf8');
        const ts = req.headers['x-timestamp'];
        const sig = req.headers['x-signature'];
        const want = `sha256=${hmacHex(this.secret, `${ts}.${raw}`)}`;
        const skew = Math.abs(Math.floor(Date.now() / 1000) - Number(ts));
        if (sig !== want || !(skew <= 300) || req.headers['content-type'] !== 'application/json') {
          this.rejected.push({ raw, ts, sig });
          res.writeHead(401, { 'Content-Type': 'application/json' });
          res.end('{"error":{"code":"BAD_SIGNATURE"}}');
          return;
        }
        let ev;
        try {
          ev = JSON.parse(raw);
        } catch {
          res.writeHead(400);
          res.end('{}');
          return;
        }
        const status = this.respond(ev);
        if (status === 200) {
          this.events.push(ev);
          this.emitter.emit('event', ev);
        }
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(status === 200 ? '{"ok":true,"ignored":false}' : '{"error":{"code":"X"}}');
      });
    });
  }

  async start() {
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${this.server.address().port}/webhook`;
    return this;
  }

  stop() {
    this.server.closeAllConnections?.();
    return new Promise((r) => this.server.close(() => r()));
  }

  of(type) {
    return this.events.filter((e) => e.type === type);
  }

  // The first event of type (after `after` events of that type) matching pred.
  wait(type, pred = () => true, { timeout = 5000, after = 0 } = {}) {
    return until(() => this.of(type).slice(after).find((e) => pred(e.data, e)), { timeout, what: `${type} event` });
  }
}

// A stand-in for Baileys' makeWASocket. Each call makes a FakeSocket; the test drives it.
export class FakeSocket {
  constructor(config, opts = {}) {
    this.config = config;
    this.auth = config.auth;
    this.ev = new EventEmitter();
    this.user = undefined;
    this.calls = { sendMessage: [], presence: [], subscribe: [], pairing: [], onWhatsApp: [], logout: 0, end: 0 };
    this.opts = opts;
    this.lid = new Map();
    this.signalRepository = { lidMapping: { getPNForLID: async (lid) => this.lid.get(lid) ?? null } };
    this.ended = false;
  }

  update(u) {
    this.ev.emit('connection.update', u);
  }

  qr(text = '2@fakeqr,noise,ident,adv') {
    this.update({ qr: text });
  }

  // "the user scanned": links (as pair-success would) and opens
  open({ phone = '972501234567', name = 'Test Account' } = {}) {
    this.auth.creds.me = { id: `${phone}:7@s.whatsapp.net`, name };
    this.auth.creds.account = { details: Buffer.from('x') };
    this.user = { id: `${phone}:7@s.whatsapp.net`, name };
    this.ev.emit('creds.update', { me: this.auth.creds.me });
    this.update({ connection: 'open' });
  }

  close(statusCode, message = 'closed') {
    const error = statusCode ? Object.assign(new Error(message), { output: { statusCode } }) : undefined;
    this.ended = true;
    this.update({ connection: 'close', lastDisconnect: { error, date: new Date() } });
  }

  async sendMessage(jid, content, options = {}) {
    const call = { jid, content, options, at: Date.now() };
    this.calls.sendMessage.push(call);
    if (this.opts.sendMessage) return this.opts.sendMessage(call, this);
    return { key: { id: options.messageId ?? 'RANDOM', remoteJid: jid, fromMe: true }, message: { conversation: content.text } };
  }

  async sendPresenceUpdate(type, jid) {
    this.calls.presence.push({ type, jid, at: Date.now() });
  }

  async presenceSubscribe(jid) {
    this.calls.subscribe.push(jid);
  }

  async requestPairingCode(phone) {
    this.calls.pairing.push(phone);
    if (this.opts.requestPairingCode) return this.opts.requestPairingCode(phone);
    return 'ABCD1234';
  }

  async onWhatsApp(jid) {
    this.calls.onWhatsApp.push(jid);
    if (this.opts.onWhatsApp) return this.opts.onWhatsApp(jid);
    return [{ jid, exists: true }];
  }

  async logout() {
    this.calls.logout++;
    this.close(401, 'Intentional Logout');
  }

  end(error) {
    this.calls.end++;
    if (this.ended) return;
    this.ended = true;
    this.update({ connection: 'close', lastDisconnect: { error, date: new Date() } });
  }
}

export function fakeFactory(opts = {}) {
  const sockets = [];
  const make = (config) => {
    const s = new FakeSocket(config, typeof opts === 'function' ? opts(sockets.length) : opts);
    sockets.push(s);
    return s;
  };
  return { make, sockets, last: () => sockets[sockets.length - 1] };
}

export function baseEnv(daemon, authDir, port, extra = {}) {
  return {
    SESSION_ID: 'worker_7',
    WEBHOOK_URL: daemon.url,
    WEBHOOK_SECRET: SECRET,
    AUTH_DIR: authDir,
    WORKER_LISTEN: `127.0.0.1:${port}`,
    LOGIN_METHOD: 'qr',
    PAIRING_PHONE: '',
    SWITCHBOARD_INSTANCE: 'test-instance',
    PING_INTERVAL_MS: '60000',
    KEEPALIVE_PRESENCE_MS: '0',
    KEEPALIVE_SELF_MESSAGE_MS: '0',
    RECONNECT_MIN_MS: '100',
    RECONNECT_MAX_MS: '400',
    SHUTDOWN_FLUSH_MS: '500',
    ...extra,
  };
}

// Collects log lines (JSON text) in memory.
export function memoryLog() {
  const lines = [];
  const dest = new Writable({
    write(chunk, enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  dest.lines = lines;
  return dest;
}

// An in-process worker with a fake socket factory and a fake daemon.
export async function startTestWorker(t, { env = {}, factory = fakeFactory(), daemon, authDir } = {}) {
  const d = daemon ?? (await new FakeDaemon().start());
  const dir = authDir ?? tmpDir();
  const port = await freePort();
  const config = loadConfig(baseEnv(d, dir, port, env));
  const logDest = memoryLog();
  const log = makeLogger({ level: 'debug', secrets: [config.secret], sessionId: config.sessionId, destination: logDest });
  const w = await startWorker(config, { makeSocket: factory.make, log, installGlobalDispatcher: false });
  const ctx = { w, d, dir, port, factory, config, logLines: logDest.lines, base: `http://127.0.0.1:${port}` };
  ctx.call = (method, p, body, o) => call(ctx.base, method, p, body, o);
  ctx.stop = async () => {
    await w.stop('test');
  };
  t.after(async () => {
    await w.stop('test');
    if (!daemon) await d.stop();
    if (!authDir) fs.rmSync(dir, { recursive: true, force: true });
  });
  return ctx;
}

// A signed command, signed independently of the worker's code. Returns {status, json, headers}.
export async function call(base, method, p, body, { secret = SECRET, ts, sig, raw, headers = {} } = {}) {
  const text = raw ?? (method === 'GET' || body === undefined ? '' : JSON.stringify(body));
  const stamp = String(ts ?? Math.floor(Date.now() / 1000));
  const h = {
    'Content-Type': 'application/json',
    'X-Timestamp': stamp,
    'X-Signature': sig ?? `sha256=${hmacHex(secret, `${stamp}.${text}`)}`,
    ...headers,
  };
  const res = await fetch(`${base}${p}`, { method, headers: h, body: method === 'GET' ? undefined : text, signal: AbortSignal.timeout(10000) });
  const t = await res.text();
  let json = null;
  try {
    json = JSON.parse(t);
  } catch {}
  return { status: res.status, json, text: t, headers: res.headers };
}
