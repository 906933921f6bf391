// Operator alerts through a fake Telegram Bot API and a generic alert webhook: the right
// alerts, repeats folded, 429 honoured, and the bot token never in the daemon's log.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startFakeTelegram } from '../fakes/telegram.mjs';
import { startReceiver } from '../fakes/receiver.mjs';
import { Daemon, waitFor } from './lib.mjs';

const TOKEN = '123456789:AAH-test_token-secret_value_0123';

test('connected, disconnected and folded repeats reach Telegram and the alert webhook; 429 is honoured; the token stays secret', async () => {
  const tg = await startFakeTelegram({ token: TOKEN });
  const rx = await startReceiver();
  const d = await new Daemon({ env: { TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_CHAT_ID: '-100777', TELEGRAM_API_BASE: tg.url,
    ALERT_WEBHOOK_URL: rx.url('/alerts'), ALERT_FOLD_MS: '5000' } }).start();
  try {
    // the first send is refused with 429 retry_after 1: the same alert follows after it
    tg.plan.push({ retryAfter: 1 });
    const id = await d.provision({});
    await d.waitStatus(id, 'qr_ready');
    await d.sim(id, '/sim/scan', { phoneNumber: '+972501239999' });
    await d.waitStatus(id, 'connected');
    const ok = await tg.waitFor((t) => t.messages.find((m) => m.text.startsWith('✅')), 10000, 'the connected alert');
    assert.equal(ok.chat_id, '-100777');
    assert.equal(ok.text, `✅ ${id} connected as +972501239999`);
    const r429 = tg.requests.find((q) => q.status === 429);
    assert.ok(r429, 'a 429 was answered');
    assert.ok(ok.at - r429.at >= 950, `resent ${ok.at - r429.at} ms after the 429`);
    assert.equal(tg.requests.filter((q) => q.status === 200 && q.body.includes('connected as')).length, 1, 'sent once');
    // the generic webhook gets the same alert as JSON
    const hook = await rx.waitFor((r) => r.on('/alerts').find((q) => JSON.parse(q.body).kind === 'connected'), 5000, 'webhook alert');
    const a = JSON.parse(hook.body);
    assert.equal(a.subject, id);
    assert.match(a.text, /connected as \+972501239999/);

    // three disconnects within the fold window: one alert now, "2 more" when it ends
    for (let i = 0; i < 3; i++) {
      await d.sim(id, '/sim/disconnect', {});
      await d.waitStatus(id, 'disconnected').catch(() => {});
      await d.waitStatus(id, 'connected', 15000);
    }
    await tg.waitFor((t) => t.messages.filter((m) => m.text.startsWith('⚠️')).length >= 2, 10000, 'folded');
    const warns = tg.messages.filter((m) => m.text.startsWith('⚠️'));
    assert.match(warns[0].text, new RegExp(`^⚠️ ${id} disconnected`));
    assert.match(warns[1].text, /\(2 more in the last 5 s\)$/);
    assert.equal(warns.length, 2, 'repeats folded into one line');
    // alerts are events too
    const ev = await d.get('/api/events?type=alert');
    assert.ok(ev.json.events.some((e) => e.data.kind === 'connected' && e.sessionId === id));
    const m = await d.get('/metrics');
    assert.doesNotMatch(m.text, /AAH-test_token/);
    assert.ok(d.log().includes('alert: ready telegram=on'), 'alerts were on');
    assert.doesNotMatch(d.log(), /AAH-test_token|123456789:/, 'the bot token is never logged');
  } finally {
    await d.cleanup();
    await tg.close();
    await rx.close();
  }
});
