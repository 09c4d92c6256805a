// The runtime auth endpoints (protocol.md section 9) over raw HTTP and through the real client:
// magic codes, guests, refresh-token sign-in, sign-out, and init with a revoked token.
import { startMock, spawnPeer, rawClient, postJSON, runTest, DEFAULT_APP_ID } from './harness.mjs';

await runTest('mock auth', async (t) => {
	const mock = await startMock([]);
	t.cleanup(() => mock.stop());
	const post = (p, b) => postJSON(mock.port, p, b);
	const app = DEFAULT_APP_ID;

	const s1 = await post('/runtime/auth/send_magic_code', { 'app-id': app, email: 'Joe@Example.com' });
	t.eq([s1.status, s1.body], [200, { sent: true }], 'send_magic_code');
	const { code } = await mock.ctl('magic-code', { email: 'joe@example.com' });
	t.ok(/^\d{6}$/.test(code), 'control magic-code returns the code');
	const wrong = await post('/runtime/auth/verify_magic_code', { 'app-id': app, email: 'joe@example.com', code: '000000x' });
	t.eq([wrong.status, wrong.body.type], [400, 'record-not-found'], 'wrong code rejected');
	const v = await post('/runtime/auth/verify_magic_code', { 'app-id': app, email: 'joe@example.com', code });
	t.eq(v.status, 200, 'verify_magic_code');
	t.eq([v.body.created, v.body.user.email, v.body.user.type, v.body.user.isGuest], [true, 'joe@example.com', 'user', false], 'created user');
	t.ok(typeof v.body.user.refresh_token === 'string' && typeof v.body.user.created_at === 'string', 'refresh_token and created_at');
	const rt = v.body.user.refresh_token;
	const vr = await post('/runtime/auth/verify_refresh_token', { 'app-id': app, 'refresh-token': rt });
	t.eq([vr.status, vr.body.user.id, vr.body.user.refresh_token], [200, v.body.user.id, rt], 'verify_refresh_token');
	const badrt = await post('/runtime/auth/verify_refresh_token', { 'app-id': app, 'refresh-token': 'nope' });
	t.eq([badrt.status, badrt.body.type, badrt.body.hint['record-type']], [400, 'record-not-found', 'app-user'], 'unknown token over HTTP');
	const noapp = await post('/runtime/auth/sign_in_guest', { 'app-id': '22222222-2222-4222-8222-222222222222' });
	t.eq([noapp.status, noapp.body.message], [400, 'Record not found: app'], 'unknown app over HTTP');
	const g = await post('/runtime/auth/sign_in_guest', { 'app-id': app });
	t.eq([g.status, g.body.user.type, g.body.user.isGuest], [200, 'guest', true], 'guest sign-in');
	const NICK = 'dddddddd-0000-4000-8000-000000000001';
	await mock.ctl('transact', { 'tx-steps': [['add-attr', { id: NICK, 'forward-identity': ['dddddddd-0000-4000-8000-000000000002', '$users', 'nickname'],
		'value-type': 'blob', cardinality: 'one', 'unique?': false, 'index?': false }]] });
	const gx = await post('/runtime/auth/sign_in_guest', { 'app-id': app, 'extra-fields': { nickname: 'nick', nosuch: 1 } });
	t.eq([gx.body.user.nickname, 'nosuch' in gx.body.user], ['nick', false], 'extra-fields set existing $users attrs');
	// Upgrading a guest with a magic code keeps its id.
	await post('/runtime/auth/send_magic_code', { 'app-id': app, email: 'g@example.com' });
	const gc = (await mock.ctl('magic-code', { email: 'g@example.com' })).code;
	const up = await post('/runtime/auth/verify_magic_code', { 'app-id': app, email: 'g@example.com', code: gc, 'refresh-token': g.body.user.refresh_token });
	t.eq([up.body.user.id, up.body.user.type, up.body.created], [g.body.user.id, 'user', false], 'guest upgraded in place');
	const so = await post('/runtime/signout', { app_id: app, refresh_token: rt });
	t.eq([so.status, so.body], [200, {}], 'signout');
	const after = await post('/runtime/auth/verify_refresh_token', { 'app-id': app, 'refresh-token': rt });
	t.eq(after.status, 400, 'token revoked by signout');
	const c = await rawClient(mock.url);
	t.cleanup(() => c.close());
	const ie = await c.init({ 'refresh-token': rt });
	t.eq([ie.op, ie.status, ie.type, ie.message, ie.hint['record-type'], ie.hint.args[0]['refresh-token']],
		['error', 400, 'record-not-found', 'Record not found: app-user', 'app-user', rt], 'init with a revoked token');
	const bad = await post('/runtime/nothing', {});
	t.eq(bad.status, 404, 'unknown path 404');

	// The real client: magic code sign-in, reconnect with the token, auth.user in init-ok.
	const p = await spawnPeer(mock);
	t.cleanup(() => p.close());
	await p.waitFor((e) => e.ev === 'status' && e.status === 'authenticated', { what: 'anonymous session' });
	p.send({ cmd: 'send-code', id: 's', email: 'amy@example.com' });
	await p.waitFor((e) => e.ev === 'send-code' && e.ok, { what: 'code sent' });
	const pc = (await mock.ctl('magic-code', { email: 'amy@example.com' })).code;
	let m = p.mark();
	p.send({ cmd: 'verify-code', id: 'v', email: 'amy@example.com', code: pc });
	await p.waitFor((e) => e.ev === 'verify-code' && e.ok, { what: 'signed in' });
	await p.waitFor((e) => e.ev === 'auth' && e.user?.email === 'amy@example.com', { from: m, what: 'auth user' });
	await p.waitFor((e) => e.ev === 'status' && e.status === 'authenticated', { from: m, what: 're-init with token' });
	const sess = (await mock.ctl('sessions')).sessions.filter((s) => s.user?.email === 'amy@example.com');
	t.eq(sess.length, 1, 'the client re-inited with its refresh token');

	// A token revoked server-side: the client's init fails with app-user and it signs out.
	const u = (await mock.ctl('add-user', { email: 'bob@example.com' }));
	m = p.mark();
	p.send({ cmd: 'signin', id: 'b', token: u['refresh-token'] });
	await p.waitFor((e) => e.ev === 'auth' && e.user?.email === 'bob@example.com', { from: m, what: 'bob signed in' });
	await p.waitFor((e) => e.ev === 'status' && e.status === 'authenticated', { from: m, what: 'bob session' });
	await mock.ctl('revoke-token', { 'refresh-token': u['refresh-token'] });
	m = p.mark();
	await mock.ctl('drop');
	await p.waitFor((e) => e.ev === 'auth' && e.user === null, { from: m, what: 'signed out after app-user error' });
	await p.waitFor((e) => e.ev === 'status' && e.status === 'authenticated', { from: m, what: 'anonymous again' });
	m = p.mark();
	p.send({ cmd: 'guest', id: 'g' });
	const guest = await p.waitFor((e) => e.ev === 'auth' && e.user?.isGuest === true, { from: m, what: 'guest user' });
	t.ok(typeof guest.user.id === 'string' && guest.user.id !== u.user.id, 'signInAsGuest through the mock gives a new guest user');
});
