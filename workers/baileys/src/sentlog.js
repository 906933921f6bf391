// AUTH_DIR/sent.log: the messageIds this worker has handed to WhatsApp, one per line,
// append-only and fsync'd - the same file and format as the simulator's, so that a
// session can move between the two. A repeated /send of an id in it is acknowledged
// and never sent again.
//
// When an id is written (after WhatsApp took the message, see wa.js and the README
// "Sending and de-duplication"): a crash between the hand-off and the fsync loses the
// record, and a retry after that crash sends the message again - with the same
// WhatsApp message id, which the recipient's client treats as the same message.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

export const ID_MAX_BYTES = 128;
export const SENT_LOG = 'sent.log';

// A messageId the log can hold: 1..128 bytes of UTF-8, no control characters.
export function idValid(id) {
  if (typeof id !== 'string' || id.length === 0) return false;
  if (Buffer.byteLength(id) > ID_MAX_BYTES) return false;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
  }
  // lone surrogates would not survive the round trip through UTF-8
  return id.isWellFormed();
}

export async function syncDir(dir) {
  const fh = await fsp.open(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class SentLog {
  constructor(file, ids, fh, log) {
    this.file = file;
    this.ids = ids;
    this.fh = fh;
    this.log = log;
    this.chain = Promise.resolve();
  }

  // Reads the log (creating it, and AUTH_DIR, when missing). A last line without its
  // newline is a write that crashed before its fsync returned: it was never recorded
  // as done, so it is cut off (or the next append would glue two ids together).
  static async open(dir, log) {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, SENT_LOG);
    const ids = new Set();
    let text = null;
    try {
      text = await fsp.readFile(file);
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
    }
    if (text) {
      const end = text.lastIndexOf(0x0a) + 1; // bytes up to the last complete line
      let skipped = 0;
      for (const line of text.subarray(0, end).toString('utf8').split('\n')) {
        if (line === '') continue;
        if (idValid(line)) ids.add(line);
        else skipped++;
      }
      if (skipped) log.warn({ skipped }, 'sent.log has unusable lines, skipped');
      if (end !== text.length) {
        log.warn({ bytes: text.length - end }, 'sent.log ends with a torn line, cutting it');
        const fh = await fsp.open(file, 'r+');
        try {
          await fh.truncate(end);
          await fh.sync();
        } finally {
          await fh.close();
        }
      }
    }
    const fh = await fsp.open(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o600);
    await fh.chmod(0o600).catch(() => {});
    // a freshly created sent.log must survive a crash as a directory entry too
    await syncDir(dir);
    return new SentLog(file, ids, fh, log);
  }

  get size() {
    return this.ids.size;
  }

  has(id) {
    return this.ids.has(id);
  }

  // Records id durably. It counts in memory at once, so that even when the disk write
  // fails this process never sends it again; the promise rejects on that failure.
  add(id) {
    if (!idValid(id)) return Promise.reject(new Error('not a valid messageId'));
    if (this.ids.has(id)) return this.chain;
    this.ids.add(id);
    const line = Buffer.from(`${id}\n`, 'utf8');
    // appends are serialised: one write() per line, each followed by its fsync
    const p = this.chain.then(async () => {
      if (!this.fh) throw new Error('sent.log is closed');
      let off = 0;
      while (off < line.length) {
        const { bytesWritten } = await this.fh.write(line, off, line.length - off);
        off += bytesWritten;
      }
      await this.fh.sync();
    });
    this.chain = p.catch(() => {});
    return p;
  }

  async close() {
    await this.chain;
    const fh = this.fh;
    this.fh = null;
    if (fh) await fh.close();
  }
}
