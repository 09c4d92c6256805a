// End to end, the daemon as a service: shared upstream subscriptions with a grace period,
// sd_notify, socket activation, SIGHUP and SIGTERM, tokens kept secret, the Python client.
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startMock, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, FAST_CONFIG, INSTANTD, check, run, scenario, sleep, tmpdir, waitFor } from './lib.mjs';

const APP = DEFAULT_APP_ID;
const srcdir = process.env.srcdir || path.resolve('.');
const topsrc = process.env.top_srcdir || path.resolve('..');
const mock = await startMock(['--port', '0']);

async function upstreamQueries() {
	const s = await mock.ctl('sessions', {});
	return s.sessions.flatMap((x) => x.queries);
}

await scenario('identical queries share one upstream subscription, removed after a grace period', async () => {
	const daemon = new Daemon({ server: mock.url });
	await daemon.start();
	try {
		const a = await new Client(daemon.socket).connect();
		const b = await new Client(daemon.socket).connect();
		await a.init(APP);
		await b.init(APP);
		const qa = { shared: { $: { where: { x: 1 }, limit: 5 } } };
		const qb = { shared: { $: { limit: 5, where: { x: 1 } } } };	// same query, other key order
		const sa = a.send({ op: 'add-query', q: qa });
		const sb = b.send({ op: 'add-query', q: qb });
		await a.next((m) => m['client-event-id'] === sa && m.op === 'add-query-ok', 'A result');
		await b.next((m) => m['client-event-id'] === sb && m.op === 'add-query-ok', 'B result');
		check((await upstreamQueries()).length === 1, 'one upstream subscription for both programs');
		const r = await a.request({ op: 'remove-query', q: qa });
		check(r.op === 'remove-query-ok', `remove: ${JSON.stringify(r)}`);
		// A barrier instead of a sleep: a query A subscribes and drops after its own
		// removal has a grace period that ends after the shared one's would have.
		const qc = { barrier: {} };
		const sc = a.send({ op: 'add-query', q: qc });
		await a.next((m) => m['client-event-id'] === sc && m.op === 'add-query-ok', 'barrier result');
		await a.request({ op: 'remove-query', q: qc });
		await waitFor(async () => !(await upstreamQueries()).some((q) => JSON.stringify(q).includes('barrier')),
			'the barrier query removed upstream after its grace period');
		check((await upstreamQueries()).length === 1, 'the shared query is kept past its grace period while B still listens');
		b.close();
		await waitFor(async () => (await upstreamQueries()).length === 0, 'the upstream remove-query after the grace period');
		a.close();
	} finally {
		await daemon.stop();
	}
}, { timeoutMs: 60000 });

await scenario('sd_notify READY before the server answers, STATUS, WATCHDOG, SIGHUP keeps programs connected, SIGTERM exits 0', async () => {
	const dir = tmpdir();
	const notifyPath = path.join(dir, 'notify.sock');
	// Node has no Unix datagram sockets: a small Python listener prints each datagram as a line.
	const listener = spawn('python3', ['-u', '-c', `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    d = s.recv(65536).decode().replace("\\n", "|")
    print(d, flush=True)
`, notifyPath], { stdio: ['ignore', 'pipe', 'inherit'] });
	let lines = '';
	listener.stdout.on('data', (d) => { lines += d.toString(); });
	await waitFor(() => lines.includes('listening'), 'the notify listener');
	await mock.ctl('refuse', { ms: -1 });
	const daemon = new Daemon({ server: mock.url, dir, env: { NOTIFY_SOCKET: notifyPath, WATCHDOG_USEC: '400000' } });
	try {
		await daemon.start();
		await waitFor(() => lines.includes('READY=1'), 'READY=1 while the server refuses connections');
		const c = await new Client(daemon.socket).connect();
		await c.init(APP);
		await waitFor(() => /STATUS=.*queued/.test(lines), 'a STATUS line with the queue depth');
		await waitFor(() => (lines.match(/WATCHDOG=1/g) || []).length >= 2, 'WATCHDOG=1 pings from the loop');
		fs.writeFileSync(path.join(dir, 'config', 'instantd', 'instantd.conf'),
			FAST_CONFIG + 'max-subscriptions-per-connection = 1\n');
		daemon.proc.kill('SIGHUP');
		await waitFor(() => lines.includes('RELOADING=1'), 'RELOADING=1 on SIGHUP');
		await waitFor(() => /configuration reloaded/.test(daemon.log), 'the reload');
		const st = await c.request({ op: 'status' });
		check(st.op === 'status' && !c.closed, 'the program stays connected across a reload');
		c.send({ op: 'add-query', q: { reloaded: { $: { where: { n: 1 } } } } });	// offline: no answer yet
		const over = await c.request({ op: 'add-query', q: { reloaded: { $: { where: { n: 2 } } } } },
			(m) => m.op === 'error');
		check(over.type === 'too-many-subscriptions', 'the reloaded limit applies');
		const w = await c.request({ op: 'watch-status' });
		check(w.op === 'status', 'watch-status answers with the status');
		const pushes = () => c.messages.filter((m) => m.op === 'status' && !m['client-event-id']).length;
		// The server keeps refusing, so each retry changes the state's detail and is pushed.
		await waitFor(() => pushes() > 0, 'a status push while watching');
		await c.request({ op: 'watch-status', enabled: false });
		const n = pushes();
		// A second watcher sees the retries go on; the first, unsubscribed, gets none of them.
		const w2 = await new Client(daemon.socket).connect();
		await w2.init(APP);
		await w2.request({ op: 'watch-status' });
		const pushes2 = () => w2.messages.filter((m) => m.op === 'status' && !m['client-event-id']).length;
		await waitFor(() => pushes2() >= 2, 'two status pushes to a second watcher');
		check(pushes() === n, `no pushes after "enabled": false (${pushes() - n} while the other watcher got ${pushes2()})`);
		w2.close();
		const t0 = Date.now();
		const code = await daemon.stop();
		check(code === 0, `SIGTERM exits 0 (got ${code})`);
		check(Date.now() - t0 < 2500, `SIGTERM exits within 2 s (${Date.now() - t0} ms)`);
		check(lines.includes('STOPPING=1'), 'STOPPING=1 on SIGTERM');
	} finally {
		listener.kill();
		await mock.ctl('refuse', { ms: 0 });
		await daemon.stop();
	}
}, { timeoutMs: 60000 });

await scenario('socket activation: systemd-socket-activate starts the daemon on the first connection', async () => {
	const which = spawnSync('sh', ['-c', 'command -v systemd-socket-activate']);
	check(which.status === 0, 'systemd-socket-activate is installed (package systemd)');
	const dir = tmpdir();
	const sock = path.join(dir, 'activated.sock');
	const env = { ...process.env, XDG_RUNTIME_DIR: dir, XDG_STATE_HOME: path.join(dir, 'state'),
		XDG_CONFIG_HOME: path.join(dir, 'config') };
	delete env.NOTIFY_SOCKET;
	const act = spawn('systemd-socket-activate', ['-l', sock, '--fdname=ipc', INSTANTD, '--state-dir',
		path.join(dir, 'state'), '--server', mock.url], { env, stdio: ['ignore', 'ignore', 'pipe'] });
	let err = '';
	let code = null;
	act.stderr.on('data', (d) => { err += d.toString(); });
	try {
		await waitFor(() => fs.existsSync(sock), 'the activation socket');
		const c = await new Client(sock).connect();
		const r = await c.request({ op: 'status' });
		check(r.op === 'status', `the activated daemon answers: ${JSON.stringify(r)}`);
		check(!fs.existsSync(path.join(dir, 'instantd', 'socket')), 'it used the inherited socket, not its own');
		c.close();
	} finally {
		act.kill('SIGTERM');
		code = await new Promise((r) => act.once('exit', (c, sig) => r(sig ?? c)));
	}
	// systemd-socket-activate execs the daemon: this is instantd's own exit.
	check(code === 0, `the activated daemon exits 0 on SIGTERM (got ${code}): ${err.slice(-500)}`);
}, { timeoutMs: 60000 });

await scenario('a refresh token never appears in replies or logs', async () => {
	const daemon = new Daemon({ server: mock.url });
	await daemon.start();
	try {
		const token = randomUUID();
		const c = await new Client(daemon.socket).connect();
		await c.init(APP, { 'refresh-token': token });
		await waitFor(async () => {
			const st = await c.request({ op: 'status' });
			return st.status.state === 'signed-out' && st;
		}, 'signed-out for an unknown token');
		const st = await c.request({ op: 'status' });
		const all = JSON.stringify(c.messages) + daemon.log;
		check(!all.includes(token), 'the token is in no reply and no log line');
		check(JSON.stringify(st).includes('signed-out'), 'the profile shows signed-out');
		c.close();
	} finally {
		await daemon.stop();
	}
}, { timeoutMs: 60000 });

await scenario('the Python client subscribes, writes and reads status against the real daemon', async () => {
	const daemon = new Daemon({ server: mock.url });
	await daemon.start();
	try {
		const py = await run('python3', ['-c', `
import sys, uuid
sys.path.insert(0, sys.argv[1])
import instantd
with instantd.connect(sys.argv[2]) as c:
    c.init(sys.argv[3], client_name="python-test")
    sub = c.subscribe({"pyitems": {}})
    first = sub.next(timeout=20)
    assert first["data"] == {"pyitems": []}, first
    q = c.transact([["update", "pyitems", str(uuid.uuid4()), {"n": 1}]])
    assert q["mutation-id"], q
    while True:
        r = sub.next(timeout=20)
        if r["data"]["pyitems"] and r["data"]["pyitems"][0]["n"] == 1:
            break
    st = c.status()
    assert st["status"]["app-id"] == sys.argv[3], st
print("python ok")
`, path.join(topsrc, 'contrib', 'python'), daemon.socket, APP], { timeout: 60000 });
		check(py.status === 0 && py.stdout.includes('python ok'), `python client: ${py.stdout} ${py.stderr}`);
	} finally {
		await daemon.stop();
	}
}, { timeoutMs: 90000 });

await scenario('1,000 programs with a subscription each are served', async () => {
	const daemon = new Daemon({ server: mock.url });
	await daemon.start();
	try {
		const N = Number(process.env.E2E_CONNECTIONS || 1000);
		const clients = [];
		for (let i = 0; i < N; i++) clients.push(await new Client(daemon.socket).connect());
		const subs = clients.map((c, i) => {
			c.send({ op: 'init', 'app-id': APP });
			return c.send({ op: 'add-query', q: { crowd: { $: { where: { n: i % 10 } } } } });
		});
		await Promise.all(clients.map((c, i) => c.next((m) => m['client-event-id'] === subs[i] && m.op === 'add-query-ok',
			`result ${i}`, 60000)));
		check((await upstreamQueries()).length === 10, '1,000 subscriptions, 10 distinct queries upstream');
		const w = clients[0].send({ op: 'transact', ops: [['update', 'crowd', randomUUID(), { n: 3 }]] });
		await clients[0].next((m) => m['client-event-id'] === w && m.op === 'transact-queued', 'the write');
		const watchers = clients.filter((_, i) => i % 10 === 3);
		await Promise.all(watchers.map((c, k) => c.next((m) => m.op === 'refresh-ok' && m.data.crowd.length === 1,
			`update ${k}`, 60000)));
		for (const c of clients) c.close();
	} finally {
		await daemon.stop();
	}
}, { timeoutMs: 120000 });

await scenario('a corrupt database is moved aside, its queued writes carried over, and status says so', async () => {
	const daemon = new Daemon({ server: mock.url });
	await mock.ctl('refuse', { ms: -1, drop: true });
	await daemon.start();
	try {
		let c = await new Client(daemon.socket).connect();
		await c.init(APP);
		const id = randomUUID();
		await c.request({ op: 'transact', ops: [['update', 'saved', id, { v: 1 }]] }, (m) => m.op === 'transact-queued');
		c.close();
		await daemon.stop();
		const db = fs.readdirSync(daemon.stateDir).find((f) => f.endsWith('.sqlite'));
		const file = path.join(daemon.stateDir, db);
		const fd = fs.openSync(file, 'r+');
		fs.writeSync(fd, Buffer.alloc(100, 0x5a), 0, 100, 0);	// clobber the header
		fs.closeSync(fd);
		await daemon.start();
		c = await new Client(daemon.socket).connect();
		const init = await c.init(APP);
		check(init.status['recovered-from'] && init.status['recovered-from'].startsWith(file + '.corrupt-'),
			`status names the moved-aside file: ${JSON.stringify(init.status)}`);
		check(fs.existsSync(init.status['recovered-from']), 'the damaged file is kept, not deleted');
		const list = await c.request({ op: 'list-mutations' });
		check(list.mutations.some((m) => JSON.stringify(m['tx-steps']).includes(id)), 'the queued write was carried over');
		check(/moved aside/.test(daemon.log), 'the event is logged');
		c.close();
	} finally {
		await mock.ctl('refuse', { ms: 0 });
		await daemon.stop();
	}
}, { timeoutMs: 60000 });

await scenario('a full database refuses writes with storage-full, keeps the queue, and accepts writes again', async () => {
	const daemon = new Daemon({ server: mock.url, config: FAST_CONFIG + 'max-database-bytes = 400K\n' });
	await daemon.start();
	try {
		const c = await new Client(daemon.socket).connect();
		await c.init(APP);
		const sub = c.send({ op: 'add-query', q: { blobs: {} } });
		await c.next((m) => m['client-event-id'] === sub && m.op === 'add-query-ok', 'subscribed while online');
		await mock.ctl('refuse', { ms: -1, drop: true });
		const big = 'x'.repeat(20000);
		const queued = [];
		let full = null, refusedId = null;
		for (let i = 0; i < 100 && !full; i++) {
			const id = randomUUID();
			const r = await c.request({ op: 'transact', ops: [['update', 'blobs', id, { i, big }]] },
				(m) => m.op === 'transact-queued' || m.op === 'error');
			if (r.op === 'error') { full = r; refusedId = id; }
			else queued.push(r['mutation-id']);
		}
		check(full && full.type === 'storage-full', `a clear storage-full error: ${JSON.stringify(full)}`);
		await waitFor(() => {
			const last = c.messages.filter((m) => m['client-event-id'] === sub).pop();
			return last && last.data.blobs.length === queued.length && !last.data.blobs.some((b) => b.id === refusedId);
		}, 'the refused write to vanish from the subscription');
		check(queued.length > 3, `earlier writes were accepted (${queued.length})`);
		const list = await c.request({ op: 'list-mutations' });
		check(queued.every((id) => list.mutations.some((m) => m['mutation-id'] === id && m.state === 'pending')),
			'every acknowledged write is intact');
		for (const id of queued.slice(0, 3))
			await c.request({ op: 'discard-mutation', 'mutation-id': id });
		const again = await c.request({ op: 'transact', ops: [['update', 'blobs', randomUUID(), { i: -1, big }]] },
			(m) => m.op === 'transact-queued' || m.op === 'error');
		check(again.op === 'transact-queued', `writes work again once there is room: ${JSON.stringify(again)}`);
		await mock.ctl('refuse', { ms: 0 });
		await waitFor(async () => (await c.request({ op: 'list-mutations' })).mutations.length === 0, 'the queue drains');
		c.close();
	} finally {
		await mock.ctl('refuse', { ms: 0 });
		await daemon.stop();
	}
}, { timeoutMs: 90000 });

await scenario('subscriptions per connection are bounded', async () => {
	const daemon = new Daemon({ server: mock.url, config: FAST_CONFIG + 'max-subscriptions-per-connection = 3\n' });
	await daemon.start();
	try {
		const c = await new Client(daemon.socket).connect();
		await c.init(APP);
		for (let i = 0; i < 3; i++) {
			const r = await c.request({ op: 'add-query', q: { bounded: { $: { where: { i } } } } });
			check(r.op === 'add-query-ok', `subscription ${i}: ${JSON.stringify(r)}`);
		}
		const over = await c.request({ op: 'add-query', q: { bounded: { $: { where: { i: 3 } } } } });
		check(over.op === 'error' && over.type === 'too-many-subscriptions', `the 4th is refused: ${JSON.stringify(over)}`);
		const once = await c.request({ op: 'query-once', q: { bounded: {} }, policy: 'network-only' });
		check(once.op === 'query-ok', 'a one-shot query still works');
		c.close();
	} finally {
		await daemon.stop();
	}
}, { timeoutMs: 60000 });

await scenario('a program that disconnects in the middle of each op', async () => {
	const daemon = new Daemon({ server: mock.url });
	await daemon.start();
	try {
		const ids = [];
		const ops = [
			{ op: 'add-query', q: { midway: {} } },
			{ op: 'query-once', q: { midway: {} }, policy: 'network-only' },
			{ op: 'remove-query', q: { midway: {} } },
			{ op: 'list-mutations' },
			{ op: 'retry-mutation', 'mutation-id': randomUUID() },
			{ op: 'discard-mutation', 'mutation-id': randomUUID() },
			{ op: 'join-room', 'room-id': 'midway', data: { x: 1 } },
			{ op: 'set-presence', 'room-id': 'midway', data: { x: 2 } },
			{ op: 'client-broadcast', 'room-id': 'midway', topic: 't', data: {} },
			{ op: 'leave-room', 'room-id': 'midway' },
			{ op: 'status' },
			{ op: 'watch-status' },
			{ op: 'whoami' },
			{ op: 'send-magic-code', email: 'm@example.com' },
			{ op: 'sign-in', method: 'guest' },
		];
		for (let round = 0; round < 3; round++) {
			for (const req of [...ops, { op: 'transact', ops: [['update', 'midway', 'ID', { round }]] }]) {
				const c = await new Client(daemon.socket).connect();
				c.send({ op: 'init', 'app-id': APP });
				const r = JSON.parse(JSON.stringify(req).replace('"ID"', JSON.stringify(randomUUID())));
				if (r.op === 'transact') ids.push(r.ops[0][2]);
				c.send(r);
				if (round === 1) await sleep(5);
				c.close();
			}
		}
		// The daemon is up, and the writes sent just before each disconnect were kept.
		const d = await new Client(daemon.socket).connect();
		await d.init(APP);
		await waitFor(async () => {
			const l = await d.request({ op: 'list-mutations' });
			return l.mutations.length === 0;
		}, 'the writes of vanished programs to land');
		const dump = await mock.ctl('dump', {});
		for (const id of ids) check(dump.triples.some((t) => t[0] === id), `write ${id} landed`);
		const st = await d.request({ op: 'status' });
		check(st.op === 'status', 'still serving');
		d.close();
	} finally {
		await daemon.stop();
	}
}, { timeoutMs: 90000 });

check(srcdir, 'srcdir');
await mock.stop();
