// Hostile local programs against the real daemon: random bytes, a 100 MB
// line, JSON nested 100,000 deep, invalid UTF-8, 10,000 connections opened
// and dropped, half-closed sockets, and ops in the wrong order or shape.
// Meanwhile a well-behaved program keeps its subscription and keeps getting
// updates, and a write queued offline stays intact. The daemon stays up; its
// peak RSS is reported and must stay under a generous bound.
import crypto, { randomUUID } from 'node:crypto';
import { startMock, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, check, scenario, sleep, waitFor } from '../e2e/lib.mjs';
import { rawConnect, lines, writeAll, memoryOf, fdCount } from './lib.mjs';

const APP = DEFAULT_APP_ID;
const RSS_LIMIT_KB = 512 * 1024;
const CONNS = Number(process.env.HOSTILE_CONNS || 10000);
const BATCH = 250;

const online = await startMock(['--port', '0']);
const offline = await startMock(['--port', '0']);
await offline.ctl('refuse', { ms: -1 });
const daemon = new Daemon({ server: online.url });

// A fatal framing error: the daemon answers with `type` and hangs up.
async function expectFatal(c, type) {
	await c.closedP;
	const got = lines(c);
	check(got.length >= 1 && got[got.length - 1].op === 'error' && got[got.length - 1].type === type,
		`a ${type} error before the close, got ${c.data.slice(0, 300)}`);
}

await scenario('hostile local clients', async () => {
	await daemon.start();
	const pid = daemon.proc.pid;

	// The well-behaved program: a subscription on the online profile and a writer.
	const good = await new Client(daemon.socket).connect();
	await good.init(APP, { 'client-name': 'good' });
	const sub = good.send({ op: 'add-query', q: { goals: {} } });
	await good.next((m) => m['client-event-id'] === sub && m.op === 'add-query-ok', 'the first result');
	const g = randomUUID();
	let writes = 0, stopWriter = false;
	const writer = (async () => {
		while (!stopWriter) {
			const r = await good.request({ op: 'transact', ops: [['update', 'goals', g, { n: ++writes }]] },
				(m) => m.op === 'transact-queued' || m.op === 'error');
			check(r.op === 'transact-queued', `the good write was queued: ${JSON.stringify(r)}`);
			await sleep(100);
		}
	})();

	// A write queued while its server is unreachable.
	const q = await new Client(daemon.socket).connect();
	await q.init(APP, { server: offline.url, 'client-name': 'queued' });
	const qid = randomUUID();
	const qops = [['update', 'notes', qid, { text: 'written offline', n: 42 }]];
	const qr = await q.request({ op: 'transact', ops: qops }, (m) => m.op === 'transact-queued' || m.op === 'error');
	check(qr.op === 'transact-queued', `the offline write was queued: ${JSON.stringify(qr)}`);
	const before = (await q.request({ op: 'list-mutations' })).mutations;
	check(before.length === 1 && before[0]['mutation-id'] === qr['mutation-id'], 'one queued write');
	const fdsBefore = fdCount(pid);

	// Random bytes.
	{
		const c = await rawConnect(daemon.socket);
		await writeAll(c, crypto.randomBytes(1 << 20));
		await c.closedP;
		check(c.data === '' || lines(c).every((m) => m.op === 'error'), 'random bytes only get errors');
	}
	// A 100 MB line: the daemon stops it at its message limit.
	{
		const c = await rawConnect(daemon.socket);
		const mb = Buffer.alloc(1 << 20, 'a');
		let sent = 0;
		while (sent < 100 && await writeAll(c, mb)) sent++;
		if (!c.closed) await writeAll(c, '\n');
		await expectFatal(c, 'too-large');
		console.log(`# 100 MB line: the daemon hung up after ${sent} MB`);
	}
	// JSON nested 100,000 deep (arrays, then objects).
	{
		let c = await rawConnect(daemon.socket);
		await writeAll(c, '['.repeat(100000) + ']'.repeat(100000) + '\n');
		await expectFatal(c, 'too-deep');
		c = await rawConnect(daemon.socket);
		await writeAll(c, '{"op":"status","x":' + '{"a":'.repeat(100000) + '1' + '}'.repeat(100001) + '\n');
		await expectFatal(c, 'too-deep');
	}
	// Invalid UTF-8: a lone continuation byte, an overlong slash, a surrogate.
	for (const bad of [[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf5, 0x80, 0x80, 0x80]]) {
		const c = await rawConnect(daemon.socket);
		await writeAll(c, Buffer.concat([Buffer.from('{"op":"status","x":"'), Buffer.from(bad), Buffer.from('"}\n')]));
		await expectFatal(c, 'invalid-utf8');
	}
	// Not JSON, and two values on one line.
	for (const bad of ['{"op":"status"', '{"op":"status"} {"op":"status"}', 'nul']) {
		const c = await rawConnect(daemon.socket);
		await writeAll(c, bad + '\n');
		await expectFatal(c, 'invalid-json');
	}
	// 10,000 connections opened and dropped, in batches: two in three ask for
	// status first (so the daemon has accepted them), the rest drop at once,
	// some in the middle of a request. Under such a flood the daemon may refuse
	// some (a full listen backlog, or too-many-connections while it catches up
	// with closed ones): those are counted, not failures.
	let refused = 0, tooMany = 0;
	for (let done = 0; done < CONNS; done += BATCH) {
		const batch = await Promise.all(Array.from({ length: Math.min(BATCH, CONNS - done) },
			() => rawConnect(daemon.socket).catch((e) => ({ refused: e }))));
		const waits = [];
		for (const [i, c] of batch.entries()) {
			if (c.refused) {
				refused++;
				continue;
			}
			if (i % 3 === 0) {
				if (i % 2 === 0) c.sock.write('{"op":"init","app-id":"');
				c.sock.destroy();
			} else {
				c.sock.write('{"op":"status"}\n');
				waits.push(waitFor(() => c.closed || c.data.includes('\n'), 'a status reply', 60000, 10)
					.then(() => {
						if (c.data.includes('too-many-connections')) tooMany++;
						c.sock.destroy();
					}));
			}
		}
		await Promise.all(waits);
		await Promise.all(batch.filter((c) => !c.refused).map((c) => c.closedP));
	}
	console.log(`# ${CONNS} connections opened and dropped (${refused} refused at connect, ${tooMany} told too-many-connections)`);
	await waitFor(async () => {
		const c = await rawConnect(daemon.socket).catch(() => null);
		if (!c) return false;
		c.sock.write('{"op":"status"}\n');
		await waitFor(() => c.closed || c.data.includes('\n'), 'a status reply', 20000, 10);
		c.sock.destroy();
		return lines(c).some((m) => m.op === 'status');
	}, 'the daemon to serve new programs again', 60000, 200);
	// Half-closed sockets: a request then end(); half a request then end();
	// and sockets that send a request but never read.
	{
		const a = await rawConnect(daemon.socket);
		a.sock.end('{"op":"status","client-event-id":"half"}\n');
		const b = await rawConnect(daemon.socket);
		b.sock.end('{"op":"status","client-event-');
		const mute = [];
		for (let i = 0; i < 20; i++) {
			const c = await rawConnect(daemon.socket);
			c.sock.pause();
			c.sock.write('{"op":"status"}\n'.repeat(50));
			mute.push(c);
		}
		await Promise.all([a.closedP, b.closedP]);
		check(lines(a).every((m) => m.op === 'status' || m.op === 'error'), 'a half-closed request gets at most its reply');
		for (const c of mute) c.sock.destroy();
	}
	// Ops in the wrong order, unknown, incomplete or of the wrong types: an
	// error each, and the connection stays usable.
	{
		const c = await new Client(daemon.socket).connect();
		const expectErr = async (msg, type) => {
			const r = await c.request(msg);
			check(r.op === 'error' && r.type === type, `${JSON.stringify(msg).slice(0, 80)} -> ${type}, got ${JSON.stringify(r)}`);
		};
		await expectErr({ op: 'add-query', q: { goals: {} } }, 'not-initialized');
		await expectErr({ op: 'transact', ops: [['update', 'goals', randomUUID(), { a: 1 }]] }, 'not-initialized');
		await expectErr({ op: 'list-mutations' }, 'not-initialized');
		await expectErr({ op: 'frobnicate' }, 'invalid-op');
		await expectErr({ op: 42 }, 'invalid-op');
		await expectErr({ nop: 1 }, 'invalid-op');
		await expectErr({ op: 'add-query' }, 'invalid-request');
		await expectErr({ op: 'add-query', q: 'goals' }, 'invalid-request');
		await expectErr({ op: 'init' }, 'invalid-request');
		await expectErr({ op: 'init', 'app-id': 5 }, 'invalid-request');
		await expectErr({ op: 'init', 'app-id': 'not-a-uuid' }, 'invalid-request');
		await expectErr({ op: 'transact', ops: 'x' }, 'invalid-request');
		await expectErr({ op: 'retry-mutation', 'mutation-id': [] }, 'invalid-request');
		await c.init(APP, { server: offline.url });
		await expectErr({ op: 'init', 'app-id': APP }, 'invalid-request');
		await expectErr({ op: 'add-query', q: { goals: { $: { where: { title: null } } } } }, 'invalid-query');
		await expectErr({ op: 'transact', ops: [['explode', 'goals', randomUUID(), {}]] }, 'invalid-transaction');
		await expectErr({ op: 'transact', 'tx-steps': [['add-triple', 'x']] }, 'invalid-transaction');
		await expectErr({ op: 'discard-mutation', 'mutation-id': 'no-such-mutation' }, 'not-found');
		const st = await c.request({ op: 'status' });
		check(st.op === 'status', 'the connection still answers after its errors');
		c.close();
	}

	// The good program kept getting updates through all of this, and still does.
	stopWriter = true;
	await writer;
	const last = writes;
	await good.next((m) => m['client-event-id'] === sub && m.op === 'refresh-ok' &&
		m.data.goals.some((x) => x.id === g && x.n === last), `the result of write ${last}`, 30000);
	const pushes = good.messages.filter((m) => m['client-event-id'] === sub && m.op === 'refresh-ok').length;
	check(pushes >= 2, `the subscription kept receiving updates (${pushes} pushes for ${last} writes)`);
	console.log(`# the good program made ${last} writes and got ${pushes} pushes meanwhile`);

	// The queued write is intact.
	const after = (await q.request({ op: 'list-mutations' })).mutations;
	check(after.length === 1, `still one queued write (${after.length})`);
	check(after[0]['mutation-id'] === before[0]['mutation-id'] && after[0].state === 'pending' &&
		JSON.stringify(after[0]['tx-steps']) === JSON.stringify(before[0]['tx-steps']) &&
		JSON.stringify(after[0].ops) === JSON.stringify(before[0].ops), 'the queued write is unchanged');

	// Up, answering, not leaking descriptors, bounded in memory.
	check(daemon.proc.exitCode === null && daemon.proc.signalCode === null, 'the daemon is still running');
	const fresh = await new Client(daemon.socket).connect();
	check((await fresh.request({ op: 'status' })).op === 'status', 'a new program is served');
	fresh.close();
	await waitFor(() => fdCount(pid) <= fdsBefore + 5, 'the dropped connections to be closed', 20000, 100);
	const mem = memoryOf(pid);
	console.log(`# daemon peak RSS (VmHWM): ${(mem.hwm / 1024).toFixed(1)} MB, now ${(mem.rss / 1024).toFixed(1)} MB`);
	check(mem.hwm < RSS_LIMIT_KB, `peak RSS ${mem.hwm} kB under ${RSS_LIMIT_KB} kB`);
	good.close();
	q.close();
	check(await daemon.stop() === 0, 'a clean exit (no sanitizer or leak report)');
}, { daemons: [daemon], timeoutMs: 170000 });

await daemon.stop();
await online.stop();
await offline.stop();
