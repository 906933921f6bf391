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

// the live event stream: handlers is {type: fn(event)}, from event id `since` (else from
// now). The browser's EventSource reconnects by itself, resuming after the last event id;
// the indicator says so while it is down.
export function live(types, handlers, indicator = $('live'), since = null) {
  let last = since;
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
  const show = (ok) => {
    if (!indicator) return;
    indicator.textContent = ok ? 'live' : 'reconnecting to the live updates…';
    indicator.classList.toggle('down', !ok);
  };
  es.onopen = () => show(true);
  es.onerror = () => {
    show(false);
    // the browser gave up (an answer that was not a stream): a login that ended goes to the
    // login page; otherwise open a new stream from the last event seen
    if (es.readyState === EventSource.CLOSED) api('/api/me').then(() => setTimeout(() => live(types, handlers, indicator, last), 2000), () => {});
  };
  return es;
}

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
