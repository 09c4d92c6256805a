// The Instant endpoint with the real @instantdb/core 1.0.67: an unmodified JS app whose
// websocketURI points at instantd (Unix socket as ws+unix:, or loopback TCP) gets the same
// results as one connected straight to the mock, starts and writes offline, and its writes
// survive kill -9 of the daemon.
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { startMock, spawnPeer, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, FAST_CONFIG, check, equalJSON, scenario, waitFor, tmpdir } from './lib.mjs';

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

for (const p of peers) await p.close();
await daemon.stop();
await mock.stop();
process.exit();
