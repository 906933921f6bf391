// Configuration: the worker-protocol environment (docs/worker-protocol.md) plus this
// worker's own knobs. Every value is checked here; a bad one is a ConfigError whose
// message names the variable, and main.js turns it into one line and exit code 2.
import { parseProxyUrl } from './proxy.js';

export class ConfigError extends Error {}

export const EXIT_CONFIG = 2;
export const EXIT_RUNTIME = 1;

// name: [default, min, max]; a knob that allows 0 (= off) lists min 0 and offMin, the
// smallest non-zero value.
export const KNOBS = {
  PING_INTERVAL_MS: { def: 15000, min: 100, max: 3600000 },
  KEEPALIVE_PRESENCE_MS: { def: 15000, min: 0, offMin: 1000, max: 86400000 },
  KEEPALIVE_SELF_MESSAGE_MS: { def: 600000, min: 0, offMin: 1000, max: 7 * 86400000 },
  TYPING_MAX_MS: { def: 30000, min: 0, max: 60000 },
  RECONNECT_MIN_MS: { def: 2000, min: 100, max: 600000 },
  RECONNECT_MAX_MS: { def: 120000, min: 100, max: 3600000 },
  WA_CONNECT_TIMEOUT_MS: { def: 20000, min: 1000, max: 120000 },
  PAIRING_WAIT_MS: { def: 4000, min: 0, max: 120000 },
  EVENT_QUEUE_MAX: { def: 1000, min: 16, max: 100000 },
  EVENT_TIMEOUT_MS: { def: 10000, min: 500, max: 120000 },
  SEND_QUEUE_MAX: { def: 1000, min: 1, max: 100000 },
  SEND_TIMEOUT_MS: { def: 90000, min: 1000, max: 600000 },
  SHUTDOWN_FLUSH_MS: { def: 1500, min: 0, max: 30000 },
  PROXY_ERROR_REPEAT_MS: { def: 60000, min: 0, max: 86400000 },
  UNREACHABLE_REPORT_MS: { def: 300000, min: 0, max: 86400000 },
  CHECK_RECIPIENT: { def: 1, min: 0, max: 1 },
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const SECRET_RE = /^[0-9a-fA-F]{64}$/;

export const USAGE = `usage: node src/main.js [--ping-ms N] [--help]
  Switchboard's WhatsApp worker on Baileys (worker protocol v1).
  environment (protocol): SESSION_ID WEBHOOK_URL WEBHOOK_SECRET AUTH_DIR WORKER_LISTEN (required),
                          PROXY_URL LOGIN_METHOD=qr|pairing_code PAIRING_PHONE SWITCHBOARD_INSTANCE
  environment (knobs):    ${Object.keys(KNOBS).join(' ')} LOG_LEVEL BAILEYS_LOG_LEVEL
  see workers/baileys/README.md`;

function bad(name, why) {
  return new ConfigError(`${name}: ${why}`);
}

function envOf(env, name) {
  const v = env[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

// A whole number of ms from the environment, in range, or the default.
function intKnob(env, name, spec, override) {
  const raw = override ?? envOf(env, name);
  if (raw === undefined) return spec.def;
  if (!/^[0-9]{1,10}$/.test(raw)) throw bad(name, `must be a whole number in ${spec.min}..${spec.max}`);
  const n = Number(raw);
  if (n < spec.min || n > spec.max) throw bad(name, `must be in ${spec.min}..${spec.max}`);
  if (spec.offMin && n !== 0 && n < spec.offMin) throw bad(name, `must be 0 (off) or in ${spec.offMin}..${spec.max}`);
  return n;
}

// SESSION_ID is worker_<n>, n in 1..10^12 without a leading zero: what the daemon accepts.
export function sessionIdValid(v) {
  return /^worker_[1-9][0-9]{0,12}$/.test(v) && Number(v.slice(7)) <= 1e12;
}

// "8-15 digits with an optional +" -> the digits, else null.
export function normalizePhone(v) {
  if (typeof v !== 'string') return null;
  const p = v.startsWith('+') ? v.slice(1) : v;
  return /^[0-9]{8,15}$/.test(p) ? p : null;
}

// host:port or [v6]:port -> { host, port }, else null.
export function parseListen(v) {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]{1,253})):([0-9]{1,5})$/.exec(v);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1] ?? m[2], port };
}

function parseWebhookUrl(v) {
  if (v.length > 2048) throw bad('WEBHOOK_URL', 'longer than 2048 characters');
  let u;
  try {
    u = new URL(v);
  } catch {
    throw bad('WEBHOOK_URL', 'not a valid URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw bad('WEBHOOK_URL', 'must start with http:// or https://');
  if (!u.hostname) throw bad('WEBHOOK_URL', 'has no host');
  if (u.username || u.password) throw bad('WEBHOOK_URL', 'must not carry credentials');
  return u;
}

// argv: the sim's --ping-ms N (or --ping-ms=N) and --help.
function parseArgs(argv) {
  const out = { help: false, pingMs: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') out.help = true;
    else if (a === '--ping-ms') {
      if (i + 1 >= argv.length) throw bad('--ping-ms', 'needs a value');
      out.pingMs = argv[++i];
    } else if (a.startsWith('--ping-ms=')) out.pingMs = a.slice(10);
    else throw bad(a, 'unknown argument, see --help');
  }
  return out;
}

export function loadConfig(env = process.env, argv = []) {
  const args = parseArgs(argv);
  if (args.help) return { help: true };

  const sessionId = envOf(env, 'SESSION_ID');
  if (!sessionId) throw bad('SESSION_ID', 'required');
  if (!sessionIdValid(sessionId)) throw bad('SESSION_ID', 'must be worker_<n> with n in 1..1000000000000');

  const webhookRaw = envOf(env, 'WEBHOOK_URL');
  if (!webhookRaw) throw bad('WEBHOOK_URL', 'required');
  const webhookUrl = parseWebhookUrl(webhookRaw);

  const secret = envOf(env, 'WEBHOOK_SECRET');
  if (!secret) throw bad('WEBHOOK_SECRET', 'required');
  if (!SECRET_RE.test(secret)) throw bad('WEBHOOK_SECRET', 'must be 64 hex characters (HMAC-SHA256 of the session id)');

  const authDir = envOf(env, 'AUTH_DIR');
  if (!authDir) throw bad('AUTH_DIR', 'required');
  if (authDir.length > 3000 || authDir.includes('\0')) throw bad('AUTH_DIR', 'path too long or not valid');

  const listenRaw = envOf(env, 'WORKER_LISTEN');
  if (!listenRaw) throw bad('WORKER_LISTEN', 'required');
  const listen = parseListen(listenRaw);
  if (!listen) throw bad('WORKER_LISTEN', 'must be host:port or [v6]:port with port 1..65535');

  let proxy = null;
  const proxyRaw = envOf(env, 'PROXY_URL');
  if (proxyRaw) {
    try {
      proxy = parseProxyUrl(proxyRaw);
    } catch (e) {
      throw bad('PROXY_URL', e.message); // the parser's messages never echo credentials
    }
  }

  const lm = envOf(env, 'LOGIN_METHOD') ?? 'qr';
  if (lm !== 'qr' && lm !== 'pairing_code') throw bad('LOGIN_METHOD', 'must be qr or pairing_code');

  let pairingPhone = null;
  const pp = envOf(env, 'PAIRING_PHONE');
  if (pp) {
    pairingPhone = normalizePhone(pp);
    // only a pairing-code login uses it; with qr a bad value is ignored (the daemon passes it empty)
    if (!pairingPhone && lm === 'pairing_code') throw bad('PAIRING_PHONE', 'must be 8-15 digits with an optional +');
  }

  const knobs = {};
  for (const [name, spec] of Object.entries(KNOBS)) {
    knobs[name] = intKnob(env, name, spec, name === 'PING_INTERVAL_MS' ? args.pingMs : undefined);
  }
  if (knobs.RECONNECT_MAX_MS < knobs.RECONNECT_MIN_MS) throw bad('RECONNECT_MAX_MS', 'must be at least RECONNECT_MIN_MS');

  const logLevel = envOf(env, 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw bad('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);
  const baileysLogLevel = envOf(env, 'BAILEYS_LOG_LEVEL') ?? 'warn';
  if (!LOG_LEVELS.includes(baileysLogLevel)) throw bad('BAILEYS_LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);

  return {
    help: false,
    sessionId,
    webhookUrl,
    secret,
    authDir,
    listen,
    proxy,
    loginMethod: lm,
    pairingPhone: lm === 'pairing_code' ? pairingPhone : null,
    instance: envOf(env, 'SWITCHBOARD_INSTANCE') ?? null,
    logLevel,
    baileysLogLevel,
    pingMs: knobs.PING_INTERVAL_MS,
    presenceMs: knobs.KEEPALIVE_PRESENCE_MS,
    selfMessageMs: knobs.KEEPALIVE_SELF_MESSAGE_MS,
    typingMaxMs: knobs.TYPING_MAX_MS,
    reconnectMinMs: knobs.RECONNECT_MIN_MS,
    reconnectMaxMs: knobs.RECONNECT_MAX_MS,
    connectTimeoutMs: knobs.WA_CONNECT_TIMEOUT_MS,
    pairingWaitMs: knobs.PAIRING_WAIT_MS,
    eventQueueMax: knobs.EVENT_QUEUE_MAX,
    eventTimeoutMs: knobs.EVENT_TIMEOUT_MS,
    sendQueueMax: knobs.SEND_QUEUE_MAX,
    sendTimeoutMs: knobs.SEND_TIMEOUT_MS,
    shutdownFlushMs: knobs.SHUTDOWN_FLUSH_MS,
    proxyErrorRepeatMs: knobs.PROXY_ERROR_REPEAT_MS,
    unreachableReportMs: knobs.UNREACHABLE_REPORT_MS,
    checkRecipient: knobs.CHECK_RECIPIENT === 1,
  };
}
