// Soak: many short-lived programs connect, init, subscribe, write and disconnect (cleanly,
// abruptly, or in the middle of a request) while the server is slow, drops connections and
// stops answering transacts long enough for the daemon's transact watch to reconnect.
// Afterwards the daemon is alive, every acknowledged write is on the server, and its open
// fds and resident memory have not grown since the warm-up.
// SOAK_PROGRAMS (default 300) programs are started evenly over SOAK_SECONDS (default 35; a
// quarter of each is the warm-up), at most SOAK_CONCURRENCY (default 24) at once; every wait
// of a program is bounded, so the run is too. SOAK_SEED varies the draw; `make soak` runs the
// long form.
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { startMock, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, FAST_CONFIG, INSTANTD, check, scenario, sleep, waitFor } from './lib.mjs';

const PROGRAMS = Number(process.env.SOAK_PROGRAMS || 300);
const SECONDS = Number(process.env.SOAK_SECONDS || 35);
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY || 24);
const WARMUP = Math.max(40, Math.floor(PROGRAMS / 4));
const WARMUP_SECONDS = Math.max(5, SECONDS / 4);
const TRANSACT_TIMEOUT_S = 2;
const FD_SLACK = 8;		// the upstream socket may be between connections at either reading
const RSS_GROWTH = 1.25;
let seed = Number(process.env.SOAK_SEED || 4242);
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const pick = (n) => Math.floor(rand() * n);
const APP = DEFAULT_APP_ID;

const mock = await startMock(['--port', '0']);
// log-level error, raised twice by lib.mjs's -v -v: notices (reconnects and why), no lws debug.
// A short connect-timeout: an upgrade the server leaves hanging is given up within the run.
const daemon = new Daemon({ server: mock.url, config: `${FAST_CONFIG}transact-timeout = ${TRANSACT_TIMEOUT_S}s\n` +
	'connect-timeout = 3s\nlog-level = error\n' });

// A daemon built with AddressSanitizer keeps freed memory in quarantine, so its RSS says
// nothing about leaks (LeakSanitizer checks those at exit): the RSS bound is then skipped.
function sanitized(pid) {
	const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
	return /lib[at]san/.test(maps) || fs.readFileSync(INSTANTD).includes('__asan_init');
}

function usage(pid) {
	const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
	return { rssKiB: Number(/^VmRSS:\s+(\d+)/m.exec(status)[1]), fds: fs.readdirSync(`/proc/${pid}/fd`).length };
}

const acked = new Map();	// entity id -> program index, for every write that got transact-queued
const counts = { programs: 0, clean: 0, abrupt: 0, afterTransact: 0, halfLine: 0, midQuery: 0, beforeInit: 0,
	writes: 0, subscribed: 0, replyTimeouts: 0 };

function alive() {
	if (daemon.proc.exitCode !== null || daemon.proc.signalCode !== null)
		throw new Error(`the daemon died (${daemon.proc.exitCode ?? daemon.proc.signalCode})`);
}

// A reply the program waits for, or null when none came in time (the server may be
// stalled on purpose, and a program gives up on a subscription as a real one would).
async function reply(c, id, ops, ms) {
	try {
		return await c.next((m) => m['client-event-id'] === id && ops.includes(m.op), ops.join('/'), ms);
	} catch (e) {
		if (c.closed)
			throw e;
		counts.replyTimeouts++;
		return null;
	}
}

// One program's life; how it ends is drawn at random.
async function program(i) {
	counts.programs++;
	const c = await new Client(daemon.socket).connect();
	const kind = rand();
	if (kind < 0.05) {
		counts.beforeInit++;
		c.close();
		return;
	}
	const r = await c.init(APP, { 'client-name': `soak${i}` });
	check(r.op === 'init-ok', `init-ok: ${JSON.stringify(r)}`);
	const qid = c.send({ op: 'add-query', q: { soak: { $: { where: { program: i } } } } });
	if (kind < 0.12) {
		counts.midQuery++;
		c.close();
		return;
	}
	if (kind < 0.2) {
		counts.halfLine++;
		const line = JSON.stringify({ op: 'transact', 'client-event-id': randomUUID(),
			ops: [['update', 'soak', randomUUID(), { program: i, n: -1 }]] });
		c.sock.write(line.slice(0, 1 + pick(line.length - 1)));
		await sleep(pick(3));
		c.close();
		return;
	}
	if (await reply(c, qid, ['add-query-ok', 'add-query-exists', 'error'], 1000 + pick(2000)))
		counts.subscribed++;
	const writes = 1 + pick(3);
	for (let k = 0; k < writes; k++) {
		await sleep(pick(200));
		const id = randomUUID();
		const ceid = c.send({ op: 'transact', ops: [['update', 'soak', id, { program: i, n: k }]] });
		counts.writes++;
		if (kind < 0.3 && k === writes - 1) {
			counts.afterTransact++;	// gone right after sending: queued or not, never acknowledged to it
			c.close();
			return;
		}
		const m = await reply(c, ceid, ['transact-queued', 'error'], 20000);
		check(m !== null, `program ${i}: the daemon acknowledges a local write`);
		check(m.op === 'transact-queued', `program ${i}: write queued: ${JSON.stringify(m)}`);
		acked.set(id, i);
	}
	if (kind < 0.65) {
		counts.abrupt++;
		c.close();
	} else {
		counts.clean++;
		c.sock.end();
		await new Promise((res) => (c.closed ? res() : c.sock.once('close', res)));
	}
}

// Runs programs from..to-1 spread evenly over ms milliseconds, at most CONCURRENCY at once.
async function load(from, to, ms) {
	const start = Date.now(), gap = ms / Math.max(1, to - from), running = new Set();
	for (let i = from; i < to; i++) {
		alive();
		const due = start + (i - from) * gap;
		if (Date.now() < due) await sleep(due - Date.now());
		while (running.size >= CONCURRENCY) await Promise.race(running);
		const p = program(i).finally(() => running.delete(p));
		running.add(p);
	}
	await Promise.all(running);
	return to;
}

// The server misbehaves in turns until stop() is called: slow, dropping, not answering
// transacts (long enough for the daemon's transact watch), refusing; then well for a moment.
function faults() {
	let stop = false, turn = 0;
	const seen = { slow: 0, drop: 0, stall: 0, refuse: 0 };
	const done = (async () => {
		while (!stop) {
			switch (turn++ % 4) {
			case 0:
				seen.slow++;
				await mock.ctl('delay', { ms: 50 + pick(400) });
				break;
			case 1:
				seen.drop++;
				await mock.ctl('drop', {});
				break;
			case 2:
				seen.stall++;
				await mock.ctl('delay', { ms: (TRANSACT_TIMEOUT_S + 2) * 1000, ops: ['transact-ok'] });
				break;
			default:
				seen.refuse++;
				await mock.ctl('refuse', { ms: 200 + pick(800), mode: ['http503', 'reset', 'hang'][pick(3)] });
			}
			const hold = Date.now() + (turn % 4 === 3 ? TRANSACT_TIMEOUT_S * 1000 + 1500 : 500 + pick(1500));
			while (!stop && Date.now() < hold) await sleep(50);
			await mock.ctl('reset', {});
			await sleep(200 + pick(500));
		}
	})();
	return { seen, async stop() { stop = true; await done; await mock.ctl('reset', {}); } };
}

// Load under faults; a program failing because the daemon died says so.
async function phase(f, loading) {
	try {
		return await loading;
	} catch (e) {
		await Promise.race([new Promise((r) => daemon.proc.once('exit', r)), sleep(2000)]);
		alive();
		throw e;
	} finally {
		await f.stop();
	}
}

async function drained(c) {
	const t = Date.now();
	let last = [];
	try {
		await waitFor(async () => { alive(); return (last = (await c.request({ op: 'list-mutations' })).mutations).length === 0; },
			'the outbox to drain', 120000, 250);
	} catch (e) {
		const st = await c.request({ op: 'status' });
		throw new Error(`${e.message}: ${last.length} left, e.g. ${JSON.stringify(last.slice(0, 2))}, status ${JSON.stringify(st.status)}`);
	}
	console.log(`# soak: the outbox drained in ${((Date.now() - t) / 1000).toFixed(1)} s`);
}

await scenario(`soak: up to ${PROGRAMS} programs for up to ${SECONDS} s against a flaky server`, async () => {
	const t0 = Date.now();
	await daemon.start();
	const pid = daemon.proc.pid;
	const asan = sanitized(pid);

	// Warm-up: the same load and faults, so caches, pools and SQLite pages are in use.
	let f = faults();
	let next = await phase(f, load(0, WARMUP, WARMUP_SECONDS * 1000));
	const ctl = await new Client(daemon.socket).connect();
	await ctl.init(APP);
	await drained(ctl);
	await waitFor(async () => (await ctl.request({ op: 'status' })).status.state === 'authenticated', 'online after warm-up');
	const start = usage(pid);
	console.log(`# soak: after warm-up (${next} programs): RSS ${start.rssKiB} KiB, ${start.fds} fds`);

	f = faults();
	const loadStart = Date.now();
	next = await phase(f, load(next, PROGRAMS, (SECONDS - WARMUP_SECONDS) * 1000));
	const loadSecs = (Date.now() - loadStart) / 1000;
	alive();
	await drained(ctl);

	const dump = await mock.ctl('dump', {});
	const labelOf = new Map(dump.attrs.map((a) => [a.id, a['forward-identity'].slice(1).join('.')]));
	const programOf = new Map();
	for (const [e, a, v] of dump.triples)
		if (labelOf.get(a) === 'soak.program') programOf.set(e, v);
	let onServer = 0;
	for (const [id, i] of acked) {
		check(programOf.get(id) === i, `write ${id} of program ${i} was acknowledged and is on the server`);
		onServer++;
	}

	// Every program is gone; the daemon closes their sockets as it notices.
	let end = usage(pid);
	await waitFor(() => (end = usage(pid)).fds <= start.fds + FD_SLACK, `fds back to ${start.fds} + ${FD_SLACK}`, 20000, 100)
		.catch(() => {});
	alive();
	const st = (await ctl.request({ op: 'status' })).status;
	console.log(`# soak: ${next} programs in ${loadSecs.toFixed(1)} s of load (${((Date.now() - t0) / 1000).toFixed(1)} s in all): ` +
		`${JSON.stringify(counts)}; server faults ${JSON.stringify(f.seen)} in the last phase`);
	const watch = (daemon.log.match(/unanswered for/g) || []).length;
	const hung = (daemon.log.match(/timed out after/g) || []).length;
	console.log(`# soak: ${acked.size} writes acknowledged, ${onServer} on the server; the transact watch fired ${watch} times, ` +
		`the connect timeout ${hung} times; daemon ${st.state}`);
	console.log(`# soak: end: RSS ${end.rssKiB} KiB (${((end.rssKiB / start.rssKiB - 1) * 100).toFixed(1)} % since warm-up), ` +
		`${end.fds} fds (${end.fds - start.fds >= 0 ? '+' : ''}${end.fds - start.fds})`);
	check(end.fds <= start.fds + FD_SLACK, `open fds ${end.fds} <= ${start.fds} + ${FD_SLACK} after warm-up`);
	if (asan)
		console.log('# soak: the daemon runs under AddressSanitizer (quarantine keeps freed memory resident): RSS bound not checked');
	else
		check(end.rssKiB <= start.rssKiB * RSS_GROWTH, `RSS ${end.rssKiB} KiB <= ${RSS_GROWTH} x ${start.rssKiB} KiB after warm-up`);
	check(acked.size > 0 && counts.subscribed > 0, 'programs wrote and subscribed (the test did something)');
	check(watch > 0, 'the server stalled transacts long enough for the transact watch to fire');
	ctl.close();
}, { daemons: [daemon], timeoutMs: (SECONDS * 2 + 300) * 1000 });

const code = await daemon.stop();
if (code !== 0 && process.exitCode !== 1) {
	console.error(`not ok - the daemon exited with ${code} at SIGTERM\n${daemon.log.slice(-5000)}`);
	process.exitCode = 1;
}
await mock.stop();
