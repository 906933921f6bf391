// The real daemon with the REAL Baileys worker (workers/baileys, not the simulator) and a
// real SOCKS5 proxy (Debian's microsocks). There is no internet in the test environment:
// the proxy cannot reach WhatsApp, the worker reports PROXY_ERROR, and the daemon marks
// the proxy bad. Skipped when workers/baileys has no node_modules (run `npm ci` there).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { Daemon, freePort, waitFor } from './lib.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const WORKER_DIR = path.join(ROOT, 'workers', 'baileys');
const MAIN = path.join(WORKER_DIR, 'src', 'main.js');

function skipReason() {
  if (!fs.existsSync(path.join(WORKER_DIR, 'node_modules', 'baileys'))) {
    return 'workers/baileys/node_modules is missing (cd workers/baileys && npm ci)';
  }
  if (spawnSync('microsocks', ['-h'], { timeout: 5000 }).error) return 'microsocks is not installed';
  return false;
}
const skip = skipReason();

async function listening(port) {
  await waitFor(() => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  }), { what: `port ${port}`, timeout: 5000 });
}

test('real Baileys worker behind microsocks: its PROXY_ERROR reaches the daemon and the proxy is marked bad', { skip, timeout: 90000 }, async (t) => {
  const port = await freePort();
  const user = 'sbit';
  const pass = 'it-Secret-Pa55';
  const socks = spawn('microsocks', ['-i', '127.0.0.1', '-p', String(port), '-u', user, '-P', pass], { stdio: 'ignore' });
  t.after(() => socks.kill('SIGKILL'));
  await listening(port);

  const d = await new Daemon({
    env: {
      // the worker pings every 500 ms: the harness's PING_TIMEOUT_MS is 5 s
      WORKER_COMMAND: `${process.execPath} ${MAIN} --ping-ms 500`,
      WORKER_START_GRACE_MS: '2000',
      WORKER_HEALTH_TIMEOUT_MS: '3000',
      WORKER_STOP_GRACE_MS: '5000',
      // no re-check during the test: microsocks itself is up, only its way out is missing
      PROXY_RECHECK_MS: '3600000',
    },
  }).start();
  t.after(() => d.cleanup());

  const url = `socks5h://${user}:${pass}@127.0.0.1:${port}`;
  const added = await d.post('/api/proxies', { url });
  assert.equal(added.status, 201, added.text);
  assert.equal(added.json.url, `socks5h://***@127.0.0.1:${port}`);

  const id = await d.provision();
  const s0 = await d.session(id);
  assert.equal(s0.proxyId, added.json.id, 'the session runs on the microsocks proxy');

  // the worker starts, tunnels to web.whatsapp.com through microsocks, which cannot
  // reach it; the worker's signed PROXY_ERROR makes the daemon mark the proxy bad
  const px = await waitFor(async () => {
    const l = (await d.get('/api/proxies')).json.proxies;
    const p = l.find((x) => x.id === added.json.id);
    return p && p.status === 'bad' ? p : false;
  }, { what: 'proxy marked bad', timeout: 45000 });
  assert.match(px.lastError, /the proxy could not reach the WhatsApp server: Socks5 proxy rejected connection/);
  assert.match(px.lastError, /target web\.whatsapp\.com:443/);
  assert.ok(!px.lastError.includes(pass));

  // no other proxy: the session waits for one, its worker stopped
  const s = await waitFor(async () => {
    const x = await d.session(id);
    return x.status === 'disconnected' && x.reason === 'no_proxy' && x.worker === null ? x : false;
  }, { what: 'session waiting for a proxy', timeout: 20000 });
  assert.equal(s.waitingForProxy, true);
  assert.equal(await d.metric('switchboard_worker_events_total{type="PROXY_ERROR"}'), 1);
  assert.equal(await d.metric('switchboard_worker_events_total{type="rejected"}'), 0, 'every event was correctly signed');

  // the worker really was the Baileys one, stopped cleanly, and kept the password out of its log
  const wlog = fs.readFileSync(path.join(d.dir, 'data', 'logs', `${id}.log`), 'utf8');
  assert.match(wlog, /"baileys":"7\./);
  assert.match(wlog, new RegExp(`"proxy":"socks5h://\\*\\*\\*@127\\.0\\.0\\.1:${port}"`));
  assert.match(wlog, /proxy failure, PROXY_ERROR posted/);
  assert.match(wlog, /"msg":"stopped"/);
  assert.ok(!wlog.includes(pass), 'no proxy password in the worker log');
  assert.ok(!d.log().includes(pass), 'no proxy password in the daemon log');
  assert.match(d.log(), new RegExp(`worker exited session=${id} pid=\\d+ code=0 signal=0`));
});
