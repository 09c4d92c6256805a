// Upstream session: init rejected for an unknown app or a bad token gives
// app-not-found / auth-failed with the server's message (token redacted), slow
// retries, and recovery once the token is replaced; a 5xx init error backs off.
import { startServer, startHarness, check, guard, until } from './lib.mjs';

guard(120);
const TOKEN = '5f0d8c4e-0000-4000-8000-00000000dead';
const GOOD = '5f0d8c4e-0000-4000-8000-00000000beef';
const srv = await startServer();
srv.initReply = (m) => {
  const base = { op: 'error', status: 400, 'client-event-id': m['client-event-id'], 'trace-id': null };
  if (m['app-id'] === 'no-such-app')
    return { ...base, type: 'record-not-found', message: 'Record not found: app',
      hint: { 'record-type': 'app', args: [{ 'app-id': 'no-such-app' }] }, 'original-event': { op: 'init' } };
  if (m['app-id'] === 'server-bug')
    return { ...base, status: 500, type: null, message: 'Yikes, something broke on our end! Sorry about that.', hint: null,
      'original-event': { op: 'init', 'client-event-id': m['client-event-id'] } };
  if (m['refresh-token'] && m['refresh-token'] !== GOOD)
    // the server echoes the token in the hint, and we put it in the message too for the test
    return { ...base, type: 'record-not-found', message: `Record not found: app-user (${m['refresh-token']})`,
      hint: { 'record-type': 'app-user', args: [{ 'app-id': m['app-id'], 'refresh-token': m['refresh-token'] }] },
      'original-event': { op: 'init', 'refresh-token': m['refresh-token'] } };
  return { op: 'init-ok', 'client-event-id': m['client-event-id'], 'session-id': 's-' + srv.inits.length, attrs: [],
    auth: { user: m['refresh-token'] ? { id: 'user-ok' } : null }, 'app-status': { status: 'active' } };
};

// unknown app
{
  const h = startHarness(['--url', srv.url(), '--app-id', 'no-such-app', '--auth-retry', '300', '--base', '5000']);
  const e = await h.waitState('app-not-found');
  check(/Record not found: app/.test(e.detail), `app-not-found with the server's message: ${e.detail}`);
  const m = await h.waitFor((x) => x.ev === 'msg' && x.msg.op === 'error', 'init error delivered');
  check(m.msg.hint['record-type'] === 'app', 'init error passed to on_message');
  const n = srv.inits.length;
  await until(() => srv.inits.length >= n + 2, 'slow retries after app-not-found');
  const st = await h.status();
  check(st.state === 'app-not-found' || st.state === 'resolving' || st.state === 'connecting' || st.state === 'opened',
    `state stays app-not-found between retries (${st.state})`);
  check(/Record not found: app/.test(st['last-error']), 'last-error in status');
  await h.quit();
}

// bad token: auth-failed, token redacted everywhere, then a good token recovers
{
  const h = startHarness(['--url', srv.url(), '--app-id', 'app', '--token', TOKEN, '--auth-retry', '60000']);
  const e = await h.waitState('auth-failed');
  check(/app-user/.test(e.detail) && !e.detail.includes(TOKEN), `auth-failed, message redacted: ${e.detail}`);
  const m = await h.waitFor((x) => x.ev === 'msg' && x.msg.op === 'error', 'init error delivered');
  check(!JSON.stringify(m.msg).includes(TOKEN), 'token redacted from the delivered error (hint, original-event)');
  check(m.msg.hint.args[0]['refresh-token'] === '[redacted]', 'hint refresh-token replaced');
  let st = await h.status();
  check(st.state === 'auth-failed' && typeof st['retry-at'] === 'number', 'auth-failed waits for a slow retry');
  check(st['retry-at'] - Date.now() > 30000, 'auth retry uses auth_retry_ms, not the fast backoff');
  h.cmd(`token ${GOOD}`);
  await h.waitFor((x) => x.ev === 'token' && x.rc === 0, 'token set');
  h.cmd('reconnect');
  await h.waitState('authenticated');
  st = await h.status();
  check(st['user-id'] === 'user-ok' && st['last-error'] === null, 'new token takes effect on reconnect');
  check(srv.inits.at(-1)['refresh-token'] === GOOD, 'next init carries the new token');
  // back to guest
  h.cmd('token -');
  await h.waitFor((x) => x.ev === 'token' && x.rc === 0, 'token cleared');
  h.cmd('reconnect');
  await h.waitState('authenticated');
  check(!('refresh-token' in srv.inits.at(-1)), 'guest after clearing the token');
  await h.quit();
  check(!h.raw.includes(TOKEN) && !h.raw.includes(GOOD), 'no token in any harness output (states, logs, status, messages)');
}

// 5xx on init: ordinary backoff
{
  const h = startHarness(['--url', srv.url(), '--app-id', 'server-bug', '--base', '50', '--cap', '100']);
  const e = await h.waitState('backoff');
  check(/Yikes/.test(e.detail), `5xx init error backs off: ${e.detail}`);
  const n = srv.inits.length;
  await until(() => srv.inits.length >= n + 2, 'fast retries after a server error');
  await h.quit();
}

await srv.stop();
console.log('init-errors: all passed');
process.exit(0);
