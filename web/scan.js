// The "Link a phone" page (/scan.html?session=worker_N): provisions a session or picks one not
// linked yet, shows its QR as the daemon's SVG and replaces it as the QR rotates, or asks for a
// pairing code for a phone number; flips to "Connected as +…" the moment the session connects.
// Everything follows the live event stream; nothing reloads the page.
import { $, api, coalesce, el, header, live, say, sayError, words } from '/common.js';

header();

let id = new URLSearchParams(location.search).get('session'); // the session shown, or null
let session = null; // its last GET /api/sessions/{id}
let mode = 'qr'; // 'qr' or 'pair'
let qrShown = false; // the img holds a QR that loaded
let deleted = false;
let loadSeq = 0; // the newest load(): an older answer that comes after it is dropped
let codeNew = false; // a pairing code arrived: the next load shows it

// the states a session does not leave by itself, in words
const FAILURES = {
  failed: (s) => `This session failed${s.lastError ? ` (${s.lastError})` : ''}. Restart it from the Sessions page, or link the phone with a new session.`,
  logged_out: () => 'This session was logged out of WhatsApp. Provision a new session to link a phone again.',
  stopped: () => 'This session is stopped. Restart it from the Sessions page to link a phone.',
};

const path = (s) => `/api/sessions/${encodeURIComponent(id)}${s}`;

function status(text, bad = false) {
  $('status').textContent = text;
  $('status').classList.toggle('bad', bad);
}

// the session view from the state above
function render() {
  const s = session;
  if (!s) return;
  $('sid').textContent = s.sessionId;
  const connected = s.status === 'connected' && !deleted;
  const failure = deleted ? 'This session was deleted. Provision a new session to link a phone.' : FAILURES[s.status]?.(s);
  const linking = !connected && !failure;
  $('connected').hidden = !connected;
  $('connected-phone').textContent = s.phone || 'an unknown number';
  $('tabs').hidden = !linking;
  $('qr-pane').hidden = !linking || mode !== 'qr';
  $('pair-pane').hidden = !linking || mode !== 'pair';
  $('qr').hidden = !qrShown;
  $('tab-qr').setAttribute('aria-pressed', String(mode === 'qr'));
  $('tab-pair').setAttribute('aria-pressed', String(mode === 'pair'));
  if (failure) status(failure, true);
  else if (connected) status('The phone is linked: this session can send messages now.');
  else if (s.status === 'disconnected') status('The session lost its connection to WhatsApp; it is reconnecting…');
  else if (mode === 'qr') status(qrShown ? 'Scan this code with WhatsApp → Linked devices → Link a device.' : 'Waiting for the QR…');
  else if ($('code').hidden) status('Type the phone number of the WhatsApp account to link; its pairing code appears here.');
  else status('On the phone, open WhatsApp → Linked devices → Link with phone number instead, and type this code.');
}

// a new QR: the same URL with a new query, so the browser fetches it again
function loadQr(v) {
  $('qr').src = path(`/qr.svg?v=${v}`);
}
$('qr').addEventListener('load', () => { qrShown = true; render(); });
$('qr').addEventListener('error', () => { qrShown = false; render(); }); // 404: no QR now

function showCode(code) {
  $('code').textContent = code.length === 8 ? `${code.slice(0, 4)}-${code.slice(4)}` : code;
  $('code').hidden = false;
}

// (re)reads the session; newCode shows its pairing code (one just arrived)
async function load(newCode = false) {
  codeNew ||= newCode;
  const seq = ++loadSeq;
  const want = id;
  try {
    const s = await api(path(''));
    if (seq !== loadSeq) return;
    session = s;
    say($('error'), '');
    if (s.status !== 'qr_ready') qrShown = false;
    else if (!qrShown) loadQr(Date.now());
    if (s.pairingCode && (codeNew || s.loginMethod === 'pairing_code')) {
      mode = 'pair';
      showCode(s.pairingCode);
    }
    codeNew = false;
    render();
  } catch (e) {
    if (seq !== loadSeq) return;
    if (e.status === 404) {
      say($('error'), `There is no session ${want}. It may have been deleted: provision a new one or pick another below.`);
      id = null;
      showPicker();
    } else {
      sayError($('error'), 'The session could not be loaded', e);
    }
  }
}

function open(newId) {
  id = newId;
  session = null;
  qrShown = false;
  deleted = false;
  codeNew = false;
  mode = 'qr';
  $('code').hidden = true;
  say($('pair-error'), '');
  history.replaceState(null, '', `/scan.html?session=${encodeURIComponent(id)}`);
  $('pick').hidden = true;
  $('link').hidden = false;
  $('sid').textContent = id;
  status('Waiting for the QR…');
  load();
}

// ---- no session named: provision one, or pick one that has never been linked ----

function showPicker() {
  $('link').hidden = true;
  $('pick').hidden = false;
  refreshList.now('list');
}

// the sessions not linked yet; every session.status of any session asks again, at most every 300 ms
const refreshList = coalesce(async () => {
  if ($('pick').hidden) return;
  try {
    const { sessions } = await api('/api/sessions');
    const waiting = sessions.filter((s) => !s.firstConnectedAt && s.status !== 'connected' && !FAILURES[s.status]);
    const sel = $('sessions');
    const keep = sel.value;
    sel.replaceChildren(...waiting.map((s) => el('option', { value: s.sessionId }, `${s.sessionId} — ${words(s.status)}`)));
    if (!waiting.length) sel.append(el('option', { value: '', disabled: true, selected: true }, 'none is waiting to be linked'));
    else if (waiting.some((s) => s.sessionId === keep)) sel.value = keep;
    $('choose').querySelector('button').disabled = !waiting.length;
  } catch (e) {
    sayError($('error'), 'The sessions could not be listed', e);
  }
}, 300);

$('provision').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('new').disabled = true;
  try {
    const r = await api('/api/sessions/provision', { method: 'POST', body: {} });
    say($('error'), '');
    open(r.sessionId);
  } catch (e) {
    sayError($('error'), 'No new session could be made', e);
  } finally {
    $('new').disabled = false;
  }
});

$('choose').addEventListener('submit', (ev) => {
  ev.preventDefault();
  if ($('sessions').value) {
    say($('error'), '');
    open($('sessions').value);
  }
});

// ---- pairing code ----

$('tab-qr').addEventListener('click', () => { mode = 'qr'; render(); });
$('tab-pair').addEventListener('click', () => { mode = 'pair'; render(); $('phone').focus(); });

$('pair-pane').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const phone = $('phone').value.replace(/[\s().-]/g, '');
  const bad = !/^\+?\d{8,15}$/.test(phone);
  $('phone').setAttribute('aria-invalid', String(bad));
  if (bad) {
    say($('pair-error'), 'That is not a phone number: type 8 to 15 digits with the country code, optionally after a +, for example +972501234567.');
    return;
  }
  say($('pair-error'), '');
  $('pair').disabled = true;
  try {
    const r = await api(path('/pairing-code'), { method: 'POST', body: { phone } });
    showCode(r.code);
  } catch (e) {
    sayError($('pair-error'), '', e);
  } finally {
    $('pair').disabled = false;
    render();
  }
});

// ---- live: only this session's events change the view ----

live(['session.qr', 'session.status'], {
  'session.qr': (e) => {
    if (e.sessionId !== id || !session || session.status === 'connected') return;
    if (e.data?.loginMethod === 'pairing_code') load(true);
    else loadQr(e.id);
  },
  'session.status': (e) => {
    if (!id) return refreshList('list');
    if (e.sessionId !== id) return;
    if (e.data?.status === 'deleted') {
      deleted = true;
      loadSeq++; // a load on its way is older: its 404 would say "no session"
      render();
    } else {
      load();
    }
  },
  // (re)connected: catch up with anything the stream missed meanwhile
  open: () => (id ? load() : refreshList('list')),
});

if (id) open(id);
else showPicker();
