// End to end, a query never seen before: offline (and with cache-only) it is answered,
// partial, from every triple mirrored for the profile plus the pending writes; a
// subscriber then gets the server's answer, partial:false, once the server is back.
import { randomUUID } from 'node:crypto';
import { startMock, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, INSTANTCTL, check, equalJSON, run, scenario, waitFor } from './lib.mjs';

const APP = DEFAULT_APP_ID;
const mock = await startMock(['--port', '0']);
const daemon = new Daemon({ server: mock.url });
const [g1, g2, t1, t2, t3] = Array.from({ length: 5 }, () => randomUUID());
// Never asked for while online: goals with their todos.
const NESTED = { goals: { todos: {} } };

// goals as [title, [todo texts]], sorted, so order does not matter.
const shape = (data) => data.goals.map((g) => [g.title, (g.todos || []).map((t) => t.text).sort()])
	.sort((a, b) => (a[0] < b[0] ? -1 : 1));
const online = async (c) => (await c.request({ op: 'status' })).status.state === 'authenticated';

await scenario('online: prime the mirror with three queries; cache-only of an unseen one is partial', async () => {
	await daemon.start();
	const c = await new Client(daemon.socket).connect();
	await c.init(APP);
	await waitFor(() => online(c), 'connected');
	const w = await c.request({ op: 'transact', ops: [
		['update', 'goals', g1, { title: 'Run' }], ['update', 'goals', g2, { title: 'Read' }],
		['update', 'todos', t1, { text: 'shoes', done: false }], ['update', 'todos', t2, { text: 'book', done: true }],
		['link', 'goals', g1, { todos: t1 }], ['link', 'goals', g2, { todos: t2 }],
	] }, (m) => m.op === 'transact-queued' || m.op === 'error');
	check(w.op === 'transact-queued', `queued: ${JSON.stringify(w)}`);
	await c.next((m) => m.op === 'transact-ok' && m['mutation-id'] === w['mutation-id'], 'transact-ok');
	// The mirror: all goals, all todos (neither with links), and Run with its todos.
	for (const q of [{ goals: {} }, { todos: {} }, { goals: { $: { where: { title: 'Run' } }, todos: {} } }]) {
		const r = await c.request({ op: 'query-once', q, policy: 'network-only' });
		check(r.op === 'query-ok' && r.partial === false && r['from-cache'] === false, `primed ${JSON.stringify(q)}: ${JSON.stringify(r)}`);
	}
	const addQueries = async () => (await mock.ctl('stats', {})).stats.received['add-query'] ?? 0;
	const seen = await addQueries();
	check(seen >= 3, `the mock counts add-query: ${seen}`);
	const only = await c.request({ op: 'query-once', q: { todos: { $: { where: { done: true } } } }, policy: 'cache-only' });
	check(only.op === 'query-ok' && only.partial === true && only['from-cache'] === true &&
		equalJSON(only.data.todos.map((t) => t.text), ['book']), `cache-only, unseen, online: ${JSON.stringify(only)}`);
	const none = await c.request({ op: 'query-once', q: { todos: { $: { where: { done: true } } } }, policy: 'cache-only', 'allow-partial': false });
	check(none.op === 'error' && none.type === 'not-found', `cache-only without partial: ${JSON.stringify(none)}`);
	const after = await addQueries();
	check(after === seen, `cache-only never asked the server (${seen} then ${after} add-query)`);
	c.close();
}, { daemons: [daemon] });

await scenario('offline after a restart: an unseen nested query is partial, with a pending write layered in', async () => {
	await mock.ctl('refuse', { ms: -1, drop: true });
	await daemon.stop();
	await daemon.start();	// the mirror now lives only in the database
	const c = await new Client(daemon.socket).connect();
	await c.init(APP);
	await waitFor(async () => !(await online(c)) &&
		(await c.request({ op: 'status' })).status.state !== 'connecting', 'the first attempt failed');
	const w = await c.request({ op: 'transact', ops: [
		['update', 'todos', t3, { text: 'map', done: false }], ['link', 'goals', g2, { todos: t3 }],
	] }, (m) => m.op === 'transact-queued' || m.op === 'error');
	check(w.op === 'transact-queued', `queued offline: ${JSON.stringify(w)}`);

	const no = await c.request({ op: 'query-once', q: NESTED, 'allow-partial': false });
	check(no.op === 'error' && no.type === 'offline', `allow-partial false: ${JSON.stringify(no)}`);
	// By hand: Run's link to shoes came with the third query; Read's link to book was
	// never mirrored (a partial answer misses it); Read gets map from the pending write.
	const once = await c.request({ op: 'query-once', q: NESTED });
	check(once.op === 'query-ok' && once.partial === true && once['from-cache'] === true &&
		once['has-pending-writes'] === true, `partial flags: ${JSON.stringify(once)}`);
	check(equalJSON(shape(once.data), [['Read', ['map']], ['Run', ['shoes']]]), `partial data: ${JSON.stringify(once.data)}`);
	const where = await c.request({ op: 'query-once', q: { todos: { $: { where: { done: false } } } } });
	check(where.partial === true && equalJSON(where.data.todos.map((t) => t.text).sort(), ['map', 'shoes']),
		`where on an attr: ${JSON.stringify(where)}`);

	const ctl = await run(INSTANTCTL, ['--socket', daemon.socket, '--app', APP, 'watch', '--count', '1', JSON.stringify(NESTED)]);
	check(ctl.status === 0 && /^instantctl: partial result: /m.test(ctl.stderr) && /# from cache, has pending writes, partial/.test(ctl.stdout) &&
		/map/.test(ctl.stdout), `instantctl watch says partial: ${ctl.status} ${ctl.stdout} ${ctl.stderr}`);

	// A subscriber: partial now, the server's whole answer once it is back.
	const sub = c.send({ op: 'add-query', q: NESTED });
	const first = await c.next((m) => m['client-event-id'] === sub && m.op === 'add-query-ok', 'the partial answer');
	check(first.partial === true && equalJSON(shape(first.data), [['Read', ['map']], ['Run', ['shoes']]]),
		`subscriber's partial answer: ${JSON.stringify(first)}`);
	await mock.ctl('refuse', { ms: 0 });
	const full = await c.next((m) => m['client-event-id'] === sub && m.op === 'refresh-ok' && m.partial === false &&
		m['from-cache'] === false, 'the server answer', 30000);
	check(equalJSON(shape(full.data), [['Read', ['book', 'map']], ['Run', ['shoes']]]), `server answer: ${JSON.stringify(full.data)}`);
	check(!c.messages.some((m) => m['client-event-id'] === sub && m.op === 'error'), 'no error to the subscriber');
	c.close();
}, { daemons: [daemon] });

await daemon.stop();
await mock.stop();
