// Shared by every dashboard page: the navigation, calls to the API with errors in words,
// the live event stream with its "reconnecting" indicator, and small DOM helpers.
// Nothing here keeps the API key: the daemon's HttpOnly cookie carries the login.

export const $ = (id) => document.getElementById(id);

// el('td', {className: 'x', dir: 'auto'}, 'text', child…): text children become text nodes,
// never HTML, so names and messages from outside cannot inject markup
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

// "12 s ago", "3 min ago", "2 h ago", "4 d ago"; '—' when never
export function ago(iso, now = Date.now()) {
  if (!iso) return '—';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const sentence = (s) => (s ? s[0].toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? '' : '.') : '');

// the daemon's error answer {error:{code,message}} as a sentence a person reads
function errorWords(status, j) {
  const m = j && j.error && typeof j.error.message === 'string' ? j.error.message : '';
  if (status === 429) {
    const after = j && j.retryAfter ? ` Try again in ${j.retryAfter} s.` : ' Try again in a moment.';
    return sentence(m || 'too many requests') + after;
  }
  if (status >= 500) return `The daemon could not do that (${sentence(m || `HTTP ${status}`)}) Try again in a moment.`;
  if (status === 404 && !m) return 'That no longer exists. It may have been deleted.';
  return sentence(m || `the request was refused (HTTP ${status})`);
}

// fetch JSON from the API. A lost login leads to the login page; any other failure throws
// an ApiError whose message is a whole sentence.
export async function api(path, { method = 'GET', body, type } = {}) {
  const headers = { Accept: 'application/json' };
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = type || 'application/json';
    payload = type ? body : JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, 'UNREACHABLE', 'The daemon cannot be reached. Is it running?');
  }
  if (r.status === 401 && !path.startsWith('/api/login')) {
    location.href = '/login.html';
    throw new ApiError(401, 'UNAUTHORIZED', 'Your login has ended. Log in again.');
  }
  let j = null;
  try {
    j = await r.json();
  } catch {
    if (r.ok) throw new ApiError(r.status, 'BAD_ANSWER', 'The daemon sent an answer this page cannot read.');
  }
  if (!r.ok) throw new ApiError(r.status, j && j.error ? j.error.code : '', errorWords(r.status, j));
  return j;
}

// show a message in an element with role=alert (or clear it with '')
export function say(elem, text) {
  elem.textContent = text;
  elem.hidden = !text;
}

// the live event stream: handlers is {type: fn(event), '*': fn(event), open: fn()}, from
// event id `since` (else from now). The browser's EventSource reconnects by itself, resuming
// after the last event id; handlers.open runs on every (re)connection, for a page to catch
// up with what it missed; the indicator says "reconnecting" while the stream is down. When
// the browser gives up (an answer that was not a stream), a new stream is opened from the
// last event seen, after 2, 4, 8 … 30 s; a login that ended leads to the login page.
export function live(types, handlers, indicator = $('live'), since = null) {
  let last = since;
  let wait = 2000;
  const show = (ok) => {
    if (!indicator) return;
    indicator.textContent = ok ? 'live' : 'reconnecting to the live updates…';
    indicator.classList.toggle('down', !ok);
  };
  const open = () => {
    const es = new EventSource(`/api/events/stream?type=${types.join(',')}${last !== null ? `&since=${last}` : ''}`);
    for (const t of types) {
      es.addEventListener(t, (m) => {
        let e;
        try {
          e = JSON.parse(m.data);
        } catch {
          return;
        }
        last = e.id;
        handlers[t]?.(e);
        handlers['*']?.(e);
      });
    }
    es.onopen = () => {
      wait = 2000;
      show(true);
      handlers.open?.();
    };
    es.onerror = () => {
      show(false);
      if (es.readyState !== EventSource.CLOSED) return;
      const again = () => {
        setTimeout(open, wait);
        wait = Math.min(30000, wait * 2);
      };
      api('/api/me').then(again, (e) => { if (e.status !== 401) again(); });
    };
  };
  open();
}

// Runs run(keys) for what was asked since its last run: ask('x', 'y') adds keys; runs
// start at most every `ms`, one at a time, so an older answer never overwrites a newer one.
// A run that throws is asked again with its keys 5 s later. ask.now(...) runs at once
// (awaitable), after any run in progress.
export function coalesce(run, ms = 250) {
  let keys = new Set();
  let timer = null;
  let running = null;
  const go = async () => {
    timer = null;
    while (running) await running;
    if (!keys.size) return;
    const mine = keys;
    keys = new Set();
    running = (async () => {
      try {
        await run(mine);
      } catch {
        for (const k of mine) keys.add(k);
        timer ??= setTimeout(go, 5000);
      }
    })();
    await running;
    running = null;
    if (keys.size) timer ??= setTimeout(go, ms);
  };
  const ask = (...k) => {
    for (const x of k) keys.add(x);
    if (keys.size) timer ??= setTimeout(go, ms);
  };
  ask.now = (...k) => {
    for (const x of k) keys.add(x);
    clearTimeout(timer);
    timer = null;
    return go();
  };
  return ask;
}

// "Prefix: The daemon's sentence." in an alert element; a lost login says nothing here
// (api() is on its way to the login page)
export function sayError(elem, prefix, e) {
  if (e.status !== 401) say(elem, prefix ? `${prefix}: ${e.message}` : e.message);
}

// the API's names in words: "no_answer" → "no answer", "logged_out" → "logged out"
export const words = (name) => String(name).replaceAll('_', ' ');

// worker_12 → 12, to sort sessions by number
export const sessionNumber = (id) => Number(String(id).replace(/\D/g, '')) || 0;

const PAGES = [['/', 'Sessions'], ['/scan.html', 'Link a phone'], ['/live-log.html', 'Live log'], ['/calls.html', 'Calls']];

// the header's navigation and the log-out button, on every page but the login
export function header() {
  const nav = el('nav');
  for (const [href, label] of PAGES) {
    const a = el('a', { href }, label);
    if (location.pathname === href || (href === '/' && location.pathname === '/index.html')) a.setAttribute('aria-current', 'page');
    nav.append(a);
  }
  nav.append(el('button', {
    id: 'logout',
    type: 'button',
    onclick: async () => {
      try {
        await fetch('/api/logout', { method: 'POST' });
      } finally {
        location.href = '/login.html';
      }
    },
  }, 'Log out'));
  document.querySelector('header').append(nav);
}

// ask before something that cannot be undone; resolves true only on the confirming button
export function confirmDialog(question, yes = 'Delete') {
  return new Promise((resolve) => {
    const d = el('dialog', { className: 'confirm' },
      el('p', { dir: 'auto' }, question),
      el('form', { method: 'dialog' },
        el('button', { value: 'no', type: 'submit' }, 'Cancel'),
        el('button', { value: 'yes', type: 'submit', className: 'danger' }, yes)));
    d.addEventListener('close', () => {
      resolve(d.returnValue === 'yes');
      d.remove();
    });
    document.body.append(d);
    d.showModal();
  });
}

// a progress bar of parts [{value, className, label}] out of total
export function bar(parts, total, title) {
  const b = el('div', { className: 'bar', role: 'img', title: title || '' });
  if (title) b.setAttribute('aria-label', title);
  for (const p of parts) {
    const pct = total > 0 ? Math.min(100, (100 * p.value) / total) : 0;
    if (pct > 0) b.append(el('span', { className: p.className || '', style: `width:${pct}%` }));
  }
  return b;
}
