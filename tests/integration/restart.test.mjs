// Daemon restarts: after SIGTERM every session comes back (paced) with its state; after
// kill -9 the running workers are adopted, never duplicated.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { assertLogCapped, connectedOnNewWorker, Daemon, pidAlive, waitFor, workerPids } from './lib.mjs';

const P1 = 'socks5h://u1:pw1@127.0.0.1:1081';

async function linkedSessions(d, n) {
  const ids = [];
  for (let i = 0; i < n; i++) ids.push(await d.provision());
  for (const [i, id] of ids.entries()) {
    await d.waitStatus(id, 'qr_ready');
    await d.sim(id, '/sim/scan', { phoneNumber: `97250400000${i}` });
  }
  for (const id of ids) await d.waitStatus(id, 'connected');
  return ids;
}

test('graceful restart: workers stop with the daemon and every session comes back, paced, without QR', async (t) => {
  const d = await new Daemon({ env: { PROXY_URL_1: P1 } }).start();
  t.after(() => d.cleanup());
  const ids = await linkedSessions(d, 3);
  const before = await Promise.all(ids.map((id) => d.session(id)));
  const waiting = await d.provision(); // one that was never linked
  await d.waitStatus(waiting, 'qr_ready');
  assert.equal(await d.stop(), 0);
  for (const s of before) assert.ok(!pidAlive(s.worker.pid), 'workers stop with the daemon');
  assert.equal(workerPids(d.instanceId()).length, 0);

  d.opts.env.PROVISIONING_INTERVAL_MS = '300';
  await d.start();
  for (const s of before) {
    const x = await d.waitStatus(s.sessionId, 'connected');
    assert.equal(x.phone, s.phone);
    assert.equal(x.proxyId, s.proxyId);
    assert.equal(x.firstConnectedAt, s.firstConnectedAt);
  }
  await d.waitStatus(waiting, 'qr_ready');
  // paced: starts at least 300 ms apart
  const log = d.log().split('\n');
  const restartAt = log.findLastIndex((l) => /info main: listening/.test(l));
  const starts = log.slice(restartAt).filter((l) => /info runner: worker started/.test(l)).map((l) => Date.parse(l.split(' ')[0]));
  assert.equal(starts.length, 4);
  for (let i = 1; i < starts.length; i++) assert.ok(starts[i] - starts[i - 1] >= 290, `paced starts: ${starts}`);
  assert.equal(await d.metric('switchboard_worker_events_total{type="QR_CODE"}') > 0, true);
  const qrs = log.slice(restartAt).filter((l) => /type=QR_CODE/.test(l) && !l.includes(`session=${waiting} `));
  assert.equal(qrs.length, 0, 'linked sessions come back without a QR');
});

test('kill -9 of the daemon: running workers are adopted, none duplicated', async (t) => {
  const d = await new Daemon({ env: { PROXY_URL_1: P1 } }).start();
  t.after(() => d.cleanup());
  const ids = await linkedSessions(d, 3);
  const before = await Promise.all(ids.map((id) => d.session(id)));
  await d.kill9();
  for (const s of before) assert.ok(pidAlive(s.worker.pid), 'workers outlive a killed daemon');
  await d.start();
  assert.match(d.log(), /recovered sessions adopted=3 to_start=0/);
  for (const s of before) {
    const x = await d.session(s.sessionId);
    assert.equal(x.status, 'connected');
    assert.equal(x.worker.pid, s.worker.pid, 'the same worker, adopted');
  }
  assert.equal(workerPids(d.instanceId()).length, 3, 'exactly one worker per session');
  // adopted workers are watched: one that dies now is restarted
  process.kill(before[0].worker.pid, 'SIGKILL');
  await connectedOnNewWorker(d, before[0].sessionId, before[0].worker.pid, { what: 'restart of an adopted worker', timeout: 10000 });
  // and the pings keep flowing to the new daemon
  const p = (await d.session(ids[1])).lastPingAt;
  await waitFor(async () => (await d.session(ids[1])).lastPingAt !== p, { what: 'pings after adoption' });
  assert.equal(workerPids(d.instanceId()).length, 3);
});

test('kill -9 of the daemon: an adopted worker\'s log is still capped at WORKER_LOG_MAX_BYTES', async (t) => {
  // it answers no /health and sends no PING: the watchdog is held off for the test's length
  const env = { WORKER_LOG_MAX_BYTES: '8192', MONITOR_INTERVAL_MS: '100', PING_TIMEOUT_MS: '60000', WORKER_START_GRACE_MS: '60000' };
  const d = new Daemon({ env });
  // a worker that writes its output without end
  const script = `${d.dir}/chatty.sh`;
  fs.writeFileSync(script, '#!/bin/sh\nwhile :; do echo "line $(date +%s%N) xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; sleep 0.001; done\n', { mode: 0o755 });
  env.WORKER_COMMAND = script;
  await d.start();
  t.after(() => d.cleanup());
  const id = await d.provision();
  const log = `${d.dir}/data/logs/${id}.log`;
  await waitFor(() => fs.existsSync(`${log}.1`), { what: 'the log rotated by the daemon that started the worker' });
  const s = await waitFor(async () => (await d.session(id))?.worker, { what: `${id} worker` });
  await d.kill9();
  assert.ok(pidAlive(s.pid), 'the worker outlives the killed daemon');
  fs.rmSync(`${log}.1`);
  await d.start();
  assert.match(d.log(), /recovered sessions adopted=1 to_start=0/);
  assert.equal((await d.session(id)).worker.pid, s.pid, 'the same worker, adopted');
  await waitFor(() => fs.existsSync(`${log}.1`), { what: 'the adopted worker\'s log rotated' });
  await assertLogCapped(log, 8192);
});

test('a stray worker whose session no longer runs is stopped at start-up', async (t) => {
  const d = await new Daemon().start();
  t.after(() => d.cleanup());
  const [id] = await linkedSessions(d, 1);
  const s = await d.session(id);
  await d.kill9();
  // the session is gone from the store while its worker still runs
  const { DatabaseSync } = await import('node:sqlite').catch(() => ({}));
  if (!DatabaseSync) {
    const { execFileSync } = await import('node:child_process');
    execFileSync('sqlite3', [`${d.dir}/data/switchboard.db`, `UPDATE sessions SET status='stopped' WHERE id=1`]);
  } else {
    const db = new DatabaseSync(`${d.dir}/data/switchboard.db`);
    db.exec(`UPDATE sessions SET status='stopped' WHERE id=1`);
    db.close();
  }
  await d.start();
  await waitFor(() => !pidAlive(s.worker.pid), { what: 'stray worker stopped' });
  assert.match(d.log(), new RegExp(`stopping a stray worker session=${id} pid=${s.worker.pid}`));
  assert.equal(workerPids(d.instanceId()).length, 0);
});

test('SIGTERM while a pair request waits for its code: the request is answered, the daemon exits 0', async (t) => {
  // a worker that never reports anything: the pair request waits its full PAIR_WAIT_MS
  const d = await new Daemon({ env: { WORKER_COMMAND: '/bin/sleep 600', PAIR_WAIT_MS: '20000', PING_TIMEOUT_MS: '60000' } }).start();
  t.after(() => d.cleanup());
  const pending = d.post('/api/accounts/pair', { phone: '+972508888888' });
  await waitFor(() => /provisioned session=worker_1/.test(d.log()) && /worker started session=worker_1/.test(d.log()), { what: 'pair provisioned' });
  const started = Date.now();
  const code = d.stop();
  const r = await pending;
  assert.ok(Date.now() - started < 10000, 'answered at shutdown, not after PAIR_WAIT_MS');
  assert.equal(r.status, 202, r.text);
  assert.equal(r.json.sessionId, 'worker_1');
  assert.equal(await code, 0);
});

test('a pair request waiting for its code is answered when the session is stopped, and says so', async (t) => {
  const d = await new Daemon({ env: { WORKER_COMMAND: '/bin/sleep 600', PAIR_WAIT_MS: '20000', PING_TIMEOUT_MS: '60000' } }).start();
  t.after(() => d.cleanup());
  const pending = d.post('/api/accounts/pair', { phone: '+972508888889' });
  await waitFor(() => /worker started session=worker_1/.test(d.log()), { what: 'pair provisioned' });
  const started = Date.now();
  assert.equal((await d.post('/api/sessions/worker_1/stop', {})).status, 200);
  const r = await pending;
  assert.ok(Date.now() - started < 10000, 'answered at the stop, not after PAIR_WAIT_MS');
  assert.equal(r.status, 202, r.text);
  assert.equal(r.json.status, 'stopped');
  assert.match(r.json.message, /^no pairing code: the session was stopped before one came \(.+\); restart it/);
});

test('daemon restarts soon after a session connected do not count as its failed starts', async (t) => {
  const d = await new Daemon({ env: { MAX_FAILED_STARTS: '2', RESTART_STABLE_MS: '600000' } }).start();
  t.after(() => d.cleanup());
  const s = await d.link('972504100001');
  let pid = s.worker.pid;
  for (let i = 0; i < 3; i++) {
    assert.equal(await d.stop(), 0);
    await d.start();
    const x = await connectedOnNewWorker(d, s.sessionId, pid, { orFailed: true, what: `connected again after restart ${i + 1}`, timeout: 10000 });
    assert.equal(x.status, 'connected', `restart ${i + 1}: ${x.reason}`);
    pid = x.worker.pid;
  }
  // one drop of its own now is its first failed start, not a crash loop
  assert.equal((await d.sim(s.sessionId, '/sim/disconnect', { loggedOut: false })).status, 200);
  const back = await connectedOnNewWorker(d, s.sessionId, pid, { orFailed: true, what: 'connected again after one drop', timeout: 10000 });
  assert.equal(back.status, 'connected', back.reason);
  assert.doesNotMatch(d.log(), /crash loop/);
});

test('stop: the worker ends and the session waits, across a daemon restart, with its link and its queue, until restarted', async (t) => {
  const open = '0,0,0,0,00:00-24:00'; // no cap, no gap, always open: the message may go at once
  const d = await new Daemon({ env: { PACING_COLD: open, PACING_WARM: open, PACING_HOT: open, TYPING_MAX_MS: '0' } }).start();
  t.after(() => d.cleanup());
  const s = await d.link('972504100002');
  const r = await d.post(`/api/sessions/${s.sessionId}/stop`, {});
  assert.equal(r.status, 200);
  assert.equal(r.json.status, 'stopped');
  await waitFor(() => !pidAlive(s.worker.pid), { what: 'the worker ends' });
  await waitFor(async () => (await d.session(s.sessionId)).worker === null, { what: 'no worker shown' });
  // a message for it is taken and waits
  const m = await d.post('/api/v1/send', { to: '972500000077', message: 'after the stop', sessionId: s.sessionId });
  assert.equal(m.status, 202);
  // stopping again changes nothing; logging out a stopped session is refused
  const again = await d.post(`/api/sessions/${s.sessionId}/stop`, {});
  assert.equal(again.status, 200);
  assert.equal(again.json.status, 'stopped');
  assert.equal((await d.post(`/api/sessions/${s.sessionId}/logout`, {})).status, 409);
  // a daemon restart does not start it
  assert.equal(await d.stop(), 0);
  await d.start();
  assert.match(d.log(), /recovered sessions adopted=0 to_start=0/);
  const x = await d.session(s.sessionId);
  assert.equal(x.status, 'stopped');
  assert.equal(x.worker, null);
  assert.equal((await d.get(`/api/v1/messages/${m.json.messageId}`)).json.status, 'queued');
  // restarted: linked again without a QR, and the queued message goes
  assert.equal((await d.post(`/api/sessions/${s.sessionId}/restart`, {})).status, 200);
  await d.waitStatus(s.sessionId, 'connected');
  await waitFor(async () => (await d.get(`/api/v1/messages/${m.json.messageId}`)).json.status === 'sent', { what: 'the queued message sent' });
  assert.doesNotMatch(d.log().split(/info main: listening/).pop(), new RegExp(`event session=${s.sessionId} type=QR_CODE`), 'no QR: the link was kept');
  // a logged-out session has no link to keep: stop is refused
  assert.equal((await d.post(`/api/sessions/${s.sessionId}/logout`, {})).status, 200);
  const lo = await d.post(`/api/sessions/${s.sessionId}/stop`, {});
  assert.equal(lo.status, 409);
  assert.equal(lo.json.error.code, 'INVALID_STATE');
  assert.equal((await d.session(s.sessionId)).status, 'logged_out');
});

test('restarting a stopped session counts against MAX_WORKERS like a new one', async (t) => {
  const d = await new Daemon({ env: { MAX_WORKERS: '1' } }).start();
  t.after(() => d.cleanup());
  const a = await d.link('972504100003');
  assert.equal((await d.post(`/api/sessions/${a.sessionId}/stop`, {})).status, 200);
  const b = await d.provision(); // the stopped one runs no worker: room for this one
  await d.waitStatus(b, 'qr_ready');
  const r = await d.post(`/api/sessions/${a.sessionId}/restart`, {});
  assert.equal(r.status, 503);
  assert.equal(r.json.error.code, 'WORKER_LIMIT');
  assert.equal((await d.session(a.sessionId)).status, 'stopped', 'a refused restart changes nothing');
  // the running one restarts as before
  assert.equal((await d.post(`/api/sessions/${b}/restart`, {})).status, 200);
});
