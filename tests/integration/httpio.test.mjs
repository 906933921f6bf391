// The HTTP server's I/O threads (HTTP_THREADS): connections spread over several threads,
// each answered with its own request's answer by the main loop; event streams that live
// on their connection's thread; and a port held by another daemon still stops start-up.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';
import { ADMIN_KEY, DAEMON, Daemon, runDaemonCheck, waitFor } from './lib.mjs';

const OPEN = '0,0,0,0,00:00-24:00';
const FAST = { PACING_COLD: OPEN, PACING_WARM: OPEN, PACING_HOT: OPEN, TYPING_MAX_MS: '0' };

// CPU ticks of each I/O thread of the daemon, by name
function httpThreadTicks(pid) {
  const out = {};
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    const comm = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
    if (!comm.startsWith('sb-http-')) continue;
    const f = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ');
    out[comm] = Number(f[11]) + Number(f[12]); // utime + stime
  }
  return out;
}

test('HTTP_THREADS=3: 32 clients at once over every thread; each answer is its own request\'s, every send is stored as asked', async () => {
  const d = await new Daemon({ env: { ...FAST, HTTP_THREADS: '3' } }).start();
  try {
    const before = httpThreadTicks(d.proc.pid);
    assert.deepEqual(Object.keys(before).sort(), ['sb-http-1', 'sb-http-2', 'sb-http-3']);
    const id = (await d.link('+972501119001')).sessionId;
    const clients = await Promise.all(Array.from({ length: 32 }, async (_, c) => {
      const sent = [];
      for (let i = 0; i < 25; i++) {
        // an answer that names its request: a lookup of an id no message has
        const probe = `msg_c${c}r${i}`;
        const g = await d.get(`/api/v1/messages/${probe}`);
        assert.equal(g.status, 404);
        assert.equal(g.json.error.message, `no message ${probe}`);
        const to = `97250${String(c * 100 + i).padStart(7, '0')}`;
        const s = await d.post('/api/v1/send', { to: `+${to}`, message: `client ${c} send ${i}`, sessionId: id });
        assert.equal(s.status, 202, s.text);
        sent.push({ messageId: s.json.messageId, to, text: `client ${c} send ${i}` });
      }
      return sent;
    }));
    const sent = clients.flat();
    assert.equal(new Set(sent.map((x) => x.messageId)).size, 800, 'every send got a message id of its own');
    for (const x of sent.filter((_, k) => k % 20 === 0)) {
      const m = await d.get(`/api/v1/messages/${x.messageId}`);
      assert.equal(m.status, 200);
      assert.equal(m.json.to, `+${x.to}`);
    }
    assert.equal(await d.metric('switchboard_http_requests_total{route="/api/v1/send",status="202"}'), 800);
    // the kernel shared the connections out: more than one thread did work
    const after = httpThreadTicks(d.proc.pid);
    const busy = Object.keys(after).filter((k) => after[k] > before[k]);
    assert.ok(busy.length >= 2, `connections reached ${busy.join(', ')} only`);
  } finally {
    await d.cleanup();
  }
});

test('HTTP_THREADS=2: an event stream gets its events from the main loop, a client that leaves is let go, a stream open at stop ends cleanly', async () => {
  const d = await new Daemon({ env: { ...FAST, HTTP_THREADS: '2' } }).start();
  try {
    const open = () => {
      const ctl = new AbortController();
      const s = { text: '', close: () => ctl.abort() };
      s.ready = fetch(`${d.url}/api/events/stream?type=session.status`, {
        headers: { 'X-API-Key': ADMIN_KEY }, signal: ctl.signal,
      }).then(async (res) => {
        s.status = res.status;
        (async () => {
          const dec = new TextDecoder();
          try { for await (const c of res.body) s.text += dec.decode(c, { stream: true }); } catch { /* closed */ }
        })();
      });
      return s;
    };
    const a = open(), b = open();
    await a.ready;
    await b.ready;
    assert.equal(a.status, 200);
    await waitFor(async () => (await d.metric('switchboard_event_streams')) === 2, { what: 'two streams' });
    const id = await d.provision({});
    await waitFor(() => a.text.includes(`"sessionId":"${id}"`) && b.text.includes(`"sessionId":"${id}"`),
      { what: 'the session events on both streams' });
    a.close();
    await waitFor(async () => (await d.metric('switchboard_event_streams')) === 1, { what: 'the closed stream let go' });
    // b stays open while the daemon stops
    assert.equal(await d.stop(), 0);
  } finally {
    await d.cleanup();
  }
});

test('a stream reader that stops reading is cut off once 4 MiB wait for it, by its thread; the daemon goes on', async () => {
  const d = await new Daemon({ env: { HTTP_THREADS: '2' } }).start();
  let sock;
  try {
    const id = (await d.link('+972501119002')).sessionId;
    // a raw connection that asks for the stream, then reads nothing more
    sock = net.connect(d.port, '127.0.0.1');
    await once(sock, 'connect');
    let got = 0, tail = '';
    sock.on('data', (b) => { got += b.length; tail = (tail + b.toString('latin1')).slice(-16); });
    sock.write(`GET /api/events/stream?type=message.received HTTP/1.1\r\nHost: x\r\nX-API-Key: ${ADMIN_KEY}\r\n\r\n`);
    await waitFor(async () => (await d.metric('switchboard_event_streams')) === 1 && got > 0, { what: 'the stream open' });
    sock.pause();
    // 4,000-byte messages received until the daemon gives up on the reader (its kernel
    // buffers hold some megabytes before the 4 MiB of the daemon's own start to fill)
    const text = 'x'.repeat(4000);
    const cut = () => /a stream reader is too far behind; its stream is closed/.test(d.log());
    let n = 0;
    while (!cut() && n < 6000) {
      const batch = Array.from({ length: 50 }, (_, k) => d.sim(id, '/sim/receive', { from: `9725${String(n + k).padStart(8, '0')}`, text }));
      for (const r of await Promise.all(batch)) assert.equal(r.status, 200);
      n += 50;
    }
    await waitFor(cut, { timeout: 30000, what: 'the slow reader cut off' });
    await waitFor(async () => (await d.metric('switchboard_event_streams')) === 0, { what: 'the stream let go' });
    // reading again: what was written arrives, ended by the last chunk of the answer
    sock.resume();
    await waitFor(() => tail.endsWith('\r\n0\r\n\r\n'), { timeout: 30000, what: 'the end of the stream' });
    assert.ok(got > 4 * 1024 * 1024, `${got} bytes`);
    assert.equal((await d.get('/health')).status, 200);
  } finally {
    sock?.destroy();
    await d.cleanup();
  }
});

test('a port another daemon holds stops start-up with one line, with one HTTP thread or several', async () => {
  const d = await new Daemon({ env: { HTTP_THREADS: '2' } }).start();
  try {
    for (const threads of ['2', '1']) {
      const other = new Daemon();
      other.port = d.port;
      const r = spawnSync(DAEMON, [], { env: { ...other.env(), HTTP_THREADS: threads }, cwd: other.dir, encoding: 'utf8', timeout: 10000 });
      fs.rmSync(other.dir, { recursive: true, force: true });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${d.port}`));
    }
    assert.equal((await d.get('/health')).status, 200, 'the first daemon still serves');
    const r = runDaemonCheck({ HTTP_THREADS: '0' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /HTTP_THREADS must be a whole number from 1 to 16/);
  } finally {
    await d.cleanup();
  }
});

test('a start-up that fails before the HTTP layer exits at once, with its stdin an open pipe', async () => {
  // the exit path stops the HTTP layer it never started: it must not touch fd 0 (it once
  // read and closed it as the I/O threads' queue, and hung on a terminal or an open pipe)
  const p = spawn(DAEMON, [], {
    env: { PATH: process.env.PATH, ENV_FILE: '/nonexistent', DATA_DIR: '/proc/switchboard-test/none' },
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  p.stderr.on('data', (b) => { stderr += b; });
  const killer = setTimeout(() => p.kill('SIGKILL'), 10000);
  const [code, signal] = await once(p, 'exit');
  clearTimeout(killer);
  p.stdin.destroy();
  assert.equal(signal, null, 'it exited by itself (not killed after 10 s)');
  assert.equal(code, 1, stderr);
  assert.match(stderr, /cannot create DATA_DIR \/proc\/switchboard-test\/none/);
});
