// Running the real worker (src/main.js, real Baileys) as a child process, and a SOCKS5
// "spy" that sits in front of a real SOCKS5 server and records what the client asked it.
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { MAIN } from './helpers.js';

export function haveMicrosocks() {
  const r = spawnSync('microsocks', ['-h'], { encoding: 'utf8', timeout: 5000 });
  return !r.error;
}

// microsocks on a loopback port; .output() is everything it printed.
export async function startMicrosocks(port, { user, pass } = {}) {
  const args = ['-i', '127.0.0.1', '-p', String(port)];
  if (user) args.push('-u', user, '-P', pass);
  const p = spawn('microsocks', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  // ready when it accepts a connection
  const end = Date.now() + 5000;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (p.exitCode !== null || Date.now() > end) throw new Error(`microsocks did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    proc: p,
    output: () => out,
    stop: () =>
      new Promise((resolve) => {
        if (p.exitCode !== null) return resolve();
        p.once('exit', () => resolve());
        p.kill('SIGTERM');
      }),
  };
}

// A TCP relay to 127.0.0.1:upstreamPort that parses the SOCKS5 conversation passing
// through: the CONNECT request the client sent (address type, host, port) and the reply
// code the server gave. It records no password.
export async function startSocksSpy(upstreamPort) {
  const sessions = [];
  const server = net.createServer((client) => {
    const rec = { methods: null, user: null, request: null, reply: null };
    sessions.push(rec);
    const up = net.connect(upstreamPort, '127.0.0.1');
    let cbuf = Buffer.alloc(0);
    let cstage = 'greeting';
    let sbuf = Buffer.alloc(0);
    let sstage = 'method';
    client.on('data', (d) => {
      up.write(d);
      cbuf = Buffer.concat([cbuf, d]);
      for (;;) {
        if (cstage === 'greeting') {
          if (cbuf.length < 2 || cbuf.length < 2 + cbuf[1]) return;
          rec.methods = [...cbuf.subarray(2, 2 + cbuf[1])];
          cbuf = cbuf.subarray(2 + cbuf[1]);
          cstage = 'next';
        } else if (cstage === 'next') {
          if (cbuf.length < 1) return;
          cstage = cbuf[0] === 0x01 ? 'auth' : 'request';
        } else if (cstage === 'auth') {
          if (cbuf.length < 2) return;
          const ul = cbuf[1];
          if (cbuf.length < 3 + ul) return;
          const pl = cbuf[2 + ul];
          if (cbuf.length < 3 + ul + pl) return;
          rec.user = cbuf.subarray(2, 2 + ul).toString();
          cbuf = cbuf.subarray(3 + ul + pl);
          cstage = 'request';
        } else if (cstage === 'request') {
          if (cbuf.length < 5) return;
          const atyp = cbuf[3];
          let len;
          let host;
          if (atyp === 1) {
            len = 4 + 4 + 2;
            if (cbuf.length < len) return;
            host = [...cbuf.subarray(4, 8)].join('.');
          } else if (atyp === 3) {
            len = 5 + cbuf[4] + 2;
            if (cbuf.length < len) return;
            host = cbuf.subarray(5, 5 + cbuf[4]).toString();
          } else {
            len = 4 + 16 + 2;
            if (cbuf.length < len) return;
            host = cbuf.subarray(4, 20).toString('hex');
          }
          rec.request = { cmd: cbuf[1], atyp, host, port: cbuf.readUInt16BE(len - 2) };
          cbuf = Buffer.alloc(0);
          cstage = 'data';
        } else return;
      }
    });
    up.on('data', (d) => {
      client.write(d);
      sbuf = Buffer.concat([sbuf, d]);
      for (;;) {
        if (sstage === 'method') {
          if (sbuf.length < 2) return;
          sstage = sbuf[1] === 0x02 ? 'auth' : 'reply';
          sbuf = sbuf.subarray(2);
        } else if (sstage === 'auth') {
          if (sbuf.length < 2) return;
          rec.authStatus = sbuf[1];
          sbuf = sbuf.subarray(2);
          sstage = 'reply';
        } else if (sstage === 'reply') {
          if (sbuf.length < 2) return;
          rec.reply = sbuf[1];
          sstage = 'data';
          return;
        } else return;
      }
    });
    const close = () => {
      client.destroy();
      up.destroy();
    };
    client.on('error', close);
    up.on('error', close);
    client.on('close', close);
    up.on('close', close);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { port: server.address().port, sessions, stop: () => new Promise((r) => server.close(() => r())) };
}

// The real worker as a child process. Resolves at spawn; .exited resolves {code, signal}.
export function spawnWorker(env) {
  const p = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => p.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    proc: p,
    exited,
    output: () => out,
    async stop(timeoutMs = 8000) {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}
