// Provisions N simulator sessions on a running daemon and links each with a signed
// /sim/scan; exits 0 once all N are connected (bounded by LINK_TIMEOUT_S, default 120).
// Usage: node bench/link.mjs <port> <N>   (the daemon's API_KEY and WEBHOOK_SECRET are
// bench/sblib.mjs's). Prints the session ids, one line.
import { Daemon } from './sblib.mjs';

const [port, n] = [Number(process.argv[2]), Number(process.argv[3] || 1)];
if (!port || !n) {
  console.error('usage: node bench/link.mjs <port> <N>');
  process.exit(2);
}
const d = new Daemon('/nonexistent');
d.port = port;
d.base = `http://127.0.0.1:${port}`;
d.provisionAndLink(n, Number(process.env.LINK_TIMEOUT_S || 120) * 1000).then(
  (list) => { console.log(list.map((s) => s.sessionId).join(' ')); d.agent.destroy(); },
  (e) => { console.error(`link: ${e.message}`); process.exit(1); },
);
