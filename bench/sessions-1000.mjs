// Benchmark 1, the driver (run it through bench/sessions-1000, which raises the fd limit,
// checks the process limits and cleans up). N simulator sessions (default 1000) are
// provisioned, linked and left pinging every 15 s; then the daemon's RSS and CPU are
// measured over a fixed window. Loopback only; every loop is bounded in count and time.
//
// argv[2]: a fresh temp directory (owned by the wrapper, which removes it).
// Environment: SB_BUILD (absolute build dir), CLK_TCK, BENCH_SESSIONS (1000),
// BENCH_WINDOW_S (60), BENCH_PING_MS (15000), BENCH_PHASE_TIMEOUT_S (600),
// BENCH_PROFILE_CMD (a shell command run during the window with SB_DAEMON_PID set).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { freePort, sleep, sign, workerKey, workerPids } from '../tests/integration/lib.mjs';
import { spawnDaemon } from './sblib.mjs';

const TMP = process.argv[2];
if (!TMP || !fs.existsSync(TMP)) {
  console.error('usage: node bench/sessions-1000.mjs <temp dir>  (use bench/sessions-1000)');
  process.exit(2);
}
const BUILD = path.resolve(process.env.SB_BUILD || 'build');
const DAEMON = path.join(BUILD, 'switchboard');
const SIM = path.join(BUILD, 'sim-worker');
const N = Number(process.env.BENCH_SESSIONS || 1000);
const WINDOW_S = Number(process.env.BENCH_WINDOW_S || 60);
const PING_MS = Number(process.env.BENCH_PING_MS || 15000);
const PHASE_TIMEOUT_MS = Number(process.env.BENCH_PHASE_TIMEOUT_S || 600) * 1000;
const CLK_TCK = Number(process.env.CLK_TCK || 100);
const MASTER = 'bench-master-secret-0123456789abcdef';
const API_KEY = 'bench-admin-key-0123456789abcdef';
const PROVISION_CONCURRENCY = 8;
const SCAN_CONCURRENCY = 16;
const POLL_MS = 500;
const TARGET_RSS_MIB = 40;
const TARGET_CPU_PCT = 5;

const DATA = path.join(TMP, 'data');
const problems = []; // anything that looked wrong, printed at the end

const t = () => performance.now();
const secs = (ms) => (ms / 1000).toFixed(1);
const mib = (kib) => (kib / 1024).toFixed(1);
const log = (...a) => console.log(...a);
const verdict = (ok) => (ok ? 'PASS' : 'MISS');

// ---------------------------------------------------------------- /proc readers

function readProc(pid, file) {
  try { return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8'); } catch { return null; }
}
function rssKiB(pid) {
  const s = readProc(pid, 'status');
  const m = s && s.match(/^VmRSS:\s+(\d+) kB/m);
  return m ? Number(m[1]) : 0;
}
function cpuTicks(pid) {
  const s = readProc(pid, 'stat');
  if (!s) return 0;
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
}
function fdCount(pid) {
  try { return fs.readdirSync(`/proc/${pid}/fd`).length; } catch { return -1; }
}
function netstat() {
  // TcpExt ListenOverflows / ListenDrops (system-wide; the machine is otherwise quiet)
  const s = readProc('self/net', 'netstat') || fs.readFileSync('/proc/net/netstat', 'utf8');
  const lines = s.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i].startsWith('TcpExt:')) continue;
    const k = lines[i].split(' ');
    const v = lines[i + 1].split(' ');
    const get = (n) => Number(v[k.indexOf(n)] || 0);
    return { overflows: get('ListenOverflows'), drops: get('ListenDrops') };
  }
  return { overflows: 0, drops: 0 };
}

// ---------------------------------------------------------------- HTTP

let BASE;
async function api(method, p, body) {
  const h = { 'X-API-Key': API_KEY };
  let payload;
  if (body !== undefined) {
    payload = JSON.stringify(body);
    h['Content-Type'] = 'application/json';
  }
  const res = await fetch(`${BASE}${p}`, { method, headers: h, body: payload, signal: AbortSignal.timeout(30000) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch {}
  return { status: res.status, json, text };
}

async function metrics() {
  const r = await api('GET', '/metrics');
  const out = {};
  for (const line of r.text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

// one signed command to a simulator, on a fresh connection (1,000 origins: no pooling)
function simCall(address, sessionId, p, body) {
  const raw = JSON.stringify(body);
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  const headers = { ...sign(workerKey(sessionId, MASTER), raw), 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(raw) };
  return new Promise((resolve) => {
    const req = http.request({ host, port, path: p, method: 'POST', headers, agent: false, timeout: 10000 }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, text: e.message }));
    req.end(raw);
  });
}

// runs fn(i) for i in [0,n) with at most c in flight
async function pool(n, c, fn) {
  let next = 0;
  const workers = Array.from({ length: Math.min(c, n) }, async () => {
    while (next < n) {
      const i = next++;
      await fn(i);
    }
  });
  await Promise.all(workers);
}

// polls GET /api/sessions until every session has `status` (bounded); returns stats
async function waitAll(status, { timeoutMs = PHASE_TIMEOUT_MS, onPoll } = {}) {
  const start = t();
  let listMs = [], bytes = 0, last = {};
  for (let polls = 0; ; polls++) {
    const q0 = t();
    const r = await api('GET', '/api/sessions');
    listMs.push(t() - q0);
    bytes = r.text.length;
    if (r.status !== 200) throw new Error(`GET /api/sessions answered ${r.status}: ${r.text.slice(0, 200)}`);
    const counts = {};
    for (const s of r.json.sessions) counts[s.status] = (counts[s.status] || 0) + 1;
    last = { counts, sessions: r.json.sessions, count: r.json.count };
    if (onPoll) onPoll(counts);
    if ((counts[status] || 0) >= N) return { ok: true, ms: t() - start, last, listMs, bytes, polls };
    if (t() - start > timeoutMs) return { ok: false, ms: t() - start, last, listMs, bytes, polls };
    await sleep(POLL_MS);
  }
}

const fmtCounts = (c) => Object.entries(c).map(([k, v]) => `${k}=${v}`).join(' ');
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s.length ? s[Math.floor(s.length / 2)] : 0; };

// ---------------------------------------------------------------- run

let daemon = null;
let daemonExited = null;

async function main() {
  log(`== sessions-${N}: ${N} simulator sessions provisioned, linked and pinging every ${PING_MS / 1000} s ==`);
  const port = await freePort();
  BASE = `http://127.0.0.1:${port}`;
  const env = {
    PATH: process.env.PATH,
    HOME: TMP,
    ENV_FILE: path.join(TMP, 'no.env'),
    DATA_DIR: DATA,
    ORCH_PORT: String(port),
    API_KEY,
    WEBHOOK_SECRET: MASTER,
    PROVISIONING_INTERVAL_MS: '0',
    MAX_WORKERS: '2000',
    LOG_LEVEL: 'warn',
    WORKER_COMMAND: `${SIM} --ping-ms ${PING_MS} --qr-ms 20000`,
  };
  log(`daemon: ${DAEMON} on 127.0.0.1:${port}, DATA_DIR ${DATA}`);
  log(`settings: PROVISIONING_INTERVAL_MS=0 MAX_WORKERS=2000 LOG_LEVEL=warn WORKER_COMMAND="sim-worker --ping-ms ${PING_MS} --qr-ms 20000", other settings default (WATCHDOG_INTERVAL_MS 60000)`);
  ({ proc: daemon, exited: daemonExited } = await spawnDaemon(TMP, env, BASE));
  const pid = daemon.pid;
  const limits = readProc(pid, 'limits') || '';
  const nofile = (limits.match(/^Max open files\s+(\d+)\s+(\d+)/m) || []).slice(1).join(' / ');
  const nproc = (limits.match(/^Max processes\s+(\S+)\s+(\S+)/m) || []).slice(1).join(' / ');
  log(`daemon pid ${pid}: open files soft/hard ${nofile}, processes soft/hard ${nproc}, RSS at start ${mib(rssKiB(pid))} MiB`);
  const net0 = netstat();

  // ---- 1. provision
  const tick0 = cpuTicks(pid);
  const p0 = t();
  const provFail = [];
  await pool(N, PROVISION_CONCURRENCY, async () => {
    const r = await api('POST', '/api/sessions/provision', {});
    if (r.status !== 201) provFail.push(`${r.status} ${r.text.slice(0, 160)}`);
  });
  const provAnsweredMs = t() - p0;
  if (provFail.length) {
    problems.push(`${provFail.length} of ${N} POST /api/sessions/provision failed; first: ${provFail[0]}`);
  }
  log(`provision: ${N - provFail.length}/${N} answered 201 in ${secs(provAnsweredMs)} s (${PROVISION_CONCURRENCY} in flight)`);
  const qr = await waitAll('qr_ready');
  const provMs = t() - p0;
  const provTicks = cpuTicks(pid) - tick0;
  log(`provision: ${qr.ok ? 'all' : 'NOT all'} ${N} qr_ready after ${secs(provMs)} s (${fmtCounts(qr.last.counts)}); daemon CPU ${(provTicks / CLK_TCK).toFixed(1)} s`);
  if (!qr.ok) problems.push(`only ${qr.last.counts.qr_ready || 0} of ${N} sessions reached qr_ready within ${PHASE_TIMEOUT_MS / 1000} s: ${fmtCounts(qr.last.counts)}`);

  // ---- 2. link every session
  const tick1 = cpuTicks(pid);
  const l0 = t();
  const sessions = qr.last.sessions.filter((s) => s.worker && s.worker.address);
  const scanFail = [];
  await pool(sessions.length, SCAN_CONCURRENCY, async (i) => {
    const s = sessions[i];
    const num = Number(s.sessionId.replace('worker_', ''));
    const phone = `9725${String(num).padStart(8, '0')}`;
    const r = await simCall(s.worker.address, s.sessionId, '/sim/scan', { phoneNumber: phone });
    if (r.status !== 200) scanFail.push(`${s.sessionId} ${r.status} ${r.text.slice(0, 160)}`);
  });
  const scansMs = t() - l0;
  if (scanFail.length) problems.push(`${scanFail.length} of ${sessions.length} POST /sim/scan failed; first: ${scanFail[0]}`);
  log(`link: ${sessions.length - scanFail.length}/${sessions.length} signed /sim/scan answered 200 in ${secs(scansMs)} s (${SCAN_CONCURRENCY} in flight)`);
  const conn = await waitAll('connected');
  const linkMs = t() - l0;
  const linkTicks = cpuTicks(pid) - tick1;
  log(`link: ${conn.ok ? 'all' : 'NOT all'} ${N} connected after ${secs(linkMs)} s (${fmtCounts(conn.last.counts)}); daemon CPU ${(linkTicks / CLK_TCK).toFixed(1)} s`);
  if (!conn.ok) problems.push(`only ${conn.last.counts.connected || 0} of ${N} sessions connected within ${PHASE_TIMEOUT_MS / 1000} s: ${fmtCounts(conn.last.counts)}`);
  log(`GET /api/sessions with ${conn.last.count} sessions: ${(conn.bytes / 1024).toFixed(0)} KiB, median ${median(conn.listMs).toFixed(1)} ms, max ${Math.max(...conn.listMs).toFixed(1)} ms (${conn.listMs.length} polls)`);

  // ---- 3. steady state: everyone pinging; the window is measured without any API traffic
  // but the two /metrics reads at its ends
  const m0 = await metrics();
  // optional: a profiler attached for the window, e.g.
  // BENCH_PROFILE_CMD='perf record -g -p $SB_DAEMON_PID -o /tmp/sb.perf -- sleep 60'
  let prof = null;
  if (process.env.BENCH_PROFILE_CMD) {
    log(`profiling the window: ${process.env.BENCH_PROFILE_CMD}`);
    prof = spawn('bash', ['-c', process.env.BENCH_PROFILE_CMD], { env: { ...process.env, SB_DAEMON_PID: String(pid) }, stdio: 'inherit' });
  }
  const w0 = t();
  const c0 = cpuTicks(pid);
  let rssMax = rssKiB(pid);
  let rssMin = rssMax;
  let fdMax = fdCount(pid);
  const trace = []; // every 5 s: [RSS MiB, CPU % over the 5 s, open fds]
  let lastTicks = c0, lastT = w0;
  for (let i = 1; t() - w0 < WINDOW_S * 1000; i++) {
    await sleep(Math.max(0, Math.min(w0 + i * 1000, w0 + WINDOW_S * 1000) - t()));
    const r = rssKiB(pid);
    if (!r) throw new Error('the daemon is gone during the window');
    const fds = fdCount(pid);
    rssMax = Math.max(rssMax, r);
    rssMin = Math.min(rssMin, r);
    fdMax = Math.max(fdMax, fds);
    if (i % 5 === 0) {
      const ticks = cpuTicks(pid), now = t();
      trace.push([mib(r), ((100 * (ticks - lastTicks)) / CLK_TCK / ((now - lastT) / 1000)).toFixed(1), fds]);
      lastTicks = ticks;
      lastT = now;
    }
  }
  const c1 = cpuTicks(pid);
  const w1 = t();
  if (prof && prof.exitCode === null) await Promise.race([new Promise((r) => prof.on('exit', r)), sleep(30000)]);
  const m1 = await metrics();
  const rssEnd = rssKiB(pid);
  const elapsedS = (w1 - w0) / 1000;
  const cpuPct = (100 * (c1 - c0)) / CLK_TCK / elapsedS;
  const pingKey = 'switchboard_worker_events_total{type="PING"}';
  const pings = (m1[pingKey] || 0) - (m0[pingKey] || 0);
  const commits = (m1.switchboard_store_commits_total || 0) - (m0.switchboard_store_commits_total || 0);

  const inst = fs.readFileSync(path.join(DATA, 'instance_id'), 'utf8').trim();
  const sims = workerPids(inst);
  let simRss = 0;
  for (const p of sims) simRss += rssKiB(p);
  const net1 = netstat();

  log('');
  log(`== sessions-${N} results (window ${elapsedS.toFixed(1)} s, all ${N} pinging every ${PING_MS / 1000} s) ==`);
  log(`seconds to provision ${N} (PROVISIONING_INTERVAL_MS=0): ${secs(provMs)} s${qr.ok ? '' : ' (NOT all qr_ready)'}`);
  log(`seconds to link ${N} (first /sim/scan to all connected): ${secs(linkMs)} s${conn.ok ? '' : ' (NOT all connected)'}`);
  log(`daemon RSS max:        ${mib(rssMax).padStart(6)} MiB  (target <= ${TARGET_RSS_MIB} MiB) ${verdict(rssMax / 1024 <= TARGET_RSS_MIB)}`);
  log(`daemon RSS at the end: ${mib(rssEnd).padStart(6)} MiB  (target <= ${TARGET_RSS_MIB} MiB) ${verdict(rssEnd / 1024 <= TARGET_RSS_MIB)}   (min in window ${mib(rssMin)} MiB)`);
  log(`daemon CPU:            ${cpuPct.toFixed(2).padStart(6)} %  of one core (target <= ${TARGET_CPU_PCT} %) ${verdict(cpuPct <= TARGET_CPU_PCT)}   (${((c1 - c0) / CLK_TCK).toFixed(2)} s CPU in ${elapsedS.toFixed(1)} s)`);
  log(`PING events received:  ${(pings / elapsedS).toFixed(1).padStart(6)} /s  (${pings} in the window; ${N} every ${PING_MS / 1000} s = ${(N * 1000 / PING_MS).toFixed(1)}/s expected), ${commits} store commits`);
  log(`simulators:            ${sims.length} running, total RSS ${mib(simRss)} MiB (${(simRss / Math.max(1, sims.length)).toFixed(0)} KiB each), for information`);
  log(`daemon open fds:       max ${fdMax} in the window`);
  log(`every 5 s, RSS MiB:    ${trace.map((x) => x[0]).join(' ')}`);
  log(`every 5 s, CPU %:      ${trace.map((x) => x[1]).join(' ')}`);
  log(`every 5 s, open fds:   ${trace.map((x) => x[2]).join(' ')}`);
  log(`(the watchdog checks every worker with GET /health every WATCHDOG_INTERVAL_MS = 60 s: a 60 s window holds one`);
  log(` sweep, BENCH_WINDOW_S=250 four, which shows whether the RSS keeps what a sweep allocates)`);
  // error lines in the workers' logs (e.g. a worker that could not bind its WORKER_LISTEN port)
  const errs = new Map();
  const wlogs = path.join(DATA, 'logs');
  for (const f of fs.existsSync(wlogs) ? fs.readdirSync(wlogs) : []) {
    let text = '';
    try { text = fs.readFileSync(path.join(wlogs, f), 'utf8'); } catch { continue; }
    for (const l of text.split('\n')) {
      if (!/^(error|warn) /.test(l)) continue;
      const k = l.replace(/\d+/g, 'N').slice(0, 120);
      const e = errs.get(k) || { n: 0, example: `${f}: ${l}` };
      e.n++;
      errs.set(k, e);
    }
  }
  for (const e of errs.values()) log(`worker logs: ${e.n} x ${e.example}`);
  const restarts = m1.switchboard_worker_restarts_total || 0;
  const wd = m1.switchboard_watchdog_restarts_total || 0;
  const sfail = m1.switchboard_worker_start_failures_total || 0;
  const rejected = m1['switchboard_worker_events_total{type="rejected"}'] || 0;
  const non2xx = Object.entries(m1).filter(([k, v]) => k.startsWith('switchboard_http_requests_total') && !/status="2\d\d"/.test(k) && v > 0);
  log(`health: starts ${m1.switchboard_worker_starts_total}, restarts ${restarts}, watchdog restarts ${wd}, start failures ${sfail}, rejected events ${rejected}, listen overflows ${net1.overflows - net0.overflows} / drops ${net1.drops - net0.drops} (system-wide, whole run)`);
  if (restarts || wd || sfail) problems.push(`workers were restarted during the run: restarts=${restarts} watchdog=${wd} start_failures=${sfail}`);
  if (rejected) problems.push(`${rejected} worker events were rejected`);
  if (non2xx.length) problems.push(`non-2xx API answers: ${non2xx.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  if (net1.overflows > net0.overflows) problems.push(`TCP listen queue overflows during the run: ${net1.overflows - net0.overflows}`);
  if (sims.length !== N) problems.push(`${sims.length} simulators running at the end of the window, expected ${N}`);
  if (WINDOW_S * 1000 >= 2 * PING_MS && Math.abs(pings / elapsedS - N * 1000 / PING_MS) > 0.1 * N * 1000 / PING_MS) problems.push(`PING rate ${(pings / elapsedS).toFixed(1)}/s is more than 10 % off the expected ${(N * 1000 / PING_MS).toFixed(1)}/s`);

  // ---- 4. stop: SIGTERM stops every worker
  const s0 = t();
  daemon.kill('SIGTERM');
  const exit = await Promise.race([daemonExited, sleep(60000).then(() => null)]);
  const stopMs = t() - s0;
  if (!exit) {
    problems.push('the daemon did not exit within 60 s of SIGTERM');
  } else {
    log(`stop: SIGTERM -> daemon exited (code ${exit.code}${exit.signal ? ` signal ${exit.signal}` : ''}) after ${secs(stopMs)} s`);
    if (exit.code !== 0) problems.push(`the daemon exited with code ${exit.code} signal ${exit.signal}`);
  }
  await sleep(200);
  const left = workerPids(inst);
  if (left.length) {
    problems.push(`${left.length} simulator(s) still running after the daemon stopped; killed`);
    for (const p of left) { try { process.kill(-p, 'SIGKILL'); } catch { try { process.kill(p, 'SIGKILL'); } catch {} } }
  }
  log(`stop: ${left.length} simulator(s) left running after the daemon exited`);
  const dlog = fs.readFileSync(path.join(TMP, 'daemon.log'), 'utf8').split('\n').filter(Boolean);
  const interesting = dlog.filter((l) => !/ (info|debug) /.test(l));
  if (interesting.length) {
    log(`daemon log: ${interesting.length} warn/error line(s); first ${Math.min(10, interesting.length)}:`);
    for (const l of interesting.slice(0, 10)) log(`    ${l}`);
  }

  log('');
  if (problems.length) {
    log('PROBLEMS:');
    for (const p of problems) log(`  - ${p}`);
  } else {
    log('problems: none seen (no restarts, no rejected events, no failed requests, no listen overflows, no leftover workers)');
  }
  log(`SUMMARY sessions-${N}: provision ${secs(provMs)} s, link ${secs(linkMs)} s, daemon RSS max ${mib(rssMax)} MiB ${verdict(rssMax / 1024 <= TARGET_RSS_MIB)}, end ${mib(rssEnd)} MiB ${verdict(rssEnd / 1024 <= TARGET_RSS_MIB)}, CPU ${cpuPct.toFixed(2)} % ${verdict(cpuPct <= TARGET_CPU_PCT)}, ${(pings / elapsedS).toFixed(1)} PING/s, sims ${mib(simRss)} MiB`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`sessions-${N}: FAILED: ${e.stack || e}`);
    if (problems.length) console.error(`problems so far:\n  - ${problems.join('\n  - ')}`);
    if (daemon && daemon.exitCode === null) daemon.kill('SIGTERM');
    process.exit(1);
  },
);
