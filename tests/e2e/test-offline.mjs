// End to end, the core promise: cached reads offline, 1,000 durable offline writes
// that survive kill -9 and land in order when the server returns.
import { startMock, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, check, scenario, waitFor } from './lib.mjs';
import { randomUUID } from 'node:crypto';

const N = Number(process.env.E2E_OFFLINE_WRITES || 1000);
const mock = await startMock(['--port', '0']);
const daemon = new Daemon({ server: mock.url });
const APP = DEFAULT_APP_ID;
const Q = { goals: {} };

await scenario('online: subscribe, write, see the server result', async () => {
	await daemon.start();
	const a = await new Client(daemon.socket).connect();
	await a.init(APP, { 'client-name': 'A' });
	const sub = a.send({ op: 'add-query', q: Q });
	const first = await a.next((m) => m['client-event-id'] === sub && m.op === 'add-query-ok', 'first result');
	check(first['from-cache'] === false, 'a first result with no cache comes from the server');
	check(Array.isArray(first.data.goals) && first.data.goals.length === 0, 'no goals yet');

	const g = randomUUID();
	const w = await a.request({ op: 'transact', ops: [['update', 'goals', g, { title: 'online', n: -1 }]] },
		(m) => m.op === 'transact-queued' || m.op === 'error');
	check(w.op === 'transact-queued' && w['mutation-id'], `queued: ${JSON.stringify(w)}`);
	await a.next((m) => m.op === 'transact-ok' && m['mutation-id'] === w['mutation-id'], 'transact-ok');
	await a.next((m) => m['client-event-id'] === sub && m.op === 'refresh-ok' &&
		m.data.goals.some((x) => x.title === 'online') && m['has-pending-writes'] === false, 'the confirmed result');
	const dump = await mock.ctl('dump', {});
	check(dump.triples.some((t) => t[0] === g && t[2] === 'online'), 'the write is on the server');
	a.close();
}, { daemons: [daemon] });

let ids = [];
await scenario('offline: cached read after a restart, 1,000 acknowledged writes survive kill -9', async () => {
	await mock.ctl('refuse', { ms: -1, drop: true });
	await daemon.stop();
	await daemon.start();
	const a = await new Client(daemon.socket).connect();
	await a.init(APP);
	const sub = a.send({ op: 'add-query', q: Q });
	const cached = await a.next((m) => m['client-event-id'] === sub && m.op === 'add-query-ok', 'the cached result');
	check(cached['from-cache'] === true, 'served from the mirror');
	check(cached.data.goals.some((x) => x.title === 'online'), 'the mirrored data');

	const st = await a.request({ op: 'status' });
	check(st.status.state !== 'authenticated', `offline state: ${st.status.state}`);

	ids = Array.from({ length: N }, () => randomUUID());
	const counter = randomUUID();
	const ceids = [];
	for (let k = 0; k < N; k++)
		ceids.push(a.send({ op: 'transact', ops: [
			['update', 'goals', ids[k], { title: `offline ${k}`, n: k }],
			['update', 'counters', counter, { last: k }],
		] }));
	const queued = new Set();
	await waitFor(() => {
		for (const m of a.messages)
			if (m.op === 'transact-queued') queued.add(m['client-event-id']);
			else if (m.op === 'error') throw new Error(`write refused: ${JSON.stringify(m)}`);
		return queued.size === N;
	}, `${N} acknowledgements`, 60000);
	check(ceids.every((c) => queued.has(c)), 'every write acknowledged');
	await a.next((m) => m['client-event-id'] === sub && m.op === 'refresh-ok' &&
		m['has-pending-writes'] === true && m.data.goals.length === N + 1, 'the optimistic result with every write');

	await daemon.kill9();
	await daemon.start();
	const b = await new Client(daemon.socket).connect();
	await b.init(APP);
	const list = await b.request({ op: 'list-mutations' });
	const pending = list.mutations.filter((m) => m.state === 'pending');
	check(pending.length === N, `all ${N} writes survived kill -9 (found ${pending.length})`);
	const sub2 = b.send({ op: 'add-query', q: Q });
	const again = await b.next((m) => m['client-event-id'] === sub2 && m.op === 'add-query-ok', 'result after kill -9');
	check(again['has-pending-writes'] === true && again.data.goals.length === N + 1, 'still shown optimistically');
	b.close();
	a.close();
}, { daemons: [daemon], timeoutMs: 240000 });

await scenario('back online: every write lands once, in order, and the outbox drains', async () => {
	const a = await new Client(daemon.socket).connect();
	await a.init(APP);
	const sub = a.send({ op: 'add-query', q: Q });
	await mock.ctl('refuse', { ms: 0 });
	await waitFor(async () => {
		const l = await a.request({ op: 'list-mutations' });
		return l.mutations.length === 0;
	}, 'the outbox to drain', 120000, 200);
	const dump = await mock.ctl('dump', {});
	const titles = new Map(dump.triples.filter((t) => typeof t[2] === 'string' && t[2].startsWith('offline '))
		.map((t) => [t[0], t[2]]));
	for (let k = 0; k < N; k++)
		check(titles.get(ids[k]) === `offline ${k}`, `write ${k} is on the server`);
	const last = dump.triples.find((t) => dump.attrs.some((at) => at.id === t[1] &&
		at['forward-identity'][1] === 'counters' && at['forward-identity'][2] === 'last'));
	check(last && last[2] === N - 1, `writes applied in order (last = ${last && last[2]})`);
	const final = await a.next((m) => m['client-event-id'] === sub && (m.op === 'refresh-ok' || m.op === 'add-query-ok') &&
		m['has-pending-writes'] === false && m['from-cache'] === false && m.data.goals.length === N + 1,
		'the server result with every write', 60000);
	check(final, 'subscription shows the server data');
	a.close();
}, { daemons: [daemon], timeoutMs: 240000 });

await daemon.stop();
await mock.stop();
