// The "Link a phone" page in a real browser: provision from the page, the daemon's QR as an
// image that follows the rotation, the flip to "Connected as +…" when the simulator is scanned,
// the pairing-code mode, and an unknown session, all without a page reload.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Daemon, waitFor } from '../integration/lib.mjs';
import { launch, loggedIn, shot } from './lib.mjs';

let browser, d;

before(async () => {
  d = await new Daemon({}).start(); // the simulator draws a new QR every 500 ms
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await d?.cleanup();
});

// the QR img is shown and holds a picture that loaded; its src
const loadedQr = (page, not = '') => page.waitForFunction((old) => {
  const i = document.getElementById('qr');
  return !i.hidden && i.complete && i.naturalWidth > 0 && i.src !== old && i.src;
}, not, { timeout: 10000 }).then((h) => h.jsonValue());

// marks the document: a reload or a navigation loses the mark
const mark = (page) => page.evaluate(() => { window.sameDocument = true; });
const sameDocument = (page) => page.evaluate(() => window.sameDocument === true);

test('a session provisioned from the page shows its QR, follows its rotation and flips to connected without a reload', async () => {
  const { ctx, page } = await loggedIn(browser, d, { path: '/scan.html' });
  await page.waitForSelector('#live:text("live")');
  assert.equal(await page.locator('header nav a[aria-current=page]').textContent(), 'Link a phone');
  await mark(page);
  await page.click('#new');
  await page.waitForURL(/\/scan\.html\?session=worker_\d+$/);
  const id = new URL(page.url()).searchParams.get('session');
  let navigated = false;
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigated = true; });

  const first = await loadedQr(page);
  assert.ok(first.includes(`/api/sessions/${id}/qr.svg?v=`), first);
  await page.waitForSelector('#status:has-text("Scan this code with WhatsApp → Linked devices")');
  assert.equal((await d.session(id)).status, 'qr_ready');
  await shot(page, 'scan');

  // the simulator rotates the QR: the page fetches the new one, and it is what the daemon has now
  const before = (await d.get(`/api/sessions/${id}/qr`)).json.qr;
  const second = await loadedQr(page, first);
  assert.notEqual(second, first);
  assert.notEqual((await d.get(`/api/sessions/${id}/qr`)).json.qr, before, 'the QR rotated');

  const r = await d.sim(id, '/sim/scan', { phoneNumber: '+972501250001' });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  await page.waitForSelector('#connected:has-text("Connected as +972501250001")', { timeout: 5000 });
  assert.equal((await d.session(id)).status, 'connected');
  assert.equal(await page.isVisible('#qr'), false, 'the QR is gone once connected');
  assert.equal(await page.isVisible('#tabs'), false);
  assert.equal(await page.$eval('#connected-phone', (e) => e.tagName), 'BDI', 'the phone is isolated for right-to-left text');
  assert.equal(navigated, false, 'no navigation');
  assert.ok(await sameDocument(page), 'no reload');
  await shot(page, 'scan-connected');
  page.noProblems();
  await ctx.close();
});

test('the pairing-code mode checks the number in words and shows the code the session got, large', async () => {
  const id = await d.provision({});
  await d.waitStatus(id, 'qr_ready');
  const { ctx, page } = await loggedIn(browser, d, { path: `/scan.html?session=${id}` });
  await page.waitForSelector('#live:text("live")');
  await page.waitForSelector(`#sid:text("${id}")`);
  await mark(page);
  const asked = [];
  page.on('request', (q) => { if (q.url().endsWith('/pairing-code')) asked.push(q.postData()); });

  await page.click('#tab-pair');
  assert.equal(await page.getAttribute('#tab-pair', 'aria-pressed'), 'true');
  assert.equal(await page.isVisible('#qr'), false, 'the QR is put away in pairing mode');
  await page.fill('#phone', '12-34ab');
  await page.click('#pair');
  await page.waitForSelector('#pair-error:has-text("not a phone number")');
  assert.equal(await page.getAttribute('#pair-error', 'role'), 'alert');
  assert.match(await page.textContent('#pair-error'), /8 to 15 digits/);
  assert.equal(await page.getAttribute('#phone', 'aria-invalid'), 'true');
  assert.deepEqual(asked, [], 'a bad number is not sent');

  await page.fill('#phone', '+972 50-125-0002');
  await page.click('#pair');
  const shown = await (await page.waitForSelector('#code:not([hidden])')).textContent();
  assert.match(shown, /^[A-Z0-9]{4}-[A-Z0-9]{4}$/, shown);
  assert.deepEqual(asked.map((b) => JSON.parse(b)), [{ phone: '+972501250002' }]);
  assert.equal(await page.isVisible('#pair-error'), false);
  // the code is the one the simulator posted to the daemon
  await waitFor(async () => (await d.session(id)).pairingCode === shown.replace('-', ''), { what: 'pairingCode on the session' });
  const size = await page.$eval('#code', (e) => parseFloat(getComputedStyle(e).fontSize));
  assert.ok(size >= 32, `the code is large (${size}px)`);
  await page.waitForSelector('#status:has-text("Link with phone number")');
  await shot(page, 'scan-pairing');

  // typing the code on the phone links it: the simulator links the number the code was for
  await d.sim(id, '/sim/scan', {});
  await page.waitForSelector('#connected:has-text("Connected as +972501250002")', { timeout: 5000 });
  assert.ok(await sameDocument(page), 'no reload');
  page.noProblems();
  await ctx.close();
});

test('an unknown session is named in words, and the page offers to provision or pick one not linked yet', async () => {
  const waiting = await d.provision({});
  const linked = await d.provision({});
  await d.waitStatus(linked, 'qr_ready'); // its worker listens
  await d.sim(linked, '/sim/scan', { phoneNumber: '+972501250003' });
  await d.waitStatus(linked, 'connected');
  const { ctx, page } = await loggedIn(browser, d, { path: '/scan.html?session=worker_999' });
  await page.waitForSelector('#error:has-text("There is no session worker_999")');
  assert.equal(await page.getAttribute('#error', 'role'), 'alert');
  assert.ok(!(await page.textContent('#error')).includes('{'), 'no raw JSON');
  assert.equal(await page.isVisible('#pick'), true);
  assert.equal(await page.isVisible('#link'), false);
  await page.waitForSelector('#live:text("live")');
  // a session waiting for its phone is offered; a linked one is not
  await page.waitForSelector(`#sessions option[value=${waiting}]`, { state: 'attached' });
  const offered = await page.$$eval('#sessions option', (o) => o.map((x) => x.value));
  assert.ok(offered.includes(waiting), offered.join());
  assert.ok(!offered.includes(linked), offered.join());
  await page.selectOption('#sessions', waiting);
  await page.click('#choose button');
  await page.waitForURL(new RegExp(`/scan\\.html\\?session=${waiting}$`));
  await loadedQr(page);
  assert.equal(await page.isVisible('#error'), false, 'the message went away');
  page.noProblems();
  await ctx.close();
});
