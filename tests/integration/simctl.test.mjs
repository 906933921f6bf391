// The simulator's test controls (/sim/receive, /sim/send-mode) against the real
// sim-worker binary, with no daemon: a small webhook receiver in this file checks the
// signature of every event, and the test talks to the worker's command port directly.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { SIM, freePort, sign, workerKey } from './lib.mjs';

const SESSION = 'worker_41';
const KEY = workerKey(SESSION);
const PHONE = '972501234567';
const SANITIZER = /^.*(ERROR: (Address|Leak)Sanitizer|runtime error:).*$/m;

// Receives the worker's events, keeps those with a good signature and lets a test await
// the one it expects. Anything unsigned or mis-signed is kept apart and fails the test.
class Webhook {
  constructor(key) {
    this.key = key;
    this.events = [];
    this.bad = [];
    this.waiters = [];
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const why = this.check(req, raw);
        if (why) {
          this.bad.push({ why, raw });
          res.writeHead(401, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ error: { code: 'BAD_SIGNATURE', message: why } }));
          return;
        }
        const ev = JSON.parse(raw);
        ev.receivedAt = Date.now();
        this.events.push(ev);
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"ok":true,"ignored":false}');
        for (const w of [...this.waiters]) {
          if (w.pred(ev)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            clearTimeout(w.timer);
            w.resolve(ev);
          }
        }
      });
    });
  }

  check(req, raw) {
    const ts = req.headers['x-timestamp'];
    const sig = req.headers['x-signature'];
    if (req.method !== 'POST' || req.url !== '/webhook') return `unexpected ${req.method} ${req.url}`;
    if (!/^\d+$/.test(ts ?? '') || !/^sha256=[0-9a-f]{64}$/.test(sig ?? '')) return 'signature headers missing or malformed';
    if (Math.abs(Date.now() / 1000 - Number(ts)) > 300) return 'X-Timestamp too far off';
    const want = createHmac('sha256', this.key).update(`${ts}.${raw}`).digest();
    if (!timingSafeEqual(want, Buffer.from(sig.slice(7), 'hex'))) return 'X-Signature does not match';
    if (req.headers['content-type'] !== 'application/json') return 'not JSON';
    return null;
  }

  listen() {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve(this.server.address().port)));
  }

  close() {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(resolve));
  }

  of(type, pred = () => true) {
    return this.events.filter((e) => e.type === type && pred(e.data));
  }

  // The first event of type matching pred among those from index `since` on; resolves at
  // once when it has already arrived, else when it does (or fails after timeout ms).
  wait(type, pred = () => true, { timeout = 5000, since = 0 } = {}) {
    const match = (e) => e.type === type && pred(e.data);
    const seen = this.events.slice(since).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred: match, resolve };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no ${type} event within ${timeout} ms; got ${JSON.stringify(this.events.map((e) => e.type))}`));
      }, timeout);
      this.waiters.push(w);
    });
  }
}

// One sim-worker process on a free port, with its own AUTH_DIR that survives restarts.
class Sim {
  constructor(webhookPort, authDir) {
    this.webhookPort = webhookPort;
    this.authDir = authDir;
    this.stderr = '';
  }

  async start() {
    this.port = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    this.proc = spawn(SIM, ['--ping-ms', '600000', '--qr-ms', '600000'], {
      env: {
        PATH: process.env.PATH,
        SESSION_ID: SESSION,
        WEBHOOK_URL: `http://127.0.0.1:${this.webhookPort}/webhook`,
        WEBHOOK_SECRET: KEY,
        AUTH_DIR: this.authDir,
        WORKER_LISTEN: `127.0.0.1:${this.port}`,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (d) => { this.stderr += d; });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    // it logs "listening" before its first event
    const deadline = Date.now() + 10000;
    while (!/listening addr=/.test(this.stderr)) {
      if (this.proc.exitCode !== null) throw new Error(`sim-worker exited at start:\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`sim-worker did not start:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return this;
  }

  // A signed command; body may be an object or a raw string.
  async cmd(p, body = {}, { method = 'POST', signal, key = KEY } = {}) {
    const raw = method === 'GET' ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    const headers = { ...sign(key, raw), 'Content-Type': 'application/json' };
    const res = await fetch(`${this.url}${p}`, { method, headers, body: method === 'GET' ? undefined : raw, signal });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch {}
    return { status: res.status, json, text };
  }

  send(messageId, extra = {}, opts) {
    return this.cmd('/send', { messageId, to: '972507654321', text: 'hello', typingMs: 0, ...extra }, opts);
  }

  health() { return this.cmd('/health', undefined, { method: 'GET' }); }

  async stop() {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exited;
    this.proc.kill('SIGTERM');
    return this.exited;
  }
}

let hook, sim, dir;

function sentLog() {
  try {
    return fs.readFileSync(path.join(dir, 'auth', 'sent.log'), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

// The worker's events go out in order, one at a time: once an event posted after some
// action has arrived, every event that action posted has arrived too. So a test can
// prove that something was NOT posted without sleeping.
let barriers = 0;
async function barrier() {
  const text = `barrier ${++barriers}`;
  const r = await sim.cmd('/sim/receive', { from: '972500000000', text });
  assert.equal(r.status, 200, r.text);
  await hook.wait('MESSAGE_RECEIVED', (d) => d.text === text);
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-simctl-'));
  hook = new Webhook(KEY);
  const hookPort = await hook.listen();
  sim = await new Sim(hookPort, path.join(dir, 'auth')).start();
  await hook.wait('QR_CODE');
  const r = await sim.cmd('/sim/scan', { phoneNumber: PHONE });
  assert.equal(r.status, 200, r.text);
  const c = await hook.wait('CONNECTED');
  assert.equal(c.data.phoneNumber, PHONE);
});

after(async () => {
  if (sim) await sim.stop();
  if (hook) await hook.close();
  const bad = sim?.stderr.match(SANITIZER);
  if (!process.env.SB_KEEP && !bad) fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(bad, null, `sanitizer report from sim-worker: ${bad?.[0]}`);
  assert.deepEqual(hook.bad, [], 'every event was signed with the worker key');
});

test('/sim/receive posts MESSAGE_RECEIVED {from, text, waMessageId, timestamp}', async () => {
  const t0 = Date.now();
  const text = 'héllo ✓ שלום 👋';
  const r = await sim.cmd('/sim/receive', { from: '972509876543', text });
  const t1 = Date.now();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.ok, true);
  assert.match(r.json.waMessageId, /^SIMR[0-9A-F]{16}$/, 'a generated id');
  const ev = await hook.wait('MESSAGE_RECEIVED', (d) => d.waMessageId === r.json.waMessageId);
  assert.equal(ev.sessionId, SESSION);
  assert.deepEqual(Object.keys(ev.data).sort(), ['from', 'text', 'timestamp', 'waMessageId']);
  assert.equal(ev.data.from, '972509876543');
  assert.equal(ev.data.text, text, 'UTF-8 arrives intact');
  assert.ok(Number.isInteger(ev.data.timestamp), 'timestamp is an integer');
  assert.ok(ev.data.timestamp >= t0 - 5 && ev.data.timestamp <= t1 + 5, `timestamp is now in unix ms (${ev.data.timestamp})`);
  assert.equal(ev.data.timestamp, r.json.timestamp);
  assert.ok(Number.isInteger(ev.timestamp) && Math.abs(ev.timestamp - ev.data.timestamp) < 1000, 'the envelope is in ms too');

  // a given id is kept; two generated ids differ
  const given = await sim.cmd('/sim/receive', { from: '12345678', text: 'x', waMessageId: '3EB0ABCDEF' });
  assert.equal(given.status, 200, given.text);
  assert.equal(given.json.waMessageId, '3EB0ABCDEF');
  assert.equal((await hook.wait('MESSAGE_RECEIVED', (d) => d.waMessageId === '3EB0ABCDEF')).data.from, '12345678');
  const again = await sim.cmd('/sim/receive', { from: '972509876543', text });
  assert.notEqual(again.json.waMessageId, r.json.waMessageId);

  // the largest text: 4096 bytes of UTF-8 (2048 two-byte characters)
  const big = 'é'.repeat(2048);
  const b = await sim.cmd('/sim/receive', { from: '123456789012345', text: big });
  assert.equal(b.status, 200, b.text);
  assert.equal((await hook.wait('MESSAGE_RECEIVED', (d) => d.waMessageId === b.json.waMessageId)).data.text, big);
  assert.match(sim.stderr, /info sim: message received posted from=972509876543 waMessageId=SIMR[0-9A-F]{16} bytes=\d+/);
  assert.ok(!sim.stderr.includes('שלום'), 'the text is not logged');
});

test('bad bodies get a 400 that says what is wrong, and post nothing', async () => {
  const n = hook.events.length;
  const cases = [
    ['/sim/receive', '', 'BAD_JSON', /one JSON object/],
    ['/sim/receive', '{"from":', 'BAD_JSON', /one JSON object/],
    ['/sim/receive', '[]', 'BAD_JSON', /one JSON object/],
    ['/sim/receive', { text: 'hi' }, 'INVALID_PHONE', /from must be a string of 8-15 digits/],
    ['/sim/receive', { from: '1234567', text: 'hi' }, 'INVALID_PHONE', /8-15 digits/],
    ['/sim/receive', { from: '1234567890123456', text: 'hi' }, 'INVALID_PHONE', /8-15 digits/],
    ['/sim/receive', { from: '+972501234567', text: 'hi' }, 'INVALID_PHONE', /8-15 digits/],
    ['/sim/receive', { from: 972501234567, text: 'hi' }, 'INVALID_PHONE', /8-15 digits/],
    ['/sim/receive', { from: PHONE }, 'INVALID_REQUEST', /text must be a non-empty string of at most 4096 bytes of UTF-8/],
    ['/sim/receive', { from: PHONE, text: '' }, 'INVALID_REQUEST', /at most 4096 bytes/],
    ['/sim/receive', { from: PHONE, text: 7 }, 'INVALID_REQUEST', /at most 4096 bytes/],
    ['/sim/receive', { from: PHONE, text: 'é'.repeat(2048) + 'x' }, 'INVALID_REQUEST', /at most 4096 bytes/],
    // the JSON parser refuses a NUL inside a string
    ['/sim/receive', { from: PHONE, text: 'a\u0000b' }, 'BAD_JSON', /one JSON object/],
    ['/sim/receive', { from: PHONE, text: 'hi', waMessageId: '' }, 'INVALID_REQUEST', /waMessageId must be a string of 1-128 bytes/],
    ['/sim/receive', { from: PHONE, text: 'hi', waMessageId: 'x'.repeat(129) }, 'INVALID_REQUEST', /waMessageId/],
    ['/sim/receive', { from: PHONE, text: 'hi', waMessageId: 'a\nb' }, 'INVALID_REQUEST', /control characters/],
    ['/sim/receive', { from: PHONE, text: 'hi', waMessageId: null }, 'INVALID_REQUEST', /waMessageId/],
    ['/sim/receive', { from: PHONE, text: 'hi', form: 'x' }, 'INVALID_REQUEST', /unknown field 'form'/],
    ['/sim/send-mode', '', 'BAD_JSON', /one JSON object/],
    ['/sim/send-mode', {}, 'INVALID_REQUEST', /mode must be one of ok, fail, fail-retryable, silent, error500, hang/],
    ['/sim/send-mode', { mode: 'FAIL' }, 'INVALID_REQUEST', /mode must be one of/],
    ['/sim/send-mode', { mode: 3 }, 'INVALID_REQUEST', /mode must be one of/],
    ['/sim/send-mode', { mode: 'fail', count: 0 }, 'INVALID_REQUEST', /count must be an integer in 1\.\.100000/],
    ['/sim/send-mode', { mode: 'fail', count: 100001 }, 'INVALID_REQUEST', /count must be an integer in 1\.\.100000/],
    ['/sim/send-mode', { mode: 'fail', count: 1.5 }, 'INVALID_REQUEST', /count must be an integer/],
    ['/sim/send-mode', { mode: 'fail', count: '3' }, 'INVALID_REQUEST', /count must be an integer/],
    ['/sim/send-mode', { mode: 'fail', count: null }, 'INVALID_REQUEST', /count must be an integer/],
    ['/sim/send-mode', { mode: 'fail', times: 2 }, 'INVALID_REQUEST', /unknown field 'times'/],
  ];
  for (const [p, body, code, why] of cases) {
    const r = await sim.cmd(p, body);
    const name = `${p} ${typeof body === 'string' ? body : JSON.stringify(body).slice(0, 60)}`;
    assert.equal(r.status, 400, `${name}: ${r.text}`);
    assert.equal(r.json?.error?.code, code, name);
    assert.match(r.json.error.message, why, name);
  }
  // invalid UTF-8 never gets past the JSON parser
  const raw = Buffer.concat([Buffer.from('{"from":"972501234567","text":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
  const ts = Math.floor(Date.now() / 1000);
  const sig = createHmac('sha256', KEY).update(Buffer.concat([Buffer.from(`${ts}.`), raw])).digest('hex');
  const u = await fetch(`${sim.url}/sim/receive`, { method: 'POST', headers: { 'X-Timestamp': String(ts), 'X-Signature': `sha256=${sig}` }, body: raw });
  assert.equal(u.status, 400);
  assert.equal((await u.json()).error.code, 'BAD_JSON');
  // unsigned, wrongly signed, wrong method
  assert.equal((await fetch(`${sim.url}/sim/receive`, { method: 'POST', body: '{}' })).status, 401);
  assert.equal((await sim.cmd('/sim/send-mode', { mode: 'fail' }, { key: workerKey('worker_42') })).status, 401);
  const g = await sim.cmd('/sim/send-mode', undefined, { method: 'GET' });
  assert.equal(g.status, 405);
  // nothing was posted, and the mode did not change
  await barrier();
  assert.deepEqual(hook.events.slice(n).map((e) => e.type), ['MESSAGE_RECEIVED']);
  assert.equal((await sim.health()).json.sendMode, 'ok');
});

test('/sim/receive while not connected -> 409; after /sim/reconnect it works again', async () => {
  assert.equal((await sim.cmd('/sim/disconnect', { loggedOut: false })).status, 200);
  await hook.wait('DISCONNECTED', (d) => d.loggedOut === false);
  const r = await sim.cmd('/sim/receive', { from: PHONE, text: 'hi' });
  assert.equal(r.status, 409);
  assert.equal(r.json.error.code, 'NOT_CONNECTED');
  const since = hook.events.length;
  assert.equal((await sim.cmd('/sim/reconnect')).status, 200);
  await hook.wait('CONNECTED', () => true, { since });
  await barrier();
});

test('send mode ok (the default): recorded, MESSAGE_SENT after typingMs', async () => {
  const r = await sim.send('m-ok');
  assert.equal(r.status, 200, r.text);
  assert.match(r.json.waMessageId, /^SIM[0-9A-F]{16}$/);
  const ev = await hook.wait('MESSAGE_SENT', (d) => d.messageId === 'm-ok');
  assert.equal(ev.data.waMessageId, r.json.waMessageId);
  assert.ok(sentLog().includes('m-ok'));

  const t0 = Date.now();
  const typed = await sim.send('m-typing', { typingMs: 400 });
  assert.equal(typed.status, 200);
  assert.ok(sentLog().includes('m-typing'), 'recorded before the answer');
  const late = await hook.wait('MESSAGE_SENT', (d) => d.messageId === 'm-typing');
  assert.ok(late.receivedAt - t0 >= 390, `MESSAGE_SENT waited for typingMs (${late.receivedAt - t0} ms)`);
});

test('send mode fail: 200, MESSAGE_FAILED retryable:false, not recorded; count ends it', async () => {
  const m = await sim.cmd('/sim/send-mode', { mode: 'fail', count: 1 });
  assert.equal(m.status, 200, m.text);
  assert.deepEqual(m.json, { ok: true, mode: 'fail', count: 1 });
  const before0 = sentLog();

  const r = await sim.send('m-f1');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.ok, true);
  assert.equal(r.json.duplicate, undefined);
  const ev = await hook.wait('MESSAGE_FAILED', (d) => d.messageId === 'm-f1');
  assert.deepEqual(ev.data, { messageId: 'm-f1', error: 'simulated permanent failure', retryable: false });
  assert.deepEqual(sentLog(), before0, 'a failed message is not recorded');
  assert.match(sim.stderr, /info sim: message failed \(send mode fail\) messageId=m-f1 retryable=false/);
  assert.match(sim.stderr, /info sim: send mode back to ok, count used up previous=fail/);

  // the count is used up: the daemon's retry of the same id really sends it
  assert.equal((await sim.health()).json.sendMode, 'ok');
  const again = await sim.send('m-f1');
  assert.equal(again.status, 200);
  assert.equal(again.json.duplicate, undefined, 'not a duplicate: it was never sent');
  await hook.wait('MESSAGE_SENT', (d) => d.messageId === 'm-f1');
  assert.equal(sentLog().filter((x) => x === 'm-f1').length, 1);
  await barrier();
  assert.equal(hook.of('MESSAGE_FAILED', (d) => d.messageId === 'm-f1').length, 1);
});

test('send mode fail-retryable for a count of 2, then ok', async () => {
  assert.equal((await sim.cmd('/sim/send-mode', { mode: 'fail-retryable', count: 2 })).status, 200);
  for (const id of ['m-r1', 'm-r2']) {
    assert.equal((await sim.send(id)).status, 200);
    const ev = await hook.wait('MESSAGE_FAILED', (d) => d.messageId === id);
    assert.deepEqual(ev.data, { messageId: id, error: 'simulated temporary failure', retryable: true });
  }
  assert.equal((await sim.send('m-r3')).status, 200);
  await hook.wait('MESSAGE_SENT', (d) => d.messageId === 'm-r3');
  const log = sentLog();
  assert.ok(!log.includes('m-r1') && !log.includes('m-r2') && log.includes('m-r3'));
});

test('a repeat of a sent messageId takes the duplicate path whatever the mode, and uses no count', async () => {
  assert.equal((await sim.cmd('/sim/send-mode', { mode: 'fail', count: 1 })).status, 200);
  const since = hook.events.length;
  const dup = await sim.send('m-ok');
  assert.equal(dup.status, 200);
  assert.equal(dup.json.duplicate, true);
  await hook.wait('MESSAGE_SENT', (d) => d.messageId === 'm-ok', { since });
  const h = (await sim.health()).json;
  assert.equal(h.sendMode, 'fail', 'the repeat did not use the count');
  assert.equal(h.sendModeLeft, 1);
  assert.equal((await sim.send('m-f2')).status, 200);
  await hook.wait('MESSAGE_FAILED', (d) => d.messageId === 'm-f2');
  await barrier();
  assert.equal(hook.of('MESSAGE_FAILED', (d) => d.messageId === 'm-ok').length, 0);
  assert.equal(sentLog().filter((x) => x === 'm-ok').length, 1);
});

test('send mode silent: recorded, no MESSAGE_SENT; the repeat posts it exactly once', async () => {
  assert.equal((await sim.cmd('/sim/send-mode', { mode: 'silent' })).status, 200);
  const r = await sim.send('m-s', { typingMs: 50 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.duplicate, undefined);
  assert.ok(sentLog().includes('m-s'), 'recorded: it counts as sent');
  // the mode has no count: it stays until changed
  assert.equal((await sim.health()).json.sendMode, 'silent');
  assert.equal((await sim.cmd('/sim/send-mode', { mode: 'ok' })).json.count, null);
  await barrier();
  // past the typing delay as well
  await new Promise((res) => setTimeout(res, 100));
  await barrier();
  assert.equal(hook.of('MESSAGE_SENT', (d) => d.messageId === 'm-s').length, 0, 'MESSAGE_SENT withheld');
  assert.match(sim.stderr, /info sim: message accepted, MESSAGE_SENT withheld \(send mode silent\) messageId=m-s/);

  const again = await sim.send('m-s');
  assert.equal(again.status, 200);
  assert.equal(again.json.duplicate, true);
  assert.equal(again.json.waMessageId, r.json.waMessageId);
  const ev = await hook.wait('MESSAGE_SENT', (d) => d.messageId === 'm-s');
  assert.equal(ev.data.waMessageId, r.json.waMessageId);
  await barrier();
  assert.equal(hook.of('MESSAGE_SENT', (d) => d.messageId === 'm-s').length, 1);
  assert.equal(sentLog().filter((x) => x === 'm-s').length, 1);
});

test('send mode error500: 500, nothing recorded or posted', async () => {
  assert.equal((await sim.cmd('/sim/send-mode', { mode: 'error500', count: 1 })).status, 200);
  const before0 = fs.readFileSync(path.join(dir, 'auth', 'sent.log'), 'utf8');
  const since = hook.events.length;
  const r = await sim.send('m-e');
  assert.equal(r.status, 500);
  assert.equal(r.json.error.code, 'SIMULATED_ERROR');
  assert.match(r.json.error.message, /nothing was sent/);
  assert.equal(fs.readFileSync(path.join(dir, 'auth', 'sent.log'), 'utf8'), before0, 'sent.log unchanged');
  await barrier();
  assert.deepEqual(hook.events.slice(since).map((e) => e.type), ['MESSAGE_RECEIVED'], 'only the barrier');
  assert.match(sim.stderr, /info sim: message refused with 500 \(send mode error500\) messageId=m-e/);
  // the retry goes out
  assert.equal((await sim.send('m-e')).status, 200);
  await hook.wait('MESSAGE_SENT', (d) => d.messageId === 'm-e');
});

test('send mode hang: no answer, nothing sent; SIGTERM still exits cleanly; a restart reconnects in mode ok', async () => {
  assert.equal((await sim.cmd('/sim/send-mode', { mode: 'hang' })).status, 200);
  const since = hook.events.length;

  // the bounded "no answer" check: given up after 300 ms
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 300);
  const t0 = Date.now();
  await assert.rejects(sim.send('m-h1', {}, { signal: ac.signal }), { name: 'AbortError' });
  clearTimeout(timer);
  assert.ok(Date.now() - t0 >= 290);
  // and one left waiting until the worker exits
  let settled = null;
  const pending = sim.send('m-h2').then(
    (r) => { settled = { answered: r.status }; },
    (e) => { settled = { error: e.cause?.code || e.message }; },
  );
  const h = await (async () => {
    for (;;) {
      const x = (await sim.health()).json;
      if (x.heldSends === 2) return x;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  assert.equal(h.sendMode, 'hang');
  assert.equal(settled, null);
  const log = sentLog();
  assert.ok(!log.includes('m-h1') && !log.includes('m-h2'), 'nothing was sent');
  await barrier();
  assert.deepEqual(hook.events.slice(since).map((e) => e.type), ['MESSAGE_RECEIVED'], 'only the barrier');
  assert.match(sim.stderr, /info sim: message held without an answer \(send mode hang\) messageId=m-h2 held=2/);

  const exit = await sim.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, sim.stderr);
  await pending;
  assert.ok(settled && !('answered' in settled), `the held request ended without an answer: ${JSON.stringify(settled)}`);
  assert.match(sim.stderr, /held \/send requests dropped unanswered at exit count=2/);
  assert.doesNotMatch(sim.stderr, SANITIZER);

  // a restart links again from AUTH_DIR (CONNECTED, no QR) and forgets the mode
  const stderr1 = sim.stderr;
  const restartedAt = hook.events.length;
  sim = await new Sim(sim.webhookPort, sim.authDir).start();
  const c = await hook.wait('CONNECTED', () => true, { since: restartedAt });
  assert.equal(c.data.phoneNumber, PHONE);
  assert.equal((await sim.health()).json.sendMode, 'ok');
  const r = await sim.send('m-h1');
  assert.equal(r.status, 200);
  assert.equal(r.json.duplicate, undefined);
  await hook.wait('MESSAGE_SENT', (d) => d.messageId === 'm-h1', { since: restartedAt });
  assert.equal(hook.of('QR_CODE').length, 1, 'no new QR after the restart');
  assert.ok(sentLog().includes('m-ok') && sentLog().includes('m-h1'));
  sim.stderr = stderr1 + sim.stderr; // the after() hook checks both runs
});

test('stop delay: a SIGTERM exits that much later, a second one does not shorten it; bad bodies get a 400', async () => {
  for (const [body, why] of [[{}, /ms must be an integer/], [{ ms: -1 }, /0\.\.600000/], [{ ms: 600001 }, /0\.\.600000/], [{ ms: '5' }, /integer/], [{ ms: 5, x: 1 }, /x/]]) {
    const r = await sim.cmd('/sim/stop-delay', body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.match(r.json.error.message, why);
  }
  const r = await sim.cmd('/sim/stop-delay', { ms: 800 });
  assert.deepEqual([r.status, r.json], [200, { ok: true, ms: 800 }]);
  const t0 = Date.now();
  sim.proc.kill('SIGTERM');
  await new Promise((res) => setTimeout(res, 100));
  sim.proc.kill('SIGTERM');
  assert.equal(sim.proc.exitCode, null, 'still running after the signals');
  assert.equal((await sim.health()).status, 200, 'and still answering');
  const exit = await sim.exited;
  assert.ok(Date.now() - t0 >= 790, `exited after ${Date.now() - t0} ms, not before the delay`);
  assert.deepEqual(exit, { code: 0, signal: null }, sim.stderr);
  assert.match(sim.stderr, /stopping signal=TERM delay_ms=800/);
});
