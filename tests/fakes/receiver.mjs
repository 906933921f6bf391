// A customer webhook receiver for the tests: records every request exactly as it came
// (method, path, headers, raw body, arrival time) and answers per path as told: a status,
// slowly, or not at all. Loopback only.
import http from 'node:http';
import { EventEmitter } from 'node:events';

// plan: path -> array of steps, each {status = 200, delayMs = 0, hang = false}; a path's
// steps are used in order and its last one repeats. Unknown paths answer 200.
export async function startReceiver() {
  const r = { requests: [], plans: new Map(), events: new EventEmitter(), held: new Set() };
  r.events.setMaxListeners(100);
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const rec = { method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      r.requests.push(rec);
      const steps = r.plans.get(req.url) || [];
      const step = steps.length > 1 ? steps.shift() : steps[0] || {};
      rec.answer = step.hang ? null : step.status ?? 200;
      r.events.emit('request', rec);
      if (step.hang) {
        r.held.add(res);
        res.on('close', () => r.held.delete(res));
        return;
      }
      const send = () => {
        res.writeHead(rec.answer, { 'Content-Type': 'text/plain' });
        res.end('ok');
      };
      if (step.delayMs) setTimeout(send, step.delayMs);
      else send();
    });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  r.url = (path) => `http://127.0.0.1:${server.address().port}${path}`;
  r.plan = (path, steps) => r.plans.set(path, [...steps]);
  r.on = (path) => r.requests.filter((q) => q.path === path);
  r.waitFor = (pred, timeout = 10000, what = 'requests') =>
    new Promise((resolve, reject) => {
      const check = () => {
        const v = pred(r);
        if (v) { clearTimeout(t); r.events.off('request', check); resolve(v); }
      };
      const t = setTimeout(() => { r.events.off('request', check); reject(new Error(`receiver: timed out waiting for ${what}; got ${r.requests.length} requests`)); }, timeout);
      r.events.on('request', check);
      check();
    });
  r.close = () => new Promise((ok) => {
    for (const res of r.held) res.destroy();
    server.closeAllConnections?.();
    server.close(() => ok());
  });
  return r;
}
