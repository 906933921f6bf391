// The Baileys auth state in AUTH_DIR: useMultiFileAuthState's files (creds.json and one
// <type>-<id>.json per key), next to this worker's sent.log.
//
// Two things are added around useMultiFileAuthState:
//   - creds.json is checked before it is used. Baileys reads an unparsable creds.json as
//     "no creds" and silently starts a new login, which would throw away a linked
//     session without a word; here it is an AUTH_FAILURE and nothing is overwritten.
//   - creds.json is written atomically (temp file, fsync, rename, fsync of the dir), so
//     a crash in the middle of a write cannot leave it truncated.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { BufferJSON, makeCacheableSignalKeyStore, useMultiFileAuthState } from 'baileys';
import { SENT_LOG, syncDir } from './sentlog.js';

export const CREDS = 'creds.json';
const CREDS_MAX = 1024 * 1024;

export class AuthError extends Error {}

// 'absent' (a new login), 'ok', or throws AuthError saying what is wrong.
export async function checkCreds(dir) {
  const file = path.join(dir, CREDS);
  let st;
  try {
    st = await fsp.stat(file);
  } catch (e) {
    if (e.code === 'ENOENT') return 'absent';
    throw new AuthError(`cannot read ${CREDS}: ${e.code || e.message}`);
  }
  if (!st.isFile()) throw new AuthError(`${CREDS} is not a regular file`);
  if (st.size === 0) throw new AuthError(`${CREDS} is empty (a write cut short?)`);
  if (st.size > CREDS_MAX) throw new AuthError(`${CREDS} is larger than ${CREDS_MAX} bytes`);
  let creds;
  try {
    creds = JSON.parse(await fsp.readFile(file, 'utf8'), BufferJSON.reviver);
  } catch (e) {
    if (e.code) throw new AuthError(`cannot read ${CREDS}: ${e.code}`);
    throw new AuthError(`${CREDS} is not valid JSON (corrupted)`);
  }
  const keyPair = (k) => k && Buffer.isBuffer(k.public) && Buffer.isBuffer(k.private);
  if (!creds || typeof creds !== 'object' || Array.isArray(creds)) throw new AuthError(`${CREDS} is not a JSON object`);
  const missing = [];
  if (!keyPair(creds.noiseKey)) missing.push('noiseKey');
  if (!keyPair(creds.signedIdentityKey)) missing.push('signedIdentityKey');
  if (!creds.signedPreKey || !keyPair(creds.signedPreKey.keyPair)) missing.push('signedPreKey');
  if (!Number.isInteger(creds.registrationId)) missing.push('registrationId');
  if (typeof creds.advSecretKey !== 'string') missing.push('advSecretKey');
  if (missing.length) throw new AuthError(`${CREDS} lacks or has a bad ${missing.join(', ')}`);
  return 'ok';
}

export async function writeFileAtomic(file, text) {
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await fsp.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
  await syncDir(path.dirname(file));
}

// { state: {creds, keys}, saveCreds } for makeWASocket. Throws AuthError when the
// directory or creds.json cannot be used.
export async function loadAuth(dir, log) {
  await checkCreds(dir);
  let st;
  try {
    st = await useMultiFileAuthState(dir);
  } catch (e) {
    throw new AuthError(`cannot use AUTH_DIR: ${e.code || e.message}`);
  }
  const { state } = st;
  const file = path.join(dir, CREDS);
  // writes are serialised, and a burst of creds.update collapses into one write of the latest state
  let chain = Promise.resolve();
  let pending = false;
  const saveCreds = () => {
    if (pending) return chain;
    pending = true;
    chain = chain.then(async () => {
      pending = false;
      try {
        await writeFileAtomic(file, JSON.stringify(state.creds, BufferJSON.replacer));
      } catch (e) {
        log.error({ err: { message: e.message, code: e.code } }, 'cannot save creds.json');
      }
    });
    return chain;
  };
  return {
    creds: state.creds,
    keys: makeCacheableSignalKeyStore(state.keys, log),
    saveCreds,
    flush: () => chain,
  };
}

// Removes the Baileys auth files (every *.json and our temp files), keeping sent.log and
// anything else that is not ours. Used when WhatsApp logs the session out.
export async function wipeAuth(dir) {
  let names;
  try {
    names = await fsp.readdir(dir);
  } catch (e) {
    if (e.code === 'ENOENT') return 0;
    throw e;
  }
  let n = 0;
  for (const name of names) {
    if (name === SENT_LOG) continue;
    if (!name.endsWith('.json') && !name.endsWith('.tmp')) continue;
    const p = path.join(dir, name);
    const st = await fsp.lstat(p).catch(() => null);
    if (!st || !st.isFile()) continue;
    await fsp.unlink(p).catch((e) => {
      if (e.code !== 'ENOENT') throw e;
    });
    n++;
  }
  await syncDir(dir).catch(() => {});
  return n;
}

export function authDirUsable(dir) {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.statSync(dir);
  if (!st.isDirectory()) throw new Error('not a directory');
  fs.accessSync(dir, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
}
