// Signing, both directions (docs/worker-protocol.md "Signing"):
//   X-Timestamp: <unix seconds>
//   X-Signature: sha256=<hex HMAC-SHA256(key, X-Timestamp + "." + raw body)>
// key = the worker's WEBHOOK_SECRET, the hex string used as bytes. A GET signs "".
import { createHmac, timingSafeEqual } from 'node:crypto';

export const MAX_SKEW_S = 300;

export function signature(key, ts, body) {
  const h = createHmac('sha256', Buffer.from(key, 'utf8'));
  h.update(`${ts}.`);
  if (body !== undefined && body !== null && body.length) h.update(body);
  return h.digest('hex');
}

export function signHeaders(key, body, nowMs = Date.now()) {
  const ts = String(Math.floor(nowMs / 1000));
  return { 'X-Timestamp': ts, 'X-Signature': `sha256=${signature(key, ts, body)}` };
}

// null when the request is signed with key over "ts.body" and ts is within maxSkewS of
// now; else why not (for the 401 answer and the log line).
export function verify(key, ts, sig, body, nowMs = Date.now(), maxSkewS = MAX_SKEW_S) {
  if (typeof ts !== 'string' || typeof sig !== 'string') return 'X-Timestamp and X-Signature headers are required';
  if (!/^[0-9]{1,12}$/.test(ts)) return 'X-Timestamp must be unix seconds';
  const skew = Math.floor(nowMs / 1000) - Number(ts);
  if (skew > maxSkewS || skew < -maxSkewS) return `X-Timestamp is more than ${maxSkewS} s away from the worker's clock`;
  if (!/^sha256=[0-9a-fA-F]{64}$/.test(sig)) return 'X-Signature must be sha256=<64 hex digits>';
  const got = Buffer.from(sig.slice(7).toLowerCase(), 'utf8');
  const want = Buffer.from(signature(key, ts, body), 'utf8');
  if (!timingSafeEqual(got, want)) return 'X-Signature does not match';
  return null;
}
