// Backups of the sessions' auth state: create, list, download, rotate, restore into a
// wiped sessions dir (the simulators come back without a QR), and tampered archives refused.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { test } from 'node:test';
import { connectedOnNewWorker, Daemon, pidAlive, sleep, waitFor } from './lib.mjs';

// a ustar archive of [{name, data, type}] (type '0' file, '2' symlink with linkname), gzipped
function tarGz(entries) {
  const blocks = [];
  for (const e of entries) {
    const h = Buffer.alloc(512);
    const data = Buffer.from(e.data || '');
    h.write(e.name, 0, 100);
    h.write('0000600\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write((e.type === '2' ? 0 : data.length).toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write(e.type || '0', 156);
    if (e.link) h.write(e.link, 157, 100);
    h.write('ustar\0' + '00', 257);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(h);
    if (e.type !== '2') {
      blocks.push(data);
      if (data.length % 512) blocks.push(Buffer.alloc(512 - (data.length % 512)));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return zlib.gzipSync(Buffer.concat(blocks));
}

test('backup, list, download, rotate; restore into a wiped sessions dir reconnects without a QR', async () => {
  const d = await new Daemon({ env: { MAX_BACKUPS: '2', BACKUP_AT: '' } }).start();
  try {
    const a = (await d.link('+972501240001')).sessionId;
    const b = (await d.link('+972501240002')).sessionId;
    const r = await d.post('/api/backups');
    assert.equal(r.status, 201, r.text);
    assert.match(r.json.name, /^switchboard-backup-\d{8}-\d{6}\.tar\.gz$/);
    const man = Object.fromEntries(r.json.sessions.map((s) => [s.sessionId, s]));
    assert.ok(man[a].files.length >= 1 && man[b].files.length >= 1);
    for (const f of man[a].files) assert.match(f.sha256, /^[0-9a-f]{64}$/);
    const file = path.join(d.dir, 'data', 'backups', r.json.name);
    assert.equal(fs.statSync(file).size, r.json.size);
    const listing = execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).trim().split('\n');
    assert.ok(listing.includes('manifest.json'));
    assert.ok(listing.some((p) => p.startsWith(`sessions/${a}/`)));
    assert.ok(fs.readdirSync(path.join(d.dir, 'data', 'backups')).every((n) => !n.startsWith('.tmp-')), 'no temporary left');
    const dl = await fetch(`${d.url}/api/backups/${r.json.name}`, { headers: { 'X-API-Key': (await import('./lib.mjs')).ADMIN_KEY } });
    assert.equal(dl.status, 200);
    assert.equal(dl.headers.get('content-type'), 'application/gzip');
    assert.ok(Buffer.from(await dl.arrayBuffer()).equals(fs.readFileSync(file)), 'the download is the archive');
    assert.equal((await d.get('/api/backups/..%2Fapi_key')).status, 404);
    assert.equal((await d.get('/api/backups/switchboard-backup-20990101-000000.tar.gz')).status, 404);

    // wipe both sessions' auth state, then restore: back to connected without a QR
    const before = (await d.get('/api/events?type=session.qr&limit=1000')).json.events.length;
    for (const id of [a, b]) fs.rmSync(d.authDir(id), { recursive: true, force: true });
    const rs = await d.post(`/api/backups/${r.json.name}/restore`, {});
    assert.equal(rs.status, 200, rs.text);
    assert.deepEqual([...rs.json.restored].sort(), [a, b].sort());
    for (const id of [a, b]) {
      await waitFor(async () => {
        const s = await d.session(id);
        return s.status === 'connected' && s.restarts >= 1 ? s : false;
      }, { timeout: 15000, what: `${id} back after the restore` });
      assert.ok(fs.existsSync(path.join(d.authDir(id), 'sim-creds.json')), 'the auth files are back');
    }
    const after = (await d.get('/api/events?type=session.qr&limit=1000')).json.events.length;
    assert.equal(after, before, 'no new QR: the restored auth state linked them');
    assert.equal((await d.get(`/api/sessions/${a}`)).json.phone, '+972501240001');

    // rotation: only the newest MAX_BACKUPS (2) stay
    for (let i = 0; i < 2; i++) {
      await sleep(1100); // names carry the second
      assert.equal((await d.post('/api/backups')).status, 201);
    }
    const names = (await d.get('/api/backups')).json.backups.map((x) => x.name);
    assert.equal(names.length, 2);
    assert.ok(!names.includes(r.json.name), 'the oldest went');
    const t = await d.post('/api/tenants', { name: 'other' });
    assert.equal((await d.get('/api/backups', { key: t.json.apiKey })).status, 403, 'admin only');
  } finally {
    await d.cleanup();
  }
});

test('a tampered archive (../ paths, a symlink) is refused and writes nothing outside SESSIONS_DIR', async () => {
  const d = await new Daemon({ env: { BACKUP_AT: '' } }).start();
  try {
    const id = await d.provision({});
    await d.waitStatus(id, 'qr_ready');
    const dir = path.join(d.dir, 'data', 'backups');
    const cases = [
      ['switchboard-backup-20200101-000001.tar.gz', [{ name: `sessions/${id}/../../../escaped.txt`, data: 'x' }]],
      ['switchboard-backup-20200101-000002.tar.gz', [{ name: '/tmp/absolute.txt', data: 'x' }]],
      ['switchboard-backup-20200101-000003.tar.gz', [{ name: `sessions/${id}/link`, type: '2', link: '/etc/passwd' }]],
      ['switchboard-backup-20200101-000004.tar.gz', [{ name: 'other/place.txt', data: 'x' }]],
    ];
    for (const [name, entries] of cases) {
      fs.writeFileSync(path.join(dir, name), tarGz(entries));
      const r = await d.post(`/api/backups/${name}/restore`, {});
      assert.equal(r.status, 422, `${name}: ${r.text}`);
      assert.equal(r.json.error.code, 'RESTORE_REFUSED');
      assert.match(r.json.error.message, /unsafe path|link/);
    }
    assert.ok(!fs.existsSync(path.join(d.dir, 'data', 'escaped.txt')));
    assert.ok(!fs.existsSync(path.join(d.dir, 'escaped.txt')));
    const sessions = fs.readdirSync(path.join(d.dir, 'data', 'sessions'));
    assert.ok(sessions.every((n) => !n.startsWith('.restore-')), `nothing left behind: ${sessions}`);
    // a good archive naming only this session restores it
    fs.writeFileSync(path.join(dir, 'switchboard-backup-20200101-000005.tar.gz'),
      tarGz([{ name: `sessions/${id}/note.txt`, data: 'restored' }, { name: 'sessions/worker_999/x', data: 'y' }]));
    const ok = await d.post('/api/backups/switchboard-backup-20200101-000005.tar.gz/restore', { sessions: [id] });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json.restored, [id]);
    await waitFor(() => fs.existsSync(path.join(d.authDir(id), 'note.txt')), { what: 'the file in place' });
    assert.equal(fs.readFileSync(path.join(d.authDir(id), 'note.txt'), 'utf8'), 'restored');
  } finally {
    await d.cleanup();
  }
});

// a linked session stopped by the API, with a backup of its auth dir taken before; other
// linked sessions keep running
async function withStoppedSession(d, phones) {
  const ids = [];
  for (const p of phones) ids.push((await d.link(p)).sessionId);
  const r = await d.post('/api/backups');
  assert.equal(r.status, 201, r.text);
  assert.equal((await d.post(`/api/sessions/${ids[0]}/stop`, {})).status, 200);
  const s = await waitFor(async () => {
    const x = await d.session(ids[0]);
    return x.worker === null ? x : false;
  }, { what: 'the stopped session\'s worker gone' });
  assert.equal(s.status, 'stopped');
  return { ids, backup: r.json.name, archive: path.join(d.dir, 'data', 'backups', r.json.name) };
}

test('restore into a stopped session: its files are the archive\'s, it is restored but not restarted, and stays stopped', async () => {
  const d = await new Daemon({ env: { BACKUP_AT: '' } }).start();
  try {
    const { ids: [a, b], backup, archive } = await withStoppedSession(d, ['+972501240011', '+972501240012']);
    const archived = execFileSync('tar', ['-xzOf', archive, `sessions/${a}/sim-creds.json`], { encoding: 'utf8' });
    assert.match(archived, /972501240011/);
    // the stopped session's files change after the backup: the restore must bring the archive's back
    fs.writeFileSync(path.join(d.authDir(a), 'sim-creds.json'), '{"changed after the backup":true}');
    fs.writeFileSync(path.join(d.authDir(a), 'extra.txt'), 'not in the archive');
    const bBefore = await d.waitStatus(b, 'connected');
    const lastEvent = (await d.get(`/api/events?type=session.status&sessionId=${a}&limit=1000`)).json.events.length;

    const rs = await d.post(`/api/backups/${backup}/restore`, {});
    assert.equal(rs.status, 200, rs.text);
    assert.deepEqual([...rs.json.restored].sort(), [a, b].sort(), 'both sessions\' files were replaced');
    assert.deepEqual(rs.json.restarted, [b], 'only the running one restarts');
    assert.deepEqual(rs.json.skipped, []);

    // the stopped session's files are the archive's, at once (no worker to wait for)
    assert.equal(fs.readFileSync(path.join(d.authDir(a), 'sim-creds.json'), 'utf8'), archived);
    assert.ok(!fs.existsSync(path.join(d.authDir(a), 'extra.txt')), 'the whole dir was replaced');
    assert.ok(!fs.existsSync(`${d.authDir(a)}.replaced`), 'the old dir is gone');

    // the restarted one goes through its restart and comes back; by then a start of the
    // stopped one would have happened too (PROVISIONING_INTERVAL_MS=0)
    await waitFor(async () => {
      const s = await d.session(b);
      return s.status === 'connected' && s.restarts > bBefore.restarts ? s : false;
    }, { timeout: 15000, what: `${b} back after the restore` });
    const s = await d.session(a);
    assert.equal(s.status, 'stopped', 'it stays stopped');
    assert.equal(s.worker, null, 'no worker was started');
    const events = (await d.get(`/api/events?type=session.status&sessionId=${a}&limit=1000`)).json.events;
    assert.equal(events.length, lastEvent, 'no status change for the stopped session');
    assert.match(d.log(), new RegExp(`auth dir restored from a backup session=${a}`));
    assert.match(d.log(), /restore started name=\S+ sessions=2 restarted=1 skipped=0/);
  } finally {
    await d.cleanup();
  }
});

test('a restore whose swap fails leaves the old files in place and reports the session as skipped, with why', async (t) => {
  const d = await new Daemon({ env: { BACKUP_AT: '' } }).start();
  let locked = null;
  try {
    const { ids: [a], backup } = await withStoppedSession(d, ['+972501240021']);
    fs.writeFileSync(path.join(d.authDir(a), 'marker.txt'), 'the old files');
    // an immutable auth dir cannot be renamed, even by root (ext4 and the like)
    try {
      execFileSync('chattr', ['+i', d.authDir(a)], { stdio: 'ignore' });
      locked = d.authDir(a);
    } catch {
      t.skip('chattr +i is not available here');
      return;
    }
    const rs = await d.post(`/api/backups/${backup}/restore`, { sessions: [a] });
    assert.equal(rs.status, 200, rs.text);
    assert.deepEqual(rs.json.restored, []);
    assert.deepEqual(rs.json.restarted, []);
    assert.equal(rs.json.skipped.length, 1, rs.text);
    assert.equal(rs.json.skipped[0].sessionId, a);
    assert.match(rs.json.skipped[0].reason, /^cannot set the old auth dir aside: .+; the old files stay$/);
    execFileSync('chattr', ['-i', locked]);
    locked = null;
    assert.equal(fs.readFileSync(path.join(d.authDir(a), 'marker.txt'), 'utf8'), 'the old files');
    const left = fs.readdirSync(path.join(d.dir, 'data', 'sessions'));
    assert.ok(left.every((n) => !n.startsWith('.restore-') && !n.endsWith('.replaced')), `nothing left behind: ${left}`);
    assert.equal((await d.session(a)).status, 'stopped');
  } finally {
    if (locked) execFileSync('chattr', ['-i', locked]);
    await d.cleanup();
  }
});

test('a restore still waiting for a worker that will not stop survives a kill -9 of the daemon: the next start finishes it', async () => {
  const d = await new Daemon({ env: { BACKUP_AT: '', WORKER_STOP_GRACE_MS: '3000' } }).start();
  try {
    const s = await d.link('+972501240031');
    const a = s.sessionId;
    const r = await d.post('/api/backups');
    assert.equal(r.status, 201, r.text);
    fs.writeFileSync(path.join(d.authDir(a), 'marker.txt'), 'written after the backup');
    // the worker never exits on SIGTERM: only the daemon's SIGKILL after the grace ends it
    assert.equal((await d.sim(a, '/sim/stop-delay', { ms: 600000 })).status, 200);
    const rs = await d.post(`/api/backups/${r.json.name}/restore`, { sessions: [a] });
    assert.equal(rs.status, 200, rs.text);
    assert.deepEqual([rs.json.restored, rs.json.restarted], [[a], [a]]);
    assert.ok(fs.existsSync(`${d.authDir(a)}.restore`), 'the restored files wait beside the auth dir');
    assert.ok(fs.existsSync(path.join(d.authDir(a), 'marker.txt')), 'not swapped while the worker runs');
    // the daemon dies before the worker has gone (its SIGKILL was 3 s away)
    await d.kill9();
    assert.ok(pidAlive(s.worker.pid), 'the old worker outlived the daemon');
    await d.start();
    assert.match(d.log(), new RegExp(`finishing a restore from a backup session=${a} worker_running=1`));
    const back = await connectedOnNewWorker(d, a, s.worker.pid, { what: `${a} back on the restored files` });
    assert.equal(back.status, 'connected');
    assert.ok(!pidAlive(s.worker.pid), 'the old worker was stopped');
    assert.ok(!fs.existsSync(path.join(d.authDir(a), 'marker.txt')), 'the auth dir is the archive\'s');
    assert.ok(!fs.existsSync(`${d.authDir(a)}.restore`) && !fs.existsSync(`${d.authDir(a)}.replaced`), 'nothing left beside it');
    assert.match(d.log(), new RegExp(`auth dir restored from a backup session=${a}`));
  } finally {
    await d.cleanup();
  }
});

test('start-up puts back an auth dir a crash left set aside mid-swap, and removes what deleted sessions left', async () => {
  const d = await new Daemon({ env: { BACKUP_AT: '' } }).start();
  try {
    const a = (await d.link('+972501240041')).sessionId;
    assert.equal(await d.stop(), 0);
    const sdir = path.join(d.dir, 'data', 'sessions');
    // the first rename of a swap happened, the second did not
    fs.renameSync(d.authDir(a), `${d.authDir(a)}.replaced`);
    fs.mkdirSync(path.join(sdir, 'worker_99.restore'));
    fs.mkdirSync(path.join(sdir, 'worker_98.replaced'));
    fs.mkdirSync(path.join(sdir, '.restore-discard-0123456789abcdef')); // a deletion cut short
    await d.start();
    assert.match(d.log(), new RegExp(`auth dir put back after an interrupted restore session=${a}`));
    await d.waitStatus(a, 'connected'); // on its old link: no QR
    assert.deepEqual(fs.readdirSync(sdir).sort(), [a], 'only the auth dir is left');
  } finally {
    await d.cleanup();
  }
});

test('a restore that comes while a logged-out session\'s worker is still stopping wins over the logout\'s wipe', async () => {
  const d = await new Daemon({ env: { BACKUP_AT: '', WORKER_STOP_GRACE_MS: '20000' } }).start();
  try {
    const s = await d.link('+972501240051');
    const a = s.sessionId;
    const r = await d.post('/api/backups');
    assert.equal(r.status, 201, r.text);
    assert.equal((await d.sim(a, '/sim/stop-delay', { ms: 1500 })).status, 200);
    assert.equal((await d.post(`/api/sessions/${a}/logout`, {})).status, 200);
    await d.waitStatus(a, 'logged_out');
    assert.ok(pidAlive(s.worker.pid), 'the worker is still on its way out');
    const rs = await d.post(`/api/backups/${r.json.name}/restore`, { sessions: [a] });
    assert.equal(rs.status, 200, rs.text);
    assert.deepEqual([rs.json.restored, rs.json.restarted], [[a], [a]]);
    // back on the restored link: no QR
    const back = await connectedOnNewWorker(d, a, s.worker.pid, { what: `${a} linked again from the backup` });
    assert.equal(back.status, 'connected');
    assert.ok(fs.existsSync(path.join(d.authDir(a), 'sim-creds.json')));
    assert.doesNotMatch(d.log(), new RegExp(`auth dir removed session=${a}`), 'the logout\'s wipe was not done');
  } finally {
    await d.cleanup();
  }
});

test('a restore keeps the ids of messages sent after the backup in sent.log: none is sent twice', async () => {
  const open = '0,0,0,0,00:00-24:00';
  const d = await new Daemon({ env: { BACKUP_AT: '', PACING_COLD: open, PACING_WARM: open, PACING_HOT: open, TYPING_MAX_MS: '0' } }).start();
  try {
    const s = await d.link('+972501240061');
    const a = s.sessionId;
    const r = await d.post('/api/backups');
    assert.equal(r.status, 201, r.text);
    const m = await d.post('/api/v1/send', { to: '972500000061', message: 'after the backup', sessionId: a });
    assert.equal(m.status, 202, m.text);
    await waitFor(async () => (await d.get(`/api/v1/messages/${m.json.messageId}`)).json.status === 'sent', { what: 'sent' });
    const log = () => fs.readFileSync(path.join(d.authDir(a), 'sent.log'), 'utf8').split('\n').filter(Boolean);
    assert.deepEqual(log(), [m.json.messageId]);
    const rs = await d.post(`/api/backups/${r.json.name}/restore`, { sessions: [a] });
    assert.deepEqual(rs.json.restored, [a], rs.text);
    await connectedOnNewWorker(d, a, s.worker.pid, { what: `${a} back on the restored files` });
    assert.deepEqual(log(), [m.json.messageId], 'the id sent after the backup is still recorded');
  } finally {
    await d.cleanup();
  }
});
