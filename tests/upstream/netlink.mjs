// Upstream session wakes up on network changes: in a private network namespace the
// server's address does not exist yet, so the session backs off for a long time;
// adding the address (RTM_NEWADDR/RTM_NEWROUTE on the netlink socket) makes it
// connect at once instead of waiting out the backoff.
import { spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startServer, startHarness, check, guard } from './lib.mjs';

const ip = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => fs.existsSync(p));

if (!process.env.UPSTREAM_IN_NETNS) {
  if (!ip) {
    console.log('SKIP: no ip(8)');
    process.exit(77);
  }
  // a fresh network namespace: as root directly, otherwise inside a user namespace
  for (const pre of [['unshare', '-n'], ['unshare', '-rn']]) {
    if (spawnSync(pre[0], [...pre.slice(1), 'true']).status !== 0) continue;
    const r = spawnSync(pre[0], [...pre.slice(1), process.execPath, fileURLToPath(import.meta.url)],
      { stdio: 'inherit', env: { ...process.env, UPSTREAM_IN_NETNS: '1' } });
    process.exit(r.status ?? 1);
  }
  console.log('SKIP: cannot create a network namespace (unshare -n / -rn)');
  process.exit(77);
}

guard(60);
execFileSync(ip, ['link', 'set', 'lo', 'up']);
const srv = await startServer({ host: '0.0.0.0' });
const h = startHarness(['--url', `ws://10.99.0.1:${srv.port}/runtime/session`, '--app-id', 'a',
  '--base', '600000', '--cap', '600000']);
const e = await h.waitState('backoff');
check(/unreachable|Unable|failed|connect/i.test(e.detail), `no route to the server yet: ${e.detail}`);
const st = await h.status();
check(st.state === 'backoff' && srv.connections === 0, 'backing off, nothing connected');

execFileSync(ip, ['addr', 'add', '10.99.0.1/32', 'dev', 'lo']);
await h.waitState('authenticated', 30);
check(h.events.some((x) => x.ev === 'log' && /network came up; connecting now/.test(x.msg)),
  'the netlink event (not the 10-minute backoff timer) triggered the connect');
check(srv.connections === 1, 'connected once the address appeared');
await h.quit();
await srv.stop();
console.log('netlink: all passed');
process.exit(0);
