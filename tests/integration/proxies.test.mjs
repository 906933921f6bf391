// The proxy pool: capacity, least-loaded choice, failover with rebinding, waiting for a
// proxy, the proxies API.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Daemon, waitFor } from './lib.mjs';

const P1 = 'socks5h://u1:pw1-secret@127.0.0.1:1081';
const P2 = 'socks5h://u2:pw2-secret@127.0.0.1:1082';

test('9 sessions over 2 proxies of 4: the 9th is refused with 503 NO_PROXY_AVAILABLE', async (t) => {
  const d = await new Daemon({ env: { PROXY_URL_1: P1, PROXY_URL_2: P2 } }).start();
  t.after(() => d.cleanup());
  const seen = { 1: 0, 2: 0 };
  for (let i = 0; i < 8; i++) {
    const id = await d.provision();
    seen[(await d.session(id)).proxyId]++;
  }
  // least loaded first: they alternate, 4 and 4
  assert.deepEqual(seen, { 1: 4, 2: 4 });
  const r = await d.post('/api/sessions/provision', {});
  assert.equal(r.status, 503);
  assert.equal(r.json.error.code, 'NO_PROXY_AVAILABLE');
  // naming a pool proxy explicitly is that proxy (full here), never a private copy of it
  const named = await d.post('/api/sessions/provision', { proxy: P1 });
  assert.equal(named.status, 503);
  assert.match(named.json.error.message, /already carries 4 sessions/);
  assert.equal((await d.get('/api/proxies')).json.proxies.length, 2);
  assert.equal((await d.get('/api/sessions')).json.count, 8, 'the refused request created nothing');
  const px = (await d.get('/api/proxies')).json.proxies;
  assert.deepEqual(px.map((p) => [p.id, p.sessions, p.max, p.status]), [[1, 4, 4, 'ok'], [2, 4, 4, 'ok']]);
});

test('PROXY_ERROR: proxy marked bad, sessions moved, phone rebound, worker restarted', async (t) => {
  const d = await new Daemon({ env: { PROXY_URL_1: P1, PROXY_URL_2: P2 } }).start();
  t.after(() => d.cleanup());
  const id = await d.provision();
  await d.waitStatus(id, 'qr_ready');
  await d.sim(id, '/sim/scan', { phoneNumber: '972503000001' });
  const s = await d.waitStatus(id, 'connected');
  assert.equal(s.proxyId, 1);
  assert.equal((await d.get('/api/accounts')).json.accounts[0].proxy, 'socks5h://***@127.0.0.1:1081');

  await d.sim(id, '/sim/proxy-error');
  const moved = await waitFor(async () => {
    const x = await d.session(id);
    return x.proxyId === 2 && x.status === 'connected' && x.worker && x.worker.pid !== s.worker.pid ? x : false;
  }, { what: 'moved to proxy 2 and reconnected' });
  assert.match(moved.reason, /connected/);
  const px = (await d.get('/api/proxies')).json.proxies;
  assert.equal(px[0].status, 'bad');
  assert.equal(px[0].lastError, 'simulated proxy failure');
  assert.equal(px[0].sessions, 0);
  assert.equal(px[1].sessions, 1);
  assert.equal((await d.get('/api/accounts')).json.accounts[0].proxy, 'socks5h://***@127.0.0.1:1082', 'phone rebound');
  assert.equal(await d.metric('switchboard_proxy_failovers_total'), 1);
  // a new session is never given the bad proxy
  const id2 = await d.provision();
  assert.equal((await d.session(id2)).proxyId, 2);
  // the old worker's report posted again (a retry after a timeout): it was about proxy 1,
  // so proxy 2 stays ok and nothing moves
  const late = await d.event(id, 'PROXY_ERROR', { error: 'late report' }, {
    body: JSON.stringify({ sessionId: id, type: 'PROXY_ERROR', data: { error: 'late report' }, timestamp: Date.parse(s.connectedAt) }),
  });
  assert.equal(late.status, 200, JSON.stringify(late.json));
  const after = (await d.get('/api/proxies')).json.proxies;
  assert.equal(after[1].status, 'ok', 'proxy 2 not blamed for the earlier worker\'s report');
  assert.equal((await d.session(id)).proxyId, 2);
});

test('no room anywhere: the session waits in disconnected/no_proxy until a proxy is reset', async (t) => {
  const d = await new Daemon({ env: { PROXY_URL_1: P1, MAX_SESSIONS_PER_PROXY: '1' } }).start();
  t.after(() => d.cleanup());
  const id = await d.provision();
  await d.waitStatus(id, 'qr_ready');
  await d.sim(id, '/sim/scan', { phoneNumber: '972503000002' });
  const s = await d.waitStatus(id, 'connected');
  await d.sim(id, '/sim/proxy-error');
  const w = await waitFor(async () => {
    const x = await d.session(id);
    return x.status === 'disconnected' && x.reason === 'no_proxy' && x.worker === null ? x : false;
  }, { what: 'waiting for a proxy' });
  assert.equal(w.waitingForProxy, true);
  const h = (await d.get('/health')).json;
  assert.equal(h.waitingForProxy, 1);
  assert.match(h.note, /wait for a proxy/);
  assert.equal((await d.post('/api/sessions/provision', {})).status, 503);

  const r = await d.post('/api/proxies/1/reset');
  assert.equal(r.status, 200);
  assert.equal(r.json.status, 'ok');
  const back = await d.waitStatus(id, 'connected');
  assert.notEqual(back.worker.pid, s.worker.pid);
  assert.equal(back.waitingForProxy, false);
});

test('proxies API: validation, masking, in-use deletion, tenant scoping', async (t) => {
  const d = await new Daemon().start();
  t.after(() => d.cleanup());
  assert.equal((await d.get('/health')).json.proxies.mode, 'direct');
  for (const [url, why] of [
    ['socks5://u:p@h:1', /socks5h/],
    ['http://h:1', /socks5h/],
    ['socks5h://u:p@h', /port/],
    ['socks5h://u:p@h:99999', /port/],
    ['socks5h://u:p@:1', /host/],
  ]) {
    const r = await d.post('/api/proxies', { url });
    assert.equal(r.status, 400, url);
    assert.equal(r.json.error.code, 'INVALID_PROXY');
    assert.match(r.json.error.message, why);
    assert.ok(!r.text.includes(':p@'), 'no credentials in the error');
  }
  assert.equal((await d.post('/api/proxies', { url: P1, extra: 1 })).status, 400);
  const a = await d.post('/api/proxies', { url: P1 });
  assert.equal(a.status, 201);
  assert.equal(a.json.url, 'socks5h://***@127.0.0.1:1081');
  assert.equal((await d.post('/api/proxies', { url: P1 })).json.error.code, 'PROXY_EXISTS');
  const id = await d.provision();
  assert.equal((await d.session(id)).proxyId, a.json.id);
  const del = await d.del(`/api/proxies/${a.json.id}`);
  assert.equal(del.status, 409);
  assert.equal(del.json.error.code, 'PROXY_IN_USE');
  // force: the session loses it; with an empty pool it connects directly
  const f = await d.del(`/api/proxies/${a.json.id}?force=true`);
  assert.equal(f.status, 200);
  assert.equal(f.json.movedSessions, 1);
  const s = await waitFor(async () => {
    const x = await d.session(id);
    return x.proxyId === 0 && x.status === 'qr_ready' ? x : false;
  }, { what: 'session restarted direct' });
  assert.equal(s.proxy, null);
  assert.equal((await d.del('/api/proxies/999')).status, 404);
  assert.equal((await d.post('/api/proxies/abc/reset')).status, 404);

  // a tenant's own proxy is invisible to other tenants and is not used for them
  const t1 = (await d.post('/api/tenants', { name: 'acme' })).json.apiKey;
  const t2 = (await d.post('/api/tenants', { name: 'globex' })).json.apiKey;
  const own = await d.post('/api/proxies', { url: P2 }, { key: t1 });
  assert.equal(own.status, 201);
  assert.equal(own.json.shared, false);
  assert.equal((await d.get('/api/proxies', { key: t2 })).json.proxies.length, 0);
  assert.equal((await d.del(`/api/proxies/${own.json.id}`, { key: t2 })).status, 404);
  const s2 = await d.post('/api/sessions/provision', {}, { key: t2 });
  assert.equal(s2.json.proxy, null, 'tenant 2 connects directly, not through tenant 1 proxy');
  const s1 = await d.post('/api/sessions/provision', {}, { key: t1 });
  assert.equal(s1.json.proxy, 'socks5h://***@127.0.0.1:1082');
});

test('a bad proxy is re-checked with a real SOCKS5 handshake: back to ok when it works, bad while the credentials fail', async (t) => {
  const { spawn } = await import('node:child_process');
  const { freePort } = await import('./lib.mjs');
  const port = await freePort();
  // a real SOCKS5 server (Debian's microsocks) with username/password authentication
  const socks = spawn('microsocks', ['-i', '127.0.0.1', '-p', String(port), '-u', 'good', '-P', 'right-pass'], { stdio: 'ignore' });
  t.after(() => socks.kill('SIGKILL'));
  const good = `socks5h://good:right-pass@127.0.0.1:${port}`;
  const wrong = `socks5h://good:wrong-pass@127.0.0.1:${port}`;
  const d = await new Daemon({ env: { PROXY_URL_1: good, PROXY_URL_2: wrong, MAX_SESSIONS_PER_PROXY: '1', PROXY_RECHECK_MS: '400' } }).start();
  t.after(() => d.cleanup());
  const a = await d.provision();
  const b = await d.provision();
  assert.equal((await d.session(a)).proxyId, 1);
  assert.equal((await d.session(b)).proxyId, 2);
  for (const id of [a, b]) await d.waitStatus(id, 'qr_ready');
  // both proxies fail while their sessions run: both sessions wait, no room anywhere
  await d.sim(a, '/sim/proxy-error');
  await waitFor(async () => (await d.session(a)).reason === 'no_proxy' || (await d.session(a)).proxyId === 2, { what: 'a moved or waiting' });
  await d.sim(b, '/sim/proxy-error').catch(() => {});
  // the re-check brings proxy 1 back (right credentials) and a session runs on it again
  const px = await waitFor(async () => {
    const l = (await d.get('/api/proxies')).json.proxies;
    return l[0].status === 'ok' && /rejected the credentials/.test(l[1].lastError || '') ? l : false;
  }, { what: 'proxy 1 ok, proxy 2 still bad', timeout: 15000 });
  assert.equal(px[1].status, 'bad');
  await waitFor(async () => {
    const s = await Promise.all([d.session(a), d.session(b)]);
    return s.some((x) => x.proxyId === 1 && x.status === 'qr_ready' && x.worker);
  }, { what: 'a session restarted on the re-checked proxy' });
  assert.match(d.log(), /proxycheck: proxy works again id=1/);
  assert.match(d.log(), /proxycheck: proxy still bad id=2 reason="the proxy rejected the credentials"/);
  assert.ok(!d.log().includes('right-pass') && !d.log().includes('wrong-pass'), 'no proxy password in the log');
});

test('a deleted proxy takes its phone bindings along: its id coming back as another tenant\'s proxy binds nobody to it', async (t) => {
  const d = await new Daemon().start();
  t.after(() => d.cleanup());
  const t1 = (await d.post('/api/tenants', { name: 'acme' })).json.apiKey;
  const t2 = (await d.post('/api/tenants', { name: 'globex' })).json.apiKey;
  // a shared proxy; tenant 1's phone is bound to it by its first session
  const shared = await d.post('/api/proxies', { url: P1 });
  assert.equal(shared.status, 201);
  const first = await d.post('/api/sessions/provision', { phone: '+972501110051' }, { key: t1 });
  assert.equal(first.status, 201, first.text);
  assert.equal(first.json.proxy, 'socks5h://***@127.0.0.1:1081');
  assert.equal((await d.del(`/api/sessions/${first.json.sessionId}`, { key: t1 })).status, 200);
  assert.equal((await d.del(`/api/proxies/${shared.json.id}?force=true`)).status, 200);
  // tenant 2's own proxy gets the same id (SQLite reuses the highest rowid)
  const own = await d.post('/api/proxies', { url: P2 }, { key: t2 });
  assert.equal(own.status, 201);
  assert.equal(own.json.id, shared.json.id, 'the id came back');
  const again = await d.post('/api/sessions/provision', { phone: '+972501110051' }, { key: t1 });
  assert.equal(again.status, 201, again.text);
  assert.equal(again.json.proxy, null, 'tenant 1 is not put on tenant 2\'s proxy');
  const other = await d.post('/api/sessions/provision', {}, { key: t2 });
  assert.equal(other.json.proxy, 'socks5h://***@127.0.0.1:1082', 'tenant 2 still uses its own');
});

test('a stopped session whose proxy was deleted never starts directly: it waits for room, across a daemon restart and a restart request', async (t) => {
  const d = await new Daemon({ env: { MAX_SESSIONS_PER_PROXY: '1' } }).start();
  t.after(() => d.cleanup());
  const p1 = (await d.post('/api/proxies', { url: P1 })).json.id;
  const a = await d.provision();
  await d.waitStatus(a, 'qr_ready');
  const p2 = (await d.post('/api/proxies', { url: P2 })).json.id;
  const b = await d.provision();
  assert.deepEqual([(await d.session(a)).proxyId, (await d.session(b)).proxyId], [p1, p2]);
  assert.equal((await d.post(`/api/sessions/${a}/stop`, {})).status, 200);
  assert.equal((await d.del(`/api/proxies/${p1}?force=true`)).status, 200);
  assert.equal((await d.session(a)).proxyId, 0);
  // what it lost is kept across a restart of the daemon
  assert.equal(await d.stop(), 0);
  await d.start();
  assert.equal((await d.post(`/api/sessions/${a}/restart`, {})).status, 200);
  const waiting = await d.waitStatus(a, 'disconnected');
  assert.equal(waiting.reason, 'no_proxy');
  assert.equal(waiting.waitingForProxy, true);
  assert.equal(waiting.worker, null);
  // a second restart request does not send it out directly either
  assert.equal((await d.post(`/api/sessions/${a}/restart`, {})).status, 200);
  await waitFor(async () => (await d.session(a)).reason === 'no_proxy', { what: 'waiting again' });
  assert.equal((await d.session(a)).worker, null);
  assert.equal((await d.get('/health')).json.waitingForProxy, 1);
  // room on proxy 2: it starts there
  assert.equal((await d.del(`/api/sessions/${b}`)).status, 200);
  const moved = await d.waitStatus(a, 'qr_ready');
  assert.equal(moved.proxyId, p2);
  assert.equal(moved.proxy, 'socks5h://***@127.0.0.1:1082');
  assert.match(d.log(), new RegExp(`proxy switched session=${a} from=0 to=${p2}`));
});
