// A fake Telegram Bot API for the tests: POST /bot<token>/sendMessage with a JSON body.
// Records each request (token, chat_id, text) and answers as planned: ok, 429 with
// retry_after, or an error. Loopback only.
import http from 'node:http';
import { EventEmitter } from 'node:events';

export async function startFakeTelegram({ token }) {
  const t = { requests: [], messages: [], plan: [], events: new EventEmitter() };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const rec = { method: req.method, url: req.url, headers: req.headers, body, at: Date.now() };
      t.requests.push(rec);
      const m = /^\/bot([^/]+)\/sendMessage$/.exec(req.url);
      let status = 200, answer;
      let json = null;
      try { json = JSON.parse(body); } catch {}
      if (!m || m[1] !== token) {
        status = 401; answer = { ok: false, error_code: 401, description: 'Unauthorized' };
      } else if (!json || typeof json.chat_id !== 'string' || typeof json.text !== 'string' || !json.text) {
        status = 400; answer = { ok: false, error_code: 400, description: 'Bad Request: message text is empty' };
      } else {
        const step = t.plan.shift();
        if (step?.retryAfter !== undefined) {
          status = 429; answer = { ok: false, error_code: 429, description: `Too Many Requests: retry after ${step.retryAfter}`, parameters: { retry_after: step.retryAfter } };
        } else if (step?.status) {
          status = step.status; answer = { ok: false, error_code: step.status, description: 'planned failure' };
        } else {
          answer = { ok: true, result: { message_id: t.messages.length + 1, chat: { id: json.chat_id }, text: json.text } };
          t.messages.push({ chat_id: json.chat_id, text: json.text, at: rec.at });
        }
      }
      rec.status = status;
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(answer));
      t.events.emit('request', rec);
    });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  t.url = `http://127.0.0.1:${server.address().port}`;
  t.waitFor = (pred, timeout = 10000, what = 'messages') => new Promise((resolve, reject) => {
    const check = () => { const v = pred(t); if (v) { clearTimeout(timer); t.events.off('request', check); resolve(v); } };
    const timer = setTimeout(() => { t.events.off('request', check); reject(new Error(`telegram: timed out waiting for ${what}; messages: ${JSON.stringify(t.messages.map((m) => m.text))}`)); }, timeout);
    t.events.on('request', check);
    check();
  });
  t.close = () => new Promise((ok) => { server.closeAllConnections?.(); server.close(() => ok()); });
  return t;
}
