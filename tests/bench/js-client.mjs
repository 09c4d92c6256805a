// The @instantdb/core side of the benchmarks: one real client per process, driven by JSON lines on
// stdin, measuring inside its own process and answering with JSON lines on stdout.
// Usage: node js-client.mjs <ws-url> <api-uri> <app-id>
// Times are process.hrtime (CLOCK_MONOTONIC, comparable with the driver's) in ns as strings, or ms.
import readline from 'node:readline';
import { performance } from 'node:perf_hooks';
import { importDep } from '../lib/deps.mjs';

const [wsURL, apiURI, appId] = process.argv.slice(2);
const { WebSocket } = await importDep('ws');
globalThis.window = globalThis;
globalThis.WebSocket = WebSocket;
globalThis.addEventListener ??= () => {};
globalThis.removeEventListener ??= () => {};
const core = await importDep('@instantdb/core');
const Storage = (await importDep('@instantdb/core/dist/esm/InMemoryStorage.js')).default;

// The network listener lets the benchmark take the client offline the way a browser would.
const online = { value: true, cbs: [] };
class Net {
	static async getIsOnline() { return online.value; }
	static listen(cb) { online.cbs.push(cb); return () => {}; }
}
function setOnline(v) {
	online.value = v;
	for (const cb of online.cbs) cb(v);
}

const emit = (ev) => process.stdout.write(JSON.stringify(ev) + '\n');
console.log = (...a) => process.stderr.write(a.map(String).join(' ') + '\n');
console.info = () => {};
console.debug = () => {};
console.warn = () => {};

const db = core.init({ appId, websocketURI: wsURL, apiURI, verbose: false }, Storage, Net);
const reactor = db._reactor;
let status = null;
const statusWaiters = [];
db.subscribeConnectionStatus((s) => {
	status = s;
	for (const w of statusWaiters.slice()) if (w()) statusWaiters.splice(statusWaiters.indexOf(w), 1);
});
const now = () => process.hrtime.bigint();
const authenticated = () => (status === 'authenticated' ? Promise.resolve() :
	new Promise((r) => statusWaiters.push(() => status === 'authenticated' && (r(), true))));

// Count transact-ok confirmations: a transact made offline resolves at once as 'enqueued'.
// Writes the client gave up on (its own timeout, or an error) count as lost.
let synced = 0;
let lost = 0;
const origFinish = reactor._finishTransaction.bind(reactor);
reactor._finishTransaction = (st, id, ...rest) => {
	if (st === 'synced') synced++;
	else if (st === 'timeout' || st === 'error') lost++;
	return origFinish(st, id, ...rest);
};

// id -> {q, unsub, data, hooks: [fn(data)]}
const subs = new Map();

function subscribe(id, q) {
	return new Promise((resolve) => {
		const s = { q, data: null, hooks: [], first: resolve };
		s.unsub = db.subscribeQuery(q, (r) => {
			if (r.error) { emit({ ev: 'error', id, message: r.error.message }); return; }
			if (!r.data) return;
			s.data = r.data;
			if (s.first) { const f = s.first; s.first = null; f(); }
			for (const h of s.hooks.slice()) h(r.data);
		});
		subs.set(id, s);
	});
}

// Resolves with the time a callback of `id` first shows `marker`.
function seen(id, marker) {
	const s = subs.get(id);
	return new Promise((resolve) => {
		const h = (data) => {
			if (JSON.stringify(data).includes(marker)) {
				const t = now();
				s.hooks.splice(s.hooks.indexOf(h), 1);
				resolve(t);
			}
		};
		s.hooks.push(h);
	});
}

function hashOf(q) {
	const want = JSON.stringify(q);
	for (const [h, v] of Object.entries(reactor.querySubs.currentValue))
		if (v && JSON.stringify(v.q) === want) return h;
	return null;
}

async function run(c) {
	switch (c.cmd) {
	case 'subscribe': {
		const t0 = now();
		await Promise.all(c.qs.map(([id, q]) => subscribe(id, q)));
		emit({ ev: 'subscribed', ms: Number(now() - t0) / 1e6 });
		break;
	}
	case 'unsubscribe':
		// All subscriptions, or those named in c.ids.
		for (const [id, s] of subs) {
			if (c.ids && !c.ids.includes(id)) continue;
			s.unsub();
			subs.delete(id);
		}
		emit({ ev: 'unsubscribed' });
		break;
	case 'eval': {
		// What the client does for a result: instaql over its store with the pending writes applied.
		const h = hashOf(subs.get(c.id).q);
		const times = [];
		let size = 0;
		for (let i = 0; i < c.n; i++) {
			delete reactor._dataForQueryCache[h];
			const t0 = performance.now();
			const r = reactor.dataForQuery(h);
			times.push(performance.now() - t0);
			if (i === 0) size = JSON.stringify(r.data).length;
		}
		emit({ ev: 'eval', times, size });
		break;
	}
	case 'expect': {
		emit({ ev: 'expecting', marker: c.marker });
		const t = await seen(c.id, c.marker);
		emit({ ev: 'seen', marker: c.marker, t: String(t) });
		break;
	}
	case 'optimistic': {
		// db.transact until the writer's own subscription shows the write.
		const times = [];
		for (let i = 0; i < c.n; i++) {
			const marker = `opt-js-${i}-${Math.random()}`;
			const p = seen(c.id, marker);
			const t0 = now();
			const tx = db.transact(db.tx[c.etype][c.eid].update({ [c.attr]: marker }));
			const t1 = await p;
			times.push(Number(t1 - t0) / 1e6);
			await tx;
		}
		emit({ ev: 'optimistic', times });
		break;
	}
	case 'writes': {
		// Writes acknowledged per second: db.transact resolves when the server confirms it.
		await authenticated();
		let next = 0;
		const t0 = now();
		const worker = async () => {
			while (next < c.n) {
				const k = next++;
				const r = await db.transact(db.tx[c.etype][c.ids[k]].update({ n: k, w: 'js' }));
				if (r.status !== 'synced') throw new Error(`write ${k}: ${r.status}`);
			}
		};
		await Promise.all(Array.from({ length: c.conc }, worker));
		emit({ ev: 'writes', ms: Number(now() - t0) / 1e6 });
		break;
	}
	case 'offline':
		setOnline(false);
		emit({ ev: 'offline', status });
		break;
	case 'queue': {
		// Queue writes while offline (they resolve as 'enqueued').
		const t0 = now();
		const ps = [];
		for (let k = 0; k < c.ids.length; k++)
			ps.push(db.transact(db.tx[c.etype][c.ids[k]].update({ n: k, w: 'js-offline' })));
		const rs = await Promise.all(ps);
		emit({ ev: 'queued', ms: Number(now() - t0) / 1e6, statuses: [...new Set(rs.map((r) => r.status))] });
		break;
	}
	case 'replay': {
		// Back online: time until every queued write has its transact-ok (or was given up).
		const start = synced, startLost = lost;
		const t0 = now();
		setOnline(true);
		// Bounded: with many subscriptions open the client can take very long.
		const limit = Number(c.limitMs || 600000);
		while (synced - start + lost - startLost < c.n && Number(now() - t0) / 1e6 < limit)
			await new Promise((r) => setTimeout(r, 2));
		const done = synced - start + lost - startLost >= c.n;
		emit({ ev: 'replayed', ms: done ? Number(now() - t0) / 1e6 : null, synced: synced - start,
			lost: lost - startLost, unfinished: !done });
		break;
	}
	case 'exit':
		db.shutdown();
		process.exit(0);
		break;
	default:
		emit({ ev: 'error', message: `unknown command ${c.cmd}` });
	}
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
	if (!line.trim()) return;
	run(JSON.parse(line)).catch((e) => emit({ ev: 'error', message: e.stack || e.message }));
});
rl.on('close', () => process.exit(0));
emit({ ev: 'ready', t: String(now()) });
