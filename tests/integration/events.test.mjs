// The event log and its live stream: events written with the changes that cause them,
// listed with filters, streamed as Server-Sent Events and resumed with Last-Event-ID.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADMIN_KEY, Daemon, waitFor } from './lib.mjs';

const OPEN = '0,0,0,0,00:00-24:00';

// A Server-Sent Events reader: collects events as they arrive.
function openStream(url, { key = ADMIN_KEY, lastEventId } = {}) {
  const ctl = new AbortController();
  const s = { events: [], comments: 0, status: null, close: () => ctl.abort() };
  const headers = { 'X-API-Key': key, Accept: 'text/event-stream' };
  if (lastEventId !== undefined) headers['Last-Event-ID'] = String(lastEventId);
  s.ready = (async () => {
    const res = await fetch(url, { headers, signal: ctl.signal });
    s.status = res.status;
    s.contentType = res.headers.get('content-type');
    if (res.status !== 200) return;
    (async () => {
      const dec = new TextDecoder();
      let buf = '';
      try {
        for await (const chunk of res.body) {
          buf += dec.decode(chunk, { stream: true });
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const f = {};
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) { s.comments++; continue; }
              const c = line.indexOf(':');
              if (c > 0) f[line.slice(0, c)] = line.slice(c + 1).trimStart();
            }
            if (f.data) s.events.push({ id: Number(f.id), event: f.event, data: JSON.parse(f.data) });
          }
        }
      } catch { /* aborted */ }
    })();
  })();
  return s;
}

test('session and message events: listed in order with filters, streamed live, resumed without a gap or a duplicate', async () => {
  const d = await new Daemon({ env: { PACING_COLD: OPEN, PACING_WARM: OPEN, PACING_HOT: OPEN, TYPING_MAX_MS: '0' } }).start();
  try {
    const id = await d.provision({});
    await d.waitStatus(id, 'qr_ready');
    await d.sim(id, '/sim/scan', { phoneNumber: '+972501230001' });
    await d.waitStatus(id, 'connected');
    const st = await d.get(`/api/events?type=session.status&sessionId=${id}`);
    assert.equal(st.status, 200);
    const seq = st.json.events.map((e) => e.data.status);
    assert.deepEqual(seq.slice(-2), ['qr_ready', 'connected']);
    for (const e of st.json.events) {
      assert.equal(e.type, 'session.status');
      assert.equal(e.sessionId, id);
      assert.ok(e.data.previous && e.data.reason !== undefined && e.at);
    }
    const ids = st.json.events.map((e) => e.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'in order');
    const qr = await d.get('/api/events?type=session.qr');
    assert.ok(qr.json.events.length >= 1);
    assert.equal(qr.json.events[0].data.qr, undefined, 'the QR itself is not in the log');
    assert.equal((await d.get('/api/events?type=nope')).status, 400);

    // the newest: last=N is the tail of the full list, oldest first, and nextSince its end
    const all = (await d.get('/api/events?limit=1000')).json.events.map((e) => e.id);
    assert.ok(all.length >= 4);
    const tail = await d.get('/api/events?last=3');
    assert.deepEqual(tail.json.events.map((e) => e.id), all.slice(-3));
    assert.equal(tail.json.nextSince, all.at(-1));
    assert.deepEqual((await d.get(`/api/events?last=2&type=session.status&sessionId=${id}`)).json.events.map((e) => e.id), ids.slice(-2));
    const none = await d.get(`/api/events?last=5&since=${all.at(-1)}`);
    assert.deepEqual(none.json.events, []);
    assert.ok(none.json.nextSince >= all.at(-1), 'with nothing newer, from now');
    for (const bad of ['last=0', 'last=1001', 'last=x', 'last=2&limit=2']) {
      const r = await d.get(`/api/events?${bad}`);
      assert.equal(r.status, 400, bad);
      assert.match(r.json.error.message, /last/);
    }

    // live: a stream of message events sees queued, sending, sent of a send
    const url = `${d.url}/api/events/stream?type=message.status,message.received`;
    const s1 = openStream(url);
    await s1.ready;
    assert.equal(s1.status, 200);
    assert.match(s1.contentType, /^text\/event-stream/);
    const m1 = (await d.post('/api/v1/send', { to: '972500000001', message: 'one', sessionId: id })).json.messageId;
    await waitFor(() => s1.events.filter((e) => e.data.data.messageId === m1).length === 3, { what: 'three statuses of m1' });
    assert.deepEqual(s1.events.filter((e) => e.data.data.messageId === m1).map((e) => e.data.data.status), ['queued', 'sending', 'sent']);
    assert.ok(s1.events.every((e) => e.event === 'message.status' || e.event === 'message.received'));
    assert.ok(s1.events.every((e) => e.id > ids.at(-1)), 'a stream with no starting point begins now');
    const lastSeen = s1.events.at(-1).id;
    s1.close();

    // while nobody listens: another send and an incoming message
    const m2 = (await d.post('/api/v1/send', { to: '972500000002', message: 'two', sessionId: id })).json.messageId;
    await d.sim(id, '/sim/receive', { from: '972500000009', text: 'שלום' });
    await waitFor(async () => (await d.get(`/api/v1/messages/${m2}`)).json.status === 'sent', { what: 'm2 sent' });
    await waitFor(async () => (await d.get('/api/events?type=message.received')).json.events.length === 1, { what: 'received event' });

    // resume from the last id seen: exactly what came after it, then live again
    const s2 = openStream(url, { lastEventId: lastSeen });
    await s2.ready;
    const expected = (await d.get(`/api/events?type=message.status,message.received&since=${lastSeen}`)).json.events.map((e) => e.id);
    assert.ok(expected.length >= 4);
    await waitFor(() => s2.events.length >= expected.length, { what: 'the backlog' });
    assert.deepEqual(s2.events.map((e) => e.id), expected, 'no gap, no duplicate');
    const rec = s2.events.find((e) => e.event === 'message.received');
    assert.equal(rec.data.data.from, '+972500000009');
    assert.equal(rec.data.data.text, 'שלום');
    const m3 = (await d.post('/api/v1/send', { to: '972500000003', message: 'three', sessionId: id })).json.messageId;
    await waitFor(() => s2.events.some((e) => e.data.data.messageId === m3 && e.data.data.status === 'sent'), { what: 'm3 live' });
    const ids2 = s2.events.map((e) => e.id);
    assert.equal(new Set(ids2).size, ids2.length, 'no duplicate');
    s2.close();

    // tenants see their own events only
    const t = await d.post('/api/tenants', { name: 'other' });
    assert.equal((await d.get('/api/events', { key: t.json.apiKey })).json.events.length, 0);
    const s3 = openStream(`${d.url}/api/events/stream`, { key: t.json.apiKey });
    await s3.ready;
    await d.post('/api/v1/send', { to: '972500000004', message: 'four', sessionId: id });
    const s4 = openStream(`${d.url}/api/events/stream?since=${expected.at(-1)}`);
    await s4.ready;
    await waitFor(() => s4.events.some((e) => e.data.data.status === 'sent'), { what: 'the default tenant sees it' });
    assert.equal(s3.events.length, 0, 'the other tenant saw nothing');
    s3.close();
    s4.close();
    assert.equal((await fetch(`${d.url}/api/events/stream`)).status, 401);
  } finally {
    await d.cleanup();
  }
});

test('the log is pruned to EVENTS_MAX, oldest first; ids never repeat', async () => {
  const d = await new Daemon({ env: { EVENTS_MAX: '1000', PACING_COLD: OPEN, TYPING_MAX_MS: '0' } }).start();
  try {
    const id = await d.provision({});
    await d.waitStatus(id, 'qr_ready');
    await d.sim(id, '/sim/scan', { phoneNumber: '+972501230002' });
    await d.waitStatus(id, 'connected');
    // about 1,200 events: queued, sending, sent of 400 messages
    for (let b = 0; b < 8; b++) {
      await Promise.all(Array.from({ length: 50 }, (_, k) =>
        d.post('/api/v1/send', { to: `97250${String(b * 50 + k).padStart(7, '0')}`, message: 'x', sessionId: id })));
    }
    await waitFor(async () => (await d.get(`/api/v1/messages?sessionId=${id}&status=queued&limit=1`)).json.messages.length === 0 &&
      (await d.get(`/api/v1/messages?sessionId=${id}&status=sending&limit=1`)).json.messages.length === 0, { timeout: 30000, what: 'all sent' });
    // MONITOR_INTERVAL_MS (1 s in tests) paces the pruning
    const first = await waitFor(async () => {
      const e = (await d.get('/api/events?limit=1')).json.events[0];
      return e.id > 200 ? e : false;
    }, { timeout: 10000, what: 'the oldest pruned' });
    let n = 0, since = 0, ids = [];
    for (;;) {
      const page = (await d.get(`/api/events?limit=1000&since=${since}`)).json;
      if (!page.events.length) break;
      n += page.events.length;
      ids = ids.concat(page.events.map((e) => e.id));
      since = page.nextSince;
    }
    assert.ok(n <= 1000, `kept ${n}`);
    assert.equal(ids[0], first.id);
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
  } finally {
    await d.cleanup();
  }
});

test('one tenant can hold at most 32 streams: the others still get theirs', async () => {
  const d = await new Daemon().start();
  const streams = [];
  try {
    const key = (await d.post('/api/tenants', { name: 'greedy' })).json.apiKey;
    for (let i = 0; i < 32; i++) streams.push(openStream(`${d.url}/api/events/stream`, { key }));
    await Promise.all(streams.map((s) => s.ready));
    assert.deepEqual([...new Set(streams.map((s) => s.status))], [200]);
    const extra = openStream(`${d.url}/api/events/stream`, { key });
    await extra.ready;
    assert.equal(extra.status, 429);
    const admin = openStream(`${d.url}/api/events/stream`);
    streams.push(admin);
    await admin.ready;
    assert.equal(admin.status, 200, 'another tenant still gets a stream');
    // one closed: room again
    streams[0].close();
    await waitFor(async () => {
      const s = openStream(`${d.url}/api/events/stream`, { key });
      await s.ready;
      s.close();
      return s.status === 200;
    }, { what: 'a stream again after one closed' });
  } finally {
    for (const s of streams) s.close();
    await d.cleanup();
  }
});
