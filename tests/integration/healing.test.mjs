// Healing: a killed worker comes back linked, a silent one is restarted by the watchdog,
// a worker that cannot start ends in failed after the cap with growing gaps.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Daemon, pidAlive, waitFor } from './lib.mjs';

async function linked(d, phone) {
  const id = await d.provision();
  await d.waitStatus(id, 'qr_ready');
  await d.sim(id, '/sim/scan', { phoneNumber: phone });
  return d.waitStatus(id, 'connected');
}

test('kill -9 of a worker: connected again, no new QR', async (t) => {
  const d = await new Daemon().start();
  t.after(() => d.cleanup());
  const s = await linked(d, '972501000001');
  const qrBefore = await d.metric('switchboard_worker_events_total{type="QR_CODE"}');
  process.kill(s.worker.pid, 'SIGKILL');
  const back = await waitFor(async () => {
    const x = await d.session(s.sessionId);
    return x.status === 'connected' && x.worker && x.worker.pid !== s.worker.pid ? x : false;
  }, { what: 'reconnected after kill -9' });
  assert.equal(back.restarts, s.restarts + 1);
  assert.equal(await d.metric('switchboard_worker_events_total{type="QR_CODE"}'), qrBefore, 'no QR on the way back');
  assert.match(d.log(), new RegExp(`worker exited session=${s.sessionId} pid=${s.worker.pid} code=-1 signal=9`));
});

test('a silent worker (no PING) is restarted by the watchdog', async (t) => {
  const d = await new Daemon({ env: { PING_TIMEOUT_MS: '1000' } }).start();
  t.after(() => d.cleanup());
  const s = await linked(d, '972501000002');
  assert.equal((await d.sim(s.sessionId, '/sim/silence')).status, 200);
  const back = await waitFor(async () => {
    const x = await d.session(s.sessionId);
    return x.status === 'connected' && x.worker && x.worker.pid !== s.worker.pid ? x : false;
  }, { what: 'watchdog restart', timeout: 15000 });
  assert.ok(back.restarts >= 1);
  assert.ok((await d.metric('switchboard_watchdog_restarts_total')) >= 1);
  assert.match(d.log(), /restarting silent worker session=worker_1 reason="no PING for \d+ s"/);
  assert.ok(!pidAlive(s.worker.pid));
});

test('a worker that does not answer /health is restarted', async (t) => {
  const d = await new Daemon().start();
  t.after(() => d.cleanup());
  const s = await linked(d, '972501000003');
  // SIGSTOP freezes the worker: the process lives but answers nothing
  process.kill(s.worker.pid, 'SIGSTOP');
  const back = await waitFor(async () => {
    const x = await d.session(s.sessionId);
    return x.status === 'connected' && x.worker && x.worker.pid !== s.worker.pid ? x : false;
  }, { what: 'restart of a frozen worker', timeout: 15000 });
  assert.ok(back.restarts >= 1);
  assert.match(d.log(), /did not answer \/health/);
  await waitFor(() => !pidAlive(s.worker.pid), { what: 'the frozen worker is killed' });
});

test('a crash reported by the worker (/sim/crash) is restarted', async (t) => {
  const d = await new Daemon().start();
  t.after(() => d.cleanup());
  const s = await linked(d, '972501000004');
  await d.sim(s.sessionId, '/sim/crash');
  await waitFor(async () => {
    const x = await d.session(s.sessionId);
    return x.status === 'connected' && x.worker && x.worker.pid !== s.worker.pid;
  }, { what: 'restart after a crash' });
  assert.match(d.log(), /worker exited session=worker_1 pid=\d+ code=3/);
});

test('a worker command that exits at once: failed after the cap, with growing gaps', async (t) => {
  const d = await new Daemon({
    env: { WORKER_COMMAND: '/bin/false', MAX_FAILED_STARTS: '5', RESTART_BACKOFF_MIN_MS: '100', RESTART_BACKOFF_MAX_MS: '60000' },
  }).start();
  t.after(() => d.cleanup());
  const id = await d.provision();
  const s = await d.waitStatus(id, 'failed', 20000);
  assert.match(s.reason, /^crash loop: 5 starts in a row never connected; last: worker exited with code 1/);
  assert.equal(s.worker, null);
  // the delays the daemon chose double (x2 with +-20 % jitter: at least x1.33 each time),
  // and the starts really were that far apart
  const delays = [...d.log().matchAll(/restart scheduled session=worker_1 in_ms=(\d+) /g)].map((m) => Number(m[1]));
  assert.equal(delays.length, 4, `4 restarts were scheduled: ${delays}`);
  for (let i = 1; i < delays.length; i++) assert.ok(delays[i] >= delays[i - 1] * 1.33, `delays grow: ${delays}`);
  assert.ok(delays[0] >= 80 && delays[0] < 120, `the first delay is RESTART_BACKOFF_MIN_MS +-20 %: ${delays[0]}`);
  const starts = [...d.log().matchAll(/^(\S+) info runner: worker started session=worker_1 /gm)].map((m) => Date.parse(m[1]));
  assert.equal(starts.length, 5);
  const gaps = starts.slice(1).map((t0, i) => t0 - starts[i]);
  for (let i = 0; i < gaps.length; i++) assert.ok(gaps[i] >= delays[i] - 2, `gap ${i} honours its delay: ${gaps} vs ${delays}`);
  // not retried until asked
  const n = starts.length;
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal([...d.log().matchAll(/info runner: worker started session=worker_1 /g)].length, n);
  // asked: it is tried again
  assert.equal((await d.post(`/api/sessions/${id}/restart`)).status, 200);
  await waitFor(() => [...d.log().matchAll(/info runner: worker started session=worker_1 /g)].length > n, { what: 'a start after the restart' });
});
