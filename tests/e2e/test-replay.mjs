// A write that may have reached the server is resent as a replay, also after kill -9 and a
// restart: the server applied it, its transact-ok was lost, and the resend must not be
// rejected (a create sent again as a create fails with "Creating entities that exist").
import { randomUUID } from 'node:crypto';
import { startMock, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, check, scenario, waitFor } from './lib.mjs';

const APP = DEFAULT_APP_ID;
const mock = await startMock(['--port', '0']);
const daemon = new Daemon({ server: mock.url });
await daemon.start();

async function connect() {
	const c = await new Client(daemon.socket).connect();
	await c.init(APP);
	return c;
}

const mutation = async (c, mid) => (await c.request({ op: 'list-mutations' })).mutations.find((m) => m['mutation-id'] === mid);
const online = async (c) => (await c.request({ op: 'status' })).status.state === 'authenticated';

// The tx-steps of every transact the mock received with this client-event-id, in order.
async function sends(mid) {
	const f = await mock.ctl('frames', { dir: 'in', op: 'transact', 'client-event-id': mid });
	return f.frames.map((x) => x.msg['tx-steps']);
}
// The mode of each add-triple step (undefined: none, the server upserts).
const modes = (steps) => steps.filter((st) => st[0] === 'add-triple').map((st) => (st.length === 5 ? st[4].mode : undefined));

// The server applied mid, its answer was lost, the daemon died: restart it and let it replay.
async function loseAckThenRestart(c, mid) {
	await mock.ctl('wait', { 'client-event-id': mid, 'tx-count': 1 });
	check((await mock.ctl('tx-counts', {})).counts[mid] === 1, 'the server applied the write once');
	c.close();
	await daemon.kill9();
	await daemon.start();
	const c2 = await connect();
	check((await mutation(c2, mid))?.state === 'pending', 'after the restart the write is queued again');
	await mock.ctl('refuse', { ms: 0 });
	await waitFor(async () => {
		const m = await mutation(c2, mid);
		return m === undefined || m.state === 'confirmed' || m.state === 'failed';
	}, 'the replay to settle', 30000, 50);
	const m = await mutation(c2, mid);
	check(m === undefined || m.state === 'confirmed', `the replayed write is confirmed, not failed: ${JSON.stringify(m)}`);
	check((await mock.ctl('tx-counts', {})).counts[mid] === 2, 'the replay was applied');
	return c2;
}

async function entityCount(id) {
	const dump = await mock.ctl('dump', {});
	const idAttrs = new Set(dump.attrs.filter((a) => a['forward-identity'][2] === 'id').map((a) => a.id));
	return dump.triples.filter((t) => t[0] === id && idAttrs.has(t[1])).length;
}

await scenario('a create sent online, applied, its ack lost, kill -9: replayed after the restart', async () => {
	const c = await connect();
	await waitFor(() => online(c), 'online');
	await mock.ctl('drop-after-commit', { count: 1, refuse: true });
	const id = randomUUID();
	const w = await c.request({ op: 'transact', ops: [['create', 'notes', id, { text: 'once' }]] },
		(m) => m.op === 'transact-queued');
	const mid = w['mutation-id'];
	const c2 = await loseAckThenRestart(c, mid);
	const s = await sends(mid);
	check(s.length === 2 && modes(s[0]).every((x) => x === 'create'), `the first send is a create: ${JSON.stringify(s[0])}`);
	check(modes(s[1]).every((x) => x === undefined), `the replay is an upsert: ${JSON.stringify(s[1])}`);
	check(await entityCount(id) === 1, 'the entity exists once on the server');
	const dump = await mock.ctl('dump', {});
	check(dump.triples.filter((t) => t[0] === id && t[2] === 'once').length === 1, 'with its data');
	c2.close();
}, { daemons: [daemon] });

await scenario('a create queued offline, sent on reconnect, its ack lost, kill -9: replayed after the restart', async () => {
	const c = await connect();
	await mock.ctl('refuse', { ms: -1, drop: true });
	await waitFor(async () => !(await online(c)), 'offline');
	const id = randomUUID();
	const w = await c.request({ op: 'transact', ops: [['create', 'notes', id, { text: 'offline once' }]] },
		(m) => m.op === 'transact-queued');
	const mid = w['mutation-id'];
	await mock.ctl('drop-after-commit', { count: 1, refuse: true });
	await mock.ctl('refuse', { ms: 0 });
	const c2 = await loseAckThenRestart(c, mid);
	const s = await sends(mid);
	check(modes(s[0]).every((x) => x === 'create') && modes(s[1]).every((x) => x === undefined),
		`create first, upsert on the replay: ${JSON.stringify(s)}`);
	check(await entityCount(id) === 1, 'the entity exists once on the server');
	c2.close();
}, { daemons: [daemon] });

await scenario('an update and a delete of the same entity, applied, ack lost: the replay is not rejected', async () => {
	const c = await connect();
	await waitFor(() => online(c), 'online');
	const id = randomUUID();
	const made = await c.request({ op: 'transact', ops: [['create', 'notes', id, { text: 'doomed' }]] },
		(m) => m.op === 'transact-queued');
	await c.next((m) => m.op === 'transact-ok' && m['mutation-id'] === made['mutation-id'], 'created');
	await mock.ctl('drop-after-commit', { count: 1, refuse: true });
	// upsert: false sends mode "update", which the server checks against the entity's existence.
	const w = await c.request({ op: 'transact', ops: [['update', 'notes', id, { text: 'last words' }, { upsert: false }],
		['delete', 'notes', id]] }, (m) => m.op === 'transact-queued');
	const mid = w['mutation-id'];
	const c2 = await loseAckThenRestart(c, mid);
	const s = await sends(mid);
	check(modes(s[0]).includes('update'), `the first send checks that the entity exists: ${JSON.stringify(s[0])}`);
	check(await entityCount(id) === 0, 'the entity is deleted on the server');
	c2.close();
}, { daemons: [daemon] });

await scenario('a create queued offline and never sent keeps its check after a restart', async () => {
	const c = await connect();
	await waitFor(() => online(c), 'online');
	const id = randomUUID();
	// Someone else creates the entity first, so a create of ours must fail.
	const other = await c.request({ op: 'transact', ops: [['update', 'notes', id, { text: 'theirs' }]] },
		(m) => m.op === 'transact-queued');
	await c.next((m) => m.op === 'transact-ok' && m['mutation-id'] === other['mutation-id'], 'theirs on the server');
	await mock.ctl('refuse', { ms: -1, drop: true });
	await waitFor(async () => !(await online(c)), 'offline');
	const w = await c.request({ op: 'transact', ops: [['create', 'notes', id, { text: 'mine' }]] },
		(m) => m.op === 'transact-queued');
	c.close();
	await daemon.kill9();
	await daemon.start();
	const c2 = await connect();
	await mock.ctl('refuse', { ms: 0 });
	await waitFor(async () => (await mutation(c2, w['mutation-id']))?.state === 'failed', 'the create to be rejected', 30000, 50);
	const m = await mutation(c2, w['mutation-id']);
	check(/Creating entities that exist/.test(JSON.stringify(m.error)), `rejected as a create: ${JSON.stringify(m.error)}`);
	c2.close();
}, { daemons: [daemon] });

await daemon.stop();
await mock.stop();
