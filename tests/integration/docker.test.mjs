// RUNNER=docker against a real Docker engine: simulator workers in containers built
// locally FROM scratch (scripts/docker-images sim). Where no engine answers on
// DOCKER_SOCKET, every test here is skipped and says why.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { Daemon, runDaemonCheck, waitFor } from './lib.mjs';

const SOCKET = process.env.DOCKER_SOCKET || '/var/run/docker.sock';
const IMAGE = 'switchboard-sim-worker:dev';

// One Engine API call over the unix socket: {status, json}.
function engine(method, p, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ socketPath: SOCKET, method, path: `/v1.41${p}`, timeout: 30000,
      headers: data ? { 'Content-Type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(text); } catch {}
        resolve({ status: res.statusCode, json, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error('engine timed out')));
    req.on('error', reject);
    req.end(data);
  });
}

async function engineUp() {
  try {
    return (await engine('GET', '/_ping')).status === 200;
  } catch {
    return false;
  }
}

const up = await engineUp();
const why = `no Docker engine answers on ${SOCKET} (start one: scripts/docker-engine); the Docker runner was NOT tested`;
if (!up) console.log(`# SKIP docker.test.mjs: ${why}`);
else execFileSync(path.resolve('scripts/docker-images'), ['sim'], { stdio: 'inherit' });

const dtest = (name, fn) => test(name, up ? {} : { skip: why }, fn);

// the containers of one daemon instance, by label
async function containers(instance, all = true) {
  const filters = encodeURIComponent(JSON.stringify({ label: [`switchboard.instance=${instance}`] }));
  const r = await engine('GET', `/containers/json?all=${all ? 1 : 0}&filters=${filters}`);
  assert.equal(r.status, 200);
  return r.json;
}

function dockerDaemon(env = {}) {
  return new Daemon({ env: { RUNNER: 'docker', WORKER_IMAGE: IMAGE, WORKER_MEMORY_MB: '64',
    WORKER_CPU_MILLICORES: '500', ...env } });
}

// stops the daemon, then removes whatever containers of it are left, so that none leaks
async function cleanup(d) {
  const instance = d.instanceId();
  await d.stop();
  if (instance) for (const c of await containers(instance)) await engine('DELETE', `/containers/${c.Id}?force=1`);
  await d.cleanup();
}

dtest('a session runs in its own labelled, limited container; killing it brings the session back', async (t) => {
  const d = await dockerDaemon().start();
  t.after(() => cleanup(d));
  const s = await d.link('972501110001', 20000);
  const n = s.sessionId.split('_')[1];
  assert.equal(s.worker.backend, 'docker');
  assert.equal(s.worker.container, `wa_session_${n}`);

  const c = await engine('GET', `/containers/wa_session_${n}/json`);
  assert.equal(c.status, 200);
  const cfg = c.json.Config;
  assert.equal(cfg.Labels['switchboard.instance'], d.instanceId());
  assert.equal(cfg.Labels['switchboard.session'], s.sessionId);
  const env = Object.fromEntries(cfg.Env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  assert.equal(env.SESSION_ID, s.sessionId);
  assert.equal(env.AUTH_DIR, '/auth');
  assert.equal(env.WORKER_LISTEN, s.worker.address);
  assert.equal(env.LOGIN_METHOD, 'qr');
  assert.match(env.WEBHOOK_URL, /^http:\/\/127\.0\.0\.1:\d+\/webhook$/);
  assert.match(env.WEBHOOK_SECRET, /^[0-9a-f]{64}$/);
  assert.equal(env.SWITCHBOARD_INSTANCE, d.instanceId());
  assert.ok(!cfg.Env.some((kv) => kv.includes('test-master-secret') || kv.includes('test-admin-key')),
    'neither the master secret nor the API key reaches a container');
  const host = c.json.HostConfig;
  assert.equal(host.RestartPolicy.Name, 'no', 'the daemon, not the engine, decides restarts');
  assert.equal(host.NetworkMode, 'host');
  assert.equal(host.Memory, 64 * 1024 * 1024);
  assert.equal(host.NanoCpus, 500000000);
  assert.deepEqual(host.CapDrop, ['ALL']);
  assert.equal(host.ReadonlyRootfs, true);
  assert.deepEqual(host.Binds, [`${fs.realpathSync(d.authDir(s.sessionId))}:/auth:rw`]);
  // the linked state lives in the mounted auth dir, outside the container
  assert.ok(fs.existsSync(path.join(d.authDir(s.sessionId), 'sim-creds.json')));

  const firstId = c.json.Id;
  assert.equal((await engine('POST', `/containers/${firstId}/kill?signal=SIGKILL`)).status, 204);
  await waitFor(async () => {
    const x = await d.session(s.sessionId);
    return x.status === 'connected' && x.restarts === 1 ? x : false;
  }, { timeout: 20000, what: 'session back to connected in a new container' });
  const now = await containers(d.instanceId());
  assert.equal(now.length, 1, 'exactly one container for the session, the dead one removed');
  assert.notEqual(now[0].Id, firstId);
  assert.equal(now[0].State, 'running');
  // the dead container's output was kept in the worker's log before it was removed
  const wlog = fs.readFileSync(path.join(d.dir, 'data', 'logs', `${s.sessionId}.log`), 'utf8');
  assert.match(wlog, new RegExp(`output of container wa_session_${n} \\(id ${firstId.slice(0, 12)}\\)`));
  assert.match(wlog, /linked/i);
  assert.match(d.log(), /worker killed by signal 9/);
});

dtest('the output kept at each container exit stays within WORKER_LOG_MAX_BYTES, the newest kept as .1', async (t) => {
  const CAP = 4096;
  const d = await dockerDaemon({ WORKER_LOG_MAX_BYTES: String(CAP), RESTART_BACKOFF_MIN_MS: '10',
    RESTART_BACKOFF_MAX_MS: '50' }).start();
  t.after(() => cleanup(d));
  const id = await d.provision();
  const log = path.join(d.dir, 'data', 'logs', `${id}.log`);
  for (let exit = 1; exit <= 2; exit++) {
    const s = await waitFor(async () => {
      const x = await d.session(id);
      return x.status === 'qr_ready' && x.restarts === exit - 1 && x.worker ? x : false;
    }, { timeout: 20000, what: `container ${exit} up` });
    // each unsigned command is refused with a logged line: ~20 KB of output, 5 x the cap
    for (let i = 0; i < 200; i++) {
      const r = await fetch(`http://${s.worker.address}/sim/scan?exit=${exit}&n=${i}`, { method: 'POST', body: '{}' });
      assert.equal(r.status, 401);
    }
    assert.equal((await d.sim(id, '/sim/crash')).status, 200);
    // the next container starts only after this one's output was appended (and capped)
    await waitFor(async () => (await d.session(id)).restarts === exit, { timeout: 20000, what: `exit ${exit} handled` });
  }
  const live = fs.statSync(log).size;
  assert.ok(live <= CAP, `the live log is within the cap: ${live} bytes`);
  const kept = fs.readFileSync(`${log}.1`, 'utf8');
  assert.ok(kept.length <= CAP, `the kept part is at most the cap: ${kept.length} bytes`);
  assert.match(kept + fs.readFileSync(log, 'utf8'), /simulated crash, exiting code=3/, 'the newest output is kept');
  assert.doesNotMatch(kept, /exit=1&/, 'the first container\'s output has been rotated away');
});

dtest('kill -9 of the daemon: its containers are adopted by label, none duplicated', async (t) => {
  const d = await dockerDaemon().start();
  t.after(() => cleanup(d));
  const a = await d.link('972501110002', 20000);
  const b = await d.link('972501110003', 20000);
  const before = await containers(d.instanceId());
  assert.equal(before.length, 2);
  await d.kill9();
  assert.equal((await containers(d.instanceId(), false)).length, 2, 'containers outlive a killed daemon');
  await d.start();
  assert.match(d.log(), /recovered sessions adopted=2 to_start=0/);
  for (const s of [a, b]) assert.equal((await d.session(s.sessionId)).status, 'connected');
  const after = await containers(d.instanceId());
  assert.deepEqual(after.map((c) => c.Id).sort(), before.map((c) => c.Id).sort(), 'the same containers, adopted');
  // an adopted container is watched: one that dies is replaced
  const victim = after.find((c) => c.Labels['switchboard.session'] === a.sessionId);
  assert.equal((await engine('POST', `/containers/${victim.Id}/kill?signal=SIGKILL`)).status, 204);
  await waitFor(async () => {
    const x = await d.session(a.sessionId);
    return x.status === 'connected' && x.restarts === 1;
  }, { timeout: 20000, what: 'restart of an adopted container' });
  assert.equal((await containers(d.instanceId())).length, 2);
  // and its last output was kept in the worker's log, as for one this daemon started
  const wlog = fs.readFileSync(path.join(d.dir, 'data', 'logs', `${a.sessionId}.log`), 'utf8');
  assert.match(wlog, new RegExp(`output of container \\S+ \\(id ${victim.Id.slice(0, 12)}\\)`));
});

dtest('a clean stop stops and removes the containers; the sessions come back after', async (t) => {
  const d = await dockerDaemon().start();
  t.after(() => cleanup(d));
  const s = await d.link('972501110004', 20000);
  assert.equal(await d.stop(), 0);
  assert.equal((await containers(d.instanceId())).length, 0);
  await d.start();
  await d.waitStatus(s.sessionId, 'connected', 20000);
  assert.equal((await containers(d.instanceId())).length, 1);
});

dtest('delete removes the container', async (t) => {
  const d = await dockerDaemon().start();
  t.after(() => cleanup(d));
  const s = await d.link('972501110005', 20000);
  const n = s.sessionId.split('_')[1];
  const r = await d.del(`/api/sessions/${s.sessionId}`);
  assert.ok(r.status === 200 || r.status === 202, `delete answered ${r.status} ${r.text}`);
  await waitFor(async () => (await engine('GET', `/containers/wa_session_${n}/json`)).status === 404,
    { timeout: 20000, what: 'container removed' });
  assert.equal((await containers(d.instanceId())).length, 0);
});

dtest('a container name held by something else is never taken over; a missing image is named', async (t) => {
  const d = await dockerDaemon().start();
  t.after(() => cleanup(d));
  // a foreign container squats on the name the next session will get
  const probe = await d.provision();
  const n = Number(probe.split('_')[1]) + 1;
  const squat = await engine('POST', `/containers/create?name=wa_session_${n}`, { Image: IMAGE, Labels: { owner: 'someone-else' } });
  assert.equal(squat.status, 201);
  t.after(() => engine('DELETE', `/containers/${squat.json.Id}?force=1`));
  const id = await d.provision();
  assert.equal(id, `worker_${n}`);
  await waitFor(async () => /taken by a container this daemon does not own/.test((await d.session(id)).lastError || ''),
    { timeout: 20000, what: 'the conflict reported' });
  assert.equal((await engine('GET', `/containers/${squat.json.Id}/json`)).status, 200, 'the foreign container is left alone');

  const bad = runDaemonCheck({ RUNNER: 'docker', WORKER_NETWORK: 'sb net' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /WORKER_NETWORK may hold only/);
  const missing = new Daemon({ env: { RUNNER: 'docker', WORKER_IMAGE: 'switchboard-no-such-image:dev' } });
  t.after(() => missing.cleanup());
  await assert.rejects(missing.start(), /WORKER_IMAGE switchboard-no-such-image:dev is not on the engine/);
});
