// End to end, how configuration reaches a profile: init {profile} binds exactly that profile
// (same app id on two servers, or with two users' tokens); a configured profile's ca-file and
// api-uri serve its queued writes at start-up; SIGHUP applies what it can and names what needs a restart.
import fs from 'node:fs';
import path from 'node:path';
import { startMock, makeTestCA, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, FAST_CONFIG, check, scenario, tmpdir, waitFor } from './lib.mjs';

const APP = DEFAULT_APP_ID;

// The profile's status once its session is authenticated.
async function authenticated(c) {
	return waitFor(async () => {
		const st = (await c.request({ op: 'status' })).status;
		return st.state === 'authenticated' && st;
	}, 'an authenticated session');
}

function tokenFile(dir, name, token) {
	const f = path.join(dir, name);
	fs.writeFileSync(f, token + '\n', { mode: 0o600 });
	return f;
}

{
	const a = await startMock(['--port', '0']);
	const b = await startMock(['--port', '0']);
	await scenario('init {profile} binds that profile when two share the app id (two servers, two tokens)', async () => {
		const dir = tmpdir();
		const ada = await a.ctl('add-user', { email: 'ada@example.com' });
		const bob = await a.ctl('add-user', { email: 'bob@example.com' });
		const config = FAST_CONFIG +
			`[profile one]\napp-id = ${APP}\nserver = ${a.url}\n` +
			`[profile other]\napp-id = ${APP}\nserver = ${b.url}\n` +
			`[profile ada]\napp-id = ${APP}\nserver = ${a.url}\ntoken-file = ${tokenFile(dir, 'ada', ada['refresh-token'])}\n` +
			`[profile bob]\napp-id = ${APP}\nserver = ${a.url}\ntoken-file = ${tokenFile(dir, 'bob', bob['refresh-token'])}\n`;
		const daemon = new Daemon({ server: a.url, dir, config });
		await daemon.start();
		try {
			// Both directions, each on a fresh connection, in both orders of first use.
			for (const [name, url] of [['other', b.url], ['one', a.url], ['other', b.url]]) {
				const c = await new Client(daemon.socket).connect();
				const r = await c.init(undefined, { profile: name });
				check(r.status.profile === name && r.status.server === url,
					`init {profile:${name}} is bound to ${url}: ${JSON.stringify(r.status)}`);
				await authenticated(c);
				c.close();
			}
			check((await b.ctl('sessions', {})).sessions.some((s) => s.inited), 'profile other reached its own server');
			for (const [name, email] of [['bob', 'bob@example.com'], ['ada', 'ada@example.com'], ['bob', 'bob@example.com']]) {
				const c = await new Client(daemon.socket).connect();
				const r = await c.init(undefined, { profile: name });
				check(r.status.profile === name, `init {profile:${name}} names it: ${JSON.stringify(r.status)}`);
				const st = await authenticated(c);
				check(st.user?.email === email, `profile ${name} is signed in as ${email}: ${JSON.stringify(st.user)}`);
				c.close();
			}
			// A conflicting or unknown name is refused, not silently replaced by another profile.
			const c = await new Client(daemon.socket).connect();
			let r = await c.request({ op: 'init', profile: 'nope' });
			check(r.op === 'error' && r.type === 'invalid-request' && /profile 'nope'/.test(r.message), `unknown profile: ${JSON.stringify(r)}`);
			r = await c.request({ op: 'init', profile: 'other', server: a.url });
			check(r.op === 'error' && r.type === 'invalid-request' && /server differs/.test(r.message), `conflicting server: ${JSON.stringify(r)}`);
			c.close();
		} finally {
			await daemon.stop();
		}
	}, { timeoutMs: 60000 });
	await a.stop();
	await b.stop();
}

{
	const pkiDir = tmpdir('instantd-e2e-pki-');
	const pki = makeTestCA(pkiDir);
	const mock = await startMock(['--port', '0', '--tls-cert', pki.cert, '--tls-key', pki.key]);
	const url = mock.url.replace('127.0.0.1', 'localhost');
	await scenario('at start-up, queued writes of a configured profile replay through its ca-file', async () => {
		const dir = tmpdir();
		// The server default stays the plain (unreachable) one: only the profile knows the wss server and its CA.
		const config = FAST_CONFIG + `[profile secure]\napp-id = ${APP}\nserver = ${url}\nca-file = ${pki.ca}\n`;
		let daemon = new Daemon({ dir, config });
		await daemon.start();
		let mid;
		try {
			const c = await new Client(daemon.socket).connect();
			await c.init(undefined, { profile: 'secure' });
			await authenticated(c);	// the ca-file works for init
			await mock.ctl('refuse', { ms: -1, drop: true });
			const id = crypto.randomUUID();
			const q = await c.request({ op: 'transact', ops: [['update', 'notes', id, { text: 'queued over TLS' }]] });
			check(q.op === 'transact-queued', `queued: ${JSON.stringify(q)}`);
			mid = q['mutation-id'];
			c.close();
		} finally {
			await daemon.stop();
		}
		daemon = new Daemon({ dir, config });
		await daemon.start();
		try {
			await mock.ctl('refuse', { ms: 0 });
			// No program connects: the daemon replays on its own, trusting the profile's CA.
			const w = await mock.ctl('wait', { 'client-event-id': mid, 'tx-count': 1, 'timeout-ms': 15000 });
			check(w.met, `the queued write reached the server after the restart; log:\n${daemon.log.slice(-3000)}`);
		} finally {
			await daemon.stop();
		}
	}, { timeoutMs: 60000 });
	await mock.stop();
	fs.rmSync(pkiDir, { recursive: true, force: true });
}

{
	const sync = await startMock(['--port', '0']);
	const api = await startMock(['--port', '0']);
	await scenario('at start-up, a configured profile with queued writes keeps its api-uri', async () => {
		const dir = tmpdir();
		// Sync on one server, sign-in calls on another: only the profile's api-uri says so.
		const config = FAST_CONFIG + `[profile split]\napp-id = ${APP}\nserver = ${sync.url}\napi-uri = ${api.apiURI}\n`;
		let daemon = new Daemon({ dir, config });
		await daemon.start();
		try {
			const c = await new Client(daemon.socket).connect();
			await c.init(undefined, { profile: 'split' });
			await sync.ctl('refuse', { ms: -1, drop: true });
			const q = await c.request({ op: 'transact', ops: [['update', 'notes', crypto.randomUUID(), { text: 'waits' }]] });
			check(q.op === 'transact-queued', `queued: ${JSON.stringify(q)}`);
			c.close();
		} finally {
			await daemon.stop();
		}
		daemon = new Daemon({ dir, config });
		await daemon.start();
		try {
			await waitFor(() => /queued writes to replay/.test(daemon.log), 'the start-up replay');
			const c = await new Client(daemon.socket).connect();
			await c.init(undefined, { profile: 'split' });
			const r = await c.request({ op: 'send-magic-code', email: 'ada@example.com' });
			check(r.op === 'send-magic-code-ok', `sent: ${JSON.stringify(r)}`);
			check((await api.ctl('magic-code', { email: 'ada@example.com' })).code, 'the code went to the profile\'s api-uri');
			check(!(await sync.ctl('magic-code', { email: 'ada@example.com' })).code, 'not to the sync server');
			c.close();
		} finally {
			await daemon.stop();
		}
	}, { timeoutMs: 60000 });
	await sync.stop();
	await api.stop();
}

{
	const mock = await startMock(['--port', '0']);
	await scenario('SIGHUP applies a new token-file at once and names each key that needs a restart', async () => {
		const dir = tmpdir();
		const ada = await mock.ctl('add-user', { email: 'ada@example.com' });
		const bob = await mock.ctl('add-user', { email: 'bob@example.com' });
		const tf = tokenFile(dir, 'tok', ada['refresh-token']);
		const ca = path.join(dir, 'ca.pem');
		fs.writeFileSync(ca, 'not used\n');
		const confPath = path.join(dir, 'config', 'instantd', 'instantd.conf');
		const profile = `[profile me]\napp-id = ${APP}\ntoken-file = ${tf}\n`;
		const daemon = new Daemon({ server: mock.url, dir, config: FAST_CONFIG + profile });
		await daemon.start();
		try {
			const c = await new Client(daemon.socket).connect();
			await c.init(undefined, { profile: 'me' });
			check((await authenticated(c)).user?.email === 'ada@example.com', 'signed in from the token-file');
			fs.writeFileSync(tf, bob['refresh-token'] + '\n', { mode: 0o600 });
			fs.writeFileSync(confPath, FAST_CONFIG + `max-connections = 7\nmax-message-bytes = 64K\nca-file = ${ca}\n` + profile +
				`server = ws://127.0.0.1:1/runtime/session\nca-file = ${ca}\n`);
			daemon.proc.kill('SIGHUP');
			await waitFor(() => /configuration reloaded/.test(daemon.log), 'the reload');
			for (const key of ['max-connections', 'max-message-bytes', 'ca-file'])
				check(daemon.log.includes(`reload: '${key}' changed; it takes effect only when instantd restarts`),
					`the reload names ${key}`);
			check(!/reload: 'socket'/.test(daemon.log), 'an unchanged key is not named');
			check(daemon.log.includes("profile me: 'ca-file' changed; it takes effect only when instantd restarts"),
				'the reload names the open profile\'s ca-file');
			check(daemon.log.includes("profile me: 'server' changed; programs that init from now on use ws://127.0.0.1:1/runtime/session"),
				'the reload names the open profile\'s server');
			await waitFor(async () => (await c.request({ op: 'status' })).status.user?.email === 'bob@example.com',
				'the new token-file applied to the open profile');
			check(!c.closed, 'the program stayed connected');
			c.close();
		} finally {
			await daemon.stop();
		}
	}, { timeoutMs: 60000 });
	await mock.stop();
}
