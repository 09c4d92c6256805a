// Torture: programs write concurrently while the daemon is killed with SIGKILL at random
// moments and the server drops, refuses and delays connections at random and applies writes
// whose answers it then loses. Afterwards every acknowledged write is on the server, each
// program's order is kept, the outbox drains, and no write the server applied is failed.
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

// A program writes seq 0, 1, 2, ... and remembers what was acknowledged. Each write creates
// its own entity (mode create: rejected if sent twice as a create) and moves the program's
// cursor; some also link it to the program's hub, unlink an earlier one, create scratch
// entities, and update (with upsert: false, so mode update) or delete scratch entities whose
// creation was acknowledged. A program touches an entity only after the write that made it was
// acknowledged and never after sending its delete, so every write is valid whatever was lost.
class Program {
	constructor(i) {
		this.i = i;
		this.cursor = randomUUID();
		this.hub = randomUUID();
		this.writes = [];	// seq -> {id, link?, unlink?, scratch?, touch?, del?}
		this.sent = new Map();	// client-event-id -> seq
		this.acked = new Set();
		this.mids = new Map();	// seq -> mutation-id, for acknowledged writes
		this.linkable = [];	// seqs whose link was acknowledged and not yet unlinked
		this.scratch = new Map();	// id -> {acked, gone (a delete was sent)}
		this.errors = [];
		this.seq = 0;
		this.stop = false;
	}

	plan(seq) {
		const id = randomUUID();
		const w = { id, ops: [
			['create', 'tortured', id, { program: this.i, seq }],
			['update', 'cursors', this.cursor, { seq }],
		] };
		if (rand() < 0.4) {
			w.ops.push(['link', 'hubs', this.hub, { members: id }]);
			w.link = true;
		}
		if (this.linkable.length && rand() < 0.2) {
			w.unlink = this.linkable.splice(Math.floor(rand() * this.linkable.length), 1)[0];
			w.ops.push(['unlink', 'hubs', this.hub, { members: this.writes[w.unlink].id }]);
		}
		if (rand() < 0.3) {
			w.scratch = randomUUID();
			w.ops.push(['create', 'scratch', w.scratch, { owner: this.i, seq }]);
			this.scratch.set(w.scratch, { acked: false, gone: false });
		}
		const alive = [...this.scratch].filter(([, x]) => x.acked && !x.gone).map(([sid]) => sid);
		const victim = alive.length ? alive[Math.floor(rand() * alive.length)] : null;
		const f = rand();
		if (victim && f < 0.4) {
			w.touch = victim;
			w.ops.push(['update', 'scratch', victim, { touched: seq }, { upsert: false }]);
		}
		if (victim && (f < 0.08 || (f >= 0.4 && f < 0.5))) {
			w.del = victim;
			w.ops.push(['delete', 'scratch', victim]);
			this.scratch.get(victim).gone = true;
		}
		return w;
	}

	take(m) {
		if (m.op === 'transact-queued') {
			const seq = this.sent.get(m['client-event-id']);
			const w = this.writes[seq];
			this.acked.add(seq);
			this.mids.set(seq, m['mutation-id']);
			if (w.link) this.linkable.push(seq);
			if (w.scratch) this.scratch.get(w.scratch).acked = true;
		} else if (m.op === 'error') {
			this.errors.push(m);
		}
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
				const w = this.writes[seq] = this.plan(seq);
				const ceid = c.send({ op: 'transact', ops: w.ops });
				this.sent.set(ceid, seq);
				await sleep(1 + Math.floor(rand() * 5));
				for (; seen < c.messages.length; seen++) this.take(c.messages[seen]);
			}
			for (; seen < c.messages.length; seen++) this.take(c.messages[seen]);
			c.close();
		}
	}
}

await scenario(`torture: ${KILLS} SIGKILLs, ${PROGRAMS} writers, a flaky server, lost acknowledgements`, async () => {
	await daemon.start();
	const programs = Array.from({ length: PROGRAMS }, (_, i) => new Program(i));
	const running = programs.map((p) => p.run());
	let faults = 0, losses = 0;
	for (let k = 0; k < KILLS; k++) {
		await sleep(10 + Math.floor(rand() * 60));
		const f = rand();
		let lose = false;
		if (f < 0.15) { await mock.ctl('drop', {}); faults++; }
		else if (f < 0.25) { await mock.ctl('refuse', { ms: Math.floor(rand() * 300) }); faults++; }
		else if (f < 0.3) { await mock.ctl('delay', { ms: Math.floor(rand() * 200) }); faults++; }
		else if (f < 0.45) {
			// The server applies a write and the answer never comes; with refuse, the daemon
			// cannot replay before it is killed, so the replay happens after the restart.
			await mock.ctl('drop-after-commit', { count: 1 + Math.floor(rand() * 3), refuse: rand() < 0.6 });
			lose = true;
			losses++;
			await sleep(5 + Math.floor(rand() * 30));
		}
		await daemon.kill9();
		await daemon.start();
		if (lose) {
			await mock.ctl('drop-after-commit', { count: 0 });
			await mock.ctl('refuse', { ms: 0 });
		}
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
		await waitFor(async () => (last = (await c.request({ op: 'list-mutations' })).mutations)
			.every((m) => m.state === 'failed'), 'the outbox to drain', 120000, 200);
	} catch (e) {
		const st = await c.request({ op: 'status' });
		throw new Error(`${e.message}: ${last.length} left, states ${JSON.stringify(last.slice(0, 3))}, status ${JSON.stringify(st.status)}`);
	}
	// A write the server applied must never be listed as failed (nor reported so to its program).
	const applied = (await mock.ctl('tx-counts', {})).counts;
	const replayed = Object.values(applied).filter((n) => n > 1).length;
	const failedIds = new Set([...last.map((m) => m['mutation-id']),
		...programs.flatMap((p) => p.errors.map((m) => m['mutation-id']))]);
	for (const mid of failedIds)
		check(!applied[mid], `write ${mid} was applied by the server ${applied[mid]} times but is listed as failed: ` +
			JSON.stringify(last.find((m) => m['mutation-id'] === mid)?.error ?? programs.flatMap((p) => p.errors).find((m) => m['mutation-id'] === mid)));
	check(failedIds.size === 0, `no write is rejected (every write is valid): ${JSON.stringify(last.slice(0, 3).map((m) => m.error))}`);

	const dump = await mock.ctl('dump', {});
	const labelOf = new Map(dump.attrs.map((a) => [a.id, a['forward-identity'].slice(1).join('.')]));
	const seqOf = new Map();
	const cursorOf = new Map();
	const links = new Set();
	const scratch = new Set();
	const touched = new Map();
	for (const [e, a, v] of dump.triples) {
		const label = labelOf.get(a);
		if (label === 'tortured.seq') seqOf.set(e, v);
		else if (label === 'cursors.seq') cursorOf.set(e, v);
		else if (label === 'hubs.members') links.add(`${e} ${v}`);
		else if (label === 'scratch.id') scratch.add(e);
		else if (label === 'scratch.touched') touched.set(e, v);
	}
	let acked = 0;
	const counts = { links: 0, unlinks: 0, scratch: 0, updates: 0, deletes: 0 };
	for (const p of programs) {
		const unlinkSent = new Set(p.writes.filter((w) => w.unlink !== undefined).map((w) => w.unlink));
		const deleteSent = new Set(p.writes.filter((w) => w.del).map((w) => w.del));
		for (const seq of p.acked) {
			const w = p.writes[seq];
			acked++;
			check(seqOf.get(w.id) === seq, `program ${p.i} write ${seq} was acknowledged and is on the server`);
			check(applied[p.mids.get(seq)] >= 1, `program ${p.i} write ${seq} was applied`);
			if (w.link && !unlinkSent.has(seq)) {
				counts.links++;
				check(links.has(`${p.hub} ${w.id}`), `program ${p.i} write ${seq}: its link is on the server`);
			}
			if (w.unlink !== undefined) {
				counts.unlinks++;
				check(!links.has(`${p.hub} ${p.writes[w.unlink].id}`), `program ${p.i} write ${seq}: its unlink is on the server`);
			}
			if (w.scratch && !deleteSent.has(w.scratch)) {
				counts.scratch++;
				check(scratch.has(w.scratch), `program ${p.i} write ${seq}: its scratch entity exists`);
			}
			if (w.touch && !deleteSent.has(w.touch)) {
				counts.updates++;
				// Writes land in order: the last update to land is this one or a later one.
				check(touched.get(w.touch) >= seq, `program ${p.i} write ${seq}: its update is on the server`);
			}
			if (w.del) {
				counts.deletes++;
				check(!scratch.has(w.del), `program ${p.i} write ${seq}: its delete is on the server`);
			}
		}
		const maxAcked = Math.max(-1, ...p.acked);
		const cur = cursorOf.get(p.cursor);
		// Writes land in order, so the last one to land holds the cursor: never an older one.
		check(cur !== undefined && cur >= maxAcked, `program ${p.i}: cursor ${cur} >= last acknowledged ${maxAcked}`);
		for (let s = 0; s <= cur; s++)
			if (p.acked.has(s)) check(seqOf.has(p.writes[s].id), `program ${p.i} write ${s} landed before the cursor moved past it`);
	}
	console.log(`# torture: ${KILLS} kills, ${faults} server faults, ${losses} lost acknowledgements armed, ` +
		`${programs.reduce((n, p) => n + p.seq, 0)} writes sent, ${acked} acknowledged, all ${acked} on the server ` +
		`(${counts.links} links, ${counts.unlinks} unlinks, ${counts.scratch} scratch creates, ${counts.updates} updates, ${counts.deletes} deletes checked), ` +
		`${replayed} applied twice or more, none failed, outbox empty`);
	c.close();
}, { daemons: [daemon], timeoutMs: Math.max(300000, KILLS * 3000) });

await daemon.stop();
await mock.stop();
