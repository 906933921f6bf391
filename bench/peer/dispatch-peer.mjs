// The peer of bench/dispatch: the stack the seeds would build to send queued messages,
// a BullMQ worker (concurrency 100) draining N jobs (default 100,000), each of which
// makes one HTTP call: the signed POST /send that the daemon makes to a worker, here to
// one of S simulator workers (default 100) that this script starts and links itself.
// The simulators post their events (QR_CODE, CONNECTED, MESSAGE_SENT, PING) to a small
// receiver in this same process, which checks each signature as the daemon does, counts
// MESSAGE_SENT and takes its latency. Redis is started by bench/dispatch.
//
// The jobs are all added first (addBulk, timed apart), then the worker starts; the rate
// is jobs / (worker start -> the last MESSAGE_SENT). Latency: job added -> MESSAGE_SENT
// (includes the wait in the queue, like the daemon's createdAt -> sentAt) and job
// started -> MESSAGE_SENT.
//
// argv[2]: a fresh temp directory (the wrapper removes it).
// Environment: SB_BUILD (absolute build dir), REDIS_PORT, DISPATCH_MESSAGES (100000),
// DISPATCH_SESSIONS (100), DISPATCH_CONCURRENCY (100), DISPATCH_TIMEOUT_S (600), CLK_TCK,
// DISPATCH_SIM_NICE (0; N: the simulators run at nice N, as bench/dispatch.mjs's; see simNice).
// Prints "RESULT key=value ..." as its last line for the wrapper.
import { spawn } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { Queue, Worker } from 'bullmq';
import { machineTicks, schedstat, simNice } from '../sblib.mjs';

const TMP = process.argv[2];
if (!TMP || !fs.existsSync(TMP)) {
  console.error('usage: node bench/peer/dispatch-peer.mjs <temp dir>  (use bench/dispatch)');
  process.exit(2);
}
const SIM = path.join(path.resolve(process.env.SB_BUILD || 'build'), 'sim-worker');
const REDIS_PORT = Number(process.env.REDIS_PORT);
const N = Number(process.env.DISPATCH_MESSAGES || 100000);
const S = Number(process.env.DISPATCH_SESSIONS || 100);
const CONC = Number(process.env.DISPATCH_CONCURRENCY || 100);
const TIMEOUT_MS = Number(process.env.DISPATCH_TIMEOUT_S || 600) * 1000;
const CLK_TCK = Number(process.env.CLK_TCK || 100);
const SIM_NICE = Number(process.env.DISPATCH_SIM_NICE || 0);
const MASTER = 'bench-master-secret-0123456789abcdef';
const QUEUE = 'dispatch';
const BODY_MAX = 64 * 1024;

const log = (...a) => console.log(...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Date.now();
const quantile = (s, q) => (s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] : NaN);
const cpuTicks = (pid) => {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch { return 0; }
};
const keyOf = (sid) => createHmac('sha256', MASTER).update(sid).digest('hex');
const signHeaders = (key, body) => {
  const ts = String(Math.floor(Date.now() / 1000));
  return { 'X-Timestamp': ts, 'X-Signature': `sha256=${createHmac('sha256', key).update(`${ts}.${body}`).digest('hex')}` };
};

if (!REDIS_PORT || !fs.existsSync(SIM)) {
  console.error(`dispatch-peer: REDIS_PORT must be set and ${SIM} must exist`);
  process.exit(2);
}

// ---------------------------------------------------------------- sessions (simulators)

const sessions = []; // {id, key, address, proc, qr, connected}
const byId = new Map();

// a port in 20000..29999 that binds now (below the ephemeral range, see RESULTS.md)
let nextPort = 20000 + Math.floor(Math.random() * 5000);
function portFree(p) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(p, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
async function pickPort() {
  for (let i = 0; i < 10000; i++) {
    const p = nextPort++;
    if (nextPort > 29999) nextPort = 20000;
    if (await portFree(p)) return p;
  }
  throw new Error('no free port in 20000..29999');
}

// ---------------------------------------------------------------- receiver

const createdAt = new Float64Array(N); // ms, when the job was added
const startedAt = new Float64Array(N); // ms, when the worker took it
const sentAt = new Float64Array(N);    // ms, when MESSAGE_SENT arrived here
let sentCount = 0, dupSent = 0, badSig = 0, events = 0, lastSent = 0;

function onEvent(ev) {
  const s = byId.get(ev.sessionId);
  switch (ev.type) {
    case 'QR_CODE': s.qr = true; break;
    case 'CONNECTED': s.connected = true; break;
    case 'DISCONNECTED': s.connected = false; break;
    case 'MESSAGE_SENT': {
      const i = Number(String(ev.data && ev.data.messageId).slice(1));
      if (!(i >= 0 && i < N)) break;
      if (sentAt[i]) { dupSent++; break; }
      sentAt[i] = now();
      lastSent = sentAt[i];
      sentCount++;
      break;
    }
    default: break;
  }
}

const receiver = http.createServer((req, res) => {
  const chunks = [];
  let len = 0;
  req.on('data', (d) => {
    len += d.length;
    if (len > BODY_MAX) req.destroy();
    else chunks.push(d);
  });
  req.on('end', () => {
    const raw = Buffer.concat(chunks);
    let ev = null;
    try { ev = JSON.parse(raw.toString('utf8')); } catch {}
    const s = ev && byId.get(ev.sessionId);
    const ts = req.headers['x-timestamp'];
    const sig = String(req.headers['x-signature'] || '');
    let ok = false;
    if (s && ts && Math.abs(Date.now() / 1000 - Number(ts)) <= 300) {
      const want = Buffer.from(`sha256=${createHmac('sha256', s.key).update(`${ts}.`).update(raw).digest('hex')}`);
      const got = Buffer.from(sig);
      ok = got.length === want.length && timingSafeEqual(got, want);
    }
    if (!ok) {
      badSig++;
      res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"error":"UNAUTHORIZED"}');
      return;
    }
    events++;
    onEvent(ev);
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
  });
});
receiver.keepAliveTimeout = 65000;

// ---------------------------------------------------------------- the send call

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
function postSend(s, body) {
  const i = s.address.lastIndexOf(':');
  const headers = { ...signHeaders(s.key, body), 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
  return new Promise((resolve, reject) => {
    const req = http.request({ host: s.address.slice(0, i), port: Number(s.address.slice(i + 1)), path: '/send', method: 'POST', headers, agent, timeout: 15000 }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

async function simScan(s, phone) {
  const body = JSON.stringify({ phoneNumber: phone });
  const i = s.address.lastIndexOf(':');
  const headers = { ...signHeaders(s.key, body), 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
  return new Promise((resolve) => {
    const req = http.request({ host: s.address.slice(0, i), port: Number(s.address.slice(i + 1)), path: '/sim/scan', method: 'POST', headers, agent: false, timeout: 10000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function waitAll(pred, what, ms) {
  const end = now() + ms;
  for (;;) {
    const n = sessions.filter(pred).length;
    if (n === sessions.length) return;
    if (now() > end) throw new Error(`only ${n} of ${sessions.length} simulators ${what} within ${ms / 1000} s`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------- run

let queue = null, worker = null;

async function main() {
  log(`== dispatch peer: BullMQ worker (concurrency ${CONC}) draining ${N} jobs, each a signed POST /send to one of ${S} simulators ==`);
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  const rport = receiver.address().port;
  for (let i = 1; i <= S; i++) {
    const id = `peer_${i}`;
    const port = await pickPort();
    const auth = path.join(TMP, 'auth', id);
    fs.mkdirSync(auth, { recursive: true });
    const s = { id, key: keyOf(id), address: `127.0.0.1:${port}`, qr: false, connected: false };
    const logfd = fs.openSync(path.join(TMP, `${id}.log`), 'a');
    // detached = setsid(), as the daemon's process runner starts a worker: each simulator is
    // a session of its own, which with the kernel's autogroup scheduling
    // (/proc/sys/kernel/sched_autogroup_enabled) is also a scheduling group of its own, in
    // both runs alike
    s.proc = spawn(SIM, ['--ping-ms', '15000', '--qr-ms', '3600000'], {
      detached: true,
      env: { PATH: process.env.PATH, SESSION_ID: id, WEBHOOK_URL: `http://127.0.0.1:${rport}/webhook`, WEBHOOK_SECRET: s.key, AUTH_DIR: auth, WORKER_LISTEN: s.address },
      stdio: ['ignore', logfd, logfd],
    });
    fs.closeSync(logfd);
    s.proc.on('exit', (code, sig) => { s.exit = { code, sig }; });
    sessions.push(s);
    byId.set(id, s);
  }
  fs.writeFileSync(path.join(TMP, 'sims.pids'), sessions.map((s) => s.proc.pid).join('\n'));
  if (SIM_NICE) for (const s of sessions) simNice(s.proc.pid, SIM_NICE);
  await waitAll((s) => s.qr, 'showed a QR code', 30000);
  const scans = await Promise.all(sessions.map((s, i) => simScan(s, `9725${String(i + 1).padStart(8, '0')}`)));
  const badScan = scans.filter((c) => c !== 200).length;
  if (badScan) throw new Error(`${badScan} /sim/scan did not answer 200`);
  await waitAll((s) => s.connected, 'connected', 30000);
  log(`peer: ${S} simulators started and linked (receiver 127.0.0.1:${rport})${SIM_NICE ? `, simulators at nice ${SIM_NICE}` : ''}`);

  const connection = { host: '127.0.0.1', port: REDIS_PORT, maxRetriesPerRequest: null };
  queue = new Queue(QUEUE, { connection, defaultJobOptions: { attempts: 3, backoff: { type: 'exponential', delay: 1000 } } });
  await queue.obliterate({ force: true }).catch(() => {});

  // ---- add every job first
  const a0 = now();
  const CHUNK = 1000;
  for (let base = 0; base < N; base += CHUNK) {
    const jobs = [];
    for (let i = base; i < Math.min(N, base + CHUNK); i++) {
      const s = sessions[i % S];
      createdAt[i] = now();
      jobs.push({ name: 'send', data: { i, messageId: `m${i}`, sessionId: s.id, to: `9725${String(10000000 + i).slice(-8)}`, text: `Benchmark message ${i}: hello, this is a test of the send path.` } });
    }
    await queue.addBulk(jobs);
  }
  const addMs = now() - a0;
  const waiting = await queue.getWaitingCount();
  log(`peer: ${N} jobs added in ${(addMs / 1000).toFixed(2)} s (addBulk of ${CHUNK}: ${Math.round(N / (addMs / 1000))} jobs/s); ${waiting} waiting`);
  if (waiting !== N) throw new Error(`expected ${N} waiting jobs, Redis has ${waiting}`);

  // ---- drain
  let completed = 0, failed = 0, lastCompleted = 0, firstError = '';
  const processor = async (job) => {
    const { i, messageId, sessionId, to, text } = job.data;
    if (!startedAt[i]) startedAt[i] = now();
    const s = byId.get(sessionId);
    const r = await postSend(s, JSON.stringify({ messageId, to, text, typingMs: 0 }));
    if (r.status !== 200) throw new Error(`/send answered ${r.status}: ${r.text.slice(0, 160)}`);
    return r.status;
  };
  worker = new Worker(QUEUE, processor, { connection, concurrency: CONC, autorun: false });
  worker.on('completed', () => { completed++; lastCompleted = now(); });
  worker.on('failed', (job, err) => { failed++; if (!firstError) firstError = err.message; });
  worker.on('error', (e) => { if (!firstError) firstError = e.message; });
  const redisPid = Number(process.env.REDIS_PID || 0);
  const c0 = cpuTicks(process.pid), r0 = redisPid ? cpuTicks(redisPid) : 0;
  const simT0 = sessions.reduce((a, s) => a + cpuTicks(s.proc.pid), 0);
  const mt0 = machineTicks();
  const ss0 = schedstat(process.pid);
  const w0 = now();
  worker.run().catch((e) => { if (!firstError) firstError = e.message; });
  const end = w0 + TIMEOUT_MS;
  let lastLog = w0;
  while ((sentCount < N || completed < N) && now() < end) {
    await sleep(50);
    if (now() - lastLog >= 5000) {
      lastLog = now();
      log(`peer: ${((lastLog - w0) / 1000).toFixed(0)} s: ${completed} completed, ${sentCount} MESSAGE_SENT, ${failed} failed attempts`);
    }
  }
  const w1 = now();
  const cpuNode = (cpuTicks(process.pid) - c0) / CLK_TCK;
  const cpuRedis = redisPid ? (cpuTicks(redisPid) - r0) / CLK_TCK : NaN;
  const cpuSims = (sessions.reduce((a, s) => a + cpuTicks(s.proc.pid), 0) - simT0) / CLK_TCK;
  const mt1 = machineTicks();
  const ss1 = schedstat(process.pid);
  const machineBusy = (100 * (mt1.busy - mt0.busy)) / (mt1.total - mt0.total);
  await worker.close();
  const done = sentCount >= N && completed >= N;

  const drainS = ((lastSent || w1) - w0) / 1000;
  const rate = sentCount / drainS;
  const rateCompleted = completed / (((lastCompleted || w1) - w0) / 1000);
  const latQ = [], latW = [];
  for (let i = 0; i < N; i++) {
    if (!sentAt[i]) continue;
    latQ.push(sentAt[i] - createdAt[i]);
    if (startedAt[i]) latW.push(sentAt[i] - startedAt[i]);
  }
  latQ.sort((x, y) => x - y);
  latW.sort((x, y) => x - y);
  log('');
  log(`== dispatch peer results (BullMQ ${CONC} concurrent, ${S} simulators, Redis appendfsync ${process.env.REDIS_FSYNC || '?'}) ==`);
  log(`jobs: ${completed} completed, ${failed} failed attempts, ${sentCount} MESSAGE_SENT received (${dupSent} repeated), ${badSig} events refused, ${events} events accepted`);
  log(`drain: worker start -> last MESSAGE_SENT ${drainS.toFixed(2)} s: ${rate.toFixed(0)} msgs/s (by completion: ${rateCompleted.toFixed(0)} jobs/s)`);
  log(`latency job added -> MESSAGE_SENT (includes the queue wait): p50 ${quantile(latQ, 0.5).toFixed(0)} ms, p99 ${quantile(latQ, 0.99).toFixed(0)} ms, max ${latQ[latQ.length - 1]?.toFixed(0)} ms`);
  log(`latency job started -> MESSAGE_SENT: p50 ${quantile(latW, 0.5).toFixed(1)} ms, p99 ${quantile(latW, 0.99).toFixed(1)} ms`);
  log(`CPU during the drain: this node process ${cpuNode.toFixed(2)} s, redis ${Number.isNaN(cpuRedis) ? '?' : cpuRedis.toFixed(2)} s, simulators ${cpuSims.toFixed(2)} s, over ${((w1 - w0) / 1000).toFixed(2)} s; the machine ${machineBusy.toFixed(0)} % busy (both cores)`);
  log(`node main thread over the drain: on a CPU ${((ss1[0] - ss0[0]) / 1e9).toFixed(2)} s, runnable but waiting for a CPU ${((ss1[1] - ss0[1]) / 1e9).toFixed(2)} s`);
  if (firstError) log(`first error: ${firstError}`);
  const dead = sessions.filter((s) => s.exit).length;
  if (dead) log(`!!! ${dead} simulators exited during the run`);
  if (!done) log(`!!! NOT DONE within ${TIMEOUT_MS / 1000} s`);
  log(`RESULT ok=${done && !dead ? 1 : 0} msgs_per_s=${rate.toFixed(1)} jobs_per_s=${rateCompleted.toFixed(1)} p99_ms=${quantile(latQ, 0.99).toFixed(1)} p99_worker_ms=${quantile(latW, 0.99).toFixed(1)} drain_s=${drainS.toFixed(3)} sent=${sentCount} completed=${completed} failed=${failed}`);
  return done && !dead;
}

async function shutdown() {
  for (const s of sessions) { try { s.proc.kill('SIGTERM'); } catch {} }
  await Promise.race([
    Promise.all(sessions.map((s) => (s.exit ? null : new Promise((r) => s.proc.once('exit', r))))),
    sleep(5000),
  ]);
  for (const s of sessions) if (!s.exit) { try { s.proc.kill('SIGKILL'); } catch {} }
  if (worker) await worker.close(true).catch(() => {});
  if (queue) await queue.close().catch(() => {});
  agent.destroy();
  receiver.close();
}

main().then(
  async (ok) => { await shutdown(); process.exit(ok ? 0 : 1); },
  async (e) => {
    console.error(`dispatch-peer: FAILED: ${e.stack || e}`);
    await shutdown();
    process.exit(1);
  },
);
