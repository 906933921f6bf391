// The event queue: in order, retried on 5xx / no answer, dropped on 4xx, bounded.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { cutUtf8, EventQueue } from '../src/events.js';
import { FakeDaemon, freePort, SECRET, until } from './helpers.js';

const quiet = () => {
  const lines = [];
  const f = (level) => (o, m) => lines.push({ level, o, m });
  return { lines, info: f('info'), warn: f('warn'), error: f('error'), debug: f('debug') };
};

function queue(url, o = {}) {
  return new EventQueue({ url, sessionId: 'worker_3', secret: SECRET, log: quiet(), backoffMinMs: 20, backoffMaxMs: 80, ...o });
}

test('events arrive in order, signed, with the envelope the daemon expects', async (t) => {
  const d = await new FakeDaemon().start();
  t.after(() => d.stop());
  const q = queue(d.url);
  t.after(() => q.close());
  for (let i = 0; i < 20; i++) q.post('PING', { uptimeMs: i, rssBytes: 1 });
  q.post('QR_CODE', { qr: '2@x' });
  assert.equal(await q.drain(5000), true);
  assert.deepEqual(d.events.map((e) => e.type === 'PING' ? e.data.uptimeMs : e.type), [...Array(20).keys(), 'QR_CODE']);
  const e = d.events[20];
  assert.deepEqual(Object.keys(e).sort(), ['data', 'sessionId', 'timestamp', 'type']);
  assert.equal(e.sessionId, 'worker_3');
  assert.ok(Number.isInteger(e.timestamp) && e.timestamp > 1.6e12, 'unix ms');
  assert.equal(d.rejected.length, 0);
});

test('5xx and 429 are retried (re-signed) until accepted; other 4xx are dropped; order is kept', async (t) => {
  const d = await new FakeDaemon().start();
  t.after(() => d.stop());
  let n = 0;
  d.respond = (ev) => {
    if (ev.type === 'CONNECTED' && n++ < 3) return [503, 429, 500][n - 1];
    if (ev.type === 'AUTH_FAILURE') return 400;
    return 200;
  };
  const q = queue(d.url);
  t.after(() => q.close());
  q.post('CONNECTED', { phoneNumber: '972501234567' });
  q.post('AUTH_FAILURE', { error: 'x' });
  q.post('PING', { uptimeMs: 1, rssBytes: 1 });
  assert.equal(await q.drain(5000), true);
  assert.deepEqual(d.events.map((e) => e.type), ['CONNECTED', 'PING']);
  assert.equal(q.stats.retries, 3);
  assert.equal(q.stats.refused, 1);
  assert.ok(q.log.lines.some((l) => l.m === 'event refused by the daemon, dropped' && l.o.status === 400));
});

test('no daemon yet: retried with back-off until it comes up', async (t) => {
  const port = await freePort();
  const q = queue(`http://127.0.0.1:${port}/webhook`);
  t.after(() => q.close());
  q.post('PROXY_ERROR', { error: 'e1' });
  q.post('PING', { uptimeMs: 2, rssBytes: 1 });
  await until(() => q.stats.retries >= 2, { what: 'retries' });
  assert.equal(q.length, 2);
  const d = new FakeDaemon();
  await new Promise((r) => d.server.listen(port, '127.0.0.1', r));
  t.after(() => d.stop());
  assert.equal(await q.drain(5000), true);
  assert.deepEqual(d.events.map((e) => e.type), ['PROXY_ERROR', 'PING']);
});

test('a daemon that does not answer: timed out and retried', async (t) => {
  const hang = net.createServer(() => {});
  await new Promise((r) => hang.listen(0, '127.0.0.1', r));
  t.after(() => {
    hang.closeAllConnections?.();
    hang.close();
  });
  const q = queue(`http://127.0.0.1:${hang.address().port}/webhook`, { timeoutMs: 200 });
  t.after(() => q.close());
  q.post('PING', { uptimeMs: 1, rssBytes: 1 });
  await until(() => q.stats.retries >= 2, { what: 'timeouts retried' });
  assert.equal(q.length, 1);
});

test('bounded: when full, PINGs go first, then the oldest waiting event', async (t) => {
  const port = await freePort(); // nobody listens: nothing leaves
  const q = queue(`http://127.0.0.1:${port}/webhook`, { max: 16 });
  t.after(() => q.close());
  q.post('CONNECTED', { phoneNumber: '972501234567' });
  for (let i = 0; i < 10; i++) q.post('PING', { uptimeMs: i, rssBytes: 1 });
  for (let i = 0; i < 15; i++) q.post('MESSAGE_SENT', { messageId: `m${i}` });
  assert.equal(q.length, 16);
  const types = q.items.map((it) => JSON.parse(it.body).type);
  assert.equal(types.filter((x) => x === 'PING').length, 0, 'all PINGs dropped first');
  assert.equal(q.stats.dropped, 10);
  q.post('MESSAGE_SENT', { messageId: 'last' });
  assert.equal(q.length, 16);
  assert.equal(JSON.parse(q.items[q.items.length - 1].body).data.messageId, 'last');
});

test('an over-long MESSAGE_RECEIVED text is cut to fit 64 KiB, at a character boundary', async (t) => {
  const d = await new FakeDaemon().start();
  t.after(() => d.stop());
  const q = queue(d.url);
  t.after(() => q.close());
  q.post('MESSAGE_RECEIVED', { from: '972501234567', text: 'ש'.repeat(40000), waMessageId: 'X' });
  assert.equal(await q.drain(5000), true);
  const e = d.events[0];
  assert.equal(e.data.truncated, true);
  assert.ok(Buffer.byteLength(JSON.stringify(e)) <= 64 * 1024);
  assert.match(e.data.text, /^ש+$/);
  assert.equal(cutUtf8('aש', 2), 'a');
});
