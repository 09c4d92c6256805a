// Mock Instant sync server for tests: the /runtime/session WebSocket protocol of docs/protocol.md,
// the runtime auth endpoints, and a loopback HTTP control interface for fault injection.
// Usage and the control API: tests/mock/README.md.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { importDep } from '../lib/deps.mjs';
import { AppData, MockError, validationError, transact, canon, isUuid, newId, USERS } from './store.mjs';
import { evalQuery, queryDeps, queryFillAttrs } from './query.mjs';

const { WebSocketServer } = await importDep('ws');
const here = path.dirname(fileURLToPath(import.meta.url));

export const DEFAULT_APP_ID = '11111111-1111-4111-8111-111111111111';
const YIKES = 'Yikes, something broke on our end! Sorry about that.';
const HOSTILE_MODES = ['processed-lag', 'combine-transacts', 'array-frames', 'duplicate-replies', 'late-replies', 'unknown-op', 'malformed',
	'wrong-types', 'huge-result', 'endless-refresh', 'refresh-before-ok'];
const DIRECT_REPLIES = new Set(['init-ok', 'add-query-ok', 'add-query-exists', 'remove-query-ok', 'transact-ok',
	'join-room-ok', 'leave-room-ok', 'set-presence-ok', 'client-broadcast-ok', 'error']);

const FRAME_LOG_MAX = 20000;
const traceId = () => crypto.randomBytes(8).toString('hex');
const isn = (n) => `0/${(0x1a2b000 + n * 16).toString(16).toUpperCase()}`;
const isObj = (x) => x !== null && typeof x === 'object' && !Array.isArray(x);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A parsed core version strictly greater than `min` ("v1.0.67" style, server/src/instant/util/semver.clj).
function versionAbove(versions, min) {
	const v = isObj(versions) ? versions['@instantdb/core'] : null;
	const m = typeof v === 'string' && /^v?(\d+)\.(\d+)\.(\d+)(-dev)?$/.exec(v);
	if (!m) return false;
	const a = [+m[1], +m[2], +m[3]];
	const b = min.split('.').map(Number);
	for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] > b[i];
	return false;
}

// Loads a data set: "zeneca", "movies", or a JSON file {attrs: [..]|{id: attr}, triples: [...]}.
export function loadDataSet(name) {
	let dir = null;
	let j;
	if (name === 'zeneca' || name === 'movies') {
		dir = path.join(here, '..', 'data', name);
		j = { attrs: JSON.parse(fs.readFileSync(path.join(dir, 'attrs.json'), 'utf8')),
			triples: JSON.parse(fs.readFileSync(path.join(dir, 'triples.json'), 'utf8')) };
	} else {
		j = JSON.parse(fs.readFileSync(name, 'utf8'));
	}
	const attrs = Array.isArray(j.attrs) ? j.attrs : Object.values(j.attrs || {});
	// movies has no created-at column; give deterministic ones.
	const triples = (j.triples || []).map((t, i) => (t.length >= 4 ? t : [t[0], t[1], t[2], 1700000000000 + i]));
	return { attrs, triples };
}

// Edits (editscript-like, protocol.md section 8.4) turning object `a` into `b`, with paths under `base`.
function diffEdits(a, b, base) {
	if (canon(a) === canon(b)) return [];
	if (!isObj(a) || !isObj(b)) return [[base, 'r', b]];
	const edits = [];
	let kept = 0;
	for (const k of Object.keys(a)) {
		if (!(k in b)) edits.push([[...base, k], '-']);
		else if (canon(a[k]) === canon(b[k])) kept++;
		else if (isObj(a[k]) && isObj(b[k])) { kept++; edits.push(...diffEdits(a[k], b[k], [...base, k])); }
		else edits.push([[...base, k], 'r', b[k]]);
	}
	for (const k of Object.keys(b)) if (!(k in a)) edits.push([[...base, k], '+', b[k]]);
	// Replacing the whole object is what editscript picks when nothing survives.
	if (kept === 0 && Object.keys(b).length) return [[base, 'r', b]];
	return edits;
}

export class MockServer {
	constructor(opts = {}) {
		this.opts = {
			port: 0, controlPort: 0, host: '127.0.0.1', pingIntervalMs: 5000, idleTimeoutMs: 15000,
			apps: [], seed: null, state: null, tlsCert: null, tlsKey: null, deflate: true, ...opts,
		};
		this.sessions = new Set();
		this.hung = new Set(); // upgrade requests left unanswered by refuse mode "hang"
		this.frames = []; // recent frames, see the `frames` control
		this.frameSeq = 0;
		this.resetFaults();
		this.txCounts = new Map();
		this.stats = { received: Object.create(null), unparseable: 0, binary: 0, connections: 0, refused: 0,
			recomputes: Object.create(null) };	// recomputes: per canonical query, over all sessions
		this.loadState();
	}

	// Runs transacts held by combine-transacts now (when the mode is switched off).
	flushHeld() {
		for (const s of this.sessions) {
			if (!s.heldTx) continue;
			const { msg, timer } = s.heldTx;
			clearTimeout(timer);
			s.heldTx = null;
			this.execTransactSafe(s, msg, []);
		}
	}

	resetFaults() {
		if (this.sessions) this.flushHeld();
		this.faults = { refuseUntil: 0, refuseMode: 'http503', delayMs: 0, delayOps: null, reject: [], dropAfterCommit: 0,
			rateLimited: false, dropBeforeReply: 0 };
		this.hostile = new Map();
		if (this.endlessTimer) { clearInterval(this.endlessTimer); this.endlessTimer = null; }
	}

	// ---------------------------------------------------------------- state
	newApp(id, { title = 'mock app', status = 'active', adminToken = null } = {}) {
		const app = { id, title, status, adminTokens: new Set(adminToken ? [adminToken] : []), refreshTokens: new Map(),
			magicCodes: new Map(), data: new AppData(), attrsVersion: 1, rooms: new Map(), createdAt: new Date(1700000000000).toISOString() };
		this.apps.set(id, app);
		return app;
	}

	loadState() {
		this.apps = new Map();
		this.txId = 1000;
		const f = this.opts.state;
		if (f && fs.existsSync(f) && fs.statSync(f).size > 0) {
			const j = JSON.parse(fs.readFileSync(f, 'utf8'));
			this.txId = j.txId;
			this.txCounts = new Map(Object.entries(j.txCounts || {}));
			for (const a of j.apps) {
				const app = this.newApp(a.id, { title: a.title, status: a.status });
				for (const t of a.adminTokens || []) app.adminTokens.add(t);
				app.refreshTokens = new Map(Object.entries(a.refreshTokens || {}));
				app.data = AppData.fromJSON(a.data);
			}
			return;
		}
		const ids = this.opts.apps.length ? this.opts.apps : [DEFAULT_APP_ID];
		const seed = this.opts.seed ? loadDataSet(this.opts.seed) : null;
		for (const id of ids) {
			const app = this.newApp(id);
			if (seed) app.data.load(seed.attrs, seed.triples);
		}
		this.saveState();
	}

	saveState() {
		const f = this.opts.state;
		if (!f) return;
		const j = { version: 1, txId: this.txId, txCounts: Object.fromEntries(this.txCounts), apps: [...this.apps.values()].map((a) => ({
			id: a.id, title: a.title, status: a.status, adminTokens: [...a.adminTokens],
			refreshTokens: Object.fromEntries(a.refreshTokens), data: a.data.toJSON() })) };
		fs.writeFileSync(f + '.tmp', JSON.stringify(j));
		fs.renameSync(f + '.tmp', f);
	}

	// ---------------------------------------------------------------- listening
	async start() {
		const o = this.opts;
		const handler = (req, res) => this.handleHttp(req, res);
		this.server = o.tlsCert
			? https.createServer({ cert: fs.readFileSync(o.tlsCert), key: fs.readFileSync(o.tlsKey) }, handler)
			: http.createServer(handler);
		this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: o.deflate, maxPayload: 0 });
		this.server.on('upgrade', (req, sock, head) => this.handleUpgrade(req, sock, head));
		this.server.on('clientError', (err, sock) => sock.destroy());
		await new Promise((res, rej) => { this.server.once('error', rej); this.server.listen(o.port, o.host, res); });
		this.port = this.server.address().port;
		this.control = http.createServer((req, res) => this.handleControl(req, res));
		await new Promise((res, rej) => { this.control.once('error', rej); this.control.listen(o.controlPort, '127.0.0.1', res); });
		this.controlPort = this.control.address().port;
		this.pingTimer = setInterval(() => this.pingTick(), o.pingIntervalMs);
		return { port: this.port, controlPort: this.controlPort,
			url: `${o.tlsCert ? 'wss' : 'ws'}://127.0.0.1:${this.port}/runtime/session` };
	}

	async stop() {
		clearInterval(this.pingTimer);
		if (this.endlessTimer) clearInterval(this.endlessTimer);
		for (const s of this.sessions) s.ws.terminate();
		for (const h of this.hung) h.destroy();
		this.saveState();
		const closing = Promise.all([new Promise((r) => this.server.close(r)), new Promise((r) => this.control.close(r))]);
		this.server.closeAllConnections?.();
		this.control.closeAllConnections?.();
		await closing;
	}

	pingTick() {
		const now = Date.now();
		for (const s of this.sessions) {
			if (now - s.lastRecv > this.opts.idleTimeoutMs) { s.ws.terminate(); continue; }
			try { s.ws.ping(); } catch { /* closing */ }
		}
	}

	handleUpgrade(req, sock, head) {
		// A peer may reset the socket while we answer (a killed daemon): never crash on it.
		sock.on('error', () => {});
		const url = new URL(req.url, 'http://x');
		if (url.pathname !== '/runtime/session') {
			sock.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
			return;
		}
		if (this.faults.refuseUntil && (this.faults.refuseUntil < 0 || Date.now() < this.faults.refuseUntil)) {
			this.stats.refused++;
			const how = this.faults.refuseMode;
			if (how === 'reset') sock.destroy();
			else if (how === 'hang') { sock.on('error', () => {}); this.hung.add(sock); sock.on('close', () => this.hung.delete(sock)); }
			else sock.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
			return;
		}
		this.wss.handleUpgrade(req, sock, head, (ws) => this.onConnection(ws, url));
	}

	onConnection(ws, url) {
		this.stats.connections++;
		const sess = { id: newId(), ws, app: null, user: null, admin: false, inited: false, features: {},
			subs: new Map(), rooms: new Set(), lastRecv: Date.now(), chain: Promise.resolve(),
			urlAppId: url.searchParams.get('app_id'), attrsVersionSent: 0 };
		this.sessions.add(sess);
		ws.on('message', (buf, isBinary) => {
			sess.lastRecv = Date.now();
			try { this.handleFrame(sess, buf, isBinary); } catch (e) { process.stderr.write(`mock: ${e.stack}\n`); }
		});
		ws.on('pong', () => { sess.lastRecv = Date.now(); });
		ws.on('close', () => this.onClose(sess));
		ws.on('error', () => {});
	}

	onClose(sess) {
		if (!this.sessions.delete(sess)) return;
		sess.closed = true;
		if (sess.heldTx) { clearTimeout(sess.heldTx.timer); sess.heldTx = null; }
		if (sess.app) for (const roomId of [...sess.rooms]) this.leaveRoom(sess, roomId);
	}

	// ---------------------------------------------------------------- sending
	// The parameters of an active hostile mode that applies to `sess` (all sessions, or the one
	// named by its `session-id`), consuming one of its `count`.
	useHostile(mode, sess) {
		const m = this.hostile.get(mode);
		if (!m) return null;
		if (m['session-id'] && sess && m['session-id'] !== sess.id) return null;
		if (m.count !== undefined) {
			if (m.count <= 0) { this.hostile.delete(mode); return null; }
			m.count--;
		}
		return m;
	}

	send(sess, msg) {
		if (!('trace-id' in msg)) msg['trace-id'] = traceId();
		const direct = DIRECT_REPLIES.has(msg.op);
		if (this.useHostile('unknown-op', sess)) this.write(sess, { op: 'mock-unknown-op', 'client-event-id': null, data: { x: 1 }, 'trace-id': null });
		if (this.useHostile('malformed', sess)) this.write(sess, '{"op":"refresh-ok","computations":[');
		if ((msg.op === 'add-query-ok' || msg.op === 'refresh-ok')) {
			const h = this.useHostile('huge-result', sess);
			if (h) {
				const big = [newId(), newId(), 'x'.repeat(h.bytes ?? 8 << 20), Date.now()];
				const res = msg.op === 'add-query-ok' ? msg.result : msg.computations[0]?.['instaql-result'];
				if (res) res[0].data['datalog-result']['join-rows'][0].push(big);
			}
		}
		if (direct) {
			const w = this.useHostile('wrong-types', sess);
			if (w) msg = wrongTypes(msg);
		}
		const frame = this.useHostile('array-frames', sess) ? [msg] : msg;
		this.write(sess, frame, msg.op);
		if (direct && this.useHostile('duplicate-replies', sess)) this.write(sess, frame, msg.op);
		if (direct) {
			const l = this.useHostile('late-replies', sess);
			if (l) setTimeout(() => this.write(sess, frame, msg.op), l.ms ?? 200);
		}
	}

	// Keeps the last FRAME_LOG_MAX frames: incoming messages whole, outgoing ones summarised.
	logFrame(dir, sess, msg) {
		const e = { seq: ++this.frameSeq, at: Date.now(), dir, 'session-id': sess.id, 'app-id': sess.app?.id ?? null };
		if (dir === 'in') e.msg = msg;
		else {
			const m = Array.isArray(msg) ? msg[0] : msg;
			e.op = isObj(m) ? m.op ?? null : null;
			e['client-event-id'] = isObj(m) ? m['client-event-id'] ?? null : null;
			if (isObj(m) && m.op === 'error') e.type = m.type;
			if (isObj(m) && 'tx-id' in m) e['tx-id'] = m['tx-id'];
			if (isObj(m) && 'processed-tx-id' in m) e['processed-tx-id'] = m['processed-tx-id'];
			if (typeof msg === 'string') e.raw = msg.slice(0, 200);
		}
		this.frames.push(e);
		if (this.frames.length > FRAME_LOG_MAX) this.frames.splice(0, this.frames.length - FRAME_LOG_MAX);
	}

	write(sess, obj, op) {
		if (sess.closed) return;
		this.logFrame('out', sess, obj);
		const data = typeof obj === 'string' ? obj : JSON.stringify(obj);
		const d = this.faults.delayMs > 0 && (!this.faults.delayOps || this.faults.delayOps.includes(op)) ? this.faults.delayMs : 0;
		const due = Date.now() + d;
		// Undelayed frames go out at once, overtaking delayed ones (the real server answers
		// different queue groups concurrently); delayed frames keep their order among themselves.
		if (!d) { safeSend(sess.ws, data); return; }
		sess.chain = sess.chain.then(async () => {
			const wait = due - Date.now();
			if (wait > 0) await sleep(wait);
			if (!sess.closed) safeSend(sess.ws, data);
		});
	}

	errorFrame(sess, req, err) {
		const tid = traceId();
		const known = err instanceof MockError;
		if (!known) process.stderr.write(`mock: unexpected error: ${err?.stack || err}\n`);
		const orig = isObj(req) ? { ...req } : { op: null };
		orig['session-id'] = sess.id;
		orig['trace-id'] = tid;
		return { op: 'error', status: known ? err.status : 500, 'client-event-id': isObj(req) ? req['client-event-id'] ?? null : null,
			'original-event': orig, type: known ? err.type : null, message: known ? err.message : YIKES,
			hint: known ? err.hint : null, 'trace-id': tid };
	}

	sendError(sess, req, err) { this.send(sess, this.errorFrame(sess, req, err)); }

	// ---------------------------------------------------------------- receiving
	handleFrame(sess, buf, isBinary) {
		if (isBinary) { this.stats.binary++; return; }
		let msg;
		try { msg = JSON.parse(buf.toString('utf8')); } catch {
			// The real server sends nothing back for unparseable frames (protocol.md 1.5).
			this.stats.unparseable++;
			return;
		}
		const op = isObj(msg) ? msg.op : undefined;
		this.logFrame('in', sess, msg);
		const opKey = typeof op === 'string' ? op : String(op);
		this.stats.received[opKey] = (this.stats.received[opKey] || 0) + 1;
		const handlers = {
			init: this.onInit, 'add-query': this.onAddQuery, 'remove-query': this.onRemoveQuery,
			transact: this.onTransact, 'join-room': this.onJoinRoom, 'leave-room': this.onLeaveRoom,
			'set-presence': this.onSetPresence, 'client-broadcast': this.onClientBroadcast,
			'start-sync': this.onAdminOnly, 'remove-sync': this.onAdminOnly, 'resync-table': this.onAdminOnly,
		};
		const h = typeof op === 'string' && Object.hasOwn(handlers, op) ? handlers[op] : null;
		if (!h) {
			this.sendError(sess, msg, new MockError('param-malformed', 'Invalid op', { op: op ?? null }));
			return;
		}
		try {
			if (op !== 'init') {
				if (!sess.inited) {
					throw validationError('init', { 'sess-id': sess.id }, ['`init` has not run for this session.']);
				}
				if (this.faults.rateLimited) {
					throw new MockError('rate-limited', "You're making too many requests. Please slow down.", {});
				}
			}
			h.call(this, sess, msg);
		} catch (e) {
			this.sendError(sess, msg, e);
		}
	}

	appStatusError(app, write) {
		if (app.status === 'disabled') return new MockError('app-disabled', 'This app is currently disabled.', { status: 'disabled' });
		if (write && app.status === 'read-only') return new MockError('app-read-only', 'This app is in read-only mode.', { status: 'read-only' });
		return null;
	}

	userObject(app, uid) {
		const d = app.data;
		const idT = d.triplesEA(uid, USERS.id)[0];
		if (!idT) return null;
		const u = { app_id: app.id, id: uid, created_at: new Date(idT[3]).toISOString() };
		for (const a of d.attrs.values()) {
			const [, et, label] = a['forward-identity'];
			if (et !== '$users' || label === 'id') continue;
			const t = d.triplesEA(uid, a.id)[0];
			if (t && t[2] !== null && t[2] !== undefined) u[label] = t[2];
		}
		u.isGuest = u.type === 'guest';
		return u;
	}

	attrsOf(app) { return [...app.data.attrs.values()]; }

	onInit(sess, msg) {
		if (sess.inited) throw validationError('init', msg, ['`init` has already run for this session.']);
		const appId = msg['app-id'];
		if (appId === undefined || appId === null) throw new MockError('param-missing', 'Missing parameter: ["app-id"]', { in: ['app-id'] });
		if (!isUuid(appId)) throw new MockError('param-malformed', 'Malformed parameter: ["app-id"]', { in: ['app-id'], 'original-input': appId });
		const app = this.apps.get(appId.toLowerCase());
		if (!app) throw new MockError('record-not-found', 'Record not found: app', { args: [{ id: appId }], 'record-type': 'app' });
		let admin = false;
		if (msg['__admin-token'] !== undefined && msg['__admin-token'] !== null) {
			if (!app.adminTokens.has(msg['__admin-token'])) {
				throw new MockError('record-not-found', 'Record not found: app-admin-token',
					{ args: [{ 'app-id': appId, token: msg['__admin-token'] }], 'record-type': 'app-admin-token' });
			}
			admin = true;
		}
		let user = null;
		const rt = msg['refresh-token'];
		if (rt !== undefined && rt !== null) {
			const uid = app.refreshTokens.get(rt);
			user = uid ? this.userObject(app, uid) : null;
			if (!user) {
				throw new MockError('record-not-found', 'Record not found: app-user',
					{ args: [{ 'app-id': appId, 'refresh-token': rt }], 'record-type': 'app-user' });
			}
		}
		Object.assign(sess, { inited: true, app, user, admin, attrsVersionSent: app.attrsVersion,
			features: { patchPresence: versionAbove(msg.versions, '0.17.5'), skipAttrs: versionAbove(msg.versions, '0.20.4') } });
		this.send(sess, { op: 'init-ok', 'client-event-id': msg['client-event-id'] ?? null, 'session-id': sess.id,
			auth: { app: { id: app.id, title: app.title, creator_id: '00000000-0000-4000-8000-000000000000',
				created_at: app.createdAt, status: app.status === 'active' ? null : app.status, org_id: null },
			user, 'admin?': admin ? true : null },
			attrs: this.attrsOf(app), 'app-status': { status: app.status } });
	}

	onAdminOnly(sess, msg) {
		if (!sess.admin) throw validationError(msg.op, msg, [`${msg.op} is currently supported for admins only.`]);
		throw new MockError('param-malformed', 'Invalid op', { op: msg.op }); // sync tables are not mocked
	}

	onAddQuery(sess, msg) {
		const app = sess.app;
		const q = msg.q;
		const key = canon(q ?? null);
		if (sess.subs.has(key)) {
			this.send(sess, { op: 'add-query-exists', 'client-event-id': msg['client-event-id'] ?? null, q });
			return;
		}
		const st = this.appStatusError(app, false);
		if (st) throw st;
		const { result, hash, ents } = evalQuery(app.data, q, { admin: sess.admin });
		sess.subs.set(key, { q, hash, ents, eventId: msg['client-event-id'] });
		this.send(sess, { op: 'add-query-ok', 'client-event-id': msg['client-event-id'] ?? null, q, result,
			'result-meta': null, 'processed-tx-id': this.processedTxId(sess), 'processed-isn': isn(this.processedTxId(sess)) });
	}

	onRemoveQuery(sess, msg) {
		sess.subs.delete(canon(msg.q ?? null));
		this.send(sess, { op: 'remove-query-ok', 'client-event-id': msg['client-event-id'] ?? null, q: msg.q });
	}

	rejectRule(msg) {
		const steps = JSON.stringify(msg['tx-steps'] ?? null);
		for (const r of this.faults.reject) {
			const m = r.match || {};
			if (m['client-event-id'] !== undefined && m['client-event-id'] !== msg['client-event-id']) continue;
			if (m.contains !== undefined && !steps.includes(m.contains)) continue;
			if (m['attr-id'] !== undefined && !steps.includes(m['attr-id'])) continue;
			if (r.count !== -1) {
				r.count--;
				if (r.count <= 0) this.faults.reject.splice(this.faults.reject.indexOf(r), 1);
			}
			return r;
		}
		return null;
	}

	onTransact(sess, msg) {
		let comb = this.hostile.get('combine-transacts');
		if (comb?.['session-id'] && comb['session-id'] !== sess.id) comb = null;
		if (!comb && !sess.heldTx) { this.execTransact(sess, msg, []); return; }
		// combine-transacts: hold each transact briefly; if the next one from this session has
		// matching steps (session.clj matching-steps?), only the later runs and both get its tx-id.
		const held = sess.heldTx;
		if (held) {
			clearTimeout(held.timer);
			sess.heldTx = null;
			if (comb && matchingSteps(this, sess.app, held.msg, msg) && this.useHostile('combine-transacts', sess)) {
				this.execTransact(sess, msg, [held.msg]);
				return;
			}
			this.execTransactSafe(sess, held.msg, []);
		}
		if (!comb) { this.execTransact(sess, msg, []); return; }
		sess.heldTx = { msg, timer: setTimeout(() => { sess.heldTx = null; this.execTransactSafe(sess, msg, []); }, comb.ms ?? 100) };
	}

	execTransactSafe(sess, msg, also) {
		if (sess.closed) return;
		try { this.execTransact(sess, msg, also); } catch (e) { this.sendError(sess, msg, e); }
	}

	// Runs one transact; `also` are earlier combined requests that share its outcome.
	execTransact(sess, msg, also) {
		const app = sess.app;
		try {
			const st = this.appStatusError(app, true);
			if (st) throw st;
			const rule = this.rejectRule(msg);
			if (rule) {
				throw new MockError(rule.type || 'permission-denied', rule.message || 'Permission denied: not perms-pass?',
					rule.hint !== undefined ? rule.hint : { input: [rule.etype || 'unknown', 'update'], expected: 'perms-pass?' });
			}
		} catch (e) {
			for (const m of also) this.sendError(sess, m, e);
			throw e;
		}
		let txId;
		try {
			txId = this.commit(app, msg['tx-steps'], { admin: sess.admin }, msg['client-event-id']);
		} catch (e) {
			for (const m of also) this.sendError(sess, m, e);
			throw e;
		}
		if (this.faults.dropAfterCommit > 0) {
			this.faults.dropAfterCommit--;
			// Refusing from the same moment keeps the client from replaying before the test acts.
			if (this.faults.dropAfterCommitRefuse) { this.faults.refuseUntil = -1; this.faults.refuseMode = 'http503'; }
			sess.closed = true;
			sess.ws.terminate();
			this.onClose(sess);
			this.refreshApp(app);
			return;
		}
		const oks = [...also, msg].map((m) => ({ op: 'transact-ok', 'client-event-id': m['client-event-id'] ?? null, 'tx-id': txId, isn: isn(txId) }));
		if (this.useHostile('refresh-before-ok', sess)) {
			this.refreshApp(app);
			for (const ok of oks) this.send(sess, ok);
		} else {
			for (const ok of oks) this.send(sess, ok);
			this.refreshApp(app);
		}
	}

	// Applies tx-steps atomically; returns the new tx-id. Throws MockError on failure.
	commit(app, steps, { admin = false } = {}, clientEventId) {
		const ents = new Set();
		app.data.touchedEnts = ents;
		let r;
		try {
			r = transact(app.data, steps, { admin });
		} finally {
			app.data.touchedEnts = null;
		}
		app.data = r.data;
		if (r.attrsChanged) {
			app.attrsVersion++;
			app.touchAll = true;
		} else {
			app.touched ??= new Set();
			for (const a of r.touched) app.touched.add(a);
			app.touchedEnts ??= new Set();
			for (const e of ents) app.touchedEnts.add(e);
		}
		this.txId++;
		if (clientEventId !== undefined) this.txCounts.set(clientEventId, (this.txCounts.get(clientEventId) || 0) + 1);
		this.saveState();
		return this.txId;
	}

	// Recomputes the app's subscriptions after commits. Only queries reaching an attr that the
	// commits since the last refresh touched are recomputed (all of them after attr changes).
	refreshApp(app, { force = false } = {}) {
		const touched = app.touchAll || !app.touched ? null : app.touched;
		const touchedEnts = touched ? app.touchedEnts : null;
		app.touched = null;
		app.touchedEnts = null;
		app.touchAll = false;
		for (const s of this.sessions) if (s.app === app && s.inited && !s.closed) this.refreshSession(s, { force, touched, touchedEnts });
	}

	refreshSession(sess, { force = false, touched = null, touchedEnts = null } = {}) {
		const app = sess.app;
		const attrsDirty = sess.attrsVersionSent !== app.attrsVersion;
		if (!sess.subs.size && !attrsDirty) return;
		const computations = [];
		for (const [key, sub] of [...sess.subs]) {
			try {
				const st = this.appStatusError(app, false);
				if (st) throw st;
				if (touched && !force) {
					if (sub.depsVersion !== app.attrsVersion) {
						sub.deps = queryDeps(app.data, sub.q);
						sub.fill = queryFillAttrs(app.data, sub.q, sub.deps);
						sub.depsVersion = app.attrsVersion;
					}
					let hit = false, structural = false;
					for (const a of touched) if (sub.deps.has(a)) { hit = true; if (!sub.fill.has(a)) { structural = true; break; } }
					if (!hit) continue;
					// only attrs that fill objects: it matters only for the entities the result holds
					if (!structural && sub.ents && touchedEnts && ![...touchedEnts].some((e) => sub.ents.has(e))) continue;
				}
				const { result, hash, ents } = evalQuery(app.data, sub.q, { admin: sess.admin });
				this.stats.recomputes[key] = (this.stats.recomputes[key] || 0) + 1;
				sub.ents = ents;
				if (hash === sub.hash && !force) continue;
				sub.hash = hash;
				computations.push({ 'instaql-query': sub.q, 'instaql-query-hash': hashInt(key), 'instaql-result': result,
					'result-meta': null, 'result-changed?': true, 'duration-ms': 0, 'instaql-topic?': true });
			} catch (e) {
				// A failing recompute unsubscribes the query (server/src/instant/reactive/query.clj:147-149).
				sess.subs.delete(key);
				this.sendError(sess, { op: 'refresh', 'client-event-id': null }, e);
			}
		}
		if (!computations.length && !attrsDirty && sess.features.skipAttrs) return;
		const p = this.processedTxId(sess);
		const msg = { op: 'refresh-ok', 'processed-tx-id': p, 'processed-isn': isn(p), computations };
		if (attrsDirty || !sess.features.skipAttrs) msg.attrs = this.attrsOf(app);
		sess.attrsVersionSent = app.attrsVersion;
		this.send(sess, msg);
	}

	// The processed-tx-id reported to a session: the latest tx-id, or less under the
	// `processed-lag` hostile mode (a lagging invalidator or another machine; results still
	// include every committed tx, which the protocol allows).
	processedTxId(sess) {
		const m = this.hostile.get('processed-lag');
		if (!m || (m['session-id'] && m['session-id'] !== sess.id)) return this.txId;
		return Math.max(0, this.txId - (m.by ?? 1));
	}

	// ---------------------------------------------------------------- rooms
	roomIdOf(msg) {
		const r = msg['room-id'];
		if (r === undefined || r === null) throw new MockError('param-missing', 'Missing parameter: ["room-id"]', { in: ['room-id'] });
		if (typeof r !== 'string') throw new MockError('param-malformed', 'Malformed parameter: ["room-id"]', { in: ['room-id'], 'original-input': r });
		return r;
	}

	// Sends each member its view of a change: full refresh-presence or a patch (section 8.3).
	broadcastPresence(app, roomId, edits, joiner) {
		const room = app.rooms.get(roomId);
		if (!room) return;
		const data = Object.fromEntries(room);
		for (const s of this.sessions) {
			if (s.app !== app || !s.rooms.has(roomId)) continue;
			if (s === joiner) {
				this.send(s, { op: 'refresh-presence', 'room-id': roomId, data });
			} else if (edits.length) {
				if (s.features.patchPresence) this.send(s, { op: 'patch-presence', 'room-id': roomId, edits });
				else this.send(s, { op: 'refresh-presence', 'room-id': roomId, data });
			}
		}
	}

	onJoinRoom(sess, msg) {
		const roomId = this.roomIdOf(msg);
		const st = this.appStatusError(sess.app, false);
		if (st) throw st;
		const app = sess.app;
		let room = app.rooms.get(roomId);
		if (!room) app.rooms.set(roomId, (room = new Map()));
		let edits = [];
		if (!room.has(sess.id)) {
			const rec = { 'peer-id': sess.id, 'instance-id': 'mock', user: sess.user ? { id: sess.user.id } : null,
				data: isObj(msg.data) ? msg.data : (msg.data ?? {}) };
			room.set(sess.id, rec);
			edits = [[[sess.id], '+', rec]];
		}
		sess.rooms.add(roomId);
		this.send(sess, { op: 'join-room-ok', 'client-event-id': msg['client-event-id'] ?? null, 'room-id': roomId });
		this.broadcastPresence(app, roomId, edits, sess);
	}

	leaveRoom(sess, roomId) {
		const app = sess.app;
		sess.rooms.delete(roomId);
		const room = app.rooms.get(roomId);
		if (!room || !room.delete(sess.id)) return;
		if (!room.size) { app.rooms.delete(roomId); return; }
		this.broadcastPresence(app, roomId, [[[sess.id], '-']], null);
	}

	onLeaveRoom(sess, msg) {
		const roomId = this.roomIdOf(msg);
		this.leaveRoom(sess, roomId);
		this.send(sess, { op: 'leave-room-ok', 'client-event-id': msg['client-event-id'] ?? null, 'room-id': roomId });
	}

	requireRoom(sess, roomId, msg) {
		if (!sess.rooms.has(roomId)) throw validationError('room', msg, ['You have not entered this room yet.']);
	}

	onSetPresence(sess, msg) {
		const roomId = this.roomIdOf(msg);
		this.requireRoom(sess, roomId, msg);
		const rec = sess.app.rooms.get(roomId).get(sess.id);
		const old = rec.data;
		rec.data = msg.data ?? {};
		this.send(sess, { op: 'set-presence-ok', 'client-event-id': msg['client-event-id'] ?? null, 'room-id': roomId });
		const edits = diffEdits(old, rec.data, [sess.id, 'data']);
		// The sender gets the patch too.
		const room = sess.app.rooms.get(roomId);
		const data = Object.fromEntries(room);
		if (!edits.length) return;
		for (const s of this.sessions) {
			if (s.app !== sess.app || !s.rooms.has(roomId)) continue;
			if (s.features.patchPresence) this.send(s, { op: 'patch-presence', 'room-id': roomId, edits });
			else this.send(s, { op: 'refresh-presence', 'room-id': roomId, data });
		}
	}

	onClientBroadcast(sess, msg) {
		const roomId = this.roomIdOf(msg);
		this.requireRoom(sess, roomId, msg);
		const env = { 'peer-id': sess.id, user: sess.user ? { id: sess.user.id } : null, data: msg.data ?? null };
		this.send(sess, { op: 'client-broadcast-ok', 'client-event-id': msg['client-event-id'] ?? null, 'room-id': roomId,
			topic: msg.topic ?? null, data: env });
		for (const s of this.sessions) {
			if (s === sess || s.app !== sess.app || !s.rooms.has(roomId)) continue;
			this.send(s, { op: 'server-broadcast', 'room-id': roomId, topic: msg.topic ?? null, data: env });
		}
	}

	// ---------------------------------------------------------------- auth over HTTP (section 9)
	createUser(app, { email = null, guest = false, id = null, extra = null } = {}) {
		const uid = id || newId();
		const steps = [['add-triple', uid, USERS.id, uid]];
		if (email) steps.push(['add-triple', uid, USERS.email, email]);
		steps.push(['add-triple', uid, USERS.type, guest ? 'guest' : 'user']);
		// extra-fields set $users attrs that exist; others are ignored.
		for (const [k, v] of Object.entries(isObj(extra) ? extra : {})) {
			const a = app.data.attrByIdent('$users', k);
			if (a && a.catalog !== 'system') steps.push(['add-triple', uid, a.id, v]);
		}
		this.commit(app, steps, { admin: true });
		this.refreshApp(app);
		return uid;
	}

	issueToken(app, uid, token = null) {
		const t = token || newId();
		app.refreshTokens.set(t, uid);
		this.saveState();
		return t;
	}

	async handleHttp(req, res) {
		const reply = (code, body) => {
			const s = JSON.stringify(body);
			res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
			res.end(s);
		};
		const url = new URL(req.url, 'http://x');
		if (req.method === 'OPTIONS') {
			res.writeHead(204, { 'access-control-allow-origin': '*', 'access-control-allow-headers': '*' });
			res.end();
			return;
		}
		let body = {};
		try {
			const raw = await readBody(req);
			body = raw.length ? JSON.parse(raw) : {};
			if (!isObj(body)) throw new Error('not an object');
		} catch {
			reply(400, { type: 'param-malformed', message: 'Malformed parameter: ["body"]', hint: { in: ['body'] }, 'trace-id': traceId() });
			return;
		}
		try {
			// The rate-limit control applies to the auth endpoints too (HTTP 429, as the real server).
			if (this.faults.rateLimited) throw new MockError('rate-limited', 'Too many requests', null);
			const out = this.authRoute(url.pathname, body);
			if (!out) { reply(404, { type: null, message: 'Not found', hint: null, 'trace-id': traceId() }); return; }
			reply(200, out);
		} catch (e) {
			const known = e instanceof MockError;
			if (!known) process.stderr.write(`mock: ${e.stack}\n`);
			reply(known ? (e.type === 'rate-limited' ? 429 : e.status) : 500,
				{ type: known ? e.type : null, message: known ? e.message : YIKES, hint: known ? e.hint : null, 'trace-id': traceId() });
		}
	}

	authApp(body, snake) {
		const k = snake ? 'app_id' : 'app-id';
		const id = body[k];
		if (id === undefined || id === null) throw new MockError('param-missing', `Missing parameter: ["${k}"]`, { in: [k] });
		const app = typeof id === 'string' ? this.apps.get(id.toLowerCase()) : null;
		if (!app) throw new MockError('record-not-found', 'Record not found: app', { args: [{ id }], 'record-type': 'app' });
		return app;
	}

	userWithToken(app, uid, token) { return { ...this.userObject(app, uid), refresh_token: token }; }

	authRoute(p, body) {
		switch (p) {
		case '/runtime/auth/send_magic_code': {
			const app = this.authApp(body);
			if (typeof body.email !== 'string' || !body.email.includes('@')) {
				throw new MockError('param-malformed', 'Malformed parameter: ["email"]', { in: ['email'], 'original-input': body.email ?? null });
			}
			const code = String(crypto.randomInt(0, 1000000)).padStart(6, '0');
			app.magicCodes.set(body.email.toLowerCase(), code);
			return { sent: true };
		}
		case '/runtime/auth/verify_magic_code': {
			const app = this.authApp(body);
			const email = typeof body.email === 'string' ? body.email.toLowerCase() : null;
			if (!email || app.magicCodes.get(email) !== body.code) {
				throw new MockError('record-not-found', 'Record not found: app-user-magic-code',
					{ args: [{ email: body.email ?? null, code: body.code ?? null }], 'record-type': 'app-user-magic-code' });
			}
			app.magicCodes.delete(email);
			let uid = app.data.entitiesWith(USERS.email, email)[0];
			let created = false;
			if (!uid) {
				const guestUid = body['refresh-token'] ? app.refreshTokens.get(body['refresh-token']) : null;
				const guest = guestUid ? this.userObject(app, guestUid) : null;
				if (guest && guest.isGuest) {
					// Upgrading a guest keeps its id and makes it a full user.
					this.commit(app, [['add-triple', guestUid, USERS.email, email], ['add-triple', guestUid, USERS.type, 'user']], { admin: true });
					this.refreshApp(app);
					uid = guestUid;
				} else {
					uid = this.createUser(app, { email, extra: body['extra-fields'] });
					created = true;
				}
			}
			return { user: this.userWithToken(app, uid, this.issueToken(app, uid)), created };
		}
		case '/runtime/auth/sign_in_guest': {
			const app = this.authApp(body);
			const uid = this.createUser(app, { guest: true, extra: body['extra-fields'] });
			return { user: this.userWithToken(app, uid, this.issueToken(app, uid)) };
		}
		case '/runtime/auth/verify_refresh_token': {
			const app = this.authApp(body);
			const t = body['refresh-token'];
			const uid = app.refreshTokens.get(t);
			if (!uid || !this.userObject(app, uid)) {
				throw new MockError('record-not-found', 'Record not found: app-user',
					{ args: [{ 'app-id': app.id, 'refresh-token': t ?? null }], 'record-type': 'app-user' });
			}
			return { user: this.userWithToken(app, uid, t) };
		}
		case '/runtime/signout': {
			const app = this.authApp(body, true);
			app.refreshTokens.delete(body.refresh_token);
			this.saveState();
			return {};
		}
		default:
			return null;
		}
	}

	// ---------------------------------------------------------------- control interface
	async handleControl(req, res) {
		const url = new URL(req.url, 'http://x');
		const reply = (code, body) => {
			const s = JSON.stringify(body);
			res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
			res.end(s);
		};
		const m = /^\/__control\/([a-z0-9-]+)$/.exec(url.pathname);
		if (!m) { reply(404, { ok: false, error: 'unknown path; use POST /__control/<action>' }); return; }
		let body = {};
		try {
			const raw = await readBody(req);
			body = raw.length ? JSON.parse(raw) : {};
			if (!isObj(body)) throw new Error('body must be a JSON object');
		} catch (e) { reply(400, { ok: false, error: `bad body: ${e.message}` }); return; }
		const fn = CONTROL[m[1]];
		if (!fn) { reply(404, { ok: false, error: `unknown action ${m[1]}`, actions: Object.keys(CONTROL) }); return; }
		try {
			const out = await fn.call(this, body);
			reply(200, { ok: true, ...out });
		} catch (e) {
			reply(400, { ok: false, error: e.message, ...(e instanceof MockError ? { type: e.type, hint: e.hint } : {}) });
		}
	}

	appFor(body) {
		const id = body['app-id'] ?? [...this.apps.keys()][0];
		const app = this.apps.get(String(id).toLowerCase());
		if (!app) throw new Error(`unknown app ${id}`);
		return app;
	}

	sessionList() {
		return [...this.sessions].map((s) => ({ 'session-id': s.id, 'app-id': s.app?.id ?? null, 'url-app-id': s.urlAppId, inited: s.inited,
			user: s.user, admin: s.admin, queries: [...s.subs.values()].map((x) => x.q), rooms: [...s.rooms] }));
	}
}

const CONTROL = {
	status() {
		return { port: this.port, controlPort: this.controlPort, 'tx-id': this.txId,
			apps: [...this.apps.values()].map((a) => ({ 'app-id': a.id, title: a.title, status: a.status })),
			sessions: this.sessionList(), stats: this.stats };
	},
	sessions() { return { sessions: this.sessionList() }; },
	drop(body) {
		let n = 0;
		for (const s of [...this.sessions]) {
			if (body['app-id'] && s.app?.id !== body['app-id']) continue;
			if (body['session-id'] && s.id !== body['session-id']) continue;
			// With `code`, a close frame is sent first (the real server never sends one).
			if (body.code !== undefined) s.ws.close(body.code, body.reason ?? '');
			else s.ws.terminate();
			this.onClose(s);
			n++;
		}
		return { dropped: n };
	},
	refuse(body) {
		const ms = body.ms ?? -1;
		this.faults.refuseUntil = ms === 0 ? 0 : ms < 0 ? -1 : Date.now() + ms;
		if (body.mode !== undefined && !['http503', 'reset', 'hang'].includes(body.mode)) throw new Error('mode must be http503, reset or hang');
		this.faults.refuseMode = body.mode ?? 'http503';
		if (ms === 0) { for (const h of this.hung) h.destroy(); this.hung.clear(); }
		let dropped = 0;
		if (body.drop) dropped = CONTROL.drop.call(this, {}).dropped;
		return { refusing: ms !== 0, dropped };
	},
	delay(body) {
		this.faults.delayMs = body.ms ?? 0;
		this.faults.delayOps = Array.isArray(body.ops) ? body.ops : null;
		return { 'delay-ms': this.faults.delayMs };
	},
	'reject-transacts'(body) {
		const count = body.count ?? 1;
		if (count === 0) { this.faults.reject = []; return { rules: 0 }; }
		this.faults.reject.push({ count, match: body.match || {}, type: body.type, message: body.message, hint: body.hint, etype: body.etype });
		return { rules: this.faults.reject.length };
	},
	'drop-after-commit'(body) {
		this.faults.dropAfterCommit = body.count ?? 1;
		this.faults.dropAfterCommitRefuse = body.refuse === true;
		return { count: this.faults.dropAfterCommit };
	},
	'rate-limit'(body) {
		this.faults.rateLimited = body.on ?? true;
		return { on: this.faults.rateLimited };
	},
	'app-status'(body) {
		const app = this.appFor(body);
		const status = body.status;
		if (!['active', 'read-only', 'disabled'].includes(status)) throw new Error('status must be active, read-only or disabled');
		const was = app.status;
		app.status = status;
		this.saveState();
		let n = 0;
		for (const s of this.sessions) {
			if (s.app !== app || !s.inited) continue;
			this.send(s, { op: 'app-status-changed', status });
			n++;
		}
		// A disabled app fails every subscription on its next refresh.
		if (status === 'disabled' && was !== 'disabled') this.refreshApp(app);
		return { notified: n };
	},
	async restart(body) {
		this.saveState();
		if (body['refuse-ms']) this.faults.refuseUntil = Date.now() + body['refuse-ms'];
		for (const s of [...this.sessions]) { s.ws.terminate(); this.onClose(s); }
		if (this.opts.state) this.loadState();
		else for (const a of this.apps.values()) a.rooms = new Map();
		return { 'tx-id': this.txId };
	},
	dump(body) {
		const app = this.appFor(body);
		return { 'app-id': app.id, 'tx-id': this.txId, attrs: this.attrsOf(app), triples: [...app.data.allTriples()] };
	},
	'tx-counts'() { return { counts: Object.fromEntries(this.txCounts) }; },
	seed(body) {
		const app = this.appFor(body);
		const set = body.set ? loadDataSet(body.set) : { attrs: body.attrs || [], triples: body.triples || [] };
		const attrs = Array.isArray(set.attrs) ? set.attrs : Object.values(set.attrs);
		if (body.replace) app.data = new AppData();
		app.data.load(attrs, set.triples);
		app.attrsVersion++;
		this.txId++;
		this.saveState();
		this.refreshApp(app);
		return { 'tx-id': this.txId, attrs: attrs.length, triples: set.triples.length };
	},
	transact(body) {
		const app = this.appFor(body);
		const txId = this.commit(app, body['tx-steps'], { admin: body.admin ?? true });
		this.refreshApp(app);
		return { 'tx-id': txId };
	},
	'add-app'(body) {
		const id = (body['app-id'] || newId()).toLowerCase();
		if (!this.apps.has(id)) {
			const app = this.newApp(id, { title: body.title, status: body.status, adminToken: body['admin-token'] });
			if (body.seed) { const d = loadDataSet(body.seed); app.data.load(d.attrs, d.triples); }
		} else if (body['admin-token']) this.apps.get(id).adminTokens.add(body['admin-token']);
		this.saveState();
		return { 'app-id': id };
	},
	'add-user'(body) {
		const app = this.appFor(body);
		let uid = body.email ? app.data.entitiesWith(USERS.email, body.email)[0] : null;
		if (!uid) uid = this.createUser(app, { email: body.email, guest: !!body.guest, id: body.id });
		const token = this.issueToken(app, uid, body['refresh-token']);
		return { user: this.userObject(app, uid), 'refresh-token': token };
	},
	'revoke-token'(body) {
		const app = this.appFor(body);
		const had = app.refreshTokens.delete(body['refresh-token']);
		this.saveState();
		return { revoked: had };
	},
	'magic-code'(body) {
		const app = this.appFor(body);
		return { code: app.magicCodes.get(String(body.email || '').toLowerCase()) ?? null };
	},
	hostile(body) {
		const mode = body.mode;
		if (mode === 'off') {
			this.hostile.clear();
			this.flushHeld();
			if (this.endlessTimer) { clearInterval(this.endlessTimer); this.endlessTimer = null; }
			return { modes: [] };
		}
		if (!HOSTILE_MODES.includes(mode)) throw new Error(`unknown mode ${mode}; one of ${HOSTILE_MODES.join(', ')} or off`);
		if (body.on === false) {
			this.hostile.delete(mode);
			if (mode === 'combine-transacts') this.flushHeld();
			if (mode === 'endless-refresh' && this.endlessTimer) { clearInterval(this.endlessTimer); this.endlessTimer = null; }
		} else {
			const { mode: _m, on: _o, ...params } = body;
			this.hostile.set(mode, params);
			if (mode === 'endless-refresh') {
				if (this.endlessTimer) clearInterval(this.endlessTimer);
				this.endlessTimer = setInterval(() => {
					for (const s of this.sessions) {
						if (s.inited && s.subs.size && (!params['session-id'] || params['session-id'] === s.id)) this.refreshSession(s, { force: true });
					}
				}, params['interval-ms'] ?? 20);
			}
		}
		return { modes: [...this.hostile.keys()] };
	},
	send(body) {
		let n = 0;
		for (const s of this.sessions) {
			if (body['session-id'] && s.id !== body['session-id']) continue;
			if (body['app-id'] && s.app?.id !== body['app-id']) continue;
			this.write(s, body.frame);
			n++;
		}
		return { sent: n };
	},
	config(body) {
		if (body['idle-timeout-ms']) this.opts.idleTimeoutMs = body['idle-timeout-ms'];
		if (body['ping-interval-ms']) {
			this.opts.pingIntervalMs = body['ping-interval-ms'];
			clearInterval(this.pingTimer);
			this.pingTimer = setInterval(() => this.pingTick(), this.opts.pingIntervalMs);
		}
		return { 'ping-interval-ms': this.opts.pingIntervalMs, 'idle-timeout-ms': this.opts.idleTimeoutMs };
	},
	reset() {
		this.resetFaults();
		return {};
	},
	stats() { return { stats: this.stats }; },
	// Recent frames: {dir?: "in"|"out", op?, session-id?, client-event-id?, after?: seq, limit?: 1000}.
	frames(body) {
		let f = this.frames;
		if (body.after !== undefined) f = f.filter((e) => e.seq > body.after);
		if (body.dir) f = f.filter((e) => e.dir === body.dir);
		if (body['session-id']) f = f.filter((e) => e['session-id'] === body['session-id']);
		const opOf = (e) => (e.dir === 'in' ? (isObj(e.msg) ? e.msg.op : undefined) : e.op);
		const cevOf = (e) => (e.dir === 'in' ? (isObj(e.msg) ? e.msg['client-event-id'] : undefined) : e['client-event-id']);
		if (body.op) f = f.filter((e) => opOf(e) === body.op);
		if (body['client-event-id']) f = f.filter((e) => cevOf(e) === body['client-event-id']);
		const limit = body.limit ?? 1000;
		return { frames: f.slice(-limit), seq: this.frameSeq };
	},
	// Long-polls until a condition holds (or `timeout-ms`, default 10000, passes): reply {met}.
	// Conditions (all given must hold): sessions (inited sessions, optionally of app-id), tx-id
	// (global tx-id >=), tx-count + client-event-id (applied count >=), received + op (frames with
	// that op received >=), queries (some session with >= that many subscriptions).
	async wait(body) {
		const deadline = Date.now() + (body['timeout-ms'] ?? 10000);
		const holds = () => {
			const inited = [...this.sessions].filter((s) => s.inited && (!body['app-id'] || s.app?.id === body['app-id']));
			if (body.sessions !== undefined && inited.length < body.sessions) return false;
			if (body['tx-id'] !== undefined && this.txId < body['tx-id']) return false;
			if (body['tx-count'] !== undefined && (this.txCounts.get(body['client-event-id']) || 0) < body['tx-count']) return false;
			if (body.received !== undefined && (this.stats.received[body.op] || 0) < body.received) return false;
			if (body.queries !== undefined && !inited.some((s) => s.subs.size >= body.queries)) return false;
			return true;
		};
		while (!holds()) {
			if (Date.now() >= deadline) return { met: false };
			await sleep(10);
		}
		return { met: true };
	},
	rooms(body) {
		const app = this.appFor(body);
		return { rooms: Object.fromEntries([...app.rooms].map(([k, v]) => [k, Object.fromEntries(v)])) };
	},
};

function wrongTypes(msg) {
	const m = { ...msg };
	if ('tx-id' in m) m['tx-id'] = String(m['tx-id']);
	if ('processed-tx-id' in m) m['processed-tx-id'] = String(m['processed-tx-id']);
	if ('session-id' in m) m['session-id'] = 42;
	if ('result' in m) m.result = { 'join-rows': 'not-a-list' };
	if ('attrs' in m) m.attrs = { not: 'a list' };
	if ('room-id' in m) m['room-id'] = 7;
	if ('client-event-id' in m && m.op !== 'transact-ok') m['client-event-id'] = 12345;
	return m;
}

function hashInt(s) {
	let h = 0;
	for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
	return h;
}

function readBody(req) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		req.on('data', (c) => chunks.push(c));
		req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
		req.on('error', reject);
	});
}

export function parseArgs(argv) {
	const o = { apps: [] };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const val = () => {
			if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
			return argv[++i];
		};
		switch (a) {
		case '--port': o.port = Number(val()); break;
		case '--control-port': o.controlPort = Number(val()); break;
		case '--state': o.state = val(); break;
		case '--tls-cert': o.tlsCert = val(); break;
		case '--tls-key': o.tlsKey = val(); break;
		case '--ping-interval-ms': o.pingIntervalMs = Number(val()); break;
		case '--idle-timeout-ms': o.idleTimeoutMs = Number(val()); break;
		case '--seed': o.seed = val(); break;
		case '--no-deflate': o.deflate = false; break;
		case '--exit-on-stdin-eof': o.exitOnStdinEof = true; break;
		case '--app':
			o.apps.push(val().toLowerCase());
			while (i + 1 < argv.length && !argv[i + 1].startsWith('--')) o.apps.push(argv[++i].toLowerCase());
			break;
		default: throw new Error(`unknown argument ${a}`);
		}
	}
	for (const id of o.apps) if (!isUuid(id)) throw new Error(`--app ${id}: not a UUID`);
	if (!!o.tlsCert !== !!o.tlsKey) throw new Error('--tls-cert and --tls-key go together');
	return o;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
	let opts;
	try { opts = parseArgs(process.argv.slice(2)); } catch (e) {
		process.stderr.write(`mock server: ${e.message}\n`);
		process.exit(2);
	}
	let srv;
	let info;
	try {
		srv = new MockServer(opts);
		info = await srv.start();
	} catch (e) {
		process.stderr.write(`mock server: cannot start: ${e.message}\n`);
		process.exit(1);
	}
	process.stdout.write(JSON.stringify(info) + '\n');
	const quit = async () => {
		setTimeout(() => process.exit(0), 2000).unref();
		await srv.stop();
		process.exit(0);
	};
	process.on('SIGTERM', quit);
	process.on('SIGINT', quit);
	// Test harnesses hold our stdin open; when they die, so do we (no orphaned servers).
	if (opts.exitOnStdinEof) {
		process.stdin.on('end', quit);
		process.stdin.on('error', quit);
		process.stdin.resume();
	}
}


function safeSend(ws, data) {
	try { ws.send(data, () => {}); } catch { /* socket is closing */ }
}

// Both transacts consist only of 5-element add-triples on cardinality-one attrs, pairwise on the
// same entity, attr and mode (server/src/instant/reactive/session.clj matching-steps?).
function matchingSteps(srv, app, m1, m2) {
	const a = m1['tx-steps'];
	const b = m2['tx-steps'];
	if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length || !a.length) return false;
	return a.every((x, i) => {
		const y = b[i];
		return Array.isArray(x) && Array.isArray(y) && x.length === 5 && y.length === 5 &&
			x[0] === 'add-triple' && y[0] === 'add-triple' && canon(x[1]) === canon(y[1]) && x[2] === y[2] &&
			x[4]?.mode === y[4]?.mode && app.data.attrs.get(x[2])?.cardinality === 'one';
	});
}
