// Upstream session over wss://: a private-CA server certificate fails verification
// against the system store alone (reported, retried with backoff), works with the
// extra CA file, and a certificate for another name fails even with the right CA.
import { startServer, startHarness, check, guard, tmpdir, makeCerts } from './lib.mjs';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

guard(120);
const dir = tmpdir();
try {
  const good = makeCerts(dir);
  const srv = await startServer({ tls: good });

  // system CAs only: verification fails, clearly reported, retried
  {
    const h = startHarness(['--url', `wss://localhost:${srv.port}/runtime/session`, '--app-id', 'a', '--base', '50', '--cap', '200']);
    const e = await h.waitState('backoff');
    check(/certificate|issuer|verify/i.test(e.detail), `untrusted certificate reported: ${e.detail}`);
    await h.waitState('backoff');
    // The 50 ms backoff may already have run out by the time status answers: the second
    // backoff event is the retry, and the session is between attempts, never past them.
    const s = await h.status();
    check(s.attempts >= 2 && ['backoff', 'resolving', 'connecting'].includes(s.state),
      `retried with backoff (attempts ${s.attempts}, ${s.state})`);
    check(srv.inits.length === 0, 'no init sent over an unverified connection');
    await h.quit();
  }

  // with the test CA as the extra CA file: works by name and by IP literal
  for (const host of ['localhost', '127.0.0.1']) {
    const h = startHarness(['--url', `wss://${host}:${srv.port}/runtime/session`, '--app-id', 'a', '--ca-file', good.ca]);
    await h.waitState('authenticated');
    check(srv.paths.at(-1) === '/runtime/session?app_id=a', `wss to ${host} with the extra CA authenticates`);
    await h.quit();
  }
  // The system store read as a hashed directory (daemon/tls.h): the test CA there, found by
  // its subject hash when the chain needs it, with no bundle file and no --ca-file.
  {
    const store = path.join(dir, 'store');
    fs.mkdirSync(store);
    fs.copyFileSync(good.ca, path.join(store, 'test-ca.pem'));
    execFileSync('openssl', ['rehash', store]);
    const env = { ...process.env, SSL_CERT_DIR: store };
    delete env.SSL_CERT_FILE;
    const inits = srv.inits.length;
    const h = startHarness(['--url', `wss://localhost:${srv.port}/runtime/session`, '--app-id', 'a'], { env });
    await h.waitState('authenticated');
    check(srv.inits.length === inits + 1, 'a CA in the hashed system directory is trusted without the bundle or ca-file');
    await h.quit();
  }
  await srv.stop();

  // right CA, wrong name in the certificate: hostname check fails
  const other = path.join(dir, 'other');
  fs.mkdirSync(other);
  const wrong = makeCerts(other, 'DNS:wrong.example');
  const srv2 = await startServer({ tls: wrong });
  {
    const h = startHarness(['--url', `wss://localhost:${srv2.port}/runtime/session`, '--app-id', 'a', '--ca-file', wrong.ca,
      '--base', '50', '--cap', '200']);
    const e = await h.waitState('backoff');
    check(/hostname|mismatch|certificate|verify/i.test(e.detail), `name mismatch reported: ${e.detail}`);
    check(srv2.inits.length === 0, 'no init sent on a name mismatch');
    await h.quit();
  }
  await srv2.stop();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log('tls: all passed');
process.exit(0);
