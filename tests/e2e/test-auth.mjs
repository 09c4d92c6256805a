// End to end: signing in through the daemon (guest, magic code, existing token), upgrading a
// guest without losing the cache or the queue, revoked tokens, sign-out, and secrecy of tokens.
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { startMock, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { spawn } from 'node:child_process';
import { Client, Daemon, INSTANTCTL, check, run, scenario, tmpdir, waitFor } from './lib.mjs';

const APP = DEFAULT_APP_ID;
const mock = await startMock(['--port', '0']);
const daemon = new Daemon({ server: mock.url });
await daemon.start();
const secrets = [];

async function state(c) {
	return (await c.request({ op: 'status' })).status;
}

function tokenFiles() {
	return fs.readdirSync(daemon.stateDir).filter((f) => f.endsWith('.token')).map((f) => path.join(daemon.stateDir, f));
}

await scenario('guest sign-in, then a magic code upgrades the guest and keeps cache and queue', async () => {
	const c = await new Client(daemon.socket).connect();
	await c.init(APP);	// the API URI is derived from the server URL
	const who0 = await c.request({ op: 'whoami' });
	check(who0.op === 'whoami' && who0['signed-in'] === false, `nobody yet: ${JSON.stringify(who0)}`);

	const g = await c.request({ op: 'sign-in', method: 'guest' });
	check(g.op === 'sign-in-ok' && g.user.isGuest === true, `guest: ${JSON.stringify(g)}`);
	check(!('refresh_token' in g.user), 'the token is not in the reply');
	const files = tokenFiles();
	check(files.length === 1 && (fs.statSync(files[0]).mode & 0o777) === 0o600, 'the token lives in a 0600 file');
	secrets.push(fs.readFileSync(files[0], 'utf8').trim());
	await waitFor(async () => (await state(c)).user?.id === g.user.id && (await state(c)).state === 'authenticated',
		'the session to come back as the guest');

	const sub = c.send({ op: 'add-query', q: { drafts: {} } });
	await c.next((m) => m['client-event-id'] === sub && m.op === 'add-query-ok', 'subscribed');
	await mock.ctl('refuse', { ms: -1, drop: true });
	await waitFor(async () => (await state(c)).state !== 'authenticated', 'offline');
	const d = randomUUID();
	await c.request({ op: 'transact', ops: [['update', 'drafts', d, { text: 'written as a guest' }]] },
		(m) => m.op === 'transact-queued');
	await mock.ctl('refuse', { ms: 0 });

	const bad = await c.request({ op: 'sign-in', method: 'magic-code', email: 'a@example.com', code: '000000' });
	check(bad.op === 'error', `a code that was never sent is refused: ${JSON.stringify(bad)}`);
	const sent = await c.request({ op: 'send-magic-code', email: 'a@example.com' });
	check(sent.op === 'send-magic-code-ok', `code sent: ${JSON.stringify(sent)}`);
	const { code } = await mock.ctl('magic-code', { email: 'a@example.com' });
	const wrong = await c.request({ op: 'sign-in', method: 'magic-code', email: 'a@example.com',
		code: code === '123456' ? '654321' : '123456' });
	check(wrong.op === 'error' && wrong.type === 'auth-failed', `wrong code: ${JSON.stringify(wrong)}`);
	await c.request({ op: 'send-magic-code', email: 'a@example.com' });
	const { code: code2 } = await mock.ctl('magic-code', { email: 'a@example.com' });
	const up = await c.request({ op: 'sign-in', method: 'magic-code', email: 'a@example.com', code: code2 });
	check(up.op === 'sign-in-ok' && up.user.id === g.user.id && up.user.email === 'a@example.com' && !up.user.isGuest,
		`the guest became a user with the same id: ${JSON.stringify(up)}`);
	secrets.push(fs.readFileSync(tokenFiles()[0], 'utf8').trim());
	await waitFor(async () => (await c.request({ op: 'list-mutations' })).mutations.length === 0, 'the queued write lands');
	const dump = await mock.ctl('dump', {});
	check(dump.triples.some((t) => t[0] === d && t[2] === 'written as a guest'), 'the guest\'s queued write is on the server');
	const who = await c.request({ op: 'whoami' });
	check(who.user && who.user.email === 'a@example.com' && who['signed-in'] === true, `whoami: ${JSON.stringify(who)}`);
	c.close();
	// The token is kept across a restart of the daemon (read back from its 0600 file).
	await daemon.stop();
	await daemon.start();
	const c2 = await new Client(daemon.socket).connect();
	await c2.init(APP);
	await waitFor(async () => (await state(c2)).user?.email === 'a@example.com', 'signed in again after a restart');
	c2.close();
}, { daemons: [daemon] });

await scenario('a revoked token: signed-out, programs told, writes kept; signing in resumes the replay', async () => {
	const c = await new Client(daemon.socket).connect();
	await c.init(APP);
	const sub = c.send({ op: 'add-query', q: { drafts: {} } });
	await c.next((m) => m['client-event-id'] === sub && m.op === 'add-query-ok', 'subscribed');
	await mock.ctl('revoke-token', { 'refresh-token': secrets[secrets.length - 1] });
	await mock.ctl('refuse', { ms: -1, drop: true });
	const d = randomUUID();
	await c.request({ op: 'transact', ops: [['update', 'drafts', d, { text: 'while signed out' }]] },
		(m) => m.op === 'transact-queued');
	const mark = c.messages.length;
	await mock.ctl('refuse', { ms: 0 });
	await c.next((m) => m.op === 'status' && m.status.state === 'signed-out', 'the program is told it is signed out', 30000, mark);
	const list = await c.request({ op: 'list-mutations' });
	check(list.mutations.some((m) => m.state === 'pending'), 'the write stays queued');

	const { 'refresh-token': fresh } = await mock.ctl('add-user', { email: 'b@example.com' });
	secrets.push(fresh);
	const s = await c.request({ op: 'sign-in', method: 'token', 'refresh-token': fresh });
	check(s.op === 'sign-in-ok' && s.user.email === 'b@example.com', `adopted token: ${JSON.stringify(s)}`);
	await waitFor(async () => (await c.request({ op: 'list-mutations' })).mutations.length === 0, 'the replay resumes');
	const bogus = await c.request({ op: 'sign-in', method: 'token', 'refresh-token': randomUUID() });
	check(bogus.op === 'error', `an unknown token is refused: ${JSON.stringify(bogus)}`);
	c.close();
}, { daemons: [daemon] });

await scenario('rate limits, sign-out, and no token in any reply or log line', async () => {
	const c = await new Client(daemon.socket).connect();
	await c.init(APP);
	await mock.ctl('rate-limit', { on: true });
	const rl = await c.request({ op: 'send-magic-code', email: 'x@example.com' });
	check(rl.op === 'error' && rl.type === 'rate-limited', `rate-limited: ${JSON.stringify(rl)}`);
	await mock.ctl('rate-limit', { on: false });
	const out = await c.request({ op: 'sign-out' });
	check(out.op === 'sign-out-ok' && out['server-signed-out'] === true, `sign-out: ${JSON.stringify(out)}`);
	check(tokenFiles().length === 0, 'the token file is gone');
	const who = await c.request({ op: 'whoami' });
	check(who['signed-in'] === false, 'signed out');
	const seen = JSON.stringify(c.messages) + daemon.log;
	for (const t of secrets) check(!seen.includes(t), 'no token appears in replies or logs');
	c.close();
}, { daemons: [daemon] });

await scenario('instantctl login, whoami and logout', async () => {
	const ctl = (args, input = '') => run(INSTANTCTL, ['--socket', daemon.socket, '--app', APP, ...args], { input });
	let r = await ctl(['login', '--guest']);
	check(r.status === 0 && /signed in as a guest/.test(r.stdout), `login --guest: ${r.status} ${r.stdout} ${r.stderr}`);
	r = await ctl(['whoami']);
	check(r.status === 0 && /isGuest: true/.test(r.stdout), `whoami as guest: ${r.stdout} ${r.stderr}`);
	r = await ctl(['login', '--email', 'c@example.com', '--code', '000000']);
	check(r.status === 1, `a wrong code fails with exit 1: ${r.status} ${r.stderr}`);
	// Without --code the code is asked for and typed at the prompt; the guest is upgraded.
	await mock.ctl('magic-code', { email: 'c@example.com' }).catch(() => null);
	const before = (await mock.ctl('magic-code', { email: 'c@example.com' }).catch(() => ({}))).code;
	const child = spawn(INSTANTCTL, ['--socket', daemon.socket, '--app', APP, 'login', '--email', 'c@example.com'],
		{ stdio: ['pipe', 'pipe', 'pipe'] });
	let out = '', err = '';
	child.stdout.on('data', (d) => { out += d; });
	child.stderr.on('data', (d) => { err += d; });
	await waitFor(() => /Code: /.test(err), 'the prompt');
	const { code } = await mock.ctl('magic-code', { email: 'c@example.com' });
	check(code && code !== before, 'a fresh code was sent');
	child.stdin.end(`${code}\n`);
	const status = await new Promise((res) => child.once('exit', res));
	check(status === 0 && /signed in as c@example.com/.test(out), `login --email at the prompt: ${status} ${out} ${err}`);
	r = await ctl(['whoami']);
	check(/email: c@example.com/.test(r.stdout), `whoami: ${r.stdout}`);
	await mock.ctl('rate-limit', { on: true });
	r = await ctl(['login', '--email', 'c@example.com']);
	check(r.status === 1 && /rate-limited|Too many/.test(r.stderr), `rate-limited: ${r.status} ${r.stderr}`);
	await mock.ctl('rate-limit', { on: false });
	const dir = tmpdir();
	const { 'refresh-token': tok } = await mock.ctl('add-user', { email: 'd@example.com' });
	secrets.push(tok);
	fs.writeFileSync(path.join(dir, 'tok'), `${tok}\n`, { mode: 0o644 });
	fs.chmodSync(path.join(dir, 'tok'), 0o644);
	r = await ctl(['login', '--token-file', path.join(dir, 'tok')]);
	check(r.status === 2 && /chmod 600/.test(r.stderr), `a readable token file is refused: ${r.status} ${r.stderr}`);
	fs.chmodSync(path.join(dir, 'tok'), 0o600);
	r = await ctl(['login', '--token-file', path.join(dir, 'tok')]);
	check(r.status === 0 && /d@example.com/.test(r.stdout), `login --token-file: ${r.stdout} ${r.stderr}`);
	await mock.ctl('revoke-token', { 'refresh-token': tok });
	await mock.ctl('drop', {});
	await waitFor(async () => /state: signed-out/.test((await ctl(['whoami'])).stdout), 'whoami shows signed-out after a revoked token');
	r = await ctl(['logout']);
	check(r.status === 0, `logout: ${r.stderr}`);
	r = await ctl(['whoami']);
	check(/signed-in: false/.test(r.stdout), `signed out: ${r.status} ${r.stdout} ${r.stderr}`);
	for (const t of secrets) check(!daemon.log.includes(t), 'no token in the log');
}, { daemons: [daemon] });

await daemon.stop();
await mock.stop();
