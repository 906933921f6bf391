// A fake Twilio REST API (2010-04-01 Calls) for the integration tests, on loopback only.
//
// It checks the exact request it got (HTTP Basic auth, form-encoded body, required and
// well-formed fields) and answers the way Twilio does (JSON shapes, error codes, 201 with
// status 'queued'). Each created call then runs its lifecycle on timers and posts signed
// status callbacks (X-Twilio-Signature made by the official `twilio` package). It can also
// answer slowly, wrongly or not at all, lose or repeat or reorder callbacks, and counts
// the highest number of calls active at once.
//
//   const tw = await startFakeTwilio({ ringMs: 20, answerMs: 20, durationMs: 50 });
//   // daemon env: TWILIO_API_BASE=tw.url TWILIO_ACCOUNT_SID=tw.accountSid TWILIO_AUTH_TOKEN=tw.authToken
//   ...
//   await tw.waitFor((t) => t.callList().length === 3 && t.active() === 0, 5000);
//   assert.equal(tw.maxActive, 3);
//   await tw.close();
//
// Only loopback: the server listens on 127.0.0.1, and callbacks (or TwiML fetches) to any
// other host are not sent but recorded with an error.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import twilio from 'twilio';

export const API_VERSION = '2010-04-01';
export const TERMINAL = Object.freeze(['completed', 'busy', 'no-answer', 'failed', 'canceled']);
export const CALL_STATUSES = Object.freeze(['queued', 'ringing', 'in-progress', ...TERMINAL]);
export const CALLBACK_EVENTS = Object.freeze(['initiated', 'ringing', 'answered', 'completed']);

const hex = (n) => randomBytes(n).toString('hex');
export const newSid = (prefix) => prefix + hex(16);

// RFC 2822 like Twilio: "Mon, 30 Nov 2026 10:00:00 +0000"
export function rfc2822(ms) {
  return new Date(ms).toUTCString().replace(/GMT$/, '+0000');
}

const E164 = /^\+[1-9]\d{1,14}$/;
const NEVER = (ms) => ms === null || ms === undefined || ms === Infinity || ms >= 2 ** 31 - 1;

const DEFAULTS = Object.freeze({
  // lifecycle (ms); null or Infinity = stay in that state until the API or endCall() moves it
  initiateMs: 5, // create -> 'initiated' callback (start_time set)
  ringMs: 20, // initiated -> ringing (or -> failed for outcome 'failed')
  answerMs: 20, // ringing -> in-progress (or -> busy / canceled)
  noAnswerMs: null, // ringing -> no-answer; null = answerMs
  durationMs: 50, // in-progress -> completed
  callDurationSec: null, // CallDuration/duration reported; null = ceil(answered time / 1000)
  outcome: 'completed', // completed | busy | no-answer | failed | canceled
  outcomes: {}, // To -> outcome
  byTo: {}, // To -> { any lifecycle/callback option above or below } overrides
  // create
  createDelayMs: 0, // answer the create this late (the call exists from the start)
  createHang: false, // never answer any create (no call is created)
  createFailures: [], // queue, one consumed per valid create: {status, code, message, afterCreate, hang, reset, delayMs, body, headers}
  createErrors: {}, // To -> {status, code, message}: always rejected (after validation)
  allowedFrom: null, // array of From numbers allowed, else 21210; null = any valid E.164
  // other endpoints: queues consumed one per request, same entry shape as createFailures
  listFailures: [],
  fetchFailures: [],
  updateFailures: [],
  apiDelayMs: 0, // delay for list/fetch/update answers
  // callbacks
  callbackDelayMs: 0,
  orderedCallbacks: true, // a call's callbacks go one at a time, each after the previous one's answer
  callbackTimeoutMs: 15000,
  dropFinalCallback: false, // the terminal callback is lost (the call still ends here)
  duplicateCallbacks: false, // each callback is sent twice (same SequenceNumber, token, signature)
  reorderCallbacks: false, // the 'ringing' callback is held and sent after the next one
  badSignature: false, // X-Twilio-Signature made with a wrong token
  alwaysSendFinal: true, // terminal callback even when StatusCallbackEvent lacks 'completed'
  extraCallbackParams: {}, // merged into every callback's params
  fetchTwiml: false, // on answer, request Url (loopback only) like Twilio, signed
});

function countryOf(num) {
  if (/^\+1/.test(num)) return 'US';
  const cc = { '+44': 'GB', '+49': 'DE', '+33': 'FR', '+972': 'IL', '+7': 'RU', '+34': 'ES', '+39': 'IT', '+55': 'BR' };
  for (const [p, c] of Object.entries(cc)) if (num.startsWith(p)) return c;
  return '';
}

function formatted(num) {
  const m = /^\+1(\d{3})(\d{3})(\d{4})$/.exec(num);
  return m ? `(${m[1]}) ${m[2]}-${m[3]}` : num;
}

// form/query pairs -> object: a key given once maps to its string, a repeated key to an array
function pairsToObject(pairs) {
  const o = {};
  for (const [k, v] of pairs) {
    if (!(k in o)) o[k] = v;
    else if (Array.isArray(o[k])) o[k].push(v);
    else o[k] = [o[k], v];
  }
  return o;
}

function isLoopbackHost(host) {
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

// Splits an absolute http(s) URL without normalising its path or query (the signature is
// over the exact characters). Returns null when it is not one.
function splitUrl(url) {
  const m = /^(https?):\/\/([^/?#@]*)([^#]*)/i.exec(url);
  if (!m) return null;
  const authority = m[2];
  const hm = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(authority);
  if (!hm) return null;
  return {
    scheme: m[1].toLowerCase(),
    authority,
    host: hm[1].toLowerCase(),
    port: hm[2] ? Number(hm[2]) : m[1].toLowerCase() === 'https' ? 443 : 80,
    path: m[3] || '/',
    noFragment: url.replace(/#.*$/, ''),
  };
}

function validUrl(u) {
  if (typeof u !== 'string' || u.length > 4000) return false;
  const s = splitUrl(u);
  if (!s || !s.host) return false;
  try {
    new URL(u);
  } catch {
    return false;
  }
  return true;
}

function errBody(status, code, message) {
  return { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function startFakeTwilio(opts = {}) {
  const accountSid = opts.accountSid || newSid('AC');
  const authToken = opts.authToken || hex(16);
  const now = opts.now || (() => Date.now());
  const events = new EventEmitter();
  events.setMaxListeners(0);

  let api = null;
  const behaviour = {};
  for (const [k, v] of Object.entries(DEFAULTS)) behaviour[k] = Array.isArray(v) ? [] : v && typeof v === 'object' ? {} : v;
  const { accountSid: _a, authToken: _t, now: _n, port: _p, ...initial } = opts;
  set(initial);

  const calls = new Map();
  const requests = [];
  const callbacks = [];
  const timers = new Set();
  const inflight = new Set();
  let closed = false;
  let activeCount = 0;
  let maxActive = 0;
  let seqNo = 0;
  let callNo = 0;

  function set(b = {}) {
    for (const [k, v] of Object.entries(b)) {
      if (!(k in DEFAULTS)) throw new Error(`fake twilio: unknown behaviour option '${k}'`);
      behaviour[k] = Array.isArray(v) ? [...v] : v;
    }
    const outs = [behaviour.outcome, ...Object.values(behaviour.outcomes), ...Object.values(behaviour.byTo).map((o) => o.outcome).filter(Boolean)];
    for (const o of outs) if (!TERMINAL.includes(o)) throw new Error(`fake twilio: bad outcome '${o}' (one of ${TERMINAL.join(', ')})`);
    for (const o of Object.values(behaviour.byTo))
      for (const k of Object.keys(o)) if (!(k in DEFAULTS)) throw new Error(`fake twilio: unknown byTo option '${k}'`);
    return api;
  }

  // the behaviour in force for a call: defaults < set() < outcomes[To] < byTo[To]
  function eff(call) {
    const e = { ...behaviour };
    if (call && behaviour.outcomes[call.to]) e.outcome = behaviour.outcomes[call.to];
    if (call && behaviour.byTo[call.to]) Object.assign(e, behaviour.byTo[call.to]);
    return e;
  }

  function changed(kind, ...args) {
    if (kind) events.emit(kind, ...args);
    events.emit('change');
  }

  function later(ms, fn) {
    if (closed) return null;
    const t = setTimeout(() => {
      timers.delete(t);
      if (!closed) fn();
    }, Math.max(0, ms || 0));
    timers.add(t);
    return t;
  }
  const sleep = (ms) => new Promise((r) => (ms > 0 ? later(ms, r) || r() : r()));

  // ---------------------------------------------------------------- call resource

  function callJson(c) {
    const base = `/${API_VERSION}/Accounts/${accountSid}/Calls/${c.sid}`;
    return {
      account_sid: accountSid,
      annotation: null,
      answered_by: null,
      api_version: API_VERSION,
      caller_name: null,
      date_created: rfc2822(c.createdAt),
      date_updated: rfc2822(c.updatedAt),
      direction: 'outbound-api',
      duration: c.duration === null ? null : String(c.duration),
      end_time: c.endedAt === null ? null : rfc2822(c.endedAt),
      forwarded_from: null,
      from: c.from,
      from_formatted: formatted(c.from),
      group_sid: null,
      parent_call_sid: null,
      phone_number_sid: c.phoneNumberSid,
      price: null,
      price_unit: 'USD',
      queue_time: '0',
      sid: c.sid,
      start_time: c.startedAt === null ? null : rfc2822(c.startedAt),
      status: c.status,
      subresource_uris: {
        user_defined_message_subscriptions: `${base}/UserDefinedMessageSubscriptions.json`,
        notifications: `${base}/Notifications.json`,
        recordings: `${base}/Recordings.json`,
        streams: `${base}/Streams.json`,
        payments: `${base}/Payments.json`,
        user_defined_messages: `${base}/UserDefinedMessages.json`,
        events: `${base}/Events.json`,
        siprec: `${base}/Siprec.json`,
        transcriptions: `${base}/Transcriptions.json`,
      },
      to: c.to,
      to_formatted: formatted(c.to),
      trunk_sid: null,
      uri: `${base}.json`,
    };
  }

  // listeners hear of it (changed('status')) only once the callback for it is queued too
  function setStatus(call, status) {
    call.status = status;
    call.updatedAt = now();
    call.history.push({ status, at: call.updatedAt });
  }

  // ---------------------------------------------------------------- lifecycle

  function schedule(call, ms, fn) {
    clearTimeout(call.timer);
    timers.delete(call.timer);
    call.timer = NEVER(ms) ? null : later(ms, fn);
  }

  function startLifecycle(call) {
    schedule(call, eff(call).initiateMs, () => initiated(call));
  }

  function initiated(call) {
    if (call.status !== 'queued') return;
    call.startedAt = now();
    call.updatedAt = call.startedAt;
    call.initiated = true;
    statusCallback(call, 'initiated', 'initiated');
    changed();
    const e = eff(call);
    if (e.outcome === 'failed') schedule(call, e.ringMs, () => finish(call, 'failed'));
    else schedule(call, e.ringMs, () => ringing(call));
  }

  function ringing(call) {
    if (call.status !== 'queued') return;
    setStatus(call, 'ringing');
    statusCallback(call, 'ringing', 'ringing');
    changed('status', call, 'ringing');
    const e = eff(call);
    if (e.outcome === 'completed') schedule(call, e.answerMs, () => answered(call));
    else if (e.outcome === 'no-answer') schedule(call, e.noAnswerMs ?? e.answerMs, () => finish(call, 'no-answer'));
    else schedule(call, e.answerMs, () => finish(call, e.outcome));
  }

  function answered(call) {
    if (call.status !== 'queued' && call.status !== 'ringing') return;
    call.answeredAt = now();
    setStatus(call, 'in-progress');
    statusCallback(call, 'answered', 'in-progress');
    changed('status', call, 'in-progress');
    const e = eff(call);
    if (e.fetchTwiml && call.params.Url) fetchTwiml(call);
    schedule(call, e.durationMs, () => finish(call, 'completed'));
  }

  function finish(call, status) {
    if (TERMINAL.includes(call.status)) return false;
    schedule(call, null);
    if (!call.startedAt) call.startedAt = now();
    call.endedAt = now();
    const e = eff(call);
    if (call.answeredAt !== null) {
      call.duration = e.callDurationSec ?? Math.max(1, Math.ceil((call.endedAt - call.answeredAt) / 1000));
    } else {
      call.duration = 0;
    }
    activeCount--;
    setStatus(call, status);
    const subscribedFinal = call.events.length === 0 || call.events.includes('completed');
    if (subscribedFinal || e.alwaysSendFinal) statusCallback(call, 'completed', status);
    else releaseHeld(call);
    changed('status', call, status);
    return true;
  }

  // ---------------------------------------------------------------- callbacks

  function cbParams(call, callStatus, seq, ts) {
    const p = {
      AccountSid: accountSid,
      ApiVersion: API_VERSION,
      CallSid: call.sid,
      CallStatus: callStatus,
      Called: call.to,
      CalledCity: '',
      CalledCountry: countryOf(call.to),
      CalledState: '',
      CalledZip: '',
      Caller: call.from,
      CallerCity: '',
      CallerCountry: countryOf(call.from),
      CallerState: '',
      CallerZip: '',
      Direction: 'outbound-api',
      From: call.from,
      FromCity: '',
      FromCountry: countryOf(call.from),
      FromState: '',
      FromZip: '',
      To: call.to,
      ToCity: '',
      ToCountry: countryOf(call.to),
      ToState: '',
      ToZip: '',
    };
    if (seq !== null) {
      p.CallbackSource = 'call-progress-events';
      p.SequenceNumber = String(seq);
      p.Timestamp = rfc2822(ts);
    }
    if (TERMINAL.includes(callStatus)) p.CallDuration = String(call.duration ?? 0);
    return p;
  }

  // Builds the signed request for url/method/params. GET puts the params in the query
  // string and signs that full URL with no body params, as Twilio does.
  function signedRequest(call, url, method, params, e) {
    const parts = splitUrl(url);
    let fullUrl = parts ? parts.noFragment : url;
    let body = null;
    let signParams = params;
    const encoded = new URLSearchParams(params).toString();
    if (method === 'GET') {
      fullUrl += (fullUrl.includes('?') ? '&' : '?') + encoded;
      signParams = {};
    } else {
      body = encoded;
    }
    const token = e.badSignature ? authToken + 'x' : authToken;
    const signature = twilio.getExpectedTwilioSignature(token, fullUrl, signParams);
    return { url: fullUrl, body, signature };
  }

  function statusCallback(call, event, callStatus) {
    const e = eff(call);
    if (!call.statusCallback) return null;
    const terminal = event === 'completed';
    if (!terminal && !call.events.includes(event)) return null;
    const ts = now();
    const seq = call.seq++;
    const params = { ...cbParams(call, callStatus, seq, ts), ...e.extraCallbackParams };
    const method = call.statusCallbackMethod;
    const sreq = signedRequest(call, call.statusCallback, method, params, e);
    const rec = {
      kind: 'status',
      n: seqNo++,
      sid: call.sid,
      event,
      callStatus,
      sequenceNumber: seq,
      url: sreq.url,
      method,
      params,
      body: sreq.body,
      signature: sreq.signature,
      badSignature: !!e.badSignature,
      idempotencyToken: `${call.sid}-${hex(8)}`,
      dropped: terminal && !!e.dropFinalCallback,
      duplicate: !!e.duplicateCallbacks,
      reordered: false,
      createdAt: ts,
      deliveries: [], // one per copy sent: {sentAt, doneAt, status, body, error}
      status: null, // HTTP status of the (last) answer, null when none
      error: null,
      done: false,
    };
    call.callbacks.push(rec);
    callbacks.push(rec);
    if (rec.dropped) {
      rec.done = true;
      changed('callback', rec, call);
      releaseHeld(call);
      return rec;
    }
    if (e.reorderCallbacks && event === 'ringing') {
      rec.reordered = true;
      call.held = rec;
      return rec;
    }
    const held = call.held;
    call.held = null;
    enqueue(call, rec, e);
    if (held) enqueue(call, held, e);
    return rec;
  }

  function releaseHeld(call) {
    const held = call.held;
    if (!held) return;
    call.held = null;
    enqueue(call, held, eff(call));
  }

  // sends rec callbackDelayMs from now; when ordered, also not before the call's previous
  // callback got its answer (or failed)
  function enqueue(call, rec, e) {
    const ready = sleep(e.callbackDelayMs);
    if (!e.orderedCallbacks) {
      ready.then(() => deliver(rec, e));
      return;
    }
    call.chain = call.chain.then(() => ready).then(() => deliver(rec, e));
  }

  async function deliver(rec, e) {
    const copies = rec.duplicate ? 2 : 1;
    for (let i = 0; i < copies && !closed; i++) {
      const d = { sentAt: now(), doneAt: null, status: null, body: null, error: null };
      rec.deliveries.push(d);
      const headers = {
        'Content-Type': 'application/x-www-form-urlencoded',
        'User-Agent': 'TwilioProxy/1.1',
        Accept: '*/*',
        'X-Twilio-Signature': rec.signature,
        'I-Twilio-Idempotency-Token': rec.idempotencyToken,
        'X-Home-Region': 'us1',
        'Cache-Control': 'max-age=259200',
      };
      const r = await send(rec.url, rec.method, headers, rec.body, e.callbackTimeoutMs);
      Object.assign(d, r, { doneAt: now() });
      rec.status = r.status;
      rec.error = r.error;
    }
    rec.done = true;
    const call = calls.get(rec.sid);
    changed(rec.kind === 'twiml' ? 'twiml' : 'callback', rec, call);
  }

  function fetchTwiml(call) {
    const e = eff(call);
    const method = call.params.Method || 'POST';
    const params = cbParams(call, 'in-progress', null, now());
    const sreq = signedRequest(call, call.params.Url, method, params, e);
    const rec = {
      kind: 'twiml',
      n: seqNo++,
      sid: call.sid,
      url: sreq.url,
      method,
      params,
      body: sreq.body,
      signature: sreq.signature,
      idempotencyToken: `${call.sid}-${hex(8)}`,
      duplicate: false,
      createdAt: now(),
      deliveries: [],
      status: null,
      error: null,
      done: false,
    };
    call.twimlRequests.push(rec);
    deliver(rec, e);
  }

  // One HTTP request to a loopback URL; resolves {status, body, error}, never rejects.
  function send(url, method, headers, body, timeoutMs) {
    return new Promise((resolve) => {
      const parts = splitUrl(url);
      if (!parts) return resolve({ status: null, body: null, error: `not an absolute http(s) URL: ${url}` });
      if (parts.scheme !== 'http') return resolve({ status: null, body: null, error: `fake sends http only: ${url}` });
      if (!isLoopbackHost(parts.host)) return resolve({ status: null, body: null, error: `not loopback, not sent: ${parts.host}` });
      const host = parts.host === 'localhost' ? '127.0.0.1' : parts.host.replace(/^\[|\]$/g, '');
      const h = { ...headers, Host: parts.authority };
      if (body !== null) h['Content-Length'] = Buffer.byteLength(body);
      let req;
      try {
        req = http.request({ host, port: parts.port, method, path: parts.path, headers: h, agent: false });
      } catch (err) {
        return resolve({ status: null, body: null, error: String(err.message || err) });
      }
      inflight.add(req);
      let settled = false;
      const done = (r) => {
        if (settled) return;
        settled = true;
        inflight.delete(req);
        resolve(r);
      };
      req.setTimeout(timeoutMs, () => {
        req.destroy(new Error(`no answer within ${timeoutMs} ms`));
      });
      req.on('error', (err) => done({ status: null, body: null, error: String(err.message || err) }));
      req.on('close', () => setImmediate(() => done({ status: null, body: null, error: closed ? 'fake closed' : 'connection closed' })));
      req.on('response', (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => done({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), error: null }));
        res.on('error', (err) => done({ status: res.statusCode, body: null, error: String(err.message || err) }));
      });
      req.end(body ?? undefined);
    });
  }

  // ---------------------------------------------------------------- HTTP API

  function reply(res, rec, status, obj, headers = {}) {
    const body = typeof obj === 'string' ? obj : JSON.stringify(obj);
    rec.answer = { status, body };
    changed();
    if (res.destroyed) return;
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Twilio-Request-Id': 'RQ' + hex(16),
      ...headers,
    });
    res.end(body);
  }

  function fail(res, rec, status, code, message, headers) {
    reply(res, rec, status, errBody(status, code, message), headers);
  }

  // applies a failure entry: {status, code, message, hang, reset, delayMs, body, headers}
  async function injectFailure(res, rec, f, okBody) {
    if (f.delayMs) await sleep(f.delayMs);
    if (f.hang) {
      rec.answer = { status: null, hang: true };
      changed();
      return;
    }
    if (f.reset) {
      rec.answer = { status: null, reset: true };
      changed();
      res.socket?.destroy();
      return;
    }
    const status = f.status ?? 500;
    let body = f.body;
    if (body === undefined) {
      if (status < 300 && okBody) body = okBody;
      else {
        const code = f.code ?? (status === 429 ? 20429 : status === 503 ? 20503 : status >= 500 ? 20500 : 20001);
        const msg = f.message ?? (status === 429 ? 'Too Many Requests' : status === 503 ? 'Service Unavailable' : status >= 500 ? 'Internal Server Error' : 'Bad Request');
        body = errBody(status, code, msg);
      }
    }
    reply(res, rec, status, body, f.headers);
  }

  function single(params, name) {
    const v = params[name];
    if (Array.isArray(v)) throw new ApiError(400, 21200, `Parameter '${name}' was given ${v.length} times`);
    return v;
  }

  function createCall(rec) {
    const p = rec.params;
    const to = single(p, 'To');
    const from = single(p, 'From');
    const url = single(p, 'Url');
    const twiml = single(p, 'Twiml');
    const appSid = single(p, 'ApplicationSid');
    if (to === undefined || to === '') throw new ApiError(400, 21201, "No 'To' number is specified");
    if (!E164.test(to)) throw new ApiError(400, 21211, `Invalid 'To' Phone Number: ${to}`);
    if (from === undefined || from === '') throw new ApiError(400, 21213, "No 'From' number is specified");
    if (!E164.test(from)) throw new ApiError(400, 21212, `Invalid From Number (caller ID): ${from}`);
    if ((url === undefined || url === '') && !twiml && !appSid)
      throw new ApiError(400, 21205, "Url parameter is required. Please provide a 'Url', 'Twiml' or 'ApplicationSid'.");
    if (url !== undefined && !validUrl(url)) throw new ApiError(400, 21205, `Url is not a valid URL: ${url}`);
    for (const m of ['Method', 'StatusCallbackMethod', 'FallbackMethod']) {
      const v = single(p, m);
      if (v !== undefined && !['GET', 'POST'].includes(v.toUpperCase()))
        throw new ApiError(400, 21200, `${m} must be either GET or POST`);
    }
    const sc = single(p, 'StatusCallback');
    if (sc !== undefined && !validUrl(sc)) throw new ApiError(400, 21205, `StatusCallback is not a valid URL: ${sc}`);
    const raw = p.StatusCallbackEvent === undefined ? [] : [].concat(p.StatusCallbackEvent);
    const evs = [];
    for (const v of raw) {
      const parts = v.trim().split(/\s+/).filter(Boolean);
      if (parts.length === 0) throw new ApiError(400, 21200, 'StatusCallbackEvent must not be empty');
      for (const ev of parts) {
        if (!CALLBACK_EVENTS.includes(ev.toLowerCase()))
          throw new ApiError(400, 21200, `Invalid StatusCallbackEvent: ${ev}. Allowed: ${CALLBACK_EVENTS.join(', ')}`);
        if (!evs.includes(ev.toLowerCase())) evs.push(ev.toLowerCase());
      }
    }
    const timeout = single(p, 'Timeout');
    if (timeout !== undefined && !(/^\d+$/.test(timeout) && Number(timeout) >= 1 && Number(timeout) <= 600))
      throw new ApiError(400, 21208, `Invalid Timeout: ${timeout}`);
    if (behaviour.allowedFrom && !behaviour.allowedFrom.includes(from))
      throw new ApiError(400, 21210, `The source phone number provided, ${from}, is not yet verified for your account. You may only make calls from phone numbers that you've verified or purchased from Twilio.`);
    const ce = behaviour.createErrors[to];
    if (ce) throw new ApiError(ce.status ?? 400, ce.code ?? 21211, ce.message ?? `Invalid 'To' Phone Number: ${to}`);
    return {
      to,
      from,
      events: evs,
      statusCallback: sc ?? null,
      statusCallbackMethod: (single(p, 'StatusCallbackMethod') || 'POST').toUpperCase(),
      timeout: timeout === undefined ? 60 : Number(timeout),
    };
  }

  function makeCall(rec, v) {
    const t = now();
    const call = {
      n: callNo++,
      sid: newSid('CA'),
      to: v.to,
      from: v.from,
      status: 'queued',
      params: rec.params, // the create's form params as received
      request: rec,
      statusCallback: v.statusCallback,
      statusCallbackMethod: v.statusCallbackMethod,
      events: v.events, // subscribed StatusCallbackEvent values, lower-case, in order
      timeout: v.timeout,
      phoneNumberSid: 'PN' + hex(16),
      createdAt: t,
      updatedAt: t,
      startedAt: null,
      answeredAt: null,
      endedAt: null,
      duration: null,
      initiated: false,
      history: [{ status: 'queued', at: t }],
      callbacks: [],
      twimlRequests: [],
      updates: [], // update requests applied to this call
      seq: 0,
      held: null,
      chain: Promise.resolve(),
      timer: null,
      json: () => callJson(call),
    };
    calls.set(call.sid, call);
    rec.callSid = call.sid;
    activeCount++;
    if (activeCount > maxActive) maxActive = activeCount;
    changed('create', call, rec);
    startLifecycle(call);
    return call;
  }

  async function handleCreate(rec, res) {
    let v;
    try {
      v = createCall(rec);
    } catch (err) {
      if (err instanceof ApiError) return fail(res, rec, err.status, err.code, err.message);
      throw err;
    }
    if (behaviour.createHang) {
      rec.answer = { status: null, hang: true };
      changed();
      return;
    }
    const f = behaviour.createFailures.length ? behaviour.createFailures.shift() : null;
    if (f && !f.afterCreate) return injectFailure(res, rec, f);
    const call = makeCall(rec, v);
    if (f) return injectFailure(res, rec, f, callJson(call));
    if (behaviour.createDelayMs) await sleep(behaviour.createDelayMs);
    reply(res, rec, 201, callJson(call));
  }

  function parseTimeFilter(name, v) {
    if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
      const t = Date.parse(v + 'T00:00:00Z');
      if (!Number.isNaN(t)) return { day: true, t };
    }
    const t = Date.parse(v);
    if (Number.isNaN(t)) throw new ApiError(400, 20001, `Invalid ${name}: ${v}`);
    return { day: false, t };
  }

  const DAY = 86400000;

  function handleList(rec, res) {
    const q = rec.query;
    const one = (k) => (Array.isArray(q[k]) ? q[k][q[k].length - 1] : q[k]);
    let list = [...calls.values()];
    const to = one('To');
    const from = one('From');
    const status = one('Status');
    if (to !== undefined) list = list.filter((c) => c.to === to);
    if (from !== undefined) list = list.filter((c) => c.from === from);
    if (status !== undefined) {
      if (!CALL_STATUSES.includes(status)) throw new ApiError(400, 20001, `Invalid Status: ${status}`);
      list = list.filter((c) => c.status === status);
    }
    // StartTime filters use the creation time (a queued call has no start_time yet);
    // EndTime filters use end_time. A date (YYYY-MM-DD, UTC) covers its whole day.
    for (const [field, get] of [
      ['StartTime', (c) => c.createdAt],
      ['EndTime', (c) => c.endedAt],
    ]) {
      const eq = one(field);
      const ge = one(field + '>') ?? one(field + '>=');
      const le = one(field + '<') ?? one(field + '<=');
      if (eq !== undefined) {
        const f = parseTimeFilter(field, eq);
        list = list.filter((c) => get(c) !== null && (f.day ? get(c) >= f.t && get(c) < f.t + DAY : Math.floor(get(c) / 1000) === Math.floor(f.t / 1000)));
      }
      if (ge !== undefined) {
        const f = parseTimeFilter(field + '>', ge);
        list = list.filter((c) => get(c) !== null && get(c) >= f.t);
      }
      if (le !== undefined) {
        const f = parseTimeFilter(field + '<', le);
        list = list.filter((c) => get(c) !== null && (f.day ? get(c) < f.t + DAY : get(c) <= f.t));
      }
    }
    const psRaw = one('PageSize') ?? '50';
    if (!/^\d+$/.test(psRaw) || Number(psRaw) < 1 || Number(psRaw) > 1000) throw new ApiError(400, 20001, `Invalid PageSize: ${psRaw}`);
    const pageSize = Number(psRaw);
    const pgRaw = one('Page') ?? '0';
    if (!/^\d+$/.test(pgRaw)) throw new ApiError(400, 20001, `Invalid Page: ${pgRaw}`);
    const page = Number(pgRaw);
    list.sort((a, b) => b.createdAt - a.createdAt || b.n - a.n);
    const start = page * pageSize;
    const slice = list.slice(start, start + pageSize);
    const filt = new URLSearchParams();
    for (const [k, vv] of rec.queryPairs) if (!['PageSize', 'Page', 'PageToken'].includes(k)) filt.append(k, vv);
    const base = `/${API_VERSION}/Accounts/${accountSid}/Calls.json`;
    const uriFor = (pg) => {
      const u = new URLSearchParams(filt);
      u.set('PageSize', String(pageSize));
      u.set('Page', String(pg));
      if (pg > 0) u.set('PageToken', 'PA' + (list[pg * pageSize - 1]?.sid ?? ''));
      return `${base}?${u}`;
    };
    reply(res, rec, 200, {
      calls: slice.map(callJson),
      end: slice.length ? start + slice.length - 1 : 0,
      first_page_uri: uriFor(0),
      next_page_uri: start + pageSize < list.length ? uriFor(page + 1) : null,
      page,
      page_size: pageSize,
      previous_page_uri: page > 0 ? uriFor(page - 1) : null,
      start,
      uri: uriFor(page),
    });
  }

  // applies an update; returns the call's JSON or throws ApiError
  function applyUpdate(rec, call) {
    const p = rec.params;
    const status = single(p, 'Status');
    const url = single(p, 'Url');
    const twiml = single(p, 'Twiml');
    if (status === undefined && url === undefined && twiml === undefined)
      throw new ApiError(400, 21200, "Either 'Status', 'Url' or 'Twiml' is required");
    if (status !== undefined && !['canceled', 'completed'].includes(status))
      throw new ApiError(400, 21200, `Invalid Status: ${status}. Allowed: canceled, completed`);
    if (url !== undefined && !validUrl(url)) throw new ApiError(400, 21205, `Url is not a valid URL: ${url}`);
    if (TERMINAL.includes(call.status)) throw new ApiError(400, 21220, 'Call is not in-progress. Cannot redirect.');
    let applied = 'redirect';
    if (status === 'canceled') {
      // Twilio: cancels a queued or ringing call; no effect on one in progress
      if (call.status === 'in-progress') applied = 'none';
      else {
        finish(call, 'canceled');
        applied = 'canceled';
      }
    } else if (status === 'completed') {
      applied = call.status === 'in-progress' ? 'completed' : 'canceled';
      finish(call, applied);
    }
    call.updates.push({ request: rec, params: p, applied, at: now() });
    rec.applied = applied;
    call.updatedAt = now();
    changed();
    return callJson(call);
  }

  async function route(req, res, rec) {
    const m = /^\/2010-04-01\/Accounts\/([^/]+)\/Calls(?:\/([^/]+))?\.json$/.exec(rec.path);
    if (!m) return fail(res, rec, 404, 20404, `The requested resource ${rec.path} was not found`);
    const callSid = m[2] ? decodeURIComponent(m[2]) : null;
    rec.callSid = callSid;
    rec.op = { POST: callSid ? 'update' : 'create', GET: callSid ? 'fetch' : 'list', DELETE: 'delete' }[req.method] || req.method.toLowerCase();
    // HTTP Basic auth accountSid:authToken
    const auth = req.headers.authorization || '';
    const am = /^Basic\s+([A-Za-z0-9+/=]+)$/.exec(auth);
    const cred = am ? Buffer.from(am[1], 'base64').toString('utf8') : '';
    const i = cred.indexOf(':');
    rec.authUser = i >= 0 ? cred.slice(0, i) : null;
    if (i < 0 || cred.slice(0, i) !== accountSid || cred.slice(i + 1) !== authToken || m[1] !== accountSid) {
      return fail(res, rec, 401, 20003, 'Authenticate', { 'WWW-Authenticate': 'Basic realm="Twilio API"' });
    }
    if (!callSid) {
      if (req.method === 'POST') {
        return handleCreate(rec, res);
      }
      if (req.method === 'GET') {
        const f = behaviour.listFailures.shift();
        if (f) return injectFailure(res, rec, f);
        if (behaviour.apiDelayMs) await sleep(behaviour.apiDelayMs);
        return handleList(rec, res);
      }
      return fail(res, rec, 405, 20004, 'Method not allowed');
    }
    const call = calls.get(callSid);
    const notFound = () => fail(res, rec, 404, 20404, `The requested resource ${rec.path} was not found`);
    if (req.method === 'GET') {
      const f = behaviour.fetchFailures.shift();
      if (f) return injectFailure(res, rec, f);
      if (behaviour.apiDelayMs) await sleep(behaviour.apiDelayMs);
      return call ? reply(res, rec, 200, callJson(call)) : notFound();
    }
    if (req.method === 'POST') {
      const f = behaviour.updateFailures.shift();
      if (f && !f.afterCreate) return injectFailure(res, rec, f);
      if (!call) return notFound();
      const json = applyUpdate(rec, call); // an afterCreate failure: applied, then answered wrongly
      if (f) return injectFailure(res, rec, f, json);
      if (behaviour.apiDelayMs) await sleep(behaviour.apiDelayMs);
      return reply(res, rec, 200, json);
    }
    if (req.method === 'DELETE') {
      if (!call) return notFound();
      if (!TERMINAL.includes(call.status)) return fail(res, rec, 400, 20009, 'Cannot delete this resource before it is complete');
      calls.delete(callSid);
      rec.answer = { status: 204, body: '' };
      res.writeHead(204);
      res.end();
      changed();
      return undefined;
    }
    return fail(res, rec, 405, 20004, 'Method not allowed');
  }

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const qi = req.url.indexOf('?');
      const path = qi < 0 ? req.url : req.url.slice(0, qi);
      const rawQuery = qi < 0 ? '' : req.url.slice(qi + 1);
      const queryPairs = [...new URLSearchParams(rawQuery)];
      const contentType = req.headers['content-type'] || null;
      const isForm = /^application\/x-www-form-urlencoded\s*(;|$)/i.test(contentType || '');
      // Twilio reads parameters from a form body only; anything else is no parameters
      const pairs = isForm ? [...new URLSearchParams(body)] : [];
      const rec = {
        n: requests.length,
        at: now(),
        method: req.method,
        url: req.url,
        path,
        rawQuery,
        queryPairs,
        query: pairsToObject(queryPairs),
        headers: req.headers,
        contentType,
        body,
        pairs,
        params: pairsToObject(pairs),
        op: null,
        callSid: null,
        authUser: null,
        answer: null, // {status, body} once answered; {status:null, hang|reset:true} when not
      };
      requests.push(rec);
      events.emit('request', rec);
      try {
        await route(req, res, rec);
      } catch (err) {
        if (err instanceof ApiError) fail(res, rec, err.status, err.code, err.message);
        else fail(res, rec, 500, 20500, `fake twilio bug: ${err.stack || err}`);
      }
    });
  });
  server.keepAliveTimeout = 5000;

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port || 0, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${server.address().port}`;

  function summary() {
    const cs = [...calls.values()].map((c) => `${c.sid.slice(0, 8)} ${c.to} ${c.status} cb=[${c.callbacks.map((r) => `${r.callStatus}:${r.dropped ? 'dropped' : r.status ?? r.error ?? 'pending'}`).join(',')}]`);
    return `requests=${requests.length} (${requests.map((r) => `${r.op || r.method}:${r.answer?.status ?? (r.answer ? 'none' : 'open')}`).join(',')}) calls: ${cs.join('; ') || 'none'}`;
  }

  function waitFor(predicate, timeoutMs = 5000, what) {
    return new Promise((resolve, reject) => {
      let timer = null;
      const cleanup = () => {
        clearTimeout(timer);
        events.off('change', check);
      };
      function check() {
        let v;
        try {
          v = predicate(api);
        } catch (err) {
          cleanup();
          reject(err);
          return;
        }
        if (v) {
          cleanup();
          resolve(v);
        }
      }
      events.on('change', check);
      timer = setTimeout(() => {
        cleanup();
        reject(new Error(`fake twilio: timed out after ${timeoutMs} ms waiting for ${what || predicate.toString()}; ${summary()}`));
      }, timeoutMs);
      check();
    });
  }

  function getCall(sid) {
    const c = calls.get(sid);
    if (!c) throw new Error(`fake twilio: no call ${sid}`);
    return c;
  }

  api = {
    url,
    accountSid,
    authToken,
    calls,
    requests,
    callbacks,
    events,
    get maxActive() {
      return maxActive;
    },
    get behaviour() {
      return { ...behaviour };
    },
    active: () => activeCount,
    resetMaxActive() {
      maxActive = activeCount;
    },
    set,
    callList: () => [...calls.values()],
    creates: () => requests.filter((r) => r.op === 'create'),
    // test controls: drive a call by hand (use with ringMs/answerMs/durationMs: null)
    answerCall(sid) {
      const c = getCall(sid);
      if (c.status === 'queued') {
        if (!c.initiated) initiated(c);
        ringing(c);
      }
      answered(c);
      return c;
    },
    endCall(sid, status = 'completed') {
      if (!TERMINAL.includes(status)) throw new Error(`fake twilio: not a terminal status: ${status}`);
      const c = getCall(sid);
      if (c.status === 'queued' && !c.initiated) initiated(c);
      return finish(c, status);
    },
    signature: (u, params, token = authToken) => twilio.getExpectedTwilioSignature(token, u, params),
    waitFor,
    summary,
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const r of inflight) r.destroy();
      inflight.clear();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return api;
}

export default startFakeTwilio;
