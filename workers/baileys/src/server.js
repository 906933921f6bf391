// The command API on WORKER_LISTEN (docs/worker-protocol.md "Commands"), answered like
// the simulator's (workers/sim/simcmd.c): the same checks in the same order, the same
// status codes and error codes.
//   1. a body over 64 KiB: 413 TOO_LARGE (before anything else is looked at);
//   2. the signature, before routing, so an unsigned caller learns nothing, not even
//      which paths exist: 401 BAD_SIGNATURE;
//   3. the route: 404 NOT_FOUND, 405 METHOD_NOT_ALLOWED (with Allow);
//   4. the handler: 400 BAD_JSON / INVALID_REQUEST / INVALID_PHONE, 409, 503, 200.
// Answers are JSON; errors are {"error":{"code","message"}}.
import http from 'node:http';
import { verify } from './sign.js';

export const BODY_MAX = 64 * 1024;
const HEADERS_MAX = 16 * 1024;

export class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The body as a JSON object ({} for an empty body when allowEmpty), else HttpError 400.
export function bodyObject(raw, allowEmpty = false) {
  if (raw.length === 0 && allowEmpty) return {};
  let o;
  try {
    o = JSON.parse(raw.toString('utf8'));
  } catch {
    o = null;
  }
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw new HttpError(400, 'BAD_JSON', 'the body must be one JSON object');
  return o;
}

function safe(s, max = 80) {
  return String(s ?? '').slice(0, max).replace(/[^\x21-\x7e]/g, '?');
}

// routes: { '/send': { method: 'POST', fn: async (rawBody, req) => [status, object] } }
export function createCommandServer({ host, port, secret, log, routes, bodyMax = BODY_MAX, now = Date.now }) {
  const reply = (res, status, obj, extra = {}) => {
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(obj);
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-store',
      'Content-Length': Buffer.byteLength(text),
      ...extra,
    });
    res.end(text);
  };
  const error = (res, status, code, message, extra) => reply(res, status, { error: { code, message } }, extra);

  // An over-long body is read and thrown away up to DISCARD_MAX, so that the client
  // finishes sending and reads the 413; past that the connection is cut.
  const DISCARD_MAX = 16 * bodyMax;
  const tooLarge = (req, res) => {
    log.warn({ path: safe(req.url), status: 413 }, 'command refused: body too large');
    error(res, 413, 'TOO_LARGE', `the body may be at most ${bodyMax} bytes`, { Connection: 'close' });
  };

  const server = http.createServer({ maxHeaderSize: HEADERS_MAX }, (req, res) => {
    const declared = Number(req.headers['content-length']);
    const chunks = [];
    let n = 0;
    let over = Number.isFinite(declared) && declared > bodyMax;
    if (Number.isFinite(declared) && declared > DISCARD_MAX) {
      tooLarge(req, res);
      res.on('finish', () => req.destroy());
      return;
    }
    req.on('data', (c) => {
      n += c.length;
      if (n > bodyMax) over = true;
      if (over) {
        if (n > DISCARD_MAX) {
          tooLarge(req, res);
          req.destroy();
        }
        return;
      }
      chunks.push(c);
    });
    req.on('error', () => {});
    req.on('end', () => {
      if (over) return tooLarge(req, res);
      handle(req, res, Buffer.concat(chunks, n)).catch((e) => {
        log.error({ err: { message: e?.message }, path: safe(req.url) }, 'command failed');
        error(res, 500, 'INTERNAL', 'the worker could not handle the command');
      });
    });
  });
  server.headersTimeout = 10000;
  server.requestTimeout = 30000;
  server.keepAliveTimeout = 5000;

  async function handle(req, res, body) {
    const url = new URL(req.url || '/', 'http://worker');
    const why = verify(secret, req.headers['x-timestamp'], req.headers['x-signature'], body, now());
    if (why) {
      log.warn({ path: safe(url.pathname), status: 401, reason: why }, 'command refused');
      return error(res, 401, 'BAD_SIGNATURE', why);
    }
    const route = Object.prototype.hasOwnProperty.call(routes, url.pathname) ? routes[url.pathname] : null;
    if (!route) return error(res, 404, 'NOT_FOUND', 'no such command');
    if (req.method !== route.method) {
      return error(res, 405, 'METHOD_NOT_ALLOWED', route.method === 'GET' ? 'use GET' : 'use POST', { Allow: route.method });
    }
    try {
      const [status, obj] = await route.fn(body, req);
      reply(res, status, obj);
    } catch (e) {
      if (e instanceof HttpError) return error(res, e.status, e.code, e.message);
      throw e;
    }
  }

  return {
    server,
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port, exclusive: true }, () => {
          server.off('error', reject);
          resolve(server.address());
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections?.();
        setTimeout(() => server.closeAllConnections?.(), 1000).unref();
      });
    },
  };
}
