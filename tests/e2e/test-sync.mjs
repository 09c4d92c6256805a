// End to end beside a real @instantdb/core client: online sync both ways with equal results,
// a rejected write in a replay, a lost acknowledgement, and attrs born offline.
import { randomUUID } from 'node:crypto';
import { startMock, spawnPeer, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, check, equalJSON, scenario, waitFor } from './lib.mjs';

const APP = DEFAULT_APP_ID;
const mock = await startMock(['--port', '0']);
const daemon = new Daemon({ server: mock.url });
await daemon.start();

// Sort arrays of entities by id so two clients' results compare regardless of tie order.
function norm(v) {
	if (Array.isArray(v)) {
		const a = v.map(norm);
		if (a.every((x) => x && typeof x === 'object' && 'id' in x)) a.sort((x, y) => (x.id < y.id ? -1 : 1));
		return a;
	}
	if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]));
	return v;
}

async function drained(c) {
	await waitFor(async () => (await c.request({ op: 'list-mutations' })).mutations
		.every((m) => m.state === 'failed'), 'the outbox to drain', 60000, 100);
}

await scenario('online sync with a JS client; equal results for equal queries', async () => {
	const a = await new Client(daemon.socket).connect();
	await a.init(APP);
	const peer = await spawnPeer(mock);
	const Q = { projects: { tasks: {} } };
	const sub = a.send({ op: 'add-query', q: Q });
	await a.next((m) => m['client-event-id'] === sub && m.op === 'add-query-ok', 'A subscribed');
	peer.send({ cmd: 'subscribe', id: 's1', q: Q });

	const p1 = randomUUID(), t1 = randomUUID();
	peer.send({ cmd: 'transact', id: 'w1', ops: [['projects', p1, 'update', { name: 'from js' }],
		['tasks', t1, 'update', { title: 'js task' }], ['projects', p1, 'link', { tasks: t1 }]] });
	await peer.waitFor((e) => e.ev === 'tx' && e.id === 'w1' && e.status, { what: 'JS write confirmed' });
	await a.next((m) => m['client-event-id'] === sub && m.data.projects.some((p) => p.name === 'from js' &&
		p.tasks.some((t) => t.title === 'js task')), 'A receives the JS client\'s write');

	const p2 = randomUUID();
	const q = await a.request({ op: 'transact', ops: [['update', 'projects', p2, { name: 'from instantd' }],
		['link', 'projects', p2, { tasks: t1 }]] }, (m) => m.op === 'transact-queued' || m.op === 'error');
	check(q.op === 'transact-queued', `queued: ${JSON.stringify(q)}`);
	const js = await peer.waitFor((e) => e.ev === 'query' && e.id === 's1' && e.data &&
		e.data.projects.some((p) => p.name === 'from instantd'), { what: 'the JS client sees A\'s write' });
	const mine = await a.next((m) => m['client-event-id'] === sub && m['has-pending-writes'] === false &&
		m.data.projects.length === 2 && m.data.projects.every((p) => p.tasks.length === 1), 'A\'s settled result');
	const jsLatest = peer.log.events.filter((e) => e.ev === 'query' && e.id === 's1').pop();
	check(equalJSON(norm(mine.data), norm(jsLatest.data)),
		`same result as the JS client:\n${JSON.stringify(norm(mine.data))}\n${JSON.stringify(norm(jsLatest.data))}`);
	check(js, 'seen');

	// More query shapes, compared with the JS client on the same data.
	for (const [i, qq] of [
		{ tasks: { $: { where: { title: 'js task' } } } },
		{ tasks: { projects: {} } },
		{ projects: { $: { order: { serverCreatedAt: 'desc' } } } },
		{ projects: { $: { where: { 'tasks.title': 'js task' } }, tasks: {} } },
	].entries()) {
		const id = `c${i}`;
		const mark = peer.mark();
		peer.send({ cmd: 'subscribe', id, q: qq });
		const theirs = await peer.waitFor((e) => e.ev === 'query' && e.id === id && e.data, { what: `JS ${id}`, from: mark });
		const ours = await a.request({ op: 'query-once', q: qq, policy: 'network-only' });
		check(ours.op === 'query-ok', `query-once ${id}: ${JSON.stringify(ours)}`);
		check(equalJSON(norm(ours.data), norm(theirs.data)), `${id} equal: ${JSON.stringify(ours.data)} vs ${JSON.stringify(theirs.data)}`);
	}
	await peer.close();
	a.close();
}, { daemons: [daemon] });

await scenario('a rejected write: error, rollback, later writes land, retry and discard', async () => {
	const a = await new Client(daemon.socket).connect();
	await a.init(APP);
	const Q = { notes: {} };
	const sub = a.send({ op: 'add-query', q: Q });
	await a.next((m) => m['client-event-id'] === sub && m.op === 'add-query-ok', 'subscribed');
	await mock.ctl('refuse', { ms: -1, drop: true });
	await waitFor(async () => (await a.request({ op: 'status' })).status.state !== 'authenticated', 'offline');
	const ids = [randomUUID(), randomUUID(), randomUUID()];
	const q = [];
	for (let k = 0; k < 3; k++)
		q.push(await a.request({ op: 'transact', ops: [['update', 'notes', ids[k], { text: `note ${k}` }]] },
			(m) => m.op === 'transact-queued'));
	await mock.ctl('reject-transacts', { count: 1, match: { contains: ids[1] } });
	await mock.ctl('refuse', { ms: 0 });
	const err = await a.next((m) => m.op === 'error' && m['mutation-id'] === q[1]['mutation-id'], 'the error for write 1', 30000);
	check(err['client-event-id'] === q[1]['client-event-id'], 'the error answers the app\'s own transact');
	await a.next((m) => m['client-event-id'] === sub && m.data.notes.length === 2 &&
		!m.data.notes.some((n) => n.text === 'note 1') && m['has-pending-writes'] === false, 'write 1 rolled back, 0 and 2 landed', 30000);
	const list = await a.request({ op: 'list-mutations' });
	const failed = list.mutations.filter((m) => m.state === 'failed');
	check(failed.length === 1 && failed[0]['mutation-id'] === q[1]['mutation-id'], 'write 1 is in the failed list');

	const r = await a.request({ op: 'retry-mutation', 'mutation-id': q[1]['mutation-id'] });
	check(r.op === 'retry-mutation-ok', `retry: ${JSON.stringify(r)}`);
	await a.next((m) => m.op === 'transact-ok' && m['mutation-id'] === q[1]['mutation-id'], 'the retried write lands');
	await a.next((m) => m['client-event-id'] === sub && m.data.notes.length === 3, 'all three notes');

	await mock.ctl('reject-transacts', { count: 1 });
	const d = await a.request({ op: 'transact', ops: [['update', 'notes', randomUUID(), { text: 'doomed' }]] },
		(m) => m.op === 'transact-queued');
	await a.next((m) => m.op === 'error' && m['mutation-id'] === d['mutation-id'], 'rejected');
	const dd = await a.request({ op: 'discard-mutation', 'mutation-id': d['mutation-id'] });
	check(dd.op === 'discard-mutation-ok', `discard: ${JSON.stringify(dd)}`);
	const after = await a.request({ op: 'list-mutations' });
	check(!after.mutations.some((m) => m['mutation-id'] === d['mutation-id']), 'discarded');
	a.close();
}, { daemons: [daemon] });

await scenario('lost acknowledgement: a create replayed after the server applied it', async () => {
	const a = await new Client(daemon.socket).connect();
	await a.init(APP);
	const sub = a.send({ op: 'add-query', q: { items: {} } });
	await a.next((m) => m['client-event-id'] === sub && m.op === 'add-query-ok', 'subscribed');
	await mock.ctl('drop-after-commit', { count: 1 });
	const id = randomUUID();
	const w = await a.request({ op: 'transact', ops: [['create', 'items', id, { label: 'once' }]] },
		(m) => m.op === 'transact-queued');
	await a.next((m) => m.op === 'transact-ok' && m['mutation-id'] === w['mutation-id'], 'confirmed after the replay', 30000);
	check(!a.messages.some((m) => m.op === 'error' && m['mutation-id'] === w['mutation-id']),
		'the replayed create is not reported as failed');
	const dump = await mock.ctl('dump', {});
	check(dump.triples.filter((t) => t[0] === id && t[2] === 'once').length === 1, 'the entity exists once on the server');
	await a.next((m) => m['client-event-id'] === sub && m.data.items.length === 1 && m['has-pending-writes'] === false,
		'the subscription shows it');
	a.close();
}, { daemons: [daemon] });

await scenario('attrs born offline are rewritten to the server\'s attrs', async () => {
	const a = await new Client(daemon.socket).connect();
	await a.init(APP);
	const sub = a.send({ op: 'add-query', q: { gadgets: {} } });
	await a.next((m) => m['client-event-id'] === sub && m.op === 'add-query-ok', 'subscribed');
	await mock.ctl('refuse', { ms: -1, drop: true });
	await waitFor(async () => (await a.request({ op: 'status' })).status.state !== 'authenticated', 'offline');
	const g = randomUUID();
	await a.request({ op: 'transact', ops: [['update', 'gadgets', g, { color: 'red' }]] }, (m) => m.op === 'transact-queued');
	// Meanwhile another client creates the same attrs on the server under other ids.
	const attr = (label, extra = {}) => ({ id: randomUUID(), 'forward-identity': [randomUUID(), 'gadgets', label],
		'value-type': 'blob', cardinality: 'one', 'unique?': false, 'index?': false, ...extra });
	await mock.ctl('transact', { 'tx-steps': [['add-attr', attr('id', { 'unique?': true })], ['add-attr', attr('color')],
		['add-triple', randomUUID(), null, 'blue']].slice(0, 2) });
	const before = (await mock.ctl('dump', {})).attrs.filter((at) => at['forward-identity'][1] === 'gadgets');
	await mock.ctl('refuse', { ms: 0 });
	await drained(a);
	const dump = await mock.ctl('dump', {});
	const attrs = dump.attrs.filter((at) => at['forward-identity'][1] === 'gadgets');
	check(attrs.length === before.length, `no duplicate attrs (${attrs.map((x) => x['forward-identity'].join('.'))})`);
	const color = attrs.find((at) => at['forward-identity'][2] === 'color');
	check(dump.triples.some((t) => t[0] === g && t[1] === color.id && t[2] === 'red'), 'the offline write landed under the server\'s attr');
	a.close();
}, { daemons: [daemon] });

await scenario('a read-only app keeps writes queued and reads from the mirror', async () => {
	const a = await new Client(daemon.socket).connect();
	await a.init(APP);
	const sub = a.send({ op: 'add-query', q: { memos: {} } });
	await a.next((m) => m['client-event-id'] === sub && m.op === 'add-query-ok', 'subscribed');
	await mock.ctl('app-status', { status: 'read-only' });
	await waitFor(async () => (await a.request({ op: 'status' })).status['app-status'] === 'read-only', 'read-only visible');
	const id = randomUUID();
	const w = await a.request({ op: 'transact', ops: [['update', 'memos', id, { text: 'held' }]] },
		(m) => m.op === 'transact-queued');
	await a.next((m) => m['client-event-id'] === sub && m.data.memos.length === 1 && m['has-pending-writes'] === true,
		'shown optimistically');
	const once = await a.request({ op: 'query-once', q: { memos: {} }, policy: 'cache-first' });
	check(once.op === 'query-ok' && once.data.memos.length === 1, 'reads still answer');
	const only = await a.request({ op: 'query-once', q: { memos: {} }, policy: 'cache-only' });
	check(only.op === 'query-ok' && only.data.memos.length === 1 && only['from-cache'] === false,
		`cache-only answers from the mirror: ${JSON.stringify(only)}`);
	const none = await a.request({ op: 'query-once', q: { nevercached: {} }, policy: 'cache-only', 'allow-partial': false });
	check(none.op === 'error' && none.type === 'not-found', `cache-only of an uncached query, no partial: ${JSON.stringify(none)}`);
	const part = await a.request({ op: 'query-once', q: { nevercached: {} }, policy: 'cache-only' });
	check(part.op === 'query-ok' && part.partial === true && part['from-cache'] === true && part.data.nevercached.length === 0,
		`cache-only of an uncached query answers partial: ${JSON.stringify(part)}`);
	await new Promise((r) => setTimeout(r, 500));
	const list = await a.request({ op: 'list-mutations' });
	check(list.mutations.some((m) => m['mutation-id'] === w['mutation-id'] && m.state === 'pending'),
		`the write is held, not sent: ${JSON.stringify(list.mutations.map((m) => m.state))}`);
	check(!(await mock.ctl('dump', {})).triples.some((t) => t[0] === id), 'nothing reached the server');
	await mock.ctl('app-status', { status: 'active' });
	await a.next((m) => m.op === 'transact-ok' && m['mutation-id'] === w['mutation-id'], 'it lands once the app is active');
	a.close();
}, { daemons: [daemon] });

await daemon.stop();
await mock.stop();
