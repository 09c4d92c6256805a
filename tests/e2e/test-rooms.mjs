// End to end: presence and broadcast for local programs, beside a real @instantdb/core peer.
import { startMock, spawnPeer, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, INSTANTCTL, check, run, scenario } from './lib.mjs';

const APP = DEFAULT_APP_ID;
const mock = await startMock(['--port', '0']);
const daemon = new Daemon({ server: mock.url });
await daemon.start();

const presenceOf = (m) => Object.values(m.peers || {});
const named = (m, name) => presenceOf(m).some((p) => p.data && p.data.name === name);

await scenario('two local programs and a JS client see each other in a room', async () => {
	const a = await new Client(daemon.socket).connect();
	const b = await new Client(daemon.socket).connect();
	await a.init(APP);
	await b.init(APP);
	const ja = await a.request({ op: 'join-room', 'room-id': 'r1', data: { name: 'A' } });
	check(ja.op === 'join-room-ok', `A joined: ${JSON.stringify(ja)}`);
	await b.request({ op: 'join-room', 'room-id': 'r1', data: { name: 'B' } });
	await a.next((m) => m.op === 'refresh-presence' && named(m, 'A') && named(m, 'B'), 'A sees B');
	const bp = await b.next((m) => m.op === 'refresh-presence' && named(m, 'A') && named(m, 'B'), 'B sees A');
	const own = presenceOf(bp).filter((p) => p.self);
	check(own.length === 1 && own[0].data.name === 'B', 'B\'s own peer is marked');

	const peer = await spawnPeer(mock);
	peer.send({ cmd: 'join', room: 'r1', presence: { name: 'JS' }, topics: ['emoji'] });
	await peer.waitFor((e) => e.ev === 'presence' && Object.values(e.peers).some((p) => p.name === 'A') &&
		Object.values(e.peers).some((p) => p.name === 'B'), { what: 'the JS client sees A and B' });
	await a.next((m) => m.op === 'refresh-presence' && named(m, 'JS'), 'A sees the JS client');

	await a.request({ op: 'set-presence', 'room-id': 'r1', data: { cursor: 7 } });
	await b.next((m) => m.op === 'refresh-presence' && presenceOf(m).some((p) => p.data.name === 'A' && p.data.cursor === 7),
		'B sees A\'s patched presence');
	await peer.waitFor((e) => e.ev === 'presence' && Object.values(e.peers).some((p) => p.name === 'A' && p.cursor === 7),
		{ what: 'the JS client sees A\'s presence change' });

	const bc = await a.request({ op: 'client-broadcast', 'room-id': 'r1', topic: 'emoji', data: { e: 'x' } });
	check(bc.op === 'client-broadcast-ok', `broadcast accepted: ${JSON.stringify(bc)}`);
	await b.next((m) => m.op === 'server-broadcast' && m.topic === 'emoji' && m.data.data.e === 'x', 'B gets the broadcast');
	await peer.waitFor((e) => e.ev === 'broadcast' && e.data.e === 'x', { what: 'the JS client gets the broadcast' });
	const ctl = await run(INSTANTCTL, ['--socket', daemon.socket, '--app', APP, 'rooms', 'broadcast', 'r1', 'emoji',
		'{"e":"from-instantctl"}']);
	check(ctl.status === 0, `instantctl rooms broadcast: ${ctl.status} ${ctl.stdout} ${ctl.stderr}`);
	await b.next((m) => m.op === 'server-broadcast' && m.data.data.e === 'from-instantctl', 'B gets instantctl\'s broadcast');
	peer.send({ cmd: 'broadcast', room: 'r1', topic: 'emoji', data: { e: 'from-js' } });
	await a.next((m) => m.op === 'server-broadcast' && m.data.data.e === 'from-js', 'A gets the JS client\'s broadcast');

	// The server drops every connection: the daemon re-joins with A's latest presence by itself.
	const mark = a.messages.length;
	await mock.ctl('drop', {});
	await b.next((m) => m.op === 'refresh-presence' && presenceOf(m).some((p) => p.data.name === 'A' && p.data.cursor === 7) &&
		named(m, 'B'), 'after the drop, B sees A again with its last presence', 30000, b.messages.length);
	check(a.messages.length >= mark, 'A still connected');

	// A program that disconnects leaves its rooms.
	a.close();
	await b.next((m) => m.op === 'refresh-presence' && !named(m, 'A') && named(m, 'B'), 'B sees A leave', 30000, b.messages.length);
	await peer.waitFor((e) => e.ev === 'presence' && !Object.values(e.peers).some((p) => p.name === 'A'),
		{ what: 'the JS client sees A leave', from: peer.mark() - 1 });
	await peer.close();
	b.close();
}, { daemons: [daemon] });

await scenario('offline: broadcasts are refused, presence keeps only the latest value', async () => {
	const a = await new Client(daemon.socket).connect();
	const b = await new Client(daemon.socket).connect();
	await a.init(APP);
	await b.init(APP);
	await a.request({ op: 'join-room', 'room-id': 'r2', data: { name: 'A', v: 0 } });
	await b.request({ op: 'join-room', 'room-id': 'r2', data: { name: 'B' } });
	await b.next((m) => m.op === 'refresh-presence' && m['room-id'] === 'r2' && named(m, 'A'), 'B sees A in r2');
	await mock.ctl('refuse', { ms: -1, drop: true });
	// Wait until the daemon noticed (the broadcast is then refused).
	let refused = null;
	for (let i = 0; i < 200 && !refused; i++) {
		const r = await a.request({ op: 'client-broadcast', 'room-id': 'r2', topic: 't', data: {} });
		if (r.op === 'error') refused = r;
		else await new Promise((res) => setTimeout(res, 50));
	}
	check(refused && refused.type === 'offline', `offline broadcast refused: ${JSON.stringify(refused)}`);
	for (let v = 1; v <= 5; v++)
		await a.request({ op: 'set-presence', 'room-id': 'r2', data: { v } });
	await mock.ctl('refuse', { ms: 0 });
	await b.next((m) => m.op === 'refresh-presence' && m['room-id'] === 'r2' &&
		presenceOf(m).some((p) => p.data.name === 'A' && p.data.v === 5), 'B sees only A\'s latest presence', 30000,
		b.messages.length);
	a.close();
	b.close();
}, { daemons: [daemon] });

await daemon.stop();
await mock.stop();
