// The calls page: call runs with their progress bars and a Stop button, the recent calls
// (with paging and cancel buttons), and the leads: tick some and start a run, add one, or
// import a CSV file. The call.status and run.status events refresh what they touch, at
// most every 300 ms and one refresh at a time; a slow timer catches anything a lost event missed.
import { $, api, ago, bar, coalesce, confirmDialog, el, header, live, say, sayError, words } from '/common.js';

const CALLS_PAGE = 10;
const LEADS_PAGE = 25;
const TERMINAL = new Set(['completed', 'busy', 'no_answer', 'failed', 'canceled']);

const picked = new Set(); // lead ids ticked, across pages
const canceling = new Set(); // job ids asked to stop softly, until they end or leave the page
let callsPage = 1;
let leadsPage = 1;

function pager(prefix, page, total, size) {
  const pages = Math.max(1, Math.ceil(total / size));
  $(`${prefix}-page`).textContent = `page ${page} of ${pages}`;
  $(`${prefix}-prev`).disabled = page <= 1;
  $(`${prefix}-next`).disabled = page >= pages;
  return pages;
}

// ---- runs

function runRow(r) {
  const done = r.completed + r.failed + r.canceled;
  const total = r.total_leads;
  const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
  const title = `${r.completed} completed, ${r.failed} failed, ${r.canceled} canceled, ${r.in_progress} in progress, ${r.queued} queued of ${total}`;
  const parts = [{ value: r.completed, className: 'ok' }, { value: r.failed, className: 'bad' },
    { value: r.canceled, className: 'warn' }, { value: r.in_progress, className: 'info' }];
  const stop = r.status === 'running'
    ? el('button', { type: 'button', className: 'danger', onclick: (ev) => stopRun(r, ev.target) }, 'Stop')
    : null;
  return el('tr', { dataset: { run: r.run_id, status: r.status } },
    el('td', { className: 'num' }, `#${r.run_id}`),
    el('td', { className: `status ${r.status}` }, words(r.status)),
    el('td', { className: 'progress' }, bar(parts, total, title)),
    el('td', { className: 'num done' }, `${done} / ${total} done`),
    el('td', { className: 'num pct' }, `${pct} %`),
    el('td', { className: 'num inprog', title: 'calls of this run in progress, of the calls allowed at once' },
      `${r.in_progress} of ${r.concurrency}`),
    el('td', { className: 'num' }, r.queued),
    el('td', { className: 'num' }, r.failed),
    el('td', { className: 'num' }, r.canceled),
    el('td', { title: r.finished_at ? `finished ${ago(r.finished_at)}` : 'not finished' }, ago(r.created_at)),
    el('td', { className: 'actions' }, stop));
}

async function loadRuns() {
  try {
    const { runs } = await api('/api/outbound/runs');
    $('runs').replaceChildren(...runs.map(runRow));
    $('runs-empty').hidden = runs.length > 0;
    say($('runs-error'), '');
  } catch (e) {
    sayError($('runs-error'), 'The runs could not be loaded', e);
  }
}

const runTr = (id) => $('runs').querySelector(`tr[data-run="${id}"]`);

// one run's row, already on the page
async function loadRun(id) {
  try {
    const r = await api(`/api/outbound/runs/${id}`);
    runTr(id)?.replaceWith(runRow(r));
  } catch (e) {
    sayError($('runs-error'), `Run #${id} could not be loaded`, e);
  }
}

async function loadInUse() {
  try {
    const { calls } = await api('/api/stats?sessions=false');
    $('in-use').textContent = calls.enabled
      ? `Calls in progress: ${calls.active} of ${calls.limit} at a time`
      : 'Outbound calls are off: the daemon has no Twilio settings.';
  } catch {
    $('in-use').textContent = '';
  }
}

async function stopRun(run, button) {
  const id = run.run_id;
  if (!(await confirmDialog(`Stop run #${id}? Its queued calls are canceled and cannot be resumed; ` +
    'the calls in progress may finish.', 'Stop run'))) return;
  button.disabled = true;
  try {
    const r = await api('/api/outbound/stop-queue', { method: 'POST', body: { run_id: id } });
    runTr(id)?.replaceWith(runRow(r));
    say($('runs-note'), `Run #${id} stopped: ${r.canceled_now} queued call${r.canceled_now === 1 ? '' : 's'} canceled; ` +
      `the ${r.in_progress} in progress may finish.`);
    say($('runs-error'), '');
    refresh(`run:${id}`, 'calls', 'inuse');
  } catch (e) {
    button.disabled = false;
    sayError($('runs-error'), `Run #${id} could not be stopped`, e);
  }
}

// ---- recent calls

function callRow(c) {
  const open = !TERMINAL.has(c.status);
  const status = open && canceling.has(c.job_id) ? 'canceling' : c.status;
  // a queued call is canceled at once; one that is dialled may also be forced
  const buttons = open ? [
    el('button', { type: 'button', className: 'cancel', onclick: () => cancelJob(c, false) }, 'Cancel'),
    c.status === 'queued' ? null
      : el('button', { type: 'button', className: 'danger force', onclick: () => cancelJob(c, true) }, 'Force cancel'),
  ] : [];
  return el('tr', { dataset: { job: c.job_id, run: c.run_id } },
    el('td', { className: 'num' }, `#${c.job_id}`),
    el('td', { className: 'num' }, c.run_id ? `#${c.run_id}` : '—'),
    el('td', { className: 'lead', dir: 'auto' }, c.lead_name),
    el('td', { className: 'num phone' }, c.phone),
    el('td', { className: `status ${status}` }, words(status)),
    el('td', { className: 'num' }, c.attempts),
    el('td', { className: 'num' }, open || !c.dialed_at ? '—' : `${c.duration} s`),
    el('td', {}, ago(c.dialed_at)),
    el('td', { className: 'muted', dir: 'auto' }, c.error || ''),
    el('td', { className: 'actions' }, ...buttons));
}

async function loadCalls() {
  try {
    const j = await api(`/api/outbound/recent-calls?page=${callsPage}&page_size=${CALLS_PAGE}`);
    const pages = pager('calls', callsPage, j.total, CALLS_PAGE);
    if (callsPage > pages) {
      callsPage = pages;
      return loadCalls();
    }
    const open = new Set(j.calls.filter((c) => !TERMINAL.has(c.status)).map((c) => c.job_id));
    for (const id of canceling) if (!open.has(id)) canceling.delete(id);
    $('calls').replaceChildren(...j.calls.map(callRow));
    if (!j.calls.length) $('calls').append(el('tr', {}, el('td', { colSpan: 10, className: 'muted' }, 'No calls yet.')));
    say($('calls-error'), '');
  } catch (e) {
    sayError($('calls-error'), 'The recent calls could not be loaded', e);
  }
}

async function cancelJob(c, force) {
  const who = `${c.lead_name} (${c.phone})`;
  if (force && !(await confirmDialog(`Force cancel the call to ${who} now? It is marked canceled at once and its slot ` +
    'is freed, even if Twilio never reports the end of the call.', 'Force cancel'))) return;
  try {
    const r = await api(`/api/outbound_calls/jobs/${c.job_id}/${force ? 'force-cancel' : 'cancel'}`, { method: 'POST' });
    if (r.status === 'canceling') canceling.add(c.job_id);
    else c.status = r.status;
    $('calls').querySelector(`tr[data-job="${c.job_id}"]`)?.replaceWith(callRow(c));
    say($('calls-error'), '');
  } catch (e) {
    sayError($('calls-error'), `The call to ${who} could not be canceled`, e);
  }
  refresh('calls', 'inuse', ...(c.run_id ? [`run:${c.run_id}`] : []));
}

// ---- leads

function startLabel() {
  $('start').textContent = `Start a run with ${picked.size} selected`;
}

function leadRow(l) {
  const box = el('input', {
    type: 'checkbox',
    className: 'pick',
    checked: picked.has(l.id),
    onchange: (ev) => {
      if (ev.target.checked) picked.add(l.id);
      else picked.delete(l.id);
      startLabel();
      allTicked();
    },
  });
  box.setAttribute('aria-label', `Select ${l.name}`);
  return el('tr', { dataset: { lead: l.id } },
    el('td', {}, box),
    el('td', { className: 'name', dir: 'auto' }, l.name),
    el('td', { className: 'num' }, l.phone),
    el('td', {}, l.timezone || '—'),
    el('td', {}, ago(l.created_at)));
}

function allTicked() {
  const boxes = [...$('leads').querySelectorAll('input.pick')];
  $('pick-all').checked = boxes.length > 0 && boxes.every((b) => b.checked);
}

async function loadLeads() {
  try {
    const j = await api(`/api/leads?page=${leadsPage}&page_size=${LEADS_PAGE}`);
    const pages = pager('leads', leadsPage, j.total, LEADS_PAGE);
    if (leadsPage > pages) {
      leadsPage = pages;
      return loadLeads();
    }
    $('leads').replaceChildren(...j.leads.map(leadRow));
    if (!j.leads.length) $('leads').append(el('tr', {}, el('td', { colSpan: 5, className: 'muted' }, 'No leads yet: add one or import a CSV file.')));
    allTicked();
  } catch (e) {
    sayError($('leads-error'), 'The leads could not be loaded', e);
  }
}

$('pick-all').addEventListener('change', (ev) => {
  const on = ev.target.checked;
  for (const b of $('leads').querySelectorAll('input.pick')) {
    const id = Number(b.closest('tr').dataset.lead);
    b.checked = on;
    if (on) picked.add(id);
    else picked.delete(id);
  }
  startLabel();
});

async function start() {
  say($('leads-error'), '');
  if (!picked.size) {
    say($('leads-error'), 'Select at least one lead to call first: tick the boxes in the list below.');
    return;
  }
  const ids = [...picked];
  const button = $('start');
  button.disabled = true;
  button.textContent = `Starting ${ids.length} call${ids.length === 1 ? '' : 's'}…`;
  try {
    const r = await api('/api/outbound_calls/start', { method: 'POST', body: { lead_ids: ids } });
    const skipped = r.skipped?.length
      ? ` ${r.skipped.length} lead${r.skipped.length === 1 ? ' was' : 's were'} skipped: a call to them is already queued or in progress.`
      : '';
    if (r.run_id) {
      say($('leads-note'), `Run #${r.run_id} started: ${r.queued} calls queued.${skipped}`);
    } else {
      const refused = (r.calls || []).filter((c) => c.error).map((c) => c.error).join('; ');
      const text = `${r.message[0].toUpperCase()}${r.message.slice(1)}.${refused ? ` ${refused}.` : ''}${skipped}`;
      say($(r.success ? 'leads-note' : 'leads-error'), text);
    }
    $('import-errors').replaceChildren();
    picked.clear();
    for (const b of $('leads').querySelectorAll('input.pick')) b.checked = false;
    allTicked();
    refresh('runs', 'calls', 'inuse');
  } catch (e) {
    sayError($('leads-error'), 'The calls were not started', e);
  } finally {
    button.disabled = false;
    startLabel();
  }
}
$('start').addEventListener('click', start);

$('csv').addEventListener('change', async () => {
  const input = $('csv');
  const file = input.files[0];
  if (!file) return;
  say($('leads-error'), '');
  say($('leads-note'), '');
  $('import-errors').replaceChildren();
  try {
    const r = await api('/api/leads/import', { method: 'POST', body: await file.text(), type: 'text/csv' });
    const refused = r.failed ? `, ${r.failed} row${r.failed === 1 ? '' : 's'} refused:` : '.';
    say($('leads-note'), `Imported ${r.imported}${refused}`);
    const lines = r.errors.map((x) => el('li', { dir: 'auto' }, `Line ${x.line}: ${x.error}`));
    if (r.failed > r.errors.length) lines.push(el('li', {}, `and ${r.failed - r.errors.length} more.`));
    $('import-errors').replaceChildren(...lines);
    refresh.now('leads');
  } catch (e) {
    sayError($('leads-error'), `${file.name} was not imported`, e);
  } finally {
    input.value = ''; // the same file may be chosen again
  }
});

$('add').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  say($('leads-error'), '');
  const body = { name: $('add-name').value, phone: $('add-phone').value.trim() };
  if ($('add-tz').value.trim()) body.timezone = $('add-tz').value.trim();
  try {
    const l = await api('/api/leads', { method: 'POST', body });
    say($('leads-note'), `Added ${l.name} (${l.phone}).`);
    $('import-errors').replaceChildren();
    ev.target.reset();
    refresh.now('leads');
  } catch (e) {
    sayError($('leads-error'), 'The lead was not added', e);
  }
});

for (const [id, step] of [['calls-prev', -1], ['calls-next', 1]]) {
  $(id).addEventListener('click', () => {
    callsPage = Math.max(1, callsPage + step);
    refresh.now('calls');
  });
}
for (const [id, step] of [['leads-prev', -1], ['leads-next', 1]]) {
  $(id).addEventListener('click', () => {
    leadsPage = Math.max(1, leadsPage + step);
    refresh.now('leads');
  });
}

// ---- refreshing: everything that reloads a part of the page asks for it by key ('runs',
// 'run:<id>', 'calls', 'leads', 'inuse'); one refresh at a time, at most every 300 ms, so an
// older answer never overwrites a newer one

const refresh = coalesce(async (keys) => {
  const jobs = [];
  if (keys.has('inuse')) jobs.push(loadInUse());
  const runs = [...keys].filter((k) => k.startsWith('run:')).map((k) => k.slice(4));
  if (keys.has('runs') || runs.some((id) => !runTr(id))) jobs.push(loadRuns()); // a run new here: the whole list
  else jobs.push(...runs.map(loadRun));
  if (keys.has('calls')) jobs.push(loadCalls());
  if (keys.has('leads')) jobs.push(loadLeads());
  await Promise.all(jobs);
}, 300);

header();
live(['call.status', 'run.status'], {
  'call.status': (e) => refresh('calls', 'inuse', ...(e.data?.runId ? [`run:${e.data.runId}`] : [])),
  'run.status': () => refresh('runs', 'calls', 'inuse'),
  open: () => refresh('runs', 'calls', 'inuse'), // a stream that was down may have missed a run's end
});
startLabel();
await refresh.now('runs', 'calls', 'leads', 'inuse');
setInterval(() => refresh('runs', 'calls', 'leads', 'inuse'), 15000); // clocks, and anything an event missed
