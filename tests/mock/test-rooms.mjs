// Rooms over the raw protocol: join-room-ok, refresh-presence, patch-presence edits,
// leave and close removals, broadcasts, and the room errors.
import { startMock, rawClient, runTest } from './harness.mjs';

await runTest('mock rooms', async (t) => {
	const mock = await startMock([]);
	t.cleanup(() => mock.stop());
	const a = await rawClient(mock.url);
	const b = await rawClient(mock.url);
	const legacy = await rawClient(mock.url);
	for (const x of [a, b, legacy]) t.cleanup(() => x.close());
	const ia = await a.init();
	const ib = await b.init();
	const il = await legacy.request({ op: 'init', 'app-id': '11111111-1111-4111-8111-111111111111', versions: { '@instantdb/core': 'v0.17.5' } });
	const A = ia['session-id'];
	const B = ib['session-id'];
	const L = il['session-id'];

	const e1 = await a.request({ op: 'set-presence', 'room-id': 'r1', data: {} });
	t.eq(e1.message, 'Validation failed for room: You have not entered this room yet.', 'set-presence before join');
	const e2 = await a.request({ op: 'client-broadcast', 'room-id': 'r1', topic: 't', data: {} });
	t.eq(e2.hint?.['data-type'], 'room', 'broadcast before join');
	const e3 = await a.request({ op: 'join-room' });
	t.eq([e3.type, e3.message], ['param-missing', 'Missing parameter: ["room-id"]'], 'room-id missing');
	const e4 = await a.request({ op: 'join-room', 'room-id': 5 });
	t.eq(e4.type, 'param-malformed', 'room-id not a string');

	let am = a.mark();
	const j = await a.request({ op: 'join-room', 'room-type': 'chat', 'room-id': 'r1', data: { name: 'a' } });
	t.eq([j.op, j['room-id']], ['join-room-ok', 'r1'], 'join-room-ok');
	const rp = await a.waitFor((m) => m.op === 'refresh-presence', { from: am, what: 'refresh-presence for joiner' });
	t.eq(rp.data, { [A]: { 'peer-id': A, 'instance-id': 'mock', user: null, data: { name: 'a' } } }, 'joiner gets the full room');

	am = a.mark();
	await b.request({ op: 'join-room', 'room-type': 'other-type', 'room-id': 'r1', data: { name: 'b' } });
	const rpb = await b.waitFor((m) => m.op === 'refresh-presence', { what: 'b refresh-presence' });
	t.eq(Object.keys(rpb.data).sort(), [A, B].sort(), 'room keyed by room-id only (room-type ignored)');
	const pa = await a.waitFor((m) => m.op === 'patch-presence', { from: am, what: 'a patch on b join' });
	t.eq(pa.edits, [[[B], '+', { 'peer-id': B, 'instance-id': 'mock', user: null, data: { name: 'b' } }]], 'others get a + edit');

	// Legacy client (core <= 0.17.5) gets full refresh-presence instead of patches.
	am = a.mark();
	let bm = b.mark();
	await legacy.request({ op: 'join-room', 'room-id': 'r1' });
	await legacy.waitFor((m) => m.op === 'refresh-presence', { what: 'legacy joined' });
	// The peers' patches for this join travel on other sockets and may arrive after the
	// joiner's refresh: wait for them, or they would be taken for the next patch.
	const joinedL = (m) => m.op === 'patch-presence' && m.edits?.[0]?.[0]?.[0] === L;
	await a.waitFor(joinedL, { from: am, what: 'a patch on legacy join' });
	await b.waitFor(joinedL, { from: bm, what: 'b patch on legacy join' });
	const lm = legacy.mark();
	am = a.mark();
	bm = b.mark();
	const sp = await b.request({ op: 'set-presence', 'room-id': 'r1', data: { name: 'b', cursor: { x: 1, y: 2 } } });
	t.eq(sp.op, 'set-presence-ok', 'set-presence-ok');
	const pb = await b.waitFor((m) => m.op === 'patch-presence', { from: bm, what: 'sender patch' });
	t.eq(pb.edits, [[[B, 'data', 'cursor'], '+', { x: 1, y: 2 }]], 'the sender gets the patch too');
	const pa2 = await a.waitFor((m) => m.op === 'patch-presence', { from: am, what: 'a patch' });
	t.eq(pa2.edits, pb.edits, 'peers get the same patch');
	const lr = await legacy.waitFor((m) => m.op === 'refresh-presence', { from: lm, what: 'legacy refresh' });
	t.eq(lr.data[B].data, { name: 'b', cursor: { x: 1, y: 2 } }, 'legacy client gets refresh-presence');

	am = a.mark();
	await b.request({ op: 'set-presence', 'room-id': 'r1', data: { cursor: { x: 5, y: 2 }, status: 'typing' } });
	const pa3 = await a.waitFor((m) => m.op === 'patch-presence', { from: am, what: 'a patch 2' });
	t.eq(pa3.edits, [[[B, 'data', 'name'], '-'], [[B, 'data', 'cursor', 'x'], 'r', 5], [[B, 'data', 'status'], '+', 'typing']], 'r / + / - edits');

	// Unchanged presence: no patch to anyone.
	am = a.mark();
	await b.request({ op: 'set-presence', 'room-id': 'r1', data: { cursor: { x: 5, y: 2 }, status: 'typing' } });

	const bm2 = b.mark();
	const cb = await a.request({ op: 'client-broadcast', 'room-id': 'r1', roomType: 'chat', topic: 'emoji', data: { e: 'x' } });
	t.eq([cb.op, cb['room-id'], cb.topic, cb.data], ['client-broadcast-ok', 'r1', 'emoji', { 'peer-id': A, user: null, data: { e: 'x' } }], 'client-broadcast-ok echoes the envelope');
	const sb = await b.waitFor((m) => m.op === 'server-broadcast', { from: bm2, what: 'server-broadcast' });
	t.eq(sb.data, { 'peer-id': A, user: null, data: { e: 'x' } }, 'peer gets server-broadcast');
	t.ok(!a.log.events.slice(am).some((m) => m.op === 'server-broadcast'), 'sender gets no server-broadcast');
	t.ok(!a.log.events.slice(am).some((m) => m.op === 'patch-presence'), 'no patch for an unchanged presence');

	const bm3 = b.mark();
	const lv = await a.request({ op: 'leave-room', 'room-id': 'r1' });
	t.eq(lv.op, 'leave-room-ok', 'leave-room-ok');
	const pl = await b.waitFor((m) => m.op === 'patch-presence', { from: bm3, what: 'leave patch' });
	t.eq(pl.edits, [[[A], '-']], 'leave gives a - edit');
	const bm4 = b.mark();
	await legacy.close();
	const pc = await b.waitFor((m) => m.op === 'patch-presence', { from: bm4, what: 'close patch' });
	t.eq(pc.edits, [[[L], '-']], 'socket close removes the peer');
	const rooms = await mock.ctl('rooms');
	t.eq(Object.keys(rooms.rooms.r1), [B], 'control rooms lists members');

	// Disabled apps refuse join-room.
	await mock.ctl('app-status', { status: 'disabled' });
	const dj = await a.request({ op: 'join-room', 'room-id': 'r2' });
	t.eq([dj.type, dj.message, dj.hint], ['app-disabled', 'This app is currently disabled.', { status: 'disabled' }], 'join-room on a disabled app');
});
