// Test harness: starts the real daemon on a free loopback port with a temp DATA_DIR and
// real simulator workers, and talks to it over HTTP. Nothing here is faked but the
// WhatsApp side, which the simulator stands in for.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startFakeTwilio } from '../fakes/twilio.mjs';

export const BUILD = path.resolve(process.env.SB_BUILD || 'build');
export const DAEMON = path.join(BUILD, 'switchboard');
export const SIM = path.join(BUILD, 'sim-worker');
export const MASTER = 'test-master-secret-0123456789abcdef';
export const ADMIN_KEY = 'test-admin-key-0123456789abcdef';

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

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn until it returns a truthy value; fails with the last value after timeoutMs.
export async function waitFor(fn, { timeout = 10000, interval = 50, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}; last=${JSON.stringify(last)}`);
    await sleep(interval);
  }
}

export function workerKey(sessionId, master = MASTER) {
  return createHmac('sha256', master).update(sessionId).digest('hex');
}

export function sign(key, body, ts = Math.floor(Date.now() / 1000)) {
  const sig = createHmac('sha256', key).update(`${ts}.${body}`).digest('hex');
  return { 'X-Timestamp': String(ts), 'X-Signature': `sha256=${sig}` };
}

export class Daemon {
  constructor(opts = {}) {
    this.opts = opts;
    this.dir = opts.dir || fs.mkdtempSync(path.join(os.tmpdir(), 'sb-it-'));
    this.logPath = path.join(this.dir, 'daemon.log');
  }

  env() {
    const o = this.opts;
    return {
      PATH: process.env.PATH,
      HOME: this.dir,
      ENV_FILE: path.join(this.dir, 'no.env'),
      DATA_DIR: path.join(this.dir, 'data'),
      ORCH_PORT: String(this.port),
      API_KEY: ADMIN_KEY,
      WEBHOOK_SECRET: MASTER,
      WORKER_COMMAND: `${SIM} --ping-ms ${o.pingMs ?? 200} --qr-ms ${o.qrMs ?? 500}`,
      PROVISIONING_INTERVAL_MS: '0',
      WATCHDOG_INTERVAL_MS: '200',
      PING_TIMEOUT_MS: '5000',
      WORKER_START_GRACE_MS: '300',
      WORKER_HEALTH_TIMEOUT_MS: '1000',
      WORKER_STOP_GRACE_MS: '2000',
      RESTART_BACKOFF_MIN_MS: '100',
      RESTART_BACKOFF_MAX_MS: '2000',
      MONITOR_INTERVAL_MS: '1000',
      PAIR_WAIT_MS: '5000',
      LOG_LEVEL: 'debug',
      ...(o.env || {}),
    };
  }

  async start() {
    if (!this.port) this.port = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    const log = fs.openSync(this.logPath, 'a');
    this.proc = spawn(this.opts.bin || DAEMON, [], { env: this.env(), cwd: this.dir, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    await waitFor(async () => {
      if (this.proc.exitCode !== null) throw new Error(`daemon exited at start:\n${this.log()}`);
      try {
        return (await fetch(`${this.url}/health`)).status === 200;
      } catch {
        return false;
      }
    }, { what: 'daemon /health', timeout: 15000 });
    return this;
  }

  log() {
    try { return fs.readFileSync(this.logPath, 'utf8'); } catch { return ''; }
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return this.proc?.exitCode;
    this.proc.kill('SIGTERM');
    const r = await this.exited;
    return r.code;
  }

  async kill9() {
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  // Removes the temp dir after making sure no worker of this daemon is left running.
  async cleanup() {
    await this.stop();
    for (const pid of workerPids(this.instanceId())) {
      try { process.kill(-pid, 'SIGKILL'); } catch {}
    }
    // a sanitizer build reports here: any report fails the test that owned the daemon
    const logs = [this.log()];
    const wdir = path.join(this.dir, 'data', 'logs');
    if (fs.existsSync(wdir)) for (const f of fs.readdirSync(wdir)) logs.push(fs.readFileSync(path.join(wdir, f), 'utf8'));
    const bad = logs.join('\n').match(/^.*(ERROR: (Address|Leak)Sanitizer|runtime error:).*$/m);
    if (!process.env.SB_KEEP && !bad) fs.rmSync(this.dir, { recursive: true, force: true });
    if (bad) throw new Error(`sanitizer report in ${this.logPath}: ${bad[0]}`);
  }

  instanceId() {
    try { return fs.readFileSync(path.join(this.dir, 'data', 'instance_id'), 'utf8').trim(); } catch { return null; }
  }

  async req(method, p, body, { key = ADMIN_KEY, headers = {}, raw = false } = {}) {
    const h = { ...headers };
    if (key) h['X-API-Key'] = key;
    let payload;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      h['Content-Type'] = 'application/json';
    }
    const res = await fetch(`${this.url}${p}`, { method, headers: h, body: payload });
    const text = await res.text();
    let json = null;
    if (!raw) { try { json = JSON.parse(text); } catch {} }
    return { status: res.status, json, text, headers: res.headers };
  }

  get(p, o) { return this.req('GET', p, undefined, o); }
  post(p, b = {}, o) { return this.req('POST', p, b, o); }
  del(p, o) { return this.req('DELETE', p, undefined, o); }

  async session(id, o) {
    const r = await this.get(`/api/sessions/${id}`, o);
    return r.status === 200 ? r.json : null;
  }

  async provision(body = {}, o) {
    const r = await this.post('/api/sessions/provision', body, o);
    if (r.status !== 201) throw new Error(`provision failed ${r.status} ${r.text}`);
    return r.json.sessionId;
  }

  async waitStatus(id, status, timeout = 10000) {
    return waitFor(async () => {
      const s = await this.session(id);
      return s && s.status === status ? s : false;
    }, { timeout, what: `${id} status ${status}` });
  }

  // A new session linked to phone through its simulator's scan: the connected session.
  async link(phone, timeout = 10000) {
    const id = await this.provision({});
    await this.waitStatus(id, 'qr_ready', timeout);
    const r = await this.sim(id, '/sim/scan', { phoneNumber: phone });
    if (r.status !== 200) throw new Error(`${id}: /sim/scan answered ${r.status} ${r.text}`);
    return this.waitStatus(id, 'connected', timeout);
  }

  // A signed command to the session's simulator worker (its /sim/... test controls).
  async sim(id, p, body = {}, method = 'POST') {
    const s = await waitFor(async () => {
      const x = await this.session(id);
      return x && x.worker ? x : false;
    }, { what: `${id} worker address` });
    const raw = method === 'GET' ? '' : JSON.stringify(body);
    const h = { ...sign(workerKey(id), raw), 'Content-Type': 'application/json' };
    const res = await fetch(`http://${s.worker.address}${p}`, { method, headers: h, body: method === 'GET' ? undefined : raw });
    return { status: res.status, json: await res.json().catch(() => null) };
  }

  // Posts a worker event the way a worker would (signed with that session's key).
  async event(sessionId, type, data, { key = workerKey(sessionId), ts, body } = {}) {
    const raw = body ?? JSON.stringify({ sessionId, type, data, timestamp: Date.now() });
    const res = await fetch(`${this.url}/webhook`, {
      method: 'POST',
      headers: { ...sign(key, raw, ts), 'Content-Type': 'application/json' },
      body: raw,
    });
    return { status: res.status, json: await res.json().catch(() => null) };
  }

  async metric(name) {
    const r = await this.get('/metrics');
    const line = r.text.split('\n').find((l) => l.startsWith(name + ' '));
    return line ? Number(line.split(' ')[1]) : 0;
  }

  authDir(id) { return path.join(this.dir, 'data', 'sessions', id); }
}

// pids of processes whose environment carries SWITCHBOARD_INSTANCE=instance (the workers
// of one daemon), read from /proc like the daemon's own scan
export function workerPids(instance, sessionId) {
  if (!instance) return [];
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let env;
    try { env = fs.readFileSync(`/proc/${d}/environ`, 'utf8').split('\0'); } catch { continue; }
    if (!env.includes(`SWITCHBOARD_INSTANCE=${instance}`)) continue;
    if (sessionId && !env.includes(`SESSION_ID=${sessionId}`)) continue;
    // skip zombies: a reaped-later child is not a running worker
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue;
    } catch { continue; }
    out.push(Number(d));
  }
  return out;
}

// The session once it is connected on a worker other than oldPid (a restart, a failover);
// with orFailed, also once it is failed (the caller asserts which).
export function connectedOnNewWorker(d, id, oldPid, { orFailed = false, what = `${id} connected on a new worker`, timeout = 15000 } = {}) {
  return waitFor(async () => {
    const x = await d.session(id);
    if (orFailed && x.status === 'failed') return x;
    return x.status === 'connected' && x.worker && x.worker.pid !== oldPid ? x : false;
  }, { what, timeout });
}

// A worker log that a fast writer fills, sampled over a second: never far above cap (what
// one 100 ms housekeeping tick lets through), and its .1 at most cap.
export async function assertLogCapped(log, cap) {
  let max = 0;
  for (let i = 0; i < 20; i++) {
    max = Math.max(max, fs.statSync(log).size);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(max < cap + 64 * 1024, `log size stays near the cap: ${max}`);
  assert.ok(fs.statSync(`${log}.1`).size <= cap, 'the kept part is at most the cap');
}

export function pidAlive(pid) {
  try { process.kill(pid, 0); } catch { return false; }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch { return false; }
}

export function runDaemonCheck(env) {
  return spawnSync(DAEMON, ['--check'], { env: { PATH: process.env.PATH, ENV_FILE: '/nonexistent', ...env }, encoding: 'utf8' });
}

// A fake Twilio (tests/fakes/twilio.mjs, fake: its options) and a daemon that calls
// through it, with no CPS limit and calls allowed at any hour; env adds to the daemon's.
export const TWILIO_FROM = '+15005550006';
export async function twilioDaemon(fake = {}, env = {}) {
  const tw = await startFakeTwilio({ ringMs: 5, answerMs: 5, durationMs: 40, ...fake });
  const port = await freePort();
  const d = new Daemon({
    env: {
      TWILIO_API_BASE: tw.url,
      TWILIO_ACCOUNT_SID: tw.accountSid,
      TWILIO_AUTH_TOKEN: tw.authToken,
      TWILIO_FROM,
      TWILIO_TWIML_URL: 'http://127.0.0.1:9/twiml/outbound',
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      TWILIO_CPS: '0',
      CALL_HOURS: '00:00-24:00',
      TWILIO_TIMEOUT_MS: '2000',
      ...env,
    },
  });
  d.port = port;
  await d.start();
  return { tw, d };
}
