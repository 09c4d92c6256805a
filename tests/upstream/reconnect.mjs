// Upstream session faults: dropped sockets, server close codes, refused connections,
// reconnect-now, an unanswered transact, a server that stops answering pings, an
// oversized frame. After each the session comes back to authenticated by itself.
import { startServer, startHarness, check, guard, until, sleep } from './lib.mjs';

guard(180);
const APP = 'app-reconnect';
const srv = await startServer();
const h = startHarness(['--url', srv.url(), '--app-id', APP, '--base', '50', '--cap', '400',
  '--max-frame', '1000000']);
await h.waitState('authenticated');
const sid1 = (await h.status())['session-id'];

// 1. TCP drop without a close frame
srv.dropAll();
let e = await h.waitState('backoff');
check(/lost|closed/.test(e.detail || ''), `drop reported: ${e.detail}`);
await h.waitState('authenticated');
const st = await h.status();
check(st['session-id'] && st['session-id'] !== sid1, 'reconnected after drop with a new session-id');
check(st.attempts === 0, 'attempts reset after init-ok');

// 2. server closes with a code and a reason
srv.closeAll(4001, 'go away');
e = await h.waitState('backoff');
check(/4001 go away/.test(e.detail || ''), `close code and reason in detail: ${e.detail}`);
await h.waitState('authenticated');
{
  const s = await h.status();
  check(s.state === 'authenticated' && s['session-id'] !== st['session-id'] && s.attempts === 0,
    'reconnected after server close with a new session');
}

// 3. refuse connections for a while: repeated backoff with growing attempts, within bounds
await srv.refuse();
const backoffs = [];
for (let i = 0; i < 4; i++) {
  e = await h.waitState('backoff');
  backoffs.push(e);
  const s = await h.status();
  check(s['retry-at'] === null || (s['retry-at'] - Date.now() <= 400 + 50), `retry-at within the cap (${i})`);
}
check(backoffs.slice(1).every((b) => /refused|failed|Unable|connect/i.test(b.detail || '')), `refused reported: ${backoffs.at(-1).detail}`);
let s = await h.status();
check(s.attempts >= 3, `attempts counted while refused (${s.attempts})`);
check(s.state === 'backoff' || s.state === 'resolving' || s.state === 'connecting', 'not connected while refused');
await srv.accept();
await h.waitState('authenticated');
s = await h.status();
check(s.attempts === 0, 'reconnected once the server accepts again; attempts reset');

// 4. reconnect now while connected: a fresh session
const n = srv.connections;
h.cmd('reconnect');
await h.waitState('authenticated');
check(srv.connections === n + 1, 'reconnect_now opened a new connection');
await until(() => srv.closes.length > 0 && srv.closes.at(-1).code === 1001, 'old connection closed with 1001');
check(srv.sockets.size === 1, `only the new connection stays open (${srv.sockets.size})`);

// 5. sending while not connected is refused (the daemon keeps its outbox)
await srv.refuse();
await h.waitState('backoff');
h.cmd('send {"op":"transact","client-event-id":"x","tx-steps":[]}');
e = await h.waitFor((x) => x.ev === 'send', 'send reply');
check(e.rc === -107, `send while disconnected gives -ENOTCONN (${e.rc})`);
await srv.accept();
await h.waitState('authenticated');

// 6. a transact nobody answers: reconnect after the watch timeout
srv.silentTransact = true;
h.cmd('watch 1');
await h.waitFor((x) => x.ev === 'watch', 'watch');
h.cmd('send {"op":"transact","client-event-id":"tx-lost","tx-steps":[]}');
await h.waitFor((x) => x.ev === 'send' && x.rc === 0, 'send transact');
e = await h.waitState('backoff');
check(/tx-lost unanswered/.test(e.detail || ''), `unanswered transact triggers reconnect: ${e.detail}`);
await h.waitState('authenticated');
srv.silentTransact = false;
// answered transacts do not trigger it
h.cmd('send {"op":"transact","client-event-id":"tx-ok","tx-steps":[]}');
await h.waitFor((x) => x.ev === 'msg' && x.msg.op === 'transact-ok', 'transact-ok');
await sleep(1500);
s = await h.status();
check(s.state === 'authenticated', 'an answered transact keeps the session');
h.cmd('watch 0');

// 7. oversized frame: closed with 1009 and reconnected
const closes = srv.closes.length;
srv.broadcast({ op: 'refresh-ok', pad: 'z'.repeat(1200000) });
e = await h.waitState('backoff');
check(/larger than 1000000/.test(e.detail || ''), `oversized frame reported: ${e.detail}`);
await until(() => srv.closes.length > closes, 'server saw the close');
check(srv.closes.at(-1).code === 1009, `closed with 1009 (${srv.closes.at(-1).code})`);
await h.waitState('authenticated');

await h.quit();
await srv.stop();

// 8. a server that stops answering our pings and sends nothing: hung up after idle_timeout
{
  const quiet = await startServer({ autoPong: false });
  const q = startHarness(['--url', quiet.url(), '--app-id', APP, '--ping', '1', '--idle', '3',
    '--base', '50', '--cap', '200']);
  await q.waitState('authenticated');
  const t0 = Date.now();
  e = await q.waitState('backoff', 30);
  check(/silent for 3 s/.test(e.detail || ''), `idle link hung up: ${e.detail}`);
  check(Date.now() - t0 >= 1000, 'not hung up before a ping could be answered');
  await q.waitState('authenticated');
  check(quiet.connections >= 2, 'reconnected after the idle hangup');
  await q.quit();
  await quiet.stop();
}

// 9. a server that answers pings stays connected past the idle timeout
{
  const live = await startServer();
  const l = startHarness(['--url', live.url(), '--app-id', APP, '--ping', '1', '--idle', '3']);
  await l.waitState('authenticated');
  await sleep(6000);
  const ls = await l.status();
  check(ls.state === 'authenticated' && live.connections === 1, 'pings answered: the session stays up');
  await l.quit();
  await live.stop();
}

console.log('reconnect: all passed');
process.exit(0);
