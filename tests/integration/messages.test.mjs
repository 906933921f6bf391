// Messaging end to end with real simulator workers: the send API, pacing limits,
// idempotency, opt-out, affinity, held queues, and exactly-once across kill -9.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Daemon, waitFor } from './lib.mjs';

const OPEN = '0,0,0,0,00:00-24:00'; // no caps, no gaps, always open
const FAST = { PACING_COLD: OPEN, PACING_WARM: OPEN, PACING_HOT: OPEN, TYPING_MAX_MS: '0', MESSAGE_RETRY_MS: '200' };

async function withDaemon(env, fn) {
  const d = await new Daemon({ env: { ...FAST, ...env } }).start();
  try {
    await fn(d);
  } finally {
    await d.cleanup();
  }
}

function sentLog(d, id) {
  try {
    return fs.readFileSync(path.join(d.authDir(id), 'sent.log'), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

const msg = async (d, id) => (await d.get(`/api/v1/messages/${id}`)).json;
const waitMsg = (d, id, status, timeout = 10000) =>
  waitFor(async () => {
    const m = await msg(d, id);
    return m && m.status === status ? m : false;
  }, { timeout, what: `message ${id} ${status}` });

test('send flow: 202 once committed, the worker sends it once, status and figures follow', async () => {
  await withDaemon({}, async (d) => {
    const id = (await d.link('+972501110001')).sessionId;
    const r = await d.post('/api/v1/send', { to: '+972 50-000-0001'.replace(/[ -]/g, ''), message: 'שלום, hello', sessionId: id });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.queued, true);
    assert.match(r.json.messageId, /^msg_[0-9a-f]{24}$/);
    const m = await waitMsg(d, r.json.messageId, 'sent');
    assert.equal(m.sessionId, id);
    assert.equal(m.to, '+972500000001');
    assert.equal(m.attempts, 1);
    assert.equal(m.error, null);
    assert.equal(m.message, 'שלום, hello');
    assert.ok(Date.parse(m.sentAt) >= Date.parse(m.createdAt));
    assert.match(m.waMessageId, /^SIM/);
    assert.deepEqual(sentLog(d, id), [r.json.messageId]);
    const s = await d.session(id);
    assert.equal(s.sentToday, 1);
    assert.equal(s.failedToday, 0);
    assert.equal(s.queued, 0);
    assert.equal(s.dailyLimit, null); // the open test profile has no cap
    assert.equal(s.trustLevel, 'cold');
    const list = await d.get(`/api/v1/messages?sessionId=${id}&status=sent`);
    assert.deepEqual(list.json.messages.map((x) => x.messageId), [r.json.messageId]);
    const stats = await d.get('/api/stats');
    assert.equal(stats.json.messages.sentToday, 1);
    assert.equal(stats.json.sessions.find((x) => x.sessionId === id).sentToday, 1);
    assert.deepEqual(stats.json.calls, { active: 0, limit: 3, enabled: false });
    const totals = await d.get('/api/stats?sessions=false');
    assert.equal(totals.json.sessions, undefined);
    assert.deepEqual({ ...totals.json, sessions: undefined }, { ...stats.json, sessions: undefined });
    const bad = await d.get('/api/stats?sessions=no');
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /sessions must be true or false/);
    const metrics = await d.get('/metrics');
    assert.match(metrics.text, /switchboard_messages_total\{status="sent"\} 1\n/);
    assert.match(metrics.text, /switchboard_dispatch_lag_seconds_count [1-9]/);
  });
});

test('bad sends get clear errors and change nothing', async () => {
  await withDaemon({}, async (d) => {
    const id = (await d.link('+972501110002')).sessionId;
    const cases = [
      [{ to: '12345', message: 'x', sessionId: id }, 400, 'INVALID_PHONE'],
      [{ to: '+97250abc0001', message: 'x', sessionId: id }, 400, 'INVALID_PHONE'],
      [{ message: 'x', sessionId: id }, 400, 'INVALID_PHONE'],
      [{ to: '972500000001', message: '', sessionId: id }, 400, 'INVALID_MESSAGE'],
      [{ to: '972500000001', message: 'x'.repeat(4097), sessionId: id }, 400, 'INVALID_MESSAGE'],
      [{ to: '972500000001', message: 5, sessionId: id }, 400, 'INVALID_MESSAGE'],
      [{ to: '972500000001', message: 'x', sessionId: 'worker_999' }, 404, 'SESSION_NOT_FOUND'],
      [{ to: '972500000001', message: 'x', sessionId: id, extra: 1 }, 400, 'INVALID_REQUEST'],
      [{ to: '972500000001', message: 'x', sessionId: id, ttlSeconds: 0 }, 400, 'INVALID_REQUEST'],
      [{ to: '972500000001', message: 'x', sessionId: id, idempotencyKey: 'has space' }, 400, 'INVALID_REQUEST'],
    ];
    for (const [body, status, code] of cases) {
      const r = await d.post('/api/v1/send', body);
      assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 80)} -> ${r.text}`);
      assert.equal(r.json.error.code, code);
      assert.ok(r.json.error.message.length > 10);
    }
    // 4096 characters of Hebrew (8 KiB of UTF-8) are one valid message
    const ok = await d.post('/api/v1/send', { to: '972500000001', message: 'ש'.repeat(4096), sessionId: id });
    assert.equal(ok.status, 202, ok.text);
    // another tenant cannot send through this session, nor see its messages
    const t = await d.post('/api/tenants', { name: 'other' });
    const key = t.json.apiKey;
    const r = await d.post('/api/v1/send', { to: '972500000001', message: 'x', sessionId: id }, { key });
    assert.equal(r.status, 404);
    assert.equal((await d.get(`/api/v1/messages/${ok.json.messageId}`, { key })).status, 404);
    assert.equal((await d.post('/api/v1/send', { to: '972500000001', message: 'x' }, { key })).status, 503);
    const all = await d.get('/api/v1/messages');
    assert.equal(all.json.messages.length, 1, 'only the good send made a message');
    // the body is checked in the documented order: to, message, then the rest
    for (const [body, code] of [[{ to: '123', message: '', extra: 1 }, 'INVALID_PHONE'], [{ to: '972500000001', message: '', extra: 1 }, 'INVALID_MESSAGE']]) {
      assert.equal((await d.post('/api/v1/send', body)).json.error.code, code, JSON.stringify(body));
    }
  });
});

test('a query string that cannot be read is refused, never taken as no filter', async () => {
  await withDaemon({}, async (d) => {
    const id = (await d.link('+972501110003')).sessionId;
    const sent = await d.post('/api/v1/send', { to: '972500000001', message: 'x', sessionId: id });
    await waitMsg(d, sent.json.messageId, 'sent');
    await d.sim(id, '/sim/receive', { from: '972500000002', text: 'hi' });
    await waitFor(async () => (await d.get('/api/v1/inbox')).json.messages.length === 1, { what: 'inbox' });
    const bad = [
      ['/api/v1/messages?status=bogus&limit=5000&debug', /name=value/],
      ['/api/v1/messages?sessionId=worker_2&&', /name=value/],
      ['/api/v1/inbox?since=garbage&x', /name=value/],
      ['/api/v1/messages?limit=5&limit=500', /'limit' more than once/],
      [`/api/v1/messages?${Array.from({ length: 33 }, (_, i) => `p${i}=1`).join('&')}`, /more than 32 parameters/],
      ['/api/v1/messages?status=queued%00junk', /%00/],
      ['/api/v1/messages?cursor=%2B5', /cursor/],
      ['/api/v1/messages?limit=05', /limit/],
      ['/api/v1/inbox?since=2026-02-31T00:00:00Z', /since/],
      ['/api/v1/inbox?since=2026-1-5T09:00:00Z', /since/],
      ['/api/v1/inbox?since=2026-01-05T%209:00:00Z', /since/],
      ['/api/v1/inbox?since=2026-01-05T09:00:00.Z', /since/],
    ];
    for (const [url, why] of bad) {
      const r = await d.get(url);
      assert.equal(r.status, 400, `${url} -> ${r.status} ${r.text}`);
      assert.equal(r.json.error.code, 'INVALID_REQUEST', url);
      assert.match(r.json.error.message, why, url);
    }
    // the same questions asked well
    assert.equal((await d.get('/api/v1/messages?status=sent&limit=50')).json.messages.length, 1);
    assert.equal((await d.get('/api/v1/messages?status=queued')).json.messages.length, 0);
    assert.equal((await d.get('/api/v1/inbox?since=2026-01-05T09:00:00.5Z')).json.messages.length, 1);
    assert.equal((await d.get('/api/v1/inbox?since=2999-01-05T09:00:00Z')).json.messages.length, 0);
  });
});

test('DAILY_LIMIT counts sent plus queued; the same idempotencyKey answers once', async () => {
  await withDaemon({ PACING_COLD: '3,0,0,0,00:00-24:00' }, async (d) => {
    const id = (await d.link('+972501110003')).sessionId;
    const a = await d.post('/api/v1/send', { to: '972500000001', message: 'a', sessionId: id, idempotencyKey: 'order-1' });
    const again = await d.post('/api/v1/send', { to: '972500000001', message: 'a', sessionId: id, idempotencyKey: 'order-1' });
    assert.equal(again.status, 202);
    assert.equal(again.json.messageId, a.json.messageId);
    await waitMsg(d, a.json.messageId, 'sent');
    const b = await d.post('/api/v1/send', { to: '972500000002', message: 'b', sessionId: id });
    const c = await d.post('/api/v1/send', { to: '972500000003', message: 'c', sessionId: id });
    assert.equal(b.status, 202);
    assert.equal(c.status, 202);
    const over = await d.post('/api/v1/send', { to: '972500000004', message: 'd', sessionId: id });
    assert.equal(over.status, 429, over.text);
    assert.equal(over.json.error.code, 'DAILY_LIMIT');
    assert.ok(over.json.retryAfter > 0 && over.json.retryAfter <= 86400, `retryAfter ${over.json.retryAfter}`);
    assert.equal(over.headers.get('retry-after'), String(over.json.retryAfter));
    // a repeat of a key that was accepted still answers, even at the limit
    const rep = await d.post('/api/v1/send', { to: '972500000001', message: 'a', sessionId: id, idempotencyKey: 'order-1' });
    assert.equal(rep.json.messageId, a.json.messageId);
    await waitMsg(d, c.json.messageId, 'sent');
    const s = await d.session(id);
    assert.equal(s.sentToday, 3);
    assert.equal(s.dailyLimit, 3);
    assert.equal(sentLog(d, id).filter((x) => x === a.json.messageId).length, 1);
    // without a sessionId the only session is full too: DAILY_LIMIT, not a queue that cannot drain
    const none = await d.post('/api/v1/send', { to: '972500000009', message: 'e' });
    assert.equal(none.status, 429);
  });
});

test('opt-out words suppress the sender; incoming texts reach the inbox and set affinity', async () => {
  await withDaemon({}, async (d) => {
    const a = (await d.link('+972501110004')).sessionId;
    const b = (await d.link('+972501110005')).sessionId;
    // an ordinary reply on b: the inbox has it, and b is now the recipient's session
    let r = await d.sim(b, '/sim/receive', { from: '972500000010', text: 'מה נשמע?' });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const inbox = await waitFor(async () => {
      const x = await d.get(`/api/v1/inbox?sessionId=${b}`);
      return x.json.messages.length ? x.json : false;
    }, { what: 'inbox' });
    assert.equal(inbox.messages[0].from, '+972500000010');
    assert.equal(inbox.messages[0].text, 'מה נשמע?');
    const s1 = await d.post('/api/v1/send', { to: '972500000010', message: 'fine' });
    assert.equal(s1.status, 202);
    assert.equal((await waitMsg(d, s1.json.messageId, 'sent')).sessionId, b, 'affinity picks the session that talked');
    // "  stop! " and Hebrew "הסר" opt their senders out for the tenant
    await d.sim(a, '/sim/receive', { from: '972500000011', text: '  Stop! ' });
    await d.sim(b, '/sim/receive', { from: '972500000012', text: 'הסר' });
    await d.sim(b, '/sim/receive', { from: '972500000013', text: 'stop sending me the catalogue please' });
    await waitFor(async () => (await d.get('/api/v1/suppressions')).json.suppressions.length === 2, { what: 'two suppressions' });
    const list = (await d.get('/api/v1/suppressions')).json.suppressions.map((x) => x.phone);
    assert.deepEqual(list, ['+972500000011', '+972500000012']);
    r = await d.post('/api/v1/send', { to: '+972500000011', message: 'offer' });
    assert.equal(r.status, 403);
    assert.equal(r.json.error.code, 'OPTED_OUT');
    assert.equal((await d.post('/api/v1/send', { to: '972500000013', message: 'ok' })).status, 202);
    // removing the suppression allows sending again
    assert.equal((await d.del('/api/v1/suppressions/%2B972500000011')).status, 200);
    assert.equal((await d.del('/api/v1/suppressions/972500000011')).status, 404);
    assert.equal((await d.post('/api/v1/send', { to: '+972500000011', message: 'welcome back' })).status, 202);
    assert.equal((await d.post('/api/v1/suppressions', { phone: '+972500000099' })).status, 201);
    assert.equal((await d.post('/api/v1/send', { to: '972500000099', message: 'x' })).status, 403);
  });
});

test('without a sessionId and no daily cap, messages spread over the connected sessions', async () => {
  await withDaemon({ TYPING_MIN_MS: '300', TYPING_MAX_MS: '300' }, async (d) => {
    const a = (await d.link('+972501110012')).sessionId;
    const b = (await d.link('+972501110013')).sessionId;
    const ids = [];
    for (let i = 0; i < 6; i++) {
      const r = await d.post('/api/v1/send', { to: `97250000006${i}`, message: `spread ${i}` });
      assert.equal(r.status, 202);
      ids.push(r.json.messageId);
    }
    const by = { [a]: 0, [b]: 0 };
    for (const id of ids) by[(await waitMsg(d, id, 'sent')).sessionId]++;
    assert.ok(by[a] >= 2 && by[b] >= 2, `spread ${JSON.stringify(by)}`);
  });
});

test('without a sessionId the connected session with the most room today takes the message', async () => {
  await withDaemon({ PACING_COLD: '5,0,0,0,00:00-24:00' }, async (d) => {
    const a = (await d.link('+972501110006')).sessionId;
    const b = (await d.link('+972501110007')).sessionId;
    const first = await d.post('/api/v1/send', { to: '972500000020', message: '1', sessionId: a });
    await waitMsg(d, first.json.messageId, 'sent');
    const r = await d.post('/api/v1/send', { to: '972500000021', message: 'to the roomiest' });
    assert.equal(r.status, 202);
    assert.equal((await waitMsg(d, r.json.messageId, 'sent')).sessionId, b);
  });
});

test('a session that is not connected holds its queue and drains it once linked; cancel and TTL', async () => {
  await withDaemon({ MONITOR_INTERVAL_MS: '200' }, async (d) => {
    const id = await d.provision({});
    await d.waitStatus(id, 'qr_ready');
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const r = await d.post('/api/v1/send', { to: `97250000003${i}`, message: `held ${i}`, sessionId: id });
      assert.equal(r.status, 202);
      ids.push(r.json.messageId);
    }
    const gone = await d.post('/api/v1/send', { to: '972500000039', message: 'cancel me', sessionId: id });
    const ttl = await d.post('/api/v1/send', { to: '972500000038', message: 'short-lived', sessionId: id, ttlSeconds: 1 });
    assert.equal((await d.del(`/api/v1/messages/${gone.json.messageId}`)).json.status, 'cancelled');
    assert.equal((await d.del(`/api/v1/messages/${gone.json.messageId}`)).status, 409);
    await waitMsg(d, ttl.json.messageId, 'expired', 5000);
    assert.equal((await d.session(id)).queued, 3);
    for (const m of ids) assert.equal((await msg(d, m)).status, 'queued');
    assert.deepEqual(sentLog(d, id), []);
    await d.sim(id, '/sim/scan', { phoneNumber: '+972501110008' });
    for (const m of ids) await waitMsg(d, m, 'sent');
    assert.deepEqual(sentLog(d, id), ids, 'drained in order, each once');
  });
});

test('outside the active hours (TIMEZONE where it is night) messages wait for the window', async () => {
  // a zone where the local hour now is 2..5, inside the cold profile's closed 21:00-09:00
  const utcHour = new Date().getUTCHours();
  let zone = null;
  for (let local = 2; local <= 5 && !zone; local++) {
    const off = local - utcHour; // local = utc + off; Etc/GMT-N means UTC+N
    for (const o of [off, off + 24, off - 24]) {
      if (o >= -12 && o <= 14) { zone = o === 0 ? 'Etc/GMT' : o > 0 ? `Etc/GMT-${o}` : `Etc/GMT+${-o}`; break; }
    }
  }
  assert.ok(zone, 'a zone in night time');
  await withDaemon({ TIMEZONE: zone, PACING_COLD: '20,5,0,0,09:00-21:00' }, async (d) => {
    const id = (await d.link('+972501110009')).sessionId;
    const r = await d.post('/api/v1/send', { to: '972500000040', message: 'at nine', sessionId: id });
    assert.equal(r.status, 202);
    const s = await waitFor(async () => {
      const x = await d.session(id);
      return x.nextSendAt ? x : false;
    }, { what: 'nextSendAt' });
    const next = new Date(s.nextSendAt);
    const wait = next.getTime() - Date.now();
    assert.ok(wait > 3 * 3600e3 && wait < 8 * 3600e3, `next send in ${wait} ms`);
    const offH = zone === 'Etc/GMT' ? 0 : -Number(zone.slice(7)); // Etc/GMT-3 -> +3
    assert.equal((next.getUTCHours() + offH + 24) % 24, 9, `opens at 09:00 local (${s.nextSendAt} in ${zone})`);
    assert.equal(next.getUTCMinutes(), 0);
    assert.equal((await msg(d, r.json.messageId)).status, 'queued');
    assert.deepEqual(sentLog(d, id), []);
  });
});

test('a bad TIMEZONE or pacing profile stops start-up with one clear line', async () => {
  const { runDaemonCheck } = await import('./lib.mjs');
  let r = runDaemonCheck({ TIMEZONE: 'Mars/Olympus_Mons' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /TIMEZONE must be an IANA zone/);
  r = runDaemonCheck({ PACING_WARM: '100,15,3000,2000,8-22' });
  assert.match(r.stderr, /PACING_WARM: the active hours must be HH:MM-HH:MM/);
  r = runDaemonCheck({ PACING_HOT: '500,65,2000,2000,07:00-23:00' });
  assert.match(r.stderr, /PACING_HOT: part 2 must be per_minute/);
  assert.equal(runDaemonCheck({ TIMEZONE: 'Asia/Jerusalem' }).status, 0);
});

test('kill -9 of the daemon while sending, repeatedly: every message sent exactly once', async () => {
  const env = { TYPING_MIN_MS: '30', TYPING_PER_CHAR_MS: '0', TYPING_MAX_MS: '30', SEND_CONFIRM_MS: '1000' };
  const d = await new Daemon({ env: { ...FAST, ...env } }).start();
  try {
    const id = (await d.link('+972501110010')).sessionId;
    const ids = [];
    for (let i = 0; i < 40; i++) {
      const r = await d.post('/api/v1/send', { to: `9725000001${String(i).padStart(2, '0')}`, message: `m${i}`, sessionId: id });
      assert.equal(r.status, 202);
      ids.push(r.json.messageId);
    }
    for (let round = 0; round < 4; round++) {
      // let some go out, then kill in the middle of it
      const before = sentLog(d, id).length;
      await waitFor(() => sentLog(d, id).length > before || sentLog(d, id).length === ids.length, { what: 'progress' });
      await d.kill9();
      await d.start();
    }
    await waitFor(async () => {
      const l = await d.get(`/api/v1/messages?sessionId=${id}&limit=100`);
      return l.json.messages.every((m) => m.status === 'sent');
    }, { timeout: 30000, what: 'all sent' });
    const log = sentLog(d, id);
    assert.equal(log.length, ids.length, 'none lost, none twice');
    assert.deepEqual([...log].sort(), [...ids].sort());
    assert.equal((await d.session(id)).sentToday, ids.length);
  } finally {
    await d.cleanup();
  }
});

// A message in flight past its TTL: a worker that never had it would send it late, so
// it is not asked again but failed; the worker's sent.log proves it never went out.
const UNCONFIRMED = /not confirmed within its time to live/;

async function inFlightPastTtl(d, id, to) {
  // the worker answers 500 once: the dispatch stays in flight, to be asked again later
  assert.equal((await d.sim(id, '/sim/send-mode', { mode: 'error500', count: 1 })).status, 200);
  const r = await d.post('/api/v1/send', { to, message: 'late?', sessionId: id, ttlSeconds: 1 });
  assert.equal(r.status, 202, r.text);
  await waitFor(async () => (await d.sim(id, '/health', undefined, 'GET')).json?.sendModeLeft === 0, { what: 'the 500 answered' });
  assert.equal((await msg(d, r.json.messageId)).status, 'sending');
  return r.json.messageId;
}

async function nothingSentLate(d, id, late) {
  const m = await waitMsg(d, late, 'failed');
  assert.match(m.error, UNCONFIRMED);
  assert.equal(m.attempts, 1);
  assert.equal((await d.session(id)).failedToday, 1);
  // the session goes on: the next message is sent, and the late one never was
  const next = (await d.post('/api/v1/send', { to: '972500000069', message: 'next', sessionId: id })).json.messageId;
  await waitMsg(d, next, 'sent');
  assert.deepEqual(sentLog(d, id), [next]);
}

test('a message in flight is not asked again after its TTL (connected: the next try finds it over)', async () => {
  // the retry comes after the 1 s TTL; the sweep (every 30 s) is not what settles it
  await withDaemon({ MESSAGE_RETRY_MS: '1500' }, async (d) => {
    const id = (await d.link('+972501110031')).sessionId;
    const late = await inFlightPastTtl(d, id, '972500000061');
    await nothingSentLate(d, id, late);
  });
});

test('a message in flight is not left sending when its session never comes back: the sweep fails it at its TTL', async () => {
  await withDaemon({ MESSAGE_RETRY_MS: '60000', MONITOR_INTERVAL_MS: '200' }, async (d) => {
    const id = (await d.link('+972501110032')).sessionId;
    const late = await inFlightPastTtl(d, id, '972500000062');
    // logged out: no worker runs, nothing will ever ask for it again
    await d.sim(id, '/sim/disconnect', { loggedOut: true });
    await waitFor(async () => (await d.session(id)).status === 'logged_out', { what: 'logged out' });
    const m = await waitMsg(d, late, 'failed');
    assert.match(m.error, UNCONFIRMED);
    assert.ok(Date.parse(m.finishedAt) >= Date.parse(m.expiresAt), `failed at ${m.finishedAt}, not before its TTL ${m.expiresAt}`);
    const s = await d.session(id);
    assert.equal(s.failedToday, 1);
    assert.equal(s.inFlight, false, 'the session holds no message in flight');
    assert.ok(!sentLog(d, id).includes(late));
  });
});

test('worker failures: retryable ones retried with back-off, permanent ones fail, silent ones asked again', async () => {
  await withDaemon({ SEND_CONFIRM_MS: '300' }, async (d) => {
    const id = (await d.link('+972501110011')).sessionId;
    const send = async (n) => (await d.post('/api/v1/send', { to: `97250000005${n}`, message: `f${n}`, sessionId: id })).json.messageId;
    // one temporary failure, then it goes out on the second dispatch
    assert.equal((await d.sim(id, '/sim/send-mode', { mode: 'fail-retryable', count: 1 })).status, 200);
    const a = await send(1);
    const ma = await waitMsg(d, a, 'sent');
    assert.equal(ma.attempts, 2);
    // a permanent failure
    await d.sim(id, '/sim/send-mode', { mode: 'fail', count: 1 });
    const b = await send(2);
    const mb = await waitMsg(d, b, 'failed');
    assert.equal(mb.error, 'simulated permanent failure');
    assert.equal((await d.session(id)).failedToday, 1);
    // taken but never reported: asked again with the same messageId, sent once
    await d.sim(id, '/sim/send-mode', { mode: 'silent', count: 1 });
    const c = await send(3);
    await waitMsg(d, c, 'sent');
    // refused with 500 twice: asked again until taken
    await d.sim(id, '/sim/send-mode', { mode: 'error500', count: 2 });
    const e = await send(4);
    await waitMsg(d, e, 'sent');
    const log = sentLog(d, id);
    assert.deepEqual(log, [a, c, e], 'the failed one never sent; each other exactly once');
  });
});
