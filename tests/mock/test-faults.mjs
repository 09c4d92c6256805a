// Every fault and helper control of the mock: drop, refuse, delay, reject-transacts,
// drop-after-commit, app-status, restart (in-process and process), dump, tx-counts, seed,
// add-app, add-user, rate-limit, send, config/ping/idle timeout, and the hostile modes.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startMock, spawnPeer, rawClient, runTest, sleep, DEFAULT_APP_ID } from './harness.mjs';

const id = () => crypto.randomUUID();

await runTest('mock faults', async (t) => {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mock-faults-'));
	t.cleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
	const state = path.join(dir, 'state.json');
	const mock = await startMock(['--state', state, '--app', DEFAULT_APP_ID]);
	t.cleanup(() => mock.stop());
	const peer = await spawnPeer(mock);
	t.cleanup(() => peer.close());
	await peer.waitFor((e) => e.ev === 'status' && e.status === 'authenticated', { what: 'peer up' });
	peer.send({ cmd: 'subscribe', id: 'q', q: { notes: {} } });
	await peer.waitFor((e) => e.ev === 'query' && e.id === 'q' && e.data, { what: 'first result' });
	const N1 = id();
	let txn = 0;
	const write = async (ops) => {
		const tid = `tx${++txn}`;
		peer.send({ cmd: 'transact', id: tid, ops });
		return peer.waitFor((e) => e.ev === 'tx' && e.id === tid, { what: tid });
	};
	t.eq((await write([['notes', N1, 'update', { text: 'one' }]])).status, 'synced', 'baseline write');

	// drop: the real client reconnects and re-inits.
	let m = peer.mark();
	const dr = await mock.ctl('drop');
	t.eq(dr.dropped, 1, 'drop closed one socket');
	await peer.waitFor((e) => e.ev === 'status' && e.status === 'closed', { from: m, what: 'closed' });
	await peer.waitFor((e) => e.ev === 'status' && e.status === 'authenticated', { from: m, what: 'reconnected' });
	t.eq((await mock.ctl('sessions')).sessions.filter((s) => s.inited).length, 1,
		'client reconnected after drop: the mock holds one inited session again');

	// Writes made while the client is away reach it through the re-sent add-query.
	m = peer.mark();
	await mock.ctl('refuse', { ms: -1, drop: true });
	await peer.waitFor((e) => e.ev === 'status' && e.status === 'closed', { from: m, what: 'closed for offline write' });
	const N2 = id();
	const notesId = (await mock.ctl('dump')).attrs.find((a) => a['forward-identity'][1] === 'notes' && a['forward-identity'][2] === 'id').id;
	t.eq((await mock.ctl('sessions')).sessions.length, 0, 'no session while refusing');
	await mock.ctl('transact', { 'tx-steps': [['add-triple', N2, notesId, N2]] });
	m = peer.mark();
	await mock.ctl('refuse', { ms: 0 });
	await peer.waitFor((e) => e.ev === 'query' && e.id === 'q' && e.data?.notes?.some((n) => n.id === N2), { from: m, what: 'offline write after reconnect' });

	// refuse: upgrades get 503 until lifted.
	await mock.ctl('refuse', { ms: -1 });
	const refused = await rawClient(mock.url).then(() => false, (e) => /503/.test(e.message));
	t.ok(refused, 'connection refused with 503 while refusing');
	await mock.ctl('refuse', { ms: 0 });
	const okc = await rawClient(mock.url);
	t.eq((await okc.init()).op, 'init-ok', 'connections accepted again');
	m = peer.mark();
	await mock.ctl('refuse', { ms: 1500, drop: true });
	await peer.waitFor((e) => e.ev === 'status' && e.status === 'closed', { from: m, what: 'closed by refuse+drop' });
	await peer.waitFor((e) => e.ev === 'status' && e.status === 'authenticated', { from: m, what: 'back after refusal window' });
	t.ok((await mock.ctl('stats')).stats.refused >= 1, 'refused attempts counted');

	await mock.ctl('refuse', { ms: -1, mode: 'reset' });
	t.ok(await rawClient(mock.url).then(() => false, () => true), 'refuse mode reset: connection torn down');
	await mock.ctl('refuse', { ms: -1, mode: 'hang' });
	const hung = await rawClient(mock.url, { wsOptions: { handshakeTimeout: 300 } }).then(() => 'open', (e) => e.message);
	t.ok(/timed out/i.test(hung), 'refuse mode hang: the handshake never completes');
	await mock.ctl('refuse', { ms: 0 });
	const coded = await rawClient(mock.url);
	const csid = (await coded.init())['session-id'];
	await mock.ctl('drop', { 'session-id': csid, code: 4000, reason: 'bye' });
	t.eq(await coded.closedP, 4000, 'drop with a close code');
	const w1 = await mock.ctl('wait', { sessions: 1, queries: 1, 'timeout-ms': 5000 });
	t.eq(w1.met, true, 'wait: a session with a query');
	const w2 = await mock.ctl('wait', { 'tx-count': 1, 'client-event-id': 'never', 'timeout-ms': 50 });
	t.eq(w2.met, false, 'wait times out with met:false');
	const fr = await mock.ctl('frames', { dir: 'in', op: 'init', 'session-id': csid });
	t.eq(fr.frames.length, 1, 'frames: the init received from a session');
	t.eq(fr.frames[0].msg['app-id'], DEFAULT_APP_ID, 'frames keep incoming messages whole');
	const fo = await mock.ctl('frames', { dir: 'out', 'session-id': csid });
	t.eq(fo.frames[0].op, 'init-ok', 'frames summarise outgoing messages');

	// delay: a delayed transact-ok arrives after a later, undelayed reply.
	const c = await rawClient(mock.url);
	t.cleanup(() => c.close());
	await c.init();
	await mock.ctl('delay', { ms: 1500, ops: ['transact-ok'] });
	const cm = c.mark();
	c.send({ 'client-event-id': 'd1', op: 'transact', 'tx-steps': [] });
	c.send({ 'client-event-id': 'd2', op: 'add-query', q: { notes: {} } });
	await c.waitFor((x) => x['client-event-id'] === 'd1', { from: cm, what: 'delayed transact-ok' });
	const order = c.log.events.slice(cm).map((x) => x['client-event-id']).filter(Boolean);
	t.eq(order.slice(0, 2), ['d2', 'd1'], 'delayed reply overtaken by an undelayed one');
	await mock.ctl('delay', { ms: 0 });

	// reject-transacts: next N, then by rule.
	await mock.ctl('reject-transacts', { count: 1 });
	const rj = await write([['notes', N1, 'update', { text: 'rejected' }]]);
	t.eq(rj.error?.message, 'Permission denied: not perms-pass?', 'rejected with permission-denied');
	const optimistic = peer.log.events.findIndex((e) => e.ev === 'query' && e.data?.notes?.[0]?.text === 'rejected');
	t.ok(optimistic >= 0, 'the client applied the write optimistically');
	await peer.waitFor((e) => e.ev === 'query' && e.data?.notes?.[0]?.text === 'one', { from: optimistic, what: 'rollback' });
	t.eq((await write([['notes', N1, 'update', { text: 'two' }]])).status, 'synced', 'only the next one is rejected');
	await mock.ctl('reject-transacts', { count: -1, match: { contains: 'forbidden' } });
	t.ok((await write([['notes', N1, 'update', { text: 'forbidden' }]])).error, 'matching transact rejected');
	t.eq((await write([['notes', N1, 'update', { text: 'fine' }]])).status, 'synced', 'non-matching transact passes');
	const raw = await c.request({ op: 'transact', 'tx-steps': [['add-triple', id(), id(), 'forbidden']] });
	t.eq([raw.status, raw.type, raw.hint.expected], [400, 'permission-denied', 'perms-pass?'], 'raw error shape');
	await mock.ctl('reject-transacts', { count: 0 });

	// drop-after-commit: applied, socket dropped, the client's re-send applies it again.
	await mock.ctl('drop-after-commit', { count: 1 });
	m = peer.mark();
	const dac = await write([['notes', N1, 'update', { text: 'twice' }]]);
	t.eq(dac.status, 'synced', 'client re-sent after the drop and got transact-ok');
	const counts = (await mock.ctl('tx-counts')).counts;
	t.ok(Object.values(counts).includes(2), 'tx-counts shows the re-sent transact applied twice');
	t.ok(peer.log.events.slice(m).some((e) => e.ev === 'status' && e.status === 'closed'), 'socket was dropped');
	// With mode create the re-send fails, as on the real server.
	await mock.ctl('drop-after-commit', { count: 1 });
	const r1 = await rawClient(mock.url);
	await r1.init();
	const E = id();
	const steps = [['add-triple', E, id(), E, { mode: 'create' }]];
	const idAttr = (await mock.ctl('dump')).attrs.find((a) => a['forward-identity'][1] === 'notes' && a['forward-identity'][2] === 'id').id;
	steps[0][2] = idAttr;
	r1.send({ 'client-event-id': 'create-1', op: 'transact', 'tx-steps': steps });
	await r1.closedP;
	const r2 = await rawClient(mock.url);
	t.cleanup(() => r2.close());
	await r2.init();
	const again = await r2.request({ 'client-event-id': 'create-1', op: 'transact', 'tx-steps': steps });
	t.eq(again.message, `Validation failed for tx-step: Creating entities that exist: ${E}`, 're-sent create fails');
	t.eq((await mock.ctl('tx-counts')).counts['create-1'], 1, 'tx-counts per client-event-id');
	// With refuse: upgrades are refused from the drop on, so the client cannot re-send until lifted.
	await mock.ctl('drop-after-commit', { count: 1, refuse: true });
	const rd = await rawClient(mock.url);
	await rd.init();
	const E2 = id();
	rd.send({ 'client-event-id': 'create-2', op: 'transact', 'tx-steps': [['add-triple', E2, idAttr, E2, { mode: 'create' }]] });
	await rd.closedP;
	t.eq((await mock.ctl('tx-counts')).counts['create-2'], 1, 'applied, then dropped before transact-ok');
	const refusedAfter = await rawClient(mock.url).then((x) => { x.close(); return false; }, (e) => /503/.test(e.message));
	t.ok(refusedAfter, 'drop-after-commit with refuse: refused with 503 after the drop');
	await mock.ctl('refuse', { ms: 0 });

	// app-status: pushed; read-only rejects writes (client locally, server for raw).
	m = peer.mark();
	const cmk = c.mark();
	await mock.ctl('app-status', { status: 'read-only' });
	const asc = await c.waitFor((x) => x.op === 'app-status-changed', { from: cmk, what: 'app-status-changed' });
	t.eq(asc.status, 'read-only', 'app-status-changed pushed');
	await sleep(100);
	const ro = await write([['notes', N1, 'update', { text: 'ro' }]]);
	t.ok(/read-only/.test(ro.error?.message || ''), 'real client rejects writes in read-only');
	const ror = await c.request({ op: 'transact', 'tx-steps': [] });
	t.eq([ror.type, ror.hint], ['app-read-only', { status: 'read-only' }], 'server rejects writes in read-only');
	const cmk2 = c.mark();
	await mock.ctl('app-status', { status: 'disabled' });
	const dis = await c.waitFor((x) => x.op === 'error' && x['original-event']?.op === 'refresh', { from: cmk2, what: 'refresh error when disabled' });
	t.eq([dis.type, dis['client-event-id']], ['app-disabled', null], 'subscriptions fail on refresh when disabled');
	const aq = await c.request({ op: 'add-query', q: { notes: {} } });
	t.eq(aq.type, 'app-disabled', 'add-query fails when disabled');
	await mock.ctl('app-status', { status: 'active' });
	const ri = await rawClient(mock.url);
	t.cleanup(() => ri.close());
	t.eq((await ri.init())['app-status'], { status: 'active' }, 'init-ok app-status');

	// rate-limit.
	await mock.ctl('rate-limit', { on: true });
	const rl = await c.request({ op: 'add-query', q: { x: {} } });
	t.eq(rl.type, 'rate-limited', 'rate-limited error');
	await mock.ctl('rate-limit', { on: false });

	// send: raw frames to sessions.
	const sm = c.mark();
	const sent = await mock.ctl('send', { 'session-id': (await mock.ctl('sessions')).sessions.find((s) => s.queries.length === 0 && s.inited)?.['session-id'], frame: { op: 'custom', x: 1 } });
	t.eq(sent.sent, 1, 'send to one session');
	await mock.ctl('send', { frame: '{"op":"custom-all"}' });
	const frame = await c.waitFor((x) => x.op === 'custom-all', { from: sm, what: 'custom frame' });
	t.eq(frame, { op: 'custom-all' }, 'raw frame delivered unchanged');

	// Hostile modes.
	const h = await rawClient(mock.url);
	t.cleanup(() => h.close());
	const hsid = (await h.init())['session-id'];
	const frames = [];
	h.ws.on('message', (d) => frames.push(d.toString()));
	const hostile = async (mode, extra = {}) => mock.ctl('hostile', { mode, 'session-id': hsid, ...extra });

	await hostile('array-frames', { count: 1 });
	await h.request({ op: 'transact', 'tx-steps': [] });
	t.ok(frames.some((f) => f.startsWith('[{"op":"transact-ok"')), 'array-frames wraps a message in an array');

	await hostile('duplicate-replies', { count: 1 });
	let hm = h.mark();
	await h.request({ 'client-event-id': 'dup', op: 'transact', 'tx-steps': [] });
	await h.request({ op: 'transact', 'tx-steps': [] });
	t.eq(h.log.events.slice(hm).filter((x) => x['client-event-id'] === 'dup').length, 2, 'duplicate-replies sends a reply twice');

	await hostile('late-replies', { count: 1, ms: 100 });
	hm = h.mark();
	await h.request({ 'client-event-id': 'late', op: 'transact', 'tx-steps': [] });
	await h.waitFor((x) => x['client-event-id'] === 'late', { from: h.mark(), what: 'late duplicate' });
	t.eq(h.log.events.slice(hm).filter((x) => x['client-event-id'] === 'late').length, 2,
		'late-replies repeats a reply later');

	await hostile('unknown-op', { count: 1 });
	hm = h.mark();
	await h.request({ op: 'transact', 'tx-steps': [] });
	t.ok(h.log.events.slice(hm).some((x) => x.op === 'mock-unknown-op'), 'unknown-op frame sent');

	await hostile('malformed', { count: 1 });
	hm = h.mark();
	await h.request({ op: 'transact', 'tx-steps': [] });
	t.ok(h.log.events.slice(hm).some((x) => x.op === '<unparseable>'), 'malformed frame sent');

	await hostile('wrong-types', { count: 1 });
	const wt = await h.request({ op: 'transact', 'tx-steps': [] });
	t.eq(typeof wt['tx-id'], 'string', 'wrong-types: tx-id as a string');

	await h.request({ op: 'add-query', q: { notes: {} } });
	await hostile('huge-result', { count: 1, bytes: 2 << 20 });
	const hq = await h.request({ op: 'add-query', q: { notes: { $: { where: { text: 'x' } } } } });
	t.ok(JSON.stringify(hq).length > 2 << 20, 'huge-result adds a large triple');

	await hostile('refresh-before-ok', { count: 1 });
	hm = h.mark();
	await h.request({ 'client-event-id': 'rbo', op: 'transact', 'tx-steps': [['add-triple', N1, (await mock.ctl('dump')).attrs.find((a) => a['forward-identity'][2] === 'text' && a['forward-identity'][1] === 'notes').id, 'reordered']] });
	const seq = h.log.events.slice(hm).map((x) => x.op);
	t.ok(seq.indexOf('refresh-ok') !== -1 && seq.indexOf('refresh-ok') < seq.indexOf('transact-ok'), 'refresh-ok before transact-ok');

	const textAttr = (await mock.ctl('dump')).attrs.find((a) => a['forward-identity'][2] === 'text' && a['forward-identity'][1] === 'notes').id;
	await hostile('combine-transacts', { count: 1, ms: 5000 });
	hm = h.mark();
	h.send({ 'client-event-id': 'c1', op: 'transact', 'tx-steps': [['add-triple', N1, textAttr, 'c1', { mode: 'update' }]] });
	h.send({ 'client-event-id': 'c2', op: 'transact', 'tx-steps': [['add-triple', N1, textAttr, 'c2', { mode: 'update' }]] });
	const c1 = await h.waitFor((x) => x['client-event-id'] === 'c1', { from: hm, what: 'c1' });
	const c2 = await h.waitFor((x) => x['client-event-id'] === 'c2', { from: hm, what: 'c2' });
	t.ok(c1.op === 'transact-ok' && c1['tx-id'] === c2['tx-id'], 'combined transacts share one tx-id');
	t.eq((await mock.ctl('dump')).triples.find((x) => x[0] === N1 && x[1] === textAttr)[2], 'c2', 'only the later one ran');
	t.eq([(await mock.ctl('tx-counts')).counts.c1, (await mock.ctl('tx-counts')).counts.c2], [undefined, 1], 'tx-counts counts the executed one');
	await hostile('combine-transacts', { ms: 5000 });
	hm = h.mark();
	h.send({ 'client-event-id': 'n1', op: 'transact', 'tx-steps': [['add-triple', N1, textAttr, 'n1', { mode: 'update' }]] });
	h.send({ 'client-event-id': 'n2', op: 'transact', 'tx-steps': [['add-triple', N1, textAttr, 'n2']] });
	const n1 = await h.waitFor((x) => x['client-event-id'] === 'n1', { from: hm, what: 'n1' });
	await hostile('combine-transacts', { on: false });
	const n2 = await h.waitFor((x) => x['client-event-id'] === 'n2', { from: hm, what: 'n2' });
	t.ok(n1['tx-id'] < n2['tx-id'], 'non-matching transacts are not combined, order kept');

	await hostile('processed-lag', { by: 5 });
	hm = h.mark();
	const lagTx = await h.request({ op: 'transact', 'tx-steps': [['add-triple', N1, textAttr, 'lagging']] });
	const lagRefresh = await h.waitFor((x) => x.op === 'refresh-ok' && JSON.stringify(x.computations).includes('lagging'), { from: hm, what: 'lagging refresh' });
	t.eq(lagRefresh['processed-tx-id'], lagTx['tx-id'] - 5, 'processed-lag reports an older processed-tx-id');
	t.ok(JSON.stringify(lagRefresh.computations).includes('lagging'), 'while the result already has the write');
	await hostile('processed-lag', { on: false });

	await hostile('endless-refresh', { 'interval-ms': 10 });
	hm = h.mark();
	for (let i = 0; i < 5; i++) await h.waitFor((x) => x.op === 'refresh-ok', { from: h.mark(), what: 'endless refresh' });
	await hostile('off');
	t.ok(h.log.events.slice(hm).filter((x) => x.op === 'refresh-ok').length >= 5, 'endless-refresh keeps sending refresh-ok');
	await mock.ctl('reset');

	// seed / add-app / add-user.
	const APP2 = id();
	await mock.ctl('add-app', { 'app-id': APP2, title: 'second' });
	const sd = await mock.ctl('seed', { 'app-id': APP2, set: 'movies' });
	t.eq([sd.attrs, sd.triples], [11, 301], 'seed movies');
	t.eq((await mock.ctl('dump', { 'app-id': APP2 })).triples.length, 301, 'dump of seeded app');
	const u = await mock.ctl('add-user', { 'app-id': APP2, email: 'a@b.c' });
	const uc = await rawClient(mock.url, { appId: APP2 });
	t.cleanup(() => uc.close());
	const ui = await uc.init({ 'refresh-token': u['refresh-token'] });
	t.eq([ui.auth.user.email, ui.auth.user.type, ui.auth.user.isGuest, ui.auth.user.app_id], ['a@b.c', 'user', false, APP2], 'init-ok auth.user for a known token');
	const bad = await rawClient(mock.url, { appId: APP2 });
	t.cleanup(() => bad.close());
	const bi = await bad.init({ 'refresh-token': id() });
	t.eq([bi.type, bi.message, bi.hint['record-type']], ['record-not-found', 'Record not found: app-user', 'app-user'], 'unknown refresh token');

	// restart in-process with state kept.
	const before = await mock.ctl('dump');
	const txBefore = before['tx-id'];
	m = peer.mark();
	await mock.ctl('restart', { 'refuse-ms': 200 });
	await peer.waitFor((e) => e.ev === 'status' && e.status === 'authenticated', { from: m, what: 'reconnect after restart' });
	const afterR = await mock.ctl('dump');
	t.eq(afterR.triples.length, before.triples.length, 'restart keeps the data');
	t.eq((await write([['notes', N1, 'update', { text: 'after restart' }]])).status, 'synced', 'writes work after restart');
	t.ok((await mock.ctl('status'))['tx-id'] > txBefore, 'tx-id keeps increasing');

	// restart the process from its state file.
	await peer.close();
	const snap = await mock.ctl('dump');
	await mock.restart();
	const snap2 = await mock.ctl('dump');
	t.eq(snap2.triples.length, snap.triples.length, 'process restart restores triples from --state');
	t.eq((await mock.ctl('tx-counts')).counts['create-1'], 1, 'tx-counts survive a process restart');
	t.eq((await mock.ctl('dump', { 'app-id': APP2 })).triples.length >= 301, true, 'added app survives process restart');
	const r3 = await rawClient(mock.url);
	t.cleanup(() => r3.close());
	await r3.init();
	const tx = await r3.request({ op: 'transact', 'tx-steps': [] });
	t.ok(tx['tx-id'] > snap['tx-id'], 'tx-id continues after process restart');
	const ui2 = await (await rawClient(mock.url, { appId: APP2 })).init({ 'refresh-token': u['refresh-token'] });
	t.eq(ui2.auth.user?.email, 'a@b.c', 'refresh tokens survive restart');
	t.eq(await mock.stop(), 0, 'SIGTERM exits 0');

	// ping / idle timeout.
	const fast = await startMock(['--ping-interval-ms', '100', '--idle-timeout-ms', '500']);
	t.cleanup(() => fast.stop());
	const alive = await rawClient(fast.url);
	t.cleanup(() => alive.close());
	let pings = 0;
	alive.ws.on('ping', () => pings++);
	const silent = await rawClient(fast.url, { wsOptions: { autoPong: false } });
	t.cleanup(() => silent.close());
	await silent.closedP;
	t.ok(!alive.closed && pings > 0, `a peer that never answers pings is closed after the idle timeout while one that answers stays (${pings} pings)`);
	t.ok(!alive.closed && pings >= 3, 'a peer answering pings stays connected');
	const cfg = await fast.ctl('config', { 'ping-interval-ms': 5000, 'idle-timeout-ms': 15000 });
	t.eq([cfg['ping-interval-ms'], cfg['idle-timeout-ms']], [5000, 15000], 'config changes ping and idle timeout');
});
