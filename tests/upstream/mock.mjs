// Upstream session against the project's mock Instant server (tests/mock): first
// connect, users and revoked tokens, unknown apps, every fault control that breaks
// connections (drop, refuse, restart), hostile frames, app status, keepalive.
import { startMock, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { startHarness, check, guard, sleep, until } from './lib.mjs';

guard(150);
const mock = await startMock(['--ping-interval-ms', '300', '--idle-timeout-ms', '3000']);
try {
  const fast = ['--base', '50', '--cap', '300', '--auth-retry', '60000'];

  // guest session
  const h = startHarness(['--url', mock.url, '--app-id', DEFAULT_APP_ID, ...fast]);
  await h.waitState('authenticated');
  let st = await h.status();
  let sessions = (await mock.ctl('sessions')).sessions;
  check(sessions.some((s) => s['session-id'] === st['session-id'] && s.inited), 'mock sees our inited session');
  check(st['app-status'] === 'active' && st['user-id'] === null, 'guest, app active');

  // keepalive: the mock pings every 300 ms and closes sockets silent for 3 s; our pongs keep it open
  await sleep(4500);
  const st2 = await h.status();
  check(st2['session-id'] === st['session-id'] && st2.state === 'authenticated', 'server pings answered: no idle close');

  // a query round trip
  h.cmd('send {"op":"add-query","client-event-id":"q1","q":{"goals":{}}}');
  const aq = await h.waitFor((e) => e.ev === 'msg' && e.msg.op === 'add-query-ok' && e.msg['client-event-id'] === 'q1', 'add-query-ok');
  check(Array.isArray(aq.msg.result) && JSON.stringify(aq.msg.q) === '{"goals":{}}',
    'add-query answered through the session with a result for our query');

  // drop
  await mock.ctl('drop');
  let e = await h.waitState('backoff');
  await h.waitState('authenticated');
  {
    const s = await h.status();
    sessions = (await mock.ctl('sessions')).sessions;
    check(s['session-id'] !== st['session-id'] && sessions.some((x) => x['session-id'] === s['session-id'] && x.inited),
      `reconnected after drop with a new session the mock sees inited (${e.detail})`);
  }

  // refuse upgrades until cleared
  await mock.ctl('refuse', { ms: -1, drop: true });
  e = await h.waitState('backoff');
  e = await h.waitState('backoff');
  check(/HTTP 503/.test(e.detail), `refused upgrade reported with its HTTP status: ${e.detail}`);
  st = await h.status();
  check(st.attempts >= 2, `attempts grow while refused (${st.attempts})`);
  await mock.ctl('refuse', { ms: 0 });
  await h.waitState('authenticated');
  check((await h.status()).attempts === 0, 'reconnected after refusal ended');

  // restart with a refusal window
  await mock.ctl('restart', { 'refuse-ms': 500 });
  e = await h.waitState('backoff');
  await h.waitState('authenticated');
  {
    const s = await h.status();
    sessions = (await mock.ctl('sessions')).sessions;
    check(s.state === 'authenticated' && sessions.some((x) => x['session-id'] === s['session-id'] && x.inited),
      `reconnected after a server restart (${e.detail})`);
  }

  // hostile frames: arrays, unknown ops, malformed frames
  await mock.ctl('hostile', { mode: 'array-frames' });
  await mock.ctl('hostile', { mode: 'unknown-op' });
  await mock.ctl('hostile', { mode: 'malformed' });
  h.cmd('send {"op":"add-query","client-event-id":"q2","q":{"goals":{}}}');
  await h.waitFor((x) => x.ev === 'msg' && x.msg.op === 'add-query-ok' && x.msg['client-event-id'] === 'q2', 'add-query-ok under hostile frames');
  st = await h.status();
  check(st.state === 'authenticated' && st['unknown-ops'] >= 1 && st['malformed-frames'] >= 1,
    `hostile frames survived (unknown ${st['unknown-ops']}, malformed ${st['malformed-frames']})`);
  check(h.events.filter((x) => x.ev === 'log' && /mock-unknown-op/.test(x.msg)).length === 1, 'unknown op logged once');
  await mock.ctl('hostile', { mode: 'off' });

  // app status
  await mock.ctl('app-status', { status: 'read-only' });
  await h.waitFor((x) => x.ev === 'msg' && x.msg.op === 'app-status-changed', 'app-status-changed');
  st = await h.status();
  check(st['app-status'] === 'read-only', 'read-only visible in status');
  await mock.ctl('app-status', { status: 'active' });
  await h.quit();

  // a user's token, then revoked: auth-failed with the token redacted
  const { 'refresh-token': token, user } = await mock.ctl('add-user', { email: 'u@example.com' });
  const u = startHarness(['--url', mock.url, '--app-id', DEFAULT_APP_ID, '--token', token, ...fast]);
  await u.waitState('authenticated');
  st = await u.status();
  check(st['user-id'] === user.id && st.guest === false, 'signed-in session has the user');
  await mock.ctl('revoke-token', { 'refresh-token': token });
  await mock.ctl('drop');
  e = await u.waitState('auth-failed');
  check(/app-user/.test(e.detail), `revoked token: ${e.detail}`);
  await u.quit();
  check(!u.raw.includes(token), 'the token never appears in the harness output');

  // an app the server does not know
  const a = startHarness(['--url', mock.url, '--app-id', '22222222-2222-4222-8222-222222222222', ...fast]);
  e = await a.waitState('app-not-found');
  check(/app/.test(e.detail), `unknown app: ${e.detail}`);
  await a.quit();

  // a malformed app id (param-malformed about app-id) is also app-not-found
  const b = startHarness(['--url', mock.url, '--app-id', 'not-a-uuid', ...fast]);
  e = await b.waitState('app-not-found');
  check(/Malformed parameter/.test(e.detail), `malformed app id: ${e.detail}`);
  await b.quit();
} finally {
  await mock.stop();
}
console.log('mock: all passed');
process.exit(0);
