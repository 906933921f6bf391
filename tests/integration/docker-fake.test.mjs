// RUNNER=docker against a fake engine (tests/fakes/docker.mjs): what the Docker runner
// does on its own side (the worker's log file) is tested even where no engine runs;
// docker.test.mjs covers the real engine when there is one.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { startFakeDocker } from '../fakes/docker.mjs';
import { Daemon } from './lib.mjs';

test('a crash-looping container: the output appended at each exit stays within WORKER_LOG_MAX_BYTES, the newest kept as .1', async (t) => {
  const CAP = 8192;
  const EXITS = 3;
  // each exit leaves 2000 lines (~170 KB), many times the cap
  const lines = (n) => Array.from({ length: 2000 }, (_, i) => `exit ${n} line ${i} ${'x'.repeat(64)}`);
  const d = new Daemon({ env: { RUNNER: 'docker', WORKER_IMAGE: 'switchboard-sim-worker:dev',
    WORKER_LOG_MAX_BYTES: String(CAP), PING_TIMEOUT_MS: '60000', WORKER_START_GRACE_MS: '60000' } });
  // the first EXITS containers die by themselves at once; the next one runs until stopped
  const fe = await startFakeDocker(`${d.dir}/docker.sock`, {
    plan: (n) => (n <= EXITS ? { exitAfterMs: 20, exitCode: 1, logs: lines } : { logs: () => ['stopped'] }),
  });
  d.opts.env.DOCKER_SOCKET = fe.socket;
  t.after(async () => {
    await d.cleanup();
    await fe.close();
  });
  await d.start();
  const id = await d.provision();
  // a container runs only once the one before it was reported, i.e. after its output was
  // written to the log and it was removed
  await fe.waitFor(() => [...fe.containers.values()].some((c) => c.n === EXITS + 1 && c.state === 'running'),
    15000, `container ${EXITS + 1} running`);
  assert.equal(fe.count('GET', /^\/containers\/[0-9a-f]{64}\/logs$/), EXITS, 'the output of each exit was read');
  assert.equal(fe.count('DELETE', /^\/containers\/[0-9a-f]{64}$/), EXITS, 'each exited container was removed');
  const log = `${d.dir}/data/logs/${id}.log`;
  const live = fs.statSync(log).size;
  assert.ok(live <= CAP, `the live log is within the cap: ${live} bytes`);
  assert.ok(fs.existsSync(`${log}.1`), 'the over-long log was rotated');
  const kept = fs.readFileSync(`${log}.1`, 'utf8');
  assert.ok(kept.length <= CAP, `the kept part is at most the cap: ${kept.length} bytes`);
  assert.ok(kept.endsWith(`exit ${EXITS} line 1999 ${'x'.repeat(64)}\n`), 'the newest output is what is kept');
});
