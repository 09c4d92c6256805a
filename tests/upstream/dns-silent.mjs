// Upstream session with the real getaddrinfo and a DNS server that never answers:
// in private mount and network namespaces /etc/resolv.conf is replaced by one that
// names a local UDP socket which swallows every query. While the lookup hangs in
// the worker thread, the loop keeps running timers and serving other fds, and the
// session gives up after resolve_timeout_s.
import { spawnSync, execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHarness, check, guard, sleep, tmpdir } from './lib.mjs';

const ip = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => fs.existsSync(p));

if (!process.env.UPSTREAM_IN_NETNS) {
  if (!ip) {
    console.log('SKIP: no ip(8)');
    process.exit(77);
  }
  for (const pre of [['unshare', '-mn'], ['unshare', '-rmn']]) {
    if (spawnSync(pre[0], [...pre.slice(1), 'true']).status !== 0) continue;
    const r = spawnSync(pre[0], [...pre.slice(1), process.execPath, fileURLToPath(import.meta.url)],
      { stdio: 'inherit', env: { ...process.env, UPSTREAM_IN_NETNS: '1' } });
    process.exit(r.status ?? 1);
  }
  console.log('SKIP: cannot create mount and network namespaces (unshare -mn / -rmn)');
  process.exit(77);
}

guard(60);
execFileSync(ip, ['link', 'set', 'lo', 'up']);
const dir = tmpdir();
const resolv = path.join(dir, 'resolv.conf');
fs.writeFileSync(resolv, 'nameserver 127.0.0.1\noptions timeout:30 attempts:1\n');
execFileSync('mount', ['--bind', resolv, '/etc/resolv.conf']);
const sink = dgram.createSocket('udp4');
let queries = 0;
sink.on('message', () => { queries++; });	// never answered
await new Promise((res) => sink.bind(53, '127.0.0.1', res));

try {
  const h = startHarness(['--url', 'ws://instantd-silent-dns.example:8080/runtime/session', '--app-id', 'a',
    '--resolve-timeout', '3', '--base', '600000']);
  await h.waitState('resolving');
  const s1 = await h.status();
  await sleep(1000);
  const s2 = await h.status();
  check(queries > 0, `the resolver asked our silent DNS server (${queries} queries)`);
  check(s1.state === 'resolving' && s2.state === 'resolving', 'the lookup is hanging');
  check(s2.ticks > s1.ticks, `timers keep running meanwhile (${s1.ticks} -> ${s2.ticks})`);
  const e = await h.waitState('backoff');
  check(/timed out after 3 s/.test(e.detail), `the lookup times out into backoff: ${e.detail}`);
  const ex = await h.quit();
  check(ex.code === 0 && !ex.signal, `exits 0 while the resolver thread is still waiting (${JSON.stringify(ex)})`);
} finally {
  sink.close();
  spawnSync('umount', ['/etc/resolv.conf']);
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log('dns-silent: all passed');
process.exit(0);
