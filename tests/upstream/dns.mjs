// Upstream session DNS: names resolve in a worker thread (several addresses tried
// in turn), and a resolver that never answers does not stall the loop: timers and
// other fds keep running, and the lookup times out into backoff.
import { startServer, startHarness, check, guard, sleep } from './lib.mjs';

guard(120);
const srv = await startServer();

// a real name through getaddrinfo in the worker: localhost may give ::1 first, where
// nothing listens; the next address (127.0.0.1) is tried before any backoff
{
  const h = startHarness(['--url', `ws://localhost:${srv.port}/runtime/session`, '--app-id', 'a', '--base', '60000']);
  await h.waitState('resolving');
  await h.waitState('authenticated');
  check(!h.events.some((e) => e.ev === 'state' && e.state === 'backoff'), 'localhost resolved and connected without backoff');
  await h.quit();
}

// an unresolvable name: backoff with the resolver's error
{
  const h = startHarness(['--url', 'ws://name-that-does-not-exist.invalid:1/x', '--app-id', 'a', '--base', '60000',
    '--resolve-timeout', '5']);
  const e = await h.waitState('backoff');
  check(/DNS lookup of name-that-does-not-exist.invalid (failed|timed out)/.test(e.detail), `DNS failure reported: ${e.detail}`);
  await h.quit();
}

// a resolver that hangs forever (test hook in place of getaddrinfo)
{
  const h = startHarness(['--url', `ws://hangs.example:${srv.port}/runtime/session`, '--app-id', 'a', '--hang-dns',
    '--resolve-timeout', '3', '--base', '60000']);
  await h.waitState('resolving');
  const s1 = await h.status();
  await sleep(500);
  const s2 = await h.status();
  check(s1.state === 'resolving' && s2.state === 'resolving', 'lookup still pending');
  check(s2.ticks > s1.ticks, `timers keep running while the lookup hangs (${s1.ticks} -> ${s2.ticks})`);
  check(s2.state === 'resolving' && typeof s2.ticks === 'number', 'status is answered while the lookup hangs');
  const e = await h.waitState('backoff');
  check(/timed out after 3 s/.test(e.detail), `hung lookup times out into backoff: ${e.detail}`);
  h.cmd('reconnect');
  await h.waitState('resolving');
  const s3 = await h.status();
  check(s3.state === 'resolving', 'a new lookup starts while the old thread is still stuck');
  const ex = await h.quit();
  check(ex.code === 0 && !ex.signal, `exits 0 with resolver threads still blocked (${JSON.stringify(ex)})`);
}

await srv.stop();
console.log('dns: all passed');
process.exit(0);
