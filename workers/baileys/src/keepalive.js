// The keep-alive engine of seed 003, active only while the session is connected:
//   - a presence update ("available") every KEEPALIVE_PRESENCE_MS (15 s);
//   - a message to the account's own chat every KEEPALIVE_SELF_MESSAGE_MS (10 min),
//     "🔄" with a 24 h disappearing timer, so it cleans itself up.
// Either is off with 0. Each period gets +-10 % jitter so that many workers started
// together do not beat in step. A tick never overlaps the previous one, and a failure
// is logged and retried at the next tick.

export const SELF_MESSAGE_TEXT = '🔄';
export const SELF_MESSAGE_EPHEMERAL_S = 24 * 3600;

export function jittered(ms, frac = 0.1, rnd = Math.random) {
  return Math.max(1, Math.round(ms * (1 - frac + 2 * frac * rnd())));
}

export class KeepAlive {
  constructor({ presenceMs, selfMessageMs, log, sendPresence, sendSelf, jitter = 0.1 }) {
    this.presenceMs = presenceMs;
    this.selfMessageMs = selfMessageMs;
    this.log = log;
    this.sendPresence = sendPresence;
    this.sendSelf = sendSelf;
    this.jitter = jitter;
    this.timers = new Map();
    this.busy = new Set();
    this.running = false;
    this.counts = { presence: 0, selfMessage: 0, failures: 0 };
  }

  start() {
    if (this.running) return;
    this.running = true;
    if (this.presenceMs > 0) this.arm('presence', this.presenceMs, this.sendPresence);
    if (this.selfMessageMs > 0) this.arm('selfMessage', this.selfMessageMs, this.sendSelf);
  }

  stop() {
    this.running = false;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  arm(name, ms, fn) {
    const t = setTimeout(async () => {
      this.timers.delete(name);
      if (!this.running) return;
      if (!this.busy.has(name)) {
        this.busy.add(name);
        try {
          await fn();
          this.counts[name]++;
          this.log.debug({ what: name }, 'keep-alive sent');
        } catch (e) {
          this.counts.failures++;
          this.log.warn({ what: name, err: { message: String(e?.message ?? e).slice(0, 300) } }, 'keep-alive failed');
        } finally {
          this.busy.delete(name);
        }
      }
      if (this.running) this.arm(name, ms, fn);
    }, jittered(ms, this.jitter));
    this.timers.set(name, t);
  }
}
