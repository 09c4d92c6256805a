// End to end: signing in through the daemon (guest, magic code, existing token), upgrading a
// guest without losing the cache or the queue, revoked tokens, sign-out, and secrecy of tokens.
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { startMock, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, check, scenario, waitFor } from './lib.mjs';

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

await daemon.stop();
await mock.stop();
