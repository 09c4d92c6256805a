// The real @instantdb/core client against the mock: subscribe, write, receive refresh-ok; two
// independent clients (separate processes) see each other's writes and presence.
import { startMock, spawnPeer, runTest } from './harness.mjs';

const G1 = '6f1c1b7e-1d1a-4c3e-9a51-000000000001';
const G2 = '6f1c1b7e-1d1a-4c3e-9a51-000000000002';
const T1 = '6f1c1b7e-1d1a-4c3e-9a51-000000000011';

await runTest('mock client', async (t) => {
	const mock = await startMock(['--port', '0']);
	t.cleanup(() => mock.stop());
	const a = await spawnPeer(mock);
	t.cleanup(() => a.close());
	const b = await spawnPeer(mock);
	t.cleanup(() => b.close());

	await a.waitFor((e) => e.ev === 'status' && e.status === 'authenticated', { what: 'a authenticated' });
	await b.waitFor((e) => e.ev === 'status' && e.status === 'authenticated', { what: 'b authenticated' });
	const q = { goals: { todos: {}, $: { where: { title: 'x' } } } };
	a.send({ cmd: 'subscribe', id: 'qa', q });
	b.send({ cmd: 'subscribe', id: 'qb', q: { goals: {} } });
	await a.waitFor((e) => e.ev === 'query' && e.id === 'qa' && e.data, { what: 'a first result' });
	await b.waitFor((e) => e.ev === 'query' && e.id === 'qb' && e.data, { what: 'b first result' });

	// a creates goals (new attrs via add-attr) and a linked todo.
	a.send({ cmd: 'transact', id: 'tx1', ops: [['goals', G1, 'update', { title: 'x', n: 3 }], ['goals', G2, 'update', { title: 'y' }],
		['todos', T1, 'update', { text: 'a' }], ['goals', G1, 'link', { todos: T1 }]] });
	const tx1 = await a.waitFor((e) => e.ev === 'tx' && e.id === 'tx1', { what: 'tx1 result' });
	t.eq(tx1.status, 'synced', 'transact synced (transact-ok received)');

	const seen = await b.waitFor((e) => e.ev === 'query' && e.id === 'qb' && e.data?.goals?.length === 2, { what: 'b sees both goals' });
	t.eq(seen.data.goals.map((g) => g.title).sort(), ['x', 'y'], 'second client sees the first client\'s writes via refresh-ok');

	const ra = await a.waitFor((e) => e.ev === 'query' && e.id === 'qa' && e.data?.goals?.[0]?.todos?.length === 1, { what: 'a nested result' });
	t.eq(ra.data.goals.length, 1, 'where title = x matches one goal');
	t.eq(ra.data.goals[0].todos[0].text, 'a', 'nested todo delivered');

	// b writes; a sees it.
	b.send({ cmd: 'transact', id: 'tx2', ops: [['goals', G2, 'update', { title: 'x' }]] });
	await b.waitFor((e) => e.ev === 'tx' && e.id === 'tx2' && e.status === 'synced', { what: 'tx2 synced' });
	const rb = await a.waitFor((e) => e.ev === 'query' && e.id === 'qa' && e.data?.goals?.length === 2, { what: 'a sees b write' });
	t.ok(rb.data.goals.some((g) => g.id === G2), 'first client sees the second client\'s write');

	// Lookups and merges from the real client.
	b.send({ cmd: 'transact', id: 'tx3', ops: [['goals', ['slug', 'my-slug'], 'update', { title: 'by-lookup' }]] });
	await b.waitFor((e) => e.ev === 'tx' && e.id === 'tx3' && e.status === 'synced', { what: 'lookup write synced' });
	const lk = await b.waitFor((e) => e.ev === 'query' && e.id === 'qb' && e.data?.goals?.some((g) => g.title === 'by-lookup' && g.slug === 'my-slug'), { what: 'lookup-created goal' });
	t.ok(lk, 'lookup upsert created the entity');
	a.send({ cmd: 'transact', id: 'tx4', ops: [['goals', G1, 'merge', { meta: { a: { b: 1 } } }]] });
	await a.waitFor((e) => e.ev === 'tx' && e.id === 'tx4' && e.status === 'synced', { what: 'merge 1' });
	a.send({ cmd: 'transact', id: 'tx5', ops: [['goals', G1, 'merge', { meta: { a: { c: 2 } } }]] });
	await a.waitFor((e) => e.ev === 'tx' && e.id === 'tx5' && e.status === 'synced', { what: 'merge 2' });
	const mg = await b.waitFor((e) => e.ev === 'query' && e.id === 'qb' && e.data?.goals?.some((g) => g.meta?.a?.c === 2), { what: 'merged meta' });
	t.eq(mg.data.goals.find((g) => g.id === G1).meta, { a: { b: 1, c: 2 } }, 'deep merge from the real client');

	const dump = await mock.ctl('dump');
	t.ok(dump.triples.some((tr) => tr[0] === G2 && tr[2] === 'x'), 'dump shows the stored triple');

	// Presence and broadcast between the two processes.
	a.send({ cmd: 'join', room: 'r1', presence: { name: 'alice' }, topics: ['emoji'] });
	b.send({ cmd: 'join', room: 'r1', presence: { name: 'bob' }, topics: ['emoji'] });
	const pa = await a.waitFor((e) => e.ev === 'presence' && Object.values(e.peers || {}).some((p) => p.name === 'bob'), { what: 'a sees bob' });
	t.ok(pa, 'a sees b\'s presence');
	await b.waitFor((e) => e.ev === 'presence' && Object.values(e.peers || {}).some((p) => p.name === 'alice'), { what: 'b sees alice' });
	b.send({ cmd: 'presence', room: 'r1', data: { typing: true } });
	await a.waitFor((e) => e.ev === 'presence' && Object.values(e.peers || {}).some((p) => p.name === 'bob' && p.typing === true), { what: 'a sees typing' });
	a.send({ cmd: 'broadcast', room: 'r1', topic: 'emoji', data: { e: 'x' } });
	const bc = await b.waitFor((e) => e.ev === 'broadcast' && e.topic === 'emoji', { what: 'b gets broadcast' });
	t.eq(bc.data, { e: 'x' }, 'broadcast delivered to the peer');
	t.eq(bc.peer?.name, 'alice', 'broadcast carries the sender\'s presence');
	await a.close();
	await b.waitFor((e) => e.ev === 'presence' && !Object.values(e.peers || {}).some((p) => p.name === 'alice'), { what: 'alice gone' });
});
