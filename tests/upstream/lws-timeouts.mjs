// lws's own client timeouts firing before the session's connect timer: lws closes the
// wsi (for a ws client still in HTTP, with CLOSED_CLIENT_HTTP and no CONNECTION_ERROR),
// the session must forget it and back off, and must not touch it when its own timer
// fires later (issue 21: the daemon crashed here 20 s after a silent accept).
import net from 'node:net';
import { check, guard, startHarness, until, tmpdir, makeCerts } from './lib.mjs';

guard(90);

// A TCP server that accepts and never answers.
async function silentServer() {
  const sockets = [];
  const tcp = net.createServer((s) => { sockets.push(s); s.on('error', () => {}); });
  await new Promise((r) => tcp.listen(0, '127.0.0.1', r));
  return { port: tcp.address().port, sockets, close: () => { for (const s of sockets) s.destroy(); tcp.close(); } };
}

// Each attempt is ended by lws after 1 s, long before the session's 4 s timer; the
// timer of the first attempt would fire on the freed wsi while the next attempts run.
for (const scheme of ['ws', 'wss']) {
  const srv = await silentServer();
  const args = ['--url', `${scheme}://127.0.0.1:${srv.port}/x`, '--app-id', 'a', '--connect-timeout', '4',
    '--lws-timeout', '1', '--base', '300', '--cap', '300'];
  if (scheme === 'wss') args.push('--ca-file', makeCerts(tmpdir()).ca);
  const h = startHarness(args);
  const t0 = Date.now();
  const details = [];
  for (let i = 0; i < 4; i++) {
    const e = await h.waitFor((x) => x.ev === 'state' && x.state === 'backoff', `backoff ${i + 1}`, 20);
    details.push(e.detail);
  }
  const expect = scheme === 'ws' ? /did not answer the WebSocket upgrade/ : /TLS handshake timed out/;
  check(details.every((d) => expect.test(d)), `${scheme}: every attempt names the stuck step: ${details[0]}`);
  check(!details.some((d) => /timed out after 4 s/.test(d)), `${scheme}: lws's timeout ended each attempt, not the session's`);
  // Outlive the session's own timer of every attempt so far (4 s after each start).
  await until(() => Date.now() - t0 > 6000, 'the session timers to fall due', 10);
  const st = await h.status();
  check(st.ticks > 0 && srv.sockets.length >= 4, `${scheme}: still running after ${srv.sockets.length} attempts (${st.state})`);
  await h.quit();
  srv.close();
}
