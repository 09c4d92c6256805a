// Torture: programs write concurrently while the daemon is killed with SIGKILL at random
// moments and the server drops, refuses and delays connections at random. Afterwards every
// acknowledged write is on the server, each program's order is kept, and the outbox drains.
// TORTURE_KILLS (default 100; `make torture` runs 1000) and TORTURE_SEED tune it.
import { randomUUID } from 'node:crypto';
import { startMock, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, check, scenario, sleep, waitFor } from './lib.mjs';

const KILLS = Number(process.env.TORTURE_KILLS || 100);
const PROGRAMS = Number(process.env.TORTURE_PROGRAMS || 3);
let seed = Number(process.env.TORTURE_SEED || 12345);
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const APP = DEFAULT_APP_ID;

const mock = await startMock(['--port', '0']);
const daemon = new Daemon({ server: mock.url });

// A program writes seq 0, 1, 2, ... to its own entities and remembers what was acknowledged.
class Program {
	constructor(i) {
		this.i = i;
		this.cursor = randomUUID();
		this.ids = [];
		this.sent = new Map();	// client-event-id -> seq
		this.acked = new Set();
		this.seq = 0;
		this.stop = false;
	}

	async run() {
		while (!this.stop) {
			let c;
			try {
				c = await new Client(daemon.socket).connect();
				await c.init(APP, { 'client-name': `p${this.i}` });
			} catch {
				await sleep(20);
				continue;
			}
			let seen = 0;
			while (!this.stop && !c.closed) {
				const seq = this.seq++;
				const id = randomUUID();
				this.ids[seq] = id;
				const ceid = c.send({ op: 'transact', ops: [
					['update', 'tortured', id, { program: this.i, seq }],
					['update', 'cursors', this.cursor, { seq }],
				] });
				this.sent.set(ceid, seq);
				await sleep(1 + Math.floor(rand() * 5));
				for (; seen < c.messages.length; seen++) {
					const m = c.messages[seen];
					if (m.op === 'transact-queued') this.acked.add(this.sent.get(m['client-event-id']));
					else if (m.op === 'error') throw new Error(`program ${this.i}: ${JSON.stringify(m)}`);
				}
			}
			for (; seen < c.messages.length; seen++)
				if (c.messages[seen].op === 'transact-queued') this.acked.add(this.sent.get(c.messages[seen]['client-event-id']));
			c.close();
		}
	}
}

await scenario(`torture: ${KILLS} SIGKILLs, ${PROGRAMS} writers, a flaky server`, async () => {
	await daemon.start();
	const programs = Array.from({ length: PROGRAMS }, (_, i) => new Program(i));
	const running = programs.map((p) => p.run());
	let faults = 0;
	for (let k = 0; k < KILLS; k++) {
		await sleep(10 + Math.floor(rand() * 60));
		const f = rand();
		if (f < 0.15) { await mock.ctl('drop', {}); faults++; }
		else if (f < 0.25) { await mock.ctl('refuse', { ms: Math.floor(rand() * 300) }); faults++; }
		else if (f < 0.3) { await mock.ctl('delay', { ms: Math.floor(rand() * 200) }); faults++; }
		await daemon.kill9();
		await daemon.start();
	}
	await mock.ctl('delay', { ms: 0 });
	await mock.ctl('refuse', { ms: 0 });
	await sleep(200);
	for (const p of programs) p.stop = true;
	await Promise.all(running);

	const c = await new Client(daemon.socket).connect();
	await c.init(APP);
	let last = [];
	try {
		await waitFor(async () => (last = (await c.request({ op: 'list-mutations' })).mutations).length === 0,
			'the outbox to drain', 120000, 200);
	} catch (e) {
		const st = await c.request({ op: 'status' });
		throw new Error(`${e.message}: ${last.length} left, states ${JSON.stringify(last.slice(0, 3))}, status ${JSON.stringify(st.status)}`);
	}
	const dump = await mock.ctl('dump', {});
	const labelOf = new Map(dump.attrs.map((a) => [a.id, a['forward-identity'].slice(1).join('.')]));
	const seqOf = new Map();
	const cursorOf = new Map();
	for (const [e, a, v] of dump.triples) {
		if (labelOf.get(a) === 'tortured.seq') seqOf.set(e, v);
		if (labelOf.get(a) === 'cursors.seq') cursorOf.set(e, v);
	}
	let acked = 0;
	for (const p of programs) {
		for (const seq of p.acked) {
			acked++;
			check(seqOf.get(p.ids[seq]) === seq, `program ${p.i} write ${seq} was acknowledged and is on the server`);
		}
		const maxAcked = Math.max(-1, ...p.acked);
		const cur = cursorOf.get(p.cursor);
		// Writes land in order, so the last one to land holds the cursor: never an older one.
		check(cur !== undefined && cur >= maxAcked, `program ${p.i}: cursor ${cur} >= last acknowledged ${maxAcked}`);
		for (let s = 0; s <= cur; s++)
			if (p.acked.has(s)) check(seqOf.has(p.ids[s]), `program ${p.i} write ${s} landed before the cursor moved past it`);
	}
	console.log(`# torture: ${KILLS} kills, ${faults} server faults, ${programs.reduce((n, p) => n + p.seq, 0)} writes sent, ` +
		`${acked} acknowledged, all ${acked} on the server, outbox empty`);
	c.close();
}, { daemons: [daemon], timeoutMs: Math.max(300000, KILLS * 3000) });

await daemon.stop();
await mock.stop();
