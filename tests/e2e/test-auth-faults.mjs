// Sign-in calls against an API server that misbehaves below HTTP: one that accepts and stays
// silent (plain and TLS), one that answers a byte a second, one that closes in the middle of
// its answer, one that resets. Each program gets a clear error naming the cause within the
// daemon's bound, other requests are answered meanwhile, and the daemon stays up and signs
// in fine afterwards.
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { startMock, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, check, scenario } from './lib.mjs';

const BOUND_MS = 45000;	// the daemon's own bound is 15 s; this only keeps a hang from passing
const mock = await startMock(['--port', '0']);
const daemon = new Daemon({ server: mock.url });
const sockets = new Set();

// A TCP server on loopback that does `onConn(socket)` with every connection.
function server(onConn) {
	const srv = net.createServer((s) => {
		sockets.add(s);
		s.on('error', () => {});
		s.on('close', () => sockets.delete(s));
		onConn(s);
	});
	return new Promise((res) => srv.listen(0, '127.0.0.1', () => res({ srv, port: srv.address().port })));
}

// Reads the request's headers, then acts.
const afterRequest = (act) => (s) => {
	let got = '';
	s.on('data', (d) => {
		if (got.includes('\r\n\r\n'))
			return;
		got += d;
		if (got.includes('\r\n\r\n'))
			act(s);
	});
};

const BODY = '{"user":{"id":"00000000-0000-4000-8000-000000000000","refresh_token":"t"}}';
const ANSWER = `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`;
const servers = {
	silent: await server(() => {}),
	trickle: await server(afterRequest((s) => {
		let i = 0;
		const t = setInterval(() => {
			if (s.destroyed || i >= ANSWER.length) return clearInterval(t);
			s.write(ANSWER[i++]);
		}, 1000);
		s.on('close', () => clearInterval(t));
	})),
	cut: await server(afterRequest((s) => s.end(ANSWER.slice(0, ANSWER.indexOf('\r\n\r\n') + 12)))),
	reset: await server(afterRequest((s) => s.resetAndDestroy())),
};

// A program on its own profile whose api-uri is the given misbehaving server.
async function program(uri, extra = {}) {
	const c = await new Client(daemon.socket).connect();
	await c.init(randomUUID(), { 'api-uri': uri, ...extra });
	return c;
}

function expectError(r, type, pattern, what) {
	check(r.op === 'error' && r.type === type && pattern.test(r.message),
		`${what}: a ${type} error matching ${pattern}: ${JSON.stringify(r)}`);
}

await scenario('auth calls against silent, trickling, cut and resetting API servers', async () => {
	await daemon.start();
	const url = (k, scheme = 'http') => `${scheme}://127.0.0.1:${servers[k].port}`;
	const silent = await program(url('silent'));
	const tls = await program(url('silent', 'https'));
	const trickle = await program(url('trickle'));
	const cut = await program(url('cut'));
	const reset = await program(url('reset'));
	const out = await program(url('silent'), { 'refresh-token': randomUUID() });
	const gone = await program(url('silent'));

	gone.send({ op: 'sign-in', method: 'guest' });
	gone.close();	// leaves while its call hangs: the answer has nowhere to go
	const pending = [
		silent.request({ op: 'send-magic-code', email: 'a@example.com' }, null, BOUND_MS),
		tls.request({ op: 'sign-in', method: 'guest' }, null, BOUND_MS),
		trickle.request({ op: 'sign-in', method: 'guest' }, null, BOUND_MS),
		cut.request({ op: 'sign-in', method: 'magic-code', email: 'a@example.com', code: '123456' }, null, BOUND_MS),
		reset.request({ op: 'sign-in', method: 'token', 'refresh-token': randomUUID() }, null, BOUND_MS),
		out.request({ op: 'sign-out' }, null, BOUND_MS),
	];
	// Calls beyond the daemon's 32 in flight are refused at once instead of piling up threads.
	const flood = await program(url('silent'));
	const floodReplies = Promise.all(Array.from({ length: 40 }, () =>
		flood.request({ op: 'send-magic-code', email: 'b@example.com' }, null, BOUND_MS)));
	// The loop is not held up by calls in flight.
	const who = await silent.request({ op: 'whoami' });
	check(who.op === 'whoami' && silent.messages.length === 2, `whoami answered while the call hangs: ${JSON.stringify(silent.messages)}`);

	const [r1, r2, r3, r4, r5, r6] = await Promise.all(pending);
	expectError(r1, 'timeout', new RegExp(`127\\.0\\.0\\.1:${servers.silent.port}.*no complete answer within \\d+ s`), 'silent server');
	expectError(r2, 'timeout', /no complete answer/, 'silent TLS server');
	expectError(r3, 'timeout', /no complete answer/, 'a byte a second');
	expectError(r4, 'offline', /closed the connection before its answer was complete/, 'cut answer');
	expectError(r5, 'offline', /closed the connection|reset/i, 'reset');
	check(r6.op === 'sign-out-ok' && r6['server-signed-out'] === false, `sign-out is local when the server hangs: ${JSON.stringify(r6)}`);
	const fr = await floodReplies;
	const refused = fr.filter((m) => m.type === 'rate-limited' && /too many sign-in calls/.test(m.message)).length;
	check(refused > 0 && refused + fr.filter((m) => m.type === 'timeout').length === fr.length,
		`beyond 32 in flight: rate-limited, the rest time out: ${JSON.stringify(fr.map((m) => m.type))}`);
	const whoOut = await out.request({ op: 'whoami' });
	check(whoOut['signed-in'] === false, 'signed out locally');

	// Still up, and a server that behaves signs in.
	check(daemon.proc.exitCode === null && daemon.proc.signalCode === null, 'the daemon is alive');
	const c0 = await new Client(daemon.socket).connect();
	await c0.init(DEFAULT_APP_ID);
	const g = await c0.request({ op: 'sign-in', method: 'guest' });
	check(g.op === 'sign-in-ok' && g.user.isGuest === true, `guest sign-in against the mock: ${JSON.stringify(g)}`);
	for (const c of [silent, tls, trickle, cut, reset, out, flood, c0]) c.close();
}, { daemons: [daemon], timeoutMs: 120000 });

for (const s of sockets) s.destroy();
for (const { srv } of Object.values(servers)) srv.close();
const code = await daemon.stop();
if (code !== 0 && !process.exitCode) {
	console.error(`not ok - the daemon exited with ${code} at SIGTERM`);
	process.exitCode = 1;
}
await mock.stop();
