// The Instant endpoint with the real @instantdb/core 1.0.67: an unmodified JS app whose
// websocketURI points at instantd (Unix socket as ws+unix:, or loopback TCP) gets the same
// results as one connected straight to the mock, starts and writes offline, and its writes
// survive kill -9 of the daemon.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { startMock, spawnPeer, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, INSTANTCTL, INSTANTD, check, equalJSON, run, scenario, tmpdir, waitFor } from './lib.mjs';

const APP = DEFAULT_APP_ID;

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

function instantSock(d) {
	return path.join(path.dirname(d.socket), 'instant.sock');
}

// A JS app pointed at the daemon: websocketURI is the one thing that changes.
function viaDaemon(d, mock) {
	return { url: `ws+unix://${instantSock(d)}:/runtime/session`, apiURI: mock.apiURI };
}

// Every JS process a scenario starts, so a failing one does not keep the test alive.
const peers = [];
async function peerOf(target) {
	const p = await spawnPeer(target);
	peers.push(p);
	return p;
}

const latest = (peer, id) => peer.log.events.filter((e) => e.ev === 'query' && e.id === id && e.data).pop();

const SHAPES = [
	{ projects: {} },
	{ projects: { tasks: {} } },
	{ tasks: { projects: {} } },
	{ tasks: { $: { where: { title: 'js task' } } } },
	{ projects: { $: { order: { serverCreatedAt: 'desc' } } } },
	{ projects: { $: { where: { 'tasks.title': 'js task' } }, tasks: {} } },
	{ projects: { $: { limit: 1, order: { serverCreatedAt: 'asc' } } } },
];

const mock = await startMock(['--port', '0']);
const daemon = new Daemon({ server: mock.url });
await daemon.start();

await scenario('through instantd over the Unix socket: same results as straight to the mock', async () => {
	const direct = await peerOf(mock);
	const p1 = randomUUID(), t1 = randomUUID(), p2 = randomUUID();
	direct.send({ cmd: 'transact', id: 'w1', ops: [['projects', p1, 'update', { name: 'from direct' }],
		['tasks', t1, 'update', { title: 'js task' }], ['projects', p1, 'link', { tasks: t1 }]] });
	await direct.waitFor((e) => e.ev === 'tx' && e.id === 'w1' && e.status, { what: 'direct write' });
	// The app's init-ok carries the server's attrs (the daemon had none yet: it waits for them).
	const local = await peerOf(viaDaemon(daemon, mock));
	await local.waitFor((e) => e.ev === 'status' && e.status === 'authenticated', { what: 'init-ok from instantd' });
	local.send({ cmd: 'transact', id: 'w2', ops: [['projects', p2, 'update', { name: 'through instantd' }],
		['projects', p2, 'link', { tasks: t1 }]] });
	const tx = await local.waitFor((e) => e.ev === 'tx' && e.id === 'w2', { what: 'write through instantd' });
	check(!tx.error && tx.status === 'synced', `transact-ok: ${JSON.stringify(tx)}`);

	for (const [i, q] of SHAPES.entries()) {
		const id = `q${i}`;
		direct.send({ cmd: 'subscribe', id, q });
		local.send({ cmd: 'subscribe', id, q });
	}
	for (const [i] of SHAPES.entries()) {
		const id = `q${i}`;
		// Both settle on the server's state (the write through instantd has reached it).
		await waitFor(() => {
			const a = latest(direct, id), b = latest(local, id);
			return a && b && equalJSON(norm(a.data), norm(b.data));
		}, `equal results for ${JSON.stringify(SHAPES[i])}`).catch((e) => {
			throw new Error(`${e.message}: ${JSON.stringify(latest(direct, id)?.data)} vs ` +
				`${JSON.stringify(local.log.events.filter((x) => x.id === id).slice(-2))}`);
		});
	}
	check(JSON.stringify(latest(local, 'q1').data).includes('through instantd'), 'the write is in the results');

	// A write straight to the mock reaches the app through instantd as refresh-ok.
	const mark = local.mark();
	direct.send({ cmd: 'transact', id: 'w3', ops: [['projects', p1, 'update', { name: 'renamed' }]] });
	await local.waitFor((e) => e.ev === 'query' && e.id === 'q0' && e.data?.projects.some((p) => p.name === 'renamed'),
		{ what: 'novelty pushed through instantd', from: mark });
	await direct.close();
	await local.close();
}, { daemons: [daemon] });

// How many upstream subscriptions the mock holds for q, over all its sessions.
async function upstreamSubs(q) {
	const { sessions } = await mock.ctl('sessions');
	return sessions.reduce((n, s) => n + s.queries.filter((x) => equalJSON(x, q)).length, 0);
}

await scenario('two apps share one upstream subscription; remove-query ends it', async () => {
	const Q = { tasks: { $: { where: { title: 'js task' } } }, projects: {} };
	const a = await peerOf(viaDaemon(daemon, mock));
	const b = await peerOf(viaDaemon(daemon, mock));
	a.send({ cmd: 'subscribe', id: 's', q: Q });
	b.send({ cmd: 'subscribe', id: 's', q: Q });
	const ra = await a.waitFor((e) => e.ev === 'query' && e.id === 's' && e.data, { what: 'A result' });
	const rb = await b.waitFor((e) => e.ev === 'query' && e.id === 's' && e.data, { what: 'B result' });
	check(equalJSON(norm(ra.data), norm(rb.data)) && ra.data.tasks.length === 1, `same result: ${JSON.stringify(ra.data)}`);
	await waitFor(async () => (await upstreamSubs(Q)) === 1, 'one upstream subscription');
	check((await upstreamSubs(Q)) === 1, 'still one');
	a.send({ cmd: 'unsubscribe', id: 's' });
	b.send({ cmd: 'unsubscribe', id: 's' });
	await waitFor(async () => (await upstreamSubs(Q)) === 0, 'the upstream subscription removed');
	await a.close();
	await b.close();
}, { daemons: [daemon] });

await scenario('presence, rooms and broadcast: an app through instantd and a direct client see each other', async () => {
	const local = await peerOf(viaDaemon(daemon, mock));
	const direct = await peerOf(mock);
	local.send({ cmd: 'join', room: 'r1', presence: { name: 'local' }, topics: ['emoji'] });
	direct.send({ cmd: 'join', room: 'r1', presence: { name: 'direct' }, topics: ['emoji'] });
	await direct.waitFor((e) => e.ev === 'presence' && e.room === 'r1' &&
		Object.values(e.peers || {}).some((p) => p.name === 'local'), { what: 'the direct client sees the app' });
	const lp = await local.waitFor((e) => e.ev === 'presence' && e.room === 'r1' &&
		Object.values(e.peers || {}).some((p) => p.name === 'direct'), { what: 'the app sees the direct client' });
	check(!Object.values(lp.peers).some((p) => p.name === 'local'), `the app is not its own peer: ${JSON.stringify(lp)}`);
	local.send({ cmd: 'presence', room: 'r1', data: { name: 'local', typing: true } });
	await direct.waitFor((e) => e.ev === 'presence' && Object.values(e.peers || {}).some((p) => p.name === 'local' && p.typing),
		{ what: 'a presence update through instantd' });
	local.send({ cmd: 'broadcast', room: 'r1', topic: 'emoji', data: { e: 'from local' } });
	await direct.waitFor((e) => e.ev === 'broadcast' && e.data?.e === 'from local', { what: 'the app\'s broadcast' });
	direct.send({ cmd: 'broadcast', room: 'r1', topic: 'emoji', data: { e: 'from direct' } });
	await local.waitFor((e) => e.ev === 'broadcast' && e.data?.e === 'from direct', { what: 'a broadcast to the app' });
	// The app goes away (its connection to instantd closes): its peer leaves the room.
	const mark = direct.mark();
	await local.close();
	await direct.waitFor((e) => e.ev === 'presence' && !Object.values(e.peers || {}).some((p) => p.name === 'local'),
		{ what: 'the app left', from: mark });
	await direct.close();
}, { daemons: [daemon] });

// The daemon's view of the profile, over its NDJSON socket.
async function ndjson(d) {
	const c = await new Client(d.socket).connect();
	await c.init(APP);
	return c;
}

await scenario('a write the server rejects is rolled back in the app\'s results and listed by instantctl mutations', async () => {
	const local = await peerOf(viaDaemon(daemon, mock));
	const Q = { projects: {} };
	local.send({ cmd: 'subscribe', id: 'r', q: Q });
	await local.waitFor((e) => e.ev === 'query' && e.id === 'r' && e.data, { what: 'first result' });
	await mock.ctl('reject-transacts', { count: 1, match: { contains: 'rejected by the server' } });
	const pid = randomUUID();
	const mark = local.mark();
	local.send({ cmd: 'transact', id: 'bad', ops: [['projects', pid, 'update', { name: 'rejected by the server' }]] });
	const tx = await local.waitFor((e) => e.ev === 'tx' && e.id === 'bad', { what: 'transact-ok (durable)' });
	check(tx.status === 'synced', `acknowledged once durable: ${JSON.stringify(tx)}`);
	await local.waitFor((e) => e.ev === 'query' && e.id === 'r' && e.data.projects.some((p) => p.id === pid),
		{ what: 'the write shows at once', from: mark });
	await local.waitFor((e) => e.ev === 'query' && e.id === 'r' && !e.data.projects.some((p) => p.id === pid),
		{ what: 'the rollback after the rejection', from: mark, timeout: 20000 });
	const r = await run(INSTANTCTL, ['--socket', daemon.socket, '--json', 'mutations'],
		{ env: { ...process.env, INSTANT_APP_ID: APP } });
	const failed = JSON.parse(r.stdout).mutations.filter((m) => m.state === 'failed');
	check(failed.some((m) => JSON.stringify(m['tx-steps']).includes('rejected by the server') &&
		m.origin === 'instant-endpoint'), `instantctl mutations lists it: ${r.stdout}`);
	await local.close();
}, { daemons: [daemon] });

await scenario('offline: a new app gets cached results, writes; kill -9 loses none; they land in order', async () => {
	const Q = { projects: { tasks: {} } };
	const n = await ndjson(daemon);
	// The query is in the mirror (it was subscribed above).
	await waitFor(async () => (await n.request({ op: 'query-once', q: Q, policy: 'cache-only', 'allow-partial': false })).op === 'query-ok',
		'the query in the mirror');
	await mock.ctl('refuse', { ms: -1, drop: true });
	await waitFor(async () => (await n.request({ op: 'status' })).status.state === 'backoff', 'the daemon offline');
	n.close();

	const local = await peerOf(viaDaemon(daemon, mock));
	await local.waitFor((e) => e.ev === 'status' && e.status === 'authenticated', { what: 'init-ok while offline' });
	local.send({ cmd: 'subscribe', id: 'o', q: Q });
	const cached = await local.waitFor((e) => e.ev === 'query' && e.id === 'o' && e.data, { what: 'cached result' });
	const p2 = cached.data.projects.find((p) => p.name === 'through instantd');
	check(p2, `cached result: ${JSON.stringify(cached.data)}`);
	const t9 = randomUUID();
	const writes = [
		[['projects', p2.id, 'update', { name: 'off-1' }]],
		[['tasks', t9, 'update', { title: 'offline task' }], ['projects', p2.id, 'link', { tasks: t9 }], ['projects', p2.id, 'update', { name: 'off-2' }]],
		[['projects', p2.id, 'update', { name: 'off-3' }]],
	];
	for (const [i, ops] of writes.entries()) {
		local.send({ cmd: 'transact', id: `off${i}`, ops });
		const tx = await local.waitFor((e) => e.ev === 'tx' && e.id === `off${i}`, { what: `offline write ${i}` });
		check(tx.status === 'synced', `offline write ${i} acknowledged: ${JSON.stringify(tx)}`);
	}
	await local.waitFor((e) => e.ev === 'query' && e.id === 'o' && e.data.projects.some((p) => p.name === 'off-3' &&
		p.tasks.some((t) => t.title === 'offline task')), { what: 'the offline writes in the results' });

	await daemon.kill9();
	const mark = local.mark();
	await daemon.start();
	// The app reconnects by itself; the restarted daemon still shows every acknowledged write.
	await local.waitFor((e) => e.ev === 'status' && e.status === 'authenticated', { what: 'reconnected', from: mark, timeout: 30000 });
	const fresh = await peerOf(viaDaemon(daemon, mock));
	fresh.send({ cmd: 'subscribe', id: 'f', q: Q });
	const again = await fresh.waitFor((e) => e.ev === 'query' && e.id === 'f' && e.data, { what: 'result after the restart' });
	check(again.data.projects.some((p) => p.name === 'off-3' && p.tasks.some((t) => t.title === 'offline task')),
		`after kill -9: ${JSON.stringify(again.data)}`);
	await fresh.close();

	const seq = (await mock.ctl('frames', { dir: 'in', op: 'transact', limit: 20000 })).seq;
	await mock.ctl('refuse', { ms: 0 });
	const direct = await peerOf(mock);
	direct.send({ cmd: 'subscribe', id: 'd', q: Q });
	await direct.waitFor((e) => e.ev === 'query' && e.id === 'd' && e.data?.projects.some((p) => p.name === 'off-3' &&
		p.tasks.some((t) => t.title === 'offline task')), { what: 'the writes on the server', timeout: 30000 });
	const frames = (await mock.ctl('frames', { dir: 'in', op: 'transact', after: seq, limit: 20000 })).frames;
	const order = frames.map((f) => JSON.stringify(f.msg['tx-steps']).match(/off-\d/)?.[0]).filter(Boolean);
	check(order.slice(0, 3).join() === 'off-1,off-2,off-3', `sent in order: ${order.join()}`);
	await direct.close();
	await local.close();
}, { daemons: [daemon], timeoutMs: 180000 });

await scenario('socket activation: the listener named "instant" serves the app', async () => {
	const dir = tmpdir();
	const sock = path.join(dir, 'ipc.sock'), isock = path.join(dir, 'instant.sock');
	const env = { ...process.env, XDG_RUNTIME_DIR: dir, XDG_STATE_HOME: path.join(dir, 'state'),
		XDG_CONFIG_HOME: path.join(dir, 'config') };
	delete env.NOTIFY_SOCKET;
	const act = spawn('systemd-socket-activate', ['-l', sock, '-l', isock, '--fdname=ipc:instant', INSTANTD,
		'--state-dir', path.join(dir, 'state'), '--server', mock.url], { env, stdio: ['ignore', 'ignore', 'pipe'] });
	let err = '';
	act.stderr.on('data', (d) => { err += d.toString(); });
	try {
		await waitFor(() => fs.existsSync(isock), 'the activation socket');
		const local = await peerOf({ url: `ws+unix://${isock}:/runtime/session`, apiURI: mock.apiURI });
		local.send({ cmd: 'subscribe', id: 'a', q: { projects: {} } });
		const r = await local.waitFor((e) => e.ev === 'query' && e.id === 'a' && e.data?.projects.length, { what: 'a result' });
		check(r.data.projects.some((p) => p.name === 'off-3'), `the activated daemon serves it: ${JSON.stringify(r.data)}`);
		check(!fs.existsSync(path.join(dir, 'instantd', 'instant.sock')), 'it used the inherited socket, not its own');
		await local.close();
	} finally {
		act.kill('SIGTERM');
		await new Promise((r) => act.once('exit', r));
	}
	check(!/error/.test(err), `no error: ${err.slice(-500)}`);
}, { daemons: [daemon] });

for (const p of peers) await p.close();
await daemon.stop();
await mock.stop();
process.exit();
