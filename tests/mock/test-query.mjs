// Query results: the triples the mock sends for a query must let @instantdb/core's own instaql give
// the same answer it gives on the whole data set (zeneca), and have the real server's shape.
import { importDep } from '../lib/deps.mjs';
import { startMock, rawClient, runTest } from './harness.mjs';

const instaql = (await importDep('@instantdb/core/dist/esm/instaql.js')).default;
const s = await importDep('@instantdb/core/dist/esm/store.js');

function evalOn(attrs, triples, q, pageInfo) {
	const byId = Object.fromEntries(attrs.map((a) => [a.id, a]));
	const as = new s.AttrsStoreClass(byId, null);
	const store = s.createStore(as, triples, false, false);
	return instaql({ store, attrsStore: as, pageInfo }, q).data;
}

const QUERIES = [
	{ users: {} },
	{ users: { bookshelves: { books: {} } } },
	{ users: { $: { where: { handle: 'stopa' } }, bookshelves: {} } },
	{ bookshelves: { $: { where: { 'books.title': 'Sum' } } } },
	{ books: { $: { where: { or: [{ title: 'Sum' }, { pageCount: { $gt: 700 } }] } } } },
	{ books: { $: { where: { title: { $like: '%Rational%' } } } } },
	{ books: { $: { where: { 'bookshelves.users.handle': 'joe' } } } },
	{ bookshelves: { $: { where: { name: 'Poetry' } }, books: { $: { where: { title: { $in: ['Sum', 'Insurgent'] } } } } } },
	{ books: { $: { where: { and: [{ 'bookshelves.name': 'Poetry' }, { pageCount: { $lt: 200 } }] } } } },
	{ users: { $: { where: { 'bookshelves.name': { $not: 'Poetry' } } } } },
	{ books: { $: { where: { description: { $isNull: true } } } } },
	{ users: { $: { fields: ['handle'] }, bookshelves: { $: { fields: ['name'] } } } },
	{ books: { $: { where: { id: 'f11c998f-d951-426b-b2b1-ffcb8d17bac5' } }, bookshelves: { users: {} } } },
	{ nosuch: {}, users: { $: { where: { nosuchattr: 1 } } } },
	{ users: { $: { where: { bookshelves: '0f7d30dc-500e-448f-9853-548a45da7d2d' } } } },
	{ bookshelves: { $: { where: { users: 'ce942051-2d74-404a-9c7d-4aa3f2d54ae4' } }, books: {} } },
	{ bookshelves: { $: { where: { 'users.id': 'ce942051-2d74-404a-9c7d-4aa3f2d54ae4', name: { $ilike: '%o%' } } } } },
	{ books: { $: { where: { 'next.title': { $in: ['Sum', 'Insurgent'] } } }, prequel: {}, sequels: {} } },
	{ users: { $: { where: { or: [{ handle: 'joe' }, { 'bookshelves.books.pageCount': { $gte: 900 } }] } } } },
	{ books: { $: { where: { title: { $ne: 'Sum' }, pageCount: { $isNull: false } } } } },
	{ users: { $: { where: { 'bookshelves.books.title': { $isNull: true } } } } },
];

const norm = (x) => JSON.stringify(sortDeep(x));
function sortDeep(x) {
	if (Array.isArray(x)) return x.map(sortDeep).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
	if (x && typeof x === 'object') return Object.fromEntries(Object.keys(x).sort().map((k) => [k, sortDeep(x[k])]));
	return x;
}

await runTest('mock query', async (t) => {
	const mock = await startMock(['--seed', 'zeneca']);
	t.cleanup(() => mock.stop());
	const full = await mock.ctl('dump');
	const c = await rawClient(mock.url);
	t.cleanup(() => c.close());
	const init = await c.init();
	t.eq(init.op, 'init-ok', 'init-ok');

	for (const q of QUERIES) {
		const r = await c.request({ op: 'add-query', q });
		t.eq(r.op, 'add-query-ok', `add-query-ok for ${JSON.stringify(q)}`);
		t.ok(Array.isArray(r.result) && r.result.length === 1 && r.result[0]['child-nodes'].length === 0 &&
			r.result[0].data['datalog-result']['join-rows'].length === 1, 'flattened one-row shape');
		const rows = r.result[0].data['datalog-result']['join-rows'][0];
		const keys = rows.map((x) => JSON.stringify(x.slice(0, 3)));
		t.eq(new Set(keys).size, keys.length, 'no duplicate triples');
		t.ok(rows.every((x) => x.length === 4 && Number.isInteger(x[3])), 'triples are [e,a,v,created_at]');
		const want = evalOn(full.attrs, full.triples, q);
		const got = evalOn(init.attrs, rows, q);
		t.eq(norm(got), norm(want), `client-side result from the sent triples equals the full-store result`);
		t.eq(typeof r['processed-tx-id'], 'number', 'processed-tx-id is a number');
	}

	// Where-path triples: only the matching chain, no id triple of the path entity.
	const bq = { bookshelves: { $: { where: { 'books.title': 'Sum' } } } };
	const again = await c.request({ op: 'add-query', q: bq });
	t.eq(again.op, 'add-query-exists', 'duplicate q gets add-query-exists');
	const r2 = await c.request({ op: 'add-query', q: { ...bq, $$ruleParams: {} } });
	const rows2 = r2.result[0].data['datalog-result']['join-rows'][0];
	const TITLE = 'ed11294d-cd7d-4f3d-8918-4806c80b8a43';
	const BOOK_ID = '6eebf15a-ed3c-4442-8869-a44a7c85a1be';
	t.ok(rows2.filter((x) => x[1] === TITLE).every((x) => x[2] === 'Sum'), 'only the matched title triple on the where path');
	t.ok(!rows2.some((x) => x[1] === BOOK_ID), 'path entity gets no id triple');

	// Pagination: page-info keyed by the top-level key, cursors are id triples for serverCreatedAt.
	const USERS_ID = '5a4f5a6d-ba83-4bf0-ae78-27a863300224';
	const p1 = await c.request({ op: 'add-query', q: { users: { $: { limit: 2 } } } });
	const pi = p1.result[0].data['page-info']?.users;
	t.ok(pi && pi['has-next-page?'] === true && pi['has-previous-page?'] === false, 'page-info for limit 2 of 4');
	t.eq(pi['start-cursor'][1], USERS_ID, 'cursor is on the id attr');
	const ids1 = new Set(p1.result[0].data['datalog-result']['join-rows'][0].map((x) => x[0]));
	t.eq(ids1.size, 2, 'two users on page 1');
	const p2 = await c.request({ op: 'add-query', q: { users: { $: { limit: 2, after: pi['end-cursor'] } } } });
	const pi2 = p2.result[0].data['page-info'].users;
	const ids2 = new Set(p2.result[0].data['datalog-result']['join-rows'][0].map((x) => x[0]));
	t.ok(ids2.size === 2 && [...ids2].every((x) => !ids1.has(x)), 'after cursor gives the next two');
	t.ok(pi2['has-next-page?'] === false && pi2['has-previous-page?'] === true, 'page 2 page-info');
	const got2 = evalOn(init.attrs, p2.result[0].data['datalog-result']['join-rows'][0], { users: { $: { limit: 2, after: pi['end-cursor'] } } }, p2.result[0].data['page-info']);
	t.eq(got2.users.length, 2, 'client shows page 2 from the sent triples and page-info');
	const off = await c.request({ op: 'add-query', q: { users: { $: { offset: 3 } } } });
	t.eq(new Set(off.result[0].data['datalog-result']['join-rows'][0].map((x) => x[0])).size, 1, 'offset 3 of 4 leaves one');
	const lastq = await c.request({ op: 'add-query', q: { users: { $: { last: 1 } } } });
	t.eq(lastq.result[0].data['page-info'].users['has-previous-page?'], true, 'last 1 has a previous page');

	// Ordering needs an indexed, typed attr.
	const bad = await c.request({ op: 'add-query', q: { books: { $: { order: { title: 'asc' } } } } });
	t.eq([bad.op, bad.type, bad.status], ['error', 'validation-failed', 400], 'order on untyped attr rejected');
	t.eq(bad['original-event'].op, 'add-query', 'error carries original-event.op');
	t.eq(bad['original-event'].q, { books: { $: { order: { title: 'asc' } } } }, 'error carries original-event.q');
	const agg = await c.request({ op: 'add-query', q: { books: { $: { aggregate: 'count' } } } });
	t.ok(agg.type === 'validation-failed' && /Aggregates/.test(agg.message), 'aggregate is admin-only');
	const nul = await c.request({ op: 'add-query', q: null });
	t.eq(nul.message, 'Validation failed for add-query: Query can not be null.', 'null query message');
	const mal = await c.request({ op: 'add-query', q: { movie: 'Foo' } });
	t.eq([mal.op, mal.type], ['error', 'validation-failed'], 'malformed query rejected');
	// Ordering by an indexed, typed attr, with data set up through the seed and transact controls.
	const APP = '33333333-3333-4333-8333-333333333333';
	await mock.ctl('add-app', { 'app-id': APP });
	const ID = 'aaaaaaaa-0000-4000-8000-000000000001';
	const SCORE = 'aaaaaaaa-0000-4000-8000-000000000002';
	const WHEN = 'aaaaaaaa-0000-4000-8000-000000000003';
	const mk = (id, label, extra) => ({ id, 'forward-identity': [id.replace('aaaaaaaa', 'bbbbbbbb'), 'posts', label],
		'value-type': 'blob', cardinality: 'one', 'unique?': false, 'index?': true, ...extra });
	const ents = ['01', '02', '03', '04', '05'].map((n) => `cccccccc-0000-4000-8000-0000000000${n}`);
	await mock.ctl('seed', { 'app-id': APP, attrs: [mk(ID, 'id', { 'unique?': true }), mk(SCORE, 'score', { 'checked-data-type': 'number' }),
		mk(WHEN, 'when', { 'checked-data-type': 'date' })],
	triples: ents.map((e, i) => [e, ID, e, 1000 + i]) });
	const scores = [30, 10, 50, 20, 40];
	const tx = await mock.ctl('transact', { 'app-id': APP, 'tx-steps': ents.flatMap((e, i) => [['add-triple', e, SCORE, scores[i]],
		['add-triple', e, WHEN, `2024-01-0${i + 1}T00:00:00Z`]]) });
	t.ok(Number.isInteger(tx['tx-id']), 'control transact returns a tx-id');
	const pc = await rawClient(mock.url, { appId: APP });
	t.cleanup(() => pc.close());
	const pinit = await pc.init();
	const page = async (form) => {
		const r = await pc.request({ op: 'add-query', q: { posts: form } });
		const rows = r.result[0].data['datalog-result']['join-rows'][0];
		const pi = r.result[0].data['page-info'];
		const got = evalOn(pinit.attrs.concat([]), rows, { posts: form }, pi);
		return { pi: pi?.posts, ids: got.posts.map((p) => p.id), scores: got.posts.map((p) => p.score), rows };
	};
	const o1 = await page({ $: { order: { score: 'desc' }, limit: 2 } });
	t.eq(o1.scores, [50, 40], 'order by score desc, limit 2 (client view of the sent triples)');
	t.eq(o1.pi['start-cursor'].slice(1, 3), [SCORE, 50], 'cursor is the order-attr triple');
	t.eq([o1.pi['has-next-page?'], o1.pi['has-previous-page?']], [true, false], 'first page flags');
	const o2 = await page({ $: { order: { score: 'desc' }, limit: 2, after: o1.pi['end-cursor'] } });
	t.eq(o2.scores, [30, 20], 'next page after the end cursor');
	const o3 = await page({ $: { order: { score: 'desc' }, last: 2 } });
	t.eq(o3.scores.sort(), [10, 20], 'last 2');
	const o4 = await page({ $: { order: { score: 'asc' }, before: o1.pi['end-cursor'], beforeInclusive: true } });
	t.eq(o4.scores, [10, 20, 30, 40], 'before (inclusive) a cursor, ascending');
	const o5 = await page({ $: { order: { when: 'desc' }, limit: 1 } });
	t.eq(o5.ids, [ents[4]], 'order by a date attr');
	const o6 = await page({ $: { order: { serverCreatedAt: 'desc' }, limit: 2 } });
	t.eq(o6.ids, [ents[4], ents[3]], 'order by serverCreatedAt desc uses the id triple created_at');
	t.eq(o6.pi['end-cursor'], [ents[3], ID, ents[3], 1003], 'serverCreatedAt cursor is the id triple');
	const seeded = await mock.ctl('seed', { 'app-id': APP, attrs: [], triples: [], replace: true });
	t.eq((await mock.ctl('dump', { 'app-id': APP })).triples.length, 0, 'seed replace empties the app');
	t.ok(seeded['tx-id'] > tx['tx-id'], 'seed takes a tx-id');

	const rm = await c.request({ op: 'remove-query', q: { users: {} } });
	t.eq([rm.op, rm.q], ['remove-query-ok', { users: {} }], 'remove-query-ok echoes q');
	const rm2 = await c.request({ op: 'remove-query', q: { never: {} } });
	t.eq(rm2.op, 'remove-query-ok', 'remove-query-ok even for unknown q');
	const re = await c.request({ op: 'add-query', q: { users: {} } });
	t.eq(re.op, 'add-query-ok', 'after remove, add-query runs again');
});
