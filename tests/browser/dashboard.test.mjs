// The dashboard in a real browser: Debian's chromium driven by playwright-core, headless,
// no background networking. Screenshots go to $SB_BUILD/screenshots (not committed).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { ADMIN_KEY, BUILD, Daemon } from '../integration/lib.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(BUILD, 'screenshots');
let browser, d;

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  d = await new Daemon({}).start();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
});

after(async () => {
  await browser?.close();
  await d?.cleanup();
});

test('the login asks for the key, refuses a wrong one in words, and leads to the sessions page', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  await page.goto(`${d.url}/`);
  assert.ok(page.url().endsWith('/login.html'), `redirected to the login: ${page.url()}`);
  await page.fill('#key', 'not-the-key-0123456789');
  await page.click('button[type=submit]');
  await page.waitForSelector('#error:text("not valid")');
  assert.match(await page.textContent('#error'), /That API key is not valid/);
  await page.screenshot({ path: path.join(SHOTS, 'login.png') });
  await page.fill('#key', ADMIN_KEY);
  await page.click('button[type=submit]');
  await page.waitForURL(`${d.url}/`);
  await page.waitForSelector('#live:text("live")');
  // the key is nowhere in the browser's storage; the cookie is HttpOnly
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  assert.ok(!stored.includes(ADMIN_KEY) && !stored.includes('sb_session'), stored);
  const cookies = await ctx.cookies();
  const c = cookies.find((x) => x.name === 'sb_session');
  assert.ok(c && c.httpOnly && c.sameSite === 'Strict');
  await ctx.close();
});

test('the sessions table follows the event stream: a session that links shows as connected without a reload', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  await page.goto(`${d.url}/login.html`);
  await page.fill('#key', ADMIN_KEY);
  await page.click('button[type=submit]');
  await page.waitForSelector('#live:text("live")');
  let reloaded = false;
  page.on('framenavigated', () => { reloaded = true; });
  const id = await d.provision({});
  await page.waitForSelector(`#sessions tr:has-text("${id}") .status.qr_ready`, { timeout: 10000 });
  await d.sim(id, '/sim/scan', { phoneNumber: '+972501250001' });
  const row = await page.waitForSelector(`#sessions tr:has-text("${id}") .status.connected`, { timeout: 5000 });
  assert.ok(row);
  assert.match(await page.textContent(`#sessions tr:has-text("${id}")`), /\+972501250001/);
  assert.equal(reloaded, false, 'no page reload');
  await page.screenshot({ path: path.join(SHOTS, 'index.png') });
  // logging out leads back to the login; the pages need a login again
  await page.click('#logout');
  await page.waitForURL(`${d.url}/login.html`);
  await page.goto(`${d.url}/`);
  assert.ok(page.url().endsWith('/login.html'));
  await ctx.close();
});
