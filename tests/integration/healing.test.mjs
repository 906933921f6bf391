// Healing: a killed worker comes back linked, a silent one is restarted by the watchdog,
// a worker that cannot start ends in failed after the cap with growing gaps.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertLogCapped, connectedOnNewWorker, Daemon, pidAlive, waitFor } from './lib.mjs';

test('kill -9 of a worker: connected again, no new QR', async (t) => {
  const d = await new Daemon().start();
  t.after(() => d.cleanup());
  const s = await d.link('972501000001');
  const qrBefore = await d.metric('switchboard_worker_events_total{type="QR_CODE"}');
  process.kill(s.worker.pid, 'SIGKILL');
  const back = await connectedOnNewWorker(d, s.sessionId, s.worker.pid, { what: 'reconnected after kill -9', timeout: 10000 });
  assert.equal(back.restarts, s.restarts + 1);
  assert.equal(await d.metric('switchboard_worker_events_total{type="QR_CODE"}'), qrBefore, 'no QR on the way back');
  assert.match(d.log(), new RegExp(`worker exited session=${s.sessionId} pid=${s.worker.pid} code=-1 signal=9`));
});

test('a silent worker (no PING) is restarted by the watchdog', async (t) => {
  const d = await new Daemon({ env: { PING_TIMEOUT_MS: '1000' } }).start();
  t.after(() => d.cleanup());
  const s = await d.link('972501000002');
  assert.equal((await d.sim(s.sessionId, '/sim/silence')).status, 200);
  const back = await connectedOnNewWorker(d, s.sessionId, s.worker.pid, { what: 'watchdog restart' });
  assert.ok(back.restarts >= 1);
  assert.ok((await d.metric('switchboard_watchdog_restarts_total')) >= 1);
  assert.match(d.log(), /restarting silent worker session=worker_1 reason="no PING for \d+ s"/);
  assert.ok(!pidAlive(s.worker.pid));
});

test('a worker that does not answer /health is restarted', async (t) => {
  const d = await new Daemon().start();
  t.after(() => d.cleanup());
  const s = await d.link('972501000003');
  // SIGSTOP freezes the worker: the process lives but answers nothing
  process.kill(s.worker.pid, 'SIGSTOP');
  const back = await connectedOnNewWorker(d, s.sessionId, s.worker.pid, { what: 'restart of a frozen worker' });
  assert.ok(back.restarts >= 1);
  assert.match(d.log(), /did not answer \/health/);
  await waitFor(() => !pidAlive(s.worker.pid), { what: 'the frozen worker is killed' });
});

test('a crash reported by the worker (/sim/crash) is restarted', async (t) => {
  const d = await new Daemon().start();
  t.after(() => d.cleanup());
  const s = await d.link('972501000004');
  await d.sim(s.sessionId, '/sim/crash');
  await connectedOnNewWorker(d, s.sessionId, s.worker.pid, { what: 'restart after a crash', timeout: 10000 });
  assert.match(d.log(), /worker exited session=worker_1 pid=\d+ code=3/);
});

test('a worker that never pings and never connects: failed after the cap like one that exits, not restarted for ever', async (t) => {
  const d = await new Daemon({
    pingMs: 600000, // no PING and one QR only: the watchdog hears nothing after the first second
    qrMs: 600000,
    env: { PING_TIMEOUT_MS: '1000', MAX_FAILED_STARTS: '3', RESTART_BACKOFF_MIN_MS: '10', RESTART_BACKOFF_MAX_MS: '50' },
  }).start();
  t.after(() => d.cleanup());
  const id = await d.provision();
  const s = await d.waitStatus(id, 'failed', 20000);
  assert.match(s.reason, /^crash loop: 3 starts in a row never stayed connected for 60 s; last: .*PING/);
  assert.equal(s.worker, null);
  const starts = () => [...d.log().matchAll(/info runner: worker started session=worker_1 /g)].length;
  assert.equal(starts(), 3);
  // not retried until asked
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(starts(), 3);
});

test('a worker command that exits at once: failed after the cap, with growing gaps', async (t) => {
  const d = await new Daemon({
    env: { WORKER_COMMAND: '/bin/false', MAX_FAILED_STARTS: '5', RESTART_BACKOFF_MIN_MS: '100', RESTART_BACKOFF_MAX_MS: '60000' },
  }).start();
  t.after(() => d.cleanup());
  const id = await d.provision();
  const s = await d.waitStatus(id, 'failed', 20000);
  assert.match(s.reason, /^crash loop: 5 starts in a row never stayed connected for 60 s; last: worker exited with code 1/);
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
  // (each start's line is written after its fork returns, which on a loaded machine can
  // trail the fork by a few ms: 10 ms of slack, against delays of 100 ms and more)
  for (let i = 0; i < gaps.length; i++) assert.ok(gaps[i] >= delays[i] - 10, `gap ${i} honours its delay: ${gaps} vs ${delays}`);
  // not retried until asked
  const n = starts.length;
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal([...d.log().matchAll(/info runner: worker started session=worker_1 /g)].length, n);
  // asked: it is tried again
  assert.equal((await d.post(`/api/sessions/${id}/restart`)).status, 200);
  await waitFor(() => [...d.log().matchAll(/info runner: worker started session=worker_1 /g)].length > n, { what: 'a start after the restart' });
});

test('a worker that floods its output: the log stays capped, the newest part kept as .1', async (t) => {
  const fs = await import('node:fs');
  // it answers no /health: the watchdog is held off for the test's length
  const d = new Daemon({ env: { WORKER_LOG_MAX_BYTES: '8192', MONITOR_INTERVAL_MS: '100', PING_TIMEOUT_MS: '60000', WORKER_START_GRACE_MS: '60000' } });
  // a worker that writes ~100 KiB/s and never speaks the protocol
  const script = `${d.dir}/chatty.sh`;
  fs.writeFileSync(script, '#!/bin/sh\nwhile :; do echo "line $(date +%s%N) xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; sleep 0.001; done\n', { mode: 0o755 });
  d.opts.env.WORKER_COMMAND = script;
  await d.start();
  t.after(() => d.cleanup());
  const id = await d.provision();
  const log = `${d.dir}/data/logs/${id}.log`;
  await waitFor(() => fs.existsSync(`${log}.1`), { what: 'a rotated log', timeout: 10000 });
  await assertLogCapped(log, 8192);
  assert.match(fs.readFileSync(`${log}.1`, 'utf8'), /line \d+ x+/);
  const h = (await d.get('/health')).json;
  assert.deepEqual(Object.keys(h.workers).sort(), ['backoff', 'max', 'queued', 'running', 'stopping']);
  assert.equal(h.workers.running, 1);
});


test('a session that connects and drops at once is a crash loop too, not restarted every second for ever', async (t) => {
  const d = await new Daemon({
    env: { MAX_FAILED_STARTS: '3', RESTART_BACKOFF_MIN_MS: '10', RESTART_BACKOFF_MAX_MS: '50', RESTART_STABLE_MS: '60000' },
  }).start();
  t.after(() => d.cleanup());
  let s = await d.link('972501000005');
  // each worker connects (its link is kept) and is dropped right after: at most 3 starts
  for (let i = 0; i < 6; i++) {
    assert.equal((await d.sim(s.sessionId, '/sim/disconnect', { loggedOut: false })).status, 200);
    const next = await connectedOnNewWorker(d, s.sessionId, s.worker.pid, { orFailed: true });
    if (next.status === 'failed') break;
    s = { ...next, sessionId: s.sessionId };
  }
  const f = await d.session(s.sessionId);
  assert.equal(f.status, 'failed', 'a flapping session ends failed');
  assert.match(f.reason, /^crash loop: 3 starts in a row never stayed connected for 60 s; last: disconnected \(status 428\)/);
  assert.equal(f.worker, null);
  assert.equal([...d.log().matchAll(/info runner: worker started session=worker_1 /g)].length, 3);
  // the restart delays grew with the streak, as for a worker that never connects
  const delays = [...d.log().matchAll(/restart scheduled session=worker_1 in_ms=\d+ failed_starts=(\d+)/g)].map((m) => Number(m[1]));
  assert.deepEqual(delays, [1, 2], `the streak the delays were drawn from: ${delays}`);
});

test('a connection that lasts RESTART_STABLE_MS ends the streak: the next drop starts again from the shortest delay', async (t) => {
  const d = await new Daemon({
    env: { MAX_FAILED_STARTS: '2', RESTART_BACKOFF_MIN_MS: '10', RESTART_BACKOFF_MAX_MS: '50', RESTART_STABLE_MS: '300' },
  }).start();
  t.after(() => d.cleanup());
  let s = await d.link('972501000006');
  const stable = () => [...d.log().matchAll(/connection stable session=worker_1 failed_starts=1 reset/g)].length;
  for (let i = 1; i <= 4; i++) {
    await waitFor(() => stable() >= i, { what: `connection ${i} stable`, timeout: 10000 });
    assert.equal((await d.sim(s.sessionId, '/sim/disconnect', { loggedOut: false })).status, 200);
    s = { ...(await connectedOnNewWorker(d, s.sessionId, s.worker.pid)), sessionId: s.sessionId };
  }
  // four drops with MAX_FAILED_STARTS=2, each after a lasting connection: never failed
  assert.equal(s.status, 'connected');
  const streaks = [...d.log().matchAll(/restart scheduled session=worker_1 in_ms=\d+ failed_starts=(\d+)/g)].map((m) => Number(m[1]));
  assert.deepEqual(streaks, [0, 0, 0, 0]);
});
