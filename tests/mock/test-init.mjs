// init over the raw protocol: init-ok fields and the real errors (missing, malformed and unknown
// app id, unknown refresh token, ops before init, init twice).
import { startMock, rawClient, runTest, DEFAULT_APP_ID } from './harness.mjs';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

await runTest('mock init', async (t) => {
	const mock = await startMock(['--app', DEFAULT_APP_ID, '22222222-2222-4222-8222-222222222222']);
	t.cleanup(() => mock.stop());
	const st = await mock.ctl('status');
	t.eq(st.apps.map((a) => a['app-id']), [DEFAULT_APP_ID, '22222222-2222-4222-8222-222222222222'], '--app takes several ids');
	const fresh = async () => {
		const c = await rawClient(mock.url);
		t.cleanup(() => c.close());
		return c;
	};

	let c = await fresh();
	const before = await c.request({ op: 'add-query', q: {} });
	t.eq([before.op, before.status, before.type, before.message], ['error', 400, 'validation-failed',
		'Validation failed for init: `init` has not run for this session.'], 'op before init');
	t.eq(before.hint.input, { 'sess-id': before['original-event']['session-id'] }, 'hint.input names the session');

	const missing = await c.request({ op: 'init' });
	t.eq([missing.type, missing.message, missing.hint], ['param-missing', 'Missing parameter: ["app-id"]', { in: ['app-id'] }], 'missing app id');
	t.eq(missing['original-event'].op, 'init', 'original-event.op is init');
	const malformed = await c.request({ op: 'init', 'app-id': 'not-a-uuid' });
	t.eq(malformed.type, 'param-malformed', 'malformed app id');
	const unknown = await c.request({ op: 'init', 'app-id': '33333333-3333-4333-8333-333333333333' });
	t.eq([unknown.status, unknown.type, unknown.message, unknown.hint['record-type']], [400, 'record-not-found', 'Record not found: app', 'app'], 'unknown app');
	const badTok = await c.request({ op: 'init', 'app-id': DEFAULT_APP_ID, 'refresh-token': '44444444-4444-4444-8444-444444444444' });
	t.eq([badTok.type, badTok.message, badTok.hint['record-type']], ['record-not-found', 'Record not found: app-user', 'app-user'], 'unknown refresh token');
	t.eq(badTok.hint.args, [{ 'app-id': DEFAULT_APP_ID, 'refresh-token': '44444444-4444-4444-8444-444444444444' }], 'hint.args');

	const ok = await c.init();
	t.eq(ok.op, 'init-ok', 'init after failed inits on the same socket');
	t.ok(UUID.test(ok['session-id']), 'session-id is a UUID');
	t.eq(ok['app-status'], { status: 'active' }, 'app-status');
	t.eq([ok.auth.app.id, ok.auth.user, ok.auth['admin?']], [DEFAULT_APP_ID, null, null], 'auth for an anonymous session');
	t.ok(ok.attrs.some((a) => a.id === '96653230-13ff-ffff-a4b4-46010bffffff' && a.catalog === 'system'), 'system $users.email attr in attrs');
	t.ok(typeof ok['trace-id'] === 'string', 'trace-id');
	const twice = await c.request({ op: 'init', 'app-id': DEFAULT_APP_ID });
	t.eq(twice.message, 'Validation failed for init: `init` has already run for this session.', 'init twice');

	const c2 = await fresh();
	const ok2 = await c2.init();
	t.ok(ok2['session-id'] !== ok['session-id'], 'a new session-id per socket');
	const other = await (await fresh()).request({ op: 'init', 'app-id': '22222222-2222-4222-8222-222222222222' });
	t.eq(other.op, 'init-ok', 'second app');
	t.ok(c.log.events.every((m) => 'trace-id' in m), 'every server message carries trace-id');

	// The app id in the URL is ignored; init decides.
	const c3 = await rawClient(mock.url, { appId: '55555555-5555-4555-8555-555555555555' });
	t.cleanup(() => c3.close());
	t.eq((await c3.init({ 'app-id': DEFAULT_APP_ID })).op, 'init-ok', 'URL app_id ignored');
	const notFound = await rawClient(mock.url.replace('/runtime/session', '/other'), { query: false }).then(() => 0, (e) => e.message);
	t.ok(/404/.test(notFound), 'other paths get 404');
});
