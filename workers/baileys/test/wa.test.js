// The session life cycle with a fake Baileys socket: login events, disconnect codes,
// incoming messages, the keep-alive engine, corrupted creds.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FakeDaemon, fakeFactory, startTestWorker, tmpDir, until } from './helpers.js';

async function connected(t, opts) {
  const ctx = await startTestWorker(t, opts);
  await until(() => ctx.factory.last(), { what: 'socket created' });
  ctx.factory.last().open();
  await ctx.d.wait('CONNECTED');
  return ctx;
}

test('QR login: each QR is posted as QR_CODE; the socket goes through the proxy-less config', async (t) => {
  const ctx = await startTestWorker(t);
  await until(() => ctx.factory.last(), { what: 'socket' });
  const sock = ctx.factory.last();
  assert.equal(sock.config.agent, undefined, 'no proxy configured: direct');
  assert.equal(sock.config.syncFullHistory, false);
  sock.qr('2@first');
  sock.qr('2@second');
  await ctx.d.wait('QR_CODE', (d) => d.qr === '2@second');
  assert.deepEqual(ctx.d.of('QR_CODE').map((e) => e.data.qr), ['2@first', '2@second']);
  // the QRs ran out unscanned (408 while showing a QR): a new connection, no DISCONNECTED
  sock.close(408, 'QR refs attempts ended');
  await until(() => ctx.factory.sockets.length === 2, { what: 'a new socket for new QRs' });
  assert.equal(ctx.d.of('DISCONNECTED').length, 0);
});

test('pairing-code login with PAIRING_PHONE: a PAIRING_CODE instead of the QR, once per connection', async (t) => {
  const ctx = await startTestWorker(t, { env: { LOGIN_METHOD: 'pairing_code', PAIRING_PHONE: '+972501234567' } });
  await until(() => ctx.factory.last(), { what: 'socket' });
  const sock = ctx.factory.last();
  sock.qr('2@a');
  const ev = await ctx.d.wait('PAIRING_CODE');
  assert.deepEqual(ev.data, { code: 'ABCD1234' });
  sock.qr('2@b'); // a QR rotation on the same connection asks for no new code
  const h = await ctx.call('GET', '/health');
  assert.equal(h.json.loginMethod, 'pairing_code');
  assert.deepEqual(sock.calls.pairing, ['972501234567']);
  assert.equal(ctx.d.of('QR_CODE').length, 0);
  // an unfinished pairing (creds.me set by requestPairingCode) is cleared before a new connection
  sock.auth.creds.me = { id: '972501234567@s.whatsapp.net', name: '~' };
  sock.close(408, 'QR refs attempts ended');
  await until(() => ctx.factory.sockets.length === 2, { what: 'new socket' });
  assert.equal(ctx.factory.last().auth.creds.me, undefined);
  ctx.factory.last().qr('2@c');
  await ctx.d.wait('PAIRING_CODE', () => true, { after: 1 });
  assert.deepEqual(ctx.factory.last().calls.pairing, ['972501234567']);
});

test('disconnects: 428 reported and reconnected with back-off; 515 recreated at once and not reported', async (t) => {
  const ctx = await connected(t);
  const first = ctx.factory.last();
  first.close(515, 'Stream Errored (restart required)');
  await until(() => ctx.factory.sockets.length === 2, { timeout: 1000, what: 'immediate new socket after 515' });
  assert.equal(ctx.d.of('DISCONNECTED').length, 0, '515 is routine, not a disconnect');
  ctx.factory.last().open();
  await ctx.d.wait('CONNECTED', () => true, { after: 1 });

  const t0 = Date.now();
  ctx.factory.last().close(428, 'Connection Terminated');
  const d = await ctx.d.wait('DISCONNECTED');
  assert.deepEqual(d.data, { reason: 'Connection Terminated', statusCode: 428, loggedOut: false });
  await until(() => ctx.factory.sockets.length === 3, { timeout: 3000, what: 'reconnect after back-off' });
  const waited = Date.now() - t0;
  assert.ok(waited >= 45, `back-off (RECONNECT_MIN_MS=100, jittered to 50..100) waited ${waited} ms`);
  // failing again the same way while not connected is not reported again
  ctx.factory.last().close(428, 'Connection Terminated');
  await until(() => ctx.factory.sockets.length === 4, { timeout: 3000, what: 'second reconnect' });
  assert.equal(ctx.d.of('DISCONNECTED').length, 1);
  ctx.factory.last().open();
  const c = await ctx.d.wait('CONNECTED', () => true, { after: 2 });
  assert.equal(c.data.phoneNumber, '972501234567');
});

test('WhatsApp unreachable from the start: retried quietly, reported once after UNREACHABLE_REPORT_MS', async (t) => {
  // every connection attempt fails at once, as with no DNS
  const base = fakeFactory();
  const factory = {
    ...base,
    make: (cfg) => {
      const s = base.make(cfg);
      setImmediate(() => s.close(408, 'WebSocket Error (getaddrinfo ENOTFOUND web.whatsapp.com)'));
      return s;
    },
  };
  const t0 = Date.now();
  const ctx = await startTestWorker(t, { factory, env: { UNREACHABLE_REPORT_MS: '600' } });
  const d = await ctx.d.wait('DISCONNECTED', () => true, { timeout: 5000 });
  assert.ok(Date.now() - t0 >= 550, 'not before UNREACHABLE_REPORT_MS');
  assert.equal(d.data.statusCode, 408);
  assert.ok(ctx.factory.sockets.length >= 3, 'retried meanwhile');
  // and then not again for the same failure
  const n = ctx.factory.sockets.length;
  await until(() => ctx.factory.sockets.length > n, { what: 'one more retry' });
  assert.equal(ctx.d.of('DISCONNECTED').length, 1);
  const h = await ctx.call('GET', '/health');
  assert.equal(h.json.status, 'disconnected');
  assert.match(h.json.lastDisconnect.reason, /ENOTFOUND/);
});

test('UNREACHABLE_REPORT_MS=0: the first failed attempt is reported', async (t) => {
  const ctx = await startTestWorker(t, { env: { UNREACHABLE_REPORT_MS: '0' } });
  await until(() => ctx.factory.last(), { what: 'socket' });
  ctx.factory.last().close(428, 'Connection Terminated');
  const d = await ctx.d.wait('DISCONNECTED');
  assert.deepEqual(d.data, { reason: 'Connection Terminated', statusCode: 428, loggedOut: false });
});

test('440 connection replaced: reported, and the worker does not reconnect', async (t) => {
  const ctx = await connected(t);
  ctx.factory.last().close(440, 'Stream Errored (conflict)');
  const d = await ctx.d.wait('DISCONNECTED');
  assert.equal(d.data.statusCode, 440);
  assert.equal(d.data.loggedOut, false);
  assert.match(d.data.reason, /replaced/);
  const h = await ctx.call('GET', '/health');
  assert.equal(h.json.status, 'replaced');
  assert.equal(h.json.reconnectInMs, null, 'no reconnect scheduled');
  assert.equal(ctx.factory.sockets.length, 1);
  assert.equal((await ctx.call('POST', '/send', { messageId: 'x', to: '972501234567', text: 'x' })).status, 409);
});

test('401 from WhatsApp: auth files wiped, DISCONNECTED loggedOut:true, no reconnect', async (t) => {
  const ctx = await connected(t);
  await until(() => fs.existsSync(path.join(ctx.dir, 'creds.json')), { what: 'creds saved' });
  fs.writeFileSync(path.join(ctx.dir, 'pre-key-1.json'), '{}');
  ctx.factory.last().close(401, 'Connection Failure');
  const d = await ctx.d.wait('DISCONNECTED');
  assert.equal(d.data.loggedOut, true);
  assert.equal(d.data.statusCode, 401);
  assert.deepEqual(fs.readdirSync(ctx.dir), ['sent.log']);
  const h = await ctx.call('GET', '/health');
  assert.equal(h.json.status, 'logged_out');
  assert.equal(h.json.reconnectInMs, null);
});

test('incoming: text from others becomes MESSAGE_RECEIVED with the phone, also for @lid senders', async (t) => {
  const ctx = await connected(t);
  const sock = ctx.factory.last();
  sock.lid.set('111222333444555@lid', '972505555555@s.whatsapp.net');
  const m = (id, remoteJid, message, extra = {}) => ({ key: { id, remoteJid, fromMe: false, ...extra.key }, message, messageTimestamp: 1712345678, pushName: 'Dana', ...extra.msg });
  sock.ev.emit('messages.upsert', {
    type: 'notify',
    messages: [
      m('A1', '972501111111@s.whatsapp.net', { conversation: 'hello' }),
      m('A2', '987654321098765@lid', { extendedTextMessage: { text: 'via lid' } }, { key: { remoteJidAlt: '972502222222@s.whatsapp.net' } }),
      m('A3', '111222333444555@lid', { conversation: 'mapped' }),
      m('A4', '972503333333:12@s.whatsapp.net', { ephemeralMessage: { message: { extendedTextMessage: { text: 'disappearing' } } } }),
      m('A5', '999888777666555@lid', { conversation: 'unknown lid' }),
      m('B1', '12036302@g.us', { conversation: 'group' }, { key: { participant: '972504444444@s.whatsapp.net' } }),
      m('B2', 'status@broadcast', { conversation: 'status' }),
      m('B3', '972501111111@s.whatsapp.net', { conversation: 'mine' }, { key: { fromMe: true } }),
      m('B4', '972501111111@s.whatsapp.net', { imageMessage: { caption: 'photo' } }),
      m('A1', '972501111111@s.whatsapp.net', { conversation: 'hello' }), // a repeat of A1
    ],
  });
  sock.ev.emit('messages.upsert', { type: 'append', messages: [m('C1', '972501111111@s.whatsapp.net', { conversation: 'history' })] });
  await ctx.d.wait('MESSAGE_RECEIVED', (d) => d.waMessageId === 'A5');
  const got = ctx.d.of('MESSAGE_RECEIVED').map((e) => e.data);
  assert.deepEqual(got.map((d) => [d.waMessageId, d.from, d.text]), [
    ['A1', '972501111111', 'hello'],
    ['A2', '972502222222', 'via lid'],
    ['A3', '972505555555', 'mapped'],
    ['A4', '972503333333', 'disappearing'],
    ['A5', '999888777666555@lid', 'unknown lid'],
  ]);
  assert.equal(got[0].timestamp, 1712345678000, 'timestamp in ms');
  assert.equal(got[0].pushName, 'Dana');
  assert.equal(got[4].unresolvedLid, true);
});

test('keep-alive: presence "available" and the self-message while connected, none after a disconnect', async (t) => {
  const ctx = await connected(t, { env: { KEEPALIVE_PRESENCE_MS: '1000', KEEPALIVE_SELF_MESSAGE_MS: '1000' } });
  const sock = ctx.factory.last();
  await until(() => sock.calls.presence.filter((p) => p.type === 'available').length >= 2 && sock.calls.sendMessage.length >= 1, { timeout: 4000, what: 'two presence ticks and a self-message' });
  const self = sock.calls.sendMessage[0];
  assert.equal(self.jid, '972501234567@s.whatsapp.net', 'to the account itself (device part dropped)');
  assert.deepEqual(self.content, { text: '🔄' });
  assert.equal(self.options.ephemeralExpiration, 86400);
  assert.equal(fs.readFileSync(path.join(ctx.dir, 'sent.log'), 'utf8'), '', 'keep-alive messages are not messageIds');
  sock.close(428, 'lost');
  await ctx.d.wait('DISCONNECTED');
  const n = sock.calls.presence.length + sock.calls.sendMessage.length;
  const h = await ctx.call('GET', '/health');
  assert.equal(ctx.w.wa.keepalive.timers.size, 0, 'keep-alive stopped with the connection');
  assert.ok(h.json.keepalive.presence >= 2);
  assert.equal(sock.calls.presence.length + sock.calls.sendMessage.length, n);
});

test('keep-alive off with 0: nothing is sent', async (t) => {
  const ctx = await connected(t, { env: { KEEPALIVE_PRESENCE_MS: '0', KEEPALIVE_SELF_MESSAGE_MS: '0' } });
  assert.equal(ctx.w.wa.keepalive.timers.size, 0);
});

test('corrupted creds.json: AUTH_FAILURE, no connection attempt, the file left alone', async (t) => {
  const dir = tmpDir();
  const daemon = await new FakeDaemon().start();
  t.after(async () => {
    await daemon.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  fs.writeFileSync(path.join(dir, 'creds.json'), '{"noiseKey": {"private": {"type": "Buffer", "data": "AAA');
  const factory = fakeFactory();
  const ctx = await startTestWorker(t, { authDir: dir, daemon, factory });
  const ev = await daemon.wait('AUTH_FAILURE');
  assert.match(ev.data.error, /creds\.json is not valid JSON/);
  assert.equal(factory.sockets.length, 0);
  assert.equal((await ctx.call('GET', '/health')).json.status, 'auth_failure');
  assert.match(fs.readFileSync(path.join(dir, 'creds.json'), 'utf8'), /noiseKey/);

  // valid JSON but not creds
  const dir2 = tmpDir();
  t.after(() => fs.rmSync(dir2, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir2, 'creds.json'), '{"hello":1}');
  const ctx2 = await startTestWorker(t, { authDir: dir2, daemon });
  const ev2 = await daemon.wait('AUTH_FAILURE', () => true, { after: 1 });
  assert.match(ev2.data.error, /lacks or has a bad noiseKey/);
  assert.equal(ctx2.factory.sockets.length, 0);
});
