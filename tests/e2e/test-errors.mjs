// End to end, instantctl's errors name the cause and the fix: an unknown app, a
// refused token, a TLS failure, a message too large or too deep, no daemon, and a
// timeout waiting for the server told apart from one waiting for the daemon.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { startMock, makeTestCA, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, INSTANTCTL, check, run, scenario, tmpdir, waitFor } from './lib.mjs';

const APP = DEFAULT_APP_ID;
const UNKNOWN_APP = '99999999-9999-4999-8999-999999999999';
const TOKEN_APP = '22222222-2222-4222-8222-222222222222';
const mock = await startMock(['--port', '0', '--app', APP, TOKEN_APP]);
const ca = makeTestCA(tmpdir('instantd-ca-'));
const tlsMock = await startMock(['--port', '0', '--tls-cert', ca.cert, '--tls-key', ca.key]);
const daemon = new Daemon({ server: mock.url });
await daemon.start();
const ctl = (args, env) => run(INSTANTCTL, ['--socket', daemon.socket, ...args], { env: { ...process.env, ...env } });

// Waits until the profile of (app, server, token) reaches state.
async function reach(app, extra, state) {
	const c = await new Client(daemon.socket).connect();
	await c.init(app, extra);
	const states = [].concat(state);
	await waitFor(async () => states.includes((await c.request({ op: 'status' })).status.state), `state ${states}`);
	c.close();
}
function says(r, re, what) {
	check(re.test(r.stderr), `${what}: wanted ${re}, got exit ${r.status}:\n${r.stderr}`);
	check(!/lost the connection|Broken pipe/.test(r.stderr), `${what}: no broken pipe talk: ${r.stderr}`);
}

await scenario('an unknown app is named as such, not "offline"', async () => {
	await reach(UNKNOWN_APP, {}, 'app-not-found');
	const r = await ctl(['--app', UNKNOWN_APP, 'query', '--policy', 'network-only', '{"goals":{}}']);
	check(r.status === 1, `exit ${r.status}`);
	says(r, /^instantctl: app-not-found: /m, 'unknown app');
	says(r, new RegExp(`does not know app ${UNKNOWN_APP}`), 'unknown app cause');
	says(r, /^fix: check the app id/m, 'unknown app fix');
}, { daemons: [daemon] });

await scenario('a watch that waits for an unknown app says why', async () => {
	const p = spawn(INSTANTCTL, ['--socket', daemon.socket, '--app', UNKNOWN_APP, 'watch', '{"never":{}}'], { stdio: ['ignore', 'ignore', 'pipe'] });
	let err = '';
	p.stderr.on('data', (d) => { err += d; });
	try {
		await waitFor(() => /^instantctl: waiting for the first result \(not cached\): app-not-found: .* does not know app /m.test(err),
			`the reason on stderr (got: ${err})`);
		check(/^fix: check the app id/m.test(err), `fix: ${err}`);
	} finally {
		p.kill();
	}
}, { daemons: [daemon] });

await scenario('a refused token is named as such, with the sign-in command', async () => {
	await reach(TOKEN_APP, { 'refresh-token': 'not-a-token-the-server-knows' }, ['auth-failed', 'signed-out']);
	const r = await ctl(['--app', TOKEN_APP, '--token-env', 'TOK', 'query', '--policy', 'network-only', '{"goals":{}}'],
		{ TOK: 'not-a-token-the-server-knows' });
	check(r.status === 1, `exit ${r.status}`);
	says(r, /^instantctl: auth-failed: /m, 'refused token');
	says(r, /refused this profile's refresh token/, 'refused token cause');
	says(r, /^fix: sign in again: instantctl --app APP_ID login/m, 'refused token fix');
}, { daemons: [daemon] });

await scenario('a TLS failure names the certificate error in words', async () => {
	await reach(APP, { server: tlsMock.url }, 'backoff');
	const r = await ctl(['--app', APP, '--server', tlsMock.url, 'query', '--policy', 'network-only', '{"goals":{}}']);
	check(r.status === 1, `exit ${r.status}`);
	says(r, /^instantctl: tls-failed: /m, 'TLS');
	says(r, /TLS certificate of 127\.0\.0\.1 not trusted: (self-signed|unable to get local issuer)/, 'TLS cause in words');
	says(r, /^fix: .*ca-file = /m, 'TLS fix');
	check(!/SSL err/.test(r.stderr), `no lws jargon: ${r.stderr}`);
}, { daemons: [daemon] });

await scenario('too large and too deep are named, with the limit to raise', async () => {
	const big = JSON.stringify([['update', 'goals', '8f3a2b1c-4d5e-4f60-9a7b-1c2d3e4f5a6b', { t: 'x'.repeat(17 << 20) }]]);
	let r = await run(INSTANTCTL, ['--socket', daemon.socket, '--app', APP, 'transact', '-'], { input: big });
	check(r.status === 1, `too-large exit ${r.status}`);
	says(r, /^instantctl: too-large: /m, 'too large');
	says(r, /^fix: .*max-message-bytes/m, 'too large fix');
	let q = {};
	for (let i = 0; i < 80; i++) q = { a: q };
	r = await ctl(['--app', APP, 'query', JSON.stringify(q)]);
	check(r.status === 1, `too-deep exit ${r.status}`);
	says(r, /^instantctl: too-deep: /m, 'too deep');
	says(r, /^fix: .*max-json-depth/m, 'too deep fix');
}, { daemons: [daemon] });

await scenario('no daemon: says it is not running and how to start it', async () => {
	const r = await run(INSTANTCTL, ['--socket', path.join(tmpdir(), 'socket'), '--app', APP, 'status']);
	check(r.status === 3, `exit ${r.status}`);
	says(r, /^instantctl: instantd is not running: nothing listens on /m, 'no daemon');
	says(r, /^fix: systemctl --user enable --now instantd\.socket/m, 'no daemon fix');
});

await scenario('a timeout waiting for the server is told apart from one waiting for the daemon', async () => {
	await reach(APP, {}, 'authenticated');
	await mock.ctl('delay', { ms: 4000, ops: ['add-query-ok'] });
	let r = await ctl(['--app', APP, '--timeout', '500', 'query', '--policy', 'network-only', '{"slow":{}}']);
	await mock.ctl('delay', { ms: 0 });
	check(r.status === 4, `server timeout exit ${r.status}: ${r.stderr}`);
	says(r, /^instantctl: timeout: no answer from the server within 500 ms \(the daemon is up/m, 'server timeout');

	const mute = path.join(tmpdir(), 'mute');
	const srv = net.createServer(() => {}).listen(mute);
	await new Promise((res) => srv.once('listening', res));
	r = await run(INSTANTCTL, ['--socket', mute, '--app', APP, '--timeout', '300', 'status']);
	srv.close();
	check(r.status === 4, `daemon timeout exit ${r.status}`);
	says(r, /^instantctl: timeout: the daemon did not answer within 300 ms/m, 'daemon timeout');
	says(r, /^fix: see its log \(journalctl --user -u instantd\)/m, 'daemon timeout fix');
}, { daemons: [daemon] });

await daemon.stop();
await mock.stop();
await tlsMock.stop();
