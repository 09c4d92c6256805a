// TLS: the mock serves wss:// and https:// with a certificate from a CA made at test time; the raw
// protocol and the real client (trusting that CA) work over it. Also drives ctl.mjs as a CLI.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { startMock, spawnPeer, rawClient, runTest, makeTestCA, NODE } from './harness.mjs';

await runTest('mock tls', async (t) => {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mock-tls-'));
	t.cleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
	const pki = makeTestCA(dir);
	const mock = await startMock(['--tls-cert', pki.cert, '--tls-key', pki.key]);
	t.cleanup(() => mock.stop());
	t.ok(mock.url.startsWith('wss://127.0.0.1:'), 'wss url printed');
	const ca = fs.readFileSync(pki.ca);

	const untrusted = await rawClient(mock.url).then(() => false, (e) => /certificate/i.test(e.message));
	t.ok(untrusted, 'a client without the test CA rejects the certificate');
	const c = await rawClient(mock.url, { wsOptions: { ca } });
	t.cleanup(() => c.close());
	t.eq((await c.init()).op, 'init-ok', 'init over wss with the test CA');

	const body = await new Promise((resolve, reject) => {
		const req = https.request({ host: '127.0.0.1', port: mock.port, method: 'POST', path: '/runtime/auth/sign_in_guest', ca,
			headers: { 'content-type': 'application/json' } }, (res) => {
			let d = '';
			res.on('data', (x) => { d += x; });
			res.on('end', () => resolve(JSON.parse(d)));
		});
		req.on('error', reject);
		req.end(JSON.stringify({ 'app-id': '11111111-1111-4111-8111-111111111111' }));
	});
	t.eq(body.user?.type, 'guest', 'auth endpoint over https');

	const p = await spawnPeer(mock, { env: { NODE_EXTRA_CA_CERTS: pki.ca } });
	t.cleanup(() => p.close());
	await p.waitFor((e) => e.ev === 'status' && e.status === 'authenticated', { what: 'real client over wss' });
	p.send({ cmd: 'subscribe', id: 'q', q: { notes: {} } });
	p.send({ cmd: 'transact', id: 'w', ops: [['notes', '0b6f3a52-1c0e-4d8e-9a0b-5d2f3e4a5b6c', 'update', { text: 'tls' }]] });
	await p.waitFor((e) => e.ev === 'tx' && e.status === 'synced', { what: 'write over wss' });
	await p.waitFor((e) => e.ev === 'query' && e.data?.notes?.[0]?.text === 'tls', { what: 'result over wss' });

	// ctl.mjs prints the JSON reply and exits 0/1.
	const ctl = path.join(path.dirname(new URL(import.meta.url).pathname), 'ctl.mjs');
	const out = JSON.parse(execFileSync(NODE, [ctl, String(mock.controlPort), 'dump']).toString());
	t.ok(out.ok && out.triples.some((x) => x[2] === 'tls'), 'ctl.mjs dump');
	let code = 0;
	try { execFileSync(NODE, [ctl, String(mock.controlPort), 'no-such-action', '{}'], { stdio: 'pipe' }); } catch (e) { code = e.status; }
	t.eq(code, 1, 'ctl.mjs exits 1 on an unknown action');
	const st = JSON.parse(execFileSync(NODE, [ctl, String(mock.controlPort), 'reject-transacts', '{"count":2}']).toString());
	t.eq(st.rules, 1, 'ctl.mjs passes a JSON body');
});
