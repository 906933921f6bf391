// Benchmark 3: workers. Idle RSS of one simulator worker and of one Baileys worker before
// linking (beside the ~200 MB per session that WAHA publishes for its Baileys engine),
// and provision → QR_CODE time with the process runner and with the Docker runner
// (simulator image). Times come from the daemon's own log timestamps (ms), not from
// polling. Loopback only; every wait is bounded.
//
// Environment: SB_BUILD (build dir), BENCH_QR_RUNS (5), BENCH_IDLE_S (20: how long a
// worker idles before its RSS is read).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Daemon, SIM, sleep, waitFor } from '../tests/integration/lib.mjs';

process.chdir(new URL('..', import.meta.url).pathname); // the repository's root
const RUNS = Number(process.env.BENCH_QR_RUNS || 5);
const IDLE_S = Number(process.env.BENCH_IDLE_S || 20);
const SOCKET = '/var/run/docker.sock';
const BAILEYS = path.resolve('workers/baileys/src/main.js');
const WAHA_MB = 200; // WAHA's published memory per session with its Baileys-based engine
const log = (...a) => console.log(...a);

function rssKiB(pid) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
    return m ? Number(m[1]) : 0;
  } catch { return 0; }
}

function engine(method, p) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: SOCKET, method, path: `/v1.41${p}`, timeout: 10000 }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => { try { resolve(JSON.parse(text)); } catch { resolve(null); } });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('engine timed out')));
    req.end();
  });
}

async function engineUp() {
  try {
    await engine('GET', '/_ping');
    return true;
  } catch { return false; }
}

// ms between "provisioned session=X" and X's first QR_CODE event in the daemon log
function qrDelay(d, id) {
  const lines = d.log().split('\n');
  const at = (re) => {
    const l = lines.find((x) => re.test(x));
    return l ? Date.parse(l.split(' ')[0]) : NaN;
  };
  return at(new RegExp(`event session=${id} type=QR_CODE`)) - at(new RegExp(`provisioned session=${id} `));
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

async function qrTimes(label, env) {
  // production timings: the harness's fast watchdog would restart 15 s pingers
  const d = await new Daemon({ env: { LOG_LEVEL: 'info', PING_TIMEOUT_MS: '180000', WATCHDOG_INTERVAL_MS: '60000',
    WORKER_START_GRACE_MS: '10000', ...env } }).start();
  const times = [];
  let first;
  try {
    for (let i = 0; i < RUNS; i++) {
      const id = await d.provision();
      first ||= id;
      await d.waitStatus(id, 'qr_ready', 30000);
      times.push(qrDelay(d, id));
    }
    await sleep(IDLE_S * 1000);
    const s = await d.session(first);
    const workerPid = s.worker.pid || (await engine('GET', `/containers/${s.worker.container}/json`)).State.Pid;
    const rss = rssKiB(workerPid);
    if (!rss) throw new Error(`no RSS for the worker of ${first} (pid ${workerPid})`);
    log(`${label}: provision -> QR_CODE median ${median(times)} ms (min ${Math.min(...times)}, max ${Math.max(...times)}, ${RUNS} sessions: ${times.join(' ')})`);
    log(`${label}: idle simulator worker RSS ${(rss / 1024).toFixed(1)} MiB after ${IDLE_S} s`);
    return { times, rss };
  } finally {
    await d.stop();
    await d.cleanup();
  }
}

async function baileysIdle() {
  if (!fs.existsSync(path.resolve('workers/baileys/node_modules'))) {
    log('baileys: SKIPPED (workers/baileys/node_modules missing: make worker-test installs it)');
    return null;
  }
  const d = await new Daemon({ env: { LOG_LEVEL: 'info', WORKER_COMMAND: `node ${BAILEYS}`, PING_TIMEOUT_MS: '180000',
    WATCHDOG_INTERVAL_MS: '60000', WORKER_START_GRACE_MS: '10000' } }).start();
  try {
    const id = await d.provision();
    const s = await waitFor(async () => { const x = await d.session(id); return x?.worker?.pid ? x : false; },
      { what: 'baileys worker started', timeout: 10000 });
    await sleep(IDLE_S * 1000);
    const rss = rssKiB(s.worker.pid);
    const now = await d.session(id);
    log(`baileys: idle worker RSS ${(rss / 1024).toFixed(1)} MiB after ${IDLE_S} s, not linked (status ${now.status}; no WhatsApp reachable from here), same pid: ${now.worker?.pid === s.worker.pid}`);
    log(`baileys: WAHA publishes ~${WAHA_MB} MB per Baileys session: ratio ${(rss / 1024 / WAHA_MB).toFixed(2)} (not linked here, so no chats or keys loaded yet)`);
    return rss;
  } finally {
    await d.stop();
    await d.cleanup();
  }
}

log('== workers ==');
let dock = null;
const proc = await qrTimes('process runner', { WORKER_COMMAND: `${SIM} --ping-ms 15000 --qr-ms 20000` });
if (await engineUp()) {
  execFileSync(path.resolve('scripts/docker-images'), ['sim'], { stdio: 'inherit' });
  dock = await qrTimes('docker runner', { RUNNER: 'docker', WORKER_IMAGE: 'switchboard-sim-worker:dev' });
  log(`docker/process provision -> QR_CODE median ratio ${(median(dock.times) / median(proc.times)).toFixed(1)}`);
} else {
  log('docker runner: SKIPPED (no Docker engine on /var/run/docker.sock: scripts/docker-engine starts one)');
}
const baileys = await baileysIdle();
log(`SUMMARY workers: provision->QR process ${median(proc.times)} ms, docker ${dock ? `${median(dock.times)} ms` : 'skipped'}; ` +
  `idle RSS sim ${(proc.rss / 1024).toFixed(1)} MiB, baileys ${baileys ? `${(baileys / 1024).toFixed(1)} MiB (WAHA ~${WAHA_MB} MB)` : 'skipped'}`);
