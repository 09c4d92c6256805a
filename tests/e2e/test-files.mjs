// End to end: instantd trusts only directories and files of the user's own (issue 17, point 4):
// directories others can write or own are refused, planted databases and token links are
// skipped, nothing is created through a dangling link, the socket's directory keeps its mode,
// and clients refuse a socket served by another user. Cases that need a second uid run only as
// root (they use setpriv from util-linux and uid 65534); otherwise they are skipped, saying so.
import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { startMock, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, INSTANTCTL, INSTANTD, check, run, scenario, tmpdir, waitFor } from './lib.mjs';

const APP = DEFAULT_APP_ID;
const ROOT = process.getuid() === 0;
const NOBODY = 65534;
const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
const topsrc = process.env.top_srcdir || path.resolve('..');
const mock = await startMock(['--port', '0']);
// Every daemon made here, so that a failed check leaves none running.
const daemons = [];
const track = (d) => { daemons.push(d); return d; };

// Starts the daemon expecting it to refuse: its exit status (stderr read to the end), or null
// when it started after all (it is stopped again).
async function refusal(daemon) {
	try {
		await daemon.start();
	} catch {
		if (!daemon.proc.stderr.closed) await once(daemon.proc.stderr, 'close');
		return daemon.proc.exitCode;
	}
	await daemon.stop();
	return null;
}

const chownR = (p, uid) => {
	fs.chownSync(p, uid, uid);
	if (fs.lstatSync(p).isDirectory()) for (const f of fs.readdirSync(p)) chownR(path.join(p, f), uid);
};
// A daemon of uid 65534 with its home, runtime and configuration directories in a fresh temporary
// directory of its own; it runs a copy of instantd there (the build tree may be out of its reach).
function nobodyDaemon() {
	const home = tmpdir();
	const binary = path.join(home, 'instantd');
	fs.copyFileSync(INSTANTD, binary);
	fs.chmodSync(binary, 0o755);
	return { home, daemon: track(new Daemon({ server: mock.url, dir: home, wrapper: AS_NOBODY, binary, env: { HOME: home } })) };
}
const exists = (p) => { try { fs.lstatSync(p); return true; } catch { return false; } };
const mode = (p) => fs.statSync(p).mode & 0o7777;

// Init frames the mock has received after seq (whole messages).
async function initsAfter(seq) {
	return (await mock.ctl('frames', { dir: 'in', op: 'init', after: seq })).frames;
}

// A state directory holding a database with a queued write that names the mock as its server,
// as a planted one would: the daemon that made it is stopped, its token file removed.
async function queuedDatabase() {
	const d = track(new Daemon({ server: mock.url }));
	await mock.ctl('refuse', { ms: -1, drop: true });
	await d.start();
	const c = await new Client(d.socket).connect();
	await c.init(APP);
	await c.request({ op: 'transact', ops: [['update', 'notes', '0b5e1e39-8a1a-4d55-9e0e-7f5c8f2d0a11', { t: 'queued' }]] },
		(m) => m.op === 'transact-queued');
	c.close();
	check(await d.stop() === 0, 'the planting daemon stops');
	await mock.ctl('refuse', { ms: 0 });
	for (const f of fs.readdirSync(d.stateDir)) if (f.endsWith('.token')) fs.rmSync(path.join(d.stateDir, f));
	const db = fs.readdirSync(d.stateDir).find((f) => f.endsWith('.sqlite'));
	check(db, 'a database was made');
	return { dir: d.dir, stateDir: d.stateDir, db: path.join(d.stateDir, db) };
}

await scenario('a state, runtime or configuration directory that others can write is refused', async () => {
	const cases = [
		['state directory', (d) => d.stateDir],
		['runtime directory', (d) => path.dirname(d.socket)],
		['configuration directory', (d) => path.join(d.dir, 'config', 'instantd')],
	];
	for (const [what, dirOf] of cases) {
		const d = track(new Daemon({ server: mock.url }));
		fs.mkdirSync(dirOf(d), { recursive: true });
		fs.chmodSync(dirOf(d), 0o777);
		const code = await refusal(d);
		check(code === 1, `a ${what} of mode 0777: exit ${code}`);
		check(d.log.includes(`the ${what} ${dirOf(d)} has mode 0777`) && d.log.includes(`chmod 0700 ${dirOf(d)}`),
			`the error names the ${what} and the fix: ${d.log}`);
		check(mode(dirOf(d)) === 0o777, `the ${what} keeps its mode`);
	}
	// On SIGHUP too: the running configuration is kept.
	const d = track(new Daemon({ server: mock.url }));
	await d.start();
	const conf = path.join(d.dir, 'config', 'instantd');
	fs.chmodSync(conf, 0o777);
	d.proc.kill('SIGHUP');
	await waitFor(() => d.log.includes(`reload failed, keeping the old configuration: the configuration directory ${conf} has mode 0777`),
		'the reload to be refused');
	const c = await new Client(d.socket).connect();
	await c.init(APP);
	c.close();
	check(await d.stop() === 0, 'still serving, then a clean stop');
	if (!ROOT) {
		console.log('# not root: directories of another uid are not tested');
		return;
	}
	for (const [what, dirOf] of cases) {
		const d = track(new Daemon({ server: mock.url }));
		fs.mkdirSync(dirOf(d), { recursive: true, mode: 0o700 });
		fs.chownSync(dirOf(d), NOBODY, NOBODY);
		const code = await refusal(d);
		check(code === 1 && d.log.includes(`the ${what} ${dirOf(d)} is owned by uid ${NOBODY}`) &&
			d.log.includes('chown 0'), `a ${what} of uid ${NOBODY} is refused: ${code} ${d.log}`);
	}
});

await scenario('--socket in a directory instantd did not make leaves that directory\'s mode alone', async () => {
	const d = track(new Daemon({ server: mock.url }));
	const home = path.join(d.dir, 'home');
	fs.mkdirSync(home);
	fs.chmodSync(home, 0o751);
	d.socket = path.join(home, 'x.sock');
	await d.start();
	check(mode(home) === 0o751, `$HOME keeps mode 0751, not ${mode(home).toString(8)}`);
	check(mode(d.socket) === 0o600, 'the socket itself is 0600');
	const c = await new Client(d.socket).connect();
	await c.init(APP);
	c.close();
	check(await d.stop() === 0, 'clean stop');
});

await scenario('a dangling link is never created through: the database path, the token file, the socket', async () => {
	const d = track(new Daemon({ server: mock.url }));
	await d.start();
	let c = await new Client(d.socket).connect();
	await c.init(APP);
	c.close();
	await d.stop();
	const db = fs.readdirSync(d.stateDir).find((f) => f.endsWith('.sqlite'));
	const elsewhere = path.join(d.dir, 'elsewhere');
	fs.mkdirSync(elsewhere);
	for (const f of fs.readdirSync(d.stateDir)) fs.rmSync(path.join(d.stateDir, f));
	fs.symlinkSync(path.join(elsewhere, 'planted.sqlite'), path.join(d.stateDir, db));
	await d.start();
	c = await new Client(d.socket).connect();
	const r = await c.request({ op: 'init', 'app-id': APP });
	check(r.op === 'error', `init over a linked database fails: ${JSON.stringify(r)}`);
	check(!exists(path.join(elsewhere, 'planted.sqlite')), 'nothing was created where the link points');
	check(d.log.includes(`${path.join(d.stateDir, db)} is a symbolic link`), 'the log says why');
	c.close();
	await d.stop();

	// A dangling link where the token goes: signing in does not write through it.
	fs.rmSync(path.join(d.stateDir, db));
	await d.start();
	c = await new Client(d.socket).connect();
	await c.init(APP);
	fs.symlinkSync(path.join(elsewhere, 'stolen.token'), path.join(d.stateDir, `${db}.token`));
	const g = await c.request({ op: 'sign-in', method: 'guest' });
	check(g.op === 'sign-in-ok', `guest sign-in: ${JSON.stringify(g)}`);
	check(!exists(path.join(elsewhere, 'stolen.token')), 'no token was written through the link');
	check(d.log.includes('is a symbolic link: refusing to replace it'), 'the log says why');
	c.close();
	await d.stop();

	// The socket path a dangling link: refused, nothing made where it points.
	const s = track(new Daemon({ server: mock.url }));
	fs.mkdirSync(path.dirname(s.socket), { recursive: true, mode: 0o700 });
	fs.symlinkSync(path.join(elsewhere, 'planted.sock'), s.socket);
	const code = await refusal(s);
	check(code === 1 && s.log.includes(`cannot listen on ${s.socket}`), `a linked socket path is refused: ${code} ${s.log}`);
	check(!exists(path.join(elsewhere, 'planted.sock')), 'no socket was made where the link points');
});

await scenario('databases of another user and token links are skipped at start-up, and logged', async () => {
	const { 'refresh-token': tok } = await mock.ctl('add-user', { email: 'skip@example.com' });
	const src = await queuedDatabase();
	const d = track(new Daemon({ server: mock.url }));
	fs.mkdirSync(d.stateDir, { mode: 0o700 });
	fs.writeFileSync(path.join(d.dir, 'token'), tok, { mode: 0o600 });
	// Ours, but its token file is a link (to a token of ours, as a planted link would be).
	const mine = path.join(d.stateDir, 'mine.sqlite');
	fs.copyFileSync(src.db, mine);
	fs.symlinkSync(path.join(d.dir, 'token'), `${mine}.token`);
	// Not ours (only as root: a file of uid 65534).
	const theirs = path.join(d.stateDir, 'theirs.sqlite');
	if (ROOT) {
		fs.copyFileSync(src.db, theirs);
		fs.chmodSync(theirs, 0o666);
		fs.chownSync(theirs, NOBODY, NOBODY);
	} else {
		console.log('# not root: a database of another uid is not tested');
	}
	const seq = (await mock.ctl('frames', { dir: 'in', limit: 1 })).seq;
	await d.start();
	await waitFor(() => d.log.includes('listening on'), 'start-up to finish');
	check(d.log.includes(`${mine}.token: token file is a symbolic link`), `the linked token is refused: ${d.log}`);
	if (ROOT)
		check(d.log.includes(`skipping a database: ${theirs} is owned by uid ${NOBODY}`), `their database is skipped: ${d.log}`);
	check(!d.log.includes('queued writes to replay'), 'neither database is opened');
	check(await d.stop() === 0, 'clean stop');
	check(!JSON.stringify(await initsAfter(seq)).includes(tok), 'the token was not sent');
});

await scenario('a planted state directory with a token link: the victim\'s daemon refuses it, no token leaves', async () => {
	if (!ROOT) {
		console.log('# not root: needs a second uid (the victim runs as 65534), skipped');
		return;
	}
	// The attacker (root here) plants a database naming its server and a link to the victim's token.
	const { 'refresh-token': tok } = await mock.ctl('add-user', { email: 'victim@example.com' });
	const planted = await queuedDatabase();
	fs.chmodSync(planted.dir, 0o755);
	fs.chmodSync(planted.stateDir, 0o777);
	for (const f of fs.readdirSync(planted.stateDir)) fs.chmodSync(path.join(planted.stateDir, f), 0o666);
	// The victim, uid 65534, with its own token and its own runtime and configuration directories.
	const { home, daemon: victim } = nobodyDaemon();
	victim.stateDir = planted.stateDir;
	fs.writeFileSync(path.join(home, 'token'), tok, { mode: 0o600 });
	fs.symlinkSync(path.join(home, 'token'), `${planted.db}.token`);
	chownR(home, NOBODY);
	const seq = (await mock.ctl('frames', { dir: 'in', limit: 1 })).seq;
	const code = await refusal(victim);
	check(code === 1, `the daemon refuses to start: exit ${code}\n${victim.log}`);
	check(victim.log.includes(`the state directory ${planted.stateDir} is owned by uid 0`) &&
		victim.log.includes(`chown ${NOBODY}`), `the error names the directory and the fix: ${victim.log}`);
	check(!JSON.stringify(await initsAfter(seq)).includes(tok), 'the planted server got no token');
});

await scenario('clients refuse a socket served by another user', async () => {
	if (!ROOT) {
		console.log('# not root: needs a second uid to serve the socket, skipped');
		return;
	}
	// A real daemon of uid 65534: the socket is its own, in its own directory.
	const { home, daemon: theirs } = nobodyDaemon();
	chownR(home, NOBODY);
	await theirs.start();
	const sock = theirs.socket;
	try {
		const r = await run(INSTANTCTL, ['--socket', sock, '--app', APP, '--timeout', '5000', 'status']);
		check(r.status === 3 && /refusing .*served by another user/.test(r.stderr),
			`instantctl refuses it: ${r.status} ${r.stderr}`);
		const py = await run('python3', ['-c', `
import sys; sys.path.insert(0, sys.argv[1]); import instantd
try:
    instantd.connect(sys.argv[2])
except instantd.DaemonUnreachable as e:
    print(e); sys.exit(0)
sys.exit(1)`, path.join(topsrc, 'contrib', 'python'), sock]);
		check(py.status === 0 && /refusing .* served by uid 65534/.test(py.stdout),
			`the Python module refuses it: ${py.status} ${py.stdout} ${py.stderr}`);
	} finally {
		await theirs.stop();
	}
});

for (const d of daemons) await d.kill9();
await mock.stop();
