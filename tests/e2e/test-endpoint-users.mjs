// The Instant endpoint keeps users apart: each real @instantdb/core app reads only what its own
// refresh token fetched. Two apps signed in as different users get a profile each (their offline
// writes never show in the other's results), an app without a token gets the app's shared
// profile, and a token the daemon never saw accepted is refused while the server cannot vouch
// for it, instead of being served a mirror.
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { DEFAULT_APP_ID, rawClient, startMock, spawnPeer } from '../mock/harness.mjs';
import { Client, Daemon, FAST_CONFIG, check, scenario, tmpdir, waitFor } from './lib.mjs';

const mock = await startMock(['--port', '0']);
const daemon = new Daemon({ server: mock.url });
await daemon.start();

const instantSock = (d) => path.join(path.dirname(d.socket), 'instant.sock');
const viaOf = (d) => ({ url: `ws+unix://${instantSock(d)}:/runtime/session`, apiURI: mock.apiURI });
const via = viaOf(daemon);
const peers = [];
async function peerOf(target) {
	const p = await spawnPeer(target);
	peers.push(p);
	return p;
}

// An app through instantd signed in with token (the JS client verifies it over HTTP, then
// reconnects with it: that init is the one the daemon sees).
async function signedIn(token, email, target = via) {
	const p = await peerOf(target);
	p.send({ cmd: 'signin', id: 's', token });
	await p.waitFor((e) => e.ev === 'signin' && e.ok, { what: `${email} signed in` });
	await p.waitFor((e) => e.ev === 'auth' && e.user?.email === email, { what: `${email} is the user` });
	await p.waitFor((e) => e.ev === 'status' && e.status === 'authenticated', { what: `${email} through instantd` });
	return p;
}

// Every profile the daemon has open, over its local socket (no init: the status of all).
async function profiles(d = daemon) {
	const c = await new Client(d.socket).connect();
	try {
		return (await c.request({ op: 'status' })).profiles.filter((p) => p.state !== 'unopened');
	} finally {
		c.close();
	}
}

const Q = { projects: {} };
const names = (e) => (e?.data?.projects ?? []).map((p) => p.name);
const shows = (peer, id, name, from) => peer.waitFor((e) => e.ev === 'query' && e.id === id && names(e).includes(name),
	{ what: `${name} in the results`, from });

await scenario('two users through instantd: neither sees the other\'s writes', async () => {
	const ua = await mock.ctl('add-user', { email: 'a@example.com' });
	const ub = await mock.ctl('add-user', { email: 'b@example.com' });
	const a = await signedIn(ua['refresh-token'], 'a@example.com');
	const b = await signedIn(ub['refresh-token'], 'b@example.com');
	const anon = await peerOf(via);
	for (const p of [a, b, anon]) p.send({ cmd: 'subscribe', id: 'q', q: Q });
	for (const p of [a, b, anon]) await p.waitFor((e) => e.ev === 'query' && e.id === 'q' && e.data, { what: 'first result' });
	// One profile, one upstream session per token; the app without one has the app's own.
	await waitFor(async () => (await mock.ctl('sessions')).sessions.filter((s) => s.user).length >= 2,
		'a session of each user on the server');
	check((await profiles()).length >= 3, `a profile each: ${JSON.stringify(await profiles())}`);

	// Offline, writes stay in each profile's queue: shared, they would show in every result.
	await mock.ctl('refuse', { ms: -1, drop: true });
	await waitFor(async () => (await profiles()).every((p) => p.state !== 'authenticated'), 'the daemon offline');
	const ma = a.mark(), mb = b.mark(), mn = anon.mark();
	a.send({ cmd: 'transact', id: 'wa', ops: [['projects', randomUUID(), 'update', { name: 'only A' }]] });
	await shows(a, 'q', 'only A', ma);
	b.send({ cmd: 'transact', id: 'wb', ops: [['projects', randomUUID(), 'update', { name: 'only B' }]] });
	await shows(b, 'q', 'only B', mb);
	anon.send({ cmd: 'transact', id: 'wn', ops: [['projects', randomUUID(), 'update', { name: 'only guest' }]] });
	await shows(anon, 'q', 'only guest', mn);
	// Each saw its own write after the others were queued: a shared queue would show them too.
	a.send({ cmd: 'transact', id: 'wa2', ops: [['projects', randomUUID(), 'update', { name: 'A again' }]] });
	await shows(a, 'q', 'A again', ma);
	const seen = (p, m) => p.log.events.slice(m).filter((e) => e.ev === 'query' && e.id === 'q').flatMap(names);
	check(!seen(a, ma).some((n) => n === 'only B' || n === 'only guest'), `A sees only its own: ${seen(a, ma)}`);
	check(!seen(b, mb).some((n) => n === 'only A' || n === 'only guest' || n === 'A again'),
		`B sees only its own: ${seen(b, mb)}`);
	check(!seen(anon, mn).some((n) => n === 'only A' || n === 'only B' || n === 'A again'),
		`the guest sees only its own: ${seen(anon, mn)}`);

	// kill -9 and a restart: each user's queued writes come back in that user's profile.
	await daemon.kill9();
	const ra = a.mark();
	await daemon.start();
	await a.waitFor((e) => e.ev === 'status' && e.status === 'authenticated', { what: 'A reconnected', from: ra, timeout: 30000 });
	const fresh = await peerOf(via);
	fresh.send({ cmd: 'subscribe', id: 'q', q: Q });
	await shows(fresh, 'q', 'only guest', 0);
	check(!seen(fresh, 0).some((n) => n === 'only A' || n === 'only B'), `after the restart: ${seen(fresh, 0)}`);
	await fresh.close();

	// A token the daemon never saw accepted, while the server is away: refused, no mirror served.
	const uc = await mock.ctl('add-user', { email: 'c@example.com' });
	const c = await peerOf(via);
	c.send({ cmd: 'subscribe', id: 'q', q: Q });
	await c.waitFor((e) => e.ev === 'query' && e.id === 'q' && e.data, { what: 'the guest result first' });
	const mc = c.mark();
	c.send({ cmd: 'signin', id: 's', token: uc['refresh-token'] });
	await c.waitFor((e) => e.ev === 'status' && e.status === 'errored', { what: 'the unknown token refused', from: mc });
	check(!seen(c, mc).some((n) => n === 'only A' || n === 'only B' || n === 'A again'),
		`no other user's data for the unverified token: ${seen(c, mc)}`);
	check(!c.log.events.slice(mc).some((e) => e.ev === 'auth' && e.user === null),
		'not signed out (the daemon cannot say the token is bad)');

	// Back online: each user's writes reach the server on that user's session, and the token
	// refused before is accepted now (the JS client reconnects by itself).
	await mock.ctl('refuse', { ms: 0 });
	await c.waitFor((e) => e.ev === 'status' && e.status === 'authenticated', { what: 'the token accepted now', from: mc, timeout: 30000 });
	await c.waitFor((e) => e.ev === 'query' && e.id === 'q' && e.data, { what: 'a result for the new user', from: mc });
	const who = { 'only A': 'a@example.com', 'A again': 'a@example.com', 'only B': 'b@example.com', 'only guest': null };
	const landed = async () => {
		const { frames } = await mock.ctl('frames', { dir: 'in', op: 'transact', limit: 20000 });
		const users = new Map((await mock.ctl('sessions')).sessions.map((x) => [x['session-id'], x.user?.email ?? null]));
		const found = {};
		for (const f of frames) {
			const name = Object.keys(who).find((n) => JSON.stringify(f.msg['tx-steps']).includes(`"${n}"`));
			if (name) found[name] = users.has(f['session-id']) ? users.get(f['session-id']) : '?';
		}
		return Object.keys(who).every((n) => n in found) && found;
	};
	const found = await waitFor(landed, 'the queued writes on the server', 30000);
	for (const [n, email] of Object.entries(who))
		check(found[n] === email || found[n] === '?', `${n} sent on ${email}'s session: ${JSON.stringify(found)}`);
	for (const p of [a, b, anon, c]) await p.close();
}, { daemons: [daemon], timeoutMs: 120000 });

await scenario('a token the server refuses: the server\'s error, and no other app is signed out', async () => {
	const guest = await peerOf(via);
	guest.send({ cmd: 'subscribe', id: 'q', q: Q });
	await guest.waitFor((e) => e.ev === 'query' && e.id === 'q' && e.data, { what: 'a token-less app served' });
	const raw = await rawClient(via.url, { query: false });
	const r = await raw.init({ 'refresh-token': randomUUID() });
	check(r.op === 'error' && r.type === 'record-not-found' && r.hint?.['record-type'] === 'app-user' &&
		r['original-event']?.op === 'init', `the server's refusal: ${JSON.stringify(r)}`);
	await raw.close();
	// The bad token had a profile of its own: the app's profile keeps its session.
	const st = (await profiles()).find((p) => p.profile === p['app-id']);
	check(st && st.state === 'authenticated', `the app's profile still signed in: ${JSON.stringify(st)}`);
	const m = guest.mark();
	guest.send({ cmd: 'transact', id: 'w', ops: [['projects', randomUUID(), 'update', { name: 'still served' }]] });
	await shows(guest, 'q', 'still served', m);
	await guest.close();
}, { daemons: [daemon] });

const d2s = [];
await scenario('a configured profile with a token-file: another user\'s token gets a profile of its own', async () => {
	const ada = await mock.ctl('add-user', { email: 'ada@example.com' });
	const bob = await mock.ctl('add-user', { email: 'bob@example.com' });
	const dir = tmpdir();
	const tf = path.join(dir, 'ada.token');
	fs.writeFileSync(tf, ada['refresh-token'] + '\n', { mode: 0o600 });
	const d2 = new Daemon({ server: mock.url, dir,
		config: FAST_CONFIG + `[profile ada]\napp-id = ${DEFAULT_APP_ID}\ntoken-file = ${tf}\n` });
	await d2.start();
	d2s.push(d2);
	// start() waits for the local socket; the Instant one is made just after it.
	await waitFor(() => fs.existsSync(instantSock(d2)), 'the Instant socket');
	try {
		// Bob's token first, while the configured profile is not open yet (a JS app would
		// init without a token first, and open it).
		const raw = await rawClient(viaOf(d2).url, { query: false });
		const r = await raw.init({ 'refresh-token': bob['refresh-token'] });
		check(r.op === 'init-ok' && r.auth?.user?.email === 'bob@example.com', `Bob's init: ${JSON.stringify(r)}`);
		await raw.close();
		const first = await profiles(d2);
		check(first.find((p) => p.user?.email === 'bob@example.com')?.profile.includes('~') &&
			!first.some((p) => p.profile === 'ada' && p.user?.email === 'bob@example.com'),
			`Bob's token did not take the configured profile: ${JSON.stringify(first)}`);
		const b = await signedIn(bob['refresh-token'], 'bob@example.com', viaOf(d2));
		const a = await signedIn(ada['refresh-token'], 'ada@example.com', viaOf(d2));
		await waitFor(async () => (await profiles(d2)).filter((p) => p.user).length === 2, 'both users signed in');
		const all = await profiles(d2);
		const of = (email) => all.find((p) => p.user?.email === email);
		check(of('ada@example.com')?.profile === 'ada', `Ada's token is the configured profile's: ${JSON.stringify(all)}`);
		check(of('bob@example.com')?.profile.includes('~'), `Bob has a profile of his own: ${JSON.stringify(all)}`);
		await a.close();
		await b.close();
	} finally {
		await d2.stop();
	}
}, { daemons: d2s });

for (const p of peers) await p.close();
await daemon.stop();
await mock.stop();
process.exit();
