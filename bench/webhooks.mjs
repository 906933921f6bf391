// Benchmark 7, the driver (run it through bench/webhooks, which checks the build and stops
// whatever is left on exit): customer-webhook fan-out. 10,000 events to 10 endpoints on
// loopback. Four runs per invocation, each on a fresh daemon and DATA_DIR:
//
//   burst fast: the 10,000 events as fast as the daemon takes them, 10 endpoints that answer
//               200 at once: 100,000 deliveries; deliveries/s is the daemon's capacity;
//   burst slow: the same, but endpoint #10 answers every request after 5 s
//               (WEBHOOK_TIMEOUT_MS=10000, above it); the run ends once the nine fast
//               endpoints have all their deliveries and reports how many the slow one got;
//   paced fast / paced slow: the same two with the events at a steady 1,000/s (10 s, so the
//               slow endpoint answers twice within the run), where the event -> delivery
//               delay is the daemon's latency rather than the wait behind a burst.
//
// The events: every POST /api/v1/send records exactly one event (message.status "queued");
// with the trust profiles' active hours closed (a 1-minute window 12 h away) nothing is
// dispatched, so nothing else is recorded while the run lasts (checked: the event log holds
// exactly N new events, all message.status/queued). This is the cheapest way to 10,000
// events: one small request each, no process; a session provision starts a worker process
// and records several session.status/session.qr events. One simulator session is
// provisioned and linked first (its own events come before the webhooks exist, so no
// endpoint gets them). Burst: wrk posts exactly N sends (bench/send-n.lua, one thread,
// WEBHOOKS_INFLIGHT connections). Paced: a Node poster in a child process of its own sends
// them on an open-loop schedule at WEBHOOKS_RATE/s, at most WEBHOOKS_INFLIGHT in flight.
//
// The receivers: one Node HTTP server per endpoint, each on its own 127.0.0.1 port, all in
// this process (WEBHOOKS_SHARED_PORT=1: one server and port, ten paths: the daemon then holds
// at most 8 connections to it, libcurl's CURLMOPT_MAX_HOST_CONNECTIONS). Each request is
// checked as it arrives: X-Switchboard-Signature (t=<unix>,v1=hex HMAC-SHA256(secret,
// t + "." + body), the secret returned by POST /api/webhooks, t within 300 s),
// X-Switchboard-Delivery (a positive integer), X-Switchboard-Event (= the body's type),
// POST + application/json; then answered 200 (the slow one after WEBHOOKS_SLOW_MS).
// The clock is performance.timeOrigin + performance.now() (sub-ms); the event's time is the
// payload's "at" (the daemon's wall clock, whole ms, truncated: delays read 0-1 ms long).
//
// Measured per run: deliveries/s from the first event's "at" to the last delivery's
// arrival; per endpoint the event ids in arrival order (must increase), duplicates (delivery
// ids and event ids), missing events; p50/p90/p99/max event -> delivery delay, over all
// fast endpoints and over the nine endpoints #1-#9 (fast in both runs). After the run the
// daemon's own record is read back (GET /api/webhooks/{id}/deliveries, every page): each
// delivery id with the event id the receiver saw, status delivered, 1 attempt, lastStatus
// 200. Each slow run is compared with the fast run of the same mode: the nine's p50/p99
// and deliveries/s. Target: no added delay, judged as
//   PASS when p99(slow run, nine) - p99(fast run, nine) <= max(2 ms, 20 % of the fast run's).
// In the burst pair the slow run has a tenth less work (nine endpoints to keep up with, not
// ten), so there it can only catch a large effect; the paced pair is the sensitive one.
// A pair in which other processes took more than 10 % of a core is flagged LOADED.
//
// argv[2]: a fresh temp directory (owned by the wrapper, which removes it).
// Environment: SB_BUILD, CLK_TCK, WEBHOOKS_EVENTS (10000), WEBHOOKS_ENDPOINTS (10),
// WEBHOOKS_MODES ("burst paced"), WEBHOOKS_RUNS ("fast slow"; add "nine" for a control run
// with endpoints #1-#9 alone, compared with the slow run by the same rule), WEBHOOKS_RATE (1000 events/s,
// paced), WEBHOOKS_SLOW_MS (5000), WEBHOOKS_SLOW_ENDPOINTS (1: how many of the last endpoints
// are slow in the slow run), WEBHOOKS_TIMEOUT_MS (10000: the daemon's WEBHOOK_TIMEOUT_MS),
// WEBHOOKS_INFLIGHT (16: sends in flight), WEBHOOKS_RUN_TIMEOUT_S (300 per run, from the
// first send), WEBHOOKS_SHARED_PORT (0), WEBHOOKS_SQLITE_SYNCHRONOUS (unset: the daemon's
// default, FULL), WEBHOOKS_PROFILE_CMD (a shell command started with the posting,
// SB_DAEMON_PID set; waited for at most 60 s), WEBHOOKS_DUMP (a directory: one CSV per run,
// a line per delivery received), WEBHOOKS_QUIET_WAIT_S (60: before each run, wait up to this
// long for 3 s in a row in which the machine is busy < 15 % of a core).
// Prints "RESULT mode=<m> run=<kind> key=value ..." per run, then a SUMMARY line.
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { API_KEY, Daemon, cpuTicks, machineTicks, rssKiB, schedstat, sleep } from './sblib.mjs';

const POSTER = process.argv[2] === '--post';
const TMP = process.argv[2];
if (!POSTER && (!TMP || !fs.existsSync(TMP))) {
  console.error('usage: node bench/webhooks.mjs <temp dir>  (use bench/webhooks)');
  process.exit(2);
}
const BENCH = path.dirname(fileURLToPath(import.meta.url));
const N = Number(process.env.WEBHOOKS_EVENTS || 10000);
const E = Number(process.env.WEBHOOKS_ENDPOINTS || 10);
const SLOW_MS = Number(process.env.WEBHOOKS_SLOW_MS || 5000);
const SLOW_COUNT = Number(process.env.WEBHOOKS_SLOW_ENDPOINTS || 1); // the last ones are slow
const HOOK_TIMEOUT_MS = Number(process.env.WEBHOOKS_TIMEOUT_MS || 10000);
const INFLIGHT = Number(process.env.WEBHOOKS_INFLIGHT || 16);
const RUNS = (process.env.WEBHOOKS_RUNS || 'fast slow').split(/\s+/).filter(Boolean);
const MODES = (process.env.WEBHOOKS_MODES || 'burst paced').split(/\s+/).filter(Boolean);
const RATE = Number(process.env.WEBHOOKS_RATE || 1000);
const RUN_TIMEOUT_MS = Number(process.env.WEBHOOKS_RUN_TIMEOUT_S || 300) * 1000;
const SHARED = process.env.WEBHOOKS_SHARED_PORT === '1';
const SYNC = process.env.WEBHOOKS_SQLITE_SYNCHRONOUS || '';
const CLK_TCK = Number(process.env.CLK_TCK || 100);
const QUIET_S = Number(process.env.WEBHOOKS_QUIET_WAIT_S ?? 60);
const LOADED_PCT = 10; // others' CPU (% of a core) above which a run is flagged as loaded
const TARGET_ABS_MS = 2;
const TARGET_REL = 0.2;

const now = () => performance.timeOrigin + performance.now(); // ms since the epoch, sub-ms
const log = (...a) => console.log(...a);
const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : '?');
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '?');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '?');
const verdict = (ok) => (ok ? 'PASS' : 'MISS');

// nearest rank
function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
function stats(values) {
  const s = Float64Array.from(values).sort();
  return { n: s.length, p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), max: s[s.length - 1], min: s[0] };
}
const fmtStats = (x) => `p50 ${f1(x.p50)}  p90 ${f1(x.p90)}  p99 ${f1(x.p99)}  max ${f1(x.max)}  min ${f1(x.min)} ms (n=${x.n})`;

// ---------------------------------------------------------------- receivers

// endpoints[i] = {index, path, url, secret, slow, recs: [], dlvSeen: Set, ...}
async function startReceivers(count, slowFrom) {
  const endpoints = [];
  const servers = [];
  const sockets = new Set();
  const handler = (ep) => (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const arrive = now();
      const body = Buffer.concat(chunks).toString('utf8');
      const answer = () => {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '2' });
        res.end('ok');
      };
      if (ep.slow) setTimeout(answer, SLOW_MS);
      else answer();
      const rec = { arrive, ev: NaN, at: NaN, dlv: 0, bad: '' };
      let j = null;
      try { j = JSON.parse(body); } catch {}
      if (!j || !Number.isInteger(j.id) || typeof j.at !== 'string') {
        rec.bad = 'body is not an event';
      } else {
        rec.ev = j.id;
        rec.at = Date.parse(j.at);
        if (req.headers['x-switchboard-event'] !== j.type) rec.bad = `X-Switchboard-Event ${req.headers['x-switchboard-event']} for type ${j.type}`;
        if (j.type !== 'message.status') ep.otherTypes++;
      }
      const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(req.headers['x-switchboard-signature'] || '');
      if (!m) {
        rec.bad ||= `no or malformed X-Switchboard-Signature: ${req.headers['x-switchboard-signature']}`;
      } else if (!ep.secret || createHmac('sha256', ep.secret).update(`${m[1]}.${body}`).digest('hex') !== m[2]) {
        rec.bad ||= 'the signature does not verify';
      } else if (Math.abs(Date.now() / 1000 - Number(m[1])) > 300) {
        rec.bad ||= `signature time ${m[1]} is off by more than 300 s`;
      }
      const dv = req.headers['x-switchboard-delivery'];
      if (!/^[1-9][0-9]*$/.test(dv || '')) rec.bad ||= `X-Switchboard-Delivery ${dv}`;
      else rec.dlv = Number(dv);
      if (req.method !== 'POST' || !/^application\/json/.test(req.headers['content-type'] || '')) rec.bad ||= `${req.method} ${req.headers['content-type']}`;
      ep.recs.push(rec);
      if (ep.onCount && ep.recs.length >= ep.want) ep.onCount();
    });
  };
  const listen = async (fn) => {
    const s = http.createServer(fn);
    s.keepAliveTimeout = 65000; // no race between the daemon's reuse and an idle close
    s.headersTimeout = 66000;
    s.on('connection', (c) => { sockets.add(c); c.on('close', () => sockets.delete(c)); });
    await new Promise((ok) => s.listen(0, '127.0.0.1', ok));
    servers.push(s);
    return s.address().port;
  };
  for (let i = 0; i < count; i++) {
    endpoints.push({ index: i + 1, path: `/hook/${i + 1}`, url: '', secret: '', id: 0, slow: i >= slowFrom, recs: [], otherTypes: 0, want: Infinity, onCount: null });
  }
  if (SHARED) {
    const byPath = new Map(endpoints.map((ep) => [ep.path, handler(ep)]));
    const port = await listen((req, res) => {
      const h = byPath.get(req.url);
      if (h) return h(req, res);
      res.writeHead(404).end();
    });
    for (const ep of endpoints) ep.url = `http://127.0.0.1:${port}${ep.path}`;
  } else {
    for (const ep of endpoints) ep.url = `http://127.0.0.1:${await listen(handler(ep))}${ep.path}`;
  }
  const close = () => new Promise((ok) => {
    for (const c of sockets) c.destroy();
    let left = servers.length;
    if (!left) ok();
    for (const s of servers) s.close(() => { if (--left === 0) ok(); });
  });
  return { endpoints, close, connections: () => sockets.size };
}

// ---------------------------------------------------------------- daemon helpers

// every event after `since`, page by page (bounded)
async function eventsAfter(d, since) {
  const out = [];
  for (let page = 0; page < Math.ceil(N / 1000) + 20; page++) {
    const r = await d.api('GET', `/api/events?since=${since}&limit=1000`, undefined, 60000);
    if (r.status !== 200) throw new Error(`GET /api/events answered ${r.status}: ${r.text.slice(0, 200)}`);
    out.push(...r.json.events);
    if (r.json.events.length < 1000) break;
    since = r.json.nextSince;
  }
  return out;
}

// the daemon's record of one webhook's deliveries, every page (bounded)
async function deliveriesOf(d, hookId, status) {
  const out = [];
  let cursor = null;
  for (let page = 0; page < Math.ceil(N / 1000) + 10; page++) {
    const q = `/api/webhooks/${hookId}/deliveries?limit=1000${status ? `&status=${status}` : ''}${cursor ? `&cursor=${cursor}` : ''}`;
    const r = await d.api('GET', q, undefined, 60000);
    if (r.status !== 200) throw new Error(`GET ${q} answered ${r.status}: ${r.text.slice(0, 200)}`);
    out.push(...r.json.deliveries);
    cursor = r.json.nextCursor;
    if (!cursor) break;
  }
  return out;
}

// wrk posts exactly N sends; resolves {accepted, t0, t1, wrkTicks, out}
async function postN(d, end) {
  const key = 'switchboard_messages_total{status="queued"}';
  const q0 = (await d.metrics())[key] || 0;
  const t0 = now();
  let wrkTicks = 0;
  let t1 = NaN;
  const out = await new Promise((resolve) => {
    const args = ['-t1', `-c${INFLIGHT}`, `-d${Math.ceil(RUN_TIMEOUT_MS / 1000)}s`, '-s', path.join(BENCH, 'send-n.lua'), d.base];
    const w = spawn('wrk', args, { env: { ...process.env, SB_API_KEY: API_KEY, SB_SEND_N: String(N), SB_THREADS: '1', SB_SESSIONS: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    let exited = false;
    w.stdout.on('data', (x) => { text += x; });
    w.stderr.on('data', (x) => { text += x; });
    w.on('exit', () => { exited = true; resolve(text); });
    // wrk sleeps for its whole -d after send-n.lua stopped its thread: interrupted once the
    // daemon counts N accepted
    (async () => {
      while (!exited && now() < end) {
        await sleep(50);
        if (!exited && ((await d.metrics())[key] || 0) - q0 >= N) { t1 = now(); break; }
      }
      wrkTicks = cpuTicks(w.pid);
      if (!exited) w.kill('SIGINT');
    })();
  });
  const accepted = ((await d.metrics())[key] || 0) - q0;
  return { accepted, t0, t1, wrkTicks, out };
}

// the paced poster, a child process of its own (so that its work is not on the receivers'
// event loop): N sends at RATE/s on an open-loop schedule (send i is due at t0 + i / RATE),
// at most INFLIGHT in flight on keep-alive connections; prints one JSON line
async function poster() {
  const [base, n, rate, inflight] = [process.env.WH_BASE, Number(process.env.WH_N), Number(process.env.WH_RATE), Number(process.env.WH_INFLIGHT)];
  const deadline = now() + Number(process.env.WH_DEADLINE_MS || 300000); // no new sends after it
  const u = new URL(base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: inflight });
  let next = 0, busy = 0, stopped = false, accepted = 0, refused = 0, firstRefusal = '', lagMax = 0, capped = 0;
  const t0 = now();
  const one = (i) => new Promise((resolve) => {
    const body = `{"to":"+9725${String(i % 1e8).padStart(8, '0')}","message":"Benchmark message ${i}: hello, this is a test of the send path."}`;
    const req = http.request({ host: u.hostname, port: u.port, path: '/api/v1/send', method: 'POST', agent, timeout: 30000,
      headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.on('data', (x) => { text += x; });
      res.on('end', () => {
        if (res.statusCode === 202) accepted++;
        else { refused++; firstRefusal ||= `${res.statusCode} ${text.slice(0, 200)}`; }
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => { refused++; firstRefusal ||= e.message; resolve(); });
    req.end(body);
  });
  await new Promise((done) => {
    const tick = () => {
      const due = Math.min(n, Math.floor(((now() - t0) * rate) / 1000) + 1);
      while (next < due && busy < inflight) {
        lagMax = Math.max(lagMax, now() - (t0 + (next * 1000) / rate));
        busy++;
        one(next++).then(() => { busy--; if ((next >= n || stopped) && busy === 0) done(); });
      }
      if (next < due) capped++;
      if (next < n && now() > deadline) {
        stopped = true;
        firstRefusal ||= `stopped at the deadline after ${next} of ${n} sends`;
        if (busy === 0) done();
      } else if (next < n) setTimeout(tick, 1);
    };
    tick();
  });
  agent.destroy();
  process.stdout.write(`${JSON.stringify({ accepted, refused, firstRefusal, t0, t1: now(), lagMax, capped })}\n`);
}

async function postPaced(d) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [fileURLToPath(import.meta.url), '--post'], {
      env: { ...process.env, WH_BASE: d.base, WH_N: String(N), WH_RATE: String(RATE), WH_INFLIGHT: String(INFLIGHT), WH_DEADLINE_MS: String(RUN_TIMEOUT_MS) }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    // its requests time out after 30 s each: past that, it is stuck
    const killer = setTimeout(() => p.kill('SIGKILL'), RUN_TIMEOUT_MS + 40000);
    let text = '';
    let ticks = 0;
    const tk = setInterval(() => { ticks = cpuTicks(p.pid) || ticks; }, 200);
    p.stdout.on('data', (x) => { text += x; });
    p.on('exit', () => {
      clearInterval(tk);
      clearTimeout(killer);
      let r = null;
      try { r = JSON.parse(text.trim().split('\n').pop()); } catch {}
      resolve(r ? { ...r, wrkTicks: ticks, out: text } : { accepted: 0, t0: NaN, t1: NaN, wrkTicks: ticks, out: text });
    });
  });
}

// utime+stime of every process now: pid -> {comm, ticks} (to name what else ran)
function allTicks() {
  const out = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let st;
    try { st = fs.readFileSync(`/proc/${d}/stat`, 'utf8'); } catch { continue; }
    const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    out.set(d, { comm, ticks: Number(f[11]) + Number(f[12]) });
  }
  return out;
}
// the biggest CPU users between two allTicks() other than the given pids, by command name
function topOthers(a, b, skip) {
  const by = new Map();
  for (const [pid, x] of b) {
    if (skip.has(Number(pid))) continue;
    const t = x.ticks - (a.get(pid)?.ticks || 0);
    const key = /^kworker/.test(x.comm) ? 'kworker' : `${x.comm}[${pid}]`;
    if (t > 0) by.set(key, (by.get(key) || 0) + t);
  }
  return [...by.entries()].sort((x, y) => y[1] - x[1]).slice(0, 5).map(([c, t]) => `${c} ${(t / CLK_TCK).toFixed(2)} s`).join(', ');
}

// waits (at most QUIET_S) for three seconds in a row in which the machine is busy less than
// 15 % of a core, so that a run does not start in the middle of somebody else's job; says
// how it went
async function waitQuiet() {
  const t0 = Date.now();
  let pct = NaN, calm = 0;
  for (;;) {
    const a = machineTicks();
    await sleep(1000);
    const b = machineTicks();
    pct = (100 * (b.busy - a.busy)) / CLK_TCK;
    calm = pct < 15 ? calm + 1 : 0;
    if (calm >= 3) return `quiet (under 15 % of a core busy for 3 s; ${f1(pct)} % in the last) after ${f0((Date.now() - t0) / 1000)} s`;
    if (Date.now() - t0 >= QUIET_S * 1000) return `NOT quiet: ${f1(pct)} % of a core busy in the last second after ${QUIET_S} s of waiting; running anyway`;
  }
}

function closedProfile() {
  const hhmm = (t) => new Date(t).toTimeString().slice(0, 5);
  return `0,0,0,0,${hhmm(Date.now() + 12 * 3600e3)}-${hhmm(Date.now() + 12 * 3600e3 + 60e3)}`;
}

// ---------------------------------------------------------------- one run

async function runOnce(mode, kind, seq) {
  // "nine": a control run with endpoints #1-#9 alone (the fast ones of the slow run, no tenth)
  const count = kind === 'nine' ? E - 1 : E;
  const slowFrom = kind === 'slow' ? E - SLOW_COUNT : E;
  const dir = path.join(TMP, `run${seq}-${mode}-${kind}`);
  fs.mkdirSync(dir, { recursive: true });
  const problems = [];
  const profile = closedProfile();
  const env = {
    PACING_COLD: profile, PACING_WARM: profile, PACING_HOT: profile, TYPING_MAX_MS: '0', MAX_WORKERS: '20',
    WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_TIMEOUT_MS: String(HOOK_TIMEOUT_MS), WEBHOOK_RETRY_BASE_MS: '1000',
  };
  if (SYNC) env.SQLITE_SYNCHRONOUS = SYNC;
  log(`== webhooks run ${seq} (${mode}, ${kind}): ${N} events ${mode === 'paced' ? `at ${RATE}/s` : 'as fast as the daemon takes them'} to ${count} endpoints${kind === 'slow' ? `, endpoint${SLOW_COUNT > 1 ? `s #${slowFrom + 1}-#${E}` : ` #${E}`} answer${SLOW_COUNT > 1 ? '' : 's'} after ${SLOW_MS} ms` : ''} ==`);
  log(`load:     ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} (1/5/15 min) before the run; machine ${await waitQuiet()}`);
  log(`settings: WEBHOOK_ALLOW_PRIVATE=1 WEBHOOK_TIMEOUT_MS=${HOOK_TIMEOUT_MS} WEBHOOK_RETRY_BASE_MS=1000 PACING_COLD/WARM/HOT=${profile} (closed) TYPING_MAX_MS=0 SQLITE_SYNCHRONOUS=${SYNC || '(default FULL)'} LOG_LEVEL=warn; ${mode === 'paced' ? `a Node poster, ${RATE} sends/s, at most ${INFLIGHT} in flight` : `wrk -t1 -c${INFLIGHT}`}; receivers ${SHARED ? 'on one shared port' : 'one port each'}`);

  const rx = await startReceivers(count, slowFrom);
  const d = new Daemon(dir, env);
  let result = null;
  try {
    await d.start();
    const sessions = await d.provisionAndLink(1, 60000);
    // hooks
    for (const ep of rx.endpoints) {
      const r = await d.api('POST', '/api/webhooks', { url: ep.url, events: ['*'] });
      if (r.status !== 201 || !r.json?.secret) throw new Error(`POST /api/webhooks answered ${r.status}: ${r.text.slice(0, 300)}`);
      ep.id = r.json.id;
      ep.secret = r.json.secret;
    }
    await sleep(300); // anything the link left in flight settles
    const before = await eventsAfter(d, 0);
    const lastBefore = before.length ? before[before.length - 1].id : 0;
    const stray = rx.endpoints.reduce((a, ep) => a + ep.recs.length, 0);
    if (stray) problems.push(`${stray} deliveries arrived before the first send (events after the hooks were created)`);
    log(`daemon:   ${sessions[0].sessionId} linked; ${count} webhooks (ids ${rx.endpoints.map((ep) => ep.id).join(',')}) events ["*"]; ${before.length} events in the log before the run (last id ${lastBefore}); RSS ${(rssKiB(d.pid) / 1024).toFixed(1)} MiB`);

    // wait conditions: every endpoint (fast run) or the fast ones (slow run) at N
    const fastEps = rx.endpoints.filter((ep) => !ep.slow);
    const nine = rx.endpoints.filter((ep) => ep.index <= 9);
    let pendingEps = fastEps.length;
    const allFastDone = new Promise((resolve) => {
      for (const ep of fastEps) {
        ep.want = N;
        ep.onCount = () => { ep.onCount = null; if (--pendingEps === 0) resolve(); };
      }
    });
    const m0 = await d.metrics();
    const loopDelay = monitorEventLoopDelay({ resolution: 1 });
    loopDelay.enable();
    const cpu0 = cpuTicks(d.pid), self0 = cpuTicks('self'), mach0 = machineTicks(), procs0 = allTicks(), ss0 = schedstat(d.pid);
    const tStart = now();
    const end = tStart + RUN_TIMEOUT_MS;
    let prof = null;
    if (process.env.WEBHOOKS_PROFILE_CMD) {
      log(`profiling: ${process.env.WEBHOOKS_PROFILE_CMD}`);
      prof = spawn('bash', ['-c', process.env.WEBHOOKS_PROFILE_CMD], { env: { ...process.env, SB_DAEMON_PID: String(d.pid) }, stdio: 'inherit' });
    }
    // progress every 5 s, bounded by the run's timeout
    let progressTimer = setInterval(() => {
      const c = rx.endpoints.map((ep) => ep.recs.length);
      log(`          ${f1((now() - tStart) / 1000)} s: delivered per endpoint ${c.join(' ')}`);
    }, 5000);
    const post = mode === 'paced' ? await postPaced(d) : await postN(d, end);
    log(`posting:  ${post.accepted} of ${N} sends accepted in ${f2((post.t1 - post.t0) / 1000)} s (${f0(post.accepted / ((post.t1 - post.t0) / 1000))}/s while delivering; ${mode === 'paced' ? `poster lag behind its schedule at most ${f1(post.lagMax)} ms, ${post.capped} ticks at the in-flight cap; poster` : 'wrk'} CPU ${(post.wrkTicks / CLK_TCK).toFixed(2)} s)`);
    if (post.accepted !== N) {
      problems.push(`${post.accepted} sends accepted, expected ${N}${post.firstRefusal ? `; first refusal: ${post.firstRefusal}` : ''}`);
      log(`${mode === 'paced' ? 'the poster' : 'wrk'} said:\n${post.out}`);
    }
    const timedOut = await Promise.race([allFastDone.then(() => false), sleep(Math.max(0, end - now())).then(() => true)]);
    const tDone = now();
    clearInterval(progressTimer);
    progressTimer = null;
    const cpu1 = cpuTicks(d.pid), self1 = cpuTicks('self'), mach1 = machineTicks(), procs1 = allTicks(), ss1 = schedstat(d.pid);
    loopDelay.disable();
    const rss1 = rssKiB(d.pid);
    let dbBytes = 0;
    for (const f of fs.readdirSync(d.data)) if (/\.db(-wal)?$/.test(f)) dbBytes += fs.statSync(path.join(d.data, f)).size;
    const conns = rx.connections();
    if (timedOut) problems.push(`the fast endpoints did not get all ${N} within ${RUN_TIMEOUT_MS / 1000} s: ${fastEps.map((ep) => ep.recs.length).join(' ')}`);
    // freeze what the receivers hold now (the slow one keeps receiving until the daemon stops)
    const frozen = new Map(rx.endpoints.map((ep) => [ep, ep.recs.slice()]));
    if (prof && prof.exitCode === null) await Promise.race([new Promise((r) => prof.on('exit', r)), sleep(60000)]);
    const m1 = await d.metrics();

    if (process.env.WEBHOOKS_DUMP) {
      // one line per delivery: endpoint, event id, delivery id, event at (ms), arrival (ms)
      const lines = ['endpoint,event,delivery,at_ms,arrive_ms'];
      for (const [ep, recs] of frozen) for (const r of recs) lines.push(`${ep.index},${r.ev},${r.dlv},${r.at},${r.arrive.toFixed(3)}`);
      const f = path.join(process.env.WEBHOOKS_DUMP, `webhooks-run${seq}-${mode}-${kind}.csv`);
      fs.writeFileSync(f, `${lines.join('\n')}\n`);
      log(`dump:     ${f}`);
    }

    // ---- the events, from the log
    const evs = await eventsAfter(d, lastBefore);
    const evIds = new Set(evs.map((e) => e.id));
    const evTypes = new Set(evs.map((e) => `${e.type}/${e.data?.status}`));
    if (evs.length !== N) problems.push(`${evs.length} events recorded during the run, expected ${N} (types ${[...evTypes].join(', ')})`);
    else if (evTypes.size !== 1 || !evTypes.has('message.status/queued')) problems.push(`event types during the run: ${[...evTypes].join(', ')}`);
    const firstEventAt = evs.length ? Date.parse(evs[0].at) : NaN;
    const lastEventAt = evs.length ? Date.parse(evs[evs.length - 1].at) : NaN;

    // ---- per endpoint
    const per = [];
    const allDelay = [], nineDelay = [];
    let nineLast = 0, allLast = 0;
    const dlvOwner = new Map();
    const bySecond = [];
    let crossDup = 0;
    for (const ep of rx.endpoints) {
      const recs = frozen.get(ep);
      let orderBreaks = 0, dupDlv = 0, dupEv = 0, bad = 0, foreign = 0;
      const seenDlv = new Set(), seenEv = new Set();
      let prev = -Infinity;
      const delay = [];
      let firstBad = '';
      for (const r of recs) {
        if (r.bad) { bad++; firstBad ||= r.bad; }
        if (r.ev <= prev) orderBreaks++;
        prev = Math.max(prev, r.ev);
        if (seenDlv.has(r.dlv)) dupDlv++;
        seenDlv.add(r.dlv);
        if (dlvOwner.has(r.dlv) && dlvOwner.get(r.dlv) !== ep.index) crossDup++;
        dlvOwner.set(r.dlv, ep.index);
        if (seenEv.has(r.ev)) dupEv++;
        seenEv.add(r.ev);
        if (!evIds.has(r.ev)) foreign++;
        delay.push(r.arrive - r.at);
        if (!ep.slow) {
          const sec = Math.floor((r.at - firstEventAt) / 1000);
          (bySecond[sec] ||= []).push(r.arrive - r.at);
        }
      }
      const missing = ep.slow ? NaN : [...evIds].filter((id) => !seenEv.has(id)).length;
      const last = recs.length ? recs[recs.length - 1].arrive : NaN;
      const st = stats(delay);
      per.push({ ep, n: recs.length, orderBreaks, dupDlv, dupEv, bad, firstBad, foreign, missing, st, last, seenEv });
      if (!ep.slow) {
        allDelay.push(...delay);
        allLast = Math.max(allLast, last);
      }
      if (ep.index <= 9 && !ep.slow) {
        nineDelay.push(...delay);
        nineLast = Math.max(nineLast, last);
      }
      const who = `endpoint #${ep.index}`;
      if (orderBreaks) problems.push(`${who}: ${orderBreaks} deliveries arrived with an event id not above the one before (order)`);
      if (dupDlv) problems.push(`${who}: ${dupDlv} delivery ids arrived more than once`);
      if (dupEv) problems.push(`${who}: ${dupEv} event ids arrived more than once`);
      if (bad) problems.push(`${who}: ${bad} requests failed a check; first: ${firstBad}`);
      if (foreign) problems.push(`${who}: ${foreign} deliveries of events not recorded during the run`);
      if (ep.otherTypes) problems.push(`${who}: ${ep.otherTypes} deliveries of another type than message.status`);
      if (!ep.slow && missing) problems.push(`${who}: ${missing} events never delivered`);
    }
    if (crossDup) problems.push(`${crossDup} delivery ids arrived at two endpoints`);

    // ---- the daemon's record: delivery id <-> event id, delivered, one attempt
    let apiChecked = 0, apiBad = 0, apiFirstBad = '';
    const slowDaemon = {};
    for (const p of per) {
      if (p.ep.slow) {
        for (const s of ['delivered', 'pending', 'dead']) slowDaemon[s] = (await deliveriesOf(d, p.ep.id, s)).length;
        continue;
      }
      const list = await deliveriesOf(d, p.ep.id);
      const byId = new Map(list.map((x) => [x.id, x]));
      if (list.length !== N) { apiBad++; apiFirstBad ||= `endpoint #${p.ep.index}: the daemon lists ${list.length} deliveries`; }
      for (const r of frozen.get(p.ep)) {
        const x = byId.get(r.dlv);
        apiChecked++;
        if (!x || x.eventId !== r.ev || x.status !== 'delivered' || x.attempts !== 1 || x.lastStatus !== 200) {
          apiBad++;
          apiFirstBad ||= `endpoint #${p.ep.index} delivery ${r.dlv}: ${x ? JSON.stringify({ eventId: x.eventId, status: x.status, attempts: x.attempts, lastStatus: x.lastStatus }) : 'not listed'} (the receiver saw event ${r.ev})`;
        }
      }
    }
    if (apiBad) problems.push(`the daemon's delivery record disagrees ${apiBad} time(s); first: ${apiFirstBad}`);

    // ---- figures
    const all = stats(allDelay);
    const nin = stats(nineDelay);
    const fastCount = fastEps.length * N;
    const rateAll = fastCount / ((allLast - firstEventAt) / 1000);
    const rateNine = (nine.filter((ep) => !ep.slow).length * N) / ((nineLast - firstEventAt) / 1000);
    const cpuS = (cpu1 - cpu0) / CLK_TCK, selfS = (self1 - self0) / CLK_TCK;
    const wallS = (tDone - tStart) / 1000;
    const machBusyS = (mach1.busy - mach0.busy) / CLK_TCK;
    const cores = Math.round((mach1.total - mach0.total) / CLK_TCK / wallS) || 1;
    const othersS = Math.max(0, machBusyS - cpuS - selfS - post.wrkTicks / CLK_TCK);
    const commits = (m1.switchboard_store_commits_total || 0) - (m0.switchboard_store_commits_total || 0);
    const slowPs = per.filter((p) => p.ep.slow);
    const slowP = slowPs[0];
    const slowTotal = slowPs.reduce((a, p) => a + p.n, 0);

    log('');
    log(`-- run ${seq} (${kind}) results`);
    log(`events:     ${evs.length} recorded during the run (${[...evTypes].join(', ')}), ids ${evs[0]?.id}..${evs[evs.length - 1]?.id}, "at" ${evs[0]?.at} .. ${evs[evs.length - 1]?.at} (${f2((lastEventAt - firstEventAt) / 1000)} s)`);
    log(`deliveries: ${fastCount.toLocaleString('en')} to the ${fastEps.length} fast endpoint(s) in ${f2((allLast - firstEventAt) / 1000)} s from the first event: ${f0(rateAll)} deliveries/s`);
    log(`            the nine #1-#9: ${f0(rateNine)} deliveries/s (${f2((nineLast - firstEventAt) / 1000)} s)`);
    log(`delay:      event "at" -> arrival, fast endpoints: ${fmtStats(all)}`);
    log(`            the nine #1-#9:                      ${fmtStats(nin)}`);
    log(`            p99 by second of the event's time: ${bySecond.map((v) => f1(stats(v).p99)).join(' ')} ms`);
    for (const p of per) {
      log(`  #${String(p.ep.index).padStart(2)}${p.ep.slow ? ' slow' : '     '} ${String(p.n).padStart(6)} delivered, last at +${f2((p.last - firstEventAt) / 1000)} s; p50 ${f1(p.st.p50)} p99 ${f1(p.st.p99)} max ${f1(p.st.max)} ms; order breaks ${p.orderBreaks}, dup ${p.dupDlv}/${p.dupEv}, failed checks ${p.bad}${p.ep.slow ? '' : `, missing ${p.missing}`}`);
    }
    if (slowP) {
      const ivs = [];
      const rs = frozen.get(slowP.ep);
      for (let i = 1; i < rs.length; i++) ivs.push(rs[i].arrive - rs[i - 1].arrive);
      const iv = stats(ivs);
      log(`slow #${slowP.ep.index}:    ${slowP.n} request(s) received${slowPs.length > 1 ? ` (all ${slowPs.length} slow ones: ${slowPs.map((p) => p.n).join(' ')})` : ''} by the time the fast ones had all ${N} (${f1(wallS)} s after the first send; the last may still wait for its answer); gap between its requests p50 ${f1(iv.p50)} ms; the daemon lists delivered ${slowDaemon.delivered}, pending ${slowDaemon.pending}, dead ${slowDaemon.dead}`);
    }
    log(`checked:    every request's signature, delivery id, event header; the daemon's record of ${apiChecked} deliveries (delivery id -> event id, delivered, 1 attempt, lastStatus 200): ${apiBad ? `${apiBad} disagreements` : 'all agree'}`);
    log(`daemon:     ${cpuS.toFixed(2)} s CPU over ${f1(wallS)} s (${f0((100 * cpuS) / wallS)} % of a core), ${f0((1e6 * cpuS) / (fastCount + slowTotal))} µs per delivery incl. the sends; RSS ${(rss1 / 1024).toFixed(1)} MiB at the end; ${commits} store commits; store files ${(dbBytes / 1048576).toFixed(1)} MiB; receiver connections open ${conns}`);
    log(`            its thread ran ${f2((ss1[0] - ss0[0]) / 1e9)} s and waited runnable for a CPU ${f2((ss1[1] - ss0[1]) / 1e9)} s (/proc/pid/schedstat)`);
    log(`machine:    ${machBusyS.toFixed(2)} s busy of ${cores} x ${f1(wallS)} s: daemon ${cpuS.toFixed(2)}, driver (receivers) ${selfS.toFixed(2)}, ${mode === 'paced' ? 'poster' : 'wrk'} ${(post.wrkTicks / CLK_TCK).toFixed(2)}, everything else ${othersS.toFixed(2)} s (${f1((100 * othersS) / wallS)} % of a core); the biggest other processes: ${topOthers(procs0, procs1, new Set([d.pid, process.pid])) || 'none'} (exited processes and interrupt time not counted)`);
    log(`driver:     event-loop delay p50 ${f2(loopDelay.percentile(50) / 1e6)} p99 ${f2(loopDelay.percentile(99) / 1e6)} max ${f2(loopDelay.max / 1e6)} ms`);

    result = {
      mode, kind, seq, rateAll, rateNine, all, nin, slowN: slowP ? slowP.n : NaN, cpuS, selfS, wallS, othersS, othersPct: (100 * othersS) / wallS, dbBytes, problems,
      per: per.map((p) => ({ index: p.ep.index, n: p.n, p50: p.st.p50, p99: p.st.p99, last: p.last - firstEventAt })),
    };
  } finally {
    const ex = await d.stop(30000);
    if (!ex) problems.push('the daemon did not stop within 30 s of SIGTERM');
    else if (ex.code !== 0) problems.push(`the daemon exited with code ${ex.code} signal ${ex.signal}`);
    await rx.close();
    try {
      const lines = fs.readFileSync(d.logPath, 'utf8').split('\n').filter((l) => l && !/ (info|debug) /.test(l));
      if (lines.length) {
        log(`daemon log: ${lines.length} warn/error line(s); first ${Math.min(8, lines.length)}:`);
        for (const l of lines.slice(0, 8)) log(`    ${l}`);
      }
    } catch {}
  }
  if (problems.length) {
    log('PROBLEMS:');
    for (const p of problems) log(`  - ${p}`);
  } else {
    log('problems: none seen');
  }
  const r = result;
  log(`RESULT mode=${mode} run=${kind} seq=${seq} deliveries_per_s=${f0(r.rateAll)} nine_per_s=${f0(r.rateNine)} p50_ms=${f1(r.all.p50)} p99_ms=${f1(r.all.p99)} nine_p50_ms=${f1(r.nin.p50)} nine_p99_ms=${f1(r.nin.p99)} slow_delivered=${Number.isFinite(r.slowN) ? r.slowN : '-'} daemon_cpu_s=${r.cpuS.toFixed(2)} others_pct=${f1(r.othersPct)} valid=${problems.length ? 0 : 1}`);
  log('');
  return result;
}

async function main() {
  const results = [];
  let seq = 0;
  for (const mode of MODES) {
    if (mode !== 'burst' && mode !== 'paced') throw new Error(`WEBHOOKS_MODES: unknown mode ${mode}`);
    for (const kind of RUNS) {
      if (kind !== 'fast' && kind !== 'slow' && kind !== 'nine') throw new Error(`WEBHOOKS_RUNS: unknown run ${kind}`);
      if (seq) await sleep(3000);
      results.push(await runOnce(mode, kind, ++seq));
    }
  }
  const invalid = results.some((r) => r.problems.length);
  log('== webhooks results ==');
  log(`${'run'.padEnd(34)} ${'deliv/s'.padStart(9)} ${'p50 ms'.padStart(9)} ${'p99 ms'.padStart(9)} ${'nine/s'.padStart(9)} ${'nine p50'.padStart(9)} ${'nine p99'.padStart(9)} ${'slow rcvd'.padStart(9)} ${'others %'.padStart(9)}`);
  for (const r of results) {
    const label = `${r.seq} ${r.mode}${r.mode === 'paced' ? ` ${RATE}/s` : ''} ${r.kind}${r.kind === 'slow' ? ` (#${E}: ${SLOW_MS / 1000} s)` : ''}`;
    log(`${label.padEnd(34)} ${f0(r.rateAll).padStart(9)} ${f1(r.all.p50).padStart(9)} ${f1(r.all.p99).padStart(9)} ${f0(r.rateNine).padStart(9)} ${f1(r.nin.p50).padStart(9)} ${f1(r.nin.p99).padStart(9)} ${(Number.isFinite(r.slowN) ? String(r.slowN) : '-').padStart(9)} ${f1(r.othersPct).padStart(9)}`);
  }
  log(`(deliveries/s: to the fast endpoints, first event -> last delivery; in the paced runs the offered rate sets it. Delay: event "at" -> arrival. slow rcvd: requests the slow endpoint received meanwhile. others %: CPU that neither the daemon, the driver nor the poster used, in % of a core.)`);
  const parts = [];
  for (const mode of MODES) {
    const fast = results.find((r) => r.mode === mode && r.kind === 'fast');
    const slow = results.find((r) => r.mode === mode && r.kind === 'slow');
    const tag = mode === 'paced' ? `paced ${RATE}/s` : 'burst';
    if (fast) parts.push(`${tag}: ${f0(fast.rateAll)} deliveries/s p50 ${f1(fast.all.p50)} p99 ${f1(fast.all.p99)} ms`);
    if (!fast || !slow) continue;
    const dP99 = slow.nin.p99 - fast.nin.p99;
    const dP50 = slow.nin.p50 - fast.nin.p50;
    const bound = Math.max(TARGET_ABS_MS, TARGET_REL * fast.nin.p99);
    const ok = dP99 <= bound;
    const loadedPct = Math.max(fast.othersPct, slow.othersPct);
    const loaded = loadedPct > LOADED_PCT ? ` (LOADED: other processes took up to ${f0(loadedPct)} % of a core during these runs; not a clean comparison)` : '';
    const sg = (x) => `${x >= 0 ? '+' : ''}${f1(x)}`;
    log(`${tag}: delay added to the nine (slow run - fast run): p50 ${sg(dP50)} ms, p99 ${sg(dP99)} ms (${sg((100 * dP99) / fast.nin.p99)} %); their deliveries/s ${f0(slow.rateNine)} vs ${f0(fast.rateNine)} (${f2(slow.rateNine / fast.rateNine)} x)`);
    log(`${' '.repeat(tag.length)}  target: none added, judged as p99 added <= max(${TARGET_ABS_MS} ms, ${TARGET_REL * 100} % of the fast run's ${f1(fast.nin.p99)} ms) = ${f1(bound)} ms: ${verdict(ok)}${loaded}; the slow endpoint received ${slow.slowN} of its ${N} meanwhile`);
    parts.push(`nine p99 ${f1(fast.nin.p99)} -> ${f1(slow.nin.p99)} ms with #${E} slow (${sg(dP99)}) ${verdict(ok)}${loaded ? ' LOADED' : ''}, slow endpoint received ${slow.slowN}`);
    const ctl = results.find((r) => r.mode === mode && r.kind === 'nine');
    if (ctl) {
      const c99 = slow.nin.p99 - ctl.nin.p99;
      log(`${' '.repeat(tag.length)}  against the control run with endpoints #1-#9 alone: p50 ${sg(slow.nin.p50 - ctl.nin.p50)} ms, p99 ${sg(c99)} ms (${sg((100 * c99) / ctl.nin.p99)} %), deliveries/s ${f2(slow.rateNine / ctl.rateNine)} x: ${verdict(c99 <= Math.max(TARGET_ABS_MS, TARGET_REL * ctl.nin.p99))} by the same rule`);
    }
  }
  log(`SUMMARY webhooks: ${parts.join('; ')}${invalid ? ' INVALID' : ''}`);
  return invalid ? 1 : 0;
}

const entry = POSTER ? poster().then(() => 0) : main();
entry.then((rc) => process.exit(rc), (e) => {
  console.error(`webhooks: ${e.stack || e.message}`);
  process.exit(1);
});
