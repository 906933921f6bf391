// The SOCKS5 egress: PROXY_URL parsing and masking (the same rules as the daemon's
// src/proxy.c), the agents that carry every WhatsApp connection through it, and telling
// a proxy failure apart from a WhatsApp-side one.
//
// What goes through the proxy (Baileys 7.0.0-rc14):
//   - the WebSocket to web.whatsapp.com: `agent` (ws hands it to https.request);
//   - media uploads: `fetchAgent` (on Node, Baileys uploads with node:https and that agent);
//   - every fetch() Baileys makes (media and history downloads, app-state patches,
//     profile pictures): `options.dispatcher`, an undici dispatcher, because Node's
//     fetch ignores `agent`. The same dispatcher is also installed as the process-wide
//     fetch dispatcher, so a fetch that forgets to pass it cannot go out directly.
// Host names are sent to the proxy unresolved (socks5h): no local DNS for WhatsApp hosts.
// The daemon's events are posted with node:http directly, never through the proxy.
import net from 'node:net';
import tls from 'node:tls';
import { SocksClient, SocksClientError } from 'socks';
import { SocksProxyAgent } from 'socks-proxy-agent';
import { Agent as UndiciAgent, setGlobalDispatcher } from 'undici';

export const PROXY_URL_MAX = 1024;

function hostCharOk(c) {
  return /[A-Za-z0-9._-]/.test(c);
}

// socks5h://[user[:pass]@]host:port -> { host, port, user, pass, hasCredentials, masked }.
// Credentials are used verbatim (no percent-decoding), as the daemon's own SOCKS
// re-check uses them. Error messages never contain the credentials.
export function parseProxyUrl(url) {
  if (typeof url !== 'string' || url.length === 0 || url.length > PROXY_URL_MAX) {
    throw new Error(`must be 1 to ${PROXY_URL_MAX} characters`);
  }
  const se = url.indexOf('://');
  if (se < 0) throw new Error('must look like socks5h://user:pass@host:port');
  const scheme = url.slice(0, se);
  if (scheme !== 'socks5h') {
    // echo the scheme only when it is one: text before a later "://" may hold the password
    if (/^[a-z0-9+.-]{1,16}$/.test(scheme)) {
      throw new Error(`scheme must be socks5h:// so that DNS goes through the proxy (got ${scheme}://)`);
    }
    throw new Error('must start with socks5h:// so that DNS goes through the proxy');
  }
  let p = url.slice(se + 3);
  let user = '';
  let pass = '';
  let hasCredentials = false;
  const at = p.lastIndexOf('@');
  if (at >= 0) {
    if (at === 0) throw new Error("has an empty user before '@'");
    const cred = p.slice(0, at);
    for (const ch of cred) {
      if (ch.charCodeAt(0) <= 0x20 || ch === '/') throw new Error("credentials contain a space, control character or '/'");
    }
    const colon = cred.indexOf(':');
    user = colon >= 0 ? cred.slice(0, colon) : cred;
    pass = colon >= 0 ? cred.slice(colon + 1) : '';
    if (Buffer.byteLength(user) > 255 || Buffer.byteLength(pass) > 255) {
      throw new Error('user or password is longer than 255 bytes');
    }
    hasCredentials = true;
    p = p.slice(at + 1);
  }
  let host;
  let portStr;
  if (p.startsWith('[')) {
    const close = p.indexOf(']');
    if (close < 0 || p[close + 1] !== ':') throw new Error('has a bad IPv6 host; use [addr]:port');
    host = p.slice(1, close);
    if (!/^[0-9A-Fa-f:.]+$/.test(host)) throw new Error('has a bad IPv6 host');
    portStr = p.slice(close + 2);
  } else {
    const colon = p.lastIndexOf(':');
    if (colon < 0) throw new Error('needs a port: socks5h://user:pass@host:port');
    host = p.slice(0, colon);
    for (const ch of host) if (!hostCharOk(ch)) throw new Error("host may hold only letters, digits, '.', '-' and '_'");
    portStr = p.slice(colon + 1);
  }
  if (host.length === 0 || host.length > 255) throw new Error('needs a host: socks5h://user:pass@host:port');
  if (portStr.endsWith('/')) portStr = portStr.slice(0, -1);
  if (!/^[0-9]{1,5}$/.test(portStr) || Number(portStr) < 1 || Number(portStr) > 65535) {
    throw new Error('port must be a number from 1 to 65535');
  }
  const port = Number(portStr);
  const v6 = host.includes(':');
  const hostPort = `${v6 ? `[${host}]` : host}:${port}`;
  return {
    host,
    port,
    user,
    pass,
    hasCredentials,
    masked: `socks5h://${hasCredentials ? '***@' : ''}${hostPort}`,
  };
}

// The URL socks-proxy-agent wants: it percent-decodes user and password, so they are
// encoded here to arrive verbatim.
function agentUrl(p) {
  const v6 = p.host.includes(':');
  const cred = p.hasCredentials ? `${encodeURIComponent(p.user)}:${encodeURIComponent(p.pass)}@` : '';
  return `socks5h://${cred}${v6 ? `[${p.host}]` : p.host}:${p.port}`;
}

// The SOCKS handshake took longer than allowed.
export class ProxyTimeoutError extends Error {
  constructor(ms) {
    super(`Proxy connection timed out (no SOCKS answer within ${ms} ms)`);
    this.name = 'ProxyTimeoutError';
  }
}

// A SocksProxyAgent that remembers how its last connection attempt went, so that a
// failed WebSocket can be attributed to the proxy (SOCKS handshake never finished) or
// to WhatsApp (the tunnel was up; TLS or WebSocket failed beyond it). It also bounds the
// SOCKS handshake: ws's own handshake timer only starts once it has a socket, and the
// socks package's default is 30 s (its `timeout` option would also cut an idle
// WebSocket, so it is not used).
export class TrackingSocksAgent extends SocksProxyAgent {
  constructor(p, { handshakeTimeoutMs = 20000 } = {}) {
    super(agentUrl(p));
    this.handshakeTimeoutMs = handshakeTimeoutMs;
    this.lastAttempt = null;
  }

  async connect(req, opts) {
    const attempt = { target: `${opts.host}:${opts.port}`, started: Date.now(), ok: false, error: null };
    this.lastAttempt = attempt;
    const pending = super.connect(req, opts);
    let timer;
    const expired = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new ProxyTimeoutError(this.handshakeTimeoutMs)), this.handshakeTimeoutMs);
    });
    try {
      const s = await Promise.race([pending, expired]);
      attempt.ok = true;
      return s;
    } catch (e) {
      attempt.error = e;
      // the abandoned attempt: its socket is closed whenever it settles
      pending.then((s) => s.destroy(), () => {});
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
}

// An undici dispatcher that opens every connection through the SOCKS5 proxy, with the
// host name resolved by the proxy.
export function makeSocksDispatcher(p, { connectTimeoutMs = 20000 } = {}) {
  return new UndiciAgent({
    connections: 4,
    keepAliveTimeout: 10000,
    connect(opts, cb) {
      let done = false;
      const finish = (err, sock) => {
        if (done) {
          if (sock) sock.destroy();
          return;
        }
        done = true;
        cb(err, err ? null : sock);
      };
      let host = opts.hostname || '';
      if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
      const https = opts.protocol === 'https:';
      const port = Number(opts.port) || (https ? 443 : 80);
      SocksClient.createConnection({
        proxy: {
          host: p.host,
          port: p.port,
          type: 5,
          ...(p.hasCredentials ? { userId: p.user, password: p.pass } : {}),
        },
        command: 'connect',
        destination: { host, port },
        timeout: connectTimeoutMs,
      }).then(({ socket }) => {
        if (!https) return finish(null, socket);
        const servername = opts.servername || (net.isIP(host) ? undefined : host);
        const t = tls.connect({ socket, servername, ALPNProtocols: ['http/1.1'] });
        t.once('error', (e) => {
          t.destroy();
          finish(e);
        });
        t.once('secureConnect', () => finish(null, t));
      }, (e) => finish(e));
    },
  });
}

export function isSocksError(e) {
  if (!e || typeof e !== 'object') return false;
  if (e instanceof SocksClientError || e instanceof ProxyTimeoutError) return true;
  // a copy of the socks package other than ours: recognise its error by shape
  return typeof e.options === 'object' && e.options !== null && 'proxy' in e.options && 'destination' in e.options;
}

// What an operator should read for a SOCKS failure.
function explain(msg) {
  if (/Authentication failed|no accepted authentication type/i.test(msg)) return 'the proxy rejected the credentials';
  if (/ECONNREFUSED/.test(msg)) return 'the proxy refused the connection (nothing listening?)';
  if (/ETIMEDOUT|timed out/i.test(msg)) return 'the proxy did not answer in time';
  if (/ENOTFOUND|EAI_AGAIN/.test(msg)) return 'the proxy host name does not resolve';
  if (/EHOSTUNREACH|ENETUNREACH/.test(msg)) return 'the proxy host is unreachable';
  if (/rejected connection/i.test(msg)) return 'the proxy could not reach the WhatsApp server';
  if (/Socket closed|ECONNRESET/i.test(msg)) return 'the proxy closed the connection during the SOCKS handshake';
  return 'SOCKS failure';
}

// The proxy's share in a WebSocket that closed before it ever opened: a message for
// PROXY_ERROR, or null when the proxy is not to blame. `err` is what Baileys reports
// (a Boom whose `data` is the WebSocket's own error), `agent` the TrackingSocksAgent
// of that socket.
export function proxyFailureOf(err, agent, masked, waitedMs) {
  const cause = err && typeof err === 'object' && err.data instanceof Error ? err.data : err;
  let socks = isSocksError(cause) ? cause : null;
  const last = agent?.lastAttempt;
  if (!socks && last && isSocksError(last.error)) socks = last.error;
  let text = null;
  if (socks) {
    const raw = String(socks.message || 'SOCKS error');
    text = `${explain(raw)}: ${raw}`;
  } else if (last && !last.ok && !last.error) {
    // the WebSocket gave up (its own handshake timeout) while the SOCKS handshake was still going
    text = `the proxy did not complete the SOCKS handshake within ${waitedMs ?? Date.now() - last.started} ms`;
  }
  if (!text) return null;
  const target = last?.target ? ` (target ${last.target})` : '';
  return `proxy ${masked} failed: ${text}${target}`.slice(0, 390);
}

// Everything a WhatsApp socket needs to go through the proxy.
export function makeProxy(p, { connectTimeoutMs = 20000, installGlobal = true } = {}) {
  const dispatcher = makeSocksDispatcher(p, { connectTimeoutMs });
  if (installGlobal) setGlobalDispatcher(dispatcher);
  return {
    parsed: p,
    masked: p.masked,
    dispatcher,
    // a fresh agent per socket: its lastAttempt then belongs to that socket alone
    newWsAgent: () => new TrackingSocksAgent(p, { handshakeTimeoutMs: connectTimeoutMs }),
    fetchAgent: new SocksProxyAgent(agentUrl(p)),
    async close() {
      await dispatcher.close().catch(() => {});
    },
  };
}
