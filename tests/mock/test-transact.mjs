// transact: the server's step semantics, errors, tx-ids, and refresh-ok fan-out (raw protocol).
import crypto from 'node:crypto';
import { startMock, rawClient, runTest, sleep } from './harness.mjs';
import { canon } from './store.mjs';

const id = () => crypto.randomUUID();
const A = {};
for (const k of ['gid', 'gtitle', 'gslug', 'gmeta', 'gn', 'gtodos', 'tid', 'ttext', 'tgoal']) A[k] = id();
const attr = (aid, etype, label, extra = {}) => ({ id: aid, 'forward-identity': [id(), etype, label], 'value-type': 'blob',
	cardinality: 'one', 'unique?': false, 'index?': false, ...extra });
const ATTRS = [
	attr(A.gid, 'goals', 'id', { 'unique?': true, 'index?': true }),
	attr(A.gtitle, 'goals', 'title'),
	attr(A.gslug, 'goals', 'slug', { 'unique?': true, 'index?': true }),
	attr(A.gmeta, 'goals', 'meta'),
	attr(A.gn, 'goals', 'n', { 'checked-data-type': 'number', 'index?': true }),
	attr(A.gtodos, 'goals', 'todos', { 'value-type': 'ref', cardinality: 'many', 'reverse-identity': [id(), 'todos', 'goals'] }),
	attr(A.tid, 'todos', 'id', { 'unique?': true, 'index?': true }),
	attr(A.ttext, 'todos', 'text'),
	attr(A.tgoal, 'todos', 'goal', { 'value-type': 'ref', cardinality: 'one', 'reverse-identity': [id(), 'goals', 'ownedTodos'], 'on-delete': 'cascade' }),
];

const rowsOf = (m) => m.result[0].data['datalog-result']['join-rows'][0];

await runTest('mock transact', async (t) => {
	const ADMIN_APP = id();
	const mock = await startMock([]);
	t.cleanup(() => mock.stop());
	await mock.ctl('add-app', { 'app-id': ADMIN_APP, 'admin-token': 'tok-admin' });
	const a = await rawClient(mock.url);
	const b = await rawClient(mock.url);
	const c = await rawClient(mock.url);
	const old = await rawClient(mock.url);
	for (const x of [a, b, c, old]) t.cleanup(() => x.close());
	await a.init();
	await b.init();
	await c.init();
	const oldInit = await old.request({ op: 'init', 'app-id': '11111111-1111-4111-8111-111111111111' });
	t.eq(oldInit.op, 'init-ok', 'init without versions');
	const dump = async () => (await mock.ctl('dump')).triples;
	const G1 = id();
	const G2 = id();
	const T1 = id();
	const T2 = id();

	await b.request({ op: 'add-query', q: { goals: {} } });
	await c.request({ op: 'add-query', q: { todos: {} } });
	await old.request({ op: 'add-query', q: { todos: {} } });

	// 1. add-attr + writes in one transaction.
	let bm = b.mark();
	let cm = c.mark();
	const tx1 = await a.request({ op: 'transact', 'tx-steps': [
		...ATTRS.map((x) => ['add-attr', { ...x, isUnsynced: true }]),
		['add-triple', G1, A.gid, G1, { mode: 'create' }], ['add-triple', G1, A.gtitle, 'one', { mode: 'create' }],
		['add-triple', G2, A.gid, G2], ['add-triple', G2, A.gtitle, 'two'],
	], created: 1, order: 1 });
	t.eq(tx1.op, 'transact-ok', 'transact-ok' + (tx1.op === 'error' ? tx1.message : ''));
	t.ok(Number.isInteger(tx1['tx-id']) && typeof tx1.isn === 'string', 'tx-id integer, isn string');
	const rb = await b.waitFor((m) => m.op === 'refresh-ok', { from: bm, what: 'b refresh' });
	t.ok(rb['processed-tx-id'] >= tx1['tx-id'], 'processed-tx-id >= tx-id');
	t.ok(Array.isArray(rb.attrs) && rb.attrs.some((x) => x.id === A.gtodos), 'refresh-ok carries attrs after add-attr');
	t.ok(!rb.attrs.some((x) => 'isUnsynced' in x), 'unknown attr keys are not stored');
	t.eq(rb.computations.length, 1, 'one changed computation');
	t.eq(rb.computations[0]['instaql-query'], { goals: {} }, 'computation names its query');
	t.eq(new Set(rb.computations[0]['instaql-result'][0].data['datalog-result']['join-rows'][0].map((x) => x[0])), new Set([G1, G2]), 'full recomputed result');
	const rc = await c.waitFor((m) => m.op === 'refresh-ok', { from: cm, what: 'c refresh (attrs)' });
	t.eq(rc.computations, [], 'unaffected query: attrs-only refresh-ok');

	// 2. Only sessions whose results changed get refresh-ok; old clients get one with attrs every time.
	cm = c.mark();
	const om = old.mark();
	const tx2 = await a.request({ op: 'transact', 'tx-steps': [['add-triple', G1, A.gtitle, 'one!']] });
	t.ok(tx2['tx-id'] > tx1['tx-id'], 'tx-ids increase');
	const tx3 = await a.request({ op: 'transact', 'tx-steps': [['add-triple', T1, A.tid, T1], ['add-triple', T1, A.ttext, 'hi'], ['add-triple', G1, A.gtodos, T1]] });
	await c.waitFor((m) => m.op === 'refresh-ok', { from: cm, what: 'c refresh for todos' });
	const cFrames = c.log.events.slice(cm).filter((m) => m.op === 'refresh-ok');
	t.eq(cFrames.length, 1, 'no refresh-ok for a write that did not change the query');
	t.eq(cFrames[0]['processed-tx-id'], tx3['tx-id'], 'refresh for the todos tx');
	t.ok(!('attrs' in cFrames[0]), 'skip-attrs client gets no attrs when unchanged');
	await old.waitFor((m) => m.op === 'refresh-ok' && m['processed-tx-id'] === tx3['tx-id'], { from: om, what: 'old client refresh' });
	const oldFrames = old.log.events.slice(om).filter((m) => m.op === 'refresh-ok');
	t.ok(oldFrames.every((m) => Array.isArray(m.attrs)), 'client without skip-attrs gets attrs on every refresh-ok');

	// A write reached only through a where path refreshes the query.
	const d = await rawClient(mock.url);
	t.cleanup(() => d.close());
	await d.init();
	const dq = await d.request({ op: 'add-query', q: { goals: { $: { where: { 'todos.text': 'bye' } } } } });
	t.eq(rowsOf(dq).length, 0, 'no goal has a todo with text bye yet');
	const dm = d.mark();
	await a.request({ op: 'transact', 'tx-steps': [['add-triple', T1, A.ttext, 'bye']] });
	const dr = await d.waitFor((m) => m.op === 'refresh-ok', { from: dm, what: 'where-path refresh' });
	t.ok(rowsOf({ result: dr.computations[0]['instaql-result'] }).some((x) => x[0] === G1 && x[1] === A.gid), 'goal now matches through todos.text');

	// A commit recomputes only what it can change: an attr that only fills objects, written on an
	// entity outside a result, leaves that subscription alone; a link recomputes it.
	const e = await rawClient(mock.url);
	t.cleanup(() => e.close());
	await e.init();
	const QG1 = { goals: { $: { where: { id: G1 } }, todos: {} } }, QG2 = { goals: { $: { where: { id: G2 } }, todos: {} } };
	await e.request({ op: 'add-query', q: QG1 });
	await e.request({ op: 'add-query', q: QG2 });
	const recomputes = async (q) => (await mock.ctl('stats')).stats.recomputes[canon(q)] ?? 0;
	let em = e.mark();
	await a.request({ op: 'transact', 'tx-steps': [['add-triple', T1, A.ttext, 'bye!']] });
	await e.waitFor((m) => m.op === 'refresh-ok', { from: em, what: 'G1 refresh for its todo' });
	t.eq([await recomputes(QG1), await recomputes(QG2)], [1, 0], 'only the goal holding the todo is recomputed');
	em = e.mark();
	await a.request({ op: 'transact', 'tx-steps': [['add-triple', G2, A.gtodos, T1]] });
	const er = await e.waitFor((m) => m.op === 'refresh-ok', { from: em, what: 'G2 refresh for the link' });
	t.ok(er.computations.some((x) => canon(x['instaql-query']) === canon(QG2)), 'the link reaches G2');
	t.eq(await recomputes(QG2), 1, 'a link is recomputed');
	await a.request({ op: 'transact', 'tx-steps': [['retract-triple', G2, A.gtodos, T1]] });

	// 3. Cardinality one: replace, keep created_at.
	let tr = await dump();
	const titles = tr.filter((x) => x[0] === G1 && x[1] === A.gtitle);
	t.eq(titles.length, 1, 'one value per (e,a)');
	t.eq(titles[0][2], 'one!', 'value replaced');

	// 4. Grouping: add-triples run before delete-entity regardless of order in the list.
	const G3 = id();
	await a.request({ op: 'transact', 'tx-steps': [['add-triple', G3, A.gid, G3], ['add-triple', G3, A.gtitle, 'a']] });
	const created = (await dump()).find((x) => x[0] === G3 && x[1] === A.gtitle)[3];
	await a.request({ op: 'transact', 'tx-steps': [['add-triple', G3, A.gtitle, 'b'], ['delete-entity', G3, 'goals'], ['add-triple', G3, A.gtitle, 'c']] });
	t.ok(!(await dump()).some((x) => x[0] === G3), 'steps grouped by op in first-appearance order');
	await a.request({ op: 'transact', 'tx-steps': [['delete-entity', G3, 'goals'], ['add-triple', G3, A.gtitle, 'again']] });
	t.ok((await dump()).some((x) => x[0] === G3 && x[2] === 'again'), 'delete then re-add');
	t.ok(created > 0, 'created_at present');

	// 5. deep-merge.
	await a.request({ op: 'transact', 'tx-steps': [['deep-merge-triple', G1, A.gmeta, { a: { b: 1, c: 2 }, x: [1] }]] });
	await a.request({ op: 'transact', 'tx-steps': [['deep-merge-triple', G1, A.gmeta, { a: { b: null, d: 3 }, x: [2] }]] });
	tr = await dump();
	t.eq(tr.find((x) => x[0] === G1 && x[1] === A.gmeta)[2], { a: { c: 2, d: 3 }, x: [2] }, 'deep-merge: nested merge, null deletes, arrays replace');
	const mr = await a.request({ op: 'transact', 'tx-steps': [['deep-merge-triple', G1, A.gtodos, { a: 1 }]] });
	t.eq([mr.type, mr.message], ['sql-raise', 'Raised Exception: merge operation is not supported for links'], 'merge on a link rejected');

	// 6. retract.
	await a.request({ op: 'transact', 'tx-steps': [['retract-triple', G1, A.gtodos, T1], ['retract-triple', G1, A.gtodos, id()]] });
	t.ok(!(await dump()).some((x) => x[1] === A.gtodos), 'retract removes the link; absent retract is a no-op');

	// 7. delete-entity with on-delete cascade (todos.goal cascade: deleting the goal deletes its todos).
	await a.request({ op: 'transact', 'tx-steps': [['add-triple', T2, A.tid, T2], ['add-triple', T2, A.tgoal, G2], ['add-triple', G2, A.gtodos, T1]] });
	await a.request({ op: 'transact', 'tx-steps': [['delete-entity', G2, 'goals']] });
	tr = await dump();
	t.ok(!tr.some((x) => x[0] === G2), 'deleted entity gone');
	t.ok(!tr.some((x) => x[0] === T2), 'on-delete cascade deleted the linked todo');
	t.ok(tr.some((x) => x[0] === T1 && x[1] === A.tid), 'entity linked without cascade survives');
	t.ok(!tr.some((x) => x[1] === A.gtodos && x[2] === T1 && x[0] === G2), 'links to the deleted entity removed');

	const SUB = id();
	const SID = id();
	const G4 = id();
	const ST1 = id();
	await a.request({ op: 'transact', 'tx-steps': [
		['add-attr', attr(SID, 'subtasks', 'id', { 'unique?': true, 'index?': true })],
		['add-attr', attr(SUB, 'goals', 'subtasks', { 'value-type': 'ref', cardinality: 'many', 'reverse-identity': [id(), 'subtasks', 'goal'], 'on-delete-reverse': 'cascade' })],
		['add-triple', G4, A.gid, G4], ['add-triple', ST1, SID, ST1], ['add-triple', G4, SUB, ST1]] });
	await a.request({ op: 'transact', 'tx-steps': [['delete-entity', G4, 'goals']] });
	t.ok(!(await dump()).some((x) => x[0] === ST1), 'on-delete-reverse cascade deleted the link target');

	// 8. Lookup refs: upsert-create, update, lookup values.
	await a.request({ op: 'transact', 'tx-steps': [['add-triple', [A.gslug, 's1'], A.gid, [A.gslug, 's1']], ['add-triple', [A.gslug, 's1'], A.gtitle, 'by-lookup']] });
	tr = await dump();
	const S1 = tr.find((x) => x[1] === A.gslug && x[2] === 's1')?.[0];
	t.ok(S1 && tr.some((x) => x[0] === S1 && x[1] === A.gid && x[2] === S1), 'lookup created the entity with its id triple');
	t.ok(tr.some((x) => x[0] === S1 && x[2] === 'by-lookup'), 'lookup write landed');
	await a.request({ op: 'transact', 'tx-steps': [['add-triple', T1, A.tgoal, [A.gslug, 's1']]] });
	t.ok((await dump()).some((x) => x[0] === T1 && x[1] === A.tgoal && x[2] === S1), 'lookup ref as link value resolved');
	const lk = await a.request({ op: 'transact', 'tx-steps': [['add-triple', T1, A.tgoal, [A.gslug, 'nope']]] });
	t.eq(lk.message, 'Validation failed for lookup: The entity for the lookup does not exist.', 'unresolved lookup value');
	const byId = id();
	await a.request({ op: 'transact', 'tx-steps': [['add-triple', [A.gid, byId], A.gtitle, 'id-lookup']] });
	t.ok((await dump()).some((x) => x[0] === byId && x[1] === A.gid), 'id lookup creates the entity with that id');
	const nonUnique = await a.request({ op: 'transact', 'tx-steps': [['add-triple', [A.gtitle, 'x'], A.gtitle, 'y']] });
	t.eq(nonUnique.type, 'sql-raise', 'lookup on non-unique attr rejected');
	await a.request({ op: 'transact', 'tx-steps': [['delete-entity', [A.gslug, 'missing'], 'goals']] }).then((r) => t.eq(r.op, 'transact-ok', 'unresolved delete lookup dropped silently'));

	// 9. Modes against the pre-transaction state.
	const m1 = await a.request({ op: 'transact', 'tx-steps': [['add-triple', G1, A.gtitle, 'z', { mode: 'create' }]] });
	t.eq([m1.type, m1.message], ['validation-failed', `Validation failed for tx-step: Creating entities that exist: ${G1}`], 'create on existing');
	const ghost = id();
	const m2 = await a.request({ op: 'transact', 'tx-steps': [['add-triple', ghost, A.gtitle, 'z', { mode: 'update' }]] });
	t.eq(m2.message, `Validation failed for tx-step: Updating entities that don't exist: ${ghost}`, 'update on missing');
	const fresh = id();
	const m3 = await a.request({ op: 'transact', 'tx-steps': [['add-triple', fresh, A.gid, fresh, { mode: 'create' }], ['add-triple', fresh, A.gtitle, 'n', { mode: 'create' }]] });
	t.eq(m3.op, 'transact-ok', 'create of a new entity, several steps');

	// 10. add-attr rules.
	const again = await a.request({ op: 'transact', 'tx-steps': [['add-attr', ATTRS[1]]] });
	t.eq(again.op, 'transact-ok', 're-sending an identical add-attr is a no-op');
	const dup = await a.request({ op: 'transact', 'tx-steps': [['add-attr', attr(id(), 'goals', 'title')]] });
	t.eq([dup.type, dup.message, dup.hint], ['record-not-unique', '`title` already exists on `goals`', { 'record-type': 'ident', etype: 'goals', label: 'title' }], 'duplicate ident');
	const sysE = await a.request({ op: 'transact', 'tx-steps': [['add-attr', attr(id(), '$foo', 'x')]] });
	t.eq(sysE.message, "Validation failed for attributes: $ is reserved for system tables. You can't create $foo", '$ etypes reserved');
	const conflict = await a.request({ op: 'transact', 'tx-steps': [['add-attr', { ...ATTRS[1], 'index?': true }]] });
	t.eq(conflict.type, 'sql-raise', 'same attr id with other properties conflicts');

	// 11. update-attr / delete-attr need admin.
	const ua = await a.request({ op: 'transact', 'tx-steps': [['update-attr', { id: A.gtitle, 'index?': true }]] });
	t.eq([ua.type, ua.message], ['permission-denied', 'Permission denied: not perms-pass?'], 'update-attr needs admin');
	const adm = await rawClient(mock.url, { appId: ADMIN_APP });
	t.cleanup(() => adm.close());
	const badAdm = await adm.request({ op: 'init', 'app-id': ADMIN_APP, '__admin-token': 'wrong' });
	t.eq(badAdm.hint?.['record-type'], 'app-admin-token', 'bad admin token fails init');
	const adm2 = await rawClient(mock.url, { appId: ADMIN_APP });
	t.cleanup(() => adm2.close());
	const okAdm = await adm2.request({ op: 'init', 'app-id': ADMIN_APP, '__admin-token': 'tok-admin' });
	t.eq(okAdm.auth['admin?'], true, 'admin session');
	const XA = id();
	const XB = id();
	const E = id();
	await adm2.request({ op: 'transact', 'tx-steps': [['add-attr', attr(XA, 'things', 'id', { 'unique?': true, 'index?': true })], ['add-attr', attr(XB, 'things', 'color')], ['add-triple', E, XA, E], ['add-triple', E, XB, 'red']] });
	const up = await adm2.request({ op: 'transact', 'tx-steps': [['update-attr', { id: XB, 'index?': true }]] });
	t.eq(up.op, 'transact-ok', 'admin update-attr');
	let ad = await mock.ctl('dump', { 'app-id': ADMIN_APP });
	t.eq(ad.attrs.find((x) => x.id === XB)['index?'], true, 'attr updated');
	await adm2.request({ op: 'transact', 'tx-steps': [['delete-attr', XB]] });
	ad = await mock.ctl('dump', { 'app-id': ADMIN_APP });
	t.ok(!ad.attrs.some((x) => x.id === XB) && !ad.triples.some((x) => x[1] === XB), 'delete-attr hides the attr and its triples');
	await adm2.request({ op: 'transact', 'tx-steps': [['restore-attr', XB]] });
	ad = await mock.ctl('dump', { 'app-id': ADMIN_APP });
	t.ok(ad.triples.some((x) => x[1] === XB), 'restore-attr brings them back');
	const agg = await adm2.request({ op: 'add-query', q: { things: { $: { aggregate: 'count' } } } });
	t.eq(agg.result[0].data.aggregate, { things: { count: 1 } }, 'admin aggregate');

	// 12. rule-params is accepted and writes nothing.
	const rp = await a.request({ op: 'transact', 'tx-steps': [['rule-params', G1, 'goals', { k: 'v' }]] });
	t.eq(rp.op, 'transact-ok', 'rule-params accepted');

	// 13. Validation errors in the real shape.
	const v1 = await a.request({ op: 'transact', 'tx-steps': [['add-triple', 'abc', A.gtitle, 1]] });
	t.eq(v1.message, "Validation failed for tx-steps: Invalid entity ID 'abc'. Entity IDs must be UUIDs. Use id() or lookup() to generate a valid UUID.", 'invalid entity id');
	t.eq(v1.hint['data-type'], 'tx-steps', 'hint.data-type');
	t.ok(Array.isArray(v1.hint.errors) && v1.hint.errors[0].in.length === 2, 'hint.errors with in paths');
	for (const k of ['op', 'status', 'client-event-id', 'original-event', 'type', 'message', 'hint', 'trace-id']) t.ok(k in v1, `error has ${k}`);
	const v2 = await a.request({ op: 'transact', 'tx-steps': [['frobnicate', G1]] });
	t.eq([v2.message, v2.hint.errors[0].in], ['Validation failed for tx-steps', [0, 0]], 'unknown step op: spec error');
	const v3 = await a.request({ op: 'transact', 'tx-steps': 'nope' });
	t.eq(v3.type, 'validation-failed', 'non-array tx-steps');
	const v4 = await a.request({ op: 'transact', 'tx-steps': [['add-triple', G1, A.gtodos, 'not-a-uuid']] });
	t.eq(v4.message, 'Validation failed for eid: Expected link value to be a uuid.', 'link value must be a uuid');
	await a.request({ op: 'transact', 'tx-steps': [['add-triple', G1, A.gslug, 'taken']] });
	const v5 = await a.request({ op: 'transact', 'tx-steps': [['add-triple', id(), A.gslug, 'taken']] });
	t.eq([v5.type, v5.message], ['record-not-unique', '`slug` is a unique attribute on `goals` and an entity already exists with `goals.slug` = taken'], 'unique violation');
	const v6 = await a.request({ op: 'transact', 'tx-steps': [['add-triple', G1, A.gn, 'three']] });
	t.eq(v6.message, 'Invalid value type for goals.n. Value must be a number but the provided value type is string.', 'checked data type');
	const v7 = await a.request({ op: 'transact', 'tx-steps': [['add-triple', G1, id(), 1]] });
	t.ok(v7.type === 'sql-raise' && /could not find an attribute/.test(v7.message), 'unknown attr id');
	const v8 = await a.request({ op: 'transact', 'tx-steps': [['add-triple', id(), '96653230-13ff-ffff-a4b4-46010bffffff', 'a@b.c']] });
	t.ok(/system column/.test(v8.message), 'system attrs are protected');

	// 14. Atomicity.
	const sorted = async () => JSON.stringify((await dump()).map((x) => JSON.stringify(x)).sort());
	const before = await sorted();
	const at = await a.request({ op: 'transact', 'tx-steps': [['add-triple', G1, A.gtitle, 'partial'], ['add-triple', G1, A.gn, 'bad']] });
	t.eq(at.op, 'error', 'failing tx errors');
	t.eq(await sorted(), before, 'nothing of a failed transaction is applied');

	// 15. Envelope errors; unparseable frames get no reply and the session keeps working.
	const inv = await a.request({ op: 'no-such-op' });
	t.eq([inv.status, inv.type, inv.message, inv.hint], [400, 'param-malformed', 'Invalid op', { op: 'no-such-op' }], 'Invalid op');
	const m = a.mark();
	a.send('{not json');
	a.send('[1,2]');
	const arr = await a.waitFor((x) => x.op === 'error', { from: m, what: 'error for array message' });
	t.eq(arr.message, 'Invalid op', 'non-object message gets Invalid op');
	const after = await a.request({ op: 'transact', 'tx-steps': [] });
	t.eq(after.op, 'transact-ok', 'empty tx-steps is a valid transaction; session alive after garbage');
	const counts = await mock.ctl('stats');
	t.eq(counts.stats.unparseable, 1, 'unparseable frame counted');
});
