// The login form: the key goes to POST /api/login once and is kept nowhere in the browser;
// the daemon answers with an HttpOnly session cookie.
import { api, say } from '/common.js';

const form = document.getElementById('login');
const error = document.getElementById('error');

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  say(error, '');
  const key = form.key.value;
  form.key.value = '';
  try {
    await api('/api/login', { method: 'POST', body: { apiKey: key } });
    location.href = '/';
  } catch (e) {
    say(error, e.status === 401 ? 'That API key is not valid. Check it and try again.' : e.message);
  }
});
