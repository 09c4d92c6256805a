// `make bench`: instantd and @instantdb/core side by side against one mock server on a ~100k-triple
// data set; prints a table with both figures, their ratio and the targets, and writes RESULTS.md.
// Env: top_builddir (for daemon/instantd), INSTANTD_NODE_MODULES.
// Args: [--results FILE.md] [--json FILE.json] [--floor-echo PROGRAM] [--quick]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { startMock, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { generate, rng, uuidFrom } from './gen.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const opt = (name, dflt) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : dflt; };
const QUICK = argv.includes('--quick');
const RESULTS = opt('--results', null);
const JSON_OUT = opt('--json', null);
// The echo server of the floor row (tests/bench/floor-echo.c, built by make bench); none: no floor row.
const FLOOR_ECHO = opt('--floor-echo', null);
const builddir = process.env.top_builddir || path.resolve(here, '..', '..');
const INSTANTD = opt('--instantd', path.join(builddir, 'daemon', 'instantd'));
const NODE = process.env.NODE || process.execPath;
const APP = DEFAULT_APP_ID;
const COPIES = Number(opt('--copies', 40));
const N_REPLAY = Number(opt('--replay', QUICK ? 1000 : 10000));
// How long the JS client's replay in e may take before it is reported unfinished (n/a).
const JS_REPLAY_LIMIT_MS = Number(opt('--js-replay-limit-ms', 600000));
// --only f,a,b,c,d,e,h,g runs some parts (f's 100 subscriptions are always opened); --daemon-only skips the JS side of d and e (for profiling runs).
const ONLY = opt('--only', null)?.split(',');
const want = (part) => !ONLY || ONLY.includes(part);
const DAEMON_ONLY = argv.includes('--daemon-only');
const now = () => process.hrtime.bigint();
const ms = (a, b) => Number(b - a) / 1e6;
const sleep = (t) => new Promise((r) => setTimeout(r, t));
const log = (...a) => console.error('[bench]', ...a);

const loadAtStart = os.loadavg()[0];
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'instantd-bench-'));
const children = [];
process.on('exit', () => {
	for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
	// BENCH_KEEP=1 leaves the state behind for profiling a phase by hand (g's cold start, say).
	if (process.env.BENCH_KEEP) console.error(`[bench] work directory kept: ${work}`);
	else fs.rmSync(work, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

// ---- the daemon and a local program talking to it ----

const CONFIG = 'backoff-base-ms = 20\nbackoff-cap-ms = 100\nunsubscribe-grace-ms = 0\n' +
	'transact-timeout = 600\nmax-subscriptions-per-connection = 1000\n';

function daemonEnv(dir) {
	const env = { ...process.env };
	// A user unit starts without these; SSL_CERT_FILE makes the daemon parse the whole CA bundle (daemon/tls.h).
	for (const k of ['NOTIFY_SOCKET', 'LISTEN_FDS', 'LISTEN_PID', 'JOURNAL_STREAM', 'WATCHDOG_USEC',
		'SSL_CERT_FILE', 'NIX_SSL_CERT_FILE']) delete env[k];
	return Object.assign(env, {
		XDG_RUNTIME_DIR: path.join(dir, 'run'),
		XDG_STATE_HOME: path.join(dir, 'state-home'),
		XDG_CONFIG_HOME: path.join(dir, 'config'),
	});
}

function canConnect(p) {
	return new Promise((resolve) => {
		const s = net.connect(p);
		s.once('connect', () => { s.destroy(); resolve(true); });
		s.once('error', () => resolve(false));
	});
}

// Starts instantd on `dir` (state kept there across starts); resolves once its socket accepts.
async function startDaemon(dir, server) {
	fs.mkdirSync(path.join(dir, 'config', 'instantd'), { recursive: true });
	fs.mkdirSync(path.join(dir, 'run'), { recursive: true, mode: 0o700 });
	fs.writeFileSync(path.join(dir, 'config', 'instantd', 'instantd.conf'), CONFIG);
	const socket = path.join(dir, 'run', 'instantd', 'socket');
	try { fs.unlinkSync(socket); } catch { /* not there */ }
	const t0 = now();
	// BENCH_DAEMON_WRAPPER, e.g. "valgrind --tool=massif --massif-out-file=/tmp/m.out", for profiling runs.
	const wrap = (process.env.BENCH_DAEMON_WRAPPER || '').split(' ').filter(Boolean);
	const proc = spawn(wrap[0] || INSTANTD, [...wrap.slice(1), ...(wrap.length ? [INSTANTD] : []),
		'--socket', socket, '--state-dir', path.join(dir, 'state'), '--server', server],
		{ env: daemonEnv(dir), stdio: ['ignore', 'ignore', 'pipe'] });
	children.push(proc);
	let err = '';
	proc.stderr.on('data', (d) => { err = (err + d).slice(-20000); });
	for (;;) {
		if (proc.exitCode !== null) throw new Error(`instantd exited ${proc.exitCode}: ${err}`);
		if (fs.existsSync(socket) && await canConnect(socket)) break;
		await sleep(0.5);
	}
	return { proc, pid: proc.pid, socket, t0, log: () => err,
		async stop() {
			if (proc.exitCode !== null) return;
			const done = new Promise((r) => proc.once('exit', r));
			proc.kill('SIGTERM');
			await done;
		} };
}

// A local program: newline-delimited JSON; replies and pushes dispatched by client-event-id.
class Program {
	constructor(socket) { this.socket = socket; this.handlers = new Map(); this.buf = ''; this.n = 0; }
	connect() {
		return new Promise((resolve, reject) => {
			this.sock = net.connect(this.socket);
			this.sock.setEncoding('utf8');
			this.sock.setNoDelay?.(true);
			this.sock.once('connect', () => resolve(this));
			this.sock.once('error', reject);
			this.sock.on('data', (d) => this.onData(d));
		});
	}
	onData(d) {
		this.buf += d;
		let i;
		while ((i = this.buf.indexOf('\n')) >= 0) {
			const line = this.buf.slice(0, i);
			this.buf = this.buf.slice(i + 1);
			if (!line) continue;
			const m = JSON.parse(line);
			const hs = this.handlers.get(m['client-event-id']);
			if (hs) for (const h of hs.slice()) h(m, line);
		}
	}
	on(ceid, h) {
		if (!this.handlers.has(ceid)) this.handlers.set(ceid, []);
		this.handlers.get(ceid).push(h);
		return () => {
			const hs = this.handlers.get(ceid);
			if (hs) hs.splice(hs.indexOf(h), 1);
		};
	}
	send(msg) {
		const ceid = msg['client-event-id'] || `b${++this.n}`;
		msg['client-event-id'] = ceid;
		this.sock.write(JSON.stringify(msg) + '\n');
		return ceid;
	}
	// Resolves with the first message for ceid that accept() takes; rejects on an error reply.
	wait(ceid, accept, what = 'reply') {
		return new Promise((resolve, reject) => {
			const off = this.on(ceid, (m, line) => {
				if (m.op === 'error') { off(); reject(new Error(`${what}: ${line}`)); }
				else if (accept(m, line)) { off(); resolve(m); }
			});
		});
	}
	request(msg, ops) {
		const ceid = this.send(msg);
		return this.wait(ceid, (m) => !ops || ops.includes(m.op), msg.op);
	}
	async init() {
		const r = await this.request({ op: 'init', 'app-id': APP }, ['init-ok']);
		return r;
	}
	// Subscribes and resolves {ceid, first} once a server (not cached) result arrived.
	async subscribe(q) {
		const ceid = `sub-${randomUUID()}`;
		const p = this.wait(ceid, (m) => (m.op === 'add-query-ok' || m.op === 'refresh-ok') && m['from-cache'] === false, 'add-query');
		this.send({ op: 'add-query', q, 'client-event-id': ceid });
		await p;
		return ceid;
	}
	close() { this.sock.destroy(); }
}

// ---- the JS client process ----

// target: the mock ({url, apiURI}), or instantd's Instant endpoint with the mock's apiURI.
async function startJS(mock) {
	const t0 = now();
	const proc = spawn(NODE, [path.join(here, 'js-client.mjs'), mock.url, mock.apiURI, APP],
		{ stdio: ['pipe', 'pipe', 'inherit'], env: process.env });
	children.push(proc);
	const waiters = [];
	const events = [];
	readline.createInterface({ input: proc.stdout }).on('line', (l) => {
		let ev;
		try { ev = JSON.parse(l); } catch { return; }
		if (ev.ev === 'error') {
			log('js-client error:', ev.message);
			for (const w of waiters.splice(0)) w.reject(new Error(`js-client: ${ev.message}`));
			return;
		}
		events.push(ev);
		for (const w of waiters.slice()) if (w.pred(ev)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(ev); }
	});
	const js = {
		proc, pid: proc.pid, t0,
		waitEv(name) {
			const i = events.findIndex((e) => e.ev === name);
			if (i >= 0) return Promise.resolve(events.splice(i, 1)[0]);
			return new Promise((resolve, reject) => waiters.push({ pred: (e) => e.ev === name && (events.splice(events.indexOf(e), 1), true), resolve, reject }));
		},
		async cmd(c, reply) {
			const p = reply ? js.waitEv(reply) : null;
			proc.stdin.write(JSON.stringify(c) + '\n');
			return p;
		},
		async exit() {
			if (proc.exitCode !== null) return;
			const done = new Promise((r) => proc.once('exit', r));
			proc.stdin.write('{"cmd":"exit"}\n');
			// A client still working through a replay reads its stdin late or never: its
			// figures are taken, so it need not finish.
			const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
			await done;
			clearTimeout(t);
		},
	};
	await js.waitEv('ready');
	return js;
}

// --perf PHASE[,PHASE] --perf-dir DIR [--perf-callgraph fp|dwarf]: `perf record` on the daemon during those
// phases (a-small, a-large, b, c, d1, d16, e, h-c-N, h-b-N for N = 1, 10, 100, 1000).
const PERF = (opt('--perf', '') || '').split(',').filter(Boolean);
const PERF_DIR = opt('--perf-dir', process.cwd());
async function profiled(phase, fn) {
	if (!PERF.includes(phase)) return fn();
	const out = path.join(PERF_DIR, `perf-${phase}.data`);
	const perf = spawn('perf', ['record', '--call-graph', opt('--perf-callgraph', 'fp'), '-F', '499', '-o', out, '-p', String(daemon.pid)],
		{ stdio: ['ignore', 'ignore', 'inherit'] });
	await sleep(300);
	try {
		return await fn();
	} finally {
		const done = new Promise((r) => perf.once('exit', r));
		perf.kill('SIGINT');
		await done;
		log(`perf data for ${phase}: ${out}`);
	}
}

// ---- statistics ----

function pct(xs, p) {
	const s = [...xs].sort((a, b) => a - b);
	return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
function memOf(pid) {
	const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
	const kb = (k) => Number((st.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [])[1]);
	return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

// One measured figure. key: its id in results.json; d and j: instantd's and the JS client's
// figure (j null where the JS client has no equivalent).
const rows = [];
function row(key, what, d, j, unit) {
	rows.push({ key, what, d, j, unit });
	log(`${key} ${what}: instantd ${fmt(d)} ${unit}, JS ${fmt(j)} ${unit}`);
}
const get = (key) => rows.find((r) => r.key === key);
// The targets, each judged on one row (and maybe others); null when a phase did not run.
const both = (...tests) => (r) => tests.every((t) => t(r));
const ratioTo = (k, f) => (r) => { const o = get(k); return o?.d != null && r.d <= f * o.d; };
const jsRatio = (f) => (r) => r.j != null && r.d <= f * r.j;
const abs = (v, better = 'lower') => (r) => (better === 'lower' ? r.d <= v : r.d >= v);
const TARGETS = {
	'c-p50': ['≤ 1 ms and ≤ 0.5× JS', both(abs(1), jsRatio(0.5))],
	'h-c-1000': ['≤ 1.5× h-c-1', ratioTo('h-c-1', 1.5)],
	'h-b-1000': ['≤ 1.5× h-b-1', ratioTo('h-b-1', 1.5)],
	'b-p50': ['≤ 0.5× JS', jsRatio(0.5)],
	'a-large-p50': ['≤ 0.5× JS', jsRatio(0.5)],
	'a-small-p50': ['≤ 1.5× floor-echo-p50', ratioTo('floor-echo-p50', 1.5)],
	'f-rss': ['≤ 0.25× JS', jsRatio(0.25)],
	'e': ['≤ 1.5× e-nosubs and ≤ 0.1× JS', both(ratioTo('e-nosubs', 1.5), jsRatio(0.1))],
	'd-16': ['≥ 20,000 writes/s', abs(20000, 'higher')],
	'g': ['≤ 50 ms', abs(50)],
	'i-b-p50': ['≤ 1.2× JS direct', jsRatio(1.2)],
};
function judge(r) {
	const t = TARGETS[r.key];
	if (!t) return { desc: '—', met: null };
	return { desc: t[0], met: r.d == null ? null : !!t[1](r) };
}
function fmt(x, digits) {
	if (x == null || Number.isNaN(x)) return 'n/a';
	if (digits) return x.toFixed(digits);
	if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US');
	if (Math.abs(x) >= 10) return x.toFixed(1);
	return x.toFixed(3);
}

// ---- the run ----

log(`data: zeneca × ${COPIES}`);
const data = generate({ copies: COPIES, seed: 20240611, dataDir: path.join(here, '..', 'data', 'zeneca') });
const seedFile = path.join(work, 'seed.json');
fs.writeFileSync(seedFile, JSON.stringify({ attrs: data.attrs, triples: data.triples }));
const attrId = (etype, label) => data.attrs.find((a) => a['forward-identity'][1] === etype && a['forward-identity'][2] === label).id;
const SHELF_BOOKS = attrId('bookshelves', 'books');
const BOOK_TITLE = attrId('books', 'title');
const booksOf = new Map();
for (const [e, a, v] of data.triples) if (a === SHELF_BOOKS) (booksOf.get(e) || booksOf.set(e, []).get(e)).push(v);
const shelves = data.bookshelves.filter((s) => (booksOf.get(s) || []).length >= 8 && (booksOf.get(s) || []).length <= 15);
const side = {
	d: { shelf: shelves[0], book: booksOf.get(shelves[0])[0] },
	j: { shelf: shelves[1], book: booksOf.get(shelves[1])[0] },
};
const smallQ = (s) => ({ bookshelves: { $: { where: { id: side[s].shelf } }, books: {} } });
const LARGE_Q = { users: { bookshelves: {} } };
const userQs = data.users.slice(0, 100).map((u) => ({ users: { $: { where: { id: u } }, bookshelves: { books: {} } } }));
log(`${data.triples.length} triples; small query: one shelf with ${booksOf.get(side.d.shelf).length} books; large: ${LARGE_Q && 'every user with shelves'}`);

const mock = await startMock(['--seed', seedFile]);
children.push(mock.proc);
const ddir = path.join(work, 'daemon');
let daemon = await startDaemon(ddir, mock.url);
let js = await startJS(mock);
const meta = { triples: data.triples.length };
const userSubs = userQs.map((q, i) => [`u${i}`, q]);

// The same 100 subscriptions (one user each with shelves and books) stay open on both sides
// from f until e-nosubs, so every phase measures a client that holds them.
log('f: 100 subscriptions');
let bg = await new Program(daemon.socket).connect();
await bg.init();
{
	const t0 = now();
	await Promise.all(userQs.map((q) => bg.subscribe(q)));
	const dms = ms(t0, now());
	const jr = await js.cmd({ cmd: 'subscribe', qs: userSubs }, 'subscribed');
	log(`f: 100 results in ${dms.toFixed(0)} ms (instantd), ${jr.ms.toFixed(0)} ms (JS)`);
	meta.subscribeMs = { d: dms, j: jr.ms };
}
// f. memory with those 100 subscriptions (fresh processes, before anything else grew them)
if (want('f')) {
	await sleep(2000);	// results are written behind; let both settle
	const dm = memOf(daemon.pid);
	const jm = memOf(js.pid);
	row('f-rss', 'VmRSS, 100 subscriptions over 100k triples', dm.rss / 1024, jm.rss / 1024, 'MiB');
	row('f-hwm', 'VmHWM (peak RSS), same', dm.hwm / 1024, jm.hwm / 1024, 'MiB');
}

// a. answering a subscribed query from the local mirror
let prog = await new Program(daemon.socket).connect();
await prog.init();
let subSmall = await prog.subscribe(smallQ('d'));
await prog.subscribe(LARGE_Q);
await js.cmd({ cmd: 'subscribe', qs: [['small', smallQ('j')], ['large', LARGE_Q]] }, 'subscribed');
let smallLine = null;
async function queryOnceTimes(p, q, n, keep) {
	const times = [];
	let size = 0;
	for (let i = 0; i < n + 5; i++) {
		const t0 = now();
		const ceid = p.send({ op: 'query-once', q, policy: 'cache-first', 'client-event-id': 'once' });
		await p.wait(ceid, (m, line) => { size = line.length; if (keep) smallLine = line; return m.op === 'query-ok'; }, 'query-once');
		if (i >= 5) times.push(ms(t0, now()));
	}
	return { times, size };
}
for (const [name, q, n] of want('a') ? [['small', smallQ('d'), QUICK ? 50 : 400], ['large', LARGE_Q, QUICK ? 10 : 60]] : []) {
	log(`a: ${name}`);
	const { times, size } = await profiled(`a-${name}`, () => queryOnceTimes(prog, q, n, name === 'small'));
	const jr = await js.cmd({ cmd: 'eval', id: name, n: n + 5 }, 'eval');
	const jt = jr.times.slice(5);
	row(`a-${name}-p50`, `${name} result (${Math.round(size / 1024)} KiB JSON), p50`, pct(times, 50), pct(jt, 50), 'ms');
	row(`a-${name}-p95`, `${name} result, p95`, pct(times, 95), pct(jt, 95), 'ms');
}

// The floor of a-small: the same program, the same request, the same reply bytes, from a server
// that only echoes them over a Unix socket.
if (want('a') && FLOOR_ECHO && smallLine) {
	log('floor: echo');
	const reply = path.join(work, 'floor-reply.json');
	fs.writeFileSync(reply, smallLine + '\n');
	const sock = path.join(work, 'floor.sock');
	const echo = spawn(FLOOR_ECHO, [sock, reply], { stdio: ['ignore', 'pipe', 'inherit'] });
	children.push(echo);
	await new Promise((resolve, reject) => {
		echo.stdout.once('data', resolve);
		echo.once('exit', (c) => reject(new Error(`floor-echo exited ${c}`)));
	});
	const p = await new Program(sock).connect();
	const { times } = await queryOnceTimes(p, smallQ('d'), QUICK ? 50 : 400, false);
	p.close();
	echo.kill();
	row('floor-echo-p50', 'the same request and reply bytes echoed over a Unix socket, p50', pct(times, 50), null, 'ms');
}

// A server write until the subscriber has it: instantd on sub (of p), JS on its 'small'.
async function measureRefresh(p, sub, n) {
	const dt = [];
	const jt = [];
	for (let i = 0; i < n; i++) {
		const mk = `upstream-d-${i}-${randomUUID()}`;
		const got = p.wait(sub, (m, line) => m.op === 'refresh-ok' && line.includes(mk), 'refresh');
		const t0 = now();
		await mock.ctl('transact', { 'tx-steps': [['add-triple', side.d.book, BOOK_TITLE, mk]] });
		await got;
		dt.push(ms(t0, now()));
		const mj = `upstream-j-${i}-${randomUUID()}`;
		await js.cmd({ cmd: 'expect', id: 'small', marker: mj }, 'expecting');
		const seen = js.waitEv('seen');
		const t1 = now();
		await mock.ctl('transact', { 'tx-steps': [['add-triple', side.j.book, BOOK_TITLE, mj]] });
		const ev = await seen;
		jt.push(ms(t1, BigInt(ev.t)));
	}
	return { dt, jt };
}
// A local write until the writer's own subscription shows it (each write confirmed before the next).
async function measureOptimistic(p, sub, n) {
	const dt = [];
	for (let i = 0; i < n; i++) {
		const mk = `opt-d-${i}-${randomUUID()}`;
		const got = p.wait(sub, (m, line) => line.includes(mk), 'optimistic');
		const t0 = now();
		const ceid = p.send({ op: 'transact', ops: [['update', 'books', side.d.book, { title: mk }]] });
		const ok = p.wait(ceid, (m) => m.op === 'transact-ok', 'transact');
		await got;
		dt.push(ms(t0, now()));
		await ok;
	}
	const jr = await js.cmd({ cmd: 'optimistic', id: 'small', n, etype: 'books', eid: side.j.book, attr: 'title' }, 'optimistic');
	return { dt, jt: jr.times };
}

// b. a refresh arriving upstream until the subscriber has it
if (want('b')) {
	log('b: upstream refresh');
	const { dt, jt } = await profiled('b', () => measureRefresh(prog, subSmall, QUICK ? 10 : 40));
	row('b-p50', 'server write → subscriber has it, p50', pct(dt, 50), pct(jt, 50), 'ms');
	row('b-p95', 'same, p95', pct(dt, 95), pct(jt, 95), 'ms');
}

// c. optimistic latency: a local write until the writer's own subscription shows it
if (want('c')) {
	log('c: optimistic');
	const { dt, jt } = await profiled('c', () => measureOptimistic(prog, subSmall, QUICK ? 20 : 200));
	row('c-p50', 'local write → own subscription shows it, p50', pct(dt, 50), pct(jt, 50), 'ms');
	row('c-p95', 'same, p95', pct(dt, 95), pct(jt, 95), 'ms');
}

// d. acknowledged durable writes per second
const W = Number(opt('--window', 32));
async function daemonWrites(nprog, per) {
	const progs = await Promise.all(Array.from({ length: nprog }, () => new Program(daemon.socket).connect()));
	await Promise.all(progs.map((p) => p.init()));
	const okAll = [];
	const t0 = now();
	await Promise.all(progs.map(async (p) => {
		let sent = 0;
		let done = 0;
		await new Promise((resolve, reject) => {
			const pump = () => {
				while (sent < per && sent - done < W) {
					const ceid = p.send({ op: 'transact', ops: [['update', 'benchw', randomUUID(), { n: sent, w: 'd' }]] });
					sent++;
					okAll.push(p.wait(ceid, (m) => m.op === 'transact-ok', 'transact-ok'));
					p.wait(ceid, (m) => m.op === 'transact-queued', 'transact').then(() => {
						done++;
						if (done === per) resolve();
						else pump();
					}, reject);
				}
			};
			pump();
		});
	}));
	const el = ms(t0, now());
	await Promise.all(okAll);	// let the upstream side drain before the next measurement
	for (const p of progs) p.close();
	return (nprog * per) / (el / 1000);
}
const idsFor = (n) => Array.from({ length: n }, () => randomUUID());
// A fresh JS client holding the same 100 subscriptions as the daemon.
async function freshJS() {
	const c = await startJS(mock);
	await c.cmd({ cmd: 'subscribe', qs: userSubs }, 'subscribed');
	await c.cmd({ cmd: 'writes', n: 10, conc: 1, etype: 'benchw', ids: idsFor(10) }, 'writes');
	return c;
}
if (want('d')) {
	log('d: writes');
	// New attrs on the first write of each side, outside the measurement.
	await daemonWrites(1, 10);
	await js.cmd({ cmd: 'writes', n: 10, conc: 1, etype: 'benchw', ids: idsFor(10) }, 'writes');
	const n1 = QUICK ? 300 : 3000;
	const n16 = QUICK ? 100 : 1500;
	const d1 = await profiled('d1', () => daemonWrites(1, n1));
	const d16 = await profiled('d16', () => daemonWrites(16, n16));
	// A fresh JS client for each measurement: it keeps confirmed writes in its queue, which slows later ones.
	const jsWrites = async (n, conc) => {
		const c = await freshJS();
		const r = await c.cmd({ cmd: 'writes', n, conc, etype: 'benchw', ids: idsFor(n) }, 'writes');
		await c.exit();
		return r;
	};
	// A rate: the JS client, slower by two orders of magnitude, writes fewer so the run ends.
	const jn1 = QUICK ? 50 : 300, jn16 = QUICK ? 64 : 480;
	const j1r = DAEMON_ONLY ? null : await jsWrites(jn1, 1);
	const j16r = DAEMON_ONLY ? null : await jsWrites(jn16, 16);
	const j1 = j1r && jn1 / (j1r.ms / 1000);
	const j16 = j16r && jn16 / (j16r.ms / 1000);
	row('d-1', `acknowledged writes/s, 1 program (window ${W})`, d1, j1, 'writes/s');
	row('d-16', `acknowledged writes/s, 16 programs (window ${W} each; JS: 16 concurrent)`, d16, j16, 'writes/s');
}

// e. writes queued offline, replayed after reconnect until all are confirmed
// With watch ({ p, ceid }: a subscription of another program), also the time from the
// reconnect to its first result from the server: what replaying first delays.
async function daemonReplay(n, watch = null) {
	const p = await new Program(daemon.socket).connect();
	await p.init();
	await mock.ctl('refuse', { ms: -1, drop: true });
	for (;;) {
		const st = await p.request({ op: 'status' }, ['status']);
		if (st.status.state !== 'authenticated') break;
		await sleep(10);
	}
	const oks = [];
	const queued = [];
	const tq = now();
	for (let k = 0; k < n; k++) {
		const ceid = p.send({ op: 'transact', ops: [['update', 'benchw', randomUUID(), { n: k, w: 'd-offline' }]] });
		queued.push(p.wait(ceid, (m) => m.op === 'transact-queued', 'transact'));
		oks.push(p.wait(ceid, (m) => m.op === 'transact-ok', 'transact-ok'));
		if (k % 256 === 255) await queued[k];
	}
	await Promise.all(queued);
	log(`e: instantd queued ${n} in ${ms(tq, now()).toFixed(0)} ms`);
	let freshMs = null;
	const fresh = watch && watch.p.wait(watch.ceid, (m) => m['from-cache'] === false, 'fresh result')
		.then(() => { freshMs = ms(t0, now()); });
	const t0 = now();
	const dms = await profiled('e', async () => {
		await mock.ctl('refuse', { ms: 0 });
		await Promise.all(oks);
		return ms(t0, now());
	});
	if (fresh) await fresh;
	p.close();
	return watch ? { dms, freshMs } : dms;
}
const replayWhat = `${N_REPLAY.toLocaleString('en-US')} queued writes: reconnect → all confirmed`;
if (want('e')) {
	log(`e: replay of ${N_REPLAY} with the 100 subscriptions and the small and large queries open`);
	const { dms, freshMs } = await daemonReplay(N_REPLAY, { p: prog, ceid: subSmall });
	let jr = null;
	if (!DAEMON_ONLY) {
		const c = await freshJS();
		await c.cmd({ cmd: 'subscribe', qs: [['small', smallQ('j')], ['large', LARGE_Q]] }, 'subscribed');
		await c.cmd({ cmd: 'offline' }, 'offline');
		const jq = await c.cmd({ cmd: 'queue', etype: 'benchw', ids: idsFor(N_REPLAY) }, 'queued');
		log(`e: JS queued ${N_REPLAY} in ${jq.ms.toFixed(0)} ms (${jq.statuses})`);
		jr = await c.cmd({ cmd: 'replay', n: N_REPLAY, limitMs: JS_REPLAY_LIMIT_MS }, 'replayed');
		log(`e: JS confirmed ${jr.synced} and lost ${jr.lost} of ${N_REPLAY} (its own timeout)`);
		meta.jsLost = jr.lost;
		await c.exit();
	}
	row('e', `${replayWhat}, 102 subscriptions open`, dms, jr?.ms, 'ms');
	// The daemon replays before it subscribes again (daemon/session.c handle_init_ok): this is what that costs.
	row('e-fresh', 'in e, reconnect → the small query\'s first result from the server', freshMs, null, 'ms');
}

// From here on no subscription is open except those a phase opens itself.
bg.close();
prog.close();
await js.cmd({ cmd: 'unsubscribe' }, 'unsubscribed');
if (want('e')) {
	log(`e-nosubs: replay of ${N_REPLAY} with no subscription open`);
	row('e-nosubs', `${replayWhat}, no subscription open`, await daemonReplay(N_REPLAY), null, 'ms');
}

// h. c and b for the small query while 1, 10, 100 and 1,000 unrelated subscriptions are open
// (one other shelf each, without its books), the same on both sides. They read no attr that b
// and c change, so the mock recomputes none of them for a refresh: what grows is the client's.
if (want('h')) {
	const others = data.bookshelves.filter((b) => b !== side.d.shelf && b !== side.j.shelf);
	prog = await new Program(daemon.socket).connect();
	await prog.init();
	subSmall = await prog.subscribe(smallQ('d'));
	await js.cmd({ cmd: 'subscribe', qs: [['small', smallQ('j')]] }, 'subscribed');
	const hp = await new Program(daemon.socket).connect();
	await hp.init();
	let open = 0;
	for (const n of [1, 10, 100, 1000]) {
		const add = others.slice(open, n).map((b, i) => [`h${open + i}`, { bookshelves: { $: { where: { id: b } } } }]);
		await Promise.all(add.map(([, q]) => hp.subscribe(q)));
		await js.cmd({ cmd: 'subscribe', qs: add }, 'subscribed');
		open = n;
		log(`h: ${n} unrelated subscriptions open`);
		const c = await profiled(`h-c-${n}`, () => measureOptimistic(prog, subSmall, QUICK ? 10 : 50));
		row(`h-c-${n}`, `c with ${n} unrelated subscription${n === 1 ? "" : "s"} open, p50`, pct(c.dt, 50), pct(c.jt, 50), 'ms');
		const b = await profiled(`h-b-${n}`, () => measureRefresh(prog, subSmall, QUICK ? 5 : 20));
		row(`h-b-${n}`, `b with ${n} unrelated subscription${n === 1 ? "" : "s"} open, p50`, pct(b.dt, 50), pct(b.jt, 50), 'ms');
	}
	hp.close();
	prog.close();
	await js.cmd({ cmd: 'unsubscribe' }, 'unsubscribed');
}

// i. the unmodified JS client through instantd's Instant endpoint (websocketURI on instant.sock)
if (want('i')) {
	log('i: the JS client through the Instant endpoint');
	const via = { url: `ws+unix://${path.join(path.dirname(daemon.socket), 'instant.sock')}:/runtime/session`,
		apiURI: mock.apiURI };
	const ji = await startJS(via);
	// Both clients on their own id: with --only the earlier phases did not subscribe the direct one.
	await ji.cmd({ cmd: 'subscribe', qs: [['ismall', smallQ('j')]] }, 'subscribed');
	await js.cmd({ cmd: 'subscribe', qs: [['ismall', smallQ('j')]] }, 'subscribed');
	// i-b: a server write until the client sees it, through instantd and straight from the mock, alternating.
	const it = [];
	const jt = [];
	for (let i = 0; i < (QUICK ? 10 : 40); i++) {
		for (const [c, out] of [[ji, it], [js, jt]]) {
			const mk = `upstream-i-${i}-${randomUUID()}`;
			await c.cmd({ cmd: 'expect', id: 'ismall', marker: mk }, 'expecting');
			const seen = c.waitEv('seen');
			const t0 = now();
			await mock.ctl('transact', { 'tx-steps': [['add-triple', side.j.book, BOOK_TITLE, mk]] });
			out.push(ms(t0, BigInt((await seen).t)));
		}
	}
	row('i-b-p50', 'server write → JS client sees it, p50 (instantd: through the Instant endpoint; JS: direct)',
		pct(it, 50), pct(jt, 50), 'ms');
	await ji.exit();
	// i-cold: a new JS process while the server is unreachable, until its first result: through
	// instantd from the mirror; straight to the server it never gets one.
	await mock.ctl('refuse', { ms: -1, drop: true });
	const ct = [];
	for (let i = 0; i < (QUICK ? 3 : 7); i++) {
		const t0 = now();
		const c = await startJS(via);
		await c.cmd({ cmd: 'subscribe', qs: [['small', smallQ('j')]] }, 'subscribed');
		ct.push(ms(t0, now()));
		await c.exit();
	}
	await mock.ctl('refuse', { ms: 0 });
	row('i-cold', 'new JS process, server unreachable → first result, p50 (through instantd; direct: never)',
		pct(ct, 50), null, 'ms');
}

// g. cold start: existing state, server refusing, until the first cached result
if (want('g')) {
	log('g: cold start');
	await daemon.stop();
	await mock.ctl('refuse', { ms: -1, drop: true });
	const n = QUICK ? 3 : 7;
	const dt = [];
	for (let i = 0; i < n; i++) {
		const t0 = now();
		const d = await startDaemon(ddir, mock.url);
		const p = await new Program(d.socket).connect();
		await p.init();
		const ceid = `cold-${i}`;
		const r = p.wait(ceid, (m) => m.op === 'add-query-ok', 'cold add-query');
		p.send({ op: 'add-query', q: smallQ('d'), 'client-event-id': ceid });
		const m = await r;
		dt.push(ms(t0, now()));
		if (m['from-cache'] !== true) throw new Error('cold start: the first result was not from the cache');
		p.close();
		await d.stop();
	}
	await mock.ctl('refuse', { ms: 0 });
	// The JS client keeps no cache across processes: its figure is a new Node process until its first result from the server.
	const jt = [];
	for (let i = 0; i < n; i++) {
		const t0 = now();
		const c = await startJS(mock);
		await c.cmd({ cmd: 'subscribe', qs: [['small', smallQ('j')]] }, 'subscribed');
		jt.push(ms(t0, now()));
		await c.exit();
	}
	row('g', 'cold start → first result, p50 (JS: from the server)', pct(dt, 50), pct(jt, 50), 'ms');
	daemon = await startDaemon(ddir, mock.url);
}

await js.exit();
await daemon.stop();
await mock.stop();

// ---- report ----

const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m) || [])[1] || 'unknown';
const memKb = Number((fs.readFileSync('/proc/meminfo', 'utf8').match(/^MemTotal:\s+(\d+)/m) || [])[1]);
const machine = `${os.cpus().length} CPUs (nproc), ${cpu}, ${(memKb / 1048576).toFixed(1)} GiB memory, ${os.type()} ${os.release()}, Node ${process.version}; ` +
	`1-minute load average ${loadAtStart.toFixed(2)} at the start and ${os.loadavg()[0].toFixed(2)} at the end (other work on the machine makes the figures noisier)`;
const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const judged = rows.map((r) => ({ ...r, ratio: r.d != null && r.j ? r.d / r.j : null, ...judge(r) }));
const head = ['id', 'measure', 'instantd', '@instantdb/core', 'ratio', 'unit', 'target', 'met'];
const body = judged.map((r) => [r.key, r.what, fmt(r.d), fmt(r.j), fmt(r.ratio, 3), r.unit, r.desc,
	r.met == null ? '—' : r.met ? 'yes' : '**no**']);
const table = [head, head.map(() => '---'), ...body].map((c) => `| ${c.join(' | ')} |`).join('\n');
const met = judged.filter((r) => r.met === true).map((r) => r.key);
const missed = judged.filter((r) => r.met === false).map((r) => r.key);
console.log(`\nMachine: ${machine}\nDate: ${date}\nData: zeneca × ${COPIES} = ${meta.triples} triples\n`);
console.log(table);
console.log(`\ntargets met: ${met.join(', ') || 'none'}; not met: ${missed.join(', ') || 'none'}`);
if (JSON_OUT) {
	const out = { date, machine, rows: judged.map((r) => ({ id: r.key, instantd: r.d, js: r.j, unit: r.unit,
		target: TARGETS[r.key]?.[0] ?? null, met: r.met })) };
	fs.writeFileSync(JSON_OUT, JSON.stringify(out, null, 1) + '\n');
	log(`wrote ${JSON_OUT}`);
}
if (RESULTS) {
	const md = `# Benchmarks: instantd side by side with @instantdb/core 1.0.67

Generated by \`make bench\` (tests/bench/bench.mjs); regenerated on every run, with the same figures in
\`results.json\` (\`{"date", "machine", "rows": [{"id", "instantd", "js", "unit", "target", "met"}]}\`).

- Date: ${date}
- Machine: ${machine}
- Run: ${QUICK ? '`--quick` (fewer samples and writes per phase)' : 'full'}, ${N_REPLAY.toLocaleString('en-US')} writes replayed in e
- Data: the zeneca data set × ${COPIES} (seeded generator, tests/bench/gen.mjs): ${meta.triples} triples,
  ${data.users.length} users, ${data.bookshelves.length} shelves, ${data.books.length} books, served by the mock
  server (tests/mock) to both clients in the same run.
- instantd: the binary of this build, talking to a local program (Node, newline-delimited JSON on the socket).
  @instantdb/core: the real client in its own Node process with in-memory storage.
- Both sides hold the same subscriptions in every phase: from f to e the 100 user subscriptions of f
  (plus, from a on, the small and large queries of a); e-nosubs and h start from none.

${table}

Targets met: ${met.join(', ') || 'none'}; not met: ${missed.join(', ') || 'none'} (tests/bench/PROFILE.md says where the time goes).

How each figure is taken (times from CLOCK_MONOTONIC; ratio = instantd / JS, so below 1 is better for
times and memory, above 1 for throughput):

- a: small = one shelf with its books (\`{bookshelves: {$: {where: {id}}, books: {}}}\`), large = every user with
  their shelves (\`{users: {bookshelves: {}}}\`), both subscribed first. instantd: \`query-once\` with
  \`cache-first\` over the socket, measured by the program (request to reply, JSON parsed). JS: the client's own
  evaluation of the subscribed query on its store with pending writes applied (\`Reactor.dataForQuery\` with its
  memo cleared), measured inside its process. JSON size is instantd's reply.
- floor-echo: the program of a-small sends the same request to tests/bench/floor-echo.c, which answers each line
  with the bytes instantd answered it with, over a Unix socket: the least a local daemon can cost.
- b: the mock's control \`transact\` changes a book title in the subscribed small query; from the control request
  until the program has the \`refresh-ok\` (instantd) or the \`subscribeQuery\` callback sees it (JS). Each side
  has its own shelf so the mock computes the same amount for both.
- c: instantd: \`transact\` until the writer's own subscription pushes the new title (this includes the durable
  commit before the optimistic push). JS: \`db.transact\` until its \`subscribeQuery\` callback shows it.
  Each write waits for its server confirmation before the next.
- d: instantd: each program keeps ${W} transacts in flight and counts \`transact-queued\` replies (durable:
  after the outbox commit); new \`benchw\` entities that no open query reads. JS: \`db.transact\` promises
  resolved (the JS client's only acknowledgement, the server's \`transact-ok\`; not durable), 1 and 16
  concurrent writers in one fresh client holding the same 100 subscriptions (300 and 480 writes: a rate,
  and the JS client is far slower).
- e: instantd: writes queued while the mock refuses connections (acknowledged), then the refusal is lifted;
  until every write's \`transact-ok\` reached the program (daemon backoff capped at 100 ms). JS: a fresh client
  with the same subscriptions, offline through its network listener, the same number of \`db.transact\` calls,
  back online; until every write got the server's \`transact-ok\` or was given up by the client (its own
  timeout: ${meta.jsLost ?? 0} of them in this run, lost, where instantd lost none). e-nosubs: the daemon with
  no subscription.
- f: VmRSS/VmHWM from /proc of the daemon and of the Node process running the JS client, after both have
  the results of the same 100 subscriptions (one user each with shelves and books).
- g: instantd started on its existing state directory while the mock refuses connections, until a program's
  \`add-query\` gets its \`from-cache\` result (process start, socket, init, add-query). JS has no persistent
  cache in Node: its figure is a new Node process until its first result from the (reachable) server.
- i: the unmodified JS client with \`websocketURI\` on instantd's Instant endpoint (\`ws+unix:\` on
  instant.sock). i-b-p50: as b, a server write until its \`subscribeQuery\` callback sees it, alternated with
  the JS client connected straight to the mock (the \`js\` column) on the same query. i-cold: a new Node
  process while the mock refuses connections, until its first result (from instantd's mirror); straight to
  the server it never gets one (\`js\` null).
- h: c and b for the small query (fewer samples) while 1, 10, 100 and 1,000 other subscriptions are open on
  both sides, one other shelf each without its books: they read no attr that b and c change, so the mock
  recomputes none of them (it invalidates by attr) and what grows with them is the client's own work.
`;
	fs.writeFileSync(RESULTS, md);
	log(`wrote ${RESULTS}`);
}
