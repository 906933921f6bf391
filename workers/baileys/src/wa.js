// One WhatsApp session on Baileys: the connection life cycle, login (QR or pairing code),
// sending with typing and de-duplication, receiving, and the keep-alive engine.
//
// The socket comes from `makeSocket` (Baileys' makeWASocket unless a test injects a fake
// one); everything here talks to it through a small surface: ev.on('connection.update' |
// 'creds.update' | 'messages.upsert'), user, sendMessage, sendPresenceUpdate,
// presenceSubscribe, requestPairingCode, onWhatsApp, logout, end, and
// signalRepository.lidMapping.getPNForLID.
import { createHmac } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import makeWASocket, {
  isJidBroadcast,
  isJidGroup,
  isJidNewsletter,
  isLidUser,
  jidDecode,
  jidNormalizedUser,
  normalizeMessageContent,
} from 'baileys';
import { AuthError, loadAuth as realLoadAuth, wipeAuth as realWipeAuth } from './auth.js';
import { KeepAlive, SELF_MESSAGE_EPHEMERAL_S, SELF_MESSAGE_TEXT } from './keepalive.js';
import { errInfo } from './log.js';
import { proxyFailureOf } from './proxy.js';
import { HttpError } from './server.js';
import { idValid } from './sentlog.js';

export const TYPING_PROTOCOL_MAX_MS = 60000;
const COMPOSING_REFRESH_MS = 10000; // "typing..." fades on the other side after ~25 s
const RECIPIENT_TTL_OK_MS = 24 * 3600 * 1000;
const RECIPIENT_TTL_NO_MS = 3600 * 1000;
const RECIPIENT_CACHE_MAX = 10000;
const RECENT_MAX = 256; // sent messages kept for WhatsApp's retry requests
const SEEN_MAX = 2000; // received message ids, against duplicate upserts
const QUERY_TIMEOUT_MS = 15000;
const QR_RENEW_DELAY_MS = 500;
const LOGOUT_TIMEOUT_MS = 3000; // the daemon gives a command 5 s (WORKER_HEALTH_TIMEOUT_MS)

// Statuses after which the worker does not reconnect by itself.
const TERMINAL = new Set(['logged_out', 'replaced', 'forbidden', 'auth_failure', 'stopped']);

// The WhatsApp message id of a messageId: stable across repeats and restarts (so a
// retried /send is answered with the same id, and a message sent again after a crash
// carries the id of the first copy), shaped like the ids WhatsApp Web makes ("3EB0" +
// 18 hex digits), and unguessable without the worker's key.
export function waMessageIdFor(secret, sessionId, messageId) {
  const h = createHmac('sha256', Buffer.from(secret, 'utf8')).update(`wamid\0${sessionId}\0${messageId}`).digest('hex');
  return `3EB0${h.toUpperCase().slice(0, 18)}`;
}

export class SendError extends Error {
  constructor(message, retryable) {
    super(message);
    this.retryable = retryable;
  }
}

class TimeoutError extends Error {}

export function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    Promise.resolve(p).finally(() => clearTimeout(t)),
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new TimeoutError(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]);
}

function statusCodeOf(err) {
  const c = err?.output?.statusCode ?? err?.statusCode;
  return Number.isInteger(c) ? c : err ? 500 : 428;
}

function reasonOf(err, code) {
  const names = { 401: 'logged out', 403: 'forbidden', 408: 'connection lost or timed out', 411: 'multi-device mismatch', 428: 'connection closed', 440: 'connection replaced', 500: 'connection error', 503: 'service unavailable', 515: 'restart required' };
  const msg = err?.message ? String(err.message) : '';
  return (msg || names[code] || 'connection closed').slice(0, 380);
}

function retryableOf(e) {
  const code = e?.output?.statusCode ?? e?.statusCode;
  if ([408, 428, 429, 440, 500, 502, 503, 504, 515].includes(code)) return true;
  return /Connection Closed|Connection Terminated|Connection was lost|timed out|ECONN|EPIPE|socket hang up/i.test(String(e?.message ?? ''));
}

// The phone digits of a user JID, or null (a LID, a group, ...).
export function phoneOfJid(jid) {
  if (typeof jid !== 'string') return null;
  const d = jidDecode(jid);
  if (!d || !d.user) return null;
  if (d.server !== 's.whatsapp.net' && d.server !== 'c.us' && d.server !== 'hosted') return null;
  return /^[0-9]{5,20}$/.test(d.user) ? d.user : null;
}

function tsMs(t) {
  if (t === null || t === undefined) return Date.now();
  const n = typeof t === 'object' && typeof t.toNumber === 'function' ? t.toNumber() : Number(t);
  return Number.isFinite(n) && n > 0 ? n * 1000 : Date.now();
}

// A small TTL map with the CacheStore surface Baileys wants (msgRetryCounterCache).
export class TtlCache {
  constructor(ttlMs = 3600000, max = 5000) {
    this.ttlMs = ttlMs;
    this.max = max;
    this.m = new Map();
  }
  get(k) {
    const e = this.m.get(k);
    if (!e) return undefined;
    if (e.exp < Date.now()) {
      this.m.delete(k);
      return undefined;
    }
    return e.v;
  }
  set(k, v) {
    this.m.delete(k);
    if (this.m.size >= this.max) this.m.delete(this.m.keys().next().value);
    this.m.set(k, { v, exp: Date.now() + this.ttlMs });
    return true;
  }
  del(k) {
    this.m.delete(k);
  }
  flushAll() {
    this.m.clear();
  }
}

function lruSet(map, k, v, max) {
  map.delete(k);
  if (map.size >= max) map.delete(map.keys().next().value);
  map.set(k, v);
}

export class WhatsApp {
  constructor({ config, log, blog, events, sentLog, proxy = null, makeSocket = makeWASocket, loadAuth = realLoadAuth, wipeAuth = realWipeAuth, socketOptions = {} }) {
    this.config = config;
    this.log = log;
    this.blog = blog ?? log;
    this.events = events;
    this.sentLog = sentLog;
    this.proxy = proxy;
    this.makeSocket = makeSocket;
    this.loadAuthFn = loadAuth;
    this.wipeAuthFn = wipeAuth;
    this.socketOptions = socketOptions;

    this.status = 'starting';
    this.sock = null;
    this.gen = 0;
    this.auth = null;
    this.credsFrozen = false;
    this.stopping = false;
    this.loggingOut = false;
    this.phone = null;
    this.name = null;
    this.loginMethod = config.loginMethod;
    this.pairingPhone = config.pairingPhone;
    this.pairingDoneGen = 0;
    this.pairingPromise = null;
    this.lastPairing = null;
    this.attempt = 0;
    this.reconnectTimer = null;
    this.nextReconnectAt = 0;
    this.lastReported = null;
    this.failingSince = 0;
    this.proxyErrorAt = 0;
    this.lastDisconnect = null;
    this.connectedAt = 0;
    this.wsAgent = null;
    this.connectStarted = 0;
    this.statusWaiters = new Set();

    this.sendQueue = [];
    this.inflight = new Map(); // messageId -> job, from acceptance until recorded or failed
    this.processing = false;
    this.current = null;
    this.recipients = new Map();
    this.recent = new Map();
    this.seen = new Map();
    this.msgRetryCache = new TtlCache();
    this.counters = { sent: 0, failed: 0, duplicates: 0, received: 0 };

    this.keepalive = new KeepAlive({
      presenceMs: config.presenceMs,
      selfMessageMs: config.selfMessageMs,
      log,
      sendPresence: () => this.keepalivePresence(),
      sendSelf: () => this.keepaliveSelfMessage(),
    });
  }

  get linked() {
    const c = this.auth?.creds;
    return !!(c && c.account && c.me?.id);
  }

  get connected() {
    return this.status === 'connected' && !!this.sock;
  }

  setStatus(s) {
    if (this.status === s) return;
    this.log.info({ from: this.status, to: s }, 'status');
    this.status = s;
    for (const w of [...this.statusWaiters]) w();
  }

  waitFor(pred, ms) {
    if (pred()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (pred()) finish(true);
      };
      const finish = (v) => {
        clearTimeout(t);
        this.statusWaiters.delete(check);
        resolve(v);
      };
      const t = setTimeout(() => finish(false), ms);
      this.statusWaiters.add(check);
    });
  }

  // ---- life cycle -----------------------------------------------------------

  async start() {
    try {
      this.auth = await this.loadAuthFn(this.config.authDir, this.blog);
    } catch (e) {
      if (!(e instanceof AuthError)) throw e;
      this.log.error({ error: e.message }, 'auth state cannot be loaded, not connecting');
      this.setStatus('auth_failure');
      this.events.post('AUTH_FAILURE', { error: e.message.slice(0, 390) });
      return;
    }
    this.log.info({ linked: this.linked, loginMethod: this.loginMethod }, this.linked ? 'restoring the linked session' : 'not linked yet, starting a login');
    this.connect();
  }

  socketConfig() {
    const cfg = {
      auth: { creds: this.auth.creds, keys: this.auth.keys },
      logger: this.blog,
      connectTimeoutMs: this.config.connectTimeoutMs,
      syncFullHistory: false,
      markOnlineOnConnect: true,
      emitOwnEvents: false,
      generateHighQualityLinkPreview: false,
      msgRetryCounterCache: this.msgRetryCache,
      getMessage: async (key) => this.recent.get(key?.id),
      ...this.socketOptions,
    };
    if (this.proxy) {
      this.wsAgent = this.proxy.newWsAgent();
      cfg.agent = this.wsAgent;
      cfg.fetchAgent = this.proxy.fetchAgent;
      cfg.options = { ...(cfg.options || {}), dispatcher: this.proxy.dispatcher };
    }
    return cfg;
  }

  connect() {
    if (this.stopping || TERMINAL.has(this.status)) return;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const gen = ++this.gen;
    const creds = this.auth.creds;
    // a pairing-code login that did not finish leaves creds.me behind, which would make
    // the next connection try to log in as a device that was never linked
    if (!creds.account && creds.me) {
      delete creds.me;
      this.auth.saveCreds();
    }
    this.connectStarted = Date.now();
    this.setStatus('connecting');
    let sock;
    try {
      sock = this.makeSocket(this.socketConfig());
    } catch (e) {
      this.log.error({ err: errInfo(e) }, 'cannot create the WhatsApp socket');
      this.setStatus('disconnected');
      this.scheduleReconnect();
      return;
    }
    this.sock = sock;
    sock.ev.on('creds.update', () => {
      if (!this.credsFrozen && gen === this.gen) this.auth.saveCreds();
    });
    sock.ev.on('connection.update', (u) => {
      try {
        this.onConnectionUpdate(gen, sock, u);
      } catch (e) {
        this.log.error({ err: errInfo(e) }, 'connection update failed');
      }
    });
    sock.ev.on('messages.upsert', (m) => {
      this.onUpsert(gen, sock, m).catch((e) => this.log.warn({ err: errInfo(e) }, 'cannot handle incoming messages'));
    });
  }

  scheduleReconnect(delayMs) {
    if (this.stopping || TERMINAL.has(this.status)) return;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    let d = delayMs;
    if (d === undefined) {
      const base = Math.min(this.config.reconnectMaxMs, this.config.reconnectMinMs * 2 ** Math.min(this.attempt, 20));
      this.attempt++;
      d = Math.round(base / 2 + (Math.random() * base) / 2); // "equal jitter": base/2..base
    }
    this.nextReconnectAt = Date.now() + d;
    this.log.info({ delayMs: d, attempt: this.attempt }, 'reconnecting');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, d);
  }

  onConnectionUpdate(gen, sock, u) {
    if (gen !== this.gen) return; // a socket this worker has already let go
    if (u.qr) this.onQr(gen, sock, u.qr);
    if (u.connection === 'open') this.onOpen(sock);
    else if (u.connection === 'close') this.onClose(u.lastDisconnect?.error);
  }

  onQr(gen, sock, qr) {
    this.failingSince = 0; // WhatsApp was reached
    this.attempt = 0;
    if (this.status !== 'qr') this.setStatus('qr');
    if (this.pairingPhone && !this.linked) {
      if (this.pairingDoneGen !== gen && !this.pairingPromise) {
        this.requestPairing(gen, sock, this.pairingPhone).catch((e) => this.log.warn({ err: errInfo(e) }, 'pairing code request failed, will try again with the next QR'));
      }
      return;
    }
    if (this.loginMethod === 'pairing_code') {
      if (this.waitingPhoneGen !== gen) this.log.info('pairing-code login without a phone: waiting for POST /pairing-code');
      this.waitingPhoneGen = gen;
      return;
    }
    this.events.post('QR_CODE', { qr: String(qr).slice(0, 1000) });
    this.log.info('qr code posted');
  }

  async requestPairing(gen, sock, phone) {
    const p = (async () => {
      const code = await withTimeout(sock.requestPairingCode(phone), QUERY_TIMEOUT_MS, 'pairing code request');
      if (gen !== this.gen) throw new Error('the connection changed while the code was requested');
      if (typeof code !== 'string' || code.length < 1 || code.length > 15) throw new Error('WhatsApp gave no usable pairing code');
      this.pairingDoneGen = gen;
      this.lastPairing = { gen, phone, code };
      this.events.post('PAIRING_CODE', { code });
      this.log.info('pairing code posted');
      return code;
    })();
    this.pairingPromise = p;
    try {
      return await p;
    } finally {
      if (this.pairingPromise === p) this.pairingPromise = null;
    }
  }

  onOpen(sock) {
    this.attempt = 0;
    this.failingSince = 0;
    this.lastReported = null;
    this.proxyErrorAt = 0;
    this.connectedAt = Date.now();
    const me = sock.user ?? this.auth.creds.me ?? {};
    this.phone = phoneOfJid(me.id ? jidNormalizedUser(me.id) : null) ?? jidDecode(me.id ?? '')?.user ?? null;
    const name = me.name || me.verifiedName || me.notify;
    this.name = name && name !== '~' ? String(name).slice(0, 256) : null;
    this.setStatus('connected');
    const data = { phoneNumber: this.phone ?? '' };
    if (this.name) data.name = this.name;
    this.events.post('CONNECTED', data);
    this.log.info({ phone: this.phone }, 'connected to WhatsApp');
    this.keepalive.start();
  }

  onClose(err) {
    const was = this.status;
    this.sock = null;
    this.keepalive.stop();
    if (this.stopping || this.loggingOut) return;
    const code = statusCodeOf(err);
    const reason = reasonOf(err, code);
    this.lastDisconnect = { statusCode: code, reason, at: Date.now() };
    this.log.warn({ statusCode: code, reason, was }, 'connection closed');

    // a tunnel that never came up: the proxy is to blame, not WhatsApp
    if (this.proxy && was !== 'connected' && was !== 'qr') {
      const pf = proxyFailureOf(err, this.wsAgent, this.proxy.masked, Date.now() - this.connectStarted);
      if (pf) {
        this.reportProxyError(pf);
        this.setStatus('proxy_error');
        this.scheduleReconnect();
        return;
      }
    }
    switch (code) {
      case 401:
        this.endSession('logged_out', 401, `logged out by WhatsApp (${reason})`, true);
        return;
      case 440:
        // another client took this session over; reconnecting would take it back and
        // the two would evict each other in a loop
        this.endSession('replaced', 440, `connection replaced: another client opened this session (${reason})`, false);
        return;
      case 403:
      case 411:
        this.endSession('forbidden', code, reason, false);
        return;
      case 515:
        // normal right after linking: WhatsApp asks for a fresh connection
        this.log.info('restart required by WhatsApp, reconnecting now');
        this.connect();
        return;
      default:
        break;
    }
    if (was === 'qr' && code === 408) {
      // the QR codes of this connection ran out unscanned: a new connection brings new ones
      this.log.info('qr codes expired unscanned, renewing');
      this.scheduleReconnect(QR_RENEW_DELAY_MS);
      return;
    }
    // A connection that was up (or showing a QR) and is lost is reported. Attempts that
    // never got through are retried here quietly at first: the daemon answers a
    // DISCONNECTED by restarting the worker, and with WhatsApp unreachable every worker
    // would be restarted over and over. After UNREACHABLE_REPORT_MS of that it is reported.
    const live = was === 'connected' || was === 'qr';
    if (!live && !this.failingSince) this.failingSince = this.connectStarted || Date.now();
    const limit = this.config.unreachableReportMs;
    if (live || limit === 0 || Date.now() - this.failingSince >= limit) {
      this.reportDisconnected(code, reason, was === 'connected');
    } else {
      this.log.info({ statusCode: code, failingForMs: Date.now() - this.failingSince }, 'cannot reach WhatsApp yet, retrying (not reported yet)');
    }
    this.setStatus('disconnected');
    this.failQueued('the WhatsApp connection was lost', true);
    this.scheduleReconnect();
  }

  // While reconnecting fails the same way again and again, DISCONNECTED only once.
  reportDisconnected(code, reason, wasConnected) {
    const key = `${code}|${reason}`;
    if (!wasConnected && key === this.lastReported) {
      this.log.info({ statusCode: code }, 'still disconnected, not reported again');
      return;
    }
    this.lastReported = key;
    this.events.post('DISCONNECTED', { reason, statusCode: code, loggedOut: false });
  }

  reportProxyError(message) {
    const now = Date.now();
    const repeat = this.config.proxyErrorRepeatMs;
    if (this.proxyErrorAt && now - this.proxyErrorAt < repeat) {
      this.log.warn({ error: message }, 'proxy still failing (PROXY_ERROR already reported)');
      return;
    }
    this.proxyErrorAt = now;
    this.log.error({ error: message }, 'proxy failure, PROXY_ERROR posted');
    this.events.post('PROXY_ERROR', { error: message });
  }

  // A session that will not reconnect by itself: logged out (auth wiped), replaced, banned.
  async endSession(status, code, reason, loggedOut) {
    this.setStatus(status);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.failQueued(`the session ended: ${reason}`, true);
    if (loggedOut) {
      this.credsFrozen = true;
      try {
        const n = await this.wipeAuthFn(this.config.authDir);
        this.log.warn({ files: n }, 'logged out: Baileys auth files removed (sent.log kept)');
      } catch (e) {
        this.log.error({ err: errInfo(e) }, 'logged out, but the auth files could not all be removed');
      }
    }
    this.events.post('DISCONNECTED', { reason: reason.slice(0, 390), statusCode: code, loggedOut });
  }

  async stop() {
    this.stopping = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.keepalive.stop();
    this.failQueued('the worker is stopping', true);
    const cur = this.current;
    if (cur) {
      cur.abort.abort();
      // a message already handed to Baileys gets a moment to finish and be recorded
      if (cur.done) await withTimeout(cur.done, this.config.shutdownFlushMs, 'send in progress').catch(() => {});
    }
    const sock = this.sock;
    this.sock = null;
    this.gen++;
    if (sock) {
      try {
        sock.end(undefined); // closes the connection; the session stays linked
      } catch (e) {
        this.log.debug({ err: errInfo(e) }, 'socket end');
      }
    }
    if (!TERMINAL.has(this.status)) this.setStatus('stopped');
    if (this.auth?.flush) await withTimeout(this.auth.flush(), 2000, 'creds write').catch(() => {});
    await this.proxy?.close?.();
  }

  // ---- commands ------------------------------------------------------------------

  // POST /send: checks and accepts (or acknowledges a repeat) at once; typing and
  // sending happen afterwards, one message at a time, and end in MESSAGE_SENT or
  // MESSAGE_FAILED.
  acceptSend(o) {
    const id = o.messageId;
    if (!idValid(id)) throw new HttpError(400, 'INVALID_REQUEST', 'messageId must be a string of 1-128 bytes without control characters');
    if (typeof o.to !== 'string' || !/^[0-9]{8,15}$/.test(o.to)) throw new HttpError(400, 'INVALID_PHONE', 'to must be 8-15 digits');
    if (typeof o.text !== 'string' || o.text.length === 0 || o.text.includes('\0')) {
      throw new HttpError(400, 'INVALID_REQUEST', 'text must be a non-empty string');
    }
    let typingMs = 0;
    if (Object.prototype.hasOwnProperty.call(o, 'typingMs')) {
      if (!Number.isInteger(o.typingMs) || o.typingMs < 0 || o.typingMs > TYPING_PROTOCOL_MAX_MS) {
        throw new HttpError(400, 'INVALID_REQUEST', `typingMs must be an integer in 0..${TYPING_PROTOCOL_MAX_MS}`);
      }
      typingMs = o.typingMs;
    }
    const waMessageId = waMessageIdFor(this.config.secret, this.config.sessionId, id);

    // a repeat is answered whatever the connection: it needs nothing from WhatsApp
    if (this.inflight.has(id)) {
      // the first one is still on its way and will report itself
      this.counters.duplicates++;
      this.log.info({ messageId: id }, 'message repeated while in progress, not sent again');
      return [200, { ok: true, duplicate: true, waMessageId }];
    }
    if (this.sentLog.has(id)) {
      // MESSAGE_SENT again, in case the first one was lost
      this.counters.duplicates++;
      this.events.post('MESSAGE_SENT', { messageId: id, waMessageId });
      this.log.info({ messageId: id }, 'message repeated, not sent again');
      return [200, { ok: true, duplicate: true, waMessageId }];
    }
    if (!this.connected) throw new HttpError(409, 'NOT_CONNECTED', 'the WhatsApp session is not connected');
    if (this.sendQueue.length >= this.config.sendQueueMax) throw new HttpError(503, 'BUSY', 'too many messages waiting to be sent');

    const job = { id, to: o.to, text: o.text, typingMs, waMessageId, abort: new AbortController(), phase: 'queued', done: null };
    this.inflight.set(id, job);
    this.sendQueue.push(job);
    this.log.info({ messageId: id, typingMs, queued: this.sendQueue.length }, 'message accepted');
    this.processQueue();
    return [200, { ok: true, waMessageId }];
  }

  async processQueue() {
    if (this.processing) return;
    this.processing = true;
    try {
      while (this.sendQueue.length && !this.stopping) {
        const job = this.sendQueue.shift();
        this.current = job;
        let finish;
        job.done = new Promise((r) => {
          finish = r;
        });
        try {
          await this.runJob(job);
        } finally {
          this.current = null;
          finish();
        }
      }
    } finally {
      this.processing = false;
    }
  }

  async runJob(job) {
    try {
      await this.deliver(job);
    } catch (e) {
      if (e instanceof TimeoutError && job.phase === 'sending') {
        // handed to Baileys, no answer: it may still go out. A retry must not send a
        // second copy, so the id stays "in progress" until Baileys settles.
        this.failed(job, `no answer from WhatsApp within ${this.config.sendTimeoutMs} ms; the message may have been sent`, false, true);
        job.sendPromise.then(
          () => this.sent(job, true),
          () => this.inflight.delete(job.id),
        );
        return;
      }
      const se = e instanceof SendError ? e : e?.cause instanceof SendError ? e.cause : null;
      if (se) this.failed(job, se.message, se.retryable);
      else this.failed(job, `send failed: ${String(e?.message ?? e)}`, retryableOf(e));
      return;
    }
    await this.sent(job, false);
  }

  async sent(job, late) {
    // in memory at once (so this process never sends it again), on disk before MESSAGE_SENT
    try {
      await this.sentLog.add(job.id);
    } catch (e) {
      this.log.error({ messageId: job.id, err: errInfo(e) }, 'message sent but sent.log cannot record it: a retry after a restart would send it again');
    }
    this.inflight.delete(job.id);
    this.counters.sent++;
    this.events.post('MESSAGE_SENT', { messageId: job.id, waMessageId: job.waMessageId });
    this.log.info({ messageId: job.id, waMessageId: job.waMessageId, late }, 'message sent');
  }

  failed(job, error, retryable, keepInflight = false) {
    if (!keepInflight) this.inflight.delete(job.id);
    this.counters.failed++;
    this.events.post('MESSAGE_FAILED', { messageId: job.id, error: error.slice(0, 390), retryable });
    this.log.warn({ messageId: job.id, error, retryable }, 'message failed');
  }

  // Everything accepted but not started yet fails (retryable: nothing was sent).
  failQueued(error, retryable) {
    const q = this.sendQueue;
    this.sendQueue = [];
    for (const job of q) this.failed(job, error, retryable);
    if (this.current && this.current.phase !== 'sending') this.current.abort.abort(new SendError(error, retryable));
  }

  requireSocket() {
    if (!this.connected) throw new SendError('the WhatsApp session is not connected', true);
    return this.sock;
  }

  async deliver(job) {
    const signal = job.abort.signal;
    const jid = `${job.to}@s.whatsapp.net`;
    let sock = this.requireSocket();
    if (this.config.checkRecipient) {
      job.phase = 'checking';
      const exists = await this.recipientExists(sock, job.to);
      if (exists === false) throw new SendError('the number is not on WhatsApp', false);
    }
    signal.throwIfAborted();
    const typing = Math.min(job.typingMs, this.config.typingMaxMs);
    if (typing > 0) {
      job.phase = 'typing';
      await this.type(sock, jid, typing, signal);
    }
    signal.throwIfAborted();
    sock = this.requireSocket(); // the connection may have been renewed meanwhile
    job.phase = 'sending';
    job.sendPromise = Promise.resolve().then(() => sock.sendMessage(jid, { text: job.text }, { messageId: job.waMessageId }));
    const msg = await withTimeout(job.sendPromise, this.config.sendTimeoutMs, 'sendMessage');
    if (msg?.message) lruSet(this.recent, job.waMessageId, msg.message, RECENT_MAX);
    return msg;
  }

  // "typing..." for ms, then "paused". Presence problems never fail a send.
  async type(sock, jid, ms, signal) {
    const quiet = (p) => withTimeout(Promise.resolve().then(p), 5000, 'presence').catch((e) => this.log.debug({ err: errInfo(e) }, 'presence update failed'));
    await quiet(() => sock.presenceSubscribe?.(jid));
    let left = ms;
    while (left > 0) {
      await quiet(() => sock.sendPresenceUpdate('composing', jid));
      const step = Math.min(left, COMPOSING_REFRESH_MS);
      await sleep(step, undefined, { signal });
      left -= step;
    }
    await quiet(() => sock.sendPresenceUpdate('paused', jid));
  }

  // true / false from WhatsApp (cached), or null when it could not be asked.
  async recipientExists(sock, to) {
    const c = this.recipients.get(to);
    if (c && c.exp > Date.now()) return c.exists;
    let r;
    try {
      r = await withTimeout(sock.onWhatsApp(`${to}@s.whatsapp.net`), QUERY_TIMEOUT_MS, 'onWhatsApp');
    } catch (e) {
      this.log.warn({ to, err: errInfo(e) }, 'cannot check the recipient, sending anyway');
      return null;
    }
    if (!Array.isArray(r)) return null;
    const exists = r.some((x) => x && x.exists);
    lruSet(this.recipients, to, { exists, exp: Date.now() + (exists ? RECIPIENT_TTL_OK_MS : RECIPIENT_TTL_NO_MS) }, RECIPIENT_CACHE_MAX);
    return exists;
  }

  async logout() {
    if (this.status === 'logged_out') {
      this.events.post('DISCONNECTED', { reason: 'logged out by request', statusCode: 401, loggedOut: true });
      return;
    }
    this.loggingOut = true;
    try {
      if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
      this.keepalive.stop();
      const sock = this.sock;
      const wasConnected = this.connected;
      this.gen++;
      this.sock = null;
      if (sock) {
        try {
          // tells WhatsApp to remove this linked device; it ends the socket itself
          if (wasConnected) await withTimeout(sock.logout('logged out by request'), LOGOUT_TIMEOUT_MS, 'logout');
          else sock.end(undefined);
        } catch (e) {
          this.log.warn({ err: errInfo(e) }, 'WhatsApp did not confirm the logout; removing the local auth anyway');
          try {
            sock.end(undefined);
          } catch {}
        }
      }
      this.setStatus('logged_out');
      this.failQueued('the session was logged out', true);
      this.credsFrozen = true;
      let wipeError = null;
      try {
        const n = await this.wipeAuthFn(this.config.authDir);
        this.log.warn({ files: n }, 'logged out by request: Baileys auth files removed (sent.log kept)');
      } catch (e) {
        wipeError = e;
        this.log.error({ err: errInfo(e) }, 'cannot remove the auth files');
      }
      this.events.post('DISCONNECTED', { reason: 'logged out by request', statusCode: 401, loggedOut: true });
      if (wipeError) throw new HttpError(500, 'STORAGE_ERROR', 'cannot remove the auth files');
    } finally {
      this.loggingOut = false;
    }
  }

  // POST /pairing-code: asks WhatsApp for a code for phone on the current connection
  // (waiting for it to reach the login stage), posts PAIRING_CODE, returns the code.
  async pairingCode(phone) {
    if (this.linked || this.status === 'connected') throw new HttpError(409, 'ALREADY_LINKED', 'the session is already linked');
    if (TERMINAL.has(this.status)) throw new HttpError(409, 'SESSION_ENDED', `the session has ended (${this.status}); restart the worker`);
    this.pairingPhone = phone;
    this.loginMethod = 'pairing_code';
    const ready = await this.waitFor(() => (this.status === 'qr' && this.sock) || this.linked || TERMINAL.has(this.status), this.config.pairingWaitMs);
    if (this.linked) throw new HttpError(409, 'ALREADY_LINKED', 'the session is already linked');
    if (!ready || this.status !== 'qr' || !this.sock) throw new HttpError(503, 'NOT_READY', 'not connected to WhatsApp yet; try again shortly');
    try {
      // a request already under way (the QR that just arrived started one) is this one
      if (this.pairingPromise) return await this.pairingPromise;
      const last = this.lastPairing;
      if (last && last.gen === this.gen && last.phone === phone) return last.code;
      return await this.requestPairing(this.gen, this.sock, phone);
    } catch (e) {
      this.log.warn({ err: errInfo(e) }, 'pairing code request failed');
      throw new HttpError(503, 'PAIRING_FAILED', `WhatsApp did not give a pairing code: ${String(e?.message ?? e).slice(0, 200)}`);
    }
  }

  // ---- incoming ---------------------------------------------------------------------

  async onUpsert(gen, sock, { messages, type }) {
    if (type !== 'notify' || !Array.isArray(messages)) return;
    for (const m of messages) {
      const key = m?.key;
      if (!key || key.fromMe || !key.id) continue;
      const jid = key.remoteJid;
      if (!jid || isJidGroup(jid) || isJidBroadcast(jid) || isJidNewsletter(jid)) continue;
      const content = normalizeMessageContent(m.message);
      const text = content?.conversation || content?.extendedTextMessage?.text;
      if (typeof text !== 'string' || text.length === 0) continue;
      if (this.seen.has(key.id)) continue;
      lruSet(this.seen, key.id, true, SEEN_MAX);
      const from = (await this.phoneOfSender(sock, key, m)) ?? jid;
      const data = { from: String(from).slice(0, 64), text, waMessageId: key.id, timestamp: tsMs(m.messageTimestamp) };
      if (from === jid) data.unresolvedLid = true;
      if (m.pushName) data.pushName = String(m.pushName).slice(0, 128);
      this.counters.received++;
      this.events.post('MESSAGE_RECEIVED', data);
      this.log.info({ waMessageId: key.id }, 'message received');
    }
  }

  // The sender's phone digits. A chat addressed by LID carries the phone, when WhatsApp
  // shares it, in key.remoteJidAlt (Baileys 7) - or the older senderPn; else Baileys'
  // own LID->phone mapping store is asked. null when the phone is not known.
  async phoneOfSender(sock, key, m) {
    for (const j of [key.remoteJid, key.remoteJidAlt, key.senderPn, m.senderPn]) {
      const p = phoneOfJid(j);
      if (p) return p;
    }
    if (isLidUser(key.remoteJid) && sock?.signalRepository?.lidMapping?.getPNForLID) {
      try {
        const pn = await withTimeout(sock.signalRepository.lidMapping.getPNForLID(key.remoteJid), 5000, 'lid lookup');
        const p = phoneOfJid(pn);
        if (p) return p;
      } catch (e) {
        this.log.debug({ err: errInfo(e) }, 'lid lookup failed');
      }
    }
    return null;
  }

  // ---- keep-alive -----------------------------------------------------------------

  async keepalivePresence() {
    const sock = this.connected ? this.sock : null;
    if (!sock) return;
    // Baileys drops (with a warning) an "available" without the account's push name,
    // which WhatsApp sends shortly after the first connection
    if (!this.auth.creds.me?.name) {
      this.log.debug('presence skipped: the push name is not known yet');
      return;
    }
    await withTimeout(sock.sendPresenceUpdate('available'), QUERY_TIMEOUT_MS, 'presence');
  }

  async keepaliveSelfMessage() {
    const sock = this.connected ? this.sock : null;
    if (!sock || !sock.user?.id) return;
    const me = jidNormalizedUser(sock.user.id);
    await withTimeout(sock.sendMessage(me, { text: SELF_MESSAGE_TEXT }, { ephemeralExpiration: SELF_MESSAGE_EPHEMERAL_S }), QUERY_TIMEOUT_MS, 'self message');
  }

  health() {
    return {
      status: this.status,
      linked: this.linked,
      connected: this.connected,
      phoneNumber: this.phone,
      loginMethod: this.loginMethod,
      connectedSinceMs: this.connected ? Date.now() - this.connectedAt : null,
      lastDisconnect: this.lastDisconnect,
      reconnectInMs: this.reconnectTimer ? Math.max(0, this.nextReconnectAt - Date.now()) : null,
      pendingSends: this.inflight.size,
      keepalive: { presenceMs: this.config.presenceMs, selfMessageMs: this.config.selfMessageMs, ...this.keepalive.counts },
      messages: { ...this.counters },
    };
  }
}
