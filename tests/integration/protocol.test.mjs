// Every bad input gets a clear error and changes nothing: worker events, API bodies,
// auth and tenants, configuration.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { ADMIN_KEY, DAEMON, Daemon, freePort, MASTER, runDaemonCheck, waitFor, workerKey } from './lib.mjs';

let d, id;
before(async () => {
  d = await new Daemon({ env: { MAX_WORKERS: '4', MAX_SESSIONS_PER_PHONE: '2' } }).start();
  id = await d.provision();
  await d.waitStatus(id, 'qr_ready');
});
after(() => d.cleanup());

async function snapshot() {
  const s = await d.session(id);
  delete s.lastPingAt; // the simulator keeps pinging meanwhile
  delete s.reason;
  return { s, qr: (await d.get(`/api/sessions/${id}/qr`)).json?.qr && 'present' };
}

test('worker events: bad signature, stale time, unknown session, malformed -> refused, no state change', async () => {
  const before0 = await snapshot();
  const conn = { phoneNumber: '972505555555', name: 'x' };
  const cases = [
    ['wrong key', () => d.event(id, 'CONNECTED', conn, { key: workerKey('worker_999') }), 401, 'BAD_SIGNATURE'],
    ['another worker\'s key', () => d.event(id, 'CONNECTED', conn, { key: workerKey(id, 'other-master') }), 401, 'BAD_SIGNATURE'],
    ['stale timestamp', () => d.event(id, 'CONNECTED', conn, { ts: Math.floor(Date.now() / 1000) - 305 }), 401, 'BAD_SIGNATURE'],
    ['future timestamp', () => d.event(id, 'CONNECTED', conn, { ts: Math.floor(Date.now() / 1000) + 305 }), 401, 'BAD_SIGNATURE'],
    ['unknown session', () => d.event('worker_999', 'CONNECTED', conn), 404, 'SESSION_NOT_FOUND'],
    ['malformed JSON', () => d.event(id, null, null, { body: '{"sessionId":' }), 400, 'INVALID_EVENT'],
    ['unknown type', () => d.event(id, 'LINKED', conn), 400, 'INVALID_EVENT'],
    ['missing field', () => d.event(id, 'CONNECTED', { name: 'x' }), 400, 'INVALID_EVENT'],
    ['bad phone', () => d.event(id, 'CONNECTED', { phoneNumber: '12ab' }), 400, 'INVALID_EVENT'],
    ['wrong type of field', () => d.event(id, 'DISCONNECTED', { loggedOut: 'yes', statusCode: 1 }), 400, 'INVALID_EVENT'],
    ['data not an object', () => d.event(id, 'PING', [1]), 400, 'INVALID_EVENT'],
  ];
  for (const [name, fn, status, code] of cases) {
    const r = await fn();
    assert.equal(r.status, status, name);
    assert.equal(r.json.error.code, code, name);
    assert.ok(r.json.error.message.length > 5, `${name}: the error says what is wrong`);
  }
  // no signature headers at all
  const raw = JSON.stringify({ sessionId: id, type: 'PING', data: {}, timestamp: Date.now() });
  const nosig = await fetch(`${d.url}/webhook`, { method: 'POST', body: raw });
  assert.equal(nosig.status, 401);
  // too large
  const big = JSON.stringify({ sessionId: id, type: 'QR_CODE', data: { qr: 'x'.repeat(70000) }, timestamp: Date.now() });
  assert.equal((await d.event(id, null, null, { body: big })).status, 413);
  assert.deepEqual(await snapshot(), before0, 'nothing changed');
  assert.ok((await d.metric('switchboard_worker_events_total{type="rejected"}')) >= cases.length + 2);
  // and a good one is accepted
  const ok = await d.event(id, 'PING', { uptimeMs: 1, rssBytes: 2 });
  assert.equal(ok.status, 200);
});

test('API bodies: clear 400s, and a refused request creates nothing', async () => {
  const count = (await d.get('/api/sessions')).json.count;
  const cases = [
    ['{', /not valid JSON/],
    ['[]', /JSON object/],
    [{ phone: '123' }, /8 to 15 digits/],
    [{ phone: 972501234567 }, /phone must be a string/],
    [{ loginMethod: 'sms' }, /qr or pairing_code/],
    [{ loginMethod: 'pairing_code' }, /needs the phone/],
    [{ proxy: 'socks5://a:b@h:1' }, /socks5h/],
    [{ sessionName: 'x' }, /unknown field 'sessionName'/],
  ];
  for (const [body, why] of cases) {
    const r = await d.post('/api/sessions/provision', body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.match(r.json.error.message, why);
  }
  assert.equal((await d.post('/api/accounts/pair', { phone: 'abc' })).json.error.code, 'INVALID_PHONE');
  assert.equal((await d.post('/api/sessions/provision', { phone: '12' })).json.error.code, 'INVALID_PHONE');
  assert.equal((await d.post('/api/sessions/provision', { proxy: 'http://h:1' })).json.error.code, 'INVALID_PROXY');
  assert.equal((await d.post('/api/sessions/provision', { nope: 1 })).json.error.code, 'INVALID_REQUEST');
  assert.equal((await d.get('/api/sessions')).json.count, count);
  assert.equal((await d.get('/api/sessions?status=bogus')).status, 400);
  assert.equal((await d.get('/api/nope')).status, 404);
  // raw bytes that are not UTF-8 in the path: a clean JSON 404, and the daemon lives on
  const raw = await new Promise((resolve, reject) => {
    const sock = net.connect(d.port, '127.0.0.1', () => {
      sock.end(Buffer.concat([Buffer.from('GET /api/'), Buffer.from([0xff, 0xd7]), Buffer.from(' HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]));
    });
    let out = '';
    sock.on('data', (b) => { out += b.toString('latin1'); });
    sock.on('end', () => resolve(out));
    sock.on('error', reject);
  });
  assert.match(raw, /^HTTP\/1\.1 404/);
  assert.match(raw, /"code":"NOT_FOUND"/);
  assert.equal((await d.get('/health')).status, 200);
  assert.equal((await d.req('PUT', '/api/sessions')).status, 405);
});

test('limits: MAX_SESSIONS_PER_PHONE -> 409, MAX_WORKERS -> 503', async () => {
  await d.provision({ phone: '972507777777' });
  await d.provision({ phone: '972507777777' });
  const r = await d.post('/api/sessions/provision', { phone: '+972507777777' });
  assert.equal(r.status, 409);
  assert.equal(r.json.error.code, 'PHONE_SESSION_LIMIT');
  await d.provision(); // the 4th worker
  const w = await d.post('/api/sessions/provision', {});
  assert.equal(w.status, 503);
  assert.equal(w.json.error.code, 'WORKER_LIMIT');
  assert.equal((await d.get('/api/sessions')).json.count, 4);
});

test('auth and tenants: keys, isolation (404, not 403), admin-only routes', async () => {
  assert.equal((await d.get('/api/sessions', { key: null })).status, 401);
  assert.equal((await d.get('/api/sessions', { key: 'wrong-key-wrong-key' })).status, 401);
  assert.equal((await d.get('/metrics', { key: null })).status, 401);
  assert.equal((await d.get('/health', { key: null })).status, 200);
  const bearer = await fetch(`${d.url}/api/sessions`, { headers: { Authorization: `Bearer ${ADMIN_KEY}` } });
  assert.equal(bearer.status, 200);

  const t = await d.post('/api/tenants', { name: 'acme' });
  assert.equal(t.status, 201);
  assert.match(t.json.apiKey, /^sb_[0-9a-f]{48}$/);
  assert.equal((await d.post('/api/tenants', { name: 'acme' })).status, 409);
  assert.equal((await d.post('/api/tenants', { name: 'bad name!' })).status, 400);
  const key = t.json.apiKey;
  assert.equal((await d.post('/api/tenants', { name: 'x' }, { key })).status, 403);
  assert.equal((await d.get('/metrics', { key })).status, 403, 'daemon-wide figures are the admin\'s');
  assert.equal((await d.get('/api/sessions', { key })).json.count, 0);
  for (const [m, p] of [['GET', `/api/sessions/${id}`], ['GET', `/api/sessions/${id}/qr`], ['POST', `/api/sessions/${id}/restart`],
    ['POST', `/api/sessions/${id}/logout`], ['DELETE', `/api/sessions/${id}`]]) {
    const r = await d.req(m, p, m === 'POST' ? {} : undefined, { key });
    assert.equal(r.status, 404, `${m} ${p}`);
    assert.equal(r.json.error.code, 'SESSION_NOT_FOUND');
  }
  assert.equal((await d.session(id)).status, 'qr_ready', 'untouched by the other tenant');
  // the key is stored only as a hash
  const { execFileSync } = await import('node:child_process');
  const db = execFileSync('sqlite3', [`${d.dir}/data/switchboard.db`, 'SELECT key_hash FROM api_keys'], { encoding: 'utf8' });
  assert.ok(!db.includes(key.slice(3)));
  assert.match(db.trim(), /^[0-9a-f]{64}$/);
});

test('metrics pass promtool check metrics', async () => {
  const r = await d.get('/metrics');
  assert.equal(r.status, 200);
  const p = spawnSync('promtool', ['check', 'metrics'], { input: r.text, encoding: 'utf8' });
  assert.equal(p.status, 0, p.stdout + p.stderr);
  assert.match(r.text, /switchboard_http_requests_total\{route="\/api\/sessions\/provision",status="201"\} \d+/);
  assert.match(r.text, /switchboard_worker_events_total\{type="QR_CODE"\} [1-9]/);
});

test('configuration: --check names the bad value; zero-config start generates the secrets', async () => {
  let r = runDaemonCheck({ ORCH_PORT: '70000' });
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /ORCH_PORT must be a whole number from 1 to 65535/);
  r = runDaemonCheck({ LOG_LEVEL: 'loud' });
  assert.match(r.stderr, /LOG_LEVEL must be one of debug\|info\|warn\|error/);
  r = runDaemonCheck({ MAX_WORKERS: '20000' });
  assert.match(r.stderr, /WORKER_PORT_MIN..WORKER_PORT_MAX \(20000..29999\) must hold MAX_WORKERS/);
  r = runDaemonCheck({ PROXY_URL_1: 'socks5h://h:1' });
  assert.equal(r.status, 0, r.stderr);
  r = runDaemonCheck({});
  assert.equal(r.status, 0);
  assert.match(r.stdout, /configuration ok/);

  // a port in use: one clear line and exit 1, nothing half-started
  const busy = new Daemon({ env: { ORCH_PORT: String(d.port) } });
  busy.port = d.port;
  const log = await import('node:fs').then((fs) => {
    const out = spawnSync(busy.opts.bin || (d.proc.spawnfile), [], { env: { ...busy.env(), ORCH_PORT: String(d.port) }, cwd: busy.dir, encoding: 'utf8', timeout: 10000 });
    fs.rmSync(busy.dir, { recursive: true, force: true });
    return out;
  });
  assert.equal(log.status, 1, log.stderr);
  assert.match(log.stderr, /cannot listen on 127\.0\.0\.1:\d+/);

  const z = new Daemon();
  z.env = function () {
    return { PATH: process.env.PATH, ENV_FILE: '/nonexistent', DATA_DIR: `${this.dir}/data`, ORCH_PORT: String(this.port) };
  };
  await z.start();
  try {
    const fs = await import('node:fs');
    const key = fs.readFileSync(`${z.dir}/data/api_key`, 'utf8');
    assert.equal(fs.statSync(`${z.dir}/data/api_key`).mode & 0o777, 0o600);
    assert.equal(fs.statSync(`${z.dir}/data/webhook_secret`).mode & 0o777, 0o600);
    assert.equal(fs.statSync(`${z.dir}/data/switchboard.db`).mode & 0o077, 0, 'the store (proxy credentials) is private');
    assert.equal(fs.statSync(`${z.dir}/data`).mode & 0o077, 0);
    assert.match(z.log(), /generated the admin API key sb_admin_/);
    assert.match(z.log(), /runner=process worker=node \S+\/workers\/baileys\/src\/main\.js /, 'the real worker by default');
    assert.equal((await z.get('/api/sessions', { key })).status, 200);
    // printed once: a second start does not print it
    await z.stop();
    const n = (z.log().match(/generated the admin API key/g) || []).length;
    await z.start();
    assert.equal((z.log().match(/generated the admin API key/g) || []).length, n);
  } finally {
    await z.cleanup();
  }
});

test('secrets: another process of the daemon\'s own user cannot read its environment (API_KEY, WEBHOOK_SECRET)', async (t) => {
  if (process.getuid() !== 0) {
    t.skip('starting the daemon as another user needs root');
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-nodump-'));
  fs.chownSync(dir, 65534, 65534);
  const port = await freePort();
  const asNobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];
  const p = spawn('setpriv', [...asNobody, DAEMON], {
    env: { PATH: process.env.PATH, ENV_FILE: '/nonexistent', DATA_DIR: dir, ORCH_PORT: String(port), API_KEY: ADMIN_KEY, WEBHOOK_SECRET: MASTER },
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => p.on('exit', resolve));
  try {
    await waitFor(async () => {
      try {
        return (await fetch(`http://127.0.0.1:${port}/health`)).status === 200;
      } catch {
        return false;
      }
    }, { what: 'the daemon running as nobody' });
    // setpriv execs the daemon: p.pid is the daemon
    const r = spawnSync('setpriv', [...asNobody, 'cat', `/proc/${p.pid}/environ`], { encoding: 'latin1' });
    assert.notEqual(r.status, 0, 'the read is refused');
    assert.match(r.stderr, /Permission denied/);
    assert.ok(!r.stdout.includes(ADMIN_KEY) && !r.stdout.includes(MASTER), 'no secret read');
  } finally {
    p.kill('SIGTERM');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
