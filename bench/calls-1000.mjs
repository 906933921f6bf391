// Benchmark 6, the driver (run it through bench/calls-1000, which checks the build and the
// test dependencies and stops whatever is left on exit): a 1,000-lead outbound call run
// against the fake Twilio (tests/fakes/twilio.mjs, in this process) with ~20 ms calls,
// TWILIO_CPS=0 (no create spacing) and the default CALL_CONCURRENCY (3).
//
// Measured:
//   - wall time: from the answer to POST /api/outbound_calls/start to GET
//     /api/outbound/runs/{id} answering status "completed" (the driver waits on the fake's
//     events for the last terminal status callback answered, then polls the API every
//     10 ms); beside the ideal ceil(N / 3) x the calls' nominal length;
//   - slot-refill latency, on the fake's side: from the daemon's answer to a terminal status
//     callback (the delivery's done time) to the next create request arriving at the fake
//     (its `at`). The k-th terminal callback (in answer order) freed the slot that the
//     (k + 3)-th create (in arrival order) refills; the first 3 creates fill the empty
//     slots. p50 / p99 / max over the N - 3 refills; target p99 < 5 ms. The daemon's own
//     histogram (switchboard_call_slot_refill_seconds from GET /metrics) is printed beside;
//   - highest concurrency: the fake's maxActive (a call is active from its create to its
//     terminal status; must be 3) and the creates per To (each lead exactly once).
// The fake's clock is performance.timeOrigin + performance.now() (sub-millisecond), not
// Date.now(). Loopback only; every wait is bounded.
//
// argv[2]: a fresh temp directory (owned by the wrapper, which removes it).
// Environment: SB_BUILD, CLK_TCK, CALLS_LEADS (1000), CALLS_INITIATE_MS (2),
// CALLS_RING_MS (3), CALLS_ANSWER_MS (5), CALLS_DURATION_MS (10) (the fake's lifecycle: create
// -> 'initiated' -> 'ringing' -> 'in-progress' -> 'completed', 20 ms in all),
// CALLS_TIMEOUT_S (120, for the run), CALLS_SQLITE_SYNCHRONOUS (unset: the daemon's default,
// FULL), CALLS_PROFILE_CMD (a shell command started just before the run with SB_DAEMON_PID
// set, e.g. an strace; the driver waits for it to end, at most 30 s after the run).
// Prints "RESULT key=value ..." and a SUMMARY line at the end.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startFakeTwilio } from '../tests/fakes/twilio.mjs';
import { freePort, sleep } from '../tests/integration/lib.mjs';
import { spawnDaemon } from './sblib.mjs';

const TMP = process.argv[2];
if (!TMP || !fs.existsSync(TMP)) {
  console.error('usage: node bench/calls-1000.mjs <temp dir>  (use bench/calls-1000)');
  process.exit(2);
}
const BUILD = path.resolve(process.env.SB_BUILD || 'build');
const DAEMON = path.join(BUILD, 'switchboard');
const SIM = path.join(BUILD, 'sim-worker');
const N = Number(process.env.CALLS_LEADS || 1000);
const LIFE = {
  initiateMs: Number(process.env.CALLS_INITIATE_MS ?? 2),
  ringMs: Number(process.env.CALLS_RING_MS ?? 3),
  answerMs: Number(process.env.CALLS_ANSWER_MS ?? 5),
  durationMs: Number(process.env.CALLS_DURATION_MS ?? 10),
};
const CALL_MS = LIFE.initiateMs + LIFE.ringMs + LIFE.answerMs + LIFE.durationMs;
const TIMEOUT_MS = Number(process.env.CALLS_TIMEOUT_S || 120) * 1000;
const CLK_TCK = Number(process.env.CLK_TCK || 100);
const SYNC = process.env.CALLS_SQLITE_SYNCHRONOUS || '';
const SLOTS = 3; // CALL_CONCURRENCY, the daemon's default (checked against the run's answer)
const TARGET_P99_MS = 5;
const FROM = '+15005550006';
const MASTER = 'bench-master-secret-0123456789abcdef';
const API_KEY = 'bench-admin-key-0123456789abcdef';
const DATA = path.join(TMP, 'data');

const now = () => performance.timeOrigin + performance.now(); // ms since the epoch, sub-ms
const log = (...a) => console.log(...a);
const verdict = (ok) => (ok ? 'PASS' : 'MISS');
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '?');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '?');
const problems = [];

// nearest rank
function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
function stats(values) {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), max: s[s.length - 1], min: s[0], sorted: s };
}
const fmtStats = (x) => `p50 ${f2(x.p50)}  p90 ${f2(x.p90)}  p99 ${f2(x.p99)}  max ${f2(x.max)}  min ${f2(x.min)} ms (n=${x.n})`;

function readProc(pid, file) {
  try { return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8'); } catch { return null; }
}
// busy and total jiffies of the whole machine (/proc/stat "cpu" line; iowait counts as idle)
function machineTicks() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - (f[4] || 0), total };
}
function cpuTicks(pid) {
  const s = readProc(pid, 'stat');
  if (!s) return 0;
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

let BASE;
async function api(method, p, body, { contentType } = {}) {
  const h = { 'X-API-Key': API_KEY };
  let payload;
  if (body !== undefined) {
    payload = typeof body === 'string' ? body : JSON.stringify(body);
    h['Content-Type'] = contentType || 'application/json';
  }
  const res = await fetch(`${BASE}${p}`, { method, headers: h, body: payload, signal: AbortSignal.timeout(30000) });
  const at = now();
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch {}
  return { status: res.status, json, text, at };
}

async function metrics() {
  const r = await api('GET', '/metrics');
  if (r.status !== 200) throw new Error(`GET /metrics answered ${r.status}: ${r.text.slice(0, 200)}`);
  const out = {};
  for (const line of r.text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

// the daemon's refill histogram: count, sum, and the upper bound of the bucket holding each quantile
function refillHistogram(m) {
  const name = 'switchboard_call_slot_refill_seconds';
  const buckets = [];
  for (const [k, v] of Object.entries(m)) {
    const mm = k.match(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\}$`));
    if (mm) buckets.push({ le: mm[1] === '+Inf' ? Infinity : Number(mm[1]), cum: v });
  }
  buckets.sort((a, b) => a.le - b.le);
  const count = m[`${name}_count`] ?? 0;
  const sum = m[`${name}_sum`] ?? 0;
  const q = (p) => {
    const b = buckets.find((x) => x.cum >= p * count);
    return b ? b.le : NaN;
  };
  return { count, sum, p50: q(0.5), p99: q(0.99), buckets };
}
const leMs = (s) => (s === Infinity ? '+Inf' : `${f1(s * 1000)} ms`);

let daemon = null;
let daemonExited = null;
let tw = null;

async function main() {
  log(`== calls-${N}: ${N} leads, one run, against the fake Twilio; ${CALL_MS} ms calls, TWILIO_CPS=0, ${SLOTS} at a time ==`);
  tw = await startFakeTwilio({ ...LIFE, now });
  log(`fake Twilio: ${tw.url}, lifecycle initiateMs ${LIFE.initiateMs} + ringMs ${LIFE.ringMs} + answerMs ${LIFE.answerMs} + durationMs ${LIFE.durationMs} = ${CALL_MS} ms from the create's arrival to the terminal status (all callbacks subscribed, ordered, no delay)`);

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
    WORKER_COMMAND: SIM,
    LOG_LEVEL: 'warn',
    TWILIO_API_BASE: tw.url,
    TWILIO_ACCOUNT_SID: tw.accountSid,
    TWILIO_AUTH_TOKEN: tw.authToken,
    TWILIO_FROM: FROM,
    TWILIO_TWIML_URL: 'http://127.0.0.1:9/twiml',
    PUBLIC_URL: BASE,
    TWILIO_CPS: '0',
    CALL_HOURS: '00:00-24:00',
  };
  if (SYNC) env.SQLITE_SYNCHRONOUS = SYNC;
  log(`daemon: ${DAEMON} on 127.0.0.1:${port}, DATA_DIR ${DATA} (${fsType(TMP)})`);
  log(`settings: TWILIO_CPS=0 CALL_HOURS=00:00-24:00 LOG_LEVEL=warn PUBLIC_URL=${BASE} TWILIO_TWIML_URL=http://127.0.0.1:9/twiml` +
    ` SQLITE_SYNCHRONOUS=${SYNC || '(default FULL)'}, CALL_CONCURRENCY and the rest default`);
  ({ proc: daemon, exited: daemonExited } = await spawnDaemon(TMP, env, BASE));
  const pid = daemon.pid;

  // ---- 1. the leads: one CSV import, then their ids page by page
  let csv = 'name,phone\n';
  for (let i = 0; i < N; i++) csv += `Lead ${i},+1555${String(i).padStart(7, '0')}\n`;
  const imp = await api('POST', '/api/leads/import', csv, { contentType: 'text/csv' });
  if (imp.status !== 200 || imp.json?.imported !== N) throw new Error(`POST /api/leads/import answered ${imp.status}: ${imp.text.slice(0, 300)}`);
  const ids = [];
  for (let page = 1; page <= Math.ceil(N / 100) + 1 && ids.length < N; page++) {
    const r = await api('GET', `/api/leads?page=${page}&page_size=100`);
    if (r.status !== 200) throw new Error(`GET /api/leads answered ${r.status}: ${r.text.slice(0, 200)}`);
    for (const l of r.json.leads) ids.push(l.id);
  }
  if (ids.length !== N) throw new Error(`${ids.length} lead ids read back, expected ${N}`);
  log(`leads: ${N} imported in one CSV POST /api/leads/import (${(csv.length / 1024).toFixed(1)} KiB), ids read back`);

  // ---- 2. the run
  const m0 = await metrics();
  let termDone = 0;
  let lastTermDoneAt = 0;
  const allAnswered = new Promise((resolve) => {
    tw.events.on('callback', (rec) => {
      if (rec.kind !== 'status' || rec.event !== 'completed' || !rec.done) return;
      termDone++;
      const d = rec.deliveries[rec.deliveries.length - 1];
      if (d && d.doneAt > lastTermDoneAt) lastTermDoneAt = d.doneAt;
      if (termDone >= N) resolve();
    });
  });
  let prof = null;
  if (process.env.CALLS_PROFILE_CMD) {
    log(`profiling the run: ${process.env.CALLS_PROFILE_CMD}`);
    prof = spawn('bash', ['-c', process.env.CALLS_PROFILE_CMD], { env: { ...process.env, SB_DAEMON_PID: String(pid) }, stdio: 'inherit' });
    await sleep(1000); // let it attach
  }
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const cpu0 = cpuTicks(pid);
  const self0 = cpuTicks('self');
  const mach0 = machineTicks();
  const sentAt = now();
  const st = await api('POST', '/api/outbound_calls/start', { lead_ids: ids });
  const t0 = st.at; // the start answer (its headers)
  if (st.status !== 202 || !st.json?.run_id) throw new Error(`POST /api/outbound_calls/start answered ${st.status}: ${st.text.slice(0, 300)}`);
  const runId = st.json.run_id;
  const timedOut = await Promise.race([allAnswered.then(() => false), sleep(TIMEOUT_MS).then(() => true)]);
  if (timedOut) problems.push(`only ${termDone} of ${N} terminal callbacks answered within ${TIMEOUT_MS / 1000} s`);
  // confirm through the API: every 10 ms, at most 10 s
  let run = null;
  let tDone = NaN;
  let polls = 0;
  for (const end = now() + 10000; now() < end; polls++) {
    const r = await api('GET', `/api/outbound/runs/${runId}`);
    if (r.status === 200 && r.json.status === 'completed') {
      run = r.json;
      tDone = r.at;
      break;
    }
    run = r.json;
    await sleep(10);
  }
  const cpu1 = cpuTicks(pid);
  const self1 = cpuTicks('self');
  const mach1 = machineTicks();
  loopDelay.disable();
  if (prof && prof.exitCode === null) await Promise.race([new Promise((r) => prof.on('exit', r)), sleep(30000)]);
  const m1 = await metrics();
  if (!run || run.status !== 'completed') problems.push(`the run did not reach status completed: ${JSON.stringify(run)}`);
  else if (run.completed !== N) problems.push(`the run completed with ${run.completed} completed calls of ${N}: ${JSON.stringify(run)}`);
  if (run && run.concurrency !== SLOTS) problems.push(`the run's concurrency is ${run.concurrency}, this benchmark assumes ${SLOTS}`);

  // ---- 3. figures
  const wallMs = tDone - t0;
  const wallCbMs = lastTermDoneAt - t0;
  const ideal = Math.ceil(N / SLOTS) * CALL_MS;
  const creates = tw.requests.filter((r) => r.op === 'create').sort((a, b) => a.at - b.at);
  const okCreates = creates.filter((r) => r.answer && r.answer.status === 201);
  const byTo = new Map();
  for (const r of creates) byTo.set(r.params.To, (byTo.get(r.params.To) || 0) + 1);
  const onceEach = byTo.size === N && [...byTo.values()].every((n) => n === 1);
  if (!onceEach) problems.push(`creates per To: ${byTo.size} numbers, ${[...byTo.values()].filter((n) => n > 1).length} dialled more than once`);
  if (okCreates.length !== creates.length) problems.push(`${creates.length - okCreates.length} creates were not answered 201`);
  const otherOps = tw.requests.filter((r) => r.op !== 'create');
  if (otherOps.length) problems.push(`the daemon made ${otherOps.length} other Twilio request(s): ${[...new Set(otherOps.map((r) => r.op))].join(', ')}`);

  const status = tw.callbacks.filter((c) => c.kind === 'status');
  const badCb = status.filter((c) => c.status !== 200);
  if (badCb.length) problems.push(`${badCb.length} status callbacks not answered 200; first: ${badCb[0].callStatus} ${badCb[0].status} ${badCb[0].error || ''}`);
  const terms = status.filter((c) => c.event === 'completed' && c.deliveries.length);
  const doneOf = (c) => c.deliveries[c.deliveries.length - 1].doneAt;
  const sentOf = (c) => c.deliveries[0].sentAt;
  terms.sort((a, b) => doneOf(a) - doneOf(b));
  // the k-th freed slot -> the (k + SLOTS)-th create
  const refill = [], refillSent = [];
  for (let k = 0; k + SLOTS < creates.length && k < terms.length; k++) {
    refill.push(creates[k + SLOTS].at - doneOf(terms[k]));
    refillSent.push(creates[k + SLOTS].at - sentOf(terms[k]));
  }
  const rf = stats(refill);
  const rfs = stats(refillSent);
  const negative = refill.filter((x) => x < 0).length;
  // the daemon's answer time to each callback, terminal and not
  const cbAnswer = (list) => stats(list.map((c) => c.deliveries[0].doneAt - c.deliveries[0].sentAt));
  const ansTerm = cbAnswer(terms);
  const ansOther = cbAnswer(status.filter((c) => c.event !== 'completed' && c.deliveries.length));
  // each call on the fake: create arrival -> terminal callback queued (the lifecycle), and ->
  // its answer (the slot as the daemon holds it)
  const calls = tw.callList();
  const callBySid = new Map(calls.map((c) => [c.sid, c]));
  const life = [], held = [], intervals = [];
  for (const c of terms) {
    const call = callBySid.get(c.sid);
    if (!call) continue;
    life.push(c.createdAt - call.request.at);
    held.push(doneOf(c) - call.request.at);
    intervals.push([call.request.at, doneOf(c)]);
  }
  const lf = stats(life);
  const hd = stats(held);
  // the most calls overlapping on the wire (create arrival .. terminal callback answered)
  const edges = [];
  for (const [a, b] of intervals) edges.push([a, 1], [b, -1]);
  edges.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let cur = 0, wireMax = 0;
  for (const [, d] of edges) { cur += d; wireMax = Math.max(wireMax, cur); }
  // create arrival -> 201 answered (the fake's side of the create)
  const firstCreateMs = creates.length ? creates[0].at - t0 : NaN;
  const h = refillHistogram(m1);
  const h0 = refillHistogram(m0);
  const hCount = h.count - h0.count;
  const commits = (m1.switchboard_store_commits_total || 0) - (m0.switchboard_store_commits_total || 0);
  const cpuS = (cpu1 - cpu0) / CLK_TCK;
  const selfS = (self1 - self0) / CLK_TCK;
  const machBusyS = (mach1.busy - mach0.busy) / CLK_TCK;
  const cores = Math.round((mach1.total - mach0.total) / CLK_TCK / ((tDone - sentAt) / 1000)) || 1;
  const othersS = Math.max(0, machBusyS - cpuS - selfS);
  // terminal callbacks in flight at the daemon together (sent before the previous one's answer)
  let overlapTerm = 0;
  for (let k = 1; k < terms.length; k++) if (sentOf(terms[k]) < doneOf(terms[k - 1])) overlapTerm++;
  const p99ok = rf.p99 < TARGET_P99_MS;
  const maxOk = tw.maxActive === SLOTS;
  const daemonRunMs = run && run.finished_at ? Date.parse(run.finished_at) - Date.parse(run.created_at) : NaN;

  log('');
  log(`== calls-${N} results (run ${runId}) ==`);
  log(`wall time:      ${f1(wallMs)} ms  start answer -> GET /api/outbound/runs/${runId} "completed" (${polls + 1} poll(s) after the last terminal callback's answer)`);
  log(`                ${f1(wallCbMs)} ms  start answer -> the last terminal callback answered; the daemon's created_at -> finished_at ${daemonRunMs} ms`);
  log(`ideal:          ${ideal} ms  ceil(${N}/${SLOTS}) x ${CALL_MS} ms   ratio ${(wallMs / ideal).toFixed(3)}`);
  log(`                (with the calls' measured length, median ${f2(lf.p50)} ms: ${f1(Math.ceil(N / SLOTS) * lf.p50)} ms, ratio ${(wallMs / (Math.ceil(N / SLOTS) * lf.p50)).toFixed(3)})`);
  log(`slot refill:    ${fmtStats(rf)}`);
  log(`                terminal callback answered -> next create arrives, N-${SLOTS} refills; target p99 < ${TARGET_P99_MS} ms ${verdict(p99ok)}; ${negative} negative (the create arrived before the callback's answer)`);
  log(`                from the terminal callback sent instead: ${fmtStats(rfs)}`);
  log(`                ${overlapTerm} terminal callbacks were sent before the previous one's answer (two slots freed in one go)`);
  log(`daemon metric:  switchboard_call_slot_refill_seconds count ${hCount}, p50 <= ${leMs(h.p50)}, p99 <= ${leMs(h.p99)} (bucket bounds), mean ${f2(h.count ? (h.sum / h.count) * 1000 : NaN)} ms; buckets ${h.buckets.map((b) => `${b.le === Infinity ? '+Inf' : b.le * 1000}:${b.cum}`).join(' ')} (le ms:cumulative)`);
  log(`concurrency:    maxActive ${tw.maxActive} (must be ${SLOTS}) ${verdict(maxOk)}; on the wire (create arrival .. terminal callback answered) at most ${wireMax}`);
  log(`creates:        ${creates.length} (${okCreates.length} answered 201) for ${byTo.size} numbers, ${onceEach ? 'each exactly once' : 'NOT each exactly once'}; first create ${f1(firstCreateMs)} ms after the start answer; other Twilio requests ${otherOps.length}`);
  log(`calls on fake:  lifecycle (create arrival -> terminal status) ${fmtStats(lf)}`);
  log(`                slot held as seen by the fake (create arrival -> terminal callback answered) ${fmtStats(hd)}`);
  log(`callbacks:      ${status.length} status callbacks, ${badCb.length} not answered 200; the daemon's answer time (sent -> answer received):`);
  log(`                terminal:     ${fmtStats(ansTerm)}`);
  log(`                non-terminal: ${fmtStats(ansOther)}`);
  log(`daemon:         ${cpuS.toFixed(2)} s CPU over the run (${f1((100 * cpuS) / (wallMs / 1000))} % of a core); ${commits} store commits (${(commits / N).toFixed(2)} per call)`);
  const ld = loopDelay;
  log(`machine:        ${machBusyS.toFixed(2)} s busy of ${cores} x ${f1((tDone - sentAt) / 1000)} s; daemon ${cpuS.toFixed(2)} s, driver + fake ${selfS.toFixed(2)} s, everything else ${othersS.toFixed(2)} s (${f1((100 * othersS) / ((tDone - sentAt) / 1000))} % of a core)`);
  log(`driver:         node event-loop delay (this process runs the fake) p50 ${f2(ld.percentile(50) / 1e6)} p99 ${f2(ld.percentile(99) / 1e6)} max ${f2(ld.max / 1e6)} ms (1 ms sampling)`);
  log(`                start request -> its answer ${f1(t0 - sentAt)} ms`);

  // ---- 4. stop
  daemon.kill('SIGTERM');
  const exit = await Promise.race([daemonExited, sleep(30000).then(() => null)]);
  if (!exit) problems.push('the daemon did not exit within 30 s of SIGTERM');
  else if (exit.code !== 0) problems.push(`the daemon exited with code ${exit.code} signal ${exit.signal}`);
  const dlog = fs.readFileSync(path.join(TMP, 'daemon.log'), 'utf8').split('\n').filter(Boolean);
  const interesting = dlog.filter((l) => !/ (info|debug) /.test(l));
  if (interesting.length) {
    log(`daemon log: ${interesting.length} warn/error line(s); first ${Math.min(10, interesting.length)}:`);
    for (const l of interesting.slice(0, 10)) log(`    ${l}`);
  }
  await tw.close();

  log('');
  if (problems.length) {
    log('PROBLEMS:');
    for (const p of problems) log(`  - ${p}`);
  } else {
    log('problems: none seen (run completed, every callback answered 200, every lead dialled once, no other Twilio requests)');
  }
  log(`RESULT wall_ms=${f1(wallMs)} ideal_ms=${ideal} ratio=${(wallMs / ideal).toFixed(3)} refill_p50_ms=${f2(rf.p50)} refill_p99_ms=${f2(rf.p99)} refill_max_ms=${f2(rf.max)} metric_count=${hCount} metric_p99_le_ms=${h.p99 === Infinity ? 'inf' : f1(h.p99 * 1000)} max_active=${tw.maxActive} creates=${creates.length} others_cpu_s=${othersS.toFixed(2)} valid=${problems.length ? 0 : 1}`);
  log(`SUMMARY calls-${N}: wall ${f1(wallMs)} ms (ideal ${ideal} ms, ratio ${(wallMs / ideal).toFixed(3)}), refill p50 ${f2(rf.p50)} / p99 ${f2(rf.p99)} / max ${f2(rf.max)} ms ${verdict(p99ok)}, maxActive ${tw.maxActive} ${verdict(maxOk)}, ${creates.length} creates${onceEach ? ' (each lead once)' : ' (NOT each lead once)'}, daemon histogram count ${hCount} p99 <= ${leMs(h.p99)}${problems.length ? ' INVALID' : ''}`);
  return problems.length ? 1 : 0;
}

function fsType(dir) {
  try {
    const mounts = fs.readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')).filter((f) => f.length > 2);
    let best = null;
    const real = fs.realpathSync(dir);
    for (const [, mnt, type] of mounts) if ((real === mnt || real.startsWith(mnt.endsWith('/') ? mnt : mnt + '/')) && (!best || mnt.length > best[0].length)) best = [mnt, type];
    return best ? `${best[1]} at ${best[0]}` : '?';
  } catch { return '?'; }
}

main().then(
  (rc) => process.exit(rc),
  async (e) => {
    console.error(`calls-${N}: FAILED: ${e.stack || e}`);
    if (problems.length) console.error(`problems so far:\n  - ${problems.join('\n  - ')}`);
    if (tw) console.error(`fake: ${tw.summary().slice(0, 2000)}`);
    if (daemon && daemon.exitCode === null) daemon.kill('SIGTERM');
    process.exit(1);
  },
);
