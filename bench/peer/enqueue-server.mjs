// The peer of bench/enqueue: the stack the seeds would build for "accept a message to
// send", an Express app that checks the same things as the daemon's POST /api/v1/send
// and hands the message to BullMQ (queue.add into Redis). It answers 202 once Redis
// has answered the add; how durable that is depends on Redis's appendfsync (the bench
// runs it with everysec and with always). One Node process, as such an app is deployed
// by default. Loopback only.
//
// Environment: PORT, REDIS_PORT (both on 127.0.0.1), API_KEY, QUEUE (default "send"),
// PROCS (default 1: one process; N > 1: node:cluster with N workers sharing the port,
// as PM2's cluster mode would run it).
import { Buffer, isUtf8 } from 'node:buffer';
import cluster from 'node:cluster';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import express from 'express';
import { Queue } from 'bullmq';

const PORT = Number(process.env.PORT);
const REDIS_PORT = Number(process.env.REDIS_PORT);
const API_KEY = Buffer.from(process.env.API_KEY || '');
const QUEUE = process.env.QUEUE || 'send';
const PROCS = Number(process.env.PROCS || 1);
if (!PORT || !REDIS_PORT || !API_KEY.length) {
  console.error('enqueue-server: PORT, REDIS_PORT and API_KEY are required');
  process.exit(2);
}
if (PROCS > 1 && cluster.isPrimary) {
  for (let i = 0; i < PROCS; i++) cluster.fork();
  const stopAll = () => {
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 3000).unref();
    let left = PROCS;
    cluster.on('exit', () => { if (--left === 0) process.exit(0); });
  };
  process.on('SIGTERM', stopAll);
  process.on('SIGINT', stopAll);
} else {

const queue = new Queue(QUEUE, {
  connection: { host: '127.0.0.1', port: REDIS_PORT, maxRetriesPerRequest: null },
  // what a sending stack would ask of its queue: retries with back-off
  defaultJobOptions: { attempts: 3, backoff: { type: 'exponential', delay: 1000 } },
});
queue.on('error', (e) => console.error(`enqueue-server: queue error: ${e.message}`));

const PHONE = /^\+?[0-9]{8,15}$/;
const SESSION = /^[A-Za-z0-9_-]{1,64}$/;

function fail(res, status, code, message) {
  res.status(status).json({ error: code, message });
}

function keyOk(given) {
  if (typeof given !== 'string') return false;
  const b = Buffer.from(given);
  return b.length === API_KEY.length && timingSafeEqual(b, API_KEY);
}

// characters (code points) of s, stopping once past max
function codePoints(s, max) {
  if (s.length <= max) return s.length - (s.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g) || []).length;
  let n = 0;
  for (const _ of s) if (++n > max) break;
  return n;
}

const app = express();
app.disable('x-powered-by');
app.disable('etag');

app.get('/health', (req, res) => res.type('text/plain').send('ok'));

// the key first, like the daemon: an unauthenticated body is not even parsed
app.use('/api', (req, res, next) => (keyOk(req.get('x-api-key')) ? next() : fail(res, 401, 'UNAUTHORIZED', 'missing or wrong X-API-Key')));

app.post(
  '/api/v1/send',
  express.json({
    limit: '64kb',
    strict: true,
    // the body must be valid UTF-8 (JSON.parse would quietly turn bad bytes into U+FFFD)
    verify: (req, res, buf) => {
      if (!isUtf8(buf)) {
        const e = new Error('the body is not valid UTF-8');
        e.status = 400;
        e.expose = true;
        throw e;
      }
    },
  }),
  async (req, res) => {
    const b = req.body;
    if (!b || typeof b !== 'object' || Array.isArray(b)) return fail(res, 400, 'INVALID_REQUEST', 'the body must be a JSON object');
    const { to, message, sessionId, idempotencyKey } = b;
    if (typeof to !== 'string' || !PHONE.test(to)) return fail(res, 400, 'INVALID_PHONE', 'to must be 8-15 digits with an optional +');
    if (typeof message !== 'string' || message.length === 0 || codePoints(message, 4096) > 4096) {
      return fail(res, 400, 'INVALID_MESSAGE', 'message must be 1-4096 characters');
    }
    if (sessionId !== undefined && sessionId !== null && (typeof sessionId !== 'string' || !SESSION.test(sessionId))) {
      return fail(res, 400, 'INVALID_REQUEST', 'sessionId must be a session id');
    }
    if (idempotencyKey !== undefined && idempotencyKey !== null &&
        (typeof idempotencyKey !== 'string' || idempotencyKey.length === 0 || idempotencyKey.length > 128)) {
      return fail(res, 400, 'INVALID_REQUEST', 'idempotencyKey must be a string of 1-128 characters');
    }
    const messageId = randomUUID();
    // an idempotency key becomes the job id, which BullMQ refuses to add twice
    const jobId = idempotencyKey ? `idem:${sessionId || ''}:${idempotencyKey}` : messageId;
    try {
      const job = await queue.add('send', { messageId, to: to.replace(/^\+/, ''), message, sessionId: sessionId || null, createdAt: Date.now() }, { jobId });
      res.status(202).json({ queued: true, messageId: job.data.messageId });
    } catch (e) {
      fail(res, 503, 'QUEUE_UNAVAILABLE', e.message);
    }
  },
);

// a JSON parse error (or the UTF-8 check) answers 400 in the same shape
app.use((err, req, res, next) => {
  if (res.headersSent) return next(err);
  fail(res, err.status && err.status < 500 ? err.status : 500, err.status === 413 ? 'TOO_LARGE' : 'INVALID_REQUEST', err.expose ? err.message : 'bad request');
});

const server = app.listen(PORT, '127.0.0.1', () => console.log(`enqueue-server: listening on 127.0.0.1:${PORT}, queue ${QUEUE} on redis 127.0.0.1:${REDIS_PORT}`));
server.keepAliveTimeout = 65000;

async function stop() {
  server.close();
  await queue.close().catch(() => {});
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
}
