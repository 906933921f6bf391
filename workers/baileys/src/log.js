// Logging: pino, one JSON object per line on stdout (the daemon appends the worker's
// stdout and stderr to DATA_DIR/logs/worker_<n>.log).
//
// Secrets never reach the log, in two layers:
//   1. redaction of the fields where a secret could sit (our own objects, and a SOCKS
//      error's `options.proxy`, which holds the proxy password);
//   2. a last pass over every finished line that replaces the literal WEBHOOK_SECRET and
//      proxy password (raw, percent-encoded and JSON-escaped) with "[redacted]", whatever
//      object they came in - including Baileys' own log calls, which go through this logger.
import pino from 'pino';

const REDACT_PATHS = [
  'secret',
  '*.secret',
  'webhookSecret',
  '*.webhookSecret',
  'password',
  '*.password',
  '*.*.password',
  'proxyUrl',
  '*.proxyUrl',
  'options.proxy',
  '*.options.proxy',
  '*.*.options.proxy',
  'data.options',
  '*.data.options',
  'headers["x-signature"]',
  '*.headers["x-signature"]',
];

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// A function that removes every listed secret from a string. Very short values (< 4
// characters) are not scrubbed this way - they would mangle ordinary words - and rely on
// layer 1 alone.
export function makeScrubber(secrets) {
  const forms = new Set();
  for (const s of secrets) {
    if (typeof s !== 'string' || s.length < 4) continue;
    forms.add(s);
    forms.add(encodeURIComponent(s));
    forms.add(JSON.stringify(s).slice(1, -1));
  }
  if (forms.size === 0) return (line) => line;
  const re = new RegExp([...forms].sort((a, b) => b.length - a.length).map(escapeRe).join('|'), 'g');
  return (line) => line.replace(re, '[redacted]');
}

export function makeLogger({ level = 'info', secrets = [], sessionId, destination } = {}) {
  const scrub = makeScrubber(secrets);
  return pino(
    {
      level,
      base: { sessionId, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      hooks: { streamWrite: scrub },
    },
    destination ?? pino.destination({ fd: 1, sync: true }),
  );
}

// The parts of an error that are safe and useful in a log line or an event.
export function errInfo(e) {
  if (!e || typeof e !== 'object') return { message: String(e) };
  const out = { message: String(e.message ?? e).slice(0, 500) };
  if (e.code) out.code = String(e.code);
  const status = e.output?.statusCode ?? e.statusCode;
  if (status) out.statusCode = status;
  if (e.data instanceof Error && e.data.message && e.data.message !== e.message) out.cause = String(e.data.message).slice(0, 300);
  return out;
}
