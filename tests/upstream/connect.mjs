// Upstream session: first connect over ws://, init fields, init-ok, array frames,
// unknown ops, malformed frames, app-status-changed, send, graceful close.
import fs from 'node:fs';
import path from 'node:path';
import { startServer, startHarness, check, guard, until, tmpdir } from './lib.mjs';

guard(120);
const APP = '8f3a2b1c-4d5e-4f60-9a7b-1c2d3e4f5a6b';
const TOKEN = '5f0d8c4e-0000-4000-8000-000000000001';
const srv = await startServer();

// --- guest: no refresh-token key, path and app_id query as configured
{
  const h = startHarness(['--url', srv.url('/runtime/session'), '--app-id', APP]);
  await h.waitState('authenticated');
  const init = srv.inits.at(-1);
  check(srv.paths.at(-1) === `/runtime/session?app_id=${APP}`, `path and query: ${srv.paths.at(-1)}`);
  check(init.op === 'init' && init['app-id'] === APP, 'init carries app-id');
  check(!('refresh-token' in init), 'guest init has no refresh-token key');
  check(init.versions && init.versions['@instantdb/core'] === 'v1.0.67', 'init versions @instantdb/core v1.0.67');
  check(typeof init['client-event-id'] === 'string' && init['client-event-id'].length === 36, 'init has a uuid client-event-id');
  const ok = await h.waitFor((e) => e.ev === 'msg' && e.msg.op === 'init-ok', 'init-ok delivered');
  check(ok.msg['session-id'], 'init-ok passed to on_message after authenticated');
  const st = await h.status();
  check(st.state === 'authenticated' && st['session-id'] === ok.msg['session-id'], 'status has state and session-id');
  check(st.server === srv.url('/runtime/session') && st['app-status'] === 'active', 'status has server and app-status');
  check(typeof st['connected-at'] === 'number' && st.attempts === 0 && st.guest === true, 'status timestamps and attempts');
  await h.quit();
}

// --- with a token, a URL that already has a query, and a frame-level tour
{
  const h = startHarness(['--url', srv.url('/runtime/session?x=1'), '--app-id', APP, '--token', TOKEN]);
  await h.waitState('authenticated');
  check(srv.paths.at(-1) === `/runtime/session?x=1&app_id=${APP}`, `query appended with &: ${srv.paths.at(-1)}`);
  check(srv.inits.at(-1)['refresh-token'] === TOKEN, 'init carries the refresh token');

  // one frame holding an array of messages: each delivered separately, in order
  srv.broadcast([{ op: 'server-broadcast', 'room-id': 'r', topic: 't', data: { n: 1 } },
    { op: 'server-broadcast', 'room-id': 'r', topic: 't', data: { n: 2 } }]);
  const b1 = await h.waitFor((e) => e.ev === 'msg' && e.msg.op === 'server-broadcast', 'first array element');
  const b2 = await h.waitFor((e) => e.ev === 'msg' && e.msg.op === 'server-broadcast', 'second array element');
  check(b1.msg.data.n === 1 && b2.msg.data.n === 2, 'array frame delivered as two messages in order');

  // malformed frames and junk never crash and are counted
  srv.broadcast('this is not json');
  srv.broadcast('{"op":');
  srv.broadcast('[1, "x", {"no-op": true}]');
  srv.broadcast('42');
  // unknown ops: logged once per name, still delivered
  srv.broadcast({ op: 'brand-new-op', a: 1 });
  srv.broadcast({ op: 'brand-new-op', a: 2 });
  // a duplicate init-ok is not passed on (the daemon would resubscribe twice)
  srv.broadcast({ op: 'init-ok', 'session-id': 'dup', attrs: [], 'app-status': { status: 'active' } });
  srv.broadcast({ op: 'refresh-ok', 'processed-tx-id': 5, computations: [] });
  await h.waitFor((e) => e.ev === 'msg' && e.msg.op === 'refresh-ok', 'refresh-ok after junk');
  const logs = h.events.filter((e) => e.ev === 'log' && e.msg.includes('brand-new-op'));
  check(logs.length === 1, 'unknown op logged once');
  check(h.events.filter((e) => e.ev === 'msg' && e.msg.op === 'brand-new-op').length === 2, 'unknown op still delivered');
  let st = await h.status();
  check(st['unknown-ops'] === 2, `unknown ops counted (${st['unknown-ops']})`);
  check(st['malformed-frames'] === 6, `malformed frames counted (${st['malformed-frames']})`);
  check(st.state === 'authenticated' && st['user-id'] === 'user-1', 'still authenticated; user id from init-ok');
  check(!h.events.some((e) => e.ev === 'msg' && e.msg['session-id'] === 'dup') && st['session-id'] !== 'dup',
    'duplicate init-ok dropped');

  // a large frame (3 MiB) assembled from many receive chunks
  const big = 'x'.repeat(3 << 20);
  srv.broadcast({ op: 'refresh-ok', big });
  const bigEv = await h.waitFor((e) => e.ev === 'msg' && e.msg.big, 'big frame');
  check(bigEv.msg.big.length === big.length, 'large frame reassembled');

  // sending
  h.cmd('send {"op":"add-query","client-event-id":"q1","q":{"goals":{}}}');
  const sr = await h.waitFor((e) => e.ev === 'send', 'send reply');
  check(sr.rc === 0, 'upstream_send returns 0 when authenticated');
  const bigOut = 'y'.repeat(200000);
  h.cmd(`send {"op":"transact","client-event-id":"t1","tx-steps":[["add-triple","e","a","${bigOut}"]]}`);
  await h.waitFor((e) => e.ev === 'send' && e.rc === 0, 'send transact');
  await until(() => srv.received.some((m) => m.op === 'transact' && m['client-event-id'] === 't1'), 'server got transact');
  check(srv.received.find((m) => m['client-event-id'] === 't1')['tx-steps'][0][3].length === 200000, 'large message sent in fragments arrives whole');
  check(srv.received.some((m) => m.op === 'add-query' && m['client-event-id'] === 'q1'), 'server got add-query');
  await h.waitFor((e) => e.ev === 'msg' && e.msg.op === 'transact-ok', 'transact-ok');

  // backpressure: while paused nothing is delivered; after resume everything is, in order
  h.cmd('pause');
  await h.waitFor((e) => e.ev === 'pause', 'paused');
  for (let i = 0; i < 5; i++) srv.broadcast({ op: 'server-broadcast', 'room-id': 'p', topic: 't', data: { i } });
  await new Promise((r) => setTimeout(r, 300));
  check(!h.events.some((e) => e.ev === 'msg' && e.msg['room-id'] === 'p'), 'nothing delivered while paused');
  h.cmd('resume');
  await until(() => h.events.filter((e) => e.ev === 'msg' && e.msg['room-id'] === 'p').length === 5, 'delivered after resume');
  check(h.events.filter((e) => e.ev === 'msg' && e.msg['room-id'] === 'p').map((e) => e.msg.data.i).join() === '0,1,2,3,4',
    'paused frames delivered in order after resume');

  // app status: read-only is tracked, no reconnect
  srv.broadcast({ op: 'app-status-changed', status: 'read-only' });
  await h.waitFor((e) => e.ev === 'msg' && e.msg.op === 'app-status-changed', 'app-status-changed');
  st = await h.status();
  check(st['app-status'] === 'read-only' && st.state === 'authenticated', 'read-only tracked in status');
  srv.broadcast({ op: 'app-status-changed', status: 'disabled' });
  await h.waitFor((e) => e.ev === 'msg' && e.msg.status === 'disabled', 'disabled');
  st = await h.status();
  check(st['app-status'] === 'disabled', 'disabled tracked in status');
  const before = srv.connections;
  srv.broadcast({ op: 'app-status-changed', status: 'active' });
  await until(() => srv.connections > before, 'reconnect after leaving disabled');
  await h.waitState('authenticated');
  const st3 = await h.status();
  check(st3['app-status'] === 'active' && st3['session-id'] !== st['session-id'],
    `leaving disabled restarts the session (app-status ${st3['app-status']})`);

  // graceful close: the server sees 1000
  const closesBefore = srv.closes.length;
  h.cmd('close');
  await h.waitFor((e) => e.ev === 'closed', 'closed callback');
  await until(() => srv.closes.length > closesBefore, 'server saw close');
  check(srv.closes.at(-1).code === 1000, `graceful close code ${srv.closes.at(-1).code}`);
  check(h.events.some((e) => e.ev === 'state' && e.state === 'stopped'), 'state stopped after close');
  const end = Date.now() + 10000;
  while (!h.exited && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  check(h.exited && h.exited.code === 0, 'harness exits cleanly after close');
  check(!h.raw.includes(TOKEN), 'token never printed by the harness (logs, states, status)');
}

await srv.stop();

// a Unix-socket address (ws://+/path.sock:/path), as lws_parse_uri allows
{
  const dir = tmpdir();
  const sock = path.join(dir, 'ws.sock');
  const us = await startServer({ unixPath: sock });
  const h = startHarness(['--url', `ws://+${sock}:/runtime/session`, '--app-id', APP]);
  await h.waitState('authenticated');
  check(us.paths.at(-1) === `/runtime/session?app_id=${APP}`, `unix socket server saw ${us.paths.at(-1)}`);
  await h.quit();
  await us.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log('connect: all passed');
process.exit(0);
