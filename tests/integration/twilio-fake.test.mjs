// Self-test of the fake Twilio REST API (tests/fakes/twilio.mjs): what it accepts and
// rejects, the call lifecycle and its signed status callbacks (checked with the official
// twilio package's validateRequest), and the ways it can misbehave on purpose.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import { test } from 'node:test';
import twilio from 'twilio';
import { startFakeTwilio, rfc2822 } from '../fakes/twilio.mjs';

const FROM = '+15005550006';
const RFC2822 = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} \+0000$/;
const ALL_EVENTS = ['initiated ringing', 'answered', 'completed']; // space-separated and repeated

// A Twilio API call the way the daemon makes it: Basic auth, form-encoded body.
async function api(tw, method, path, params, { user = tw.accountSid, pass = tw.authToken, signal } = {}) {
  const headers = { Authorization: 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64') };
  let body;
  if (params && method !== 'GET') {
    const f = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const x of [].concat(v)) f.append(k, x);
    body = f.toString();
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
  }
  const res = await fetch(tw.url + path, { method, headers, body, signal });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch {}
  return { status: res.status, json, text, headers: res.headers };
}

const callsPath = (tw) => `/2010-04-01/Accounts/${tw.accountSid}/Calls.json`;
const callPath = (tw, sid) => `/2010-04-01/Accounts/${tw.accountSid}/Calls/${sid}.json`;

// A status-callback receiver that checks each request's signature like the daemon must.
async function receiver(t, authToken, { answer = 204 } = {}) {
  const got = [];
  const ev = new EventEmitter();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const params = req.method === 'POST' ? Object.fromEntries(new URLSearchParams(body)) : {};
      const fullUrl = `http://127.0.0.1:${server.address().port}${req.url}`;
      const sig = req.headers['x-twilio-signature'];
      const r = {
        method: req.method, url: req.url, fullUrl, headers: req.headers, body, params,
        query: Object.fromEntries(new URL(fullUrl).searchParams),
        valid: twilio.validateRequest(authToken, sig, fullUrl, params),
      };
      got.push(r);
      res.writeHead(answer);
      res.end();
      ev.emit('got', r);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => { server.closeAllConnections(); server.close(r); }));
  const base = `http://127.0.0.1:${server.address().port}`;
  // resolves once pred(got) holds, or rejects after timeoutMs
  const until = (pred, timeoutMs = 3000) => new Promise((resolve, reject) => {
    const check = () => { if (pred(got)) { ev.off('got', check); clearTimeout(tm); resolve(got); } };
    const tm = setTimeout(() => { ev.off('got', check); reject(new Error(`receiver: timed out; got ${JSON.stringify(got.map((g) => g.params.CallStatus ?? g.query.CallStatus))}`)); }, timeoutMs);
    ev.on('got', check);
    check();
  });
  return { base, got, until };
}

async function fake(t, opts) {
  const tw = await startFakeTwilio(opts);
  t.after(() => tw.close());
  return tw;
}

const statuses = (got) => got.map((g) => g.params.CallStatus ?? g.query.CallStatus);

test('wrong credentials or account: 401 Authenticate, nothing created', async (t) => {
  const tw = await fake(t);
  const good = { To: '+15551230001', From: FROM, Url: 'http://127.0.0.1:1/twiml' };
  for (const o of [{ pass: 'nope' }, { user: 'AC' + '0'.repeat(32) }, { user: '', pass: '' }]) {
    const r = await api(tw, 'POST', callsPath(tw), good, o);
    assert.equal(r.status, 401, r.text);
    assert.deepEqual(r.json, { code: 20003, message: 'Authenticate', more_info: 'https://www.twilio.com/docs/errors/20003', status: 401 });
    assert.match(r.headers.get('www-authenticate'), /^Basic /);
  }
  // good credentials but another account's path
  const other = await api(tw, 'POST', `/2010-04-01/Accounts/AC${'1'.repeat(32)}/Calls.json`, good);
  assert.equal(other.status, 401);
  const noAuth = await fetch(tw.url + callsPath(tw), { method: 'POST', body: new URLSearchParams(good) });
  assert.equal(noAuth.status, 401);
  assert.equal(tw.calls.size, 0);
  assert.equal(tw.requests.length, 5);
  assert.ok(tw.requests.every((r) => r.op === 'create' && r.answer.status === 401));
});

test('create validates strictly and records exactly what it got', async (t) => {
  const tw = await fake(t);
  const ok = { To: '+15551230001', From: FROM, Url: 'http://127.0.0.1:1/twiml' };
  const cases = [
    [{ ...ok, To: undefined }, 21201],
    [{ ...ok, To: '' }, 21201],
    [{ ...ok, To: '5551230001' }, 21211],
    [{ ...ok, To: '+1 555 123' }, 21211],
    [{ ...ok, From: undefined }, 21213],
    [{ ...ok, From: 'me' }, 21212],
    [{ ...ok, Url: undefined }, 21205],
    [{ ...ok, Url: 'not a url' }, 21205],
    [{ ...ok, StatusCallback: '/relative' }, 21205],
    [{ ...ok, StatusCallbackEvent: 'hungup' }, 21200],
    [{ ...ok, StatusCallbackMethod: 'PUT' }, 21200],
    [{ ...ok, Timeout: 'soon' }, 21208],
    [{ ...ok, To: [ok.To, '+15551230002'] }, 21200],
  ];
  for (const [p, code] of cases) {
    const params = Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined));
    const r = await api(tw, 'POST', callsPath(tw), params);
    assert.equal(r.status, 400, `${JSON.stringify(params)} -> ${r.text}`);
    assert.equal(r.json.code, code, `${JSON.stringify(params)} -> ${r.text}`);
    assert.equal(r.json.status, 400);
    assert.equal(r.json.more_info, `https://www.twilio.com/docs/errors/${code}`);
    assert.equal(typeof r.json.message, 'string');
  }
  // a JSON body carries no form parameters, as with Twilio
  const js = await fetch(tw.url + callsPath(tw), {
    method: 'POST',
    headers: { Authorization: 'Basic ' + Buffer.from(`${tw.accountSid}:${tw.authToken}`).toString('base64'), 'Content-Type': 'application/json' },
    body: JSON.stringify(ok),
  });
  assert.equal(js.status, 400);
  assert.equal((await js.json()).code, 21201);
  assert.equal(tw.requests.at(-1).contentType, 'application/json');
  assert.equal(tw.calls.size, 0);

  // Twiml instead of Url is fine; the params are recorded as received, repeated ones as arrays
  const r = await api(tw, 'POST', callsPath(tw), { To: ok.To, From: FROM, Twiml: '<Response><Say>hi</Say></Response>', StatusCallbackEvent: ['ringing', 'answered'], Timeout: '30', Foo: 'bar' });
  assert.equal(r.status, 201, r.text);
  const rec = tw.requests.at(-1);
  assert.equal(rec.op, 'create');
  assert.equal(rec.callSid, r.json.sid);
  assert.deepEqual(rec.params.StatusCallbackEvent, ['ringing', 'answered']);
  assert.equal(rec.params.Foo, 'bar');
  assert.deepEqual(rec.pairs[0], ['To', ok.To]);
  assert.match(rec.body, /^To=%2B15551230001&From=%2B15005550006&/);
  assert.deepEqual(tw.calls.get(r.json.sid).events, ['ringing', 'answered']);
});

test('a good call: queued -> ringing -> in-progress -> completed, with signed callbacks', async (t) => {
  const tw = await fake(t, { ringMs: 10, answerMs: 10, durationMs: 30 });
  const rx = await receiver(t, tw.authToken);
  const cbUrl = `${rx.base}/webhook/call_status?job=j_42&note=a%20b`;
  const seen = [];
  tw.events.on('status', (c, s) => seen.push(s));
  const r = await api(tw, 'POST', callsPath(tw), {
    To: '+15551230001', From: FROM, Url: `${rx.base}/twiml`, StatusCallback: cbUrl,
    StatusCallbackMethod: 'POST', StatusCallbackEvent: ALL_EVENTS, Timeout: '20',
  });
  assert.equal(r.status, 201, r.text);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  const c = r.json;
  assert.match(c.sid, /^CA[0-9a-f]{32}$/);
  assert.equal(c.account_sid, tw.accountSid);
  assert.equal(c.status, 'queued');
  assert.equal(c.direction, 'outbound-api');
  assert.equal(c.to, '+15551230001');
  assert.equal(c.from, FROM);
  assert.equal(c.api_version, '2010-04-01');
  assert.match(c.date_created, RFC2822);
  assert.match(c.date_updated, RFC2822);
  assert.equal(c.start_time, null);
  assert.equal(c.end_time, null);
  assert.equal(c.duration, null);
  assert.equal(c.uri, callPath(tw, c.sid));

  await rx.until((g) => g.length === 4);
  assert.deepEqual(statuses(rx.got), ['initiated', 'ringing', 'in-progress', 'completed']);
  assert.deepEqual(seen, ['ringing', 'in-progress', 'completed']);
  rx.got.forEach((g, i) => {
    assert.equal(g.method, 'POST');
    assert.equal(g.url, '/webhook/call_status?job=j_42&note=a%20b'); // the exact URL given
    assert.match(g.headers['content-type'], /^application\/x-www-form-urlencoded/);
    assert.ok(g.valid, `callback ${i} signature`);
    assert.equal(g.params.CallSid, c.sid);
    assert.equal(g.params.AccountSid, tw.accountSid);
    assert.equal(g.params.From, FROM);
    assert.equal(g.params.To, '+15551230001');
    assert.equal(g.params.Direction, 'outbound-api');
    assert.equal(g.params.ApiVersion, '2010-04-01');
    assert.equal(g.params.CallbackSource, 'call-progress-events');
    assert.equal(g.params.SequenceNumber, String(i));
    assert.match(g.params.Timestamp, RFC2822);
    assert.ok(g.headers['i-twilio-idempotency-token']);
  });
  assert.equal(rx.got[3].params.CallDuration, '1');
  assert.equal(rx.got[2].params.CallDuration, undefined);

  // the signature covers the exact URL (query included) and every param
  const last = rx.got[3];
  const sig = last.headers['x-twilio-signature'];
  assert.equal(sig, twilio.getExpectedTwilioSignature(tw.authToken, last.fullUrl, last.params));
  assert.equal(twilio.validateRequest(tw.authToken, sig, last.fullUrl.replace('j_42', 'j_43'), last.params), false);
  assert.equal(twilio.validateRequest(tw.authToken, sig, last.fullUrl.replace(/\?.*$/, ''), last.params), false);
  assert.equal(twilio.validateRequest(tw.authToken, sig, last.fullUrl, { ...last.params, CallStatus: 'busy' }), false);
  assert.equal(twilio.validateRequest(tw.authToken, sig, last.fullUrl, { ...last.params, CallDuration: '2' }), false);
  assert.equal(twilio.validateRequest('another-token', sig, last.fullUrl, last.params), false);

  // the fake's own record agrees, and the callbacks' answers were recorded
  await tw.waitFor((x) => x.calls.get(c.sid).callbacks.every((cb) => cb.done), 2000);
  const rec = tw.calls.get(c.sid);
  assert.deepEqual(rec.callbacks.map((cb) => [cb.event, cb.callStatus, cb.status]),
    [['initiated', 'initiated', 204], ['ringing', 'ringing', 204], ['answered', 'in-progress', 204], ['completed', 'completed', 204]]);
  assert.deepEqual(rec.history.map((h) => h.status), ['queued', 'ringing', 'in-progress', 'completed']);

  const f = await api(tw, 'GET', callPath(tw, c.sid));
  assert.equal(f.status, 200);
  assert.equal(f.json.status, 'completed');
  assert.equal(f.json.duration, '1');
  assert.match(f.json.start_time, RFC2822);
  assert.match(f.json.end_time, RFC2822);
  assert.equal(tw.active(), 0);
});

test('without StatusCallbackEvent only the terminal callback is sent; GET callbacks sign the full URL', async (t) => {
  const tw = await fake(t, { ringMs: 5, answerMs: 5, durationMs: 5, outcomes: { '+15551230002': 'busy' } });
  const rx = await receiver(t, tw.authToken);
  const a = await api(tw, 'POST', callsPath(tw), { To: '+15551230001', From: FROM, Url: 'http://127.0.0.1:1/x', StatusCallback: `${rx.base}/cb?n=1` });
  const b = await api(tw, 'POST', callsPath(tw), { To: '+15551230002', From: FROM, Url: 'http://127.0.0.1:1/x', StatusCallback: `${rx.base}/cb?n=2`, StatusCallbackMethod: 'GET' });
  assert.equal(a.status, 201);
  assert.equal(b.status, 201);
  await rx.until((g) => g.length === 2);
  await tw.waitFor((x) => x.active() === 0, 2000);
  const ga = rx.got.find((g) => g.query.n === '1');
  const gb = rx.got.find((g) => g.query.n === '2');
  assert.equal(ga.params.CallStatus, 'completed');
  assert.equal(ga.params.SequenceNumber, '0');
  assert.ok(ga.valid);
  assert.equal(gb.method, 'GET');
  assert.equal(gb.query.CallStatus, 'busy');
  assert.equal(gb.query.CallDuration, '0');
  assert.ok(gb.valid, 'GET signature over the URL with its query');
  assert.equal(tw.calls.get(b.json.sid).status, 'busy');
});

test('outcomes: busy, no-answer, failed end the call with that status', async (t) => {
  const tw = await fake(t, { ringMs: 5, answerMs: 5, outcomes: { '+15550000001': 'busy', '+15550000002': 'no-answer', '+15550000003': 'failed' } });
  const rx = await receiver(t, tw.authToken);
  const sids = {};
  for (const to of ['+15550000001', '+15550000002', '+15550000003']) {
    const r = await api(tw, 'POST', callsPath(tw), { To: to, From: FROM, Url: 'http://127.0.0.1:1/x', StatusCallback: `${rx.base}/cb?to=${encodeURIComponent(to)}`, StatusCallbackEvent: ALL_EVENTS });
    sids[to] = r.json.sid;
  }
  await tw.waitFor((x) => x.active() === 0 && x.callbacks.every((cb) => cb.done), 3000);
  const per = (to) => statuses(rx.got.filter((g) => g.params.To === to));
  assert.deepEqual(per('+15550000001'), ['initiated', 'ringing', 'busy']);
  assert.deepEqual(per('+15550000002'), ['initiated', 'ringing', 'no-answer']);
  assert.deepEqual(per('+15550000003'), ['initiated', 'failed']);
  assert.ok(rx.got.every((g) => g.valid));
  assert.equal(tw.calls.get(sids['+15550000003']).json().duration, '0');
});

test('dropFinalCallback: the terminal callback is lost but the call ends', async (t) => {
  const tw = await fake(t, { ringMs: 5, answerMs: 5, durationMs: 10, dropFinalCallback: true });
  const rx = await receiver(t, tw.authToken);
  const r = await api(tw, 'POST', callsPath(tw), { To: '+15551230001', From: FROM, Url: 'http://127.0.0.1:1/x', StatusCallback: `${rx.base}/cb`, StatusCallbackEvent: ALL_EVENTS });
  const sid = r.json.sid;
  await tw.waitFor((x) => x.calls.get(sid).callbacks.length === 4 && x.calls.get(sid).callbacks.every((cb) => cb.done), 2000);
  assert.deepEqual(statuses(rx.got), ['initiated', 'ringing', 'in-progress']);
  const final = tw.calls.get(sid).callbacks[3];
  assert.equal(final.dropped, true);
  assert.equal(final.callStatus, 'completed');
  assert.equal(final.deliveries.length, 0);
  const f = await api(tw, 'GET', callPath(tw, sid));
  assert.equal(f.json.status, 'completed');
  assert.equal(tw.active(), 0);
});

test('500 after create: the call happened and the list by To and StartTime>= finds it', async (t) => {
  const tw = await fake(t, { ringMs: 5, answerMs: 5, durationMs: 5, createFailures: [{ status: 500, afterCreate: true }, { status: 503 }] });
  const to = '+15551239999';
  const params = { To: to, From: FROM, Url: 'http://127.0.0.1:1/x' };
  const r1 = await api(tw, 'POST', callsPath(tw), params);
  assert.equal(r1.status, 500);
  assert.deepEqual(r1.json, { code: 20500, message: 'Internal Server Error', more_info: 'https://www.twilio.com/docs/errors/20500', status: 500 });
  assert.equal(tw.calls.size, 1);
  const r2 = await api(tw, 'POST', callsPath(tw), { ...params, To: '+15551238888' });
  assert.equal(r2.status, 503);
  assert.equal(r2.json.code, 20503);
  assert.equal(tw.calls.size, 1, 'a failure before create creates nothing');

  const today = new Date().toISOString().slice(0, 10);
  const l = await api(tw, 'GET', `${callsPath(tw)}?To=${encodeURIComponent(to)}&StartTime>=${today}&PageSize=20`);
  assert.equal(l.status, 200, l.text);
  assert.equal(l.json.calls.length, 1);
  assert.equal(l.json.calls[0].to, to);
  assert.match(l.json.calls[0].date_created, RFC2822);
  assert.equal(l.json.page, 0);
  assert.equal(l.json.page_size, 20);
  assert.equal(l.json.next_page_uri, null);
  assert.equal(l.json.previous_page_uri, null);
  assert.match(l.json.uri, /^\/2010-04-01\/Accounts\/AC[0-9a-f]{32}\/Calls\.json\?/);
  const lr = tw.requests.at(-1);
  assert.equal(lr.op, 'list');
  assert.equal(lr.query['StartTime>'], today);

  // other filters: an exact date, before a day, another number, a status, a full timestamp
  const q = async (qs) => (await api(tw, 'GET', `${callsPath(tw)}?${qs}`)).json.calls.length;
  assert.equal(await q(`To=${encodeURIComponent(to)}&StartTime=${today}`), 1);
  const yesterday = new Date(Date.now() - 86400000).toISOString().slice(0, 10);
  assert.equal(await q(`StartTime<=${yesterday}`), 0);
  assert.equal(await q(`StartTime%3E=${yesterday}`), 1);
  assert.equal(await q(`To=%2B15550000000`), 0);
  assert.equal(await q(`StartTime>=${encodeURIComponent(new Date(Date.now() + 60000).toISOString())}`), 0);
  await tw.waitFor((x) => x.active() === 0, 2000);
  assert.equal(await q('Status=completed'), 1);
  assert.equal(await q('Status=in-progress'), 0);
  const bad = await api(tw, 'GET', `${callsPath(tw)}?StartTime>=yesterday`);
  assert.equal(bad.status, 400);
});

test('create can hang (client must time out), before or after creating the call', async (t) => {
  const tw = await fake(t, { ringMs: 5, answerMs: 5, durationMs: 5, createHang: true });
  const p = { To: '+15551230001', From: FROM, Url: 'http://127.0.0.1:1/x' };
  await assert.rejects(api(tw, 'POST', callsPath(tw), p, { signal: AbortSignal.timeout(150) }), { name: 'TimeoutError' });
  assert.equal(tw.calls.size, 0);
  assert.equal(tw.requests.at(-1).answer.hang, true);
  tw.set({ createHang: false, createFailures: [{ hang: true, afterCreate: true }] });
  await assert.rejects(api(tw, 'POST', callsPath(tw), p, { signal: AbortSignal.timeout(150) }), { name: 'TimeoutError' });
  assert.equal(tw.calls.size, 1);
  // slow answer
  tw.set({ createDelayMs: 100 });
  const t0 = Date.now();
  const r = await api(tw, 'POST', callsPath(tw), p);
  assert.equal(r.status, 201);
  assert.ok(Date.now() - t0 >= 90);
  // a per-number permanent error
  tw.set({ createDelayMs: 0, createErrors: { '+15557770000': { status: 400, code: 21215, message: 'Geo permission' } } });
  const e = await api(tw, 'POST', callsPath(tw), { ...p, To: '+15557770000' });
  assert.equal(e.status, 400);
  assert.deepEqual(e.json, { code: 21215, message: 'Geo permission', more_info: 'https://www.twilio.com/docs/errors/21215', status: 400 });
  // an answer that is not JSON
  tw.set({ createFailures: [{ status: 201, body: '{"sid": ', afterCreate: true }] });
  const w = await api(tw, 'POST', callsPath(tw), p);
  assert.equal(w.status, 201);
  assert.equal(w.json, null);
  assert.equal(tw.calls.size, 3);
});

test('hang-up and cancel through update; fetch of an unknown call is 404', async (t) => {
  const tw = await fake(t, { ringMs: 5, answerMs: 5, durationMs: null });
  const rx = await receiver(t, tw.authToken);
  const mk = async (to) => (await api(tw, 'POST', callsPath(tw), { To: to, From: FROM, Url: 'http://127.0.0.1:1/x', StatusCallback: `${rx.base}/cb`, StatusCallbackEvent: ALL_EVENTS })).json.sid;
  const sid = await mk('+15551230001');
  await tw.waitFor((x) => x.calls.get(sid).status === 'in-progress', 2000);
  const u = await api(tw, 'POST', callPath(tw, sid), { Status: 'completed' });
  assert.equal(u.status, 200, u.text);
  assert.equal(u.json.status, 'completed');
  assert.equal(u.json.sid, sid);
  await rx.until((g) => g.some((x) => x.params.CallStatus === 'completed'));
  const fin = rx.got.find((x) => x.params.CallStatus === 'completed');
  assert.ok(fin.valid);
  assert.ok(Number(fin.params.CallDuration) >= 1);
  const again = await api(tw, 'POST', callPath(tw, sid), { Status: 'completed' });
  assert.equal(again.status, 400);
  assert.equal(again.json.code, 21220);
  const badStatus = await api(tw, 'POST', callPath(tw, sid), { Status: 'paused' });
  assert.equal(badStatus.status, 400);

  // cancel a ringing call
  tw.set({ answerMs: null });
  const sid2 = await mk('+15551230002');
  await tw.waitFor((x) => x.calls.get(sid2).status === 'ringing', 2000);
  const c = await api(tw, 'POST', callPath(tw, sid2), { Status: 'canceled' });
  assert.equal(c.status, 200);
  assert.equal(c.json.status, 'canceled');
  await rx.until((g) => g.some((x) => x.params.CallSid === sid2 && x.params.CallStatus === 'canceled'));

  const nf = await api(tw, 'GET', callPath(tw, 'CA' + '0'.repeat(32)));
  assert.equal(nf.status, 404);
  assert.equal(nf.json.code, 20404);
  assert.equal(nf.json.status, 404);
  assert.match(nf.json.message, /^The requested resource .* was not found$/);
  const nu = await api(tw, 'POST', callPath(tw, 'CA' + '0'.repeat(32)), { Status: 'completed' });
  assert.equal(nu.status, 404);
  assert.equal(tw.active(), 0);
});

test('maxActive counts calls not yet ended, at their peak', async (t) => {
  const tw = await fake(t, { ringMs: 10, answerMs: 10, durationMs: 200 });
  const p = (i) => ({ To: `+1555123000${i}`, From: FROM, Url: 'http://127.0.0.1:1/x' });
  await Promise.all([1, 2, 3].map((i) => api(tw, 'POST', callsPath(tw), p(i))));
  assert.equal(tw.active(), 3);
  await tw.waitFor((x) => x.active() === 0, 3000);
  const r = await api(tw, 'POST', callsPath(tw), p(4));
  assert.equal(r.status, 201);
  await tw.waitFor((x) => x.calls.get(r.json.sid).status === 'completed', 3000);
  assert.equal(tw.maxActive, 3);
  assert.equal(tw.calls.size, 4);
  // calls driven by hand
  tw.set({ ringMs: null });
  const h = await api(tw, 'POST', callsPath(tw), p(5));
  await tw.waitFor((x) => x.calls.get(h.json.sid).initiated, 2000);
  assert.equal(tw.calls.get(h.json.sid).status, 'queued');
  tw.answerCall(h.json.sid);
  assert.equal(tw.calls.get(h.json.sid).status, 'in-progress');
  assert.equal(tw.endCall(h.json.sid), true);
  assert.equal(tw.calls.get(h.json.sid).status, 'completed');
  assert.equal(tw.active(), 0);
});

test('duplicate, reordered and badly signed callbacks', async (t) => {
  const tw = await fake(t, { ringMs: 5, answerMs: 5, durationMs: 5, duplicateCallbacks: true });
  const rx = await receiver(t, tw.authToken);
  const mk = async (n) => (await api(tw, 'POST', callsPath(tw), { To: '+15551230001', From: FROM, Url: 'http://127.0.0.1:1/x', StatusCallback: `${rx.base}/cb?n=${n}`, StatusCallbackEvent: ALL_EVENTS })).json.sid;
  const of = (n) => rx.got.filter((g) => g.query.n === String(n));

  await mk(1);
  await rx.until(() => of(1).length === 8);
  assert.deepEqual(statuses(of(1)), ['initiated', 'initiated', 'ringing', 'ringing', 'in-progress', 'in-progress', 'completed', 'completed']);
  assert.equal(of(1)[6].headers['i-twilio-idempotency-token'], of(1)[7].headers['i-twilio-idempotency-token']);
  assert.equal(of(1)[6].params.SequenceNumber, of(1)[7].params.SequenceNumber);

  tw.set({ duplicateCallbacks: false, reorderCallbacks: true, durationMs: 30 });
  await mk(2);
  await rx.until(() => of(2).length === 4);
  assert.deepEqual(statuses(of(2)), ['initiated', 'in-progress', 'ringing', 'completed']);
  assert.equal(of(2)[2].params.SequenceNumber, '1');

  tw.set({ reorderCallbacks: false, badSignature: true });
  await mk(3);
  await rx.until(() => of(3).length === 4);
  assert.ok(of(3).every((g) => !g.valid));
  assert.ok(of(1).concat(of(2)).every((g) => g.valid));
});

test('callbacks to a non-loopback host are never sent; a dead receiver is recorded', async (t) => {
  const tw = await fake(t, { ringMs: 5, answerMs: 5, durationMs: 5 });
  const a = await api(tw, 'POST', callsPath(tw), { To: '+15551230001', From: FROM, Url: 'https://example.invalid/x', StatusCallback: 'https://example.invalid/cb' });
  const b = await api(tw, 'POST', callsPath(tw), { To: '+15551230002', From: FROM, Url: 'http://127.0.0.1:1/x', StatusCallback: 'http://127.0.0.1:1/cb' });
  await tw.waitFor((x) => x.callbacks.length === 2 && x.callbacks.every((cb) => cb.done), 3000);
  const ca = tw.calls.get(a.json.sid).callbacks[0];
  const cb = tw.calls.get(b.json.sid).callbacks[0];
  assert.equal(ca.status, null);
  assert.match(ca.error, /http only|not loopback/);
  assert.equal(cb.status, null);
  assert.match(cb.error, /ECONNREFUSED/);
  assert.match(rfc2822(Date.UTC(2026, 10, 30, 10, 0, 0)), /^Mon, 30 Nov 2026 10:00:00 \+0000$/);
});

test('paging, delete, and the TwiML request on answer', async (t) => {
  const tw = await fake(t, { ringMs: 5, answerMs: 5, durationMs: null, fetchTwiml: true });
  const rx = await receiver(t, tw.authToken, { answer: 200 });
  const sids = [];
  for (let i = 1; i <= 5; i++) {
    const r = await api(tw, 'POST', callsPath(tw), { To: `+1555123000${i}`, From: FROM, Url: `${rx.base.replace('127.0.0.1', 'localhost')}/twiml?i=${i}` });
    sids.push(r.json.sid);
  }
  await tw.waitFor((x) => x.callList().every((c) => c.twimlRequests.length === 1 && c.twimlRequests[0].done), 3000);
  const tr = rx.got.filter((g) => g.url.startsWith('/twiml'));
  assert.equal(tr.length, 5);
  assert.ok(tr.every((g) => g.params.CallStatus === 'in-progress' && g.headers.host.startsWith('localhost:')));
  // signed over the URL as given (localhost), which the receiver sees as 127.0.0.1
  assert.ok(tr.every((g) => twilio.validateRequest(tw.authToken, g.headers['x-twilio-signature'], g.fullUrl.replace('127.0.0.1', 'localhost'), g.params)));

  const p0 = await api(tw, 'GET', `${callsPath(tw)}?PageSize=2`);
  assert.deepEqual(p0.json.calls.map((c) => c.sid), [sids[4], sids[3]]); // newest first
  assert.ok(p0.json.next_page_uri);
  const p1 = await api(tw, 'GET', p0.json.next_page_uri);
  assert.deepEqual(p1.json.calls.map((c) => c.sid), [sids[2], sids[1]]);
  const p2 = await api(tw, 'GET', p1.json.next_page_uri);
  assert.deepEqual(p2.json.calls.map((c) => c.sid), [sids[0]]);
  assert.equal(p2.json.next_page_uri, null);
  assert.equal(p2.json.page, 2);

  const d1 = await api(tw, 'DELETE', callPath(tw, sids[0]));
  assert.equal(d1.status, 400);
  tw.endCall(sids[0]);
  const d2 = await api(tw, 'DELETE', callPath(tw, sids[0]));
  assert.equal(d2.status, 204);
  assert.equal(tw.calls.has(sids[0]), false);
  for (const s of sids.slice(1)) tw.endCall(s, 'completed');
  assert.equal(tw.active(), 0);
  assert.equal(tw.maxActive, 5);
});
