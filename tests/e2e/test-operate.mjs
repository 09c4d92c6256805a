// End to end, operating the daemon: `instantctl log-level` changes the level with no
// restart; a peer of another uid is refused and logged with its uid; every reconnect
// logs one notice line naming its reason.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startMock, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, INSTANTCTL, check, run, scenario, tmpdir, waitFor } from './lib.mjs';

const APP = DEFAULT_APP_ID;
const mock = await startMock(['--port', '0']);
// The default level (notice): what a user's journal shows.
const daemon = new Daemon({ server: mock.url, verbose: 0 });
await daemon.start();
const ctl = (...args) => run(INSTANTCTL, ['--socket', daemon.socket, ...args]);
const lines = (re) => daemon.log.split('\n').filter((l) => re.test(l));

await scenario('instantctl log-level changes the level at once, no restart', async () => {
	const pid = daemon.proc.pid;
	const a = await new Client(daemon.socket).connect();
	await a.init(APP);
	await waitFor(async () => (await a.request({ op: 'status' })).status.state === 'authenticated', 'online');
	check(lines(/^instantd: (info|debug): /).length === 0, 'nothing below notice at the default level');

	let r = await ctl('log-level', 'debug');
	check(r.status === 0, `log-level debug: ${r.status} ${r.stderr}`);
	check(r.stdout.includes('log level: debug (was notice)'), `answer: ${r.stdout}`);
	check(lines(/^instantd: notice: log level set to debug \(was notice\)/).length === 1, 'the change is logged');
	// A new profile's state changes are logged at info: now they show.
	const b = await new Client(daemon.socket).connect();
	await b.init('22222222-2222-4222-8222-222222222222');
	await waitFor(() => lines(/^instantd: info: /).length > 0, 'an info line after log-level debug');
	b.close();

	r = await ctl('log-level', 'warning');
	check(r.status === 0 && r.stdout.includes('(was debug)'), `log-level warning: ${r.stdout} ${r.stderr}`);
	const before = daemon.log.length;
	const c = await new Client(daemon.socket).connect();
	await c.init('33333333-3333-4333-8333-333333333333');
	await new Promise((res) => setTimeout(res, 300));	// give a wrong info line the chance to appear
	check(!/^instantd: (info|debug|notice): /m.test(daemon.log.slice(before)), `quiet at warning: ${daemon.log.slice(before)}`);
	c.close();
	r = await ctl('log-level', 'notice');
	check(r.status === 0, 'back to notice');
	check(daemon.proc.pid === pid && daemon.proc.exitCode === null, 'the same process, never restarted');

	r = await ctl('log-level', 'loud');
	check(r.status === 2 && /unknown log level 'loud'/.test(r.stderr), `bad level: ${r.status} ${r.stderr}`);
	const e = await a.request({ op: 'set-log-level', level: 'loud' });
	check(e.op === 'error' && e.type === 'invalid-request' && /"level" must be one of/.test(e.message), `raw bad level: ${JSON.stringify(e)}`);
	a.close();
}, { daemons: [daemon] });

await scenario('a peer of another uid is refused and logged with its uid', async () => {
	if (process.getuid() !== 0) {
		console.log('# not root: cannot connect as another uid; skipped');
		return;
	}
	// Loosen the modes so that uid 65534 reaches the socket: the uid check must hold anyway.
	fs.chmodSync(path.dirname(daemon.socket), 0o711);
	fs.chmodSync(path.dirname(path.dirname(daemon.socket)), 0o711);
	fs.chmodSync(daemon.socket, 0o666);
	for (let d = daemon.dir; d !== '/'; d = path.dirname(d)) fs.chmodSync(d, fs.statSync(d).mode | 0o011);
	const node = process.execPath;
	const p = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', node, '-e', `
		const s = require('net').connect(process.argv[1]);
		s.on('connect', () => s.write('{"op":"status"}\\n'));
		s.on('data', (d) => { process.stdout.write('answered ' + d); });
		s.on('close', () => process.exit(0));
		// The daemon closes at once: a reset is as good as an orderly close.
		s.on('error', (e) => { console.log('error ' + e.code); process.exit(e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 0 : 1); });
	`, daemon.socket], { stdio: ['ignore', 'pipe', 'inherit'] });
	let out = '';
	p.stdout.on('data', (d) => { out += d; });
	const code = await new Promise((res) => p.on('exit', res));
	check(code === 0, `the foreign peer connected and saw the close (${code}: ${out})`);
	check(!out.includes('answered'), `no answer to another uid: ${out}`);
	await waitFor(() => lines(/^instantd: warning: refused a connection from uid 65534 \(pid \d+\): only uid 0 may use /).length === 1,
		'the refusal logged with the uid');
	fs.chmodSync(daemon.socket, 0o600);
	fs.chmodSync(path.dirname(daemon.socket), 0o700);
}, { daemons: [daemon] });

await scenario('every reconnect logs one notice line naming its reason', async () => {
	const a = await new Client(daemon.socket).connect();
	await a.init(APP);
	const online = async () => (await a.request({ op: 'status' })).status.state === 'authenticated';
	await waitFor(online, 'online');
	const retry = /^instantd: notice: upstream 127\.0\.0\.1: (.*); retry in \d+ ms/;
	const n0 = lines(retry).length;
	await mock.ctl('drop', {});
	await waitFor(() => lines(retry).length > n0, 'a reconnect line after a drop');
	await waitFor(online, 'online again');
	check(lines(retry).length === n0 + 1, `one line per reconnect: ${lines(retry).slice(n0).join(' | ')}`);
	check(/connection to 127\.0\.0\.1 lost|server closed the connection/.test(lines(retry)[n0]), `reason: ${lines(retry)[n0]}`);

	await mock.ctl('refuse', { ms: -1, mode: 'http503', drop: true });
	await waitFor(() => lines(retry).slice(n0 + 1).some((l) => /HTTP 503/.test(l)), 'a line naming the refused upgrade');
	await mock.ctl('refuse', { ms: 0 });
	await waitFor(online, 'online after the refusal ends');

	// A sign-in reconnects with the new token, and says so at notice level.
	const dir = tmpdir();
	const { 'refresh-token': tok } = await mock.ctl('add-user', { email: 'op@example.com' });
	fs.writeFileSync(path.join(dir, 'tok'), `${tok}\n`, { mode: 0o600 });
	const r = await ctl('--app', APP, 'login', '--token-file', path.join(dir, 'tok'));
	check(r.status === 0, `login: ${r.status} ${r.stderr}`);
	await waitFor(() => lines(/^instantd: notice: upstream 127\.0\.0\.1: reconnecting now \(new credentials or configuration\)/).length === 1,
		'the reconnect after sign-in logged with its reason');
	a.close();
}, { daemons: [daemon] });

await daemon.stop();
await mock.stop();
