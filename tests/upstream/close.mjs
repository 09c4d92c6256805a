// Upstream session close: graceful Close 1000 when connected; the 2 s deadline when
// the server never answers the Close; immediate stop while backing off, resolving
// or connecting; nothing reconnects afterwards.
import { startServer, startHarness, check, guard, sleep, until } from './lib.mjs';
import net from 'node:net';

guard(90);

async function closed(h, what) {
  h.cmd('close');
  await h.waitFor((e) => e.ev === 'closed', `closed (${what})`);
  const end = Date.now() + 10000;
  while (!h.exited && Date.now() < end) await sleep(10);
  check(h.exited && h.exited.code === 0, `close ${what}: done called, clean exit`);
  check(h.events.some((e) => e.ev === 'state' && e.state === 'stopped'), `close ${what}: state stopped`);
}

// a server that stops reading: our Close is never answered, yet close completes
{
  const srv = await startServer();
  const h = startHarness(['--url', srv.url(), '--app-id', 'a']);
  await h.waitState('authenticated');
  for (const s of srv.sockets) s._socket.pause();
  await closed(h, 'with an unresponsive server');
  await srv.stop();
}

// while backing off (nothing listens)
{
  const srv = await startServer();
  await srv.stop();
  const h = startHarness(['--url', srv.url(), '--app-id', 'a', '--base', '60000']);
  await h.waitState('backoff');
  await closed(h, 'in backoff');
}

// while connecting: a TCP server that never completes the WebSocket upgrade
{
  const sockets = [];
  const tcp = net.createServer((s) => { sockets.push(s); s.on('error', () => {}); });
  await new Promise((r) => tcp.listen(0, '127.0.0.1', r));
  const h = startHarness(['--url', `ws://127.0.0.1:${tcp.address().port}/x`, '--app-id', 'a', '--connect-timeout', '60']);
  await h.waitState('connecting');
  await until(() => sockets.length === 1, 'tcp connection');
  await closed(h, 'while connecting');
  for (const s of sockets) s.destroy();
  tcp.close();
}

// connect timeout: the same silent server ends the attempt after connect_timeout_s
{
  const sockets = [];
  const tcp = net.createServer((s) => { sockets.push(s); s.on('error', () => {}); });
  await new Promise((r) => tcp.listen(0, '127.0.0.1', r));
  const h = startHarness(['--url', `ws://127.0.0.1:${tcp.address().port}/x`, '--app-id', 'a', '--connect-timeout', '1',
    '--base', '60000']);
  const e = await h.waitState('backoff');
  check(/timed out after 1 s/.test(e.detail), `stalled handshake times out: ${e.detail}`);
  await h.quit();
  for (const s of sockets) s.destroy();
  tcp.close();
}

// while resolving (hung resolver)
{
  const h = startHarness(['--url', 'ws://hangs.example:1/x', '--app-id', 'a', '--hang-dns']);
  await h.waitState('resolving');
  await closed(h, 'while resolving');
}

console.log('close: all passed');
process.exit(0);
