// The proxy path with the REAL worker (src/main.js, Baileys' real makeWASocket) and a
// real SOCKS5 server (Debian's microsocks). There is no internet here: the proxy cannot
// reach WhatsApp, and the worker must say so with a signed PROXY_ERROR.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { makeSocksDispatcher, parseProxyUrl } from '../src/proxy.js';
import { baseEnv, FakeDaemon, freePort, SECRET, tmpDir } from './helpers.js';
import { haveMicrosocks, spawnWorker, startMicrosocks, startSocksSpy } from './proc.js';

const skip = haveMicrosocks() ? false : 'microsocks is not installed (apt-get install microsocks)';
const USER = 'sbuser';
const PASS = 'Pr0xy-Pa55-w0rd';

async function setup(t, proxyUrl, extraEnv = {}) {
  const daemon = await new FakeDaemon().start();
  const dir = tmpDir();
  const port = await freePort();
  const w = spawnWorker(baseEnv(daemon, dir, port, { PROXY_URL: proxyUrl, PING_INTERVAL_MS: '500', ...extraEnv }));
  t.after(async () => {
    await w.stop();
    await daemon.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { daemon, dir, port, w };
}

function assertNoSecrets(text) {
  assert.ok(!text.includes(PASS), 'the proxy password is not in the worker log');
  assert.ok(!text.includes(SECRET), 'WEBHOOK_SECRET is not in the worker log');
}

test('through microsocks (socks5h): the proxy is asked for web.whatsapp.com by name, fails, and a signed PROXY_ERROR reaches the daemon', { skip, timeout: 60000 }, async (t) => {
  const msPort = await freePort();
  const ms = await startMicrosocks(msPort, { user: USER, pass: PASS });
  t.after(() => ms.stop());
  const spy = await startSocksSpy(msPort);
  t.after(() => spy.stop());
  const { daemon, w } = await setup(t, `socks5h://${USER}:${PASS}@127.0.0.1:${spy.port}`);

  const ev = await daemon.wait('PROXY_ERROR', () => true, { timeout: 30000 });
  assert.equal(daemon.rejected.length, 0, 'every event carried a valid signature');
  assert.equal(ev.sessionId, 'worker_7');
  assert.match(ev.data.error, /^proxy socks5h:\/\/\*\*\*@127\.0\.0\.1:\d+ failed: the proxy could not reach the WhatsApp server: Socks5 proxy rejected connection/);
  assert.match(ev.data.error, /target web\.whatsapp\.com:443/);
  assert.ok(!ev.data.error.includes(PASS) && !ev.data.error.includes(USER));

  // what the proxy was asked: a CONNECT to the host NAME (address type 3), i.e. the name
  // was left for the proxy to resolve - socks5h - and the worker resolved nothing itself
  const asked = spy.sessions.find((s) => s.request);
  assert.ok(asked, 'the worker spoke SOCKS5 to the proxy');
  assert.equal(asked.user, USER, 'username/password authentication');
  assert.equal(asked.authStatus, 0, 'microsocks accepted the credentials');
  assert.deepEqual(asked.request, { cmd: 1, atyp: 3, host: 'web.whatsapp.com', port: 443 });
  assert.notEqual(asked.reply, 0, 'microsocks could not connect (no internet) and said so');
  t.diagnostic(`proxy saw: CONNECT ${asked.request.host}:${asked.request.port} (atyp ${asked.request.atyp}), reply code ${asked.reply}`);
  t.diagnostic(`microsocks output: ${JSON.stringify(ms.output())}`);

  // the worker keeps running and pinging; PROXY_ERROR is not repeated at every retry
  await daemon.wait('PING', () => true, { after: 1, timeout: 5000 });
  const r = await w.stop();
  assert.deepEqual(r, { code: 0, signal: null }, 'clean exit on SIGTERM');
  assert.equal(daemon.of('PROXY_ERROR').length, 1);
  assertNoSecrets(w.output());
  assert.match(w.output(), /socks5h:\/\/\*\*\*@127\.0\.0\.1/);
});

test('a proxy that refuses: closed port -> PROXY_ERROR', { skip, timeout: 60000 }, async (t) => {
  const closed = await freePort(); // nothing listens there
  const { daemon, w } = await setup(t, `socks5h://${USER}:${PASS}@127.0.0.1:${closed}`);
  const ev = await daemon.wait('PROXY_ERROR', () => true, { timeout: 30000 });
  assert.match(ev.data.error, /the proxy refused the connection.*ECONNREFUSED 127\.0\.0\.1:\d+/);
  assert.equal(daemon.of('DISCONNECTED').length, 0, 'a proxy failure is not reported as a WhatsApp disconnect');
  assertNoSecrets(w.output());
});

test('a proxy that refuses: wrong password -> PROXY_ERROR (credentials rejected)', { skip, timeout: 60000 }, async (t) => {
  const msPort = await freePort();
  const ms = await startMicrosocks(msPort, { user: USER, pass: PASS });
  t.after(() => ms.stop());
  const wrong = 'Wr0ng-Pa55-w0rd';
  const { daemon, w } = await setup(t, `socks5h://${USER}:${wrong}@127.0.0.1:${msPort}`);
  const ev = await daemon.wait('PROXY_ERROR', () => true, { timeout: 30000 });
  assert.match(ev.data.error, /the proxy rejected the credentials: Socks5 Authentication failed/);
  assert.ok(!w.output().includes(wrong), 'the wrong password is not logged either');
  assert.ok(!ev.data.error.includes(wrong));
});

test('a proxy that accepts TCP but never answers SOCKS: PROXY_ERROR after the connect timeout', { timeout: 60000 }, async (t) => {
  const silentSrv = net.createServer(() => {}); // accepts, says nothing
  await new Promise((r) => silentSrv.listen(0, '127.0.0.1', r));
  t.after(() => {
    silentSrv.close();
  });
  const { daemon } = await setup(t, `socks5h://${USER}:${PASS}@127.0.0.1:${silentSrv.address().port}`, { WA_CONNECT_TIMEOUT_MS: '1000' });
  const ev = await daemon.wait('PROXY_ERROR', () => true, { timeout: 30000 });
  assert.match(ev.data.error, /did not (complete the SOCKS handshake|answer in time)/);
  silentSrv.closeAllConnections?.();
});

test('fetches go through the proxy too: the undici dispatcher asks microsocks for the host by name', { skip, timeout: 30000 }, async (t) => {
  const msPort = await freePort();
  const ms = await startMicrosocks(msPort, { user: USER, pass: PASS });
  t.after(() => ms.stop());
  const web = http.createServer((req, res) => res.end(`hello ${req.headers.host}`));
  await new Promise((r) => web.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => web.close(r)));
  const d = makeSocksDispatcher(parseProxyUrl(`socks5h://${USER}:${PASS}@127.0.0.1:${msPort}`));
  t.after(() => d.close());
  // "localhost" is resolved by microsocks, not here
  const res = await fetch(`http://localhost:${web.address().port}/x`, { dispatcher: d, signal: AbortSignal.timeout(10000) });
  assert.equal(await res.text(), `hello localhost:${web.address().port}`);
  // microsocks logs a successful CONNECT with the name it was given
  const deadline = Date.now() + 5000;
  while (!ms.output().includes('connected to') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  assert.match(ms.output(), new RegExp(`connected to localhost:${web.address().port}`));
  t.diagnostic(`microsocks output: ${JSON.stringify(ms.output())}`);
  // and a wrong password fails the fetch
  const bad = makeSocksDispatcher(parseProxyUrl(`socks5h://${USER}:nope-nope@127.0.0.1:${msPort}`));
  t.after(() => bad.close());
  await assert.rejects(fetch(`http://localhost:${web.address().port}/x`, { dispatcher: bad, signal: AbortSignal.timeout(10000) }));
});

// microsocks (1.0.3) logs only connections it completed ("client[N] ip: connected to
// host:port"), so with no internet its log stays empty. Where this test may use a private
// mount namespace (root, unshare), microsocks gets its own /etc/hosts in which
// web.whatsapp.com is 127.0.0.1, with a listener on :443 that closes every connection.
// The worker's own /etc/hosts is untouched: had it resolved the name itself it would
// have failed; microsocks logs the name it was asked for. Beyond the tunnel, the failed
// TLS handshake is WhatsApp's side: DISCONNECTED, not PROXY_ERROR.
function namespaceSkip() {
  if (skip) return skip;
  if (process.getuid?.() !== 0) return 'needs root for a private mount namespace and port 443';
  const r = spawnSync('unshare', ['-m', 'sh', '-c', 'mount --bind /etc/hosts /etc/hosts'], { timeout: 5000 });
  if (r.error || r.status !== 0) return 'unshare -m with a bind mount is not available';
  return false;
}

test('microsocks logs the WhatsApp host name it resolved; a failure past the tunnel is DISCONNECTED, not PROXY_ERROR', { skip: namespaceSkip(), timeout: 60000 }, async (t) => {
  const l443 = net.createServer((s) => s.destroy());
  const bound = await new Promise((resolve) => {
    l443.once('error', () => resolve(false));
    l443.listen(443, '127.0.0.1', () => resolve(true));
  });
  if (!bound) return t.skip('127.0.0.1:443 is in use');
  t.after(() => new Promise((r) => l443.close(r)));
  const dir = tmpDir('bw-hosts-');
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const hosts = path.join(dir, 'hosts');
  fs.writeFileSync(hosts, `127.0.0.1 localhost${os.EOL}127.0.0.1 web.whatsapp.com${os.EOL}`);
  const msPort = await freePort();
  const { spawn } = await import('node:child_process');
  const ms = spawn('unshare', ['-m', 'sh', '-c', `mount --bind "${hosts}" /etc/hosts && exec microsocks -i 127.0.0.1 -p ${msPort} -u ${USER} -P ${PASS}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let msOut = '';
  ms.stdout.on('data', (c) => (msOut += c));
  ms.stderr.on('data', (c) => (msOut += c));
  t.after(() => ms.kill('SIGKILL'));
  // UNREACHABLE_REPORT_MS=0: the first failure beyond the tunnel is reported at once
  const { daemon, w } = await setup(t, `socks5h://${USER}:${PASS}@127.0.0.1:${msPort}`, { UNREACHABLE_REPORT_MS: '0' });
  const d = await daemon.wait('DISCONNECTED', () => true, { timeout: 30000 });
  assert.match(d.data.reason, /TLS/);
  assert.equal(daemon.of('PROXY_ERROR').length, 0, 'the tunnel worked: not the proxy\'s fault');
  const deadline = Date.now() + 5000;
  while (!/connected to web\.whatsapp\.com:443/.test(msOut) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  assert.match(msOut, /client\[\d+\] 127\.0\.0\.1: connected to web\.whatsapp\.com:443/);
  t.diagnostic(`microsocks output: ${JSON.stringify(msOut)}`);
  assert.deepEqual(await w.stop(), { code: 0, signal: null });
});
