// Outbound call campaigns against the fake Twilio (tests/fakes/twilio.mjs): the seed 004
// scenarios, the concurrency limit, recovery after kill -9, and signed status callbacks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startFakeTwilio } from '../fakes/twilio.mjs';
import { ADMIN_KEY, Daemon, freePort, TWILIO_FROM as FROM, twilioDaemon, waitFor } from './lib.mjs';

const setup = twilioDaemon;

async function teardown({ tw, d }) {
  await d.cleanup();
  await tw.close();
}

async function leads(d, n, { key = ADMIN_KEY, base = 0 } = {}) {
  const ids = [];
  for (let i = 0; i < n; i++) {
    const r = await d.post('/api/leads', { name: `Lead ${base + i}`, phone: `+1555${String(base + i).padStart(7, '0')}` }, { key });
    assert.equal(r.status, 201, r.text);
    ids.push(r.json.id);
  }
  return ids;
}

const run = async (d, id) => (await d.get(`/api/outbound/runs/${id}`)).json;
const recentCalls = async (d) => (await d.get('/api/outbound/recent-calls')).json.calls;
const waitRun = (d, id, status, timeout = 20000) =>
  waitFor(async () => {
    const r = await run(d, id);
    return r && r.status === status ? r : false;
  }, { timeout, what: `run ${id} ${status}` });

// Starts n leads on `slots` slots (n > slots, so the start answers at once) with creates
// that hang (no call made), kill -9s the daemon once the slots' creates are out and starts
// it again with creates answered and TWILIO_CPS = cps. The run, and the creates made before.
async function claimedThenRestarted({ tw, d }, n, slots, cps) {
  const r = await d.post('/api/outbound_calls/start', { lead_ids: await leads(d, n) });
  assert.equal(r.status, 202, r.text);
  await tw.waitFor((t) => t.creates().length === slots, 5000, `${slots} creates out`);
  await d.kill9();
  const before = tw.creates().length;
  tw.set({ createHang: false });
  d.opts.env.TWILIO_CPS = String(cps);
  await d.start();
  return { r, before };
}

// a status callback as Twilio posts it: form-encoded params, signed for url
function callback(tw, url, params) {
  return fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Twilio-Signature': tw.signature(url, params) }, body: new URLSearchParams(params).toString() });
}

// every lead called exactly once: one create per To
function createsByTo(tw) {
  const m = new Map();
  for (const c of tw.callList()) m.set(c.to, (m.get(c.to) || 0) + 1);
  return m;
}

test('leads: create, validation, CSV import with bad rows by line, paging', async () => {
  const ctx = await setup();
  const { d } = ctx;
  try {
    let r = await d.post('/api/leads', { name: 'דנה כהן', phone: '+972 501234567'.replace(' ', ''), timezone: 'Asia/Jerusalem' });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.phone, '+972501234567');
    assert.equal(r.json.timezone, 'Asia/Jerusalem');
    assert.equal((await d.post('/api/leads', { name: 'again', phone: '972501234567' })).status, 409);
    assert.equal((await d.post('/api/leads', { name: 'x', phone: '12' })).json.error.code, 'INVALID_PHONE');
    assert.equal((await d.post('/api/leads', { name: '', phone: '972501234560' })).status, 400);
    r = await d.post('/api/leads', { name: 'x', phone: '972501234561', timezone: 'Nowhere/City' });
    assert.match(r.json.error.message, /timezone/);
    const csv = 'name,phone,timezone\n"Levi, Avi",+972501000001,Asia/Jerusalem\nno phone,,\nBad Zone,+972501000002,Mars/Base\n' +
      'Plain,972501000003,\n"open quote,972501000004\nAfter,972501000005,\n';
    r = await d.req('POST', '/api/leads/import', csv, { headers: { 'Content-Type': 'text/csv' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.imported, 2);
    assert.deepEqual(r.json.errors.map((e) => e.line), [3, 4, 6]);
    assert.match(r.json.errors[0].error, /phone/);
    assert.match(r.json.errors[1].error, /timezone/);
    const bad = await d.req('POST', '/api/leads/import', 'phone,name\n1,2\n');
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'INVALID_CSV');
    const p1 = await d.get('/api/leads?page=1&page_size=2');
    assert.equal(p1.json.total, 3);
    assert.equal(p1.json.leads.length, 2);
    const p2 = await d.get('/api/leads?page=2&page_size=2');
    assert.equal(p2.json.leads[0].name, 'Plain');
    assert.equal((await d.get('/api/leads?page_size=501')).status, 400);
  } finally {
    await teardown(ctx);
  }
});

test('3 leads: all dialled at once with the exact Twilio request; the answer carries their CallSids', async () => {
  const ctx = await setup({ durationMs: 300 });
  const { tw, d } = ctx;
  try {
    const ids = await leads(d, 3);
    const r = await d.post('/api/outbound_calls/start', { lead_ids: ids });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.success, true);
    assert.equal(r.json.calls.length, 3);
    for (const c of r.json.calls) {
      assert.equal(c.status, 'initiated');
      assert.match(c.call_sid, /^CA[0-9a-f]{32}$/);
    }
    assert.equal(tw.maxActive, 3, 'all three at once');
    const create = tw.creates()[0];
    assert.equal(create.authUser, tw.accountSid);
    assert.equal(create.params.From, FROM);
    assert.equal(create.params.Url, 'http://127.0.0.1:9/twiml/outbound');
    assert.match(create.params.StatusCallback, new RegExp(`^http://127\\.0\\.0\\.1:${d.port}/webhook/call_status\\?job=\\d+&attempt=1$`));
    assert.deepEqual([].concat(create.params.StatusCallbackEvent), ['initiated', 'ringing', 'answered', 'completed']);
    assert.equal(create.params.Timeout, '30');
    await waitFor(async () => {
      const x = await d.get('/api/outbound/recent-calls?page_size=10');
      return x.json.calls.length === 3 && x.json.calls.every((c) => c.status === 'completed');
    }, { what: 'three completed' });
    assert.ok(tw.callbacks.length >= 12 && tw.callbacks.every((c) => c.status === 200), 'every signed callback accepted');
    const m = await d.get('/metrics');
    assert.match(m.text, /switchboard_calls_total\{status="completed"\} 3\n/);
    assert.match(m.text, /switchboard_calls_active 0\n/);
  } finally {
    await teardown(ctx);
  }
});

test('100 leads: never more than 3 active, each dialled exactly once, the run completes', async () => {
  const ctx = await setup({ durationMs: 20 });
  const { tw, d } = ctx;
  try {
    const ids = await leads(d, 100);
    const r = await d.post('/api/outbound_calls/start', { lead_ids: ids });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.mode, 'bulk_queue');
    assert.equal(r.json.queued, 100);
    const done = await waitRun(d, r.json.run_id, 'completed', 60000);
    assert.equal(done.completed, 100);
    assert.equal(done.total_leads, 100);
    assert.equal(done.concurrency, 3);
    assert.equal(tw.maxActive, 3, 'at most (and at full use) 3 at once');
    const by = createsByTo(tw);
    assert.equal(by.size, 100);
    assert.ok([...by.values()].every((n) => n === 1), 'no lead dialled twice');
    // leads of a finished run can be started again
    const again = await d.post('/api/outbound_calls/start', { lead_ids: ids.slice(0, 5) });
    assert.equal(again.status, 202);
    assert.equal((await d.post('/api/outbound_calls/start', { lead_ids: [] })).status, 400);
    const unknown = await d.post('/api/outbound_calls/start', { lead_ids: [ids[0], 99999] });
    assert.equal(unknown.status, 400);
    assert.match(unknown.json.error.message, /99999/);
  } finally {
    await teardown(ctx);
  }
});

test('stop-queue: no new calls, the active ones finish', async () => {
  const ctx = await setup({ durationMs: null });
  const { tw, d } = ctx;
  try {
    const ids = await leads(d, 10);
    const r = await d.post('/api/outbound_calls/start', { lead_ids: ids });
    await tw.waitFor((t) => t.callList().filter((c) => c.status === 'in-progress').length === 3, 5000, '3 in progress');
    // a lead with a call in progress or queued in a run is skipped and reported
    const busy = await d.post('/api/outbound_calls/start', { lead_ids: [ids[0], ids[9]] });
    assert.equal(busy.status, 409, busy.text);
    assert.equal(busy.json.error.code, 'LEADS_BUSY');
    assert.deepEqual(busy.json.skipped.map((x) => x.lead_id).sort(), [ids[0], ids[9]].sort());
    assert.equal(busy.json.skipped[0].run_id, r.json.run_id);
    const s = await d.post('/api/outbound/stop-queue', { run_id: r.json.run_id });
    assert.equal(s.status, 200, s.text);
    assert.equal(s.json.status, 'stopped');
    assert.equal(s.json.canceled, 7);
    assert.equal(s.json.canceled_now, 7);
    assert.equal(s.json.in_progress, 3);
    for (const c of tw.callList()) tw.endCall(c.sid);
    const end = await waitFor(async () => {
      const x = await run(d, r.json.run_id);
      return x.finished_at ? x : false;
    }, { what: 'run finished' });
    assert.equal(end.status, 'stopped');
    assert.equal(end.completed, 3);
    assert.equal(tw.callList().length, 3, 'nothing dialled after the stop');
  } finally {
    await teardown(ctx);
  }
});

test('soft cancel hangs up through Twilio; force cancel frees the slot at once', async () => {
  const ctx = await setup({ durationMs: null, dropFinalCallback: false });
  const { tw, d } = ctx;
  try {
    const ids = await leads(d, 4);
    const r = await d.post('/api/outbound_calls/start', { lead_ids: ids });
    const recent = await waitFor(async () => {
      const x = (await recentCalls(d));
      return x.filter((c) => c.status === 'in_progress').length === 3 ? x : false;
    }, { what: '3 in progress' });
    const active = recent.filter((c) => c.status === 'in_progress');
    const queued = recent.find((c) => c.status === 'queued');
    assert.equal(active.length, 3);
    // soft: Twilio is asked to hang up, the callback settles it
    const soft = await d.post(`/api/outbound_calls/jobs/${active[0].job_id}/cancel`);
    assert.equal(soft.status, 202);
    assert.equal(soft.json.status, 'canceling');
    await tw.waitFor((t) => t.calls.get(active[0].call_sid).status === 'completed', 5000, 'hung up');
    // force: marked now; Twilio never calls back for it (its callback is dropped)
    tw.set({ dropFinalCallback: true });
    const force = await d.post(`/api/outbound_calls/jobs/${active[1].job_id}/force-cancel`);
    assert.equal(force.status, 200);
    assert.equal(force.json.status, 'canceled');
    // the freed slots go to the queued job at once
    await tw.waitFor((t) => t.callList().length === 4, 5000, 'the 4th lead dialled');
    assert.ok(tw.maxActive <= 3);
    // a queued job cancelled before dialling is never dialled; a finished one is 409
    const q = await d.post(`/api/outbound_calls/jobs/${queued.job_id}/cancel`);
    assert.ok(q.status === 409 || q.status === 202, q.text);
    assert.equal((await d.post(`/api/outbound_calls/jobs/${active[1].job_id}/cancel`)).status, 409);
    assert.equal((await d.post('/api/outbound_calls/jobs/999999/cancel')).status, 404);
    assert.equal((await run(d, r.json.run_id)).canceled >= 1, true);
  } finally {
    await teardown(ctx);
  }
});

test('a lost final callback is settled by the watchdog from Twilio\'s call resource', async () => {
  const ctx = await setup({ durationMs: 30, dropFinalCallback: true },
    { CALL_RING_TIMEOUT_S: '5', CALL_TIME_LIMIT_S: '1', CALL_SETTLE_MARGIN_MS: '0', CALL_WATCHDOG_MS: '200' });
  const { tw, d } = ctx;
  try {
    const ids = await leads(d, 1);
    const r = await d.post('/api/outbound_calls/start', { lead_ids: ids });
    const sid = r.json.calls[0].call_sid;
    await tw.waitFor((t) => t.calls.get(sid).status === 'completed', 5000, 'the call ended at Twilio');
    const job = await waitFor(async () => {
      const c = (await recentCalls(d))[0];
      return c.status === 'completed' ? c : false;
    }, { timeout: 15000, what: 'settled by the watchdog' });
    assert.ok(job.duration >= 1);
    assert.ok(tw.requests.some((q) => q.op === 'fetch' && q.callSid === sid), 'fetched from Twilio');
  } finally {
    await teardown(ctx);
  }
});

test('Twilio 500 on a create that in fact created the call: no second call; a 4xx fails the job with Twilio\'s words', async () => {
  // callbacks late, so that only the call list can tell the daemon the call exists
  const ctx = await setup({ durationMs: 30, callbackDelayMs: 2500, createFailures: [{ status: 500, afterCreate: true }],
    createErrors: { '+15550000001': { status: 400, code: 21211, message: "The 'To' number +15550000001 is not a valid phone number." } } });
  const { tw, d } = ctx;
  try {
    const ids = await leads(d, 2);
    const r = await d.post('/api/outbound_calls/start', { lead_ids: ids });
    assert.equal(r.status, 200, r.text);
    const byLead = Object.fromEntries(r.json.calls.map((c) => [c.lead_id, c]));
    const failed = byLead[ids[1]];
    assert.equal(failed.status, 'failed');
    assert.match(failed.error, /21211.*not a valid phone number/);
    await waitFor(async () => (await recentCalls(d)).some((c) => c.status === 'completed'),
      { what: 'the 500 call completes' });
    assert.equal(createsByTo(tw).get('+15550000000'), 1, 'created once despite the 500');
    assert.ok(tw.requests.some((q) => q.op === 'list'), 'the call list was checked before trying again');
  } finally {
    await teardown(ctx);
  }
});

test('the last create try answered 500 though Twilio made the call: the list finds it, the job is not failed with its call live', async () => {
  // one try only, callbacks late: only Twilio's call list can tell the daemon the call exists
  const ctx = await setup({ durationMs: 30, callbackDelayMs: 2500, createFailures: [{ status: 500, afterCreate: true }] },
    { CALL_CREATE_TRIES: '1' });
  const { tw, d } = ctx;
  try {
    const ids = await leads(d, 1);
    const r = await d.post('/api/outbound_calls/start', { lead_ids: ids });
    assert.equal(r.status, 200, r.text);
    const done = await waitFor(async () => {
      const c = (await recentCalls(d))[0];
      return c.status === 'completed' || c.status === 'failed' ? c : false;
    }, { what: 'the job settles' });
    assert.equal(done.status, 'completed', `settled as ${done.status}: ${done.error}`);
    assert.equal(done.call_sid, tw.callList()[0].sid, 'the call Twilio made is the job\'s');
    assert.equal(createsByTo(tw).get('+15550000000'), 1, 'created once');
    assert.ok(tw.requests.some((q) => q.op === 'list'), 'the list was read after the last try');
  } finally {
    await teardown(ctx);
  }
});

test('a soft cancel is final: a call that ends busy after it is not dialled again by the retry policy', async () => {
  // Twilio refuses the hang-up once, then the callee is busy
  const ctx = await setup({ answerMs: 400, outcomes: { '+15550000000': 'busy' }, updateFailures: [{ status: 500 }] },
    { CALL_RETRY_ATTEMPTS: '2', CALL_RETRY_DELAY_MS: '100' });
  const { tw, d } = ctx;
  try {
    const ids = await leads(d, 1);
    const r = await d.post('/api/outbound_calls/start', { lead_ids: ids });
    const job = r.json.calls[0].job_id;
    await waitFor(async () => (await recentCalls(d))[0].status === 'ringing', { what: 'ringing' });
    assert.equal((await d.post(`/api/outbound_calls/jobs/${job}/cancel`)).status, 202);
    const end = await waitFor(async () => {
      const c = (await recentCalls(d))[0];
      return c.status === 'busy' ? c : false;
    }, { what: 'busy' });
    assert.equal(end.attempts, 1);
    // a later job of the same run shows the policy had time to act: it did not
    const more = await leads(d, 1, { base: 1 });
    const r2 = await d.post('/api/outbound_calls/start', { lead_ids: more });
    await waitFor(async () => (await recentCalls(d)).some((c) => c.job_id === r2.json.calls[0].job_id && c.status === 'completed'), { what: 'a later call completes' });
    assert.equal(createsByTo(tw).get('+15550000000'), 1, 'the cancelled lead was dialled once');
    assert.equal((await recentCalls(d)).find((c) => c.job_id === job).status, 'busy');
  } finally {
    await teardown(ctx);
  }
});

test('status callbacks: a bad signature is 403, an unknown CallSid is ignored, repeats never go back', async () => {
  const ctx = await setup({ durationMs: 30 });
  const { tw, d } = ctx;
  try {
    const url = `http://127.0.0.1:${d.port}/webhook/call_status`;
    const params = { CallSid: 'CA' + 'f'.repeat(32), CallStatus: 'completed', AccountSid: tw.accountSid };
    const body = new URLSearchParams(params).toString();
    const post = (sig) => fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Twilio-Signature': sig }, body });
    assert.equal((await post('bm90IGEgc2lnbmF0dXJl')).status, 403);
    assert.equal((await fetch(url, { method: 'POST', body })).status, 403);
    const good = await post(tw.signature(url, params));
    assert.equal(good.status, 200);
    assert.equal((await good.json()).ignored, true);
    // the daemon's check matches Twilio's own signer with and without the port
    const ids = await leads(d, 1);
    const r = await d.post('/api/outbound_calls/start', { lead_ids: ids });
    const sid = r.json.calls[0].call_sid;
    await waitFor(async () => (await recentCalls(d))[0].status === 'completed', { what: 'completed' });
    const cbUrl = tw.calls.get(sid).statusCallback;
    // an earlier attempt's callback (attempt=0 never existed) is not about this call
    const old = { CallSid: 'CA' + '1'.repeat(32), CallStatus: 'busy', AccountSid: tw.accountSid };
    const oldUrl = cbUrl.replace(/attempt=\d+/, 'attempt=9');
    const o = await callback(tw, oldUrl, old);
    assert.equal((await o.json()).ignored, true);
    const late = { CallSid: sid, CallStatus: 'ringing', AccountSid: tw.accountSid };
    const res = await callback(tw, cbUrl, late);
    assert.equal(res.status, 200);
    assert.equal((await recentCalls(d))[0].status, 'completed', 'terminal never goes back');
  } finally {
    await teardown(ctx);
  }
});

test('a second call for the same attempt (a create answered late) is hung up; the job keeps its own', async () => {
  const ctx = await setup({ durationMs: null });
  const { tw, d } = ctx;
  try {
    const ids = await leads(d, 1);
    const r = await d.post('/api/outbound_calls/start', { lead_ids: ids });
    const sid = r.json.calls[0].call_sid;
    await waitFor(async () => (await recentCalls(d))[0].status === 'in_progress', { what: 'in progress' });
    // Twilio reports another call made with this attempt's callback URL
    const cbUrl = tw.calls.get(sid).statusCallback;
    const other = { CallSid: 'CA' + '2'.repeat(32), CallStatus: 'in-progress', AccountSid: tw.accountSid };
    const res = await callback(tw, cbUrl, other);
    assert.equal(res.status, 200);
    assert.equal((await res.json()).ignored, true);
    await tw.waitFor((t) => t.requests.some((q) => q.op === 'update' && q.callSid === other.CallSid && q.params?.Status === 'completed'), 5000, 'the other call hung up');
    const job = (await recentCalls(d))[0];
    assert.equal(job.call_sid, sid, 'the job keeps its own call');
    assert.equal(job.status, 'in_progress');
    // a CallSid that is not CA and hex digits is refused before anything
    const bad = { CallSid: 'CA12/../x', CallStatus: 'completed', AccountSid: tw.accountSid };
    const b = await callback(tw, cbUrl, bad);
    assert.equal(b.status, 400);
    assert.match((await b.json()).error.message, /CallSid/);
    tw.endCall(sid);
    await waitFor(async () => (await recentCalls(d))[0].status === 'completed', { what: 'completed' });
  } finally {
    await teardown(ctx);
  }
});

test('kill -9 in the middle of a 100-lead run, several times: it completes, never more than 3 active, no lead dialled twice', async () => {
  const ctx = await setup({ durationMs: 60 }, { CALL_WATCHDOG_MS: '200' });
  const { tw, d } = ctx;
  try {
    const ids = await leads(d, 100);
    const r = await d.post('/api/outbound_calls/start', { lead_ids: ids });
    for (let i = 0; i < 4; i++) {
      const before = tw.callList().length;
      await tw.waitFor((t) => t.callList().length >= Math.min(100, before + 3 + i * 5), 10000, 'progress');
      await d.kill9();
      await d.start();
    }
    const done = await waitRun(d, r.json.run_id, 'completed', 60000);
    assert.equal(done.completed + done.failed, 100);
    assert.ok(tw.maxActive <= 3, `max active ${tw.maxActive}`);
    const by = createsByTo(tw);
    assert.equal(by.size, 100);
    assert.ok([...by.values()].every((n) => n === 1), 'no lead dialled twice');
  } finally {
    await teardown(ctx);
  }
});

test('tenants: leads, runs and slots are per tenant', async () => {
  const ctx = await setup({ durationMs: null });
  const { tw, d } = ctx;
  try {
    const t = await d.post('/api/tenants', { name: 'acme' });
    const key = t.json.apiKey;
    const mine = await leads(d, 4);
    const theirs = await leads(d, 4, { key, base: 100 });
    const bad = await d.post('/api/outbound_calls/start', { lead_ids: [mine[0]] }, { key });
    assert.equal(bad.status, 400, 'another tenant\'s lead is unknown');
    const a = await d.post('/api/outbound_calls/start', { lead_ids: mine });
    const b = await d.post('/api/outbound_calls/start', { lead_ids: theirs }, { key });
    await tw.waitFor((x) => x.callList().filter((c) => c.status === 'in-progress').length === 6, 5000, '3 + 3 in progress');
    assert.equal((await d.get(`/api/outbound/runs/${a.json.run_id}`, { key })).status, 404);
    assert.equal((await d.get('/api/leads', { key })).json.total, 4);
    assert.equal((await d.get('/api/outbound/runs', { key })).json.runs.length, 1);
    assert.equal((await d.post('/api/outbound/stop-queue', { run_id: b.json.run_id })).status, 404);
  } finally {
    await teardown(ctx);
  }
});

test('busy is retried by the policy; outside the calling hours in the lead\'s zone the job waits', async () => {
  const utcHour = new Date().getUTCHours();
  // a window of one hour that starts 6 hours from now in UTC: closed now in UTC
  const open = (utcHour + 6) % 24;
  const hours = `${String(open).padStart(2, '0')}:00-${String((open + 1) % 24).padStart(2, '0')}:00`;
  const ctx = await setup({ durationMs: 20, outcomes: { '+15550000000': 'busy' } },
    { CALL_RETRY_ATTEMPTS: '1', CALL_RETRY_DELAY_MS: '100', CALL_HOURS: hours, TIMEZONE: 'UTC' });
  const { tw, d } = ctx;
  try {
    // a lead whose own zone is 6 hours ahead: inside the window now
    const zone = 'Etc/GMT-6';
    const l1 = await d.post('/api/leads', { name: 'Busy Ben', phone: '+15550000000', timezone: zone });
    const l2 = await d.post('/api/leads', { name: 'Night Nora', phone: '+15550000001' });
    const r = await d.post('/api/outbound_calls/start', { lead_ids: [l1.json.id, l2.json.id] });
    assert.equal(r.status, 200);
    await waitFor(async () => {
      const c = (await recentCalls(d)).find((x) => x.lead_id === l1.json.id);
      return c.status === 'busy' && c.attempts === 2;
    }, { what: 'busy twice, then final' });
    assert.equal(createsByTo(tw).get('+15550000000'), 2, 'dialled once more by the retry policy');
    const night = (await recentCalls(d)).find((x) => x.lead_id === l2.json.id);
    assert.equal(night.status, 'queued', 'outside the hours in TIMEZONE: waits');
    assert.equal(createsByTo(tw).get('+15550000001'), undefined);
  } finally {
    await teardown(ctx);
  }
});

test('a claim that a restart finds without a call, once the calling hours have closed: back in the queue, not dialled at night', async () => {
  // the create is never answered and makes no call; the daemon dies with the job claimed
  const ctx = await setup({ createHang: true }, { TIMEZONE: 'UTC', CALL_HOURS: '00:00-24:00' });
  const { tw, d } = ctx;
  try {
    const ids = await leads(d, 1);
    d.post('/api/outbound_calls/start', { lead_ids: ids }).catch(() => {}); // its answer waits for the call
    await tw.waitFor((t) => t.requests.some((q) => q.op === 'create'), 5000, 'the create sent');
    const job = (await recentCalls(d))[0];
    assert.equal(job.status, 'dialing');
    await d.kill9();
    // it comes back after the hours closed (a one-hour window 6 hours from now in UTC)
    const open = (new Date().getUTCHours() + 6) % 24;
    d.opts.env.CALL_HOURS = `${String(open).padStart(2, '0')}:00-${String((open + 1) % 24).padStart(2, '0')}:00`;
    tw.set({ createHang: false });
    await d.start();
    const back = await waitFor(async () => {
      const c = (await recentCalls(d))[0];
      return c.status === 'queued' ? c : false;
    }, { what: 'queued again' });
    assert.equal(back.job_id, job.job_id);
    assert.ok(tw.requests.some((q) => q.op === 'list'), 'Twilio was asked whether the call exists');
    assert.equal(tw.requests.filter((q) => q.op === 'create').length, 1, 'no create after the restart');
    assert.equal(tw.callList().length, 0);
  } finally {
    await teardown(ctx);
  }
});

test('TWILIO_CPS spaces new calls; cleanup-stuck-jobs settles an old call from Twilio; paging bounds', async () => {
  const ctx = await setup({ durationMs: 20, dropFinalCallback: true }, { TWILIO_CPS: '4', CALL_STUCK_MS: '1000' });
  const { tw, d } = ctx;
  try {
    const ids = await leads(d, 3);
    const r = await d.post('/api/outbound_calls/start', { lead_ids: ids });
    assert.equal(r.status, 200, r.text);
    const at = tw.creates().map((q) => q.at).sort((a, b) => a - b);
    assert.equal(at.length, 3);
    for (let i = 1; i < at.length; i++) assert.ok(at[i] - at[i - 1] >= 240, `creates ${at[i] - at[i - 1]} ms apart at 4/s`);
    // the final callbacks were lost; the calls ended at Twilio
    await tw.waitFor((t) => t.callList().every((c) => c.status === 'completed'), 5000, 'ended at Twilio');
    assert.equal((await d.post('/api/outbound/cleanup-stuck-jobs')).json.checked, 0, 'nothing is old enough yet');
    await new Promise((res) => setTimeout(res, 1100)); // CALL_STUCK_MS is an age: it has to pass
    const c = await d.post('/api/outbound/cleanup-stuck-jobs');
    assert.equal(c.status, 200);
    assert.equal(c.json.checked, 3);
    await waitFor(async () => (await recentCalls(d)).every((x) => x.status === 'completed'),
      { what: 'settled by the cleanup' });
    const t = await d.post('/api/tenants', { name: 'other' });
    assert.equal((await d.post('/api/outbound/cleanup-stuck-jobs', {}, { key: t.json.apiKey })).status, 403, 'admin only');
    assert.equal((await d.get('/api/outbound/recent-calls?page_size=101')).status, 400);
    assert.equal((await d.get('/api/outbound/recent-calls?page=0')).status, 400);
    const p = await d.get('/api/outbound/recent-calls?page=2&page_size=2');
    assert.equal(p.json.calls.length, 1);
    assert.equal(p.json.total, 3);
  } finally {
    await teardown(ctx);
  }
});

test('stop-queue also stops busy retries; PUBLIC_URL behind a proxy path is what the signature covers', async () => {
  const ctx = await setup({ durationMs: 20, outcome: 'busy', ringMs: 200 },
    { CALL_RETRY_ATTEMPTS: '2', CALL_RETRY_DELAY_MS: '300' });
  const { tw, d } = ctx;
  try {
    const ids = await leads(d, 5);
    const r = await d.post('/api/outbound_calls/start', { lead_ids: ids });
    await tw.waitFor((t) => t.callList().length === 3, 5000, '3 dialled');
    const s = await d.post('/api/outbound/stop-queue', { run_id: r.json.run_id });
    assert.equal(s.json.status, 'stopped');
    await waitFor(async () => (await run(d, r.json.run_id)).finished_at, { what: 'run over' });
    await new Promise((res) => setTimeout(res, 500)); // longer than the retry delay: nothing may follow
    assert.equal(tw.callList().length, 3, 'no busy retry after the stop');
  } finally {
    await teardown(ctx);
  }
  // a daemon published as https://sb.example/prefix (a proxy strips /prefix): the signature
  // is over that URL, with or without :443
  const tw2 = await startFakeTwilio({});
  const port = await freePort();
  const d2 = new Daemon({ env: { TWILIO_API_BASE: tw2.url, TWILIO_ACCOUNT_SID: tw2.accountSid, TWILIO_AUTH_TOKEN: tw2.authToken,
    TWILIO_FROM: FROM, TWILIO_TWIML_URL: 'http://127.0.0.1:9/t', PUBLIC_URL: 'https://sb.example/prefix/' } });
  d2.port = port;
  await d2.start();
  try {
    const p = { CallSid: 'CA' + 'e'.repeat(32), CallStatus: 'completed' };
    const body = new URLSearchParams(p).toString();
    for (const signed of ['https://sb.example/prefix/webhook/call_status?job=1&attempt=1',
      'https://sb.example:443/prefix/webhook/call_status?job=1&attempt=1']) {
      const res = await fetch(`http://127.0.0.1:${port}/webhook/call_status?job=1&attempt=1`, { method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Twilio-Signature': tw2.signature(signed, p) }, body });
      assert.equal(res.status, 200, signed);
    }
    const wrong = await fetch(`http://127.0.0.1:${port}/webhook/call_status?job=1&attempt=1`, { method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded',
        'X-Twilio-Signature': tw2.signature('https://sb.example/webhook/call_status?job=1&attempt=1', p) }, body });
    assert.equal(wrong.status, 403, 'the path is part of what is signed');
  } finally {
    await d2.cleanup();
    await tw2.close();
  }
});

test('after kill -9 with calls claimed but not created, the creates again go out at TWILIO_CPS, new claims included', async () => {
  // 8 leads, 6 slots: 6 claims whose creates hang (no call made), 2 queued; no spacing yet
  const ctx = await setup({ createHang: true, durationMs: 40 }, { CALL_CONCURRENCY: '6', TWILIO_CPS: '0' });
  const { tw, d } = ctx;
  try {
    const { r, before } = await claimedThenRestarted(ctx, 8, 6, 2);
    // the 6 re-creates (each after a list that finds no call) and the 2 queued jobs
    await tw.waitFor((t) => t.creates().length === before + 8, 15000, '8 creates after the restart');
    const at = tw.creates().slice(before).map((q) => q.at);
    for (let i = 1; i < at.length; i++)
      assert.ok(at[i] - at[i - 1] >= 500 - 40, `creates ${at[i] - at[i - 1]} ms apart at 2/s: ${at.map((x) => x - at[0]).join(',')}`);
    const done = await waitRun(d, r.json.run_id, 'completed', 20000);
    assert.equal(done.completed, 8);
    assert.equal(tw.callList().length, 8, 'one call per lead');
    assert.ok(tw.maxActive <= 6, `max active ${tw.maxActive}`);
  } finally {
    await teardown(ctx);
  }
});

test('a soft cancel of a job that waits to be created again after a restart ends it canceled, with no call', async () => {
  const ctx = await setup({ createHang: true, durationMs: 40 }, { CALL_CONCURRENCY: '3', TWILIO_CPS: '0' });
  const { tw, d } = ctx;
  try {
    // 3 claims whose creates hang, 1 queued; after the restart the first create waits a
    // whole turn (1 s)
    const { r, before } = await claimedThenRestarted(ctx, 4, 3, 1);
    const dialing = (await recentCalls(d)).filter((c) => c.status === 'dialing');
    assert.equal(dialing.length, 3);
    const victim = dialing[0];
    const c = await d.post(`/api/outbound_calls/jobs/${victim.job_id}/cancel`);
    assert.equal(c.status, 202, c.text);
    assert.equal(c.json.status, 'canceling');
    const done = await waitRun(d, r.json.run_id, 'completed', 20000);
    assert.equal(done.completed, 3);
    const job = (await recentCalls(d)).find((x) => x.job_id === victim.job_id);
    assert.equal(job.status, 'canceled');
    assert.equal(job.error, 'canceled before it was dialled again');
    const after = tw.creates().slice(before).map((q) => q.params.To);
    assert.equal(after.length, 3, `creates after the restart: ${after}`);
    assert.ok(!after.includes(victim.phone), 'no call for the canceled job');
  } finally {
    await teardown(ctx);
  }
});

test('a create with no clear outcome never adopts a call another tenant\'s job to the same number may have made', async () => {
  // tenant 1's create fails with 500 and makes no call; tenant 2's create to the same number
  // makes one whose answer never comes; callbacks (which name the job) come late
  const ctx = await setup({ durationMs: 300, callbackDelayMs: 3000,
    createFailures: [{ status: 500 }, { afterCreate: true, hang: true }] });
  const { tw, d } = ctx;
  try {
    const t = await d.post('/api/tenants', { name: 'other' });
    const key = t.json.apiKey;
    const mine = await d.post('/api/leads', { name: 'Same', phone: '+15550000042' });
    const theirs = await d.post('/api/leads', { name: 'Same', phone: '+15550000042' }, { key });
    const a = d.post('/api/outbound_calls/start', { lead_ids: [mine.json.id] });
    await tw.waitFor((x) => x.creates().length === 1, 5000, 'the first create');
    const b = d.post('/api/outbound_calls/start', { lead_ids: [theirs.json.id] }, { key });
    await tw.waitFor((x) => x.creates().length === 2 && x.callList().length === 1, 5000, 'the second create made a call');
    const jobA = (await a).json.calls[0].job_id;
    const jobB = (await b).json.calls[0].job_id;
    const settled = async (k) => {
      const c = (await d.get('/api/outbound/recent-calls', { key: k })).json.calls[0];
      return c.status === 'completed' ? c : false;
    };
    const doneA = await waitFor(() => settled(ADMIN_KEY), { timeout: 30000, what: 'tenant 1\'s call completes' });
    const doneB = await waitFor(() => settled(key), { timeout: 30000, what: 'tenant 2\'s call completes' });
    const jobOf = (sid) => new URL(tw.calls.get(sid).statusCallback).searchParams.get('job');
    assert.equal(jobOf(doneA.call_sid), String(jobA), 'tenant 1 holds the call made for its own job');
    assert.equal(jobOf(doneB.call_sid), String(jobB), 'tenant 2 holds the call made for its own job');
    assert.notEqual(doneA.call_sid, doneB.call_sid);
    assert.equal(tw.callList().length, 2, 'one call each');
    assert.ok(tw.callList().every((c) => c.updates.length === 0), 'nobody\'s call was hung up');
  } finally {
    await teardown(ctx);
  }
});

test('two jobs to one number that wait on each other\'s unclear call both fail once a call of theirs would have ended; neither is dialled again', async () => {
  // tenant 1's create makes a call but is answered 500; tenant 2's create is answered 500 and makes
  // none; the call's status callbacks (which would name the job) do not come in time
  const ctx = await setup({ durationMs: 300, callbackDelayMs: 600000, createFailures: [{ status: 500, afterCreate: true }, { status: 500 }] },
    { CALL_RING_TIMEOUT_S: '5', CALL_TIME_LIMIT_S: '1', CALL_SETTLE_MARGIN_MS: '0' });
  const { tw, d } = ctx;
  try {
    const key = (await d.post('/api/tenants', { name: 'other' })).json.apiKey;
    const mine = await d.post('/api/leads', { name: 'Same', phone: '+15550000043' });
    const theirs = await d.post('/api/leads', { name: 'Same', phone: '+15550000043' }, { key });
    const a = d.post('/api/outbound_calls/start', { lead_ids: [mine.json.id] });
    await tw.waitFor((x) => x.creates().length === 1 && x.callList().length === 1, 5000, 'the first create made a call');
    const b = d.post('/api/outbound_calls/start', { lead_ids: [theirs.json.id] }, { key });
    await tw.waitFor((x) => x.creates().length === 2, 5000, 'the second create');
    // each sees one call it could have made, that the other could have made too: neither adopts it
    await waitFor(() => (d.log().match(/a listed call could be another job's/g) || []).length >= 2, { what: 'both undecided' });
    const failed = async (k) => {
      const c = (await d.get('/api/outbound/recent-calls', { key: k })).json.calls[0];
      return c.status === 'failed' ? c : false;
    };
    // a call of theirs would have ended 5 + 1 s after its claim
    for (const k of [ADMIN_KEY, key]) {
      const c = await waitFor(() => failed(k), { timeout: 20000, what: 'failed at its time limit' });
      assert.match(c.error, /nothing decided which before its time limit: not dialled again$/);
      assert.equal(c.call_sid, null);
    }
    assert.deepEqual([(await a).status, (await b).status], [200, 200]);
    assert.equal(tw.creates().length, 2, 'neither was dialled again');
    assert.equal(tw.callList().length, 1);
    assert.equal(tw.callList()[0].updates.length, 0, 'the call nobody could claim was not hung up');
    assert.match(d.log(), /failed with the job it waited on job=\d+/);
  } finally {
    await teardown(ctx);
  }
});

test('a create whose connection is reset before any answer is not sent again behind the daemon\'s back: it lists first', async () => {
  const ctx = await setup({ durationMs: 30 });
  const { tw, d } = ctx;
  try {
    const [first, second] = await leads(d, 2);
    // a first call leaves a kept-alive connection to Twilio behind
    assert.equal((await d.post('/api/outbound_calls/start', { lead_ids: [first] })).status, 200);
    await waitFor(async () => (await recentCalls(d))[0].status === 'completed', { what: 'the first call done' });
    // the next create is read, then its connection is reset without a call or an answer
    tw.set({ createFailures: [{ reset: true }] });
    assert.equal((await d.post('/api/outbound_calls/start', { lead_ids: [second] })).status, 200);
    await waitFor(async () => (await recentCalls(d)).every((c) => c.status === 'completed'), { what: 'the second call done' });
    const ops = tw.requests.map((q) => q.op);
    const reset = tw.requests.findIndex((q) => q.answer?.reset);
    assert.ok(reset > 0, `a create was reset: ${ops}`);
    assert.equal(ops[reset + 1], 'list', `what followed the reset create: ${ops.slice(reset)}`);
    assert.equal(tw.creates().length, 3);
    assert.equal(tw.callList().length, 2, 'one call per lead');
    assert.match(d.log(), /call create not confirmed, checking and trying again job=2/);
  } finally {
    await teardown(ctx);
  }
});
