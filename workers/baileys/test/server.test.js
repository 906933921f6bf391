// The command API, answered like the simulator's (workers/sim/simcmd.c), against an
// in-process worker with a fake Baileys socket and a signature-checking fake daemon.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { waMessageIdFor } from '../src/wa.js';
import { call, fakeFactory, hmacHex, SECRET, startTestWorker, until } from './helpers.js';

async function connected(t, opts = {}) {
  const ctx = await startTestWorker(t, opts);
  await until(() => ctx.factory.last(), { what: 'socket created' });
  ctx.factory.last().open();
  await ctx.d.wait('CONNECTED');
  return ctx;
}

test('signature checks: unsigned, wrong key, bad signature and stale timestamp are 401 before routing', async (t) => {
  const ctx = await startTestWorker(t);
  const body = JSON.stringify({ messageId: 'm1', to: '972501234567', text: 'hi' });
  const unsigned = await fetch(`${ctx.base}/send`, { method: 'POST', body });
  assert.equal(unsigned.status, 401);
  assert.equal((await unsigned.json()).error.code, 'BAD_SIGNATURE');
  for (const o of [
    { secret: '1'.repeat(64) },
    { sig: `sha256=${'0'.repeat(64)}` },
    // well past the 300 s window: a second that ticks during the request must not matter
    { ts: Math.floor(Date.now() / 1000) - 305 },
    { ts: Math.floor(Date.now() / 1000) + 305 },
    { ts: 'yesterday' },
  ]) {
    const r = await call(ctx.base, 'POST', '/send', undefined, { raw: body, ...o });
    assert.equal(r.status, 401, JSON.stringify(o));
    assert.equal(r.json.error.code, 'BAD_SIGNATURE');
  }
  // a signature over a different body does not carry over
  const ts = String(Math.floor(Date.now() / 1000));
  const r = await call(ctx.base, 'POST', '/send', undefined, { raw: body, ts, sig: `sha256=${hmacHex(SECRET, `${ts}.{}`)}` });
  assert.equal(r.status, 401);
  // unknown paths are not revealed to an unsigned caller
  assert.equal((await fetch(`${ctx.base}/nope`)).status, 401);
  // GET signs the empty body
  const h = await call(ctx.base, 'GET', '/health');
  assert.equal(h.status, 200);
  assert.equal(ctx.factory.last().calls.sendMessage.length, 0);
});

test('routing: 404 for an unknown command, 405 with Allow for a wrong method', async (t) => {
  const ctx = await startTestWorker(t);
  const nf = await ctx.call('POST', '/sim/scan', {});
  assert.equal(nf.status, 404);
  assert.equal(nf.json.error.code, 'NOT_FOUND');
  const m1 = await ctx.call('GET', '/send');
  assert.equal(m1.status, 405);
  assert.equal(m1.headers.get('allow'), 'POST');
  const m2 = await ctx.call('POST', '/health', {});
  assert.equal(m2.status, 405);
  assert.equal(m2.headers.get('allow'), 'GET');
  assert.equal(m2.json.error.code, 'METHOD_NOT_ALLOWED');
});

test('a body over 64 KiB is 413 TOO_LARGE, with or without Content-Length', async (t) => {
  const ctx = await startTestWorker(t);
  const big = JSON.stringify({ messageId: 'm', to: '972501234567', text: 'x'.repeat(70 * 1024) });
  const r = await ctx.call('POST', '/send', undefined, { raw: big });
  assert.equal(r.status, 413);
  assert.equal(r.json.error.code, 'TOO_LARGE');
  // chunked, no Content-Length: counted as it arrives
  const res = await new Promise((resolve, reject) => {
    const req = http.request(`${ctx.base}/send`, { method: 'POST', headers: { 'Transfer-Encoding': 'chunked', 'X-Timestamp': '1', 'X-Signature': 'x' } }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode, body: b }));
    });
    req.on('error', reject);
    for (let i = 0; i < 20; i++) req.write('y'.repeat(4096));
    req.end();
  });
  assert.equal(res.status, 413);
  // exactly 64 KiB is fine (it reaches the JSON check)
  const edge = await ctx.call('POST', '/send', undefined, { raw: ' '.repeat(64 * 1024) });
  assert.equal(edge.status, 400);
  assert.equal(edge.json.error.code, 'BAD_JSON');
});

test('/send field checks: 400 BAD_JSON, INVALID_REQUEST, INVALID_PHONE (as the simulator)', async (t) => {
  const ctx = await connected(t);
  const cases = [
    [undefined, '{not json', 'BAD_JSON'],
    [undefined, '[1,2]', 'BAD_JSON'],
    [undefined, '', 'BAD_JSON'],
    [{ to: '972501234567', text: 'hi' }, null, 'INVALID_REQUEST'],
    [{ messageId: '', to: '972501234567', text: 'hi' }, null, 'INVALID_REQUEST'],
    [{ messageId: 'a'.repeat(129), to: '972501234567', text: 'hi' }, null, 'INVALID_REQUEST'],
    [{ messageId: 'bad\nid', to: '972501234567', text: 'hi' }, null, 'INVALID_REQUEST'],
    [{ messageId: 7, to: '972501234567', text: 'hi' }, null, 'INVALID_REQUEST'],
    [{ messageId: 'm', to: '+972501234567', text: 'hi' }, null, 'INVALID_PHONE'],
    [{ messageId: 'm', to: '1234567', text: 'hi' }, null, 'INVALID_PHONE'],
    [{ messageId: 'm', to: 972501234567, text: 'hi' }, null, 'INVALID_PHONE'],
    [{ messageId: 'm', to: '972501234567', text: '' }, null, 'INVALID_REQUEST'],
    [{ messageId: 'm', to: '972501234567', text: 'a\u0000b' }, null, 'INVALID_REQUEST'],
    [{ messageId: 'm', to: '972501234567' }, null, 'INVALID_REQUEST'],
    [{ messageId: 'm', to: '972501234567', text: 'hi', typingMs: -1 }, null, 'INVALID_REQUEST'],
    [{ messageId: 'm', to: '972501234567', text: 'hi', typingMs: 60001 }, null, 'INVALID_REQUEST'],
    [{ messageId: 'm', to: '972501234567', text: 'hi', typingMs: 1.5 }, null, 'INVALID_REQUEST'],
    [{ messageId: 'm', to: '972501234567', text: 'hi', typingMs: null }, null, 'INVALID_REQUEST'],
  ];
  for (const [body, raw, code] of cases) {
    const r = await ctx.call('POST', '/send', body, raw === null ? {} : { raw });
    assert.equal(r.status, 400, JSON.stringify(body ?? raw));
    assert.equal(r.json.error.code, code, JSON.stringify(body ?? raw));
  }
  assert.equal(ctx.factory.last().calls.sendMessage.length, 0, 'nothing sent');
  // 128 bytes of UTF-8 is the limit, in bytes not characters
  const ok = await ctx.call('POST', '/send', { messageId: 'א'.repeat(64), to: '972501234567', text: 'hi' });
  assert.equal(ok.status, 200);
  const tooLong = await ctx.call('POST', '/send', { messageId: 'א'.repeat(65), to: '972501234567', text: 'hi' });
  assert.equal(tooLong.status, 400);
});

test('/health before and after connecting; /send while not connected is 409 NOT_CONNECTED', async (t) => {
  const ctx = await startTestWorker(t);
  await until(() => ctx.factory.last(), { what: 'socket created' });
  const h0 = await ctx.call('GET', '/health');
  assert.equal(h0.status, 200);
  assert.equal(h0.json.ok, true);
  assert.equal(h0.json.simulator, false);
  assert.equal(h0.json.connected, false);
  assert.equal(h0.json.status, 'connecting');
  assert.equal(h0.json.sessionId, 'worker_7');
  assert.equal(typeof h0.json.uptimeMs, 'number');
  assert.equal(h0.json.proxy, null);
  assert.match(h0.json.baileysVersion, /^7\./);
  const r = await ctx.call('POST', '/send', { messageId: 'm1', to: '972501234567', text: 'hi' });
  assert.equal(r.status, 409);
  assert.equal(r.json.error.code, 'NOT_CONNECTED');

  ctx.factory.last().qr();
  await ctx.d.wait('QR_CODE');
  assert.equal((await ctx.call('GET', '/health')).json.status, 'qr');
  ctx.factory.last().open({ phone: '972501112233', name: 'Shop' });
  const c = await ctx.d.wait('CONNECTED');
  assert.deepEqual(c.data, { phoneNumber: '972501112233', name: 'Shop' });
  const h1 = await ctx.call('GET', '/health');
  assert.equal(h1.json.connected, true);
  assert.equal(h1.json.status, 'connected');
  assert.equal(h1.json.linked, true);
  assert.equal(h1.json.phoneNumber, '972501112233');
});

test('/send: 200 with the waMessageId at once, typing (capped) then sendMessage, then a signed MESSAGE_SENT', async (t) => {
  const ctx = await connected(t, { env: { TYPING_MAX_MS: '300' } });
  const sock = ctx.factory.last();
  const t0 = Date.now();
  const r = await ctx.call('POST', '/send', { messageId: 'msg-1', to: '972509876543', text: 'שלום', typingMs: 60000 });
  assert.equal(r.status, 200);
  assert.equal(r.json.ok, true);
  const wa = waMessageIdFor(SECRET, 'worker_7', 'msg-1');
  assert.equal(r.json.waMessageId, wa);
  assert.match(wa, /^3EB0[0-9A-F]{18}$/);
  const sent = await ctx.d.wait('MESSAGE_SENT', (d) => d.messageId === 'msg-1', { timeout: 5000 });
  assert.deepEqual(sent.data, { messageId: 'msg-1', waMessageId: wa });
  assert.equal(sent.sessionId, 'worker_7');
  assert.ok(Math.abs(sent.timestamp - Date.now()) < 10000, 'timestamp in ms');
  assert.ok(Date.now() - t0 < 3000, 'typing capped by TYPING_MAX_MS');
  const [m] = sock.calls.sendMessage;
  assert.equal(m.jid, '972509876543@s.whatsapp.net');
  assert.deepEqual(m.content, { text: 'שלום' });
  assert.equal(m.options.messageId, wa);
  const types = sock.calls.presence.filter((p) => p.jid === m.jid).map((p) => p.type);
  assert.deepEqual(types, ['composing', 'paused']);
  const composing = sock.calls.presence.find((p) => p.type === 'composing');
  const paused = sock.calls.presence.find((p) => p.type === 'paused');
  assert.ok(paused.at - composing.at >= 250, `typed for ${paused.at - composing.at} ms`);
  assert.ok(m.at >= paused.at, 'sent after the typing');
  assert.deepEqual(sock.calls.onWhatsApp, ['972509876543@s.whatsapp.net']);
  assert.equal(ctx.d.rejected.length, 0, 'every event was signed correctly');
  // typingMs 0: no presence at all
  await ctx.call('POST', '/send', { messageId: 'msg-2', to: '972509876543', text: 'b', typingMs: 0 });
  await ctx.d.wait('MESSAGE_SENT', (d) => d.messageId === 'msg-2');
  assert.equal(sock.calls.presence.length, 2);
});

test('/send outcomes: not on WhatsApp -> MESSAGE_FAILED not retryable; a closed connection -> retryable, and the retry sends', async (t) => {
  let fail = true;
  const factory = fakeFactory({
    onWhatsApp: async (jid) => (jid.startsWith('972500000000') ? [] : [{ jid, exists: true }]),
    sendMessage: async (c) => {
      if (c.content.text === 'flaky' && fail) {
        fail = false;
        throw Object.assign(new Error('Connection Closed'), { output: { statusCode: 428 } });
      }
      return { key: { id: c.options.messageId }, message: { conversation: c.content.text } };
    },
  });
  const ctx = await connected(t, { factory });
  const sock = ctx.factory.last();
  const r1 = await ctx.call('POST', '/send', { messageId: 'nobody', to: '972500000000', text: 'hi' });
  assert.equal(r1.status, 200);
  const f1 = await ctx.d.wait('MESSAGE_FAILED', (d) => d.messageId === 'nobody');
  assert.deepEqual(f1.data, { messageId: 'nobody', error: 'the number is not on WhatsApp', retryable: false });
  assert.equal(sock.calls.sendMessage.length, 0);

  await ctx.call('POST', '/send', { messageId: 'flaky-1', to: '972501111111', text: 'flaky' });
  const f2 = await ctx.d.wait('MESSAGE_FAILED', (d) => d.messageId === 'flaky-1');
  assert.equal(f2.data.retryable, true);
  assert.match(f2.data.error, /Connection Closed/);
  // a failed id is not recorded: the daemon's retry sends it
  const again = await ctx.call('POST', '/send', { messageId: 'flaky-1', to: '972501111111', text: 'flaky' });
  assert.equal(again.json.duplicate, undefined);
  await ctx.d.wait('MESSAGE_SENT', (d) => d.messageId === 'flaky-1');
  assert.equal(sock.calls.sendMessage.filter((c) => c.content.text === 'flaky').length, 2);
  // the recipient check is cached
  assert.equal(sock.calls.onWhatsApp.filter((j) => j.startsWith('972501111111')).length, 1);
});

test('/logout: 200, DISCONNECTED loggedOut, Baileys auth files removed, sent.log kept', async (t) => {
  const ctx = await connected(t);
  await ctx.call('POST', '/send', { messageId: 'before-logout', to: '972501234567', text: 'x' });
  await ctx.d.wait('MESSAGE_SENT');
  await until(() => fs.existsSync(path.join(ctx.dir, 'creds.json')), { what: 'creds.json written' });
  fs.writeFileSync(path.join(ctx.dir, 'session-972501234567.0.json'), '{}');
  fs.writeFileSync(path.join(ctx.dir, 'operator-notes.txt'), 'keep me');
  const r = await ctx.call('POST', '/logout', {});
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { ok: true });
  const d = await ctx.d.wait('DISCONNECTED');
  assert.deepEqual(d.data, { reason: 'logged out by request', statusCode: 401, loggedOut: true });
  assert.equal(ctx.factory.last().calls.logout, 1);
  const left = fs.readdirSync(ctx.dir).sort();
  assert.deepEqual(left, ['operator-notes.txt', 'sent.log']);
  assert.equal(fs.readFileSync(path.join(ctx.dir, 'sent.log'), 'utf8'), 'before-logout\n');
  assert.equal(ctx.d.of('DISCONNECTED').length, 1, 'one DISCONNECTED, not one more from the socket closing');
  const h = await ctx.call('GET', '/health');
  assert.equal(h.json.status, 'logged_out');
  assert.equal(h.json.connected, false);
  // logged out: no reconnect, and no more sends
  assert.equal(h.json.reconnectInMs, null);
  assert.equal((await ctx.call('POST', '/send', { messageId: 'after', to: '972501234567', text: 'x' })).status, 409);
});

test('/pairing-code: 200 {code} and a PAIRING_CODE event; 400 for a bad phone; 409 once linked', async (t) => {
  const ctx = await startTestWorker(t);
  await until(() => ctx.factory.last(), { what: 'socket' });
  const bad = await ctx.call('POST', '/pairing-code', { phone: '12ab' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, 'INVALID_PHONE');
  assert.equal((await ctx.call('POST', '/pairing-code', undefined, { raw: 'nope' })).json.error.code, 'BAD_JSON');
  // asked before WhatsApp is at the login stage: waits for it
  const pending = ctx.call('POST', '/pairing-code', { phone: '+972501234567' });
  setTimeout(() => ctx.factory.last().qr(), 100);
  const r = await pending;
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { ok: true, code: 'ABCD1234' });
  const ev = await ctx.d.wait('PAIRING_CODE');
  assert.deepEqual(ev.data, { code: 'ABCD1234' });
  assert.deepEqual(ctx.factory.last().calls.pairing, ['972501234567']);
  assert.equal(ctx.d.of('PAIRING_CODE').length, 1, 'one code for one request');
  assert.equal(ctx.d.of('QR_CODE').length, 0, 'a pairing-code login shows no QR');
  ctx.factory.last().open();
  await ctx.d.wait('CONNECTED');
  const again = await ctx.call('POST', '/pairing-code', { phone: '972501234567' });
  assert.equal(again.status, 409);
  assert.equal(again.json.error.code, 'ALREADY_LINKED');
});
