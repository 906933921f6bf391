// Wiring: configuration -> logger, event queue, sent.log, proxy agents, WhatsApp session,
// command server, PING timer. main.js runs it as a process; tests run it in-process with
// a fake socket factory (deps.makeSocket) and a fake daemon.
import { createRequire } from 'node:module';
import { authDirUsable } from './auth.js';
import { EventQueue } from './events.js';
import { makeLogger } from './log.js';
import { makeProxy } from './proxy.js';
import { bodyObject, createCommandServer, HttpError } from './server.js';
import { SentLog } from './sentlog.js';
import { normalizePhone } from './config.js';
import { WhatsApp } from './wa.js';

const require = createRequire(import.meta.url);
export const BAILEYS_VERSION = (() => {
  try {
    return require('baileys/package.json').version;
  } catch {
    return 'unknown';
  }
})();

export class StartError extends Error {
  constructor(message, exitCode) {
    super(message);
    this.exitCode = exitCode;
  }
}

// Resident set size in bytes.
export function rssBytes() {
  return process.memoryUsage.rss();
}

// deps: { makeSocket, loadAuth, wipeAuth, log, logDestination, socketOptions, installGlobalDispatcher }
export async function startWorker(config, deps = {}) {
  const startedAt = Date.now();
  const secrets = [config.secret];
  if (config.proxy?.pass) secrets.push(config.proxy.pass);
  const log = deps.log ?? makeLogger({ level: config.logLevel, secrets, sessionId: config.sessionId, destination: deps.logDestination });
  const blog = log.child({ module: 'baileys' }, { level: config.baileysLogLevel });

  try {
    authDirUsable(config.authDir);
  } catch (e) {
    throw new StartError(`AUTH_DIR: not usable (${e.code || e.message})`, 2);
  }
  let sentLog;
  try {
    sentLog = await SentLog.open(config.authDir, log);
  } catch (e) {
    throw new StartError(`AUTH_DIR: cannot open sent.log (${e.code || e.message})`, 2);
  }

  const events = new EventQueue({
    url: config.webhookUrl,
    sessionId: config.sessionId,
    secret: config.secret,
    log: log.child({ module: 'events' }),
    max: config.eventQueueMax,
    timeoutMs: config.eventTimeoutMs,
  });

  const proxy = config.proxy ? makeProxy(config.proxy, { connectTimeoutMs: config.connectTimeoutMs, installGlobal: deps.installGlobalDispatcher ?? true }) : null;

  const wa = new WhatsApp({
    config,
    log: log.child({ module: 'wa' }),
    blog,
    events,
    sentLog,
    proxy,
    makeSocket: deps.makeSocket,
    loadAuth: deps.loadAuth,
    wipeAuth: deps.wipeAuth,
    socketOptions: deps.socketOptions,
  });

  const health = () => ({
    ok: true,
    simulator: false,
    worker: 'baileys',
    baileysVersion: BAILEYS_VERSION,
    sessionId: config.sessionId,
    uptimeMs: Date.now() - startedAt,
    rssBytes: rssBytes(),
    proxy: proxy ? proxy.masked : null,
    queuedEvents: events.length,
    sentIds: sentLog.size,
    ...wa.health(),
  });

  const routes = {
    '/send': {
      method: 'POST',
      fn: async (body) => wa.acceptSend(bodyObject(body)),
    },
    '/logout': {
      method: 'POST',
      fn: async (body) => {
        bodyObject(body, true);
        await wa.logout();
        return [200, { ok: true }];
      },
    },
    '/pairing-code': {
      method: 'POST',
      fn: async (body) => {
        const o = bodyObject(body);
        const phone = normalizePhone(o.phone);
        if (!phone) throw new HttpError(400, 'INVALID_PHONE', 'phone must be 8-15 digits with an optional +');
        const code = await wa.pairingCode(phone);
        return [200, { ok: true, code }];
      },
    },
    '/health': {
      method: 'GET',
      fn: async () => [200, health()],
    },
  };

  const server = createCommandServer({
    host: config.listen.host,
    port: config.listen.port,
    secret: config.secret,
    log: log.child({ module: 'cmd' }),
    routes,
  });
  let address;
  try {
    // listen before the first event: a daemon that hears from us may call at once
    address = await server.listen();
  } catch (e) {
    events.close();
    await sentLog.close();
    await proxy?.close();
    throw new StartError(`cannot listen on WORKER_LISTEN ${config.listen.host}:${config.listen.port}: ${e.code || e.message}`, 1);
  }

  log.info(
    {
      listen: `${address.address}:${address.port}`,
      webhook: events.target,
      loginMethod: config.loginMethod,
      proxy: proxy ? proxy.masked : 'none (direct connection)',
      pingMs: config.pingMs,
      presenceMs: config.presenceMs,
      selfMessageMs: config.selfMessageMs,
      sentIds: sentLog.size,
      baileys: BAILEYS_VERSION,
      node: process.version,
    },
    'worker starting',
  );

  const ping = () => events.post('PING', { uptimeMs: Date.now() - startedAt, rssBytes: rssBytes() });
  ping();
  const pingTimer = setInterval(ping, config.pingMs);

  await wa.start();

  let stopping = null;
  const stop = (why = 'stop') => {
    if (stopping) return stopping;
    stopping = (async () => {
      log.info({ why }, 'stopping');
      clearInterval(pingTimer);
      await server.close();
      await wa.stop();
      const flushed = await events.drain(config.shutdownFlushMs);
      if (!flushed) log.warn({ undelivered: events.length }, 'undelivered events dropped at exit');
      events.close();
      await sentLog.close();
      log.info('stopped');
    })();
    return stopping;
  };

  return { config, log, events, sentLog, wa, server, address, health, stop };
}
