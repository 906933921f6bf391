// messageId de-duplication: a repeated /send is acknowledged and never sent again - one
// after the other, at the same moment, and across a restart on the same AUTH_DIR.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { SentLog } from '../src/sentlog.js';
import { waMessageIdFor } from '../src/wa.js';
import { FakeDaemon, fakeFactory, SECRET, startTestWorker, tmpDir, until } from './helpers.js';

const silent = { warn() {}, info() {}, error() {}, debug() {} };

async function connected(t, opts) {
  const ctx = await startTestWorker(t, opts);
  await until(() => ctx.factory.last(), { what: 'socket created' });
  ctx.factory.last().open();
  await ctx.d.wait('CONNECTED');
  return ctx;
}

test('the same messageId twice: sent once, the repeat answers duplicate:true with the same waMessageId', async (t) => {
  const ctx = await connected(t);
  const sock = ctx.factory.last();
  const body = { messageId: 'order-1001', to: '972501234567', text: 'your order shipped' };
  const a = await ctx.call('POST', '/send', body);
  assert.equal(a.status, 200);
  assert.equal(a.json.duplicate, undefined);
  await ctx.d.wait('MESSAGE_SENT', (d) => d.messageId === 'order-1001');
  const b = await ctx.call('POST', '/send', { ...body, text: 'a different text changes nothing' });
  assert.equal(b.status, 200);
  assert.deepEqual(b.json, { ok: true, duplicate: true, waMessageId: a.json.waMessageId });
  // MESSAGE_SENT is posted again for the repeat, in case the first one was lost
  await ctx.d.wait('MESSAGE_SENT', (d) => d.messageId === 'order-1001', { after: 1 });
  assert.equal(sock.calls.sendMessage.length, 1);
  assert.equal(fs.readFileSync(path.join(ctx.dir, 'sent.log'), 'utf8'), 'order-1001\n');
});

test('concurrent /send of one messageId while the first is in flight: one send, every answer the same id', async (t) => {
  let release;
  const gate = new Promise((r) => {
    release = r;
  });
  const factory = fakeFactory({
    sendMessage: async (c) => {
      await gate; // WhatsApp is slow: the first send is still in progress when the others arrive
      return { key: { id: c.options.messageId }, message: { conversation: c.content.text } };
    },
  });
  const ctx = await connected(t, { factory });
  const sock = ctx.factory.last();
  const body = { messageId: 'race-1', to: '972501234567', text: 'once', typingMs: 0 };
  const first = await ctx.call('POST', '/send', body);
  assert.equal(first.status, 200);
  await until(() => sock.calls.sendMessage.length === 1, { what: 'first send started' });
  const rest = await Promise.all(Array.from({ length: 10 }, () => ctx.call('POST', '/send', body)));
  for (const r of rest) assert.deepEqual(r.json, { ok: true, duplicate: true, waMessageId: first.json.waMessageId });
  // and all at once, before anything was sent, for a new id
  const burst = await Promise.all(Array.from({ length: 10 }, () => ctx.call('POST', '/send', { ...body, messageId: 'race-2' })));
  assert.equal(burst.filter((r) => r.json.duplicate === true).length, 9);
  assert.equal(new Set(burst.map((r) => r.json.waMessageId)).size, 1);
  release();
  await ctx.d.wait('MESSAGE_SENT', (d) => d.messageId === 'race-2');
  assert.equal(sock.calls.sendMessage.filter((c) => c.options.messageId === first.json.waMessageId).length, 1);
  assert.equal(sock.calls.sendMessage.length, 2);
  // in-flight repeats post nothing: one MESSAGE_SENT per id
  assert.equal(ctx.d.of('MESSAGE_SENT').filter((e) => e.data.messageId === 'race-1').length, 1);
  assert.equal(ctx.d.of('MESSAGE_SENT').filter((e) => e.data.messageId === 'race-2').length, 1);
});

test('survives a restart: a new worker on the same AUTH_DIR acknowledges the id and does not send it', async (t) => {
  const dir = tmpDir();
  const daemon = await new FakeDaemon().start();
  t.after(async () => {
    await daemon.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const one = await connected(t, { authDir: dir, daemon });
  const r1 = await one.call('POST', '/send', { messageId: 'persist-1', to: '972501234567', text: 'hello' });
  await daemon.wait('MESSAGE_SENT', (d) => d.messageId === 'persist-1');
  await one.stop();

  // a second worker process would read the same file: a new instance does the same
  const two = await startTestWorker(t, { authDir: dir, daemon });
  await until(() => two.factory.last(), { what: 'socket' });
  // linked already (creds.json from the first run): answered even before the connection is up
  const r2 = await two.call('POST', '/send', { messageId: 'persist-1', to: '972501234567', text: 'hello' });
  assert.deepEqual(r2.json, { ok: true, duplicate: true, waMessageId: r1.json.waMessageId });
  two.factory.last().open();
  await daemon.wait('CONNECTED', () => true, { after: 1 });
  const r3 = await two.call('POST', '/send', { messageId: 'persist-1', to: '972501234567', text: 'hello' });
  assert.equal(r3.json.duplicate, true);
  assert.equal(two.factory.last().calls.sendMessage.length, 0, 'never sent again');
  const h = await two.call('GET', '/health');
  assert.equal(h.json.sentIds, 1);
  assert.equal(h.json.linked, true, 'creds.json was restored');
});

test('sent.log: one id per line, fsync-appended; a torn last line is cut; unusable lines skipped', async () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, 'sent.log');
    fs.writeFileSync(file, 'a-1\n\nb-2\n' + 'x'.repeat(200) + '\nc-3-torn');
    const log = await SentLog.open(dir, silent);
    assert.ok(log.has('a-1') && log.has('b-2'));
    assert.ok(!log.has('c-3-torn'), 'a line without its newline was never recorded');
    assert.equal(log.size, 2);
    assert.equal(fs.readFileSync(file, 'utf8'), 'a-1\n\nb-2\n' + 'x'.repeat(200) + '\n', 'torn tail cut');
    await Promise.all([log.add('d-4'), log.add('e-5'), log.add('d-4')]);
    await log.close();
    assert.equal(fs.readFileSync(file, 'utf8').split('\n').slice(-3).join('|'), 'd-4|e-5|');
    assert.equal((fs.statSync(file).mode & 0o777).toString(8), '600');
    const again = await SentLog.open(dir, silent);
    assert.deepEqual([...again.ids].sort(), ['a-1', 'b-2', 'd-4', 'e-5']);
    await again.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('waMessageId is stable for (key, session, messageId) and differs otherwise', () => {
  const a = waMessageIdFor(SECRET, 'worker_7', 'm-1');
  assert.equal(a, waMessageIdFor(SECRET, 'worker_7', 'm-1'));
  assert.notEqual(a, waMessageIdFor(SECRET, 'worker_8', 'm-1'));
  assert.notEqual(a, waMessageIdFor(SECRET, 'worker_7', 'm-2'));
  assert.notEqual(a, waMessageIdFor('1'.repeat(64), 'worker_7', 'm-1'));
});
