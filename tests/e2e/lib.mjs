// Helpers for end-to-end tests: run the real instantd binary against the mock server
// and talk to it over its Unix socket the way a local program does.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';

export const builddir = process.env.top_builddir || path.resolve('..');
export const INSTANTD = path.join(builddir, 'daemon', 'instantd');
export const INSTANTCTL = path.join(builddir, 'ipc', 'instantctl');

export function tmpdir(prefix = 'instantd-e2e-') {
	return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn until it returns a truthy value or the deadline passes (generous: correctness, not speed).
export async function waitFor(fn, what, timeoutMs = 20000, stepMs = 25) {
	const end = Date.now() + timeoutMs;
	for (;;) {
		const v = await fn();
		if (v) return v;
		if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
		await sleep(stepMs);
	}
}

// Short timers so reconnects happen within a test's patience; nothing else changes.
export const FAST_CONFIG = 'backoff-base-ms = 50\nbackoff-cap-ms = 500\nunsubscribe-grace-ms = 200\n';

// One daemon with its own runtime and state directories.
export class Daemon {
	// verbose: how many -v (2: debug; 0 keeps the default level, notice).
	// wrapper: a command prefix of this daemon alone (e.g. setpriv to run it as another uid);
	// binary: the instantd to run (e.g. a copy another uid may execute).
	constructor({ server, dir = tmpdir(), extraArgs = [], env = {}, config = FAST_CONFIG, verbose = 2, wrapper = [],
		binary = INSTANTD } = {}) {
		this.verbose = verbose;
		this.server = server;
		this.wrapper = wrapper;
		this.binary = binary;
		this.dir = dir;
		fs.mkdirSync(path.join(dir, 'config', 'instantd'), { recursive: true, mode: 0o700 });
		fs.mkdirSync(path.join(dir, 'run'), { recursive: true, mode: 0o700 });
		fs.writeFileSync(path.join(dir, 'config', 'instantd', 'instantd.conf'), config);
		this.socket = path.join(dir, 'run', 'instantd', 'socket');
		this.stateDir = path.join(dir, 'state');
		this.extraArgs = extraArgs;
		this.env = env;
		this.proc = null;
		this.log = '';
	}

	async start() {
		const args = ['--socket', this.socket, '--state-dir', this.stateDir, ...Array(this.verbose).fill('-v')];
		if (this.server) args.push('--server', this.server);
		args.push(...this.extraArgs);
		const env = { ...process.env };
		delete env.NOTIFY_SOCKET;
		delete env.LISTEN_FDS;
		delete env.JOURNAL_STREAM;
		Object.assign(env, {
			XDG_RUNTIME_DIR: path.join(this.dir, 'run'),
			XDG_STATE_HOME: path.join(this.dir, 'state-home'),
			XDG_CONFIG_HOME: path.join(this.dir, 'config'),
		}, this.env);
		// INSTANTD_WRAPPER: a command prefix for the daemon, e.g. valgrind (tests/hostile/valgrind-e2e.sh).
		const wrap = [...this.wrapper, ...(process.env.INSTANTD_WRAPPER || '').split(' ').filter(Boolean)];
		this.proc = spawn(wrap[0] || this.binary, [...wrap.slice(1), ...(wrap.length ? [this.binary] : []), ...args], { env, stdio: ['ignore', 'inherit', 'pipe'] });
		this.proc.stderr.on('data', (d) => {
			this.log += d.toString();
			if (process.env.E2E_VERBOSE) process.stderr.write(d);
		});
		const proc = this.proc;
		await waitFor(async () => {
			if (proc.exitCode !== null) throw new Error(`instantd exited with ${proc.exitCode}:\n${this.log}`);
			return fs.existsSync(this.socket) && (await canConnect(this.socket));
		}, 'the daemon socket');
		return this;
	}

	async kill9() {
		if (!this.proc || this.proc.exitCode !== null) return;
		const done = new Promise((r) => this.proc.once('exit', r));
		this.proc.kill('SIGKILL');
		await done;
	}

	async stop() {
		if (!this.proc || this.proc.exitCode !== null) return this.proc ? this.proc.exitCode : 0;
		const done = new Promise((r) => this.proc.once('exit', (code) => r(code)));
		this.proc.kill('SIGTERM');
		return done;
	}
}

function canConnect(p) {
	return new Promise((resolve) => {
		const s = net.connect(p);
		s.once('connect', () => { s.destroy(); resolve(true); });
		s.once('error', () => resolve(false));
	});
}

// A local program: newline-delimited JSON on the socket.
export class Client {
	constructor(socketPath) {
		this.socketPath = socketPath;
		this.messages = [];
		this.waiters = [];
		this.buf = '';
		this.closed = false;
	}

	connect() {
		return new Promise((resolve, reject) => {
			this.sock = net.connect(this.socketPath);
			this.sock.setEncoding('utf8');
			this.sock.once('connect', () => resolve(this));
			this.sock.once('error', reject);
			this.sock.on('data', (d) => this.onData(d));
			this.sock.on('close', () => { this.closed = true; this.wake(); });
		});
	}

	onData(d) {
		this.buf += d;
		let i;
		while ((i = this.buf.indexOf('\n')) >= 0) {
			const line = this.buf.slice(0, i);
			this.buf = this.buf.slice(i + 1);
			if (line) this.messages.push(JSON.parse(line));
		}
		this.wake();
	}

	wake() {
		const w = this.waiters;
		this.waiters = [];
		for (const f of w) f();
	}

	send(msg) {
		if (!msg['client-event-id']) msg['client-event-id'] = randomUUID();
		this.sock.write(JSON.stringify(msg) + '\n');
		return msg['client-event-id'];
	}

	// The first message (from the start, or after `from`) that pred accepts.
	async next(pred, what = 'a message', timeoutMs = 20000, from = 0) {
		const end = Date.now() + timeoutMs;
		for (;;) {
			for (let i = from; i < this.messages.length; i++)
				if (pred(this.messages[i])) return this.messages[i];
			if (this.closed) throw new Error(`connection closed while waiting for ${what}`);
			const left = end - Date.now();
			if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.messages.slice(-5))}`);
			await new Promise((r) => { this.waiters.push(r); setTimeout(r, Math.min(left, 200)); });
		}
	}

	// Send a request and wait for the reply (any op) carrying its client-event-id.
	async request(msg, accept = null, timeoutMs = 20000) {
		const id = this.send(msg);
		const start = this.messages.length;
		return this.next((m) => m['client-event-id'] === id && (!accept || accept(m)),
			`a reply to ${msg.op}`, timeoutMs, start);
	}

	async init(appId, extra = {}) {
		const r = await this.request({ op: 'init', 'app-id': appId, ...extra });
		if (r.op !== 'init-ok') throw new Error(`init failed: ${JSON.stringify(r)}`);
		return r;
	}

	close() {
		this.sock.destroy();
	}
}

// Run a command without blocking this process's event loop: a daemon whose stderr
// this process reads would otherwise block on a full pipe (spawnSync deadlocks).
export function run(cmd, args, { input = '', timeout = 60000, env } = {}) {
	return new Promise((resolve) => {
		const p = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
		let stdout = '', stderr = '';
		const t = setTimeout(() => p.kill('SIGKILL'), timeout);
		p.stdout.on('data', (d) => { stdout += d; });
		p.stderr.on('data', (d) => { stderr += d; });
		p.on('close', (status) => { clearTimeout(t); resolve({ status, stdout, stderr }); });
		// A command that exits without reading its input (instantd --check-config) makes
		// this write fail with EPIPE: that is no error of the command's.
		p.stdin.on('error', () => {});
		p.stdin.end(input);
	});
}

export function check(cond, msg) {
	if (!cond) throw new Error(`check failed: ${msg}`);
}

export function equalJSON(a, b) {
	return canonical(a) === canonical(b);
}

export function canonical(v) {
	if (Array.isArray(v)) return '[' + v.map(canonical).join(',') + ']';
	if (v && typeof v === 'object')
		return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canonical(v[k])).join(',') + '}';
	return JSON.stringify(v);
}

function printLogs(daemons) {
	for (const d of daemons) if (d.log) console.error(`--- daemon log ---\n${d.log.slice(-20000)}`);
}

// Run a scenario with a hard deadline; exit non-zero with the daemon log on failure.
export async function scenario(name, fn, { timeoutMs = 120000, daemons = [] } = {}) {
	const t0 = Date.now();
	const timer = setTimeout(() => {
		console.error(`not ok - ${name}: timed out after ${timeoutMs} ms`);
		printLogs(daemons);
		process.exit(1);
	}, timeoutMs);
	try {
		await fn();
		// The time is for whoever reads a log of a slow machine, never a check.
		console.log(`ok - ${name} (${Date.now() - t0} ms)`);
	} catch (e) {
		console.error(`not ok - ${name}: ${e.stack || e}`);
		printLogs(daemons);
		process.exitCode = 1;
	} finally {
		clearTimeout(timer);
	}
}
