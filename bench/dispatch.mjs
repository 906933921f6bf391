// Benchmark 5, the daemon's side (run it through bench/dispatch, which also runs the
// BullMQ peer and prints the ratio). The daemon with a zero-gap, no-cap pacing profile at
// every trust level and TYPING_MAX_MS=0, S simulator sessions (default 100) provisioned
// and linked; then wrk posts exactly N messages (default 100,000; bench/send-n.lua) to
// POST /api/v1/send over DISPATCH_INFLIGHT (64) connections while the daemon dispatches
// them; once nothing is queued or sending (GET /api/stats, polled every 100 ms), every
// sent message is read back from GET /api/v1/messages?status=sent pages.
// Rate: sent / (the first createdAt -> the last sentAt), a window that includes posting
// all N. Latency: createdAt -> sentAt (includes the wait in the queue) and
// dispatchedAt -> sentAt (the worker's round trip and the MESSAGE_SENT event).
//
// DISPATCH_MODE=drain measures what the BullMQ peer's figure measures, a drain of a
// queue filled beforehand: the daemon first runs with the profile's active hours closed
// (a 1-minute window 12 h away), takes the N sends, and is stopped (SIGTERM); then it is
// started again on the same DATA_DIR with the window open (00:00-24:00), restarts the
// simulators (they keep their link in AUTH_DIR) and dispatches the stored queue. Rate:
// sent / (the first dispatchedAt -> the last sentAt); latency dispatchedAt -> sentAt.
//
// argv[2]: a fresh temp directory (the wrapper removes it).
// Environment: SB_BUILD, CLK_TCK, DISPATCH_MESSAGES (100000), DISPATCH_SESSIONS (100),
// DISPATCH_INFLIGHT (64), DISPATCH_WRK_THREADS (1), DISPATCH_TIMEOUT_S (600),
// DISPATCH_PICK (explicit: each message names its session, round-robin, as the BullMQ jobs
// do; daemon: no sessionId, the daemon picks),
// DISPATCH_SQLITE_SYNCHRONOUS (unset: the daemon's default), DISPATCH_MODE (live|drain),
// DISPATCH_SIM_NICE (0: the simulators run at the daemon's priority; N: at nice N, see simNice),
// DISPATCH_PROFILE_CMD (a shell command run during the measured phase with SB_DAEMON_PID set).
// Prints "RESULT key=value ..." as its last line for the wrapper.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { API_KEY, Daemon, OPEN_PROFILE, cpuTicks, log, machineTicks, quantile, rssKiB, schedstat, simNice, sleep } from './sblib.mjs';
import { workerPids } from '../tests/integration/lib.mjs';

const TMP = process.argv[2];
if (!TMP || !fs.existsSync(TMP)) {
  console.error('usage: node bench/dispatch.mjs <temp dir>  (use bench/dispatch)');
  process.exit(2);
}
const N = Number(process.env.DISPATCH_MESSAGES || 100000);
const S = Number(process.env.DISPATCH_SESSIONS || 100);
const INFLIGHT = Number(process.env.DISPATCH_INFLIGHT || 64);
const THREADS = Number(process.env.DISPATCH_WRK_THREADS || 1);
const BENCH = path.dirname(fileURLToPath(import.meta.url));
const TIMEOUT_MS = Number(process.env.DISPATCH_TIMEOUT_S || 600) * 1000;
const PICK = process.env.DISPATCH_PICK || 'explicit';
const CLK_TCK = Number(process.env.CLK_TCK || 100);
const MODE = process.env.DISPATCH_MODE || 'live';
const SIM_NICE = Number(process.env.DISPATCH_SIM_NICE || 0);

const ms = (iso) => (iso ? Date.parse(iso) : NaN);
let d = null;

async function countStatus(status) {
  const r = await d.api('GET', `/api/v1/messages?status=${status}&limit=1`);
  if (r.status !== 200) throw new Error(`GET /api/v1/messages?status=${status} answered ${r.status}: ${r.text.slice(0, 200)}`);
  return r.json.messages.length;
}

// every message of a status, page by page (bounded by N / 1000 + 10 pages)
async function listAll(status) {
  const out = [];
  let cursor = null;
  for (let page = 0; page < Math.ceil(N / 1000) + 10; page++) {
    const q = `/api/v1/messages?status=${status}&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const r = await d.api('GET', q, undefined, 60000);
    if (r.status !== 200) throw new Error(`GET ${q} answered ${r.status}: ${r.text.slice(0, 200)}`);
    out.push(...r.json.messages);
    cursor = r.json.nextCursor;
    if (!cursor) break;
  }
  return out;
}

// wrk posts exactly N sends (bench/send-n.lua); resolves {accepted, ms, out}
async function postN(ids, end) {
  const mq0 = (await d.metrics())['switchboard_messages_total{status="queued"}'] || 0;
  const queuedNow = async () => ((await d.metrics())['switchboard_messages_total{status="queued"}'] || 0) - mq0;
  const t0 = Date.now();
  // wrk sleeps for its whole -d even after its threads stopped (send-n.lua stops each at
  // its share): it is interrupted once the daemon counts N accepted
  let wrkTicks = 0;
  const out = await new Promise((resolve) => {
    const args = [`-t${THREADS}`, `-c${INFLIGHT}`, `-d${Math.ceil(TIMEOUT_MS / 1000)}s`, '-s', path.join(BENCH, 'send-n.lua'), d.base];
    const w = spawn('wrk', args, {
      env: { ...process.env, SB_API_KEY: API_KEY, SB_SEND_N: String(N), SB_THREADS: String(THREADS), SB_SESSIONS: PICK === 'explicit' ? String(ids.length) : '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    let exited = false;
    w.stdout.on('data', (x) => { text += x; });
    w.stderr.on('data', (x) => { text += x; });
    w.on('exit', () => { exited = true; resolve(text); });
    (async () => {
      while (!exited && Date.now() < end) {
        await sleep(100);
        if (!exited && (await queuedNow()) >= N) break;
      }
      wrkTicks = cpuTicks(w.pid);
      if (!exited) w.kill('SIGINT');
    })();
  });
  const ms = Date.now() - t0;
  const accepted = await queuedNow();
  const refused = out.split('\n').filter((l) => l.startsWith('send-n.lua:'));
  log(`daemon: ${accepted} of ${N} sends accepted in ${(ms / 1000).toFixed(2)} s (${Math.round(accepted / (ms / 1000))}/s${MODE === 'live' ? ' while dispatching' : ', nothing dispatched'}; wrk -t${THREADS} -c${INFLIGHT}, wrk CPU ${(wrkTicks / CLK_TCK).toFixed(2)} s)` +
    (refused.length ? `; refused, first: ${refused[0]}` : ''));
  if (accepted !== N) log(`wrk said:\n${out}`);
  return { accepted, ms, t0, wrkTicks };
}

// until nothing is queued or sending (GET /api/stats; the listing is the fallback)
async function waitDone(t0, end) {
  let lastLog = Date.now();
  while (Date.now() < end) {
    const st = await d.api('GET', '/api/stats');
    const m = st.json && st.json.messages;
    let q, s;
    if (m && typeof m.queued === 'number' && typeof m.sending === 'number') [q, s] = [m.queued, m.sending];
    else [q, s] = [await countStatus('queued'), await countStatus('sending')];
    if (!q && !s) return true;
    if (Date.now() - lastLog >= 5000) {
      lastLog = Date.now();
      log(`daemon: ${((lastLog - t0) / 1000).toFixed(0)} s: ${q} queued, ${s} sending`);
    }
    await sleep(100);
  }
  return false;
}

function daemonEnv(profile) {
  const env = { PACING_COLD: profile, PACING_WARM: profile, PACING_HOT: profile, TYPING_MAX_MS: '0', MAX_WORKERS: String(Math.max(200, 2 * S)) };
  if (process.env.DISPATCH_SQLITE_SYNCHRONOUS) env.SQLITE_SYNCHRONOUS = process.env.DISPATCH_SQLITE_SYNCHRONOUS;
  return env;
}

async function main() {
  const hhmm = (t) => new Date(t).toTimeString().slice(0, 5);
  const closed = `0,0,0,0,${hhmm(Date.now() + 12 * 3600e3)}-${hhmm(Date.now() + 12 * 3600e3 + 60e3)}`;
  const env = daemonEnv(MODE === 'drain' ? closed : OPEN_PROFILE);
  d = new Daemon(TMP, env);
  log(`== dispatch daemon (${MODE}): ${N} messages over ${S} simulator sessions, ${MODE === 'live' ? 'accepted -> MESSAGE_SENT' : 'a stored queue drained'} ==`);
  log(`settings: PACING_COLD/WARM/HOT=${OPEN_PROFILE}${MODE === 'drain' ? ` (while the queue is filled: ${closed})` : ''} TYPING_MAX_MS=0 SQLITE_SYNCHRONOUS=${env.SQLITE_SYNCHRONOUS || '(default)'}${SIM_NICE ? `; simulators at nice ${SIM_NICE}` : ''}; sessions ${PICK === 'explicit' ? 'named round-robin in each send' : 'picked by the daemon'}; ${INFLIGHT} sends in flight`);
  await d.start();
  const sessions = await d.provisionAndLink(S, 180000);
  const ids = sessions.map((s) => s.sessionId).sort((a, b) => Number(a.replace(/\D/g, '')) - Number(b.replace(/\D/g, '')));
  log(`daemon: ${S} sessions linked (${ids[0]} .. ${ids[ids.length - 1]}); RSS ${(rssKiB(d.pid) / 1024).toFixed(1)} MiB`);

  const tStart = Date.now();
  const end = tStart + TIMEOUT_MS;
  let c0 = cpuTicks(d.pid);
  const inst = fs.readFileSync(path.join(d.data, 'instance_id'), 'utf8').trim();
  let sims = workerPids(inst);
  if (SIM_NICE) for (const p of sims) simNice(p, SIM_NICE);
  let s0 = sims.reduce((a, p) => a + cpuTicks(p), 0);
  let mt0 = machineTicks();
  let ss0 = schedstat(d.pid);
  const post = await postN(ids, end);
  let tRun = post.t0;
  if (MODE === 'drain') {
    const ex = await d.stop(30000);
    if (!ex) throw new Error('the daemon did not stop within 30 s of SIGTERM');
    await sleep(500);
    const left = workerPids(inst);
    if (left.length) throw new Error(`${left.length} simulators still running after the daemon stopped`);
    d = new Daemon(TMP, daemonEnv(OPEN_PROFILE));
    tRun = Date.now();
    await d.start();
    log(`daemon: restarted with the window open in ${((Date.now() - tRun) / 1000).toFixed(2)} s; it restarts the simulators and drains the stored queue`);
    if (SIM_NICE) {
      const inst2 = fs.readFileSync(path.join(d.data, 'instance_id'), 'utf8').trim();
      const niced = new Set();
      for (let i = 0; i < 100 && niced.size < S; i++) {
        for (const p of workerPids(inst2)) if (!niced.has(p)) { simNice(p, SIM_NICE); niced.add(p); }
        if (niced.size < S) await sleep(20);
      }
    }
    c0 = cpuTicks(d.pid);
    mt0 = machineTicks();
    ss0 = schedstat(d.pid);
    s0 = 0;
    sims = [];
  }
  // optional: a profiler attached for the measured phase, e.g.
  // DISPATCH_PROFILE_CMD='perf record -F 499 -g -p $SB_DAEMON_PID -o /tmp/sb.perf -- sleep 15'
  let prof = null;
  if (process.env.DISPATCH_PROFILE_CMD) {
    log(`profiling: ${process.env.DISPATCH_PROFILE_CMD}`);
    prof = spawn('bash', ['-c', process.env.DISPATCH_PROFILE_CMD], { env: { ...process.env, SB_DAEMON_PID: String(d.pid) }, stdio: 'inherit' });
  }
  const done = await waitDone(tRun, end);
  if (prof && prof.exitCode === null) await Promise.race([new Promise((r) => prof.on('exit', r)), sleep(60000)]);
  const tDone = Date.now();
  if (MODE === 'drain') sims = workerPids(fs.readFileSync(path.join(d.data, 'instance_id'), 'utf8').trim());
  const cpuDaemon = (cpuTicks(d.pid) - c0) / CLK_TCK;
  const cpuSims = (sims.reduce((a, p) => a + cpuTicks(p), 0) - s0) / CLK_TCK;
  const mt1 = machineTicks();
  const ss1 = schedstat(d.pid);
  const machineBusy = (100 * (mt1.busy - mt0.busy)) / (mt1.total - mt0.total);
  const m1 = await d.metrics();

  // ---- read back
  const sent = await listAll('sent');
  const other = {};
  for (const st of ['queued', 'sending', 'failed', 'expired', 'cancelled']) {
    const n = await countStatus(st);
    if (n) other[st] = st === 'failed' || st === 'expired' ? (await listAll(st)).length : 'some';
  }
  let firstCreated = Infinity, firstDispatched = Infinity, lastSent = 0;
  const lat = [], latD = [], perSession = new Map();
  let attemptsOver1 = 0;
  for (const m of sent) {
    const c = ms(m.createdAt), s = ms(m.sentAt), di = ms(m.dispatchedAt);
    if (c < firstCreated) firstCreated = c;
    if (di < firstDispatched) firstDispatched = di;
    if (s > lastSent) lastSent = s;
    lat.push(s - c);
    if (!Number.isNaN(di)) latD.push(s - di);
    perSession.set(m.sessionId, (perSession.get(m.sessionId) || 0) + 1);
    if (m.attempts > 1) attemptsOver1++;
  }
  lat.sort((a, b) => a - b);
  latD.sort((a, b) => a - b);
  const from = MODE === 'drain' ? firstDispatched : firstCreated;
  const windowS = (lastSent - from) / 1000;
  const rate = sent.length / windowS;
  const counts = [...perSession.values()];
  const p99 = MODE === 'drain' ? quantile(latD, 0.99) : quantile(lat, 0.99);
  log('');
  log(`== dispatch daemon results (${MODE}, ${S} sessions, zero gaps, no caps) ==`);
  log(`messages: ${sent.length} sent${Object.keys(other).length ? `, others: ${JSON.stringify(other)}` : ''}; ${attemptsOver1} sent after more than one attempt; over ${perSession.size} sessions (${Math.min(...counts)}..${Math.max(...counts)} each)`);
  if (MODE === 'drain') {
    log(`rate: first dispatchedAt -> last sentAt ${windowS.toFixed(2)} s: ${rate.toFixed(0)} msgs/s (restart -> first dispatch ${((firstDispatched - tRun) / 1000).toFixed(2)} s, not counted)`);
  } else {
    const afterPost = sent.filter((m) => ms(m.sentAt) >= post.t0 + post.ms).length;
    log(`rate: first createdAt -> last sentAt ${windowS.toFixed(2)} s: ${rate.toFixed(0)} msgs/s (posting took ${(post.ms / 1000).toFixed(2)} s of it; ${afterPost} were sent after the last post was accepted)`);
    log(`latency createdAt -> sentAt (includes the queue wait): p50 ${quantile(lat, 0.5)} ms, p99 ${quantile(lat, 0.99)} ms, max ${lat[lat.length - 1]} ms`);
  }
  log(`latency dispatchedAt -> sentAt: p50 ${quantile(latD, 0.5)} ms, p99 ${quantile(latD, 0.99)} ms, max ${latD[latD.length - 1]} ms`);
  const runS = (tDone - tRun) / 1000;
  log(`CPU ${MODE === 'drain' ? 'from the restart' : 'from the first post'} until done (${runS.toFixed(2)} s): daemon ${cpuDaemon.toFixed(2)} s (${((100 * cpuDaemon) / runS).toFixed(0)} % of a core), simulators ${cpuSims.toFixed(2)} s${MODE === 'live' ? `, wrk ${(post.wrkTicks / CLK_TCK).toFixed(2)} s` : ''}; the machine ${machineBusy.toFixed(0)} % busy (both cores); daemon RSS ${(rssKiB(d.pid) / 1024).toFixed(1)} MiB`);
  log(`daemon thread time over the run: on a CPU ${((ss1[0] - ss0[0]) / 1e9).toFixed(2)} s, runnable but waiting for a CPU ${((ss1[1] - ss0[1]) / 1e9).toFixed(2)} s, the rest (${(runS - (ss1[0] - ss0[0] + ss1[1] - ss0[1]) / 1e9).toFixed(2)} s) idle in epoll or blocked (fsync)`);
  const mm = Object.entries(m1).filter(([k]) => /messages_total|store_commits/.test(k)).map(([k, v]) => `${k}=${v}`);
  if (mm.length) log(`metrics: ${mm.join(' ')}`);
  const ok = done && sent.length === N && post.accepted === N;
  if (!done) log(`!!! NOT DONE within ${TIMEOUT_MS / 1000} s`);
  if (sent.length !== N) log(`!!! ${sent.length} of ${N} messages sent`);
  log(`RESULT ok=${ok ? 1 : 0} mode=${MODE} msgs_per_s=${rate.toFixed(1)} p99_ms=${p99} p99_dispatch_ms=${quantile(latD, 0.99)} window_s=${windowS.toFixed(3)} post_s=${(post.ms / 1000).toFixed(3)} sent=${sent.length} accepted=${post.accepted}`);
  return ok;
}

async function stop() {
  if (!d) return;
  const ex = await d.stop(30000);
  if (!ex) log('!!! the daemon did not exit within 30 s of SIGTERM; killed');
  const dlog = fs.existsSync(d.logPath) ? fs.readFileSync(d.logPath, 'utf8').split('\n').filter((l) => l && !/ (info|debug) /.test(l)) : [];
  if (dlog.length) {
    log(`daemon log: ${dlog.length} warn/error line(s); first ${Math.min(10, dlog.length)}:`);
    for (const l of dlog.slice(0, 10)) log(`    ${l}`);
  }
}

main().then(
  async (ok) => { await stop(); process.exit(ok ? 0 : 1); },
  async (e) => {
    console.error(`dispatch: FAILED: ${e.stack || e}`);
    await stop();
    process.exit(1);
  },
);
