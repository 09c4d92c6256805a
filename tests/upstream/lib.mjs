// Shared helpers for the upstream tests: a scripted Instant-like WebSocket server
// (plain or TLS) with fault switches, and a driver for the upstream-test harness.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { randomUUID } from 'node:crypto';
import { importDep } from '../lib/deps.mjs';

const { WebSocketServer } = await importDep('ws');

const builddir = process.env.top_builddir || path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
export const harnessPath = path.join(builddir, 'tests', 'upstream', 'upstream-test');

export function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

export function check(cond, msg) {
  if (!cond) fail(msg);
  console.log(`ok - ${msg}`);
}

// A whole test must never hang: fail loudly instead.
export function guard(seconds = 120) {
  const t = setTimeout(() => fail(`test did not finish within ${seconds} s`), seconds * 1000);
  t.unref();
}

export function tmpdir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'instantd-upstream-'));
}

// Scripted server. Options: tls {cert,key}, autoPong (default true).
// Switches on the returned object: initReply(msg, ws) override, silentTransact, noReply.
export async function startServer(opts = {}) {
  const srv = {
    connections: 0,
    inits: [],
    received: [],
    paths: [],
    closes: [],
    sockets: new Set(),
    silentTransact: false,
    initReply: null,
    appStatus: 'active',
    listeners: [],
  };
  const httpServer = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }) : http.createServer();
  const wss = new WebSocketServer({ server: httpServer, autoPong: opts.autoPong !== false, maxPayload: 256 << 20 });
  wss.on('connection', (ws, req) => {
    srv.connections++;
    srv.paths.push(req.url);
    srv.sockets.add(ws);
    ws.on('close', (code, reason) => { srv.sockets.delete(ws); srv.closes.push({ code, reason: reason.toString() }); });
    ws.on('error', () => {});
    ws.on('message', (data) => {
      let m;
      try { m = JSON.parse(data.toString()); } catch { return; }
      srv.received.push(m);
      for (const l of srv.listeners) l(m, ws);
      if (srv.noReply) return;
      if (m.op === 'init') {
        srv.inits.push(m);
        if (srv.initReply) {
          const r = srv.initReply(m, ws);
          if (r) ws.send(JSON.stringify(r));
          return;
        }
        ws.send(JSON.stringify({
          op: 'init-ok', 'client-event-id': m['client-event-id'], 'session-id': randomUUID(),
          attrs: [], auth: { app: { id: m['app-id'] }, user: m['refresh-token'] ? { id: 'user-1', email: 'a@b.c' } : null, 'admin?': null },
          'app-status': { status: srv.appStatus }, 'trace-id': null,
        }));
      } else if (m.op === 'transact' && !srv.silentTransact) {
        ws.send(JSON.stringify({ op: 'transact-ok', 'client-event-id': m['client-event-id'], 'tx-id': 100 + srv.received.length, isn: '0/1', 'trace-id': null }));
      }
    });
  });
  if (opts.unixPath)
    await new Promise((res) => httpServer.listen(opts.unixPath, res));
  else
    await new Promise((res) => httpServer.listen(opts.port || 0, opts.host || '127.0.0.1', res));
  srv.port = opts.unixPath ? 0 : httpServer.address().port;
  srv.url = (p = '/runtime/session') => `${opts.tls ? 'wss' : 'ws'}://127.0.0.1:${srv.port}${p}`;
  srv.broadcast = (obj) => { for (const s of srv.sockets) s.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); };
  srv.dropAll = () => { for (const s of srv.sockets) s.terminate(); };
  srv.closeAll = (code, reason) => { for (const s of srv.sockets) s.close(code, reason); };
  // Refuse new connections: stop listening (the port stays ours only by luck, so
  // tests reopen on the same port right after).
  srv.refuse = async () => {
    srv.dropAll();
    await new Promise((res) => httpServer.close(() => res()));
  };
  srv.accept = async () => {
    await new Promise((res, rej) => { httpServer.once('error', rej); httpServer.listen(srv.port, opts.host || '127.0.0.1', res); });
  };
  srv.stop = async () => {
    srv.dropAll();
    wss.close();
    await new Promise((res) => httpServer.close(() => res()));
  };
  return srv;
}

// Throwaway CA and server certificate (SAN localhost + 127.0.0.1, or the given names).
export function makeCerts(dir, sans = 'DNS:localhost,IP:127.0.0.1') {
  const run = (args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
    '-subj', '/CN=instantd test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=instantd test server']);
  fs.writeFileSync(path.join(dir, 'ext.cnf'), `subjectAltName=${sans}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem',
    '-days', '2', '-extfile', 'ext.cnf']);
  return {
    ca: path.join(dir, 'ca.pem'),
    cert: fs.readFileSync(path.join(dir, 'server.pem')),
    key: fs.readFileSync(path.join(dir, 'server.key')),
  };
}

// Runs the harness; events() are the JSON lines it printed. waitFor polls them.
// UPSTREAM_TEST_WRAPPER (e.g. "valgrind -q --error-exitcode=99") runs it under a tool.
export function startHarness(args, { prefix = (process.env.UPSTREAM_TEST_WRAPPER || '').split(' ').filter(Boolean), env } = {}) {
  const cmd = prefix.length ? prefix[0] : harnessPath;
  const argv = prefix.length ? [...prefix.slice(1), harnessPath, ...args] : args;
  const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: env || process.env });
  const h = { child, events: [], raw: '', stderr: '', exited: null, cursor: 0 };
  const rl = readline.createInterface({ input: child.stdout });
  rl.on('line', (l) => {
    h.raw += l + '\n';
    let e;
    try { e = JSON.parse(l); } catch { e = { ev: 'junk', line: l }; }
    h.events.push(e);
    if (process.env.UPSTREAM_TEST_VERBOSE) console.error('harness:', l);
  });
  child.stderr.on('data', (d) => { h.stderr += d; });
  child.on('exit', (code, sig) => { h.exited = { code, sig }; });
  h.cmd = (line) => child.stdin.write(line + '\n');
  // Wait for an event matching pred among those after the cursor; moves the cursor past it.
  h.waitFor = async (pred, what, seconds = 30) => {
    const end = Date.now() + seconds * 1000;
    for (;;) {
      for (let i = h.cursor; i < h.events.length; i++) {
        if (pred(h.events[i])) {
          h.cursor = i + 1;
          return h.events[i];
        }
      }
      if (h.exited) fail(`harness exited (${JSON.stringify(h.exited)}) while waiting for ${what}\n${h.stderr}`);
      if (Date.now() > end) fail(`timed out waiting for ${what}; events:\n${h.raw.slice(-4000)}`);
      await sleep(10);
    }
  };
  h.waitState = (st, seconds) => h.waitFor((e) => e.ev === 'state' && e.state === st, `state ${st}`, seconds);
  h.status = async () => {
    h.cmd('status');
    const e = await h.waitFor((x) => x.ev === 'status', 'status');
    return { ...e.status, ticks: e.ticks };
  };
  h.quit = async () => {
    if (!h.exited) {
      h.cmd('quit');
      const end = Date.now() + 10000;
      while (!h.exited && Date.now() < end) await sleep(10);
      if (!h.exited) { child.kill('SIGKILL'); fail('harness did not quit'); }
    }
    if (h.exited.code !== 0) fail(`harness exit ${JSON.stringify(h.exited)}\n${h.stderr}`);
    return h.exited;
  };
  return h;
}

export function sleep(ms) {
  return new Promise((res) => setTimeout(res, ms));
}

export async function until(pred, what, seconds = 30) {
  const end = Date.now() + seconds * 1000;
  while (!pred()) {
    if (Date.now() > end) fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
