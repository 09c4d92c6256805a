// A broken or hostile server: malformed frames, unknown ops, wrong types in
// known fields, array frames, results for queries never asked, duplicate and
// late replies, a 50 MB result, endless refresh-ok. The daemon stays up, its
// mirror is not corrupted (after a restart with the server gone the cached
// result still answers, and SQLite's integrity_check says ok), and the outbox
// is intact: writes made meanwhile land exactly once, and a write queued for
// an unreachable server is untouched.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { startMock, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, check, scenario, sleep, waitFor } from '../e2e/lib.mjs';
import { memoryOf } from './lib.mjs';

const APP = DEFAULT_APP_ID;
const Q = { goals: {} };
const HUGE = Number(process.env.HOSTILE_HUGE_BYTES || 50 << 20);
const mock = await startMock(['--port', '0']);
const offline = await startMock(['--port', '0']);
await offline.ctl('refuse', { ms: -1 });
const daemon = new Daemon({ server: mock.url });

function integrity(dir) {
	const dbs = fs.readdirSync(dir).filter((f) => f.endsWith('.sqlite'));
	check(dbs.length >= 1, `profile databases in ${dir}: ${fs.readdirSync(dir)}`);
	for (const f of dbs) {
		const out = execFileSync('sqlite3', [path.join(dir, f), 'PRAGMA integrity_check;'], { encoding: 'utf8' }).trim();
		check(out === 'ok', `integrity_check of ${f}: ${out.slice(0, 300)}`);
	}
	return dbs.length;
}

let peak = 0;
const goals = new Map();	// id -> title, every write made through the hostile server

await scenario('a hostile server', async () => {
	await daemon.start();
	const a = await new Client(daemon.socket).connect();
	await a.init(APP, { 'client-name': 'A' });
	const sub = a.send({ op: 'add-query', q: Q });
	await a.next((m) => m['client-event-id'] === sub && m.op === 'add-query-ok', 'the first result');

	// A write queued for a server that cannot be reached.
	const q = await new Client(daemon.socket).connect();
	await q.init(APP, { server: offline.url });
	const qr = await q.request({ op: 'transact', ops: [['update', 'notes', randomUUID(), { text: 'held' }]] },
		(m) => m.op === 'transact-queued' || m.op === 'error');
	check(qr.op === 'transact-queued', `queued: ${JSON.stringify(qr)}`);
	const held = (await q.request({ op: 'list-mutations' })).mutations;

	const write = async (title) => {
		const g = randomUUID();
		goals.set(g, title);
		const r = await a.request({ op: 'transact', ops: [['update', 'goals', g, { title }]] },
			(m) => m.op === 'transact-queued' || m.op === 'error');
		check(r.op === 'transact-queued', `write ${title} queued: ${JSON.stringify(r)}`);
		return r['mutation-id'];
	};
	const alive = async (what) => {
		check(daemon.proc.exitCode === null && daemon.proc.signalCode === null, `the daemon is up after ${what}`);
		const st = await a.request({ op: 'status' });
		check(st.op === 'status', `status answers after ${what}`);
		peak = Math.max(peak, memoryOf(daemon.proc.pid).hwm);
	};
	await write('before');

	// Each hostile mode in turn, with a write and a new query while it is on.
	// A query whose answer the server garbles is answered once a good result
	// comes (after the reset below, at the latest), so it is checked there.
	const asked = [];
	const modes = [
		{ mode: 'malformed' }, { mode: 'unknown-op' }, { mode: 'wrong-types' }, { mode: 'array-frames' },
		{ mode: 'duplicate-replies' }, { mode: 'late-replies', ms: 50 }, { mode: 'refresh-before-ok' },
		{ mode: 'processed-lag', by: 1 },
	];
	for (const m of modes) {
		await mock.ctl('hostile', m);
		await write(m.mode);
		asked.push([m.mode, a.send({ op: 'add-query', q: { goals: { $: { where: { title: m.mode } } } } })]);
		await sleep(300);
		await mock.ctl('hostile', { mode: 'off' });
		await alive(m.mode);
	}

	// Frames the daemon never asked for, or that make no sense.
	const junk = [
		'', 'null', '42', '"a string"', '[]', '[1,2,3]', '[[[]]]', '{}', '{"op":5}', '{"op":null}', '{"op":"init-ok"}',
		'['.repeat(100000) + ']'.repeat(100000), '{"op":"' + 'x'.repeat(1 << 20) + '"}',
		{ op: 'add-query-ok', q: { never: {} }, 'client-event-id': 'never-asked', result: [{ data: { 'datalog-result': { 'join-rows': [[['e', 'a', 'v']]] } } }] },
		{ op: 'add-query-ok', q: Q, 'client-event-id': 'never-asked', result: { not: 'an array' }, 'processed-tx-id': 'x' },
		{ op: 'add-query-ok', q: Q, result: [{ data: { 'datalog-result': { 'join-rows': [[[1, 2]], 'x', null] } }, 'child-nodes': 7 }] },
		{ op: 'refresh-ok', computations: [{ 'instaql-query': { never: {} }, 'instaql-result': [] }], 'processed-tx-id': 1 },
		{ op: 'refresh-ok', computations: 'nope', attrs: { not: 'a list' } },
		{ op: 'refresh-ok', computations: [{ 'instaql-query': Q, 'instaql-result': 5 }], attrs: [1, 'x', null, { id: 7 }] },
		{ op: 'transact-ok', 'client-event-id': 'never-sent', 'tx-id': 99999 },
		{ op: 'transact-ok', 'client-event-id': 12, 'tx-id': -1 },
		{ op: 'transact-ok', 'client-event-id': 'never-sent', 'tx-id': 1e300 },
		{ op: 'add-query-ok', q: Q, 'processed-tx-id': 1e300, result: [] },
		{ op: 'refresh-ok', 'processed-tx-id': -1e300, computations: [{ 'instaql-query': Q, 'instaql-result': [] }] },
		{ op: 'error', 'client-event-id': 'never-sent', type: 'permission-denied', message: 'no', status: 400 },
		{ op: 'error', 'original-event': { op: 'transact', 'client-event-id': 'never-sent' }, status: 'x' },
		{ op: 'remove-query-ok', q: { never: {} } }, { op: 'join-room-ok', 'room-id': 'never' },
		{ op: 'patch-presence', 'room-id': 'never', edits: [[[1e300], '+', 1]] },
		{ op: 'refresh-presence', 'room-id': 'never', data: 5 },
		{ op: 'app-status-changed', 'app-status': 'bogus' },
		{ op: 'init-ok', 'session-id': 42, attrs: 'x', auth: 7 },
	];
	for (const frame of junk) await mock.ctl('send', { frame });
	await alive('frames never asked for');

	// A 50 MB result, on a new query's add-query-ok.
	await mock.ctl('hostile', { mode: 'huge-result', bytes: HUGE, count: 1 });
	const big = a.send({ op: 'add-query', q: { goals: { $: { where: { title: 'before' } } } } });
	await a.next((x) => x['client-event-id'] === big && (x.op === 'add-query-ok' || x.op === 'error'), 'the reply to the huge result', 120000);
	await mock.ctl('hostile', { mode: 'off' });
	await alive('a 50 MB result');

	// Endless refresh-ok for a while, with writes.
	await mock.ctl('hostile', { mode: 'endless-refresh', 'interval-ms': 20 });
	for (let i = 0; i < 5; i++) {
		await write(`endless ${i}`);
		await sleep(200);
	}
	await mock.ctl('hostile', { mode: 'off' });
	await alive('endless refresh-ok');

	// Normal service again: every write lands exactly once, the outbox drains.
	await mock.ctl('reset', {});
	await mock.ctl('drop', {});
	await write('after');
	await waitFor(async () => (await a.request({ op: 'list-mutations' })).mutations.length === 0,
		'the outbox to drain', 60000, 200);
	for (const [mode, ceid] of asked) {
		const r = await a.next((x) => x['client-event-id'] === ceid && (x.op === 'add-query-ok' || x.op === 'error'),
			`the query asked under ${mode}`, 30000);
		check(r.op === 'add-query-ok' && r.data.goals.length === 1 && r.data.goals[0].title === mode,
			`the query asked under ${mode} has its result: ${JSON.stringify(r).slice(0, 300)}`);
	}
	const dump = await mock.ctl('dump', {});
	for (const [g, title] of goals)
		check(dump.triples.some((t) => t[0] === g && t[2] === title), `the write ${title} is on the server`);
	const final = await a.next((m) => m['client-event-id'] === sub && (m.op === 'refresh-ok' || m.op === 'add-query-ok') &&
		m['has-pending-writes'] === false && [...goals.keys()].every((g) => m.data.goals.some((x) => x.id === g)),
	'the subscription showing every write', 30000);
	check(final.data.goals.length === goals.size, `exactly the written goals (${final.data.goals.length} of ${goals.size})`);
	const after = (await q.request({ op: 'list-mutations' })).mutations;
	check(JSON.stringify(after) === JSON.stringify(held) || (after.length === 1 &&
		after[0]['mutation-id'] === held[0]['mutation-id'] && after[0].state === 'pending' &&
		JSON.stringify(after[0]['tx-steps']) === JSON.stringify(held[0]['tx-steps'])), 'the held write is intact');
	a.close();
	q.close();
	await sleep(500);	// the mirror is written behind (at most every 200 ms)

	// Restart with the server gone: the mirror still answers, and is sound.
	peak = Math.max(peak, memoryOf(daemon.proc.pid).hwm);
	check(await daemon.stop() === 0, 'a clean exit');
	const n = integrity(daemon.stateDir);
	await mock.ctl('refuse', { ms: -1, drop: true });
	await daemon.start();
	const b = await new Client(daemon.socket).connect();
	await b.init(APP);
	const s3 = b.send({ op: 'add-query', q: Q });
	const cached = await b.next((m) => m['client-event-id'] === s3 && m.op === 'add-query-ok', 'the cached result');
	check(cached['from-cache'] === true, 'served from the mirror');
	check([...goals.keys()].every((g) => cached.data.goals.some((x) => x.id === g && x.title === goals.get(g))),
		'the mirror holds every write');
	const qb = await new Client(daemon.socket).connect();
	await qb.init(APP, { server: offline.url });
	const heldAgain = (await qb.request({ op: 'list-mutations' })).mutations;
	check(heldAgain.length === 1 && heldAgain[0]['mutation-id'] === held[0]['mutation-id'] &&
		JSON.stringify(heldAgain[0]['tx-steps']) === JSON.stringify(held[0]['tx-steps']), 'the held write survived the restart');
	b.close();
	qb.close();
	check(await daemon.stop() === 0, 'a clean exit again');
	integrity(daemon.stateDir);
	console.log(`# ${n} profile databases pass integrity_check; daemon peak RSS (VmHWM) ${(peak / 1024).toFixed(1)} MB`);
}, { daemons: [daemon], timeoutMs: 170000 });

await daemon.stop();
await mock.stop();
await offline.stop();
