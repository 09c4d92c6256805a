// Helpers for Node tests that drive the mock Instant server: spawn it, call its control interface,
// run real @instantdb/core clients as child processes, and speak the raw protocol over `ws`.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { importDep } from '../lib/deps.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const NODE = process.env.NODE || process.execPath;
export const SERVER = path.join(here, 'server.mjs');
export const PEER = path.join(here, 'peer.mjs');
export const DEFAULT_APP_ID = '11111111-1111-4111-8111-111111111111';

// POST /__control/<action> with a JSON body; resolves to the parsed reply (throws if ok is false).
export function ctl(controlPort, action, body = {}, { allowError = false } = {}) {
	const data = JSON.stringify(body);
	return new Promise((resolve, reject) => {
		const req = http.request({ host: '127.0.0.1', port: controlPort, method: 'POST', path: `/__control/${action}`,
			headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => {
				try {
					const j = JSON.parse(Buffer.concat(chunks).toString('utf8'));
					if (!j.ok && !allowError) reject(new Error(`control ${action}: ${j.error}`));
					else resolve(j);
				} catch (e) { reject(e); }
			});
		});
		req.on('error', reject);
		req.end(data);
	});
}

// POST JSON to the mock's main port (the runtime auth endpoints); resolves to {status, body}.
export function postJSON(port, p, body) {
	const data = JSON.stringify(body);
	return new Promise((resolve, reject) => {
		const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: p,
			headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') }));
		});
		req.on('error', reject);
		req.end(data);
	});
}

function readFirstLine(proc, what) {
	return new Promise((resolve, reject) => {
		const rl = readline.createInterface({ input: proc.stdout });
		rl.once('line', (l) => { rl.close(); resolve(l); });
		proc.once('exit', (c) => reject(new Error(`${what} exited (${c}) before it was ready`)));
	});
}

// Starts `node server.mjs ...args`; resolves when it has printed its listening line.
export async function startMock(args = []) {
	const proc = spawn(NODE, [SERVER, ...args, '--exit-on-stdin-eof'], { stdio: ['pipe', 'pipe', 'inherit'] });
	const info = JSON.parse(await readFirstLine(proc, 'mock server'));
	const mock = {
		...info, proc, args,
		apiURI: `${info.url.startsWith('wss') ? 'https' : 'http'}://127.0.0.1:${info.port}`,
		ctl: (action, body, o) => ctl(mock.controlPort, action, body, o),
		async stop() {
			if (mock.proc.exitCode !== null) return mock.proc.exitCode;
			const done = new Promise((r) => mock.proc.once('exit', (c) => r(c)));
			mock.proc.kill('SIGTERM');
			return done;
		},
		// Stops the process and starts a new one on the same ports (keep --state in args to keep data).
		async restart() {
			await mock.stop();
			const rest = args.filter((a, i) => !['--port', '--control-port', '--exit-on-stdin-eof'].includes(a) &&
				!['--port', '--control-port'].includes(args[i - 1]));
			const n = await startMock([...rest, '--port', String(mock.port), '--control-port', String(mock.controlPort)]);
			Object.assign(mock, { proc: n.proc, url: n.url });
			return mock;
		},
	};
	return mock;
}

// Collects JSON-line events and waits for one matching a predicate.
class EventLog {
	constructor() { this.events = []; this.waiters = []; }
	push(ev) {
		this.events.push(ev);
		this.waiters = this.waiters.filter((w) => {
			if (this.events.length - 1 >= w.from && w.pred(ev)) { clearTimeout(w.timer); w.resolve(ev); return false; }
			return true;
		});
	}
	// Resolves with the first event at index >= from matching pred (default: any new one from now on).
	waitFor(pred, { timeout = 15000, from, what = 'event' } = {}) {
		const start = from ?? 0;
		for (let i = start; i < this.events.length; i++) if (pred(this.events[i])) return Promise.resolve(this.events[i]);
		return new Promise((resolve, reject) => {
			const w = { pred, from: start, resolve };
			w.timer = setTimeout(() => {
				this.waiters = this.waiters.filter((x) => x !== w);
				reject(new Error(`timed out waiting for ${what}; last events: ${JSON.stringify(this.events.slice(-5)).slice(0, 2000)}`));
			}, timeout);
			this.waiters.push(w);
		});
	}
	mark() { return this.events.length; }
}

// Runs a real @instantdb/core client in its own process (see peer.mjs for commands).
export async function spawnPeer(mock, { appId = DEFAULT_APP_ID, env } = {}) {
	const proc = spawn(NODE, [PEER, mock.url, mock.apiURI, appId], { stdio: ['pipe', 'pipe', 'inherit'],
		env: env ? { ...process.env, ...env } : process.env });
	const log = new EventLog();
	const rl = readline.createInterface({ input: proc.stdout });
	rl.on('line', (l) => { try { log.push(JSON.parse(l)); } catch { /* not ours */ } });
	const peer = {
		proc, log,
		send: (c) => proc.stdin.write(JSON.stringify(c) + '\n'),
		waitFor: (pred, o) => log.waitFor(pred, o),
		mark: () => log.mark(),
		async close() {
			if (proc.exitCode !== null) return;
			const done = new Promise((r) => proc.once('exit', r));
			peer.send({ cmd: 'exit' });
			setTimeout(() => proc.kill('SIGKILL'), 3000).unref();
			await done;
		},
	};
	await log.waitFor((e) => e.ev === 'ready', { what: 'peer ready' });
	return peer;
}

// A raw protocol client: send objects, wait for frames.
export async function rawClient(url, { appId = DEFAULT_APP_ID, query = true, wsOptions = {} } = {}) {
	const { WebSocket } = await importDep('ws');
	const ws = new WebSocket(query ? `${url}?app_id=${appId}` : url, wsOptions);
	const log = new EventLog();
	ws.on('message', (d) => {
		let m;
		try { m = JSON.parse(d.toString()); } catch { m = { op: '<unparseable>', raw: d.toString() }; }
		for (const x of Array.isArray(m) ? m : [m]) log.push(x);
	});
	let closed = false;
	const closedP = new Promise((r) => ws.on('close', (code) => { closed = true; r(code); }));
	await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
	let n = 0;
	const c = {
		ws, log, closedP,
		get closed() { return closed; },
		send: (m) => ws.send(typeof m === 'string' ? m : JSON.stringify(m)),
		waitFor: (pred, o) => log.waitFor(pred, o),
		mark: () => log.mark(),
		// Sends a request with a fresh client-event-id and waits for the frame answering it.
		async request(m, o = {}) {
			const id = m['client-event-id'] ?? `ev-${++n}`;
			const from = log.mark();
			c.send({ 'client-event-id': id, ...m });
			return log.waitFor((x) => x['client-event-id'] === id, { from, what: `reply to ${m.op} ${id}`, ...o });
		},
		async init(extra = {}) {
			return c.request({ op: 'init', 'app-id': appId, versions: { '@instantdb/core': 'v1.0.67' }, ...extra });
		},
		close: () => { ws.terminate(); return closedP; },
	};
	return c;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Tiny assertion helpers for the TAP-less Node tests: print and count, exit 1 on failure.
export function makeChecker(name) {
	let failed = 0;
	let n = 0;
	const t = {
		ok(cond, msg) {
			n++;
			if (cond) console.log(`ok ${n} - ${msg}`);
			else { failed++; console.log(`not ok ${n} - ${msg}`); }
		},
		eq(a, b, msg) {
			const sa = JSON.stringify(a);
			const sb = JSON.stringify(b);
			t.ok(sa === sb, sa === sb ? msg : `${msg}: got ${sa?.slice(0, 500)} want ${sb?.slice(0, 500)}`);
		},
		done() {
			console.log(`1..${n}`);
			if (failed) console.log(`# ${name}: ${failed} failed`);
			return failed ? 1 : 0;
		},
	};
	return t;
}

// Runs `body(t)` with a global deadline; always cleans up; exits with the right code.
export async function runTest(name, body, { deadlineMs = 50000 } = {}) {
	const t = makeChecker(name);
	const cleanups = [];
	t.cleanup = (f) => cleanups.push(f);
	const timer = setTimeout(() => { console.log(`not ok - ${name}: deadline exceeded`); finish(1); }, deadlineMs);
	let finished = false;
	async function finish(code) {
		if (finished) return;
		finished = true;
		clearTimeout(timer);
		for (const f of cleanups.reverse()) { try { await f(); } catch { /* best effort */ } }
		process.exit(code);
	}
	try {
		await body(t);
		await finish(t.done());
	} catch (e) {
		console.log(`not ok - ${name}: ${e.stack || e}`);
		t.done();
		await finish(1);
	}
}

// Makes a throw-away CA and a server certificate for 127.0.0.1/localhost in `dir` with openssl.
// Returns the file paths { ca, cert, key }. Never commit these; make them per test run.
export function makeTestCA(dir) {
	const f = (n) => path.join(dir, n);
	const run = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
	run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'),
		'-days', '2', '-subj', '/CN=instantd test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
		'-addext', 'keyUsage=critical,keyCertSign,cRLSign');
	run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost');
	fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
	run('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial',
		'-out', f('server.pem'), '-days', '2', '-extfile', f('ext.cnf'));
	return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}
