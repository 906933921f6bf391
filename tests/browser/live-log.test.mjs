// The live log page in a real browser: the backlog then the stream with nothing twice and
// nothing missed, the filters by type, session and level, pause and resume, and the bound
// on the events kept. Every event comes from the real daemon and its simulator workers.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Daemon, waitFor } from '../integration/lib.mjs';
import { launch, loggedIn, shot } from './lib.mjs';

const TYPES = ['session.status', 'session.qr', 'message.status', 'message.received', 'call.status', 'run.status',
  'proxy.status', 'alert'];
let browser, d;

before(async () => {
  d = await new Daemon({}).start();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await d?.cleanup();
});

// the rows the log shows (not hidden by a filter), newest first
const visible = (page) => page.$$eval('#log tr:not([hidden])', (trs) => trs.map((tr) => ({
  ...tr.dataset, id: Number(tr.dataset.id), text: tr.querySelector('summary').textContent,
})));
const allIds = (page) => page.$$eval('#log tr', (trs) => trs.map((tr) => Number(tr.dataset.id)));

// waits until the log holds n rows (shown or not) of that type and session whose one-line
// summary starts with text
const waitRows = (page, { session, type = 'session.status', text = '', n = 1 }) => page.waitForFunction(
  ([s, t, x, k]) => [...document.querySelectorAll(`#log tr[data-type="${t}"][data-session="${s}"]`)]
    .filter((tr) => tr.querySelector('summary').textContent.startsWith(x)).length >= k,
  [session, type, text, n], { timeout: 10000 });

// waits until the newest row is the daemon's newest event; the daemon's list, oldest first
async function caughtUp(page, daemon) {
  const { events } = (await daemon.get('/api/events?limit=1000')).json;
  await page.waitForFunction((id) => Number(document.querySelector('#log tr')?.dataset.id) >= id, events.at(-1).id);
  return events;
}

async function connected(daemon, phoneNumber) {
  const id = await daemon.provision({});
  await daemon.waitStatus(id, 'qr_ready');
  await daemon.sim(id, '/sim/scan', { phoneNumber });
  await daemon.waitStatus(id, 'connected');
  return id;
}

test('the live log shows the backlog then the stream, once each, and filters by type, session and level', async () => {
  const a = await d.provision({});
  await d.waitStatus(a, 'qr_ready');
  const { ctx, page } = await loggedIn(browser, d, { path: '/live-log.html' });
  await page.waitForSelector('#live:text-is("live")');
  let reloaded = false;
  page.on('framenavigated', () => { reloaded = true; });
  await waitRows(page, { session: a, text: 'qr_ready (was starting)' }); // from the backlog

  // link, restart and delete a, provision and log out b: all of it appears as it happens
  await d.sim(a, '/sim/scan', { phoneNumber: '+972501250001' });
  await waitRows(page, { session: a, text: 'connected' });
  assert.equal((await d.post(`/api/sessions/${a}/restart`)).status, 200);
  await waitRows(page, { session: a, text: 'connected', n: 2 });
  assert.equal((await d.del(`/api/sessions/${a}`)).status, 200);
  await waitRows(page, { session: a, text: 'deleted (was connected): deleted by API' });
  const b = await d.provision({});
  await waitRows(page, { session: b, text: 'qr_ready' });
  assert.equal((await d.post(`/api/sessions/${b}/logout`)).status, 200);
  await waitRows(page, { session: b, type: 'alert', text: `${b} logged out` });
  const all = await caughtUp(page, d);
  assert.equal(reloaded, false, 'no page reload');

  // every event of the daemon once, newest on top: no duplicate and no gap between the
  // backlog and the stream
  assert.deepEqual((await allIds(page)).filter((id) => id <= all.at(-1).id), all.map((e) => e.id).reverse());
  const statuses = all.filter((e) => e.sessionId === a && e.type === 'session.status').map((e) => e.data.status);
  assert.deepEqual(statuses, ['starting', 'qr_ready', 'connected', 'disconnected', 'starting', 'connected', 'deleted']);
  const shownStatuses = (await visible(page)).filter((r) => r.session === a && r.type === 'session.status');
  assert.deepEqual(shownStatuses.map((r) => r.text.split(' ')[0]).reverse(), statuses);
  assert.match(await page.textContent('#count'), new RegExp(`^${all.length} of ${all.length} events shown`));

  // type: session.status only
  for (const t of TYPES.slice(1)) await page.uncheck(`#types input[value="${t}"]`);
  let rows = await visible(page);
  assert.equal(rows.length, all.filter((e) => e.type === 'session.status').length);
  assert.ok(rows.every((r) => r.type === 'session.status'));
  assert.match(await page.textContent('#count'), new RegExp(`^${rows.length} of ${all.length} events shown`));
  // and session b: starting, qr_ready, logged_out
  await page.selectOption('#session', b);
  rows = await visible(page);
  assert.deepEqual(rows.map((r) => r.text.split(' ')[0]), ['logged_out', 'qr_ready', 'starting']);
  // every type of b again
  for (const t of TYPES.slice(1)) await page.check(`#types input[value="${t}"]`);
  rows = await visible(page);
  assert.equal(rows.length, all.filter((e) => e.sessionId === b).length);
  assert.ok(rows.some((r) => r.type === 'session.qr') && rows.some((r) => r.type === 'alert'));
  // level: b's errors are its logout and the alert about it
  await page.selectOption('#level', 'error');
  rows = await visible(page);
  assert.deepEqual(rows.map((r) => [r.type, r.level]), [['alert', 'error'], ['session.status', 'error']]);
  assert.ok(await page.$(`#log tr[data-id="${rows[1].id}"] .level.error`));
  // a had no error; its warnings are the disconnect of the restart and the alert about it
  await page.selectOption('#session', a);
  assert.equal((await visible(page)).length, 0);
  assert.match(await page.textContent('#count'), /No events match the filters/);
  await page.selectOption('#level', 'warn');
  rows = await visible(page);
  assert.deepEqual(rows.map((r) => [r.type, r.level]), [['alert', 'warn'], ['session.status', 'warn']]);
  assert.match(rows[1].text, /^disconnected \(was connected\): restart requested by API/);
  // no filter: everything again; a row opens onto its raw data, as text
  await page.selectOption('#session', '');
  await page.selectOption('#level', 'info');
  assert.equal((await visible(page)).length, all.length);
  const out = all.find((e) => e.sessionId === b && e.data.status === 'logged_out');
  await page.click(`#log tr[data-id="${out.id}"] summary`);
  const pre = await page.waitForSelector(`#log tr[data-id="${out.id}"] pre`, { state: 'visible' });
  assert.deepEqual(JSON.parse(await pre.textContent()), out.data);
  await shot(page, 'live-log');
  page.noProblems();
  await ctx.close();
});

test('the events that happen while the stream opens come after the backlog, once each and in order', async () => {
  const s = await connected(d, '+972501250004');
  const { ctx, page } = await loggedIn(browser, d);
  // the stream's request waits until the events below happened
  let release;
  const gate = new Promise((r) => { release = r; });
  let asked;
  const requested = new Promise((r) => { asked = r; });
  await page.route('**/api/events/stream*', async (r) => {
    asked();
    await gate;
    await r.continue();
  });
  await page.goto(`${d.url}/live-log.html`);
  await requested; // the backlog is shown
  const lastBefore = (await d.get('/api/events?limit=1000')).json.events.at(-1).id;
  for (let i = 1; i <= 5; i++) assert.equal((await d.sim(s, '/sim/receive', { from: '972500000009', text: `held ${i}` })).status, 200);
  release();
  await page.waitForSelector('#live:text-is("live")');
  assert.equal((await d.sim(s, '/sim/receive', { from: '972500000009', text: 'after' })).status, 200);
  // the simulator reports a message after answering /sim/receive: wait for the last one in the log
  await waitFor(async () => (await d.get('/api/events?type=message.received&limit=1000')).json.events.some((e) => e.data.text === 'after'),
    { what: 'the last message.received in the daemon' });
  const all = await caughtUp(page, d);
  assert.ok(all.filter((e) => e.id > lastBefore).length >= 5, 'events happened while the stream was held');
  const ids = (await allIds(page)).filter((id) => id <= all.at(-1).id);
  assert.deepEqual(ids, all.map((e) => e.id).reverse(), 'every event once, newest on top');
  page.noProblems();
  await ctx.close();
});

test('pause holds new events back and counts them; resume shows them', async () => {
  const c = await connected(d, '+972501250002');
  const { ctx, page } = await loggedIn(browser, d, { path: '/live-log.html' });
  await page.waitForSelector('#live:text-is("live")');
  await caughtUp(page, d);
  await page.click('#pause');
  assert.equal(await page.getAttribute('#pause', 'aria-pressed'), 'true');
  assert.equal(await page.textContent('#pause'), 'Resume');
  const shownBefore = await allIds(page);
  const texts = ['שלום', 'מה נשמע?', 'third one'];
  for (const text of texts) assert.equal((await d.sim(c, '/sim/receive', { from: '972500000009', text })).status, 200);
  await page.waitForSelector('#pending:text-is("3 new")');
  assert.deepEqual(await allIds(page), shownBefore, 'nothing rendered while paused');

  await page.click('#pause');
  assert.equal(await page.textContent('#pause'), 'Pause');
  assert.equal(await page.isHidden('#pending'), true);
  const got = (await visible(page)).filter((r) => r.type === 'message.received' && r.session === c);
  assert.deepEqual(got.map((r) => r.text), texts.map((t) => `from +972500000009: ${t}`).reverse());
  // the text from outside is isolated (Hebrew keeps its direction)
  const bdis = await page.$$eval(`#log tr[data-type="message.received"][data-session="${c}"] summary bdi`,
    (bs) => bs.map((x) => x.textContent));
  assert.deepEqual(bdis, [...texts].reverse());
  assert.equal((await allIds(page)).length, shownBefore.length + 3);
  page.noProblems();
  await ctx.close();
});

test('the buffer is bounded: never more rows than ?max=, the oldest dropped and counted', async () => {
  const d3 = await new Daemon({}).start(); // its own daemon: every event is counted
  try {
    const s = await connected(d3, '+972501250003');
    const { ctx, page } = await loggedIn(browser, d3, { path: '/live-log.html?max=50' });
    await page.waitForSelector('#live:text-is("live")');
    assert.match(await page.textContent('#bound'), /keeps the latest 50 events/);
    const start = await caughtUp(page, d3);
    assert.ok(start.length < 50, `${start.length} events before`);
    assert.equal((await allIds(page)).length, start.length);
    // the most rows the log holds after any task, watched from inside the page
    await page.evaluate(() => {
      window.mostRows = 0;
      new MutationObserver(() => {
        window.mostRows = Math.max(window.mostRows, document.querySelectorAll('#log tr').length);
      }).observe(document.getElementById('log'), { childList: true });
    });
    for (let i = 1; i <= 80; i++) await d3.sim(s, '/sim/receive', { from: '972500000009', text: `הודעה ${i}` });
    // the simulator reports each message after answering /sim/receive: wait for all 80 in the log
    await waitFor(async () => (await d3.get('/api/events?limit=1000')).json.events.length >= start.length + 80,
      { what: 'the 80 message.received events in the daemon' });
    const all = await caughtUp(page, d3);
    assert.ok(all.length >= start.length + 80);
    assert.deepEqual(await allIds(page), all.slice(-50).map((e) => e.id).reverse(), 'the newest 50');
    assert.equal(await page.evaluate(() => window.mostRows), 50);
    assert.equal(await page.textContent('#dropped'), `${all.length - 50} older events dropped.`);
    assert.match(await page.textContent('#count'), /^50 of 50 events shown/);
    page.noProblems();

    // the bound is clamped to 10…2000; the backlog is the newest events within it
    await page.goto(`${d3.url}/live-log.html?max=5`);
    await page.waitForSelector('#live:text-is("live")');
    assert.match(await page.textContent('#bound'), /keeps the latest 10 events/);
    await page.waitForFunction(() => document.querySelectorAll('#log tr').length === 10);
    assert.deepEqual(await allIds(page), all.slice(-10).map((e) => e.id).reverse());
    page.noProblems();
    await ctx.close();
  } finally {
    await d3.cleanup();
  }
});
