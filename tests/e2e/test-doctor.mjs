// End to end, `instantctl doctor`: each check fails on its own fault and says how to
// fix it: the configuration (syntax and file mode), a directory's mode, no daemon, no
// unit, and per profile DNS (a name under .invalid), TCP (a closed port), TLS (an
// untrusted certificate), a refused token, no token, an unknown app; exit 0 once all pass.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startMock, makeTestCA } from '../mock/harness.mjs';
import { Daemon, INSTANTCTL, check, run, scenario, tmpdir } from './lib.mjs';

const GOOD = '11111111-1111-4111-8111-111111111111';
const TOKEN_APP = '22222222-2222-4222-8222-222222222222';
const GUEST_APP = '33333333-3333-4333-8333-333333333333';
const UNKNOWN = '99999999-9999-4999-8999-999999999999';
const mock = await startMock(['--port', '0', '--app', GOOD, TOKEN_APP, GUEST_APP]);
const ca = makeTestCA(tmpdir('instantd-ca-'));
const tlsMock = await startMock(['--port', '0', '--tls-cert', ca.cert, '--tls-key', ca.key]);
const closedPort = await new Promise((res) => {
	const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
});
const { 'refresh-token': goodToken } = await mock.ctl('add-user', { 'app-id': GOOD, email: 'ada@example.com' });

const dir = tmpdir('instantd-doctor-');
const stateDir = path.join(dir, 'state');
const secret = (name, text) => { const p = path.join(dir, name); fs.writeFileSync(p, text + '\n', { mode: 0o600 }); return p; };
const config = `${'backoff-base-ms = 50\nbackoff-cap-ms = 500\n'}state-dir = ${stateDir}   # where the databases live

[profile good]
app-id = ${GOOD}
server = ${mock.url}
token-file = ${secret('good.token', goodToken)}

[profile badtoken]
app-id = ${TOKEN_APP}
server = ${mock.url}
token-file = ${secret('bad.token', 'a-token-nobody-issued')}

[profile notoken]
app-id = ${GUEST_APP}
server = ${mock.url}

[profile unknownapp]
app-id = ${UNKNOWN}
server = ${mock.url}

[profile dns]
app-id = ${GOOD}
server = ws://instantd-doctor.invalid/runtime/session

[profile tcp]
app-id = ${GOOD}
server = ws://127.0.0.1:${closedPort}/runtime/session

[profile tls]
app-id = ${GOOD}
server = ${tlsMock.url}
`;
const daemon = new Daemon({ dir, config });	// no --server: the profiles name theirs
const confPath = path.join(dir, 'config', 'instantd', 'instantd.conf');
const env = {
	...process.env, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_RUNTIME_DIR: path.join(dir, 'run'),
	XDG_STATE_HOME: path.join(dir, 'state-home'), INSTANTD: path.join(path.dirname(INSTANTCTL), '..', 'daemon', 'instantd'),
};
delete env.INSTANTD_SOCKET;
const doctor = (...args) => run(INSTANTCTL, ['doctor', ...args], { env });

// The block of one profile in doctor's output.
function section(out, name) {
	const m = out.match(new RegExp(`^profile ${name} \\(.*\\n((?:(?:ok|FAIL|skip) {1,4}  .*\\n|      fix: .*\\n)*)`, 'm'));
	return m ? m[1] : '';
}
function has(text, re, what) {
	check(re.test(text), `${what}: wanted ${re} in:\n${text}`);
}
const systemUnit = ['/etc/systemd/user', '/usr/lib/systemd/user', '/usr/local/lib/systemd/user']
	.some((d) => fs.existsSync(path.join(d, 'instantd.socket')));

await scenario('before the daemon: the config mode, the state directory, no daemon, no unit', async () => {
	fs.chmodSync(confPath, 0o666);
	fs.mkdirSync(stateDir, { mode: 0o755 });
	fs.chmodSync(stateDir, 0o755);
	const r = await doctor();
	check(r.status === 1, `exit ${r.status}`);
	has(r.stdout, /^FAIL  configuration: .* is writable by group or others .*\n      fix: chmod go-w '.*instantd\.conf'$/m, 'config mode');
	has(r.stdout, /^FAIL  state directory: .* has mode 0755: others can look into it\n      fix: chmod 700 '.*state'$/m, 'state dir');
	has(r.stdout, /^FAIL  daemon: instantd is not running: nothing listens on .*\n      fix: systemctl --user enable --now instantd\.socket$/m, 'no daemon');
	if (!systemUnit)
		has(r.stdout, /^FAIL  systemd unit: instantd\.socket is not installed .*\n      fix: make install/m, 'no unit');
	has(section(r.stdout, 'good'), /^skip {4}init, token, app: not checked: the daemon is not reachable$/m, 'skipped without a daemon');
	check(r.stdout.indexOf('configuration:') < r.stdout.indexOf('state directory:') &&
		r.stdout.indexOf('state directory:') < r.stdout.indexOf('daemon:') &&
		r.stdout.indexOf('daemon:') < r.stdout.indexOf('systemd unit:') &&
		r.stdout.indexOf('systemd unit:') < r.stdout.indexOf('profile good'), `in order:\n${r.stdout}`);
});

await scenario('with the daemon: each profile fails on its own fault', async () => {
	fs.chmodSync(confPath, 0o600);
	fs.chmodSync(stateDir, 0o700);
	fs.mkdirSync(path.join(dir, 'config', 'systemd', 'user'), { recursive: true });
	fs.copyFileSync(path.join(process.env.top_srcdir || '../..', 'contrib', 'instantd.socket'),
		path.join(dir, 'config', 'systemd', 'user', 'instantd.socket'));
	await daemon.start();
	const r = await doctor();
	check(r.status === 1, `exit ${r.status}:\n${r.stdout}`);
	has(r.stdout, /^ok    configuration: .*instantd\.conf \(7 profiles\)$/m, 'config ok');
	has(r.stdout, /^ok    daemon: answers on /m, 'daemon ok');
	has(r.stdout, /^ok    systemd unit: /m, 'unit ok');
	const good = section(r.stdout, 'good');
	has(good, /^ok {6}DNS: 127\.0\.0\.1 resolves$/m, 'good DNS');
	has(good, /^ok {6}init: accepted by the server$/m, 'good init');
	has(good, /^ok {6}token: accepted, signed in as ada@example\.com$/m, 'good token');
	has(good, /^ok {6}app: 11111111-1111-4111-8111-111111111111 is known/m, 'good app');
	check(!/FAIL|skip/.test(good), `good passes:\n${good}`);
	has(section(r.stdout, 'badtoken'), /^FAIL {4}token: the server refused the profile's refresh token from .*bad\.token\n      fix: instantctl --profile badtoken login/m, 'refused token');
	has(section(r.stdout, 'notoken'), /^FAIL {4}token: no refresh token: the profile is not signed in\n      fix: instantctl --profile notoken login/m, 'no token');
	has(section(r.stdout, 'unknownapp'), /^FAIL {4}app: the server does not know app 99999999-9999-4999-8999-999999999999\n      fix: check app-id = /m, 'unknown app');
	has(section(r.stdout, 'dns'), /^FAIL {4}DNS: instantd-doctor\.invalid does not resolve: .*\n      fix: check the host in server = /m, 'DNS');
	has(section(r.stdout, 'tcp'), new RegExp(`^FAIL {4}TCP: cannot connect to 127\\.0\\.0\\.1 port ${closedPort}: Connection refused\\n      fix: is the server running`, 'm'), 'TCP');
	const tls = section(r.stdout, 'tls');
	has(tls, /^FAIL {4}TLS: the certificate of 127\.0\.0\.1 is not trusted: (self-signed certificate in certificate chain|unable to get local issuer certificate)\n      fix: .*ca-file = /m, 'TLS in words');
	check(!/SSL err/.test(r.stdout), 'no lws jargon');
}, { daemons: [daemon] });

await scenario('all checks pass: exit 0', async () => {
	const r = await doctor('good');
	check(r.status === 0, `exit ${r.status}:\n${r.stdout}${r.stderr}`);
	has(r.stdout, /^all checks passed$/m, 'all passed');
	check(!/^profile badtoken/m.test(r.stdout), 'only the profile asked for');
}, { daemons: [daemon] });

await scenario('a configuration error is reported with file and line, and the line to edit', async () => {
	const other = tmpdir('instantd-doctor-conf-');
	fs.mkdirSync(path.join(other, 'instantd'));
	fs.writeFileSync(path.join(other, 'instantd', 'instantd.conf'), 'log-level = info\nfrobnicate = yes\n');
	const r = await run(INSTANTCTL, ['doctor'], { env: { ...env, XDG_CONFIG_HOME: other } });
	check(r.status === 1, `exit ${r.status}`);
	has(r.stdout, /^FAIL  configuration: .*instantd\.conf:2: unknown key 'frobnicate'\n      fix: edit .*instantd\.conf line 2/m, 'unknown key');
});

await daemon.stop();
await mock.stop();
await tlsMock.stop();
