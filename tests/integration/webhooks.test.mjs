// Customer webhooks: durable, signed, ordered per endpoint, retried, dead-lettered and
// replayed; a slow endpoint delays no other; kill -9 between commit and delivery loses
// nothing. The receiver (tests/fakes/receiver.mjs) records the exact requests.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { startReceiver } from '../fakes/receiver.mjs';
import { Daemon, waitFor, workerPids } from './lib.mjs';

const ENV = { WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_RETRY_BASE_MS: '100', WEBHOOK_TIMEOUT_MS: '2000' };

function verify(req, secret) {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(req.headers['x-switchboard-signature'] || '');
  if (!m) return false;
  const want = createHmac('sha256', secret).update(`${m[1]}.${req.body}`).digest('hex');
  return want === m[2] && Math.abs(Date.now() / 1000 - Number(m[1])) < 300;
}

// session.status events on demand: each provision makes "provisioning" and more
async function makeEvents(d, n) {
  for (let i = 0; i < n; i++) await d.provision({});
}

async function hook(d, body, o) {
  const r = await d.post('/api/webhooks', body, o);
  assert.equal(r.status, 201, r.text);
  return r.json;
}

test('signed deliveries in event order; retries on 500; a slow endpoint does not delay a fast one', async () => {
  const rx = await startReceiver();
  const d = await new Daemon({ env: ENV }).start();
  try {
    rx.plan('/slow', [{ delayMs: 1500 }]);
    rx.plan('/flaky', [{ status: 500 }, { status: 503 }, { status: 200 }]);
    const fast = await hook(d, { url: rx.url('/fast'), events: ['session.status'] });
    assert.match(fast.secret, /^whsec_[0-9a-f]{48}$/);
    assert.deepEqual(fast.events, ['session.status']);
    const slow = await hook(d, { url: rx.url('/slow'), events: ['*'], secret: 'my-own-secret-0123456789' });
    assert.equal(slow.secret, 'my-own-secret-0123456789');
    const flaky = await hook(d, { url: rx.url('/flaky'), events: ['session.status', 'session.qr'] });
    const list = (await d.get('/api/webhooks')).json.webhooks;
    assert.equal(list.length, 3);
    assert.ok(list.every((w) => w.secret === undefined), 'secrets are shown once, at creation');

    const t0 = Date.now();
    await makeEvents(d, 3);
    // the fast endpoint has all its events well before the slow one got its second
    await rx.waitFor((r) => r.on('/fast').length >= 3, 5000, 'fast deliveries');
    const fastDone = Date.now() - t0;
    assert.ok(fastDone < 1500, `the fast endpoint waited ${fastDone} ms`);
    assert.ok(rx.on('/slow').length <= 2, 'the slow one is still on its first ones');
    for (const q of rx.on('/fast')) {
      assert.equal(q.method, 'POST');
      assert.equal(q.headers['content-type'], 'application/json');
      assert.ok(verify(q, fast.secret), 'the signature verifies');
      assert.ok(!verify(q, slow.secret), 'and only with its own secret');
      assert.equal(q.headers['x-switchboard-event'], 'session.status');
      const ev = JSON.parse(q.body);
      assert.equal(ev.type, 'session.status');
      assert.match(String(q.headers['x-switchboard-delivery']), /^\d+$/);
    }
    const ids = rx.on('/fast').map((q) => JSON.parse(q.body).id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'in event order');
    // the flaky one: 500, 503, then 200, in order, the same delivery id each time
    await rx.waitFor((r) => r.on('/flaky').filter((q) => q.answer === 200).length >= 1, 5000, 'flaky delivered');
    const fl = rx.on('/flaky');
    assert.deepEqual(fl.slice(0, 3).map((q) => q.answer), [500, 503, 200]);
    assert.equal(new Set(fl.slice(0, 3).map((q) => q.headers['x-switchboard-delivery'])).size, 1, 'retries keep the delivery id');
    assert.ok(fl[1].at - fl[0].at >= 70 && fl[2].at - fl[1].at >= 140, 'back-off grows');
    const dl = (await d.get(`/api/webhooks/${flaky.id}/deliveries?limit=100`)).json.deliveries;
    const first = dl.find((x) => String(x.id) === fl[0].headers['x-switchboard-delivery']);
    assert.equal(first.status, 'delivered');
    assert.equal(first.attempts, 3);
    await rx.waitFor((r) => r.on('/slow').length >= 6, 20000, 'slow endpoint catches up');
    const sids = rx.on('/slow').map((q) => JSON.parse(q.body).id);
    assert.deepEqual(sids, [...sids].sort((a, b) => a - b));
  } finally {
    await d.cleanup();
    await rx.close();
  }
});

test('kill -9 between commit and delivery: delivered after the restart under the same delivery id', async () => {
  const rx = await startReceiver();
  const d = await new Daemon({ env: ENV }).start();
  try {
    rx.plan('/hold', [{ hang: true }, { status: 200 }]);
    const h = await hook(d, { url: rx.url('/hold'), events: ['session.status'] });
    await makeEvents(d, 1);
    const held = await rx.waitFor((r) => r.on('/hold')[0], 5000, 'the first delivery on the wire');
    await d.kill9();
    await d.start();
    const again = await rx.waitFor((r) => r.on('/hold').find((q) => q.answer === 200 &&
      q.headers['x-switchboard-delivery'] === held.headers['x-switchboard-delivery']), 10000, 'the same delivery again');
    assert.equal(again.body, held.body, 'the same payload');
    assert.ok(verify(again, h.secret));
    await waitFor(async () => {
      const dl = (await d.get(`/api/webhooks/${h.id}/deliveries`)).json.deliveries;
      return dl.find((x) => String(x.id) === held.headers['x-switchboard-delivery'])?.status === 'delivered';
    }, { what: 'marked delivered' });
  } finally {
    await d.cleanup();
    await rx.close();
  }
});

test('events made while the daemon starts (a session found without its worker) are delivered too', async () => {
  const rx = await startReceiver();
  const d = await new Daemon({ env: ENV }).start();
  try {
    const h = await hook(d, { url: rx.url('/up'), events: ['session.status'] });
    const id = (await d.link('+972501110041')).sessionId;
    // the daemon and its worker both die: the next start finds the session without one
    const pids = workerPids(d.instanceId(), id);
    assert.equal(pids.length, 1);
    await d.kill9();
    process.kill(-pids[0], 'SIGKILL');
    await waitFor(() => workerPids(d.instanceId(), id).length === 0, { what: 'the worker gone' });
    await d.start();
    const got = await rx.waitFor((r) => r.on('/up').find((q) => {
      const e = JSON.parse(q.body);
      return e.sessionId === id && e.data.previous === 'connected' && /daemon restarted/.test(e.data.reason);
    }), 10000, 'the recovery\'s session.status delivered');
    assert.ok(verify(got, h.secret));
    // and the session comes back
    await d.waitStatus(id, 'connected');
  } finally {
    await d.cleanup();
    await rx.close();
  }
});

test('dead letters and replay; 410 disables; private addresses are refused unless allowed; tenants', async () => {
  const rx = await startReceiver();
  const d = await new Daemon({ env: { ...ENV, WEBHOOK_RETRY_FOR_MS: '300' } }).start();
  try {
    rx.plan('/down', [{ status: 500 }]);
    rx.plan('/gone', [{ status: 410 }]);
    const down = await hook(d, { url: rx.url('/down'), events: ['session.status'] });
    const gone = await hook(d, { url: rx.url('/gone'), events: ['session.status'] });
    await makeEvents(d, 1);
    const deadOne = await waitFor(async () => {
      const x = (await d.get(`/api/webhooks/${down.id}/deliveries?status=dead`)).json.deliveries;
      return x.length ? x.at(-1) : false;
    }, { what: 'a dead letter' });
    assert.equal(deadOne.lastStatus, 500);
    assert.ok(deadOne.attempts >= 2);
    await waitFor(async () => (await d.get('/api/webhooks')).json.webhooks.find((w) => w.id === gone.id).status === 'disabled',
      { what: '410 disables' });
    const goneCount = rx.on('/gone').length;
    // the endpoint is back: replay the dead letter, same delivery id
    rx.plan('/down', [{ status: 200 }]);
    const rp = await d.post(`/api/webhooks/${down.id}/deliveries/${deadOne.id}/replay`);
    assert.equal(rp.status, 202, rp.text);
    await rx.waitFor((r) => r.on('/down').some((q) => q.answer === 200 && q.headers['x-switchboard-delivery'] === String(deadOne.id)),
      5000, 'the replay');
    assert.equal((await d.post(`/api/webhooks/${down.id}/deliveries/999999/replay`)).status, 404);
    await makeEvents(d, 1);
    await rx.waitFor((r) => r.on('/down').filter((q) => q.answer === 200).length >= 2, 5000, 'new events still flow');
    assert.equal(rx.on('/gone').length, goneCount, 'nothing more to a disabled webhook');

    // validation: scheme, event types, private addresses
    let r = await d.post('/api/webhooks', { url: 'ftp://example.com/x', events: ['*'] });
    assert.equal(r.status, 400);
    r = await d.post('/api/webhooks', { url: 'https://example.com/x', events: ['nope'] });
    assert.match(r.json.error.message, /events\[0\]/);
    r = await d.post('/api/webhooks', { url: 'https://example.com/x', events: [] });
    assert.equal(r.status, 400);
    r = await d.post('/api/webhooks', { url: 'https://example.com/x', events: ['*', 'bogus'] });
    assert.equal(r.status, 400);
    // tenants: another tenant neither sees nor touches these
    const t = await d.post('/api/tenants', { name: 'other' });
    const key = t.json.apiKey;
    assert.equal((await d.get('/api/webhooks', { key })).json.webhooks.length, 0);
    assert.equal((await d.del(`/api/webhooks/${down.id}`, { key })).status, 404);
    assert.equal((await d.del(`/api/webhooks/${down.id}`)).status, 200);
    assert.equal((await d.get(`/api/webhooks/${down.id}/deliveries`)).status, 404);
    // ids are never reused: a receiver may de-duplicate on them
    const again = await hook(d, { url: rx.url('/down'), events: ['session.status'] });
    assert.ok(again.id > gone.id, 'a new webhook gets a new id');
    await makeEvents(d, 1);
    const fresh = await rx.waitFor((r) => r.on('/down').filter((q) => q.answer === 200).at(-1), 5000, 'a delivery to the new one');
    assert.ok(Number(fresh.headers['x-switchboard-delivery']) > deadOne.id, 'and new delivery ids');
    // the 410 one comes back by replaying the delivery it holds
    rx.plan('/gone', [{ status: 200 }]);
    const held = (await d.get(`/api/webhooks/${gone.id}/deliveries?status=pending`)).json.deliveries.at(-1);
    assert.equal((await d.post(`/api/webhooks/${gone.id}/deliveries/${held.id}/replay`)).status, 202);
    await rx.waitFor((r) => r.on('/gone').some((q) => q.answer === 200), 5000, 'the disabled one re-enabled');
    assert.equal((await d.get('/api/webhooks')).json.webhooks.find((w) => w.id === gone.id).status, 'active');
    const m = await d.get('/metrics');
    assert.match(m.text, /switchboard_webhook_deliveries_total\{outcome="dead"\} [1-9]/);
  } finally {
    await d.cleanup();
    await rx.close();
  }
  const strict = await new Daemon({}).start();
  try {
    for (const url of ['http://127.0.0.1:9/x', 'http://localhost/x', 'http://10.1.2.3/x', 'http://[::1]/x', 'http://192.168.0.9/x']) {
      const r = await strict.post('/api/webhooks', { url, events: ['*'] });
      assert.equal(r.status, 400, url);
      assert.match(r.json.error.message, /WEBHOOK_ALLOW_PRIVATE/);
    }
    assert.equal((await strict.post('/api/webhooks', { url: 'https://hooks.example.com/sb', events: ['*'] })).status, 201);
  } finally {
    await strict.cleanup();
  }
});

test('forty endpoints that never answer delay no other tenant\'s endpoint on the same host', async () => {
  const rx = await startReceiver();
  const d = await new Daemon({ env: { ...ENV, WEBHOOK_TIMEOUT_MS: '8000' } }).start();
  try {
    for (let i = 0; i < 40; i++) {
      rx.plan(`/hang-${i}`, [{ hang: true }]);
      await hook(d, { url: rx.url(`/hang-${i}`), events: ['session.status'] });
    }
    const key = (await d.post('/api/tenants', { name: 'other' })).json.apiKey;
    const theirs = await hook(d, { url: rx.url('/ok'), events: ['session.status'] }, { key });
    await d.provision({}); // forty deliveries that hang until WEBHOOK_TIMEOUT_MS, all at once
    await rx.waitFor((r) => r.requests.filter((q) => q.path.startsWith('/hang-')).length === 40, 5000, 'forty held');
    const t0 = Date.now();
    assert.equal((await d.post('/api/sessions/provision', {}, { key })).status, 201);
    await rx.waitFor((r) => r.on('/ok').length >= 1, 5000, 'the other tenant\'s delivery');
    assert.ok(Date.now() - t0 < 1500, `it waited ${Date.now() - t0} ms`);
    const dl = (await d.get(`/api/webhooks/${theirs.id}/deliveries?limit=100`, { key })).json.deliveries;
    const first = dl.find((x) => String(x.id) === rx.on('/ok')[0].headers['x-switchboard-delivery']);
    assert.equal(first.attempts, 1, 'delivered at the first attempt');
    assert.equal(rx.on('/ok')[0].answer, 200);
  } finally {
    await d.cleanup();
    await rx.close();
  }
});

test('an endpoint that takes nothing: once a delivery dies, those queued behind it past their window die with it, untried', async () => {
  const rx = await startReceiver();
  const d = await new Daemon({ env: { ...ENV, WEBHOOK_RETRY_FOR_MS: '1000' } }).start();
  try {
    rx.plan('/down', [{ status: 500 }]);
    const down = await hook(d, { url: rx.url('/down'), events: ['session.status'] });
    await makeEvents(d, 6);
    const all = async () => (await d.get(`/api/webhooks/${down.id}/deliveries?limit=100`)).json.deliveries;
    const done = await waitFor(async () => {
      const x = await all();
      return x.length >= 6 && x.every((y) => y.status === 'dead') ? x : false;
    }, { timeout: 15000, what: 'every delivery dead' });
    const n = done.length;
    const untried = done.filter((y) => y.attempts === 0);
    assert.ok(untried.length > 0, 'some died untried');
    for (const y of untried) assert.match(y.lastError, /^not tried: the endpoint took nothing for longer than the retry window \(delivery \d+ died with: HTTP 500\)$/);
    assert.ok(rx.on('/down').length < n, `${rx.on('/down').length} requests for ${n} deliveries`);
    assert.match(d.log(), new RegExp(`deliveries dead with it webhook=${down.id} count=\\d+`));
  } finally {
    await d.cleanup();
    await rx.close();
  }
});
