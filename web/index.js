// The sessions page: totals and one row per session, refreshed from the API.
const $ = (id) => document.getElementById(id);

function ago(iso) {
  if (!iso) return '—';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  td.dir = 'auto';
  if (cls) td.className = cls;
  return td;
}

async function api(path) {
  const r = await fetch(path, { headers: { Accept: 'application/json' } });
  if (r.status === 401) {
    location.href = '/login.html';
    throw new Error('logged out');
  }
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  return r.json();
}

async function refresh() {
  try {
    const [list, stats] = await Promise.all([api('/api/sessions'), api('/api/stats')]);
    const by = stats.sessionsByStatus;
    const totals = [['Connected', by.connected], ['Disconnected', by.disconnected], ['Failed', by.failed],
      ['Sent today', stats.messages.sentToday], ['Failed today', stats.messages.failedToday], ['Queued', stats.messages.queued]];
    $('totals').replaceChildren(...totals.map(([k, v]) => {
      const d = document.createElement('div');
      const b = document.createElement('b');
      b.textContent = String(v ?? 0);
      d.append(b, k);
      return d;
    }));
    $('sessions').replaceChildren(...list.sessions.map((s) => {
      const tr = document.createElement('tr');
      tr.append(cell(s.sessionId), cell(s.status, `status ${s.status}`), cell(s.phone || '—'), cell(s.trustLevel),
        cell(`${s.sentToday} / ${s.dailyLimit ?? '∞'}`), cell(String(s.queued)), cell(ago(s.lastPingAt)), cell(String(s.restarts)));
      return tr;
    }));
    $('error').textContent = '';
  } catch (e) {
    if (e.message !== 'logged out') $('error').textContent = `The sessions could not be loaded (${e.message}); retrying.`;
  }
}

$('logout').addEventListener('click', async () => {
  await fetch('/api/logout', { method: 'POST' });
  location.href = '/login.html';
});

// live: every session or message event refreshes the table (at most every 300 ms); the
// browser's EventSource reconnects by itself, and the page says so while it is down
let pending = null;
function soon() {
  if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 300);
}
const stream = new EventSource('/api/events/stream?type=session.status,session.qr,message.status');
for (const t of ['session.status', 'session.qr', 'message.status']) stream.addEventListener(t, soon);
stream.onopen = () => { $('live').textContent = 'live'; };
stream.onerror = () => { $('live').textContent = 'reconnecting to the live updates…'; };

refresh();
setInterval(refresh, 30000); // the clocks ("12 s ago") and anything a lost event missed
