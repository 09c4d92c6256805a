// End to end, errors a program can act on: a query that needs the server waits for a connecting
// session and then answers, or fails with `offline` (unreachable) or `timeout` (timeout-ms); and
// every error type in ipc/PROTOCOL.md's table is really sent, each triggered here from outside.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startMock, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, FAST_CONFIG, INSTANTCTL, INSTANTD, check, equalJSON, run, scenario, tmpdir, waitFor } from './lib.mjs';

const APP = DEFAULT_APP_ID;
const topsrc = process.env.top_srcdir || path.resolve('..');
const UNREACHABLE = 'ws://127.0.0.1:1/runtime/session';	// nothing listens on port 1: refused at once
const mock = await startMock(['--port', '0']);
const daemons = [];

function ctl(daemon, ...args) {
	return run(INSTANTCTL, ['--socket', daemon.socket, ...args]);
}

// A fresh daemon (its first request opens the profile, as after socket activation).
async function freshDaemon(config = FAST_CONFIG, opts = {}) {
	const d = new Daemon({ server: mock.url, config, ...opts });
	daemons.push(d);
	return d.start();
}

await scenario('a query on a fresh daemon waits for the slow server and answers', async () => {
	await mock.ctl('delay', { ms: 700, ops: ['init-ok'] });
	try {
		let d = await freshDaemon();
		const c = await new Client(d.socket).connect();
		await c.init(APP);
		const r = await c.request({ op: 'query-once', q: { waits: {} }, 'timeout-ms': 15000 });
		check(r.op === 'query-ok' && r['from-cache'] === false, `answered by the server: ${JSON.stringify(r)}`);
		c.close();
		await d.stop();
		// The same through instantctl, whose default wait covers a slow connect.
		d = await freshDaemon();
		const q = await ctl(d, '--app', APP, 'query', '{"waits":{}}');
		check(q.status === 0 && /waits/.test(q.stdout), `instantctl query on a fresh daemon: ${q.status} ${q.stderr}`);
		await d.stop();
	} finally {
		await mock.ctl('delay', { ms: 0 });
	}
}, { daemons });

await scenario('the first command after socket activation waits for the server and answers', async () => {
	const dir = tmpdir();
	const sock = path.join(dir, 'activated.sock');
	const env = { ...process.env, XDG_RUNTIME_DIR: dir, XDG_STATE_HOME: path.join(dir, 'state'),
		XDG_CONFIG_HOME: path.join(dir, 'config') };
	delete env.NOTIFY_SOCKET;
	await mock.ctl('delay', { ms: 500, ops: ['init-ok'] });
	const act = spawn('systemd-socket-activate', ['-l', sock, '--fdname=ipc', INSTANTD, '--state-dir',
		path.join(dir, 'state'), '--server', mock.url], { env, stdio: ['ignore', 'ignore', 'ignore'] });
	try {
		await waitFor(() => fs.existsSync(sock), 'the activation socket');
		// The daemon starts on this very connection; its profile opens on the init.
		const q = await run(INSTANTCTL, ['--socket', sock, '--app', APP, 'query', '{"activated":{}}']);
		check(q.status === 0 && /activated/.test(q.stdout), `answered: ${q.status} ${q.stdout} ${q.stderr}`);
	} finally {
		await mock.ctl('delay', { ms: 0 });
		act.kill('SIGTERM');
		await new Promise((r) => act.once('exit', r));
	}
});

await scenario('an unreachable server gives offline after the first failed attempt', async () => {
	const d = await freshDaemon(FAST_CONFIG, { server: UNREACHABLE });
	try {
		const c = await new Client(d.socket).connect();
		await c.init(APP);
		// A program that wants no partial answer from the mirror gets offline.
		for (const policy of ['cache-first', 'network-only']) {
			const r = await c.request({ op: 'query-once', q: { nowhere: {} }, policy, 'timeout-ms': 15000, 'allow-partial': false });
			check(r.op === 'error' && r.type === 'offline' && /not reachable/.test(r.message), `${policy}: ${JSON.stringify(r)}`);
		}
		// network-only never takes a partial answer; cache-first does by default.
		const n = await c.request({ op: 'query-once', q: { nowhere: {} }, policy: 'network-only', 'timeout-ms': 15000 });
		check(n.op === 'error' && n.type === 'offline', `network-only: ${JSON.stringify(n)}`);
		const p = await c.request({ op: 'query-once', q: { nowhere: {} }, 'timeout-ms': 15000 });
		check(p.op === 'query-ok' && p.partial === true && p['from-cache'] === true && equalJSON(p.data, { nowhere: [] }),
			`the default is a partial answer: ${JSON.stringify(p)}`);
		c.close();
		const q = await ctl(d, '--app', APP, 'query', '--no-partial', '{"nowhere":{}}');
		check(q.status === 1 && /offline/.test(q.stderr), `instantctl says offline: ${q.status} ${q.stderr}`);
		const qp = await ctl(d, '--app', APP, 'query', '{"nowhere":{}}');
		check(qp.status === 0 && /^instantctl: partial result: .*the server was not reached/m.test(qp.stderr) &&
			/# from cache, partial/.test(qp.stdout), `instantctl says partial: ${qp.status} ${qp.stdout} ${qp.stderr}`);
	} finally {
		await d.stop();
	}
}, { daemons });

await scenario('a server that never answers the query gives timeout at timeout-ms', async () => {
	const d = await freshDaemon();
	try {
		const c = await new Client(d.socket).connect();
		await c.init(APP);
		await waitFor(async () => (await c.request({ op: 'status' })).status.state === 'authenticated', 'connected');
		await mock.ctl('delay', { ms: 120000, ops: ['add-query-ok'] });
		const t0 = Date.now();
		const r = await c.request({ op: 'query-once', q: { silent: {} }, 'timeout-ms': 300 });
		check(r.op === 'error' && r.type === 'timeout', `timeout: ${JSON.stringify(r)}`);
		check(Date.now() - t0 >= 300, 'not before timeout-ms');
		const bad = await c.request({ op: 'query-once', q: { silent: {} }, 'timeout-ms': -5 });
		check(bad.op === 'error' && bad.type === 'invalid-request', `a negative timeout-ms: ${JSON.stringify(bad)}`);
		c.close();
		const q = await ctl(d, '--app', APP, '--timeout', '300', 'query', '{"silent":{}}');
		check(q.status === 4 && /timeout/.test(q.stderr), `instantctl says timeout: ${q.status} ${q.stderr}`);
	} finally {
		await mock.ctl('delay', { ms: 0 });
		await d.stop();
	}
}, { daemons });

// ---- every error type of PROTOCOL.md ----

// One raw connection: send bytes, return the first error message.
function rawError(socketPath, bytes) {
	return new Promise((resolve, reject) => {
		const s = net.connect(socketPath);
		let buf = '';
		s.setEncoding('utf8');
		s.on('connect', () => { if (bytes.length) s.write(bytes); });
		s.on('data', (d) => {
			buf += d;
			const i = buf.indexOf('\n');
			if (i >= 0) { s.destroy(); resolve(JSON.parse(buf.slice(0, i))); }
		});
		// The daemon closes after a fatal error: a write may meet the closed socket.
		s.on('error', (e) => (e.code === 'EPIPE' || e.code === 'ECONNRESET' ? null : reject(e)));
		s.on('close', () => resolve(null));
	});
}

const docTypes = (() => {
	const text = fs.readFileSync(path.join(topsrc, 'ipc', 'PROTOCOL.md'), 'utf8');
	const section = text.slice(text.indexOf('## Errors'), text.indexOf('## Durability'));
	return [...section.matchAll(/^\| `([a-z0-9-]+)` \|/gm)].map((m) => m[1]);
})();

await scenario('every error type in PROTOCOL.md is sent', async () => {
	const config = FAST_CONFIG + 'max-message-bytes = 4K\nmax-json-depth = 16\nmax-subscriptions-per-connection = 2\n';
	const d = await freshDaemon(config);
	const c = await new Client(d.socket).connect();
	await c.init(APP);
	await waitFor(async () => (await c.request({ op: 'status' })).status.state === 'authenticated', 'connected');
	const req = (msg) => c.request(msg);
	const fresh = async (appOrExtra) => {
		const x = await new Client(d.socket).connect();
		if (appOrExtra) await x.init(undefined, appOrExtra);
		return x;
	};
	const triggers = {
		'invalid-json': () => rawError(d.socket, '{nope\n'),
		'too-large': () => rawError(d.socket, JSON.stringify({ op: 'status', pad: 'x'.repeat(5000) }) + '\n'),
		'too-deep': () => rawError(d.socket, '{"op":"status","x":' + '['.repeat(20) + ']'.repeat(20) + '}\n'),
		'invalid-utf8': () => rawError(d.socket, Buffer.concat([Buffer.from('{"op":"status","x":"'), Buffer.from([0xff]), Buffer.from('"}\n')])),
		'too-many-connections': async () => {
			const small = await freshDaemon(FAST_CONFIG + 'max-connections = 1\n');
			// The daemon may not have seen the start-up probe's connection close yet.
			const first = await waitFor(async () => {
				const x = await new Client(small.socket).connect();
				try {
					await x.request({ op: 'status' }, null, 2000);
					return x;
				} catch {
					x.close();
					return null;
				}
			}, 'the one connection');
			const e = await rawError(small.socket, '');
			first.close();
			await small.stop();
			return e;
		},
		'invalid-op': () => req({ op: 'frobnicate' }),
		'invalid-request': () => req({ op: 'query-once', q: { x: {} }, policy: 'sometimes' }),
		'not-initialized': async () => {
			const x = await fresh();
			const e = await x.request({ op: 'add-query', q: { x: {} } });
			x.close();
			return e;
		},
		'invalid-query': () => req({ op: 'add-query', q: { goals: { $: { where: { title: null } } } } }),
		'invalid-transaction': () => req({ op: 'transact', ops: [['explode', 'goals', randomUUID(), {}]] }),
		// Needs a full disk: tests/e2e/test-daemon.mjs fills a small max-database-bytes.
		'storage-full': async () => {
			const t = fs.readFileSync(path.join(topsrc, 'tests', 'e2e', 'test-daemon.mjs'), 'utf8');
			return /full\.type === 'storage-full'/.test(t) ? { op: 'error', type: 'storage-full', cited: true } : null;
		},
		offline: async () => {
			const x = await fresh({ 'app-id': APP, server: UNREACHABLE });
			const e = await x.request({ op: 'query-once', q: { x: {} }, policy: 'network-only' });
			x.close();
			return e;
		},
		'not-found': () => req({ op: 'remove-query', q: { never: {} } }),
		'permission-denied': async () => {
			await mock.ctl('reject-transacts', { count: 1 });
			const id = c.send({ op: 'transact', ops: [['update', 'goals', randomUUID(), { title: 'no' }]] });
			return c.next((m) => m['client-event-id'] === id && m.op === 'error', 'the rejection');
		},
		'server-error': async () => {
			await mock.ctl('reject-transacts', { count: 1, type: 'validation-failed', message: 'Validation failed' });
			const id = c.send({ op: 'transact', ops: [['update', 'goals', randomUUID(), { title: 'no' }]] });
			return c.next((m) => m['client-event-id'] === id && m.op === 'error', 'the rejection');
		},
		'auth-failed': () => req({ op: 'sign-in', method: 'magic-code', email: 'never@example.com', code: '000000' }),
		'rate-limited': async () => {
			await mock.ctl('rate-limit', { on: true });
			try {
				return await req({ op: 'send-magic-code', email: 'x@example.com' });
			} finally {
				await mock.ctl('rate-limit', { on: false });
			}
		},
		'app-not-found': async () => {
			const x = await fresh({ 'app-id': randomUUID() });
			const e = await x.request({ op: 'query-once', q: { x: {} } });
			const sub = await x.request({ op: 'add-query', q: { y: {} } });
			check(sub.op === 'error' && sub.type === 'app-not-found', `a subscription is told too: ${JSON.stringify(sub)}`);
			x.close();
			return e;
		},
		'app-read-only': async () => {
			await mock.ctl('app-status', { status: 'read-only' });
			await waitFor(async () => (await req({ op: 'status' })).status['app-status'] === 'read-only', 'read-only');
			const id = c.send({ op: 'transact', ops: [['update', 'goals', randomUUID(), { title: 'later' }]] });
			const queued = await c.next((m) => m['client-event-id'] === id && m.op === 'transact-queued', 'queued');
			const e = await c.next((m) => m['client-event-id'] === id && m.op === 'error', 'the notice');
			check(e['mutation-id'] === queued['mutation-id'] && e.queued === true, `the notice names the queued write: ${JSON.stringify(e)}`);
			await mock.ctl('app-status', { status: 'active' });
			const ok = await c.next((m) => m['client-event-id'] === id && m.op === 'transact-ok', 'sent once writable again');
			check(ok['mutation-id'] === queued['mutation-id'], 'the same write went through');
			return e;
		},
		'too-many-subscriptions': async () => {
			const x = await fresh({ 'app-id': APP });
			await x.request({ op: 'add-query', q: { a: {} } });
			await x.request({ op: 'add-query', q: { b: {} } });
			const e = await x.request({ op: 'add-query', q: { c: {} } });
			x.close();
			return e;
		},
		timeout: async () => {
			await mock.ctl('delay', { ms: 120000, ops: ['add-query-ok'] });
			try {
				return await req({ op: 'query-once', q: { slow: {} }, 'timeout-ms': 200 });
			} finally {
				await mock.ctl('delay', { ms: 0 });
			}
		},
		// Last: the state directory becomes a file, so a new profile's database cannot be made.
		internal: async () => {
			fs.rmSync(d.stateDir, { recursive: true, force: true });
			fs.writeFileSync(d.stateDir, 'not a directory\n');
			const x = await new Client(d.socket).connect();
			const e = await x.request({ op: 'init', 'app-id': randomUUID() });
			x.close();
			return e;
		},
	};
	try {
		check(docTypes.length >= 20, `read PROTOCOL.md's error table: ${docTypes}`);
		for (const type of docTypes)
			check(triggers[type], `PROTOCOL.md lists '${type}' but this test has no trigger for it`);
		for (const [type, trigger] of Object.entries(triggers)) {
			check(docTypes.includes(type), `'${type}' is triggered here but not in PROTOCOL.md`);
			if (process.env.E2E_TRACE) console.error(`trigger ${type}`);
			const e = await trigger();
			check(e && e.op === 'error' && e.type === type, `${type}: got ${JSON.stringify(e)}`);
			check(e.cited || (typeof e.message === 'string' && e.message.length > 0), `${type} has a message`);
		}
		c.close();
	} finally {
		await d.stop();
	}
}, { timeoutMs: 90000, daemons });

for (const d of daemons) await d.stop();
await mock.stop();
