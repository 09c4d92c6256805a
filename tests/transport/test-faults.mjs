// Transport fault matrix against the real instantd: a fault proxy in front of the mock
// server silences, closes, resets, trickles or refuses at every stage of the connection,
// TLS included, and (in private network and mount namespaces) DNS points at an address
// that black-holes and the network goes away while connecting. Each fault lasts until
// its timeout (the daemon's connect, idle or transact timeout) has ended at least two
// attempts. In every case the daemon stays up, status names the state and the cause,
// a cached read is served, a write is queued, and once the proxy behaves again the
// daemon reconnects and every queued write reaches the server.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { startMock, makeTestCA, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, FAST_CONFIG, check, scenario, tmpdir, waitFor } from '../e2e/lib.mjs';
import { FaultProxy } from './fault-proxy.mjs';

const ip = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => fs.existsSync(p));

// Private network and mount namespaces (as root, or inside a user namespace) give the
// DNS and network cases a hosts file and links of their own; without them those two
// cases are left out and said so, the others run as they are.
if (!process.env.TRANSPORT_NETNS) {
	for (const pre of ip ? [['unshare', '-mn'], ['unshare', '-rmn']] : []) {
		if (spawnSync(pre[0], [...pre.slice(1), 'true']).status !== 0)
			continue;
		const r = spawnSync(pre[0], [...pre.slice(1), process.execPath, fileURLToPath(import.meta.url)],
			{ stdio: 'inherit', env: { ...process.env, TRANSPORT_NETNS: '1' } });
		process.exit(r.status ?? 1);
	}
}
let NETNS = process.env.TRANSPORT_NETNS === '1';

const dir = tmpdir('instantd-faults-');
const HOSTS = path.join(dir, 'hosts');
const NAME = 'mock.instantd.test';
const BLACKHOLE = '10.77.0.2';	/* on a veth whose peer has no such address: SYNs vanish */

function ipc(...args) {
	execFileSync(ip, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
function linkUp() {
	ipc('link', 'add', 'fx0', 'type', 'veth', 'peer', 'name', 'fx1');
	ipc('addr', 'add', '10.77.0.1/24', 'dev', 'fx0');
	ipc('link', 'set', 'fx0', 'up');
	ipc('link', 'set', 'fx1', 'up');
	/* a fixed neighbour: no ARP failure either, the packets just go nowhere. replace,
	 * not add: a connect still aimed at it makes an incomplete entry once fx0 is up */
	ipc('neigh', 'replace', BLACKHOLE, 'lladdr', '02:00:00:00:00:02', 'dev', 'fx0', 'nud', 'permanent');
}
function pointName(addr) {
	fs.writeFileSync(HOSTS, `127.0.0.1 localhost\n${addr} ${NAME}\n`);
}
let mounted = false;
if (NETNS) {
	ipc('link', 'set', 'lo', 'up');	/* else nothing at all works in here */
	try {
		linkUp();	/* also a non-loopback IPv4 address, which AI_ADDRCONFIG wants */
		pointName('127.0.0.1');
		execFileSync('mount', ['--bind', HOSTS, '/etc/hosts'], { stdio: ['ignore', 'ignore', 'pipe'] });
		mounted = true;
	} catch (e) {
		console.log(`# no veth link or hosts bind mount in the namespace (${e.message.split('\n')[0]})`);
		NETNS = false;
	}
}

const A = DEFAULT_APP_ID, B = '22222222-2222-4222-8222-222222222222';
const Q = { goals: {} };
const certs = makeTestCA(dir);
const mock = await startMock(['--app', A, B]);
const proxy = await new FaultProxy({ mockPort: mock.port, cert: fs.readFileSync(certs.cert),
	key: fs.readFileSync(certs.key) }).start();
const PA = { app: A, server: `ws://${NETNS ? NAME : '127.0.0.1'}:${proxy.port}/runtime/session` };
const PB = { app: B, server: `wss://127.0.0.1:${proxy.tlsPort}/runtime/session` };
const CONNECT_S = 2, PING_S = 1, IDLE_S = 3, TRANSACT_S = 2;
const daemon = new Daemon({
	server: PA.server,
	config: FAST_CONFIG + `connect-timeout = ${CONNECT_S}\nping-interval = ${PING_S}\n` +
		`idle-timeout = ${IDLE_S}\ntransact-timeout = ${TRANSACT_S}\nca-file = ${certs.ca}\n`,
});

async function program(p) {
	const c = await new Client(daemon.socket).connect();
	await c.init(p.app, { server: p.server });
	return c;
}

const pushes = (p, from) => p.watch.messages.slice(from).filter((m) => m.op === 'status' && !m['client-event-id']);
const alive = () => daemon.proc.exitCode === null && daemon.proc.signalCode === null;

// Subscribe and write through a behaving proxy, so the mirror holds a result.
async function prime(p) {
	p.watch = await program(p);
	await p.watch.request({ op: 'watch-status' });
	const c = await program(p);
	const sub = c.send({ op: 'add-query', q: Q });
	await c.request({ op: 'transact', ops: [['update', 'goals', randomUUID(), { title: 'primed' }]] },
		(m) => m.op === 'transact-queued');
	await c.next((m) => m['client-event-id'] === sub && (m.op === 'refresh-ok' || m.op === 'add-query-ok') &&
		m['from-cache'] === false && m['has-pending-writes'] === false &&
		m.data.goals.some((g) => g.title === 'primed'), 'the primed result from the server');
	c.close();
}

// Wait until n attempts have ended in BACKOFF with a last-error matching re.
async function failures(p, re, n, from, what) {
	return waitFor(() => {
		if (!alive())
			throw new Error(`instantd died (${daemon.proc.exitCode ?? daemon.proc.signalCode})`);
		const f = pushes(p, from).filter((m) => m.status.state === 'backoff' && re.test(m.status['last-error']));
		return f.length >= n && f;
	}, `${what}: ${n} failed attempts matching ${re}`, 60000);
}

const results = [];
const T0 = Date.now();

// One fault: switch it on, drop the connection so the daemon meets it, let its timeout
// end two attempts, check what a program sees, switch it off, check recovery.
// reason: what the fault's own failures say; also: other failures it may cause.
async function faultCase(p, name, { on, off, reason, also, n = 2, allowAuthenticated = false, afterKick, afterWrite }) {
	const t0 = Date.now();
	console.log(`# ${name} (at ${Date.now() - T0} ms)`);
	await on();
	const k = p.watch.messages.length;
	proxy.kick();
	/* the dropped connection fails first ("lost"); the fault's failures come after it */
	const kicked = await waitFor(() => pushes(p, k).find((m) => m.status.state === 'backoff'),
		`${name}: the dropped connection`);
	const from = p.watch.messages.indexOf(kicked) + 1;
	if (afterKick)
		await afterKick(from);
	const seen = await failures(p, reason, n, from, name);
	const tFault = Date.now() - t0;
	const understood = (e) => reason.test(e) || (also ? also.test(e) : false) ||
		KNOWN.some((k) => k.test(e));

	const st = (await p.watch.request({ op: 'status' })).status;
	check(alive(), `${name}: the daemon is up`);
	check(st.state === 'authenticated' ? allowAuthenticated : understood(st['last-error'] || ''),
		`${name}: status ${st.state} says why: ${st['last-error']}`);

	const c = await program(p);
	const sub = c.send({ op: 'add-query', q: Q });
	const r = await c.next((m) => m['client-event-id'] === sub && m.op === 'add-query-ok', `${name}: a cached read`);
	check(r.data.goals.some((g) => g.title === 'primed'), `${name}: the cached result is served`);
	const id = randomUUID(), title = `written during ${name}`;
	const w = await c.request({ op: 'transact', ops: [['update', 'goals', id, { title }]] },
		(m) => m.op === 'transact-queued' || m.op === 'error');
	check(w.op === 'transact-queued' && w['mutation-id'], `${name}: the write is queued: ${JSON.stringify(w)}`);
	let later = [];
	if (afterWrite)
		later = await failures(p, afterWrite.reason, afterWrite.n ?? 2, p.watch.messages.length, `${name} with a write`);
	check(!(await mock.ctl('dump', { 'app-id': p.app })).triples.some((t) => t[0] === id),
		`${name}: nothing reached the server through the fault`);

	const all = pushes(p, from).filter((m) => m.status.state === 'backoff').map((m) => m.status['last-error']);
	check(all.every(understood), `${name}: every failure says why: ${all.filter((e) => !understood(e))}`);
	const back = p.watch.messages.length;
	await off();
	await waitFor(() => pushes(p, back).some((m) => m.status.state === 'authenticated'), `${name}: reconnected`, 30000);
	await waitFor(async () => (await c.request({ op: 'list-mutations' })).mutations.length === 0,
		`${name}: the outbox to drain`, 30000, 100);
	const dump = await mock.ctl('dump', { 'app-id': p.app });
	check(dump.triples.some((t) => t[0] === id && t[2] === title), `${name}: the queued write is on the server`);
	c.close();
	check(alive(), `${name}: the daemon is still up`);
	results.push({ name, attempts: seen.length + later.length, ms: Date.now() - t0, tFault,
		errors: [...new Set(all.map((e) => e.replace(/:\d+/g, ':P')))] });
}

const plain = (mode) => ({ on: () => proxy.set(mode), off: () => proxy.set('behave') });
const upgrade = new RegExp(`timed out after ${CONNECT_S} s: the server accepted the connection but did not answer the WebSocket upgrade`);
const silent = new RegExp(`connection silent for ${IDLE_S} s`);
const unanswered = new RegExp(`transact \\S+ unanswered for ${TRANSACT_S} s; reconnecting`);
const beforeUpgrade = /failed: the server closed (or reset )?the connection before answering the WebSocket upgrade/;
const afterUpgrade = /connection to \S+ lost|server closed the connection/;
const sendFailed = /failed while sending: the connection was closed or reset/;
const refused = /failed: the TCP connection failed at once \(refused or reset, or no route\)/;
// Every reason the daemon gives for these faults. A switch of the proxy's mode can
// catch a connection of the case before or after (a reset seen as a refused connect
// under a slow build, say): such a failure must still say why in words, but need not
// be the case's own. The case's own reason must still end n attempts (failures()).
const KNOWN = [upgrade, silent, unanswered, beforeUpgrade, afterUpgrade, sendFailed, refused];

await scenario('transport faults', async () => {
	await daemon.start();
	await prime(PA);
	await prime(PB);
	console.log('# primed both profiles');

	await faultCase(PA, 'TCP accepted, then silence', { ...plain('silent'), reason: upgrade });
	await faultCase(PA, 'a server sending one byte a second', { ...plain('trickle'), reason: upgrade });
	await faultCase(PA, 'upgrade answered, then silence before init-ok', { ...plain('upgraded-silent'), reason: silent });
	await faultCase(PA, 'init-ok, then silence (no pongs, no frames)', {
		...plain('initok-silent'), reason: silent, allowAuthenticated: true,
		also: unanswered, afterWrite: { reason: unanswered },
	});
	await faultCase(PB, 'TLS accepted, then silence mid-handshake', {
		on: () => { proxy.tlsMode = 'silent'; }, off: () => { proxy.tlsMode = 'behave'; },
		reason: new RegExp(`timed out after ${CONNECT_S} s: the server accepted the connection but the TLS handshake did not finish`),
	});
	for (const [how, verb] of [['close', 'closes'], ['reset', 'resets']]) {
		await faultCase(PA, `server ${verb} after accept`, { ...plain(`${how}-accept`), reason: beforeUpgrade });
		/* the request was written: the daemon must not call this a timeout */
		await faultCase(PA, `server ${verb} after reading the upgrade`, { ...plain(`${how}-request`),
			reason: beforeUpgrade });
		await faultCase(PA, `server ${verb} mid-handshake`, { ...plain(`${how}-midhs`), reason: beforeUpgrade });
		await faultCase(PA, `server ${verb} after the upgrade`, { ...plain(`${how}-upgraded`), reason: afterUpgrade,
			also: sendFailed });
		await faultCase(PA, `server ${verb} mid-frame`, { ...plain(`${how}-midframe`), reason: afterUpgrade,
			also: sendFailed });
	}
	await faultCase(PA, 'connection refused', {
		...plain('refuse'), reason: refused,
	});
	if (NETNS) {
		await faultCase(PA, 'DNS answers an address that black-holes', {
			on: () => pointName(BLACKHOLE), off: () => pointName('127.0.0.1'),
			reason: new RegExp(`timed out after ${CONNECT_S} s: no TCP connection`),
		});
		await faultCase(PA, 'the network goes away while connecting', {
			on: () => pointName(BLACKHOLE),
			afterKick: async (from) => {
				await waitFor(() => pushes(PA, from).some((m) => m.status.state === 'connecting'), 'an attempt');
				ipc('link', 'del', 'fx0');
			},
			off: () => { pointName('127.0.0.1'); linkUp(); },
			reason: /DNS lookup of \S+ failed|no TCP connection|the TCP connection failed at once|failed at once: Network is unreachable/,
		});
	} else
		console.log('# skipped: DNS black hole and network going away (no private network namespace)');

	for (const r of results)
		console.log(`# ${r.name}: ${r.attempts} expected failures in ${r.tFault} ms, ${r.ms} ms with recovery: ` +
			r.errors.join(' | '));
	check(await daemon.stop() === 0, 'the daemon shuts down cleanly');
}, { daemons: [daemon], timeoutMs: 170000 });

await daemon.stop();
await proxy.stop();
await mock.stop();
if (mounted)
	spawnSync('umount', ['/etc/hosts']);
fs.rmSync(dir, { recursive: true, force: true });
process.exit(process.exitCode ?? 0);
