// End to end: work proportional to the change (issue 18 point 3). A write re-renders only the
// queries it can change, a server result only its own query, a confirmed write no query reads
// leaves the outbox at once, and writes that depend on each other stay right when one leaves
// the middle of the queue (the results equal a render from scratch after a restart).
// "evaluations" in status counts query renders.
import { randomUUID } from 'node:crypto';
import { startMock, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, check, equalJSON, scenario, waitFor } from './lib.mjs';

const APP = DEFAULT_APP_ID;
const mock = await startMock(['--port', '0']);
const daemon = new Daemon({ server: mock.url });
await daemon.start();

const evaluations = async (c) => (await c.request({ op: 'status' })).status.evaluations;
const attrId = async (etype, label) => (await mock.ctl('dump', {})).attrs
	.find((a) => a['forward-identity'][1] === etype && a['forward-identity'][2] === label).id;

// Subscribe and wait for the first result; returns the subscription's client-event-id.
async function subscribe(c, q) {
	const sub = c.send({ op: 'add-query', q });
	await c.next((m) => m['client-event-id'] === sub && m.op === 'add-query-ok', `subscribed to ${JSON.stringify(q)}`);
	return sub;
}
const latest = (c, sub) => c.messages.filter((m) => m['client-event-id'] === sub &&
	(m.op === 'add-query-ok' || m.op === 'refresh-ok')).pop();

// n shelves, each linked to a book of its own, and one subscription per shelf with its books;
// returns once the setup write has left the outbox.
async function shelvesWithBooks(a, n) {
	const shelves = Array.from({ length: n }, () => randomUUID()), books = shelves.map(() => randomUUID());
	const w0 = await a.request({ op: 'transact', ops: shelves.flatMap((s, k) => [['update', 'books', books[k], { title: `b${k}` }],
		['update', 'shelves', s, { n: k }], ['link', 'shelves', s, { books: books[k] }]]) }, (m) => m.op === 'transact-queued');
	await a.next((m) => m.op === 'transact-ok' && m['mutation-id'] === w0['mutation-id'], 'setup write confirmed');
	const subs = [];
	for (const s of shelves)
		subs.push(await subscribe(a, { shelves: { $: { where: { id: s } }, books: {} } }));
	await waitFor(async () => (await a.request({ op: 'list-mutations' })).mutations.length === 0, 'the outbox to drain');
	return { shelves, books, subs };
}

await scenario('a write re-renders only the queries it can change; a server result only its own', async () => {
	const a = await new Client(daemon.socket).connect();
	await a.init(APP);
	// The etypes and their attrs exist on the server first: a write that makes attrs can change every query.
	const alpha = randomUUID();
	const w0 = await a.request({ op: 'transact', ops: [['update', 'alphas', alpha, { title: 'first' }],
		['update', 'gammas', randomUUID(), { v: 0 }],
		...[0, 1, 2, 3].map((k) => ['update', 'betas', randomUUID(), { n: k }])] }, (m) => m.op === 'transact-queued');
	await a.next((m) => m.op === 'transact-ok' && m['mutation-id'] === w0['mutation-id'], 'setup write confirmed');
	const subA = await subscribe(a, { alphas: {} });
	const subsB = [];
	for (const q of [{ betas: {} }, { betas: { $: { where: { n: 1 } } } }, { betas: { $: { where: { n: 2 } } } },
		{ betas: { $: { fields: ['n'] } } }])
		subsB.push(await subscribe(a, q));
	await waitFor(async () => (await a.request({ op: 'list-mutations' })).mutations.length === 0, 'the outbox to drain');

	let mark = a.messages.length;
	let e0 = await evaluations(a);
	const w = await a.request({ op: 'transact', ops: [['update', 'alphas', alpha, { title: 'second' }]] },
		(m) => m.op === 'transact-queued');
	await a.next((m) => m['client-event-id'] === subA && m.data.alphas[0]?.title === 'second' &&
		m['has-pending-writes'] === true, 'the optimistic result', 20000, mark);
	await a.next((m) => m.op === 'transact-ok' && m['mutation-id'] === w['mutation-id'], 'confirmed', 20000, mark);
	await a.next((m) => m['client-event-id'] === subA && m.data.alphas[0]?.title === 'second' &&
		m['has-pending-writes'] === false, 'the server\'s result', 20000, mark);
	let e1 = await evaluations(a);
	check(!a.messages.slice(mark).some((m) => subsB.includes(m['client-event-id'])),
		`the queries on betas got nothing: ${JSON.stringify(a.messages.slice(mark).filter((m) => subsB.includes(m['client-event-id'])))}`);
	// the optimistic render, the server's result, and at most one more if the server's
	// refresh came before its transact-ok; none of the four queries on betas
	check(e1 - e0 >= 1 && e1 - e0 <= 3, `renders for a write to alphas: ${e1 - e0}`);

	// A write on the server: only the query whose result came is rendered again.
	mark = a.messages.length;
	e0 = await evaluations(a);
	await mock.ctl('transact', { 'tx-steps': [['add-triple', alpha, await attrId('alphas', 'title'), 'from the server']] });
	await a.next((m) => m['client-event-id'] === subA && m.data.alphas[0]?.title === 'from the server',
		'the refresh', 20000, mark);
	e1 = await evaluations(a);
	check(e1 - e0 === 1, `renders for a server result of one query: ${e1 - e0}`);
	check(!a.messages.slice(mark).some((m) => subsB.includes(m['client-event-id'])), 'the queries on betas got nothing');

	// A new listener and a query-once of an unchanged query are answered from its last render.
	e0 = await evaluations(a);
	const once = await a.request({ op: 'query-once', q: { betas: {} }, policy: 'cache-first' });
	check(once.op === 'query-ok' && once.data.betas.length === 4, `query-once: ${JSON.stringify(once)}`);
	const again = await subscribe(a, { betas: { $: { where: { n: 1 } } } });
	check(latest(a, again).data.betas.length === 1, 'a second listener gets the result');
	check(await evaluations(a) === e0, 'neither rendered the query again');
	a.close();
}, { daemons: [daemon] });

await scenario('an update of an entity re-renders only the queries that show it or link it', async () => {
	const a = await new Client(daemon.socket).connect();
	await a.init(APP);
	// Five shelves, each with its own book: one query per shelf, books reached only through its link.
	const { shelves, books, subs } = await shelvesWithBooks(a, 5);

	let mark = a.messages.length;
	const e0 = await evaluations(a);
	const w = await a.request({ op: 'transact', ops: [['update', 'books', books[0], { title: 'renamed' }]] },
		(m) => m.op === 'transact-queued');
	await a.next((m) => m['client-event-id'] === subs[0] && m.data.shelves[0]?.books[0]?.title === 'renamed',
		'the optimistic result', 20000, mark);
	await a.next((m) => m.op === 'transact-ok' && m['mutation-id'] === w['mutation-id'], 'confirmed', 20000, mark);
	await a.next((m) => m['client-event-id'] === subs[0] && m.data.shelves[0]?.books[0]?.title === 'renamed' &&
		m['has-pending-writes'] === false, 'the server\'s result', 20000, mark);
	const e1 = await evaluations(a);
	console.log(`# renders for an update of one shelf's book: ${e1 - e0}`);
	// the writer's query: the optimistic render, the server's result, maybe one more; none of the others
	check(e1 - e0 >= 1 && e1 - e0 <= 3, `renders for an update of one shelf's book: ${e1 - e0}`);
	// (they may be told has-pending-writes: it counts the writes on what a query reads, not the entities)
	const others = a.messages.slice(mark).filter((m) => subs.slice(1).includes(m['client-event-id']));
	check(others.every((m) => m.data.shelves[0].books.every((b) => b.title !== 'renamed')),
		`the other shelves: ${JSON.stringify(others)}`);

	// Offline, a link to a book no query has seen, then an update that makes the book: the
	// second write needs the link the first one made, which only the queue holds.
	await mock.ctl('refuse', { ms: -1, drop: true });
	await waitFor(async () => (await a.request({ op: 'status' })).status.state !== 'authenticated', 'offline');
	mark = a.messages.length;
	const fresh = randomUUID();
	await a.request({ op: 'transact', ops: [['link', 'shelves', shelves[1], { books: fresh }]] }, (m) => m.op === 'transact-queued');
	// the link is rendered (the book is not shown yet) before the second write is judged
	await a.next((m) => m['client-event-id'] === subs[1] && m['has-pending-writes'] === true, 'the link rendered', 20000, mark);
	mark = a.messages.length;
	await a.request({ op: 'transact', ops: [['update', 'books', fresh, { title: 'new' }]] }, (m) => m.op === 'transact-queued');
	await a.next((m) => m['client-event-id'] === subs[1] && m.data.shelves[0]?.books.some((b) => b.id === fresh && b.title === 'new'),
		'the linked book once it exists', 20000, mark);
	check(a.messages.slice(mark).filter((m) => [subs[2], subs[3], subs[4]].includes(m['client-event-id']))
		.every((m) => m.data.shelves[0].books.length === 1), 'the unlinked shelves kept their one book');
	await mock.ctl('refuse', { ms: 0 });
	await waitFor(async () => (await a.request({ op: 'list-mutations' })).mutations.length === 0, 'the outbox to drain', 30000, 100);
	a.close();
}, { daemons: [daemon] });

await scenario('a confirmed write is not held by queries that read its attrs but do not show its entity', async () => {
	const a = await new Client(daemon.socket).connect();
	await a.init(APP);
	// Every one of the four queries reads books.title; each shows only its own shelf's book.
	const { books, subs } = await shelvesWithBooks(a, 4);

	// Two writes in a row to the books of shelves 0 and 1. Once each is confirmed and its
	// shelf's result reflects it, neither may stay: shelves 2 and 3 never show either book,
	// so the second write cannot make their renders depend on the first.
	const mark = a.messages.length;
	const ws = [];
	for (const k of [0, 1])
		ws.push(a.send({ op: 'transact', ops: [['update', 'books', books[k], { title: `renamed ${k}` }]] }));
	const txs = [];
	for (const ceid of ws)
		txs.push((await a.next((m) => m.op === 'transact-ok' && m['client-event-id'] === ceid, 'confirmed', 20000, mark))['tx-id']);
	for (const k of [0, 1])
		await a.next((m) => m['client-event-id'] === subs[k] && m['processed-tx-id'] >= txs[k] &&
			m.data.shelves[0]?.books[0]?.title === `renamed ${k}`, `shelf ${k}: the server's result`, 20000, mark);
	const left = (await a.request({ op: 'list-mutations' })).mutations;
	check(left.length === 0, `both writes left the outbox: ${JSON.stringify(left.map((m) => m.state))}`);
	a.close();
}, { daemons: [daemon] });

await scenario('a confirmed write that no query reads leaves the outbox at once', async () => {
	const a = await new Client(daemon.socket).connect();
	await a.init(APP);
	await subscribe(a, { alphas: {} });
	await subscribe(a, { betas: {} });
	// (gammas and its attrs exist: a write that makes attrs may change every query)
	for (let k = 1; k <= 3; k++) {
		const w = await a.request({ op: 'transact', ops: [['update', 'gammas', randomUUID(), { v: k }]] },
			(m) => m.op === 'transact-queued');
		await a.next((m) => m.op === 'transact-ok' && m['mutation-id'] === w['mutation-id'], 'confirmed');
		const list = await a.request({ op: 'list-mutations' });
		check(!list.mutations.some((m) => m['mutation-id'] === w['mutation-id']),
			`retired with its confirmation: ${JSON.stringify(list.mutations.map((m) => [m['mutation-id'], m.state]))}`);
	}
	a.close();
}, { daemons: [daemon] });

await scenario('writes that depend on each other: a write leaving the middle of the queue', async () => {
	const a = await new Client(daemon.socket).connect();
	await a.init(APP);
	const a0 = randomUUID(), b0 = randomUUID(), a1 = randomUUID(), b1 = randomUUID();
	const w0 = await a.request({ op: 'transact', ops: [['update', 'pets', a0, { name: 'a0' }],
		['update', 'owners', b0, { n: 0 }], ['link', 'owners', b0, { pets: a0 }]] }, (m) => m.op === 'transact-queued');
	await a.next((m) => m.op === 'transact-ok' && m['mutation-id'] === w0['mutation-id'], 'setup write confirmed');
	const QP = { pets: {} }, QO = { owners: { pets: {} } }, QU = { alphas: {} };
	const subP = await subscribe(a, QP), subO = await subscribe(a, QO), subU = await subscribe(a, QU);
	await a.next((m) => m['client-event-id'] === subO && m.data.owners.some((o) => o.pets.length === 1), 'the link');
	await mock.ctl('refuse', { ms: -1, drop: true });
	await waitFor(async () => (await a.request({ op: 'status' })).status.state !== 'authenticated', 'offline');

	const mark = a.messages.length;
	const tx = async (ops) => (await a.request({ op: 'transact', ops }, (m) => m.op === 'transact-queued'))['mutation-id'];
	const m1 = await tx([['create', 'pets', a1, { name: 'a1' }]]);
	await tx([['update', 'owners', b1, { n: 1 }], ['link', 'owners', b1, { pets: a1 }]]);
	await tx([['delete', 'pets', a0]]);
	// mode "update": lands only if a1 exists, which only the first write makes it
	await tx([['update', 'pets', a1, { name: 'a1 renamed' }, { upsert: false }]]);
	const names = (m) => m.data.pets.map((p) => p.name).sort().join(',');
	await a.next((m) => m['client-event-id'] === subP && names(m) === 'a1 renamed', 'pets with every write', 20000, mark);
	await a.next((m) => m['client-event-id'] === subO && m.data.owners.length === 2 &&
		m.data.owners.find((o) => o.id === b0)?.pets.length === 0 &&
		m.data.owners.find((o) => o.id === b1)?.pets[0]?.name === 'a1 renamed', 'owners with every write', 20000, mark);

	// The create leaves the middle of the queue: the later update of a1 no longer lands.
	const d = await a.request({ op: 'discard-mutation', 'mutation-id': m1 });
	check(d.op === 'discard-mutation-ok', `discard: ${JSON.stringify(d)}`);
	const pets = await a.next((m) => m['client-event-id'] === subP && m.data.pets.length === 0,
		'pets without the create', 20000, mark);
	check(pets['has-pending-writes'] === true, 'the delete of a0 is still pending');
	await a.next((m) => m['client-event-id'] === subO && m.data.owners.length === 2 &&
		!m.data.owners.some((o) => o.pets.some((p) => p.name)), 'owners without the create', 20000, mark);
	check(!a.messages.slice(mark).some((m) => m['client-event-id'] === subU), 'the query on alphas got nothing');

	// A render from scratch (a restart, the same mirror and outbox) gives the same results.
	const before = { p: latest(a, subP).data, o: latest(a, subO).data };
	a.close();
	await daemon.stop();
	await daemon.start();
	const b = await new Client(daemon.socket).connect();
	await b.init(APP);
	const sp = b.send({ op: 'add-query', q: QP }), so = b.send({ op: 'add-query', q: QO });
	const rp = await b.next((m) => m['client-event-id'] === sp && m.op === 'add-query-ok', 'pets after the restart');
	const ro = await b.next((m) => m['client-event-id'] === so && m.op === 'add-query-ok', 'owners after the restart');
	check(equalJSON(rp.data, before.p), `pets: ${JSON.stringify(rp.data)} vs ${JSON.stringify(before.p)}`);
	check(equalJSON(ro.data, before.o), `owners: ${JSON.stringify(ro.data)} vs ${JSON.stringify(before.o)}`);
	await mock.ctl('refuse', { ms: 0 });
	await waitFor(async () => (await b.request({ op: 'list-mutations' })).mutations
		.every((m) => m.state === 'failed'), 'the outbox to drain', 30000, 100);
	b.close();
}, { daemons: [daemon] });

await daemon.stop();
await mock.stop();
