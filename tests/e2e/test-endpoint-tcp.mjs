// The Instant endpoint on loopback TCP (instant-listen): off by default, loopback only, the
// real JS client works over it, and it refuses another uid, a browser Origin that is not
// listed in instant-allowed-origins, and any path but /runtime/session.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { startMock, spawnPeer, rawClient, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Daemon, FAST_CONFIG, INSTANTD, check, equalJSON, run, scenario, tmpdir, waitFor } from './lib.mjs';

const APP = DEFAULT_APP_ID;
const ALLOWED = 'http://localhost:5173';
const mock = await startMock(['--port', '0']);
const daemon = new Daemon({ server: mock.url,
	config: `${FAST_CONFIG}instant-listen = 127.0.0.1:0\ninstant-allowed-origins = ${ALLOWED}, app://desktop\n` });
await daemon.start();
const port = Number((await waitFor(() => daemon.log.match(/serving the Instant protocol on 127\.0\.0\.1:(\d+) \(loopback TCP\)/),
	'the TCP listener'))[1]);
const URL = `ws://127.0.0.1:${port}/runtime/session`;
const peers = [];

// One HTTP upgrade by hand: resolves to the status line, or 'closed' when the daemon hangs up.
function upgrade(host, p, { path: reqPath = '/runtime/session', origin } = {}) {
	return new Promise((resolve) => {
		const s = net.connect(p, host);
		let buf = '';
		s.on('connect', () => s.write(`GET ${reqPath}?app_id=${APP} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n` +
			`Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n` +
			(origin ? `Origin: ${origin}\r\n` : '') + '\r\n'));
		s.on('data', (d) => { buf += d; if (buf.includes('\r\n')) { resolve(buf.split('\r\n')[0]); s.destroy(); } });
		s.on('close', () => resolve(buf ? buf.split('\r\n')[0] : 'closed'));
		s.on('error', () => {});
	});
}

await scenario('the real JS client over loopback TCP: same results as straight to the mock', async () => {
	const direct = await spawnPeer(mock);
	peers.push(direct);
	const pid = randomUUID();
	direct.send({ cmd: 'transact', id: 'w', ops: [['notes', pid, 'update', { text: 'over tcp' }]] });
	await direct.waitFor((e) => e.ev === 'tx' && e.id === 'w' && e.status, { what: 'seed write' });
	const local = await spawnPeer({ url: URL, apiURI: mock.apiURI });
	peers.push(local);
	const Q = { notes: {} };
	direct.send({ cmd: 'subscribe', id: 'q', q: Q });
	local.send({ cmd: 'subscribe', id: 'q', q: Q });
	const a = await direct.waitFor((e) => e.ev === 'query' && e.id === 'q' && e.data, { what: 'direct result' });
	const b = await local.waitFor((e) => e.ev === 'query' && e.id === 'q' && e.data?.notes.length, { what: 'result over TCP' });
	check(equalJSON(a.data, b.data), `equal: ${JSON.stringify(a.data)} vs ${JSON.stringify(b.data)}`);
	const u = await upgrade('127.0.0.1', port);
	check(u.startsWith('HTTP/1.1 101'), `an upgrade without Origin is served: ${u}`);
}, { daemons: [daemon] });

await scenario('browser Origins are refused unless listed; other paths are refused', async () => {
	check((await upgrade('127.0.0.1', port, { origin: 'http://evil.invalid' })) === 'closed' ||
		!(await upgrade('127.0.0.1', port, { origin: 'http://evil.invalid' })).includes(' 101'), 'an unlisted Origin is refused');
	await waitFor(() => daemon.log.includes("refused a connection with Origin 'http://evil.invalid'"), 'the Origin refusal logged');
	const ok = await upgrade('127.0.0.1', port, { origin: ALLOWED });
	check(ok.startsWith('HTTP/1.1 101'), `a listed Origin is served: ${ok}`);
	const c = await rawClient(URL, { wsOptions: { origin: 'app://desktop' } });
	const init = await c.init();
	check(init.op === 'init-ok' && Array.isArray(init.attrs) && init['session-id'], `init-ok: ${JSON.stringify(init)}`);
	await c.close();
	let refused = false;
	try { await rawClient(URL, { wsOptions: { origin: 'https://other.invalid' } }); } catch { refused = true; }
	check(refused, 'the ws client cannot open with an unlisted Origin');
	const other = await upgrade('127.0.0.1', port, { path: '/elsewhere' });
	check(!other.includes(' 101'), `another path is refused: ${other}`);
}, { daemons: [daemon] });

await scenario('a loopback peer running as another uid is refused', async () => {
	if (process.getuid() !== 0) {
		console.log('# not root: cannot connect as another uid; skipped');
		return;
	}
	const p = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', `
		const s = require('net').connect(Number(process.argv[1]), '127.0.0.1');
		let got = '';
		s.on('connect', () => s.write('GET /runtime/session HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nUpgrade: websocket\\r\\n' +
			'Connection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n'));
		s.on('data', (d) => { got += d; });
		s.on('close', () => { process.stdout.write(got ? 'answered ' + got.split('\\r\\n')[0] : 'closed'); process.exit(0); });
		s.on('error', (e) => { process.stdout.write('closed ' + e.code); process.exit(0); });
	`, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
	let out = '';
	p.stdout.on('data', (d) => { out += d; });
	await new Promise((res) => p.on('exit', res));
	check(out.startsWith('closed'), `no upgrade for uid 65534: ${out}`);
	await waitFor(() => /refused a connection from uid 65534 on 127\.0\.0\.1:\d+: only uid 0 may use it/.test(daemon.log),
		'the refusal logged with the uid');
}, { daemons: [daemon] });

await scenario('off by default; a non-loopback instant-listen is refused', async () => {
	const dir = tmpdir();
	const conf = (body) => {
		const f = path.join(dir, `c${randomUUID()}.conf`);
		fs.writeFileSync(f, body);
		return f;
	};
	const def = await run(INSTANTD, ['--check-config', '-c', conf('')]);
	check(def.status === 0 && !def.stdout.includes('instant-listen'), `no TCP listener by default: ${def.stdout}`);
	const on = await run(INSTANTD, ['--check-config', '-c', conf('instant-listen = [::1]:8765\n')]);
	check(on.status === 0 && on.stdout.includes('instant-listen = [::1]:8765'), `shown: ${on.stdout}`);
	for (const bad of ['0.0.0.0:8765', '192.168.1.2:8765', 'localhost:8765', '127.0.0.1']) {
		const r = await run(INSTANTD, ['--check-config', '-c', conf(`instant-listen = ${bad}\n`)]);
		check(r.status === 1 && /instant-listen/.test(r.stderr), `${bad} refused: ${r.status} ${r.stderr}`);
	}
	// The daemon without the key listens on the Unix socket only.
	const plain = new Daemon({ server: mock.url });
	await plain.start();
	await waitFor(() => plain.log.includes('serving the Instant protocol on '), 'the Unix listener');
	check(!plain.log.includes('loopback TCP'), 'no TCP listener');
	await plain.stop();
}, { daemons: [daemon] });

for (const p of peers) await p.close();
await daemon.stop();
await mock.stop();
process.exit();
