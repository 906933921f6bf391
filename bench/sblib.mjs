// Shared by the node drivers of the benchmarks: start the daemon on a loopback port with
// a temp DATA_DIR, provision simulator sessions and link them with the simulator's signed
// /sim/scan, plus small statistics helpers. Every loop is bounded.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freePort, sleep, sign, workerKey } from '../tests/integration/lib.mjs';

export { freePort, sleep, sign, workerKey };
export const MASTER = 'bench-master-secret-0123456789abcdef';
export const API_KEY = 'bench-admin-key-0123456789abcdef';
export const BUILD = path.resolve(process.env.SB_BUILD || 'build');
export const DAEMON = path.join(BUILD, 'switchboard');
export const SIM = path.join(BUILD, 'sim-worker');
// an unlimited pacing profile (no caps, no gaps, always open) for every trust level
export const OPEN_PROFILE = '0,0,0,0,00:00-24:00';

export const t = () => performance.now();
export const log = (...a) => console.log(...a);

export function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export function readProc(pid, file) {
  try { return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8'); } catch { return null; }
}
export function cpuTicks(pid) {
  const s = readProc(pid, 'stat');
  if (!s) return 0;
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}
export function rssKiB(pid) {
  const s = readProc(pid, 'status');
  const m = s && s.match(/^VmRSS:\s+(\d+) kB/m);
  return m ? Number(m[1]) : 0;
}

// ns on a CPU and ns runnable but waiting for one (/proc/pid/schedstat)
export function schedstat(pid) {
  const t = readProc(pid, 'schedstat');
  if (!t) return [0, 0];
  const f = t.trim().split(/\s+/).map(Number);
  return [f[0], f[1]];
}

// busy and total jiffies of the whole machine (/proc/stat "cpu" line; iowait counts as idle)
export function machineTicks() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - (f[4] || 0), total };
}

// Lowers a simulator's priority to nice n. The daemon starts each worker in a session of
// its own (setsid), which under the kernel's autogroup scheduling is also a scheduling
// group of its own, where a process's own nice only weighs inside its group: so where
// autogroups are on, the group's nice is set (/proc/pid/autogroup), else the process's.
export function simNice(pid, n) {
  try {
    if (fs.readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '1') {
      fs.writeFileSync(`/proc/${pid}/autogroup`, String(n));
      return;
    }
  } catch {}
  try { os.setPriority(pid, n); } catch {}
}

// runs fn(i) for i in [0,n) with at most c in flight
export async function pool(n, c, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(c, n) }, async () => {
    while (next < n) await fn(next++);
  }));
}

// one signed command to a simulator on a fresh connection
export function simCall(address, key, p, body, timeoutMs = 10000) {
  const raw = JSON.stringify(body);
  const i = address.lastIndexOf(':');
  const headers = { ...sign(key, raw), 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(raw) };
  return new Promise((resolve) => {
    const req = http.request({ host: address.slice(0, i), port: Number(address.slice(i + 1)), path: p, method: 'POST', headers, agent: false, timeout: timeoutMs }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, text: e.message }));
    req.end(raw);
  });
}

// starts the daemon in `dir` with exactly `env` (its log in dir/daemon.log, its pid in
// dir/daemon.pid, where the wrappers' cleanup finds it) and waits for base/health, at most
// 15 s; -> {proc, exited}, `exited` resolving to {code, signal}
export async function spawnDaemon(dir, env, base) {
  const logPath = path.join(dir, 'daemon.log');
  const fd = fs.openSync(logPath, 'a');
  const proc = spawn(DAEMON, [], { env, cwd: dir, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  fs.writeFileSync(path.join(dir, 'daemon.pid'), String(proc.pid));
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`the daemon exited at start:\n${fs.readFileSync(logPath, 'utf8')}`);
    try { if ((await fetch(`${base}/health`)).status === 200) break; } catch {}
    if (i > 300) throw new Error('the daemon did not answer /health within 15 s');
    await sleep(50);
  }
  return { proc, exited };
}

export class Daemon {
  // dir: a fresh temp dir (the caller removes it); env: extra settings
  constructor(dir, env = {}) {
    this.dir = dir;
    this.extra = env;
    this.data = path.join(dir, 'data');
    this.logPath = path.join(dir, 'daemon.log');
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  }

  async start() {
    this.port = await freePort();
    this.base = `http://127.0.0.1:${this.port}`;
    const env = {
      PATH: process.env.PATH,
      HOME: this.dir,
      ENV_FILE: path.join(this.dir, 'no.env'),
      DATA_DIR: this.data,
      ORCH_PORT: String(this.port),
      API_KEY,
      WEBHOOK_SECRET: MASTER,
      PROVISIONING_INTERVAL_MS: '0',
      MAX_WORKERS: '2000',
      LOG_LEVEL: 'warn',
      WORKER_COMMAND: `${SIM} --ping-ms 15000 --qr-ms 3600000`,
      ...this.extra,
    };
    this.env = env;
    ({ proc: this.proc, exited: this.exited } = await spawnDaemon(this.dir, env, this.base));
    this.pid = this.proc.pid;
  }

  // one API call on the keep-alive agent -> {status, json, text}
  api(method, p, body, timeoutMs = 30000) {
    const raw = body === undefined ? null : JSON.stringify(body);
    const headers = { 'X-API-Key': API_KEY };
    if (raw !== null) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(raw);
    }
    return new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: this.port, path: p, method, headers, agent: this.agent, timeout: timeoutMs }, (res) => {
        const chunks = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json = null;
          try { json = JSON.parse(text); } catch {}
          resolve({ status: res.statusCode, json, text });
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => resolve({ status: 0, json: null, text: e.message }));
      req.end(raw);
    });
  }

  // provisions n sessions and links each with /sim/scan; resolves to the session list
  // once all n are connected (timeoutMs overall)
  async provisionAndLink(n, timeoutMs = 120000) {
    const end = Date.now() + timeoutMs;
    const fails = [];
    await pool(n, 8, async () => {
      const r = await this.api('POST', '/api/sessions/provision', {});
      if (r.status !== 201) fails.push(`${r.status} ${r.text.slice(0, 160)}`);
    });
    if (fails.length) throw new Error(`${fails.length} of ${n} provisions failed; first: ${fails[0]}`);
    let sessions = await this.waitSessions(n, 'qr_ready', end);
    const scanFails = [];
    await pool(sessions.length, 16, async (i) => {
      const s = sessions[i];
      const num = Number(String(s.sessionId).replace(/\D/g, '')) || i;
      const r = await simCall(s.worker.address, workerKey(s.sessionId, MASTER), '/sim/scan', { phoneNumber: `9725${String(num).padStart(8, '0')}` });
      if (r.status !== 200) scanFails.push(`${s.sessionId} ${r.status} ${r.text.slice(0, 160)}`);
    });
    if (scanFails.length) throw new Error(`${scanFails.length} /sim/scan failed; first: ${scanFails[0]}`);
    sessions = await this.waitSessions(n, 'connected', end);
    return sessions;
  }

  async waitSessions(n, status, end) {
    for (;;) {
      const r = await this.api('GET', '/api/sessions');
      if (r.status !== 200) throw new Error(`GET /api/sessions answered ${r.status}: ${r.text.slice(0, 200)}`);
      const list = r.json.sessions.filter((s) => s.status === status && (status !== 'qr_ready' || (s.worker && s.worker.address)));
      if (list.length >= n) return list;
      if (Date.now() > end) {
        const counts = {};
        for (const s of r.json.sessions) counts[s.status] = (counts[s.status] || 0) + 1;
        throw new Error(`only ${list.length} of ${n} sessions ${status} in time: ${JSON.stringify(counts)}`);
      }
      await sleep(200);
    }
  }

  async metrics() {
    const r = await this.api('GET', '/metrics');
    const out = {};
    for (const line of r.text.split('\n')) {
      if (!line || line[0] === '#') continue;
      const i = line.lastIndexOf(' ');
      out[line.slice(0, i)] = Number(line.slice(i + 1));
    }
    return out;
  }

  // SIGTERM, then SIGKILL after graceMs; resolves to the exit or null
  async stop(graceMs = 30000) {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exited;
    this.proc.kill('SIGTERM');
    const ex = await Promise.race([this.exited, sleep(graceMs).then(() => null)]);
    if (!ex) this.proc.kill('SIGKILL');
    this.agent.destroy();
    return ex;
  }
}
