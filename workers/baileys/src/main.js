#!/usr/bin/env node
// Entry point: node workers/baileys/src/main.js
// Exit codes: 0 after SIGTERM/SIGINT, 2 for a bad environment (one line on stderr
// naming the variable), 1 for a runtime failure.
import { ConfigError, EXIT_CONFIG, EXIT_RUNTIME, loadConfig, USAGE } from './config.js';
import { errInfo } from './log.js';
import { startWorker, StartError } from './worker.js';

const HARD_EXIT_MS = 4500; // under the daemon's WORKER_STOP_GRACE_MS (5 s by default)

function fail(code, line) {
  process.stderr.write(`baileys-worker: ${line.replace(/[\r\n]+/g, ' ')}\n`);
  process.exit(code);
}

let config;
try {
  config = loadConfig(process.env, process.argv.slice(2));
} catch (e) {
  if (e instanceof ConfigError) fail(EXIT_CONFIG, `invalid environment ${e.message}`);
  throw e;
}
if (config.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

let worker;
try {
  worker = await startWorker(config);
} catch (e) {
  if (e instanceof StartError) fail(e.exitCode, e.message);
  fail(EXIT_RUNTIME, `cannot start: ${e?.message ?? e}`);
}

const log = worker.log;
let exiting = false;
function shutdown(signal) {
  if (exiting) return;
  exiting = true;
  // a stop that hangs must not keep the process: the daemon is waiting for it
  setTimeout(() => {
    log.error('stop took too long, exiting');
    process.exit(0);
  }, HARD_EXIT_MS).unref();
  worker.stop(signal).then(
    () => process.exit(0),
    (e) => {
      log.error({ err: errInfo(e) }, 'stop failed');
      process.exit(0);
    },
  );
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

// Baileys lets the odd promise rejection escape (a query that times out after its socket
// closed): logged, not fatal. An uncaught exception leaves the state unknown: exit, and
// the daemon starts the worker again.
process.on('unhandledRejection', (e) => {
  log.warn({ err: errInfo(e) }, 'unhandled rejection');
});
process.on('uncaughtException', (e) => {
  log.fatal({ err: { ...errInfo(e), stack: String(e?.stack ?? '').slice(0, 2000) } }, 'uncaught exception, exiting');
  process.exit(EXIT_RUNTIME);
});
