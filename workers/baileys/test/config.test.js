// The environment: every variable checked, one clear line and exit code 2 for a bad one;
// proxy URL parsing and masking; the real process starting and stopping cleanly.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.js';
import { makeLogger, makeScrubber } from '../src/log.js';
import { parseProxyUrl } from '../src/proxy.js';
import { baseEnv, FakeDaemon, freePort, MAIN, memoryLog, SECRET, tmpDir, until } from './helpers.js';
import { spawnWorker } from './proc.js';

const GOOD = {
  SESSION_ID: 'worker_12',
  WEBHOOK_URL: 'http://127.0.0.1:3000/webhook',
  WEBHOOK_SECRET: SECRET,
  AUTH_DIR: '/tmp/x',
  WORKER_LISTEN: '127.0.0.1:20001',
};

test('defaults', () => {
  const c = loadConfig(GOOD);
  assert.equal(c.sessionId, 'worker_12');
  assert.deepEqual(c.listen, { host: '127.0.0.1', port: 20001 });
  assert.equal(c.loginMethod, 'qr');
  assert.equal(c.proxy, null);
  assert.equal(c.pingMs, 15000);
  assert.equal(c.presenceMs, 15000);
  assert.equal(c.selfMessageMs, 600000);
  assert.equal(c.typingMaxMs, 30000);
  assert.equal(c.checkRecipient, true);
  assert.deepEqual(loadConfig({ ...GOOD, WORKER_LISTEN: '0.0.0.0:8080' }).listen, { host: '0.0.0.0', port: 8080 });
  assert.deepEqual(loadConfig({ ...GOOD, WORKER_LISTEN: '[::1]:8080' }).listen, { host: '::1', port: 8080 });
  assert.equal(loadConfig({ ...GOOD, PROXY_URL: '' }).proxy, null, 'empty PROXY_URL: direct');
  assert.equal(loadConfig({ ...GOOD, KEEPALIVE_PRESENCE_MS: '0' }).presenceMs, 0);
  assert.equal(loadConfig(GOOD, ['--ping-ms', '250']).pingMs, 250);
  const p = loadConfig({ ...GOOD, LOGIN_METHOD: 'pairing_code', PAIRING_PHONE: '+972501234567', SWITCHBOARD_INSTANCE: 'abc' });
  assert.equal(p.pairingPhone, '972501234567');
  assert.equal(loadConfig({ ...GOOD, PAIRING_PHONE: 'garbage' }).pairingPhone, null, 'ignored with qr');
});

test('every bad value names its variable', () => {
  const bad = [
    [{ SESSION_ID: undefined }, /^SESSION_ID: required/],
    [{ SESSION_ID: 'worker_0' }, /^SESSION_ID: must be worker_<n>/],
    [{ SESSION_ID: 'session_1' }, /^SESSION_ID/],
    [{ WEBHOOK_URL: 'ftp://x/y' }, /^WEBHOOK_URL: must start with http/],
    [{ WEBHOOK_URL: 'not a url' }, /^WEBHOOK_URL: not a valid URL/],
    [{ WEBHOOK_SECRET: 'abc' }, /^WEBHOOK_SECRET: must be 64 hex/],
    [{ WEBHOOK_SECRET: 'g'.repeat(64) }, /^WEBHOOK_SECRET/],
    [{ AUTH_DIR: '' }, /^AUTH_DIR: required/],
    [{ WORKER_LISTEN: '127.0.0.1' }, /^WORKER_LISTEN/],
    [{ WORKER_LISTEN: '127.0.0.1:0' }, /^WORKER_LISTEN/],
    [{ WORKER_LISTEN: '127.0.0.1:70000' }, /^WORKER_LISTEN/],
    [{ PROXY_URL: 'socks5://u:p@h:1' }, /^PROXY_URL: scheme must be socks5h:\/\/ .*\(got socks5:\/\/\)/],
    [{ PROXY_URL: 'http://h:1' }, /^PROXY_URL: scheme must be socks5h/],
    [{ PROXY_URL: 'socks5h://u:p@h' }, /^PROXY_URL: needs a port/],
    [{ PROXY_URL: 'socks5h://u:p@h:0' }, /^PROXY_URL: port/],
    [{ PROXY_URL: 'socks5h://u:p@:1080' }, /^PROXY_URL: needs a host/],
    [{ LOGIN_METHOD: 'sms' }, /^LOGIN_METHOD: must be qr or pairing_code/],
    [{ LOGIN_METHOD: 'pairing_code', PAIRING_PHONE: '12' }, /^PAIRING_PHONE: must be 8-15 digits/],
    [{ PING_INTERVAL_MS: 'fast' }, /^PING_INTERVAL_MS: must be a whole number/],
    [{ PING_INTERVAL_MS: '10' }, /^PING_INTERVAL_MS: must be in 100\.\.3600000/],
    [{ KEEPALIVE_PRESENCE_MS: '50' }, /^KEEPALIVE_PRESENCE_MS: must be 0 \(off\) or in 1000\.\./],
    [{ TYPING_MAX_MS: '70000' }, /^TYPING_MAX_MS/],
    [{ RECONNECT_MIN_MS: '5000', RECONNECT_MAX_MS: '1000' }, /^RECONNECT_MAX_MS: must be at least RECONNECT_MIN_MS/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL: must be one of/],
  ];
  for (const [over, re] of bad) {
    const env = { ...GOOD, ...over };
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    assert.throws(() => loadConfig(env), (e) => e instanceof ConfigError && re.test(e.message), JSON.stringify(over));
  }
  // the password never appears in an error, even with a scheme-like password
  assert.throws(() => loadConfig({ ...GOOD, PROXY_URL: 'socks4://user:s3cr3t-pass@host:1' }), (e) => !e.message.includes('s3cr3t-pass'));
  assert.throws(() => loadConfig({ ...GOOD, PROXY_URL: 'user:sec://ret@host:1' }), (e) => !e.message.includes('ret'));
  assert.throws(() => loadConfig(GOOD, ['--bogus']), /--bogus: unknown argument/);
});

test('proxy URL: parsed like the daemon, credentials verbatim, masked as socks5h://***@host:port', () => {
  const p = parseProxyUrl('socks5h://user:p@ss:w%rd@proxy.example.com:1080');
  assert.deepEqual({ ...p }, { host: 'proxy.example.com', port: 1080, user: 'user', pass: 'p@ss:w%rd', hasCredentials: true, masked: 'socks5h://***@proxy.example.com:1080' });
  assert.equal(parseProxyUrl('socks5h://10.0.0.1:9050/').masked, 'socks5h://10.0.0.1:9050');
  assert.equal(parseProxyUrl('socks5h://u:p@[::1]:1080').masked, 'socks5h://***@[::1]:1080');
});

test('the log never shows WEBHOOK_SECRET or the proxy password, whatever object carries them', () => {
  const dest = memoryLog();
  const pass = 'hunter2-proxy';
  const log = makeLogger({ level: 'info', secrets: [SECRET, pass], sessionId: 'worker_1', destination: dest });
  log.info({ secret: SECRET, nested: { deeper: { text: `x ${SECRET} y` } } }, 'a');
  log.warn({ err: { message: `connect to socks5h://u:${pass}@h:1 failed`, options: { proxy: { host: 'h', password: pass } } } }, `msg with ${encodeURIComponent(pass + '/')}`);
  log.info({ data: { options: { proxy: { password: 'short' } } } }, 'b');
  const text = dest.lines.join('');
  assert.ok(!text.includes(SECRET));
  assert.ok(!text.includes(pass));
  assert.ok(!text.includes('short'), 'a SOCKS error\'s options are redacted by path');
  assert.match(text, /\[redacted\]/);
  assert.equal(makeScrubber(['abc'])('abc'), 'abc', 'very short values are not scrubbed by text');
});

test('process: a bad environment is one line on stderr and exit code 2', () => {
  for (const [env, re] of [
    [{}, /^baileys-worker: invalid environment SESSION_ID: required\n$/],
    [{ ...GOOD, WEBHOOK_SECRET: 'nothex' }, /^baileys-worker: invalid environment WEBHOOK_SECRET: must be 64 hex characters.*\n$/],
    [{ ...GOOD, PROXY_URL: 'socks5://u:topsecret@h:1' }, /^baileys-worker: invalid environment PROXY_URL: .*socks5h.*\n$/],
  ]) {
    const r = spawnSync(process.execPath, [MAIN], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.split('\n').length, 2, 'exactly one line');
    assert.ok(!r.stderr.includes('topsecret'));
  }
  const dir = tmpDir();
  try {
    fs.writeFileSync(`${dir}/file`, 'x');
    const r = spawnSync(process.execPath, [MAIN], { env: { PATH: process.env.PATH, ...GOOD, AUTH_DIR: `${dir}/file` }, encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^baileys-worker: AUTH_DIR: not usable/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('process: the real worker (no proxy, no internet) pings, answers /health, and exits 0 on SIGTERM', { timeout: 60000 }, async (t) => {
  const daemon = await new FakeDaemon().start();
  const dir = tmpDir();
  t.after(async () => {
    await daemon.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const port = await freePort();
  const w = spawnWorker(baseEnv(daemon, dir, port, { PING_INTERVAL_MS: '300' }));
  t.after(() => w.stop());
  const ping = await daemon.wait('PING', () => true, { timeout: 20000 });
  assert.equal(typeof ping.data.uptimeMs, 'number');
  assert.ok(ping.data.rssBytes > 10 * 1024 * 1024);
  await daemon.wait('PING', () => true, { after: 2, timeout: 5000 });
  // no internet: WhatsApp cannot be reached. Retried inside the worker, not reported as
  // DISCONNECTED before UNREACHABLE_REPORT_MS (the daemon would restart the worker)
  const { call } = await import('./helpers.js');
  // between a failed attempt and the next one /health shows the reconnect it waits for
  // (while an attempt is under way it shows none: poll for the waiting state)
  // (until() takes a synchronous predicate: an async one would resolve at once)
  let h = null;
  for (const end = Date.now() + 20000; !h; await new Promise((ok) => setTimeout(ok, 50))) {
    const r = await call(`http://127.0.0.1:${port}`, 'GET', '/health');
    if (r.json?.lastDisconnect && typeof r.json.reconnectInMs === 'number') h = r;
    else if (Date.now() > end) throw new Error(`timed out waiting for a scheduled reconnect in /health: ${r.text}`);
  }
  assert.equal(h.status, 200);
  assert.equal(h.json.ok, true);
  assert.equal(h.json.connected, false);
  assert.equal(h.json.simulator, false);
  assert.match(h.json.lastDisconnect.reason, /ENOTFOUND web\.whatsapp\.com|EAI_AGAIN/);
  assert.equal(typeof h.json.reconnectInMs, 'number', 'a reconnect is scheduled');
  await daemon.wait('PING', () => true, { after: daemon.of('PING').length, timeout: 5000 });
  assert.equal(daemon.of('DISCONNECTED').length, 0);
  assert.equal(daemon.rejected.length, 0);
  const r = await w.stop();
  assert.deepEqual(r, { code: 0, signal: null });
  assert.match(w.output(), /"msg":"stopped"/);
  assert.ok(!w.output().includes(SECRET));
  // the log is JSON lines
  for (const line of w.output().trim().split('\n')) JSON.parse(line);
});
