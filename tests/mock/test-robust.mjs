// Malformed client messages of every op get an error reply in the real shape (never the untyped
// 500 "Yikes", never silence) and never take the server down.
import { startMock, rawClient, runTest } from './harness.mjs';

await runTest('mock robustness', async (t) => {
	const mock = await startMock(['--seed', 'zeneca']);
	t.cleanup(() => mock.stop());
	const c = await rawClient(mock.url);
	t.cleanup(() => c.close());
	await c.init();
	const vals = [null, 1, 'x', true, [], {}, [1], { a: 1 }, [[1]], { $: 5 }, -1, 1e308, '11111111-1111-4111-8111-111111111111', ['x', 'y']];
	const ops = ['init', 'add-query', 'remove-query', 'transact', 'join-room', 'leave-room', 'set-presence', 'client-broadcast', 'start-sync', 'refresh', 'error'];
	const fields = ['q', 'tx-steps', 'room-id', 'data', 'topic', 'app-id', 'refresh-token', 'versions'];
	let n = 0; const yikes = [];
	for (const op of ops) for (const f of fields) for (const v of vals) {
	  const r = await c.request({ op, [f]: v, 'room-id': f === 'room-id' ? v : 'r' }, { timeout: 2000 }).catch(() => ({ op: 'NO-REPLY' }));
	  n++;
	  if (r.type === null || r.op === 'NO-REPLY') yikes.push([op, f, JSON.stringify(v), r.op, r.message]);
	}
	// nested query shapes
	const qs = [{ users: { $: { where: { handle: { $in: 5 } } } } }, { users: { $: { where: { handle: { $like: 5 } } } } }, { users: { $: { where: null } } },
	  { users: { $: { where: { or: 5 } } } }, { users: { $: { where: { or: [5] } } } }, { users: { $: { limit: 'x' } } }, { users: { $: { order: 5 } } },
	  { users: { $: { order: { serverCreatedAt: 'sideways' } } } }, { users: { $: { after: 5, limit: 1 } } }, { users: { $: { after: [1, 2], limit: 1 } } },
	  { users: { $: { fields: 'x' } } }, { users: { bookshelves: 5 } }, { users: { $: { where: { 'bookshelves.books.title': { $gt: {} } } } } },
	  { users: { $: { where: { '': 1 } } } }, { users: { $: { where: { 'a..b': 1 } } } }, { users: { $: { where: { handle: { $isNull: 'x' } } } } },
	  { users: { $: { where: { handle: { $not: null } } } } }, { users: { $: { where: { id: { $in: [null] } } } } }, { users: { $: { where: { bookshelves: 'x' } } } }];
	for (const q of qs) {
	  const r = await c.request({ op: 'add-query', q }, { timeout: 2000 }).catch(() => ({ op: 'NO-REPLY' }));
	  n++;
	  if (r.type === null || r.op === 'NO-REPLY') yikes.push(['add-query', JSON.stringify(q), r.op, r.message]);
	}
	const steps = [[['add-triple']], [['add-triple', '11111111-1111-4111-8111-111111111111', '6a089759-2a2f-4898-9bb8-a7bc9f6f791a']], [['delete-entity']], [['delete-entity', 5]],
	 [['add-attr', 5]], [['add-attr', { id: '11111111-1111-4111-8111-111111111112' }]], [['update-attr', null]], [['retract-triple', ['x'], 'y', 1]],
	 [['add-triple', ['6a089759-2a2f-4898-9bb8-a7bc9f6f791a'], '6a089759-2a2f-4898-9bb8-a7bc9f6f791a', 1]], [['add-triple', ['6a089759-2a2f-4898-9bb8-a7bc9f6f791a', 'x', 'y'], '6a089759-2a2f-4898-9bb8-a7bc9f6f791a', 1]],
	 [['deep-merge-triple', '11111111-1111-4111-8111-111111111111', '6a089759-2a2f-4898-9bb8-a7bc9f6f791a', { a: 1 }, 5]], [['rule-params']], [null], [5], ['add-triple']];
	for (const s of steps) {
	  const r = await c.request({ op: 'transact', 'tx-steps': s }, { timeout: 2000 }).catch(() => ({ op: 'NO-REPLY' }));
	  n++;
	  if (r.type === null || r.op === 'NO-REPLY') yikes.push(['transact', JSON.stringify(s), r.op, r.message]);
	}
	t.ok(n > 1000, `${n} malformed requests sent`);
	t.eq(yikes, [], 'every one answered with a typed error or a normal reply');
	t.ok((await mock.ctl('status')).ok, 'server alive');
	const after = await c.request({ op: 'add-query', q: { users: {} } });
	t.eq(after.op, 'add-query-ok', 'session still usable');
});
