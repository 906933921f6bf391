// Sessions end to end: provision, QR, scan, connected with the sticky binding, pairing
// code, restart, logout, delete.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Daemon, pidAlive, waitFor, workerPids } from './lib.mjs';

const PROXY = 'socks5h://alice:hunter2secret@127.0.0.1:1080';
let d;
before(async () => {
  d = await new Daemon({ env: { PROXY_URL_1: PROXY, MAX_SESSIONS_PER_PROXY: '20' } }).start();
});
after(async () => {
  await d.cleanup();
});

test('provision -> qr_ready -> scan -> connected, with the sticky phone->proxy binding', async () => {
  const r = await d.post('/api/sessions/provision', {});
  assert.equal(r.status, 201);
  assert.match(r.json.sessionId, /^worker_\d+$/);
  assert.equal(r.json.status, 'provisioning');
  assert.equal(r.json.proxy, 'socks5h://***@127.0.0.1:1080');
  const id = r.json.sessionId;

  const s = await d.waitStatus(id, 'qr_ready');
  assert.equal(s.worker.backend, 'process');
  assert.ok(pidAlive(s.worker.pid));
  const qr = await d.get(`/api/sessions/${id}/qr`);
  assert.equal(qr.status, 200);
  assert.ok(qr.json.qr.length > 10);
  assert.ok(qr.json.updatedAt);
  // the QR rotates: a new code arrives while nobody scans
  await waitFor(async () => (await d.get(`/api/sessions/${id}/qr`)).json?.qr !== qr.json.qr, { what: 'QR rotation' });
  const svg = await d.get(`/api/sessions/${id}/qr.svg`, { raw: true });
  assert.equal(svg.status, 200);
  assert.equal(svg.headers.get('content-type'), 'image/svg+xml');
  assert.match(svg.text, /^<svg[^>]*>.*<path fill="#000" d="M\d+ \d+h1v1h-1z/);

  const scan = await d.sim(id, '/sim/scan', { phoneNumber: '+972501234567' });
  assert.equal(scan.status, 200);
  const c = await d.waitStatus(id, 'connected');
  assert.equal(c.phone, '+972501234567');
  assert.ok(c.connectedAt && c.firstConnectedAt);
  assert.equal(c.trustLevel, 'cold');
  // no QR once linked
  assert.equal((await d.get(`/api/sessions/${id}/qr`)).status, 404);

  const acc = await d.get('/api/accounts');
  const a = acc.json.accounts.find((x) => x.phone === '+972501234567');
  assert.ok(a, 'the phone is listed as an account');
  assert.equal(a.proxy, 'socks5h://***@127.0.0.1:1080');
  assert.deepEqual(a.sessions.map((x) => x.sessionId), [id]);

  // a second session for the same phone lands on the same proxy (sticky)
  const r2 = await d.post('/api/sessions/provision', { phone: '972501234567' });
  assert.equal(r2.status, 201);
  assert.equal(r2.json.proxy, 'socks5h://***@127.0.0.1:1080');

  // lastPingAt moves: the worker pings
  const p1 = (await d.session(id)).lastPingAt;
  await waitFor(async () => (await d.session(id)).lastPingAt !== p1, { what: 'a new PING' });
});

test('pairing code: POST /api/accounts/pair answers with the code, then the phone links', async () => {
  const r = await d.post('/api/accounts/pair', { phone: '+972509999999' });
  assert.equal(r.status, 200, r.text);
  assert.match(r.json.code, /^[A-Z0-9]{8}$/);
  assert.equal(r.json.phone, '+972509999999');
  const id = r.json.sessionId;
  const s = await d.session(id);
  assert.equal(s.loginMethod, 'pairing_code');
  assert.equal(s.pairingCode, r.json.code);
  assert.equal(s.status, 'qr_ready');
  // a fresh code on request (the old one expired): from the worker, and kept on the session
  const again = await d.post(`/api/sessions/${id}/pairing-code`, { phone: '+972509999999' });
  assert.equal(again.status, 200, again.text);
  assert.match(again.json.code, /^[A-Z0-9]{8}$/);
  await waitFor(async () => (await d.session(id)).pairingCode === again.json.code, { what: 'new code kept' });
  assert.equal((await d.post(`/api/sessions/${id}/pairing-code`, { phone: '12' })).status, 400);
  await d.sim(id, '/sim/scan', {});
  const c = await d.waitStatus(id, 'connected');
  assert.equal(c.phone, '+972509999999');
  assert.equal(c.pairingCode, undefined);
  assert.equal((await d.post(`/api/sessions/${id}/pairing-code`, { phone: '+972509999999' })).status, 409);
});

test('the proxy password never appears in answers or the log', async () => {
  for (const p of ['/api/sessions', '/api/proxies', '/api/accounts', '/health', '/metrics']) {
    const r = await d.get(p);
    assert.ok(!r.text.includes('hunter2secret'), `${p} leaks the proxy password`);
  }
  assert.ok(!d.log().includes('hunter2secret'), 'the daemon log leaks the proxy password');
  assert.ok(!d.log().includes('test-master-secret'), 'the daemon log leaks the webhook secret');
  assert.ok(!d.log().includes('test-admin-key'), 'the daemon log leaks the API key');
});

test('restart: a new worker process, the same linked session, no new QR', async () => {
  const id = await d.provision();
  await d.waitStatus(id, 'qr_ready');
  await d.sim(id, '/sim/scan', { phoneNumber: '972501111111' });
  const before = await d.waitStatus(id, 'connected');
  const r = await d.post(`/api/sessions/${id}/restart`);
  assert.equal(r.status, 200);
  const after = await waitFor(async () => {
    const s = await d.session(id);
    return s.status === 'connected' && s.worker && s.worker.pid !== before.worker.pid ? s : false;
  }, { what: 'reconnected with a new pid' });
  assert.equal(after.restarts, before.restarts + 1);
  assert.ok(!pidAlive(before.worker.pid), 'the old worker is gone');
});

test('a plain disconnect: the QR is gone, the worker restarts and the phone links again', async () => {
  const id = await d.provision();
  await d.waitStatus(id, 'qr_ready');
  const r = await d.sim(id, '/sim/disconnect', { loggedOut: false });
  assert.equal(r.status, 200);
  await waitFor(async () => {
    const s = await d.session(id);
    return s.restarts >= 1 && s.status === 'qr_ready';
  }, { what: 'restarted after a disconnect' });
  assert.match(d.log(), new RegExp(`session=${id} from=qr_ready to=disconnected reason="disconnected \\(status 428\\)`));
});

test('a worker-reported logout (DISCONNECTED loggedOut): logged_out, auth removed, no restart', async () => {
  const id = await d.provision();
  await d.waitStatus(id, 'qr_ready');
  await d.sim(id, '/sim/scan', { phoneNumber: '972503333333' });
  const s = await d.waitStatus(id, 'connected');
  await d.sim(id, '/sim/disconnect', { loggedOut: true });
  const x = await d.waitStatus(id, 'logged_out');
  assert.match(x.reason, /status 401/);
  await waitFor(() => !fs.existsSync(d.authDir(id)) && !pidAlive(s.worker.pid), { what: 'stopped and wiped' });
  assert.equal((await d.get(`/api/sessions/${id}/qr`)).status, 404);
});

test('connection replaced (DISCONNECTED 440): failed and stopped, not restarted into a tug of war; an API restart takes it back', async () => {
  const id = await d.provision();
  await d.waitStatus(id, 'qr_ready');
  await d.sim(id, '/sim/scan', { phoneNumber: '972503333444' });
  const s = await d.waitStatus(id, 'connected');
  const r = await d.event(id, 'DISCONNECTED', { loggedOut: false, statusCode: 440, reason: 'conflict' });
  assert.equal(r.status, 200);
  const x = await d.waitStatus(id, 'failed');
  assert.match(x.reason, /connection replaced \(status 440\).*restart the session/);
  await waitFor(() => !pidAlive(s.worker.pid), { what: 'worker stopped' });
  // the process is gone before the daemon has reaped it: wait for the daemon to see it
  await waitFor(async () => (await d.session(id)).worker === null, { what: 'the worker gone from the session' });
  assert.ok(fs.existsSync(path.join(d.authDir(id), 'sim-creds.json')), 'the auth state is kept');
  assert.doesNotMatch(d.log(), new RegExp(`restart scheduled session=${id} `), 'no worker started again');
  assert.equal((await d.session(id)).status, 'failed');
  assert.equal((await d.post(`/api/sessions/${id}/restart`)).status, 200);
  await d.waitStatus(id, 'connected');
});

test('logout: worker logs out, auth dir removed, status logged_out, no restart', async () => {
  const id = await d.provision();
  await d.waitStatus(id, 'qr_ready');
  await d.sim(id, '/sim/scan', { phoneNumber: '972502222222' });
  const s = await d.waitStatus(id, 'connected');
  assert.ok(fs.existsSync(d.authDir(id)));
  const r = await d.post(`/api/sessions/${id}/logout`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 'logged_out');
  await waitFor(() => !fs.existsSync(d.authDir(id)), { what: 'auth dir removed' });
  await waitFor(() => !pidAlive(s.worker.pid), { what: 'worker stopped' });
  const x = await d.session(id);
  assert.equal(x.status, 'logged_out');
  assert.equal(x.worker, null);
});

test('delete: worker stopped, slot freed; purge removes the auth dir', async () => {
  const id = await d.provision();
  const s = await d.waitStatus(id, 'qr_ready');
  const proxies1 = (await d.get('/api/proxies')).json.proxies[0].sessions;
  const r = await d.del(`/api/sessions/${id}`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { sessionId: id, deleted: true, purged: false });
  assert.equal((await d.get(`/api/sessions/${id}`)).status, 404);
  await waitFor(() => !pidAlive(s.worker.pid), { what: 'worker stopped' });
  assert.equal((await d.get('/api/proxies')).json.proxies[0].sessions, proxies1 - 1);
  assert.ok(fs.existsSync(d.authDir(id)), 'without purge the auth dir stays');

  const id2 = await d.provision();
  await d.waitStatus(id2, 'qr_ready');
  const r2 = await d.del(`/api/sessions/${id2}?purge=true`);
  assert.equal(r2.json.purged, true);
  await waitFor(() => !fs.existsSync(d.authDir(id2)), { what: 'auth dir purged' });
  assert.equal(workerPids(d.instanceId(), id2).length, 0);
});
