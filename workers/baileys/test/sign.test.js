import assert from 'node:assert/strict';
import { test } from 'node:test';
import { signature, signHeaders, verify } from '../src/sign.js';
import { hmacHex } from './helpers.js';

const KEY = '0123456789abcdef'.repeat(4);

test('signature: fixed vectors (computed with openssl dgst -sha256 -hmac)', () => {
  // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 0123...cdef (x4)
  assert.equal(signature(KEY, '1700000000', '{"a":1}'), '2c362ea0cde6ec3b3f3c417d269bfba1f15017c58e6f39c37535a01e2d694de6');
  // a GET signs the empty body: "1700000000."
  assert.equal(signature(KEY, '1700000000', ''), '4fdbf575b1e3bcca05de673960d9aa043b531a701e7ab7aaec8efb5ebbe1261b');
  assert.equal(signature(KEY, '1700000000', Buffer.from('{"a":1}')), signature(KEY, '1700000000', '{"a":1}'));
});

test('signature: matches an independent node:crypto HMAC of "ts.body" with the hex key as bytes', () => {
  const body = JSON.stringify({ sessionId: 'worker_7', type: 'PING', data: { t: 'שלום 🔄' }, timestamp: 1 });
  assert.equal(signature(KEY, '1712345678', body), hmacHex(KEY, `1712345678.${body}`));
  // the key is the hex string's bytes, not the 32 bytes it encodes
  assert.notEqual(signature(KEY, '1712345678', body), hmacHex(Buffer.from(KEY, 'hex'), `1712345678.${body}`));
  const h = signHeaders(KEY, body, 1712345678999);
  assert.equal(h['X-Timestamp'], '1712345678');
  assert.equal(h['X-Signature'], `sha256=${hmacHex(KEY, `1712345678.${body}`)}`);
});

test('verify: accepts a good signature, refuses bad, stale, future and malformed ones', () => {
  const now = 1712345678000;
  const ts = '1712345678';
  const body = '{"x":1}';
  const good = `sha256=${hmacHex(KEY, `${ts}.${body}`)}`;
  assert.equal(verify(KEY, ts, good, body, now), null);
  assert.equal(verify(KEY, ts, good.toUpperCase().replace('SHA256=', 'sha256='), body, now), null, 'hex case does not matter');
  assert.match(verify(KEY, ts, good, '{"x":2}', now), /does not match/);
  assert.match(verify('1'.repeat(64), ts, good, body, now), /does not match/);
  // 300 s either way is the limit
  assert.equal(verify(KEY, String(1712345678 - 300), `sha256=${hmacHex(KEY, `${1712345678 - 300}.${body}`)}`, body, now), null);
  assert.match(verify(KEY, String(1712345678 - 301), `sha256=${hmacHex(KEY, `${1712345678 - 301}.${body}`)}`, body, now), /300 s/);
  assert.match(verify(KEY, String(1712345678 + 301), `sha256=${hmacHex(KEY, `${1712345678 + 301}.${body}`)}`, body, now), /300 s/);
  assert.match(verify(KEY, undefined, good, body, now), /required/);
  assert.match(verify(KEY, ts, undefined, body, now), /required/);
  assert.match(verify(KEY, '17123456.5', good, body, now), /unix seconds/);
  assert.match(verify(KEY, ts, good.slice(7), body, now), /sha256=/);
  assert.match(verify(KEY, ts, `${good}00`, body, now), /sha256=/);
  // GET: the empty body
  assert.equal(verify(KEY, ts, `sha256=${hmacHex(KEY, `${ts}.`)}`, Buffer.alloc(0), now), null);
});
