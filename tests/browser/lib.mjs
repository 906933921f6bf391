// Shared by the browser tests: Debian's chromium driven by playwright-core, headless, with
// no background networking; a logged-in page; screenshots to $SB_BUILD/screenshots (not
// committed; the current ones are copied by hand to docs/screenshots/ for the README).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ADMIN_KEY, BUILD } from '../integration/lib.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const SHOTS = path.join(BUILD, 'screenshots');

export async function launch() {
  fs.mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

// a new 1280×800 context logged in through the form; pages that break a rule of the
// dashboard (an uncaught error, a CSP violation, a request to anywhere but the daemon) fail
// the test that owns them (page.noProblems())
export async function loggedIn(browser, d, { key = ADMIN_KEY, path: p = '/' } = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // it works with no internet: nothing is fetched from anywhere but the daemon
  page.on('request', (r) => {
    if (!r.url().startsWith(`${d.url}/`) && !r.url().startsWith('data:')) problems.push(`a request elsewhere: ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|EventSource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  await page.goto(`${d.url}/login.html`);
  await page.fill('#key', key);
  await page.click('button[type=submit]');
  await page.waitForURL(`${d.url}/`);
  if (p !== '/') await page.goto(`${d.url}${p}`);
  page.problems = problems;
  page.noProblems = () => assert.deepEqual(problems, [], problems.join('\n'));
  return { ctx, page };
}

export const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
