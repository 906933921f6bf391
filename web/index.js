// The sessions page: totals, one row per session with its pacing and actions, and the
// proxies panel. It loads everything once, then follows the event stream: a session's
// event re-reads that session only (many at once re-read the list), at most every 250 ms
// and one read at a time (common.js coalesce), so an older answer never overwrites a newer.
import { $, ago, api, bar, coalesce, confirmDialog, el, header, live, say, sayError, sessionNumber, words } from '/common.js';

header();
const sessions = new Map(); // sessionId → the API's session object
const TRUST = ['cold', 'warm', 'hot'];

// "socks5://user:***@10.0.0.7:1080" → "10.0.0.7:1080"
function proxyHost(url) {
  if (!url) return 'direct';
  const m = /^[a-z0-9+.-]+:\/\/(?:[^@/]*@)?([^/?#]+)/i.exec(url);
  return m ? m[1] : url;
}

function statusText(s) {
  if (s.waitingForProxy) return 'waiting for a proxy';
  return words(s.status);
}

// the trust cell is a plain button until used: a thousand <select>s would slow the page
function trustButton(s) {
  return el('button', { type: 'button', className: 'trust', dataset: { act: 'trust' }, title: 'Set the trust level' },
    s.trustLevelFixed ? `${s.trustLevel} · fixed` : `${s.trustLevel} · by age`);
}

function trustSelect(s) {
  const sel = el('select', { className: 'trust', ariaLabel: `Trust level of ${s.sessionId}` },
    el('option', { value: '' }, 'by age'));
  for (const t of TRUST) sel.append(el('option', { value: t }, `${t} · fixed`));
  sel.value = s.trustLevelFixed ? s.trustLevel : '';
  return sel;
}

// one cell of the sessions grid (a CSS grid of divs, not a <table>: rows out of view then
// cost no layout or paint, which a thousand table rows would)
const cell = (props, ...kids) => el('span', { ...props, className: `td ${props.className || ''}`, role: 'cell' }, ...kids);

// the statuses in which a worker runs or is due to (not logged_out, failed, stopped)
const RUNS = new Set(['provisioning', 'starting', 'qr_ready', 'connected', 'disconnected']);

function row(s) {
  const limit = s.dailyLimit;
  const tr = el('div', { className: 'tr', role: 'row', dataset: { id: s.sessionId } },
    cell({}, s.sessionId),
    cell({}, el('span', { className: `status ${s.waitingForProxy ? 'disconnected' : s.status}`, title: s.reason || s.lastError || '' }, statusText(s))),
    cell({ dir: 'auto' }, s.phone || '—'),
    cell({ title: s.proxy || 'no proxy: a direct connection' }, proxyHost(s.proxy)),
    cell({}, trustButton(s)),
    limit === null || limit === undefined
      ? cell({ className: 'sent num' }, `${s.sentToday} `, el('span', { className: 'muted' }, '· no cap'))
      : cell({ className: 'sent num' }, `${s.sentToday} / ${limit}`,
        bar([{ value: s.sentToday, className: s.sentToday >= limit ? 'warn' : 'ok' }], limit, `${s.sentToday} of ${limit} sent today`)),
    cell({ className: 'num' }, String(s.queued)),
    cell({ className: 'ping', dataset: { at: s.lastPingAt || '' } }, ago(s.lastPingAt)),
    cell({ className: 'num' }, String(s.restarts)),
    cell({ className: 'actions' },
      s.status !== 'connected' ? el('a', { className: 'button', href: `/scan.html?session=${encodeURIComponent(s.sessionId)}` }, 'Link') : null,
      el('button', { type: 'button', dataset: { act: 'restart' } }, s.status === 'stopped' ? 'Start' : 'Restart'),
      RUNS.has(s.status) ? el('button', { type: 'button', dataset: { act: 'stop' }, title: 'Stop the worker; the link and the queue wait for a start' }, 'Stop') : null,
      s.status === 'connected' ? el('button', { type: 'button', dataset: { act: 'logout' } }, 'Log out') : null,
      el('button', { type: 'button', className: 'danger', dataset: { act: 'delete' } }, 'Delete')));
  return tr;
}

function matches(s, q, f) {
  if (f === 'attention' ? s.status === 'connected' : f && s.status !== f) return false;
  if (!q) return true;
  return [s.sessionId, s.phone || '', s.proxy || ''].some((v) => v.toLowerCase().includes(q));
}

// a row is built once per version of what it shows (its ping time aside, which the clock
// updates in place) and reused by every filter and refresh
const SHOWN = ['status', 'waitingForProxy', 'reason', 'lastError', 'phone', 'proxy', 'trustLevel', 'trustLevelFixed',
  'sentToday', 'dailyLimit', 'queued', 'restarts'];
const rows = new Map(); // sessionId → {key, tr}
function rowOf(s) {
  const { lastPingAt } = s;
  const key = JSON.stringify(SHOWN.map((k) => s[k]));
  let r = rows.get(s.sessionId);
  if (!r || r.key !== key) rows.set(s.sessionId, (r = { key, tr: row(s) }));
  const ping = r.tr.querySelector('.ping');
  if (ping.dataset.at !== (lastPingAt || '')) {
    ping.dataset.at = lastPingAt || '';
    ping.textContent = ago(lastPingAt);
  }
  return r.tr;
}

function render() {
  const q = $('search').value.trim().toLowerCase();
  const f = $('filter').value;
  const list = [...sessions.values()].filter((s) => matches(s, q, f)).sort((a, b) => sessionNumber(a.sessionId) - sessionNumber(b.sessionId));
  for (const id of rows.keys()) if (!sessions.has(id)) rows.delete(id);
  // move only what changed: re-inserting a thousand unchanged rows would lay them all out again
  const body = $('sessions');
  let at = body.firstChild;
  for (const tr of list.map(rowOf)) {
    if (at === tr) at = at.nextSibling;
    else body.insertBefore(tr, at);
  }
  while (at) {
    const next = at.nextSibling;
    at.remove();
    at = next;
  }
  $('shown').textContent = list.length === sessions.size ? `(${sessions.size})` : `(${list.length} of ${sessions.size})`;
  $('empty').hidden = sessions.size > 0;
}

function renderTotals(st) {
  const by = st.sessionsByStatus;
  const calls = st.calls && st.calls.enabled ? `${st.calls.active} / ${st.calls.limit}` : (st.calls ? String(st.calls.active) : '0');
  const totals = [['Connected', by.connected, 'ok'], ['Waiting for a scan', by.qr_ready, ''], ['Disconnected', by.disconnected, 'warn'],
    ['Failed', by.failed + by.logged_out, 'bad'], ['Sent today', st.messages.sentToday, ''], ['Failed today', st.messages.failedToday, ''],
    ['Queued', st.messages.queued, ''], ['Active calls', calls, '']];
  $('totals').replaceChildren(...totals.map(([k, v, c]) => el('div', { dataset: { total: k } }, el('b', { className: c }, String(v ?? 0)), k)));
}

function renderProxies(p) {
  $('proxy-mode').textContent = p.mode === 'direct' ? '(no usable proxy: sessions connect directly)' : '';
  $('no-proxies').hidden = p.proxies.length > 0;
  $('proxies').replaceChildren(...p.proxies.map((x) => el('tr', { dataset: { proxy: String(x.id) } },
    el('td', { title: x.url }, proxyHost(x.url), x.shared ? el('span', { className: 'muted' }, ' · shared') : null),
    el('td', {}, el('span', { className: `status ${x.status}` }, x.status === 'ok' ? 'ok' : 'bad')),
    el('td', { className: 'num' }, `${x.sessions} / ${x.max}`),
    el('td', { className: 'muted', dir: 'auto' }, x.lastError || ''),
    el('td', { className: 'actions' }, el('button', { type: 'button', dataset: { act: 'reset' } }, 'Reset')))));
}

// what the stream asked for: 'all', 'stats', 'proxies', or 'session:<id>'
async function refresh(keys) {
  const ids = [...keys].filter((k) => k.startsWith('session:')).map((k) => k.slice(8));
  try {
    if (keys.has('all') || ids.length > 25) {
      const [list, st, px] = await Promise.all([api('/api/sessions'), api('/api/stats?sessions=false'), api('/api/proxies')]);
      sessions.clear();
      for (const x of list.sessions) sessions.set(x.sessionId, x);
      render();
      renderTotals(st);
      renderProxies(px);
    } else {
      for (const id of ids) {
        try {
          sessions.set(id, await api(`/api/sessions/${encodeURIComponent(id)}`));
        } catch (e) {
          if (e.status !== 404) throw e;
          sessions.delete(id);
        }
      }
      if (ids.length) render();
      const [st, px] = await Promise.all([
        ids.length || keys.has('stats') ? api('/api/stats?sessions=false') : null,
        ids.length || keys.has('proxies') ? api('/api/proxies') : null]);
      if (st) renderTotals(st);
      if (px) renderProxies(px);
    }
    say($('error'), '');
  } catch (e) {
    sayError($('error'), 'The page could not be brought up to date; it tries again in a moment', e);
    throw e;
  }
}
const soon = coalesce(refresh, 250);

async function act(what, fn) {
  say($('note'), '');
  try {
    const done = await fn();
    say($('error'), '');
    if (done) say($('note'), done);
  } catch (e) {
    sayError($('error'), what, e);
  }
}

$('sessions').addEventListener('click', (ev) => {
  const b = ev.target.closest('button[data-act]');
  if (!b) return;
  const id = b.closest('[data-id]').dataset.id;
  const path = `/api/sessions/${encodeURIComponent(id)}`;
  if (b.dataset.act === 'trust') {
    if (!sessions.has(id)) return;
    const sel = trustSelect(sessions.get(id));
    const was = sel.value;
    sel.addEventListener('blur', () => { if (sel.isConnected && sel.value === was && sessions.has(id)) sel.replaceWith(trustButton(sessions.get(id))); });
    b.replaceWith(sel);
    sel.focus();
  } else if (b.dataset.act === 'restart') {
    act(`${id} could not be restarted`, async () => {
      await api(`${path}/restart`, { method: 'POST', body: {} });
      soon(`session:${id}`);
      return `${id} is restarting.`;
    });
  } else if (b.dataset.act === 'stop') {
    act(`${id} could not be stopped`, async () => {
      await api(`${path}/stop`, { method: 'POST', body: {} });
      soon(`session:${id}`);
      return `${id} is stopped: its link and its queued messages wait for Start.`;
    });
  } else if (b.dataset.act === 'logout') {
    act(`${id} could not be logged out`, async () => {
      if (!(await confirmDialog(`Log ${id} out of WhatsApp? The phone will have to be linked again.`, 'Log out'))) return '';
      await api(`${path}/logout`, { method: 'POST', body: {} });
      soon(`session:${id}`);
      return `${id} was logged out.`;
    });
  } else if (b.dataset.act === 'delete') {
    act(`${id} could not be deleted`, async () => {
      if (!(await confirmDialog(`Delete ${id}? Its worker stops and its queued messages are dropped.`))) return '';
      const tr = b.closest('[data-id]');
      tr.classList.add('gone');
      try {
        await api(path, { method: 'DELETE' });
      } catch (e) {
        tr.classList.remove('gone');
        throw e;
      } finally {
        soon(`session:${id}`);
      }
      return `${id} was deleted.`;
    });
  }
});

$('sessions').addEventListener('change', (ev) => {
  const sel = ev.target.closest('select.trust');
  if (!sel) return;
  const id = sel.closest('[data-id]').dataset.id;
  act(`The trust level of ${id} could not be set`, async () => {
    let s;
    try {
      s = await api(`/api/sessions/${encodeURIComponent(id)}/trust-level`, { method: 'POST', body: { trustLevel: sel.value || null } });
    } catch (e) {
      if (sessions.has(id)) sel.replaceWith(trustButton(sessions.get(id)));
      throw e;
    }
    sessions.set(id, s);
    render();
    return sel.value ? `${id} now sends at the ${sel.value} pace.` : `${id} follows its account's age again (${s.trustLevel}).`;
  });
});

$('proxies').addEventListener('click', (ev) => {
  const b = ev.target.closest('button[data-act=reset]');
  if (!b) return;
  const id = b.closest('tr').dataset.proxy;
  act(`Proxy ${id} could not be reset`, async () => {
    await api(`/api/proxies/${id}/reset`, { method: 'POST', body: {} });
    await soon.now('proxies');
    return `Proxy ${id} was reset and is checked again.`;
  });
});

$('provision').addEventListener('click', () => act('No session could be provisioned', async () => {
  const s = await api('/api/sessions/provision', { method: 'POST', body: {} });
  soon(`session:${s.sessionId}`);
  return `${s.sessionId} was provisioned; link a phone to it from its row.`;
}));

$('search').addEventListener('input', render);
$('filter').addEventListener('change', render);

// a QR rotation changes nothing shown here; session.status covers waiting for a scan. The
// stream resumes from the last event after a drop, so nothing needs re-reading then.
live(['session.status', 'message.status', 'call.status', 'proxy.status'], {
  'session.status': (e) => soon(`session:${e.sessionId}`),
  'message.status': (e) => soon(`session:${e.sessionId}`),
  'call.status': () => soon('stats'),
  'proxy.status': () => soon('proxies'),
});

// the clocks ("12 s ago") tick without re-reading anything
setInterval(() => {
  const now = Date.now();
  for (const td of document.querySelectorAll('#sessions .ping')) td.textContent = ago(td.dataset.at, now);
}, 5000);
setInterval(() => soon('all'), 30000); // the pings' times

// marks for bench/dashboard-1000: the table built, then the frame that shows it painted
await soon.now('all');
performance.mark('sessions-rendered');
requestAnimationFrame(() => setTimeout(() => {
  performance.mark('sessions-painted');
  document.body.dataset.ready = '1';
}));
