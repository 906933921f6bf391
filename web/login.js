// The login form: the key goes to POST /api/login once and is kept nowhere in the browser;
// the daemon answers with an HttpOnly session cookie.
const form = document.getElementById('login');
const error = document.getElementById('error');

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  error.textContent = '';
  const key = form.key.value;
  form.key.value = '';
  try {
    const r = await fetch('/api/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ apiKey: key }),
    });
    if (r.ok) {
      location.href = '/';
      return;
    }
    error.textContent = r.status === 401 ? 'That API key is not valid. Check it and try again.'
      : `The daemon could not log you in (HTTP ${r.status}). Try again in a moment.`;
  } catch {
    error.textContent = 'The daemon cannot be reached. Is it running?';
  }
});
