// The login and the sessions page in a real browser (Debian's chromium, playwright-core):
// the login, the live table, the actions on a session, filter and search, the proxies
// panel. Screenshots go to $SB_BUILD/screenshots (not committed).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ADMIN_KEY, Daemon, waitFor } from '../integration/lib.mjs';
import { launch, loggedIn, shot } from './lib.mjs';

const P1 = 'socks5h://u1:pw1-secret@127.0.0.1:1081';
const P2 = 'socks5h://u2:pw2-secret@127.0.0.1:1082';
let browser, d;

before(async () => {
  d = await new Daemon({ env: { PROXY_URL_1: P1, PROXY_URL_2: P2 } }).start();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await d?.cleanup();
});

const rowOf = (id) => `#sessions [data-id="${id}"]`;

test('the login asks for the key, refuses a wrong one in words, and leads to the sessions page', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  await page.goto(`${d.url}/`);
  assert.ok(page.url().endsWith('/login.html'), `redirected to the login: ${page.url()}`);
  for (const p of ['/scan.html', '/live-log.html', '/calls.html', '/index.html']) {
    await page.goto(`${d.url}${p}`);
    assert.ok(page.url().endsWith('/login.html'), `${p} redirected to the login: ${page.url()}`);
  }
  await page.fill('#key', 'not-the-key-0123456789');
  await page.click('button[type=submit]');
  await page.waitForSelector('#error:text("not valid")');
  assert.match(await page.textContent('#error'), /That API key is not valid/);
  await shot(page, 'login');
  await page.fill('#key', ADMIN_KEY);
  await page.click('button[type=submit]');
  await page.waitForURL(`${d.url}/`);
  await page.waitForSelector('#live:text-is("live")');
  // the key is nowhere in the browser's storage; the cookie is HttpOnly
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  assert.ok(!stored.includes(ADMIN_KEY) && !stored.includes('sb_session'), stored);
  const cookies = await ctx.cookies();
  const c = cookies.find((x) => x.name === 'sb_session');
  assert.ok(c && c.httpOnly && c.sameSite === 'Strict');
  await ctx.close();
});

test('the sessions table follows the event stream: a session that links shows as connected without a reload', async () => {
  const { ctx, page } = await loggedIn(browser, d);
  await page.waitForSelector('#live:text-is("live")');
  let reloaded = false;
  page.on('framenavigated', () => { reloaded = true; });
  const id = await d.provision({});
  await page.waitForSelector(`${rowOf(id)} .status.qr_ready`, { timeout: 10000 });
  await d.sim(id, '/sim/scan', { phoneNumber: '+972501250001' });
  await page.waitForSelector(`${rowOf(id)} .status.connected`, { timeout: 5000 });
  assert.match(await page.textContent(rowOf(id)), /\+972501250001/);
  assert.match(await page.textContent(rowOf(id)), /127\.0\.0\.1:108[12]/, 'the proxy host');
  await page.waitForSelector('#totals [data-total="Connected"] b:text-is("1")');
  assert.equal(reloaded, false, 'no page reload');
  // logging out leads back to the login; the pages need a login again
  page.noProblems();
  await page.click('#logout');
  await page.waitForURL(`${d.url}/login.html`);
  await page.goto(`${d.url}/`);
  assert.ok(page.url().endsWith('/login.html'));
  await ctx.close();
});

test('actions from the table: provision, trust level, restart, log out, delete with a confirmation; filter and search', async () => {
  const { ctx, page } = await loggedIn(browser, d);
  await page.waitForSelector('#live:text-is("live")');
  // provision from the page: a new row waiting for a scan, with a link to the scan page
  const existing = new Set((await d.get('/api/sessions')).json.sessions.map((s) => s.sessionId));
  await page.click('#provision');
  await page.waitForSelector('#note:text("was provisioned")');
  const id = (await d.get('/api/sessions')).json.sessions.map((s) => s.sessionId).find((x) => !existing.has(x));
  assert.ok(id, 'a new session exists');
  await page.waitForSelector(`${rowOf(id)} .status.qr_ready`, { timeout: 10000 });
  assert.equal(await page.getAttribute(`${rowOf(id)} a:text("Link")`, 'href'), `/scan.html?session=${id}`);
  await d.sim(id, '/sim/scan', { phoneNumber: '+972501250002' });
  await page.waitForSelector(`${rowOf(id)} .status.connected`);

  // fix the trust level, then give it back to the account's age
  await page.click(`${rowOf(id)} button.trust`);
  await page.selectOption(`${rowOf(id)} select.trust`, 'hot');
  await page.waitForSelector('#note:text("hot pace")');
  let s = await d.session(id);
  assert.equal(s.trustLevel, 'hot');
  assert.equal(s.trustLevelFixed, true);
  assert.equal(await page.textContent(`${rowOf(id)} button.trust`), 'hot · fixed');
  await page.click(`${rowOf(id)} button.trust`);
  await page.selectOption(`${rowOf(id)} select.trust`, '');
  await page.waitForSelector("#note:text(\"account's age again\")");
  assert.equal((await d.session(id)).trustLevelFixed, false);

  // restart: the worker is replaced, the restarts count goes up, it reconnects by itself
  const pid = (await d.session(id)).worker.pid;
  await page.click(`${rowOf(id)} button[data-act=restart]`);
  await page.waitForSelector('#note:text("is restarting")');
  s = await waitFor(async () => {
    const x = await d.session(id);
    return x.status === 'connected' && x.worker && x.worker.pid !== pid ? x : false;
  }, { what: `${id} reconnected by a new worker` });
  await page.waitForSelector(`${rowOf(id)} .status.connected`);
  await page.waitForFunction(([sel, n]) => document.querySelector(sel)?.children[8].textContent === String(n),
    [rowOf(id), s.restarts]);

  // stop: the worker ends and the row offers Start instead of Stop; Start links it again
  await page.click(`${rowOf(id)} button[data-act=stop]`);
  await page.waitForSelector('#note:text("is stopped")');
  await page.waitForSelector(`${rowOf(id)} .status.stopped`);
  assert.equal(await page.$(`${rowOf(id)} button[data-act=stop]`), null);
  assert.equal(await page.textContent(`${rowOf(id)} button[data-act=restart]`), 'Start');
  await waitFor(async () => (await d.session(id)).worker === null, { what: `${id} without a worker` });
  await page.click(`${rowOf(id)} button[data-act=restart]`);
  await page.waitForSelector(`${rowOf(id)} .status.connected`, { timeout: 10000 });

  // search and filter: the phone finds it alone; "needs attention" hides it while connected
  const other = await d.provision({});
  await page.waitForSelector(rowOf(other));
  await page.fill('#search', '972501250002');
  await page.waitForFunction((n) => document.querySelectorAll('#sessions [data-id]').length === n, 1);
  assert.ok(await page.$(rowOf(id)));
  await page.fill('#search', '');
  await page.selectOption('#filter', 'attention');
  await page.waitForSelector(rowOf(id), { state: 'detached' });
  assert.ok(await page.$(rowOf(other)), 'the session waiting for a scan needs attention');
  await page.selectOption('#filter', '');
  await shot(page, 'index');

  // log out asks first; the session ends logged out
  await page.click(`${rowOf(id)} button[data-act=logout]`);
  await page.click('dialog.confirm button[value=yes]');
  await page.waitForSelector(`${rowOf(id)} .status.logged_out`, { timeout: 10000 });

  // delete: cancelling the confirmation changes nothing; confirming removes the row
  await page.click(`${rowOf(other)} button[data-act=delete]`);
  await page.click('dialog.confirm button[value=no]');
  await page.waitForSelector('dialog.confirm', { state: 'detached' });
  assert.ok(await d.session(other), 'still there after Cancel');
  await page.click(`${rowOf(other)} button[data-act=delete]`);
  await page.click('dialog.confirm button[value=yes]');
  await page.waitForSelector(rowOf(other), { state: 'detached' });
  await page.waitForSelector('#note:text("was deleted")');
  assert.equal(await d.session(other), null);

  // the live log shows what the table did: the restart, the log out and the delete
  await page.click('header nav a:text-is("Live log")');
  await page.waitForURL(`${d.url}/live-log.html`);
  const said = (sid) => page.$$eval(`#log tr[data-session="${sid}"][data-type="session.status"] summary`, (x) => x.map((e) => e.textContent));
  await page.waitForFunction((sid) => document.querySelectorAll(`#log tr[data-session="${sid}"]`).length > 0, other);
  const mine = (await said(id)).join('\n');
  assert.match(mine, /disconnected \(was connected\): restart requested by API/);
  assert.match(mine, /logged_out \(was connected\)/);
  assert.match((await said(other)).join('\n'), /deleted \(was qr_ready\)/);
  page.noProblems();
  await ctx.close();
});

test('the proxies panel: health, load, a reset button; passwords never shown; errors in words', async () => {
  const { ctx, page } = await loggedIn(browser, d);
  await page.waitForSelector('#proxies tr[data-proxy="1"]');
  const id = await d.provision({});
  await d.waitStatus(id, 'qr_ready');
  await d.sim(id, '/sim/scan', { phoneNumber: '+972501250003' });
  const s = await d.waitStatus(id, 'connected');
  const p = s.proxyId;
  await d.sim(id, '/sim/proxy-error');
  // the proxy.status event turns it bad on the page, with the worker's reason
  await page.waitForSelector(`#proxies tr[data-proxy="${p}"] .status.bad`);
  assert.match(await page.textContent(`#proxies tr[data-proxy="${p}"]`), /simulated proxy failure/);
  await page.click(`#proxies tr[data-proxy="${p}"] button[data-act=reset]`);
  await page.waitForSelector(`#proxies tr[data-proxy="${p}"] .status.ok`);
  await page.waitForSelector('#note:text("was reset")');
  assert.equal((await d.get('/api/proxies')).json.proxies.find((x) => x.id === p).status, 'ok');
  const html = await page.content();
  assert.ok(!html.includes('pw1-secret') && !html.includes('pw2-secret'), 'no proxy password on the page');
  await shot(page, 'index-proxies');

  // an action the daemon refuses is explained in words, not as JSON
  await page.route('**/api/proxies/*/reset', (r) => r.fulfill({ status: 500, contentType: 'application/json',
    body: JSON.stringify({ error: { code: 'STORE_ERROR', message: 'the proxy could not be reset' } }) }));
  await page.click(`#proxies tr[data-proxy="${p}"] button[data-act=reset]`);
  await page.waitForSelector('#error:text("could not be reset")');
  const err = await page.textContent('#error');
  assert.match(err, /^Proxy \d+ could not be reset: The daemon could not do that \(The proxy could not be reset\.\) Try again/);
  assert.ok(!err.includes('{'), err);
  page.noProblems();
  await ctx.close();
});

test('a lost event stream says so, comes back by itself, and the page is live again (last: it restarts the daemon)', async () => {
  const { ctx, page } = await loggedIn(browser, d);
  await page.waitForSelector('#live:text-is("live")');
  let reloaded = false;
  page.on('framenavigated', () => { reloaded = true; });
  await d.stop();
  await page.waitForSelector('#live.down:text("reconnecting")');
  await shot(page, 'index-reconnecting');
  await d.start();
  await page.waitForSelector('#live:not(.down):text-is("live")', { timeout: 15000 });
  const id = await d.provision({});
  await page.waitForSelector(`${rowOf(id)} .status.qr_ready`, { timeout: 10000 });
  assert.equal(reloaded, false, 'no page reload');
  page.noProblems();
  await ctx.close();
});
