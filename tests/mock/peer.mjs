// A real @instantdb/core 1.0.67 client as a scriptable test peer, one per process (the client shares
// state between instances of one process). Reads JSON commands on stdin, writes JSON events on stdout.
// Usage: node peer.mjs <ws-url> <api-uri> <app-id>   (commands: see tests/mock/README.md)
import readline from 'node:readline';
import { importDep } from '../lib/deps.mjs';

const [wsURL, apiURI, appId] = process.argv.slice(2);
const { WebSocket } = await importDep('ws');
globalThis.window = globalThis;
globalThis.WebSocket = WebSocket;
globalThis.addEventListener ??= () => {};
globalThis.removeEventListener ??= () => {};
const core = await importDep('@instantdb/core');
const Storage = (await importDep('@instantdb/core/dist/esm/InMemoryStorage.js')).default;

class Online {
	static async getIsOnline() { return true; }
	static listen() { return () => {}; }
}

const emit = (ev) => process.stdout.write(JSON.stringify(ev) + '\n');
// Keep the client quiet on stdout; our events are the only stdout lines.
console.log = (...a) => process.stderr.write(a.map(String).join(' ') + '\n');
console.info = console.log;
console.debug = () => {};

const db = core.init({ appId, websocketURI: wsURL, apiURI, verbose: false }, Storage, Online);
db.subscribeConnectionStatus((status) => emit({ ev: 'status', status }));
db.subscribeAuth((auth) => emit({ ev: 'auth', user: auth.user ?? null, error: auth.error?.message ?? null }));

const subs = new Map();
const rooms = new Map();

function buildTx(ops) {
	return ops.map(([etype, eid, method, arg, arg2]) => {
		const key = Array.isArray(eid) ? core.lookup(eid[0], eid[1]) : eid;
		return db.tx[etype][key][method](arg, arg2);
	});
}

async function run(c) {
	switch (c.cmd) {
	case 'subscribe':
		subs.set(c.id, db.subscribeQuery(c.q, (r) => {
			emit({ ev: 'query', id: c.id, data: r.data ?? null, pageInfo: r.pageInfo ?? null,
				error: r.error ? { message: r.error.message, hint: r.error.hint ?? null } : null });
		}));
		break;
	case 'unsubscribe':
		subs.get(c.id)?.();
		subs.delete(c.id);
		break;
	case 'transact':
		try {
			const r = await db.transact(buildTx(c.ops));
			emit({ ev: 'tx', id: c.id, status: r.status, txId: r.txId ?? null });
		} catch (e) {
			emit({ ev: 'tx', id: c.id, error: { message: e.message, hint: e.hint ?? null } });
		}
		break;
	case 'join': {
		const room = db.joinRoom(c.roomType || 'chat', c.room, { initialPresence: c.presence });
		rooms.set(c.room, room);
		room.subscribePresence({}, (p) => emit({ ev: 'presence', room: c.room, peers: p.peers, user: p.user ?? null, isLoading: p.isLoading }));
		for (const topic of c.topics || []) {
			room.subscribeTopic(topic, (data, peer) => emit({ ev: 'broadcast', room: c.room, topic, data, peer: peer ?? null }));
		}
		break;
	}
	case 'presence':
		rooms.get(c.room).publishPresence(c.data);
		break;
	case 'broadcast':
		rooms.get(c.room).publishTopic(c.topic, c.data);
		break;
	case 'leave':
		rooms.get(c.room)?.leaveRoom();
		rooms.delete(c.room);
		break;
	case 'signin':
		try {
			await db.auth.signInWithToken(c.token);
			emit({ ev: 'signin', id: c.id, ok: true });
		} catch (e) {
			emit({ ev: 'signin', id: c.id, ok: false, error: e.message });
		}
		break;
	case 'send-code':
	case 'verify-code':
	case 'guest':
	case 'signout':
		try {
			let r;
			if (c.cmd === 'send-code') r = await db.auth.sendMagicCode({ email: c.email });
			else if (c.cmd === 'verify-code') r = await db.auth.signInWithMagicCode({ email: c.email, code: c.code });
			else if (c.cmd === 'guest') r = await db.auth.signInAsGuest();
			else r = await db.auth.signOut();
			emit({ ev: c.cmd, id: c.id, ok: true, result: r ?? null });
		} catch (e) {
			emit({ ev: c.cmd, id: c.id, ok: false, error: e.message, status: e.status ?? null });
		}
		break;
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
	let c;
	try { c = JSON.parse(line); } catch { emit({ ev: 'error', message: 'bad command line' }); return; }
	run(c).catch((e) => emit({ ev: 'error', message: e.message }));
});
rl.on('close', () => process.exit(0));
emit({ ev: 'ready' });
