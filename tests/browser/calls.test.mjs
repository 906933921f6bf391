// The calls page (/calls.html) in a real browser, against the daemon and the fake Twilio
// (tests/fakes/twilio.mjs): a CSV import with a refused row, a 10-lead run whose bar moves
// to 100 % without a reload, Stop, soft and force cancel, paging, and errors in words.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { twilioDaemon } from '../integration/lib.mjs';
import { launch, loggedIn, shot } from './lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// a daemon whose calls go to a fresh fake Twilio
async function setup(fake) {
  const { tw, d } = await twilioDaemon({ ringMs: 20, answerMs: 20, ...fake });
  return { tw, d, close: async () => { await d.cleanup(); await tw.close(); } };
}

async function open(d) {
  const { ctx, page } = await loggedIn(browser, d, { path: '/calls.html' });
  await page.waitForSelector('#live:text("live")');
  let reloads = 0;
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) reloads++; });
  page.reloads = () => reloads;
  return { ctx, page };
}

const text = (page, sel) => page.textContent(sel).then((t) => t.trim());

test('a CSV import reports its refused row by line; a run of the 10 leads moves its bar to 100 % live', async () => {
  const { tw, d, close } = await setup({ durationMs: 400 });
  const { ctx, page } = await open(d);
  try {
    const rows = ['name,phone,timezone', 'דנה כהן,+972501000001,Asia/Jerusalem'];
    for (let i = 2; i <= 9; i++) rows.push(`Lead ${i},+1555000000${i},`);
    rows.push('"Levi, Avi",+15550000010,America/New_York');
    rows.splice(5, 0, 'No Phone,12,'); // line 6
    await page.setInputFiles('#csv', { name: 'leads.csv', mimeType: 'text/csv', buffer: Buffer.from(rows.join('\n') + '\n') });
    await page.waitForSelector('#leads-note:text("Imported 10, 1 row refused")');
    assert.deepEqual(await page.$$eval('#import-errors li', (l) => l.map((x) => x.textContent)),
      ['Line 6: phone must be 8 to 15 digits with an optional leading +']);
    await page.waitForFunction(() => document.querySelectorAll('#leads tr[data-lead]').length === 10);
    assert.equal(await page.getAttribute('#leads td.name:text("דנה כהן")', 'dir'), 'auto');

    // every value the page shows in the run's % cell, as it changes
    await page.evaluate(() => {
      window.seen = [];
      new MutationObserver(() => {
        const p = document.querySelector('#runs tr[data-run] .pct');
        if (p && window.seen.at(-1) !== p.textContent) window.seen.push(p.textContent);
      }).observe(document.getElementById('runs'), { childList: true, subtree: true, characterData: true });
    });
    await page.check('#pick-all');
    assert.equal(await text(page, '#start'), 'Start a run with 10 selected');
    await page.click('#start');
    await page.waitForSelector('#leads-note:text("started: 10 calls queued")');
    const runId = await page.getAttribute('#runs tr[data-run]', 'data-run');
    const row = `#runs tr[data-run="${runId}"]`;
    // mid-run: some done, not all, calls in progress within the limit the page shows
    await page.waitForFunction((r) => {
      const pct = parseInt(document.querySelector(`${r} .pct`)?.textContent, 10);
      return pct > 0 && pct < 100;
    }, row, { timeout: 10000 });
    await shot(page, 'calls');
    await page.waitForSelector(`${row} .done:text("10 / 10 done")`, { timeout: 15000 });
    assert.equal(await text(page, `${row} .pct`), '100 %');
    await page.waitForSelector(`${row} .status.completed`);
    const seen = await page.evaluate(() => window.seen.map((t) => parseInt(t, 10)));
    assert.ok(seen.length >= 3 && seen[0] < 100 && seen.at(-1) === 100, `the % moved: ${seen}`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1], `never backwards: ${seen}`);
    assert.equal(await page.$(`${row} button`), null, 'no Stop button on a finished run');

    const limit = Number((await text(page, `${row} .inprog`)).split(' of ')[1]);
    assert.equal(limit, 3);
    assert.ok(tw.maxActive > 1 && tw.maxActive <= limit, `at most ${limit} at once, got ${tw.maxActive}`);
    const to = tw.callList().map((c) => c.to).sort();
    assert.equal(to.length, 10);
    assert.equal(new Set(to).size, 10, 'each lead called once');
    assert.ok(to.includes('+972501000001') && to.includes('+15550000010'));

    // the recent calls, finished, with the Hebrew name as it is written
    await page.waitForFunction(() => document.querySelectorAll('#calls tr[data-job] .status.completed').length === 10);
    const heb = await page.waitForSelector('#calls td.lead:text("דנה כהן")');
    assert.equal(await heb.getAttribute('dir'), 'auto');
    assert.equal(await text(page, '#calls-page'), 'page 1 of 1');
    assert.equal((await page.$$('#calls button')).length, 0);
    assert.equal(page.reloads(), 0, 'no page reload');
    page.noProblems();
  } finally {
    await ctx.close();
    await close();
  }
});

test('Stop cancels the queued calls; the calls in progress take a soft or a forced cancel; recent calls page', async () => {
  const { tw, d, close } = await setup({ durationMs: null }); // calls stay up until ended here
  const { ctx, page } = await open(d);
  try {
    for (let i = 1; i <= 11; i++) {
      const r = await d.post('/api/leads', { name: `Lead ${i}`, phone: `+1555100${String(i).padStart(4, '0')}` });
      assert.equal(r.status, 201, r.text);
    }
    // the twelfth through the form, with a zone
    await page.fill('#add-name', 'שרה לוי');
    await page.fill('#add-phone', '+972502000012');
    await page.fill('#add-tz', 'Asia/Jerusalem');
    await page.click('#add button[type=submit]');
    await page.waitForSelector('#leads-note:text("Added שרה לוי (+972502000012).")');
    await page.waitForFunction(() => document.querySelectorAll('#leads tr[data-lead]').length === 12);

    await page.check('#pick-all');
    await page.click('#start');
    await page.waitForSelector('#leads-note:text("started: 12 calls queued")');
    const runId = await page.getAttribute('#runs tr[data-run]', 'data-run');
    const row = `#runs tr[data-run="${runId}"]`;
    await page.waitForSelector(`${row} .inprog:text("3 of 3")`, { timeout: 10000 });
    await tw.waitFor((t) => t.callList().filter((c) => c.status === 'in-progress').length === 3, 5000, '3 in progress');

    // the same leads again: the daemon's LEADS_BUSY in words, and no second run
    await page.check('#pick-all');
    await page.click('#start');
    await page.waitForSelector('#leads-error:text("Every lead already has a call queued or in progress.")');
    assert.equal((await page.$$('#runs tr[data-run]')).length, 1);

    await page.click(`${row} button:text("Stop")`);
    await page.click('dialog.confirm button[value=yes]:text("Stop run")');
    await page.waitForSelector(`${row} .status.stopped`);
    await page.waitForSelector('#runs-note:text("9 queued calls canceled")');
    await page.waitForSelector(`${row} .done:text("9 / 12 done")`);
    assert.equal(await page.$(`${row} button`), null, 'no Stop on a stopped run');

    // 12 jobs: page 1 of 2; the first three dialled are the oldest, two of them on page 2
    await page.waitForSelector('#calls-page:text("page 1 of 2")');
    assert.equal((await page.$$('#calls tr[data-job]')).length, 10);
    await page.click('#calls-next');
    await page.waitForSelector('#calls-page:text("page 2 of 2")');
    await page.waitForFunction(() => document.querySelectorAll('#calls tr[data-job] .status.in_progress').length === 2);
    assert.ok(await page.isDisabled('#calls-next'));
    const [soft, force] = await page.$$eval('#calls tr[data-job]', (l) => l.map((r) => r.dataset.job));

    await page.click(`#calls tr[data-job="${soft}"] button.cancel`);
    await page.waitForSelector(`#calls tr[data-job="${soft}"] .status.canceling`);
    await page.waitForSelector(`#calls tr[data-job="${soft}"] .status.completed`, { timeout: 5000 }); // Twilio hung up
    assert.equal(await page.$(`#calls tr[data-job="${soft}"] button`), null);

    await page.click(`#calls tr[data-job="${force}"] button.force`);
    await page.click('dialog.confirm button[value=yes]');
    await page.waitForSelector(`#calls tr[data-job="${force}"] .status.canceled`);
    assert.equal(await page.$(`#calls tr[data-job="${force}"] button`), null);
    await page.click('#calls-prev');
    await page.waitForSelector('#calls-page:text("page 1 of 2")');

    // the last call ends: the run is over, stopped, and nobody else was dialled
    for (const c of tw.callList()) if (c.status === 'in-progress') tw.endCall(c.sid);
    await page.waitForSelector(`${row} .done:text("12 / 12 done")`);
    assert.equal(await text(page, `${row} .status`), 'stopped');
    assert.equal(tw.callList().length, 3, 'the queued calls were never dialled');
    assert.equal(page.reloads(), 0, 'no page reload');
    page.noProblems();
  } finally {
    await ctx.close();
    await close();
  }
});

test('errors in words: nothing selected, a file that is no CSV, a lead the daemon refuses; a start of two calls them without a run', async () => {
  const { d, close } = await setup({});
  const { ctx, page } = await open(d);
  const started = [];
  page.on('request', (r) => { if (r.url().includes('/api/outbound_calls/start')) started.push(r.url()); });
  try {
    await page.click('#start');
    await page.waitForSelector('#leads-error:text("Select at least one lead")');
    assert.equal(await page.getAttribute('#leads-error', 'role'), 'alert');
    assert.equal(started.length, 0, 'nothing was sent');

    await page.setInputFiles('#csv', { name: 'empty.csv', mimeType: 'text/csv', buffer: Buffer.alloc(0) });
    await page.waitForSelector('#leads-error:text("empty.csv was not imported: The first line must be the header name,phone")');
    await page.setInputFiles('#csv', { name: 'photo.png', mimeType: 'image/png', buffer: Buffer.from([0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10, 0, 0]) });
    await page.waitForSelector('#leads-error:text("photo.png was not imported: The first line must be the header")');
    assert.equal(await page.$eval('#leads-error', (e) => e.textContent.includes('{')), false, 'no raw JSON');

    await page.fill('#add-name', 'Nobody');
    await page.fill('#add-phone', '12');
    await page.click('#add button[type=submit]');
    await page.waitForSelector('#leads-error:text("The lead was not added: Phone must be 8 to 15 digits")');
    await shot(page, 'calls-errors');

    // two leads: called at once, no run; the answer waits for their CallSids
    for (const phone of ['+15552000001', '+15552000002']) {
      await page.fill('#add-name', `Small ${phone}`);
      await page.fill('#add-phone', phone);
      await page.click('#add button[type=submit]');
      await page.waitForSelector(`#leads td:text("${phone}")`);
    }
    await page.check('#pick-all');
    await page.click('#start');
    await page.waitForSelector('#leads-note:text("Started 2 of 2 calls.")');
    await page.waitForFunction(() => document.querySelectorAll('#calls tr[data-job]').length === 2);
    assert.equal(started.length, 1);
    assert.deepEqual(await page.$$eval('#calls tr[data-job] td:nth-child(2)', (l) => l.map((x) => x.textContent)), ['—', '—']);
    assert.equal((await page.$$('#runs tr[data-run]')).length, 0);
    page.noProblems();
  } finally {
    await ctx.close();
    await close();
  }
});
