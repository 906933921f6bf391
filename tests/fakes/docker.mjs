// A fake Docker Engine API (v1.41) on a unix socket, for testing RUNNER=docker where no
// engine runs. It answers just the calls src/runner-docker.c makes, the way the engine
// does: /_ping, the image check, the event stream (container `die` events), create,
// start, kill, logs (multiplexed frames), remove, the labelled listing and inspect.
// Nothing runs: a container only changes state. Each container's fate comes from
// `plan(n)` (n = 1 for the first one created): {exitAfterMs, exitCode, logs}; it dies by
// itself exitAfterMs after its start (null: it runs until killed), and its logs are the
// lines returned by logs(), the same way `docker logs` would give them back.
//
//   const fe = await startFakeDocker(`${dir}/docker.sock`, { plan: (n) => ({ exitAfterMs: 20 }) });
//   // daemon env: RUNNER=docker DOCKER_SOCKET=fe.socket
//   await fe.waitFor(() => fe.count('DELETE') >= 3, 10000, 'three removed');
//   await fe.close();
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

const PREFIX = '/v1.41';

// one stdout frame of a multiplexed log stream: 8-byte header, then the payload
function frame(text) {
  const payload = Buffer.from(text);
  const h = Buffer.alloc(8);
  h[0] = 1;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

export async function startFakeDocker(socket, { plan = () => ({}) } = {}) {
  const containers = new Map(); // id -> {id, name, labels, state, exitCode, n, plan, timer}
  const requests = []; // {method, path}
  const streams = new Set();
  let created = 0;

  function event(c) {
    const line = JSON.stringify({ Type: 'container', Action: 'die', id: c.id, status: 'die',
      Actor: { ID: c.id, Attributes: { exitCode: String(c.exitCode), name: c.name, ...c.labels } },
      scope: 'local', time: Math.floor(Date.now() / 1000), timeNano: Date.now() * 1e6 });
    for (const res of streams) res.write(line + '\n');
  }

  function die(c, code) {
    if (c.state !== 'running') return;
    clearTimeout(c.timer);
    c.state = 'exited';
    c.exitCode = code;
    event(c);
  }

  function send(res, status, body) {
    if (body === undefined) {
      res.writeHead(status);
      res.end();
      return;
    }
    const data = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'Content-Type': Buffer.isBuffer(body) ? 'application/vnd.docker.raw-stream' : 'application/json',
      'Content-Length': data.length });
    res.end(data);
  }

  function find(ref) {
    for (const c of containers.values()) if (c.id === ref || c.name === ref) return c;
    return null;
  }

  function handle(req, res, body) {
    const url = new URL(req.url, 'http://docker');
    const p = url.pathname.startsWith(PREFIX) ? url.pathname.slice(PREFIX.length) : url.pathname;
    requests.push({ method: req.method, path: p, query: url.search });
    let m;
    if (p === '/_ping') return send(res, 200, Buffer.from('OK'));
    if (req.method === 'GET' && /^\/images\/.+\/json$/.test(p)) return send(res, 200, { Id: 'sha256:' + '0'.repeat(64) });
    if (req.method === 'GET' && p === '/events') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      streams.add(res);
      res.on('close', () => streams.delete(res));
      return;
    }
    if (req.method === 'POST' && p === '/containers/create') {
      const name = url.searchParams.get('name');
      if (find(name)) return send(res, 409, { message: `Conflict. The container name "/${name}" is already in use` });
      const spec = JSON.parse(body);
      const n = ++created;
      const c = { id: randomBytes(32).toString('hex'), name, labels: spec.Labels || {}, state: 'created',
        exitCode: 0, n, plan: { exitAfterMs: null, exitCode: 1, logs: () => [], ...plan(n) } };
      containers.set(c.id, c);
      return send(res, 201, { Id: c.id, Warnings: [] });
    }
    if ((m = /^\/containers\/([^/]+)\/start$/.exec(p)) && req.method === 'POST') {
      const c = find(m[1]);
      if (!c) return send(res, 404, { message: `No such container: ${m[1]}` });
      if (c.state === 'running') return send(res, 304);
      c.state = 'running';
      if (c.plan.exitAfterMs !== null) c.timer = setTimeout(() => die(c, c.plan.exitCode), c.plan.exitAfterMs);
      return send(res, 204);
    }
    if ((m = /^\/containers\/([^/]+)\/kill$/.exec(p)) && req.method === 'POST') {
      const c = find(m[1]);
      if (!c) return send(res, 404, { message: `No such container: ${m[1]}` });
      if (c.state !== 'running') return send(res, 409, { message: `Container ${m[1]} is not running` });
      send(res, 204);
      const sig = url.searchParams.get('signal') === 'SIGKILL' ? 9 : 15;
      setImmediate(() => die(c, 128 + sig));
      return;
    }
    if ((m = /^\/containers\/([^/]+)\/logs$/.exec(p)) && req.method === 'GET') {
      const c = find(m[1]);
      if (!c) return send(res, 404, { message: `No such container: ${m[1]}` });
      const tail = Number(url.searchParams.get('tail')) || Infinity;
      const lines = c.plan.logs(c.n).slice(-tail);
      return send(res, 200, Buffer.concat(lines.map((l) => frame(l + '\n'))));
    }
    if ((m = /^\/containers\/([^/]+)\/json$/.exec(p)) && req.method === 'GET') {
      const c = find(m[1]);
      if (!c) return send(res, 404, { message: `No such container: ${m[1]}` });
      return send(res, 200, { Id: c.id, Name: '/' + c.name, Config: { Labels: c.labels },
        State: { Status: c.state, Running: c.state === 'running', ExitCode: c.exitCode } });
    }
    if ((m = /^\/containers\/([^/]+)$/.exec(p)) && req.method === 'DELETE') {
      const c = find(m[1]);
      if (!c) return send(res, 404, { message: `No such container: ${m[1]}` });
      if (c.state === 'running' && url.searchParams.get('force') !== '1') return send(res, 409, { message: 'running' });
      clearTimeout(c.timer);
      containers.delete(c.id);
      return send(res, 204);
    }
    if (req.method === 'GET' && p === '/containers/json') {
      const all = url.searchParams.get('all') === '1';
      const list = [...containers.values()].filter((c) => all || c.state === 'running').map((c) => ({
        Id: c.id, Names: ['/' + c.name], Labels: c.labels, State: c.state,
        Status: c.state === 'running' ? 'Up 1 second' : `Exited (${c.exitCode}) 1 second ago` }));
      return send(res, 200, list);
    }
    return send(res, 404, { message: `page not found: ${req.method} ${p}` });
  }

  fs.rmSync(socket, { force: true });
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, resolve);
  });

  return {
    socket,
    requests,
    containers,
    // how many requests of this method (and, when given, whose path matches re) it got
    count(method, re) {
      return requests.filter((r) => r.method === method && (!re || re.test(r.path))).length;
    },
    async waitFor(predicate, timeoutMs = 10000, what = 'condition') {
      const end = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > end) throw new Error(`fake Docker: timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      for (const c of containers.values()) clearTimeout(c.timer);
      for (const res of streams) res.end();
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
      fs.rmSync(socket, { force: true });
    },
  };
}
