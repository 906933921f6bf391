// The dashboard's login and pages: a session cookie (HttpOnly, SameSite=Strict) of which
// the store keeps only a hash; pages redirect to the login without it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ADMIN_KEY, Daemon } from './lib.mjs';

test('login, cookie, pages and logout', async () => {
  const d = await new Daemon({}).start();
  try {
    const raw = (p, o = {}) => fetch(`${d.url}${p}`, { redirect: 'manual', ...o });
    // without a login: pages go to the login page, the API refuses
    let r = await raw('/');
    assert.equal(r.status, 302);
    assert.equal(r.headers.get('location'), '/login.html');
    assert.equal((await raw('/index.html')).status, 302);
    r = await raw('/login.html');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    assert.match(r.headers.get('content-security-policy'), /default-src 'self'/);
    assert.match(await r.text(), /API key/);
    assert.equal((await raw('/style.css')).status, 200);
    assert.equal((await raw('/api/sessions')).status, 401);
    for (const bad of ['/..%2Fdata%2Fapi_key', '/.env', '/nope.html', '/index.exe'])
      assert.equal((await raw(bad)).status, bad === '/nope.html' ? 302 : 404, bad);

    // a wrong key: a clear message, no cookie
    r = await raw('/api/login', { method: 'POST', body: JSON.stringify({ apiKey: 'wrong-key-0123456789' }) });
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('set-cookie'), null);
    assert.match((await r.json()).error.message, /not valid/);

    r = await raw('/api/login', { method: 'POST', body: JSON.stringify({ apiKey: ADMIN_KEY }) });
    assert.equal(r.status, 200);
    const sc = r.headers.get('set-cookie');
    assert.match(sc, /^sb_session=[0-9a-f]{64}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    const token = /sb_session=([0-9a-f]{64})/.exec(sc)[1];
    const cookie = { Cookie: `sb_session=${token}` };
    assert.equal((await raw('/api/sessions', { headers: cookie })).status, 200);
    assert.deepEqual(await (await raw('/api/me', { headers: cookie })).json(), { tenantId: 1, admin: true });
    r = await raw('/', { headers: cookie });
    assert.equal(r.status, 200);
    assert.match(await r.text(), /Sessions/);
    // the store keeps a hash of the cookie, never the cookie
    const data = path.join(d.dir, 'data');
    const blobs = fs.readdirSync(data).filter((n) => n.startsWith('switchboard.db')).map((n) => fs.readFileSync(path.join(data, n)));
    assert.ok(blobs.length && blobs.every((b) => !b.includes(Buffer.from(token))), 'the token is not in the store');

    // a tenant key logs in to its own tenant
    const t = await d.post('/api/tenants', { name: 'acme' });
    r = await raw('/api/login', { method: 'POST', body: JSON.stringify({ apiKey: t.json.apiKey }) });
    const tc = { Cookie: /sb_session=[0-9a-f]+/.exec(r.headers.get('set-cookie'))[0] };
    assert.deepEqual(await (await raw('/api/me', { headers: tc })).json(), { tenantId: t.json.tenantId, admin: false });
    assert.equal((await raw('/metrics', { headers: tc })).status, 403);

    // logout: the cookie is cleared and no longer works
    r = await raw('/api/logout', { method: 'POST', headers: cookie });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('set-cookie'), /^sb_session=; .*Max-Age=0$/);
    assert.equal((await raw('/api/sessions', { headers: cookie })).status, 401);
    assert.equal((await raw('/', { headers: cookie })).status, 302);
  } finally {
    await d.cleanup();
  }
});
