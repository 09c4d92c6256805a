// End to end, operating the daemon as a person: instantctl status (in words, --watch, replay
// progress), profiles, forget, cache export/clear, mutations in words, and the Python client's
// profile init, sign-in and rooms helpers against the real daemon.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { startMock, DEFAULT_APP_ID } from '../mock/harness.mjs';
import { Client, Daemon, FAST_CONFIG, INSTANTCTL, check, run, scenario, waitFor } from './lib.mjs';

const APP = DEFAULT_APP_ID;
const OTHER = '22222222-2222-4222-8222-222222222222';
const topsrc = process.env.top_srcdir || path.resolve('..');
const mock = await startMock(['--port', '0']);
const daemon = new Daemon({ server: mock.url, config: FAST_CONFIG +
	`\n[profile notes]\napp-id = ${APP}\n\n[profile work]\napp-id = ${OTHER}\n` });
await daemon.start();
const ctl = (...args) => run(INSTANTCTL, ['--socket', daemon.socket, ...args], { env: { ...process.env, INSTANT_APP_ID: '' } });
const Q = { goals: {} };

await scenario('status reads as words: configured profiles not in use too, since when, queue', async () => {
	let st = await ctl('status');
	check(st.status === 0, `status: ${st.status} ${st.stderr}`);
	check(/^notes\n {2}state: +not in use/m.test(st.stdout) && /^work\n {2}state: +not in use/m.test(st.stdout),
		`both configured profiles, not in use: ${st.stdout}`);
	const a = await new Client(daemon.socket).connect();
	await a.request({ op: 'init', profile: 'notes' });
	const sub = a.send({ op: 'add-query', q: Q });
	await a.next((m) => m['client-event-id'] === sub && m.op === 'add-query-ok', 'the first result');
	st = await waitFor(async () => {
		const r = await ctl('status');
		return /state: +online for \d+ s \(since \d\d:\d\d:\d\d\)/.test(r.stdout) && r;
	}, 'notes online in status');
	check(/server: +ws:\/\/127\.0\.0\.1/.test(st.stdout), `server shown: ${st.stdout}`);
	check(/queue: +0 pending, 0 sent, 0 failed/.test(st.stdout), `queue shown: ${st.stdout}`);
	check(/user: +not signed in/.test(st.stdout), `user shown: ${st.stdout}`);
	const js = await ctl('--json', 'status');
	const msg = JSON.parse(js.stdout);
	const notes = msg.profiles.find((p) => p.profile === 'notes');
	check(notes.state === 'authenticated' && typeof notes['state-since'] === 'number', `json: ${js.stdout}`);
	check(msg.profiles.find((p) => p.profile === 'work').state === 'unopened', 'work unopened in json');
	a.close();
}, { daemons: [daemon] });

await scenario('status --watch follows changes; a replay shows progress and logs when it finishes', async () => {
	const a = await new Client(daemon.socket).connect();
	await a.request({ op: 'init', profile: 'notes' });
	// A watcher bound to no profile follows every profile.
	const watcher = (args) => {
		const p = spawn(INSTANTCTL, ['--socket', daemon.socket, 'status', '--watch', ...args],
			{ env: { ...process.env, INSTANT_APP_ID: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
		const w = { out: '', exited: new Promise((r) => p.once('exit', r)), proc: p };
		p.stdout.on('data', (d) => { w.out += d; });
		return w;
	};
	const one = watcher(['--count', '1']);
	const all = watcher([]);
	await waitFor(() => /^notes$/m.test(one.out) && /^notes$/m.test(all.out), 'the watchers\' first answers');
	await mock.ctl('refuse', { ms: -1, drop: true });
	check(await one.exited === 0, `--count 1 exits after one change: ${one.out}`);
	check((one.out.match(/^\[\d\d:\d\d:\d\d\] notes: /mg) || []).length === 1, `one change line: ${one.out}`);
	await waitFor(() => /^\[\d\d:\d\d:\d\d\] notes: offline[^;]*; 0 pending, 0 failed$/m.test(all.out), 'the change to offline in words');
	all.proc.kill('SIGTERM');
	check(await all.exited === 0, 'interrupting --watch exits 0');

	const N = 3;
	for (let k = 0; k < N; k++) {
		const r = await a.request({ op: 'transact', ops: [['update', 'goals', randomUUID(), { title: `r${k}` }]] },
			(m) => m.op === 'transact-queued' || m.op === 'error');
		check(r.op === 'transact-queued', `queued: ${JSON.stringify(r)}`);
	}
	const st = await ctl('status');
	check(/queue: +3 pending, 0 sent, 0 failed/.test(st.stdout), `3 pending offline: ${st.stdout}`);
	await mock.ctl('delay', { ms: 2000, ops: ['transact-ok'] });
	await mock.ctl('refuse', { ms: 0 });
	await waitFor(async () => /replay: +replaying [0-2] of 3/.test((await ctl('status')).stdout), 'replay progress in status');
	await waitFor(() => /notes: replay finished: 3 writes in \d+\.\d s/.test(daemon.log), 'the log line when the replay finished');
	await mock.ctl('delay', { ms: 0 });
	a.close();
}, { daemons: [daemon] });

let failedId;
await scenario('mutations in words: age, state, what it does, the server\'s message', async () => {
	const a = await new Client(daemon.socket).connect();
	await a.request({ op: 'init', profile: 'notes' });
	await mock.ctl('reject-transacts', { count: 1 });
	const g = randomUUID();
	const w = a.send({ op: 'transact', ops: [['update', 'goals', g, { title: 'nope', done: false }]] });
	const err = await a.next((m) => m['client-event-id'] === w && m.op === 'error', 'the rejection');
	failedId = err['mutation-id'];
	const r = await ctl('--profile', 'notes', 'mutations');
	check(r.status === 0, `mutations: ${r.status} ${r.stderr}`);
	const line = r.stdout.split('\n').find((l) => l.startsWith(failedId));
	check(line && /\d+ s ago +failed +update goals [0-9a-f-]{36}: title, done {2}-- rejected: Permission denied: not perms-pass\?$/.test(line) &&
		line.includes(g), `one line in words: ${r.stdout}`);
	check(!line.includes('{'), `no raw JSON: ${line}`);
	// Raw tx-steps name attrs by id: the line names them as etype.label.
	const exp = await a.request({ op: 'export-cache', profile: 'notes' });
	const title = exp.attrs.find((x) => x['forward-identity'][1] === 'goals' && x['forward-identity'][2] === 'title');
	check(title, `the goals.title attr: ${JSON.stringify(exp.attrs.map((x) => x['forward-identity']))}`);
	await mock.ctl('reject-transacts', { count: 1, message: 'Validation failed for steps' });
	const e2 = randomUUID();
	const w2 = a.send({ op: 'transact', 'tx-steps': [['add-triple', e2, title.id, 'raw'], ['add-triple', e2, title.id, 'again']] });
	await a.next((m) => m['client-event-id'] === w2 && m.op === 'error', 'the second rejection');
	const r2 = await ctl('--profile', 'notes', 'mutations');
	check(new RegExp(`failed +add-triple ${e2}: goals\\.title, goals\\.title {2}-- rejected: Validation failed for steps \\(permission-denied\\)`).test(r2.stdout),
		`tx-steps in words: ${r2.stdout}`);
	const mid2 = r2.stdout.split('\n').find((l) => l.includes(e2)).split(' ')[0];
	check((await ctl('--profile', 'notes', 'mutations', 'discard', mid2)).status === 0, 'discard the second');
	const j = await ctl('--profile', 'notes', '--json', 'mutations');
	const raw = JSON.parse(j.stdout);
	check(raw.mutations.some((m) => m['mutation-id'] === failedId && m.error.type === 'permission-denied'),
		`--json keeps the raw form: ${j.stdout}`);
	a.close();
}, { daemons: [daemon] });

await scenario('profiles lists each profile; cache export and clear keep the outbox', async () => {
	const p = await ctl('profiles');
	check(p.status === 0, `profiles: ${p.status} ${p.stderr}`);
	check(/^PROFILE +IN USE +DATABASE +QUERIES +QUEUE +LAST SYNC$/m.test(p.stdout), `header: ${p.stdout}`);
	check(/^notes +yes +\d+\.\d (KiB|MiB) +1 +0 pending, 1 failed +\d+ s ago$/m.test(p.stdout), `notes row: ${p.stdout}`);
	check(/^work +no +no data +0 +- +never$/m.test(p.stdout), `work row: ${p.stdout}`);
	// The replayed goals reach the mirror through a subscription.
	const a = await new Client(daemon.socket).connect();
	await a.request({ op: 'init', profile: 'notes' });
	const sub = a.send({ op: 'add-query', q: Q });
	await a.next((m) => m['client-event-id'] === sub && m.data?.goals?.length >= 3 && m['from-cache'] === false, 'the goals');
	a.close();
	const e = await ctl('cache', 'export', 'notes');
	check(e.status === 0, `export: ${e.stderr}`);
	const data = JSON.parse(e.stdout);
	check(Array.isArray(data.attrs) && data.attrs.some((x) => x['forward-identity']?.[1] === 'goals'), 'attrs exported');
	check(data.queries.length === 1 && JSON.stringify(data.queries[0].q) === JSON.stringify(Q) &&
		Array.isArray(data.queries[0].triples) && data.queries[0].triples.length > 0, `queries exported: ${e.stdout.slice(0, 500)}`);
	const c = await ctl('cache', 'clear', 'notes');
	check(c.status === 0 && /Cleared the cache of notes: 1 query result removed; queued writes are kept/.test(c.stdout), `clear: ${c.stdout} ${c.stderr}`);
	const after = JSON.parse((await ctl('cache', 'export', 'notes')).stdout);
	check(after.queries.length === 0 && after.attrs.length > 0, 'the mirror is empty, attrs kept');
	const m = await ctl('--profile', 'notes', '--json', 'mutations');
	check(JSON.parse(m.stdout).mutations.some((x) => x['mutation-id'] === failedId), 'the outbox is kept');
	const bad = await ctl('cache', 'export', 'nosuch');
	check(bad.status === 1 && /no profile named nosuch/.test(bad.stderr), `unknown profile: ${bad.stderr}`);
}, { daemons: [daemon] });

await scenario('forget refuses while writes are queued, then removes the data and closes its programs', async () => {
	const a = await new Client(daemon.socket).connect();
	await a.request({ op: 'init', profile: 'notes' });
	const dbs = () => fs.readdirSync(daemon.stateDir).filter((f) => f.startsWith(APP));
	check(dbs().length > 0, 'notes has a database');
	let r = await ctl('forget', 'notes');
	check(r.status === 1 && /notes has 1 write the server has not taken/.test(r.stderr) &&
		/instantctl --profile notes mutations/.test(r.stderr) && /instantctl forget --discard-queued notes/.test(r.stderr), `refused: ${r.stderr}`);
	check(dbs().length > 0 && !a.closed, 'nothing removed, the program still connected');
	r = await ctl('forget', '--discard-queued', 'notes');
	check(r.status === 0 && /Forgot notes: its database and token are removed, 1 queued write dropped\./.test(r.stdout) &&
		/still in the configuration/.test(r.stdout), `forgot: ${r.stdout} ${r.stderr}`);
	await waitFor(() => a.closed, 'the program using the profile is disconnected');
	check(dbs().length === 0, `the files are gone: ${dbs()}`);
	const p = await ctl('profiles');
	check(/^notes +no +no data/m.test(p.stdout), `notes has no data now: ${p.stdout}`);
	// It can be used again from scratch.
	const b = await new Client(daemon.socket).connect();
	const ok = await b.request({ op: 'init', profile: 'notes' });
	check(ok.op === 'init-ok' && ok.status.queue.failed === 0, `fresh profile: ${JSON.stringify(ok)}`);
	b.close();
}, { daemons: [daemon] });

await scenario('the Python client: init by profile name, guest sign-in, rooms helpers, result flags', async () => {
	const py = await run('python3', ['-B', '-c', `
import sys
sys.path.insert(0, sys.argv[1])
import instantd
with instantd.connect(sys.argv[2]) as c:
    ok = c.init(profile="notes", client_name="py-operate")
    assert ok["status"]["profile"] == "notes", ok
    user = c.sign_in_guest()
    assert user["user"]["id"], user
    assert c.whoami()["signed-in"] is True
    with c.subscribe({"goals": {}}) as sub:
        r = sub.next()
    assert instantd.from_cache(r) is False and instantd.has_pending_writes(r) is False, r
    assert instantd.partial(r) is False and r["partial"] is False, r
    with instantd.connect(sys.argv[2]) as d:
        d.init(profile="notes")
        room = d.join_room("py-room", presence={"name": "d"})
        c.join_room("py-room", presence={"name": "c"})
        c.broadcast("py-room", "wave", {"n": 1})
        got = room.next_broadcast(timeout=10)
        assert got["topic"] == "wave" and got["data"]["data"] == {"n": 1}, got
        c.set_presence("py-room", {"name": "c2"})
        c.leave_room("py-room")
    c.sign_out()
print("python ok")
`, path.join(topsrc, 'contrib', 'python'), daemon.socket], { timeout: 60000 });
	check(py.status === 0 && py.stdout.includes('python ok'), `python: ${py.stdout} ${py.stderr}`);
}, { daemons: [daemon] });

await scenario('the daemon exits cleanly after all that', async () => {
	const code = await daemon.stop();
	check(code === 0, `instantd exited with ${code}`);
}, { daemons: [daemon] });
await mock.stop();
