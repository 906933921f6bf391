// The live log: every event of the tenant as it happens, newest on top. The recent backlog
// comes from GET /api/events?last=, then the event stream resumes right after its last
// event (?since=, then Last-Event-ID on reconnects), so nothing shows twice and nothing is
// missed in between. Filters by type, session and level hide rows, those already shown and
// those to come; pause keeps receiving but holds the new events back until resume. At most
// MAX events are kept, in memory and in the DOM: the oldest are dropped, and counted. The
// events that arrive within one animation frame are rendered together.
import { $, api, el, header, live, say, sayError, sessionNumber } from '/common.js';

const MAX_EVENTS = 2000; // the bound; ?max=N lowers it (10…2000), for tests and slow machines
const MAX = Math.min(MAX_EVENTS, Math.max(10, Number(new URLSearchParams(location.search).get('max')) || MAX_EVENTS));
const TYPES = ['session.status', 'session.qr', 'message.status', 'message.received', 'call.status', 'run.status',
  'proxy.status', 'alert'];
const LEVELS = ['info', 'warn', 'error'];
const PAGE = 1000; // the most GET /api/events gives at once

// Events carry no level; the page derives one from the type and the data:
//   error — a session failed or was logged out, a message or a call failed, an alert that a
//           session failed or was logged out or that a backup failed;
//   warn  — a session disconnected, a message expired, a call busy or not answered, a proxy
//           marked bad, any other alert but "connected" and "run_finished";
//   info  — everything else: sessions on their way up, QR codes, messages, runs, trust levels.
function level({ type, data }) {
  const d = data || {};
  const s = d.status;
  switch (type) {
    case 'session.status': return s === 'failed' || s === 'logged_out' ? 'error' : s === 'disconnected' ? 'warn' : 'info';
    case 'message.status': return s === 'failed' ? 'error' : s === 'expired' ? 'warn' : 'info';
    case 'call.status': return s === 'failed' ? 'error' : s === 'busy' || s === 'no_answer' ? 'warn' : 'info';
    case 'proxy.status': return s === 'bad' ? 'warn' : 'info';
    case 'alert':
      if (['session_failed', 'logged_out', 'backup_failed'].includes(d.kind)) return 'error';
      return ['connected', 'run_finished'].includes(d.kind) ? 'info' : 'warn';
    default: return 'info';
  }
}

// text from outside (messages, reasons, errors) is isolated, so Hebrew keeps its direction
const ext = (s) => el('bdi', {}, s);

// the event in one line: our words, with the outside text in <bdi>
function summary({ type, data }) {
  const d = data || {};
  const err = d.error ? [': ', ext(d.error)] : [];
  switch (type) {
    case 'session.status':
      if (d.trustLevel) return [ext(d.reason)];
      return [`${d.status} (was ${d.previous})`, ...(d.reason && d.reason !== d.status ? [': ', ext(d.reason)] : [])];
    case 'session.qr': return [d.loginMethod === 'pairing_code' ? 'a pairing code to enter' : 'a new QR code to scan'];
    case 'message.status': return [`message ${d.messageId} ${d.status}`, ...err];
    case 'message.received': return [`from ${d.from}: `, ext(d.text)];
    case 'call.status': return [`call ${d.jobId} of run ${d.runId} (lead ${d.leadId}) ${d.status}`, ...err];
    case 'run.status': return [`run ${d.runId} ${d.status} (${d.total} calls)`];
    case 'proxy.status': return [`proxy ${d.proxy} ${d.status}`];
    case 'alert': return [ext(d.text || d.kind)];
    default: return [JSON.stringify(d)];
  }
}

const pad = (n) => String(n).padStart(2, '0');
const hms = (t) => `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
const count = (n) => n.toLocaleString('en');

let shown = []; // {e, tr}, oldest first; their rows are in #log, newest on top
let visible = 0; // how many of them the filters show
let held = []; // the events that came while paused, oldest first
let pending = []; // the events that came since the last frame, oldest first
let dropped = 0;
const sessions = new Set(); // every session seen, offered by the session filter
let lastId = null; // the newest event here; null until the backlog (or the first event) says
let paused = false;
let matches = () => true;

function row(e) {
  const lvl = level(e);
  const t = new Date(e.at);
  return el('tr', { dataset: { id: e.id, type: e.type, session: e.sessionId || '', level: lvl } },
    el('td', { className: 'num', title: t.toLocaleString() }, hms(t)),
    el('td', {}, el('span', { className: `level ${lvl}` }, lvl)),
    el('td', {}, e.type),
    el('td', { dir: 'auto' }, e.sessionId || '—'),
    el('td', { className: 'event' }, el('details', {},
      el('summary', { dir: 'auto' }, ...summary(e)),
      el('pre', {}, JSON.stringify(e.data, null, 2)))));
}

// the newest MAX of a list of events (oldest first), the others counted as dropped
function newest(events) {
  if (events.length <= MAX) return events;
  dropped += events.length - MAX;
  return events.slice(-MAX);
}

// shows events (oldest first), then drops the oldest rows beyond MAX
function render(events) {
  const rows = newest(events).map((e) => {
    const tr = row(e);
    tr.hidden = !matches(e);
    visible += !tr.hidden;
    shown.push({ e, tr });
    return tr;
  });
  $('log').prepend(...rows.reverse());
  if (shown.length > MAX) {
    const old = shown.splice(0, shown.length - MAX);
    for (const { tr } of old) {
      visible -= !tr.hidden;
      tr.remove();
    }
    dropped += old.length;
  }
}

function status() {
  $('count').textContent = !shown.length ? 'No events yet.'
    : !visible ? `No events match the filters (${count(shown.length)} hidden).`
    : `${count(visible)} of ${count(shown.length)} events shown.`;
  $('dropped').textContent = dropped ? `${count(dropped)} older events dropped.` : '';
  say($('pending'), paused ? `${count(held.length)} new` : '');
}

// the session filter offers every session seen, in number order
function noteSession(id) {
  if (!id || sessions.has(id)) return;
  sessions.add(id);
  const sel = $('session');
  const next = [...sel.options].find((o) => o.value && sessionNumber(o.value) > sessionNumber(id));
  sel.insertBefore(el('option', { value: id }, id), next || null);
}

// an event from the stream: kept for the next frame (at most MAX of them, should frames stop
// while the tab is hidden)
function add(e) {
  if (lastId !== null && e.id <= lastId) return; // a reconnect may repeat the last one
  lastId = e.id;
  if (!pending.length) requestAnimationFrame(flush);
  if (pending.push(e) > MAX) {
    pending.shift();
    dropped++;
  }
}

// the events of this frame: shown, or held back while paused
function flush() {
  const events = pending;
  pending = [];
  for (const e of events) noteSession(e.sessionId);
  if (!paused) render(events);
  else held = newest([...held, ...events]);
  status();
}

function applyFilters() {
  const types = new Set([...$('types').querySelectorAll('input:checked')].map((i) => i.value));
  const session = $('session').value;
  const min = LEVELS.indexOf($('level').value);
  matches = (e) => types.has(e.type) && (!session || e.sessionId === session) && LEVELS.indexOf(level(e)) >= min;
  visible = 0;
  for (const x of shown) {
    x.tr.hidden = !matches(x.e);
    visible += !x.tr.hidden;
  }
  status();
}

function togglePause() {
  paused = !paused;
  $('pause').textContent = paused ? 'Resume' : 'Pause';
  $('pause').setAttribute('aria-pressed', String(paused));
  if (!paused) {
    render(held);
    held = [];
  }
  status();
}

// the newest events (up to MAX, and GET /api/events gives at most PAGE at once), oldest
// first; lastId becomes where the stream resumes
async function backlog() {
  const r = await api(`/api/events?last=${Math.min(MAX, PAGE)}`);
  lastId = r.nextSince;
  for (const e of r.events) noteSession(e.sessionId);
  render(r.events);
}

header();
for (const t of TYPES) {
  $('types').append(el('label', {}, el('input', { type: 'checkbox', name: 'type', value: t, checked: true }), ` ${t}`));
}
$('filters').addEventListener('change', applyFilters);
$('filters').addEventListener('submit', (ev) => ev.preventDefault());
$('pause').addEventListener('click', togglePause);
$('bound').textContent = `The page keeps the latest ${count(MAX)} events.`;
try {
  await backlog();
} catch (err) {
  sayError($('error'), 'The recent events could not be loaded (new events are shown as they come)', err);
}
status();
live(TYPES, { '*': add }, $('live'), lastId);
