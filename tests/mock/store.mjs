// Mock Instant server: one app's attrs and triples, and the server's transact semantics
// (protocol.md section 6) applied to them atomically.
import crypto from 'node:crypto';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (x) => typeof x === 'string' && UUID_RE.test(x);
export const newId = () => crypto.randomUUID();

// An error the server would send as an `error` frame (Appendix A).
export class MockError extends Error {
	constructor(type, message, hint = null, status) {
		super(message);
		this.type = type;
		this.hint = hint;
		this.status = status ?? (BAD_REQUEST_TYPES.has(type) ? 400 : 500);
	}
}
const BAD_REQUEST_TYPES = new Set(['record-not-found', 'record-expired', 'record-not-unique',
	'record-foreign-key-invalid', 'record-check-violation', 'sql-raise', 'permission-denied',
	'permission-evaluation-failed', 'app-read-only', 'app-disabled', 'rate-limited', 'param-missing',
	'param-malformed', 'validation-failed']);

export function validationError(dataType, input, messages, inPaths) {
	const errors = messages.map((m, i) => ({ message: m, in: inPaths?.[i] ?? [] }));
	return new MockError('validation-failed',
		`Validation failed for ${dataType}` + (messages.length ? ': ' + messages.join(', ') : ''),
		{ 'data-type': dataType, input, errors });
}

function specError(input, errors) {
	return new MockError('validation-failed', 'Validation failed for tx-steps',
		{ 'data-type': 'tx-steps', input, errors });
}

// Stable JSON used as a value key and for result hashing.
export function canon(v) {
	if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']';
	if (v && typeof v === 'object') {
		return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canon(v[k])).join(',') + '}';
	}
	return JSON.stringify(v === undefined ? null : v);
}

// The system catalog attrs for $users and $files (ids from protocol.md section 5.2).
export const SYSTEM_ATTRS = [
	sys('96653230-13ff-ffff-a4b4-81ffffffffff', '96653231-03ff-ffff-a4b4-81ffffffffff', '$users', 'id', { 'unique?': true, 'index?': true }),
	sys('96653230-13ff-ffff-a4b4-46010bffffff', '96653231-03ff-ffff-a4b4-46010bffffff', '$users', 'email', { 'unique?': true, 'index?': true, 'checked-data-type': 'string' }),
	sys('96653230-13ff-ffff-a4b5-3cbc9fffffff', '96653231-03ff-ffff-a4b5-3cbc9fffffff', '$users', 'type', { 'checked-data-type': 'string' }),
	sys('96653230-13ff-ffff-a4b4-8600c4a457ff', '96653231-03ff-ffff-a4b4-8600c4a457ff', '$users', 'imageURL', { 'checked-data-type': 'string' }),
	sys('96653230-13ff-ffff-a4b4-b7d3ffffffff', '96653231-03ff-ffff-a4b4-b7d3ffffffff', '$users', 'linkedPrimaryUser', {
		'value-type': 'ref', 'reverse-identity': ['96653231-03ff-ffff-a4b4-b353ffffffff', '$users', 'linkedGuestUsers'], 'on-delete': 'cascade' }),
	sys('96653230-13ff-ffff-2a34-81ffffffffff', '96653231-03ff-ffff-2a34-81ffffffffff', '$files', 'id', { 'unique?': true, 'index?': true }),
	sys('96653230-13ff-ffff-2a34-f04cffffffff', '96653231-03ff-ffff-2a34-f04cffffffff', '$files', 'path', { 'unique?': true, 'index?': true, 'checked-data-type': 'string' }),
	sys('96653230-13ff-ffff-2a35-48afffffffff', '96653231-03ff-ffff-2a35-48afffffffff', '$files', 'url', { 'checked-data-type': 'string' }),
	sys('96653230-13ff-ffff-2a35-24609fffffff', '96653231-03ff-ffff-2a35-24609fffffff', '$files', 'size', { 'checked-data-type': 'number' }),
];
function sys(id, identId, etype, label, extra) {
	return { id, 'forward-identity': [identId, etype, label], 'value-type': 'blob', cardinality: 'one',
		'unique?': false, 'index?': false, 'required?': false, 'inferred-types': null, catalog: 'system', ...extra };
}
export const USERS = { id: SYSTEM_ATTRS[0].id, email: SYSTEM_ATTRS[1].id, type: SYSTEM_ATTRS[2].id };
const ALLOWED_SYSTEM_ETYPES = new Set(['$users', '$files', '$streams']);
const NON_ADMIN_SYSTEM_WRITES = new Set([SYSTEM_ATTRS[0].id, SYSTEM_ATTRS[5].id, SYSTEM_ATTRS[6].id]);

// The stored attr columns (server/src/instant/db/model/attr.clj); anything else a client sends is dropped.
const ATTR_KEYS = ['id', 'forward-identity', 'reverse-identity', 'value-type', 'cardinality', 'unique?', 'index?',
	'required?', 'checked-data-type', 'on-delete', 'on-delete-reverse'];

export function normalizeAttr(a, catalog = 'user') {
	const out = {};
	for (const k of ATTR_KEYS) if (a[k] !== undefined && a[k] !== null) out[k] = a[k];
	out['unique?'] = !!a['unique?'];
	out['index?'] = !!a['index?'];
	out['required?'] = !!a['required?'];
	out['inferred-types'] = a['inferred-types'] ?? null;
	out.catalog = a.catalog || catalog;
	return out;
}

const fwdEtype = (a) => a['forward-identity'][1];
const revEtype = (a) => a['reverse-identity']?.[1];
const isRef = (a) => a['value-type'] === 'ref';

let tripleSerial = 0;

// Triples indexed e -> a -> canon(v) -> [e, a, v, createdAt], plus a -> canon(v) -> Set(e).
// Changes made between begin() and commit() are journaled so that rollback() undoes them: a
// transaction is all or nothing without copying the data.
export class AppData {
	constructor() {
		this.attrs = new Map();
		this.eav = new Map();
		this.av = new Map();
		this.deletedAttrs = new Map(); // id -> { attr, triples } for restore-attr
		this.journal = null;
		this.version = 0; // bumped on every committed change; caches key on it
		for (const a of SYSTEM_ATTRS) this.attrs.set(a.id, { ...a });
	}

	begin() { this.journal = []; }

	commit() {
		this.journal = null;
		this.changed();
	}

	rollback() {
		const j = this.journal;
		this.journal = null;
		for (let i = j.length - 1; i >= 0; i--) j[i]();
	}

	changed() {
		this.version++;
	}

	// Triple changes since the query module last synced its client-side store (null: no store).
	logLib(op, t) {
		if (this.libLog) this.libLog.push([op, t]);
	}

	setAttr(id, attr) {
		this._lib = null; // attrs changed: the client-side store is rebuilt
		this.libLog = null;
		const old = this.attrs.get(id);
		this.attrs.set(id, attr);
		this.journal?.push(() => (old ? this.attrs.set(id, old) : this.attrs.delete(id)));
	}

	deleteAttr(id) {
		this._lib = null;
		this.libLog = null;
		const old = this.attrs.get(id);
		this.attrs.delete(id);
		if (old) this.journal?.push(() => this.attrs.set(id, old));
	}

	setDeleted(id, v) {
		const old = this.deletedAttrs.get(id);
		if (v) this.deletedAttrs.set(id, v);
		else this.deletedAttrs.delete(id);
		this.journal?.push(() => (old ? this.deletedAttrs.set(id, old) : this.deletedAttrs.delete(id)));
	}

	*allTriples() {
		for (const am of this.eav.values()) for (const vm of am.values()) yield* vm.values();
	}

	triplesEA(e, a) {
		const vm = this.eav.get(e)?.get(a);
		return vm ? [...vm.values()] : [];
	}

	addRaw(t) {
		const [e, a, v] = t;
		this.touchedEnts?.add(e);
		// A serial per stored triple object (arrays serialise without it): result hashing and
		// de-duplication use it instead of re-serialising values.
		if (t.serial === undefined) t.serial = ++tripleSerial;
		const key = canon(v);
		let am = this.eav.get(e);
		if (!am) this.eav.set(e, (am = new Map()));
		let vm = am.get(a);
		if (!vm) am.set(a, (vm = new Map()));
		const old = vm.get(key);
		vm.set(key, t);
		if (old) this.logLib('-', old);
		this.logLib('+', t);
		let ix = this.av.get(a);
		if (!ix) this.av.set(a, (ix = new Map()));
		let es = ix.get(key);
		if (!es) ix.set(key, (es = new Set()));
		es.add(e);
		this.journal?.push(() => (old ? this.addRaw(old) : this.removeRaw(e, a, v)));
	}

	removeRaw(e, a, v) {
		const key = canon(v);
		const am = this.eav.get(e);
		const vm = am?.get(a);
		const old = vm?.get(key);
		if (!old) return false;
		this.touchedEnts?.add(e);
		vm.delete(key);
		this.logLib('-', old);
		if (!vm.size) am.delete(a);
		if (!am.size) this.eav.delete(e);
		const ix = this.av.get(a);
		const es = ix?.get(key);
		if (es) {
			es.delete(e);
			if (!es.size) ix.delete(key);
			if (!ix.size) this.av.delete(a);
		}
		this.journal?.push(() => this.addRaw(old));
		return true;
	}

	removeEA(e, a) {
		for (const t of this.triplesEA(e, a)) this.removeRaw(t[0], t[1], t[2]);
	}

	attrByIdent(etype, label) {
		for (const a of this.attrs.values()) {
			const f = a['forward-identity'];
			if (f[1] === etype && f[2] === label) return a;
		}
		return null;
	}

	attrByRevIdent(etype, label) {
		for (const a of this.attrs.values()) {
			const r = a['reverse-identity'];
			if (r && r[1] === etype && r[2] === label) return a;
		}
		return null;
	}

	idAttr(etype) { return this.attrByIdent(etype, 'id'); }

	// Entities holding value v on attr a.
	entitiesWith(a, v) {
		const es = this.av.get(a)?.get(canon(v));
		return es ? [...es] : [];
	}

	entityExistsAs(e, etype) {
		const am = this.eav.get(e);
		if (!am) return false;
		for (const a of am.keys()) {
			const attr = this.attrs.get(a);
			if (attr && fwdEtype(attr) === etype) return true;
		}
		return false;
	}

	load(attrs, triples, now = Date.now()) {
		for (const a of attrs) this.setAttr(a.id, normalizeAttr(a, a.catalog));
		for (const t of triples) this.addRaw([t[0], t[1], t[2], typeof t[3] === 'number' ? t[3] : now]);
		this.changed();
	}

	toJSON() {
		return { attrs: [...this.attrs.values()].filter((a) => a.catalog !== 'system'), triples: [...this.allTriples()],
			deletedAttrs: [...this.deletedAttrs.values()] };
	}

	static fromJSON(j) {
		const d = new AppData();
		d.load(j.attrs || [], j.triples || []);
		for (const x of j.deletedAttrs || []) d.deletedAttrs.set(x.attr.id, x);
		return d;
	}
}

// ---------------------------------------------------------------------------
// transact

const STEP_OPS = ['add-triple', 'deep-merge-triple', 'retract-triple', 'delete-entity', 'rule-params',
	'add-attr', 'update-attr', 'delete-attr', 'restore-attr'];
const ENTITY_STEPS = new Set(['add-triple', 'deep-merge-triple', 'retract-triple', 'delete-entity']);

function checkSteps(steps) {
	if (!Array.isArray(steps)) throw specError(steps, [{ expected: 'coll?', in: [] }]);
	const errors = [];
	const invalidIds = [];
	steps.forEach((s, i) => {
		if (!Array.isArray(s) || s.length < 1) { errors.push({ expected: 'vector?', in: [i] }); return; }
		const op = s[0];
		if (!STEP_OPS.includes(op)) { errors.push({ expected: 'tx-step op', in: [i, 0] }); return; }
		if (ENTITY_STEPS.has(op)) {
			const e = s[1];
			const lookup = Array.isArray(e) && e.length === 2 && isUuid(e[0]);
			if (!isUuid(e) && !lookup) invalidIds.push([i, e]);
			if (op !== 'delete-entity' && (!isUuid(s[2]) || s.length < 4)) {
				errors.push({ expected: 'uuid?', in: [i, 2] });
			}
			if (op === 'delete-entity' && s[2] !== undefined && s[2] !== null && typeof s[2] !== 'string') {
				errors.push({ expected: 'string?', in: [i, 2] });
			}
			const opts = op === 'delete-entity' ? undefined : s[4];
			if (opts !== undefined && opts !== null && (typeof opts !== 'object' || Array.isArray(opts))) {
				errors.push({ expected: 'map?', in: [i, 4] });
			}
		} else if (op === 'add-attr' || op === 'update-attr') {
			if (!s[1] || typeof s[1] !== 'object' || !isUuid(s[1].id)) errors.push({ expected: 'attr map', in: [i, 1] });
		} else if (op === 'delete-attr' || op === 'restore-attr') {
			if (!isUuid(s[1])) errors.push({ expected: 'uuid?', in: [i, 1] });
		} else if (op === 'rule-params') {
			if (typeof s[2] !== 'string' || !s[3] || typeof s[3] !== 'object') errors.push({ expected: 'rule-params', in: [i] });
		}
	});
	if (invalidIds.length) {
		const [i, e] = invalidIds[0];
		throw validationError('tx-steps', steps,
			invalidIds.map(([, x]) => `Invalid entity ID '${typeof x === 'string' ? x : JSON.stringify(x)}'. Entity IDs must be UUIDs. Use id() or lookup() to generate a valid UUID.`),
			invalidIds.map(([j]) => [j, 1]));
	}
	if (errors.length) throw specError(steps, errors);
}

function checkAttrSpec(attr) {
	const f = attr['forward-identity'];
	const ok = Array.isArray(f) && f.length === 3 && isUuid(f[0]) && typeof f[1] === 'string' && f[1].trim() &&
		typeof f[2] === 'string' && f[2].trim() && ['blob', 'ref'].includes(attr['value-type']) &&
		['one', 'many'].includes(attr.cardinality) && typeof attr['unique?'] === 'boolean' &&
		typeof attr['index?'] === 'boolean';
	const r = attr['reverse-identity'];
	const revOk = attr['value-type'] !== 'ref' || (Array.isArray(r) && r.length === 3 && isUuid(r[0]) && r[1] && r[2]);
	if (!ok || !revOk) {
		throw specError(attr, [{ expected: 'attr spec', in: ['add-attr'] }]);
	}
}

const DATA_TYPE_CHECK = {
	string: (v) => typeof v === 'string',
	number: (v) => typeof v === 'number',
	boolean: (v) => typeof v === 'boolean',
	date: (v) => typeof v === 'number' || (typeof v === 'string' && !Number.isNaN(Date.parse(v))),
};
const jsonType = (v) => Array.isArray(v) ? 'json' : v === null ? 'null' : typeof v === 'object' ? 'json' : typeof v;

// Deep merge per server/resources/migrations/24_deep_merge_null.up.sql.
function deepMerge(old, patch) {
	if (!isPlainObject(old) || !isPlainObject(patch)) return patch;
	const out = { ...old };
	for (const [k, v] of Object.entries(patch)) {
		if (v === null) delete out[k];
		else if (isPlainObject(v) && isPlainObject(out[k])) out[k] = deepMerge(out[k], v);
		else out[k] = v;
	}
	return out;
}
const isPlainObject = (x) => x !== null && typeof x === 'object' && !Array.isArray(x);

// Applies tx-steps to `data` atomically; returns { data, attrsChanged, touched } or throws MockError
// (and then `data` is unchanged).
export function transact(data, steps, { admin = false, now = Date.now() } = {}) {
	checkSteps(steps);
	data.begin();
	try {
		const r = transactSteps(data, steps, { admin, now });
		data.commit();
		return r;
	} catch (e) {
		data.rollback();
		throw e;
	}
}

function transactSteps(data, steps, { admin, now }) {
	const data0 = data; // mode checks below run before any change
	let attrsChanged = false;
	const touched = new Set(); // attr ids whose triples changed

	// Group by op in first-appearance order (reorder-tx-steps).
	const order = [];
	const groups = new Map();
	for (const s of steps) {
		if (!groups.has(s[0])) { groups.set(s[0], []); order.push(s[0]); }
		groups.get(s[0]).push(s);
	}

	const getAttr = (aid) => {
		const a = data.attrs.get(aid);
		if (!a) {
			throw new MockError('sql-raise', `Raised Exception: We could not find an attribute with id = '${aid}'`,
				{ table: 'triples', condition: 'attribute-not-found', constraint: null });
		}
		return a;
	};

	const lookupHint = (a, v) => ({ 'attribute-id': a.id, namespace: fwdEtype(a), label: a['forward-identity'][2], value: v });

	// Resolves [attr-id, value] to an entity id; null when absent.
	const resolveLookup = (ref) => {
		const a = getAttr(ref[0]);
		if (!a['unique?']) {
			throw new MockError('sql-raise', 'Raised Exception: attribute is not unique',
				{ table: 'triples', condition: 'lookup', constraint: null });
		}
		if (a['forward-identity'][2] === 'id' && !isUuid(ref[1])) {
			throw validationError('tx-steps', steps,
				[`Invalid lookup '${JSON.stringify(ref)}'. The lookup attribute is '${fwdEtype(a)}.id', but the lookup value is not a valid UUID.`]);
		}
		return data.entitiesWith(a.id, ref[1])[0] ?? null;
	};

	// Entity position of add-triple/deep-merge: a lookup creates the entity when absent.
	const resolveEntityForWrite = (e, stepAttr) => {
		if (!Array.isArray(e)) return e;
		const found = resolveLookup(e);
		if (found) return found;
		const la = getAttr(e[0]);
		if (stepAttr.id === la.id && la['forward-identity'][2] !== 'id') {
			throw validationError('lookup', e, ['Updates with lookups can only update the lookup attribute if an entity with the unique attribute value already exists.']);
		}
		const eid = la['forward-identity'][2] === 'id' ? e[1] : newId();
		data.addRaw([eid, la.id, e[1], now]);
		touched.add(la.id);
		return eid;
	};

	const resolveValue = (attr, v) => {
		const isIdAttr = attr['forward-identity'][2] === 'id';
		if (Array.isArray(v) && v.length === 2 && isUuid(v[0]) && (isRef(attr) || isIdAttr)) {
			const la = getAttr(v[0]);
			if (isRef(attr) && fwdEtype(la) !== revEtype(attr)) {
				throw validationError('lookup', v, ['Invalid transaction. The namespace in the lookup attribute is different from the namespace of the attribute that is being set']);
			}
			const found = resolveLookup(v);
			if (!found) throw validationError('lookup', lookupHint(la, v[1]), ['The entity for the lookup does not exist.']);
			return found;
		}
		if (isRef(attr) && !isUuid(v)) throw validationError('eid', v, ['Expected link value to be a uuid.']);
		return v;
	};

	const checkSystemWrite = (attr) => {
		if (attr.catalog === 'system' && !admin && !NON_ADMIN_SYSTEM_WRITES.has(attr.id)) {
			throw validationError('tx-step', attr.id,
				[`${fwdEtype(attr)}.${attr['forward-identity'][2]} is a system column. You aren't allowed to change this directly.`]);
		}
	};

	// Mode checks run against the pre-transaction state.
	const createErr = [];
	const updateErr = [];
	for (const s of steps) {
		if (s[0] !== 'add-triple' && s[0] !== 'deep-merge-triple') continue;
		const mode = s[4]?.mode;
		if (mode !== 'create' && mode !== 'update') continue;
		// Attrs added by this same transaction count too.
		const added = steps.find((x) => x[0] === 'add-attr' && x[1]?.id === s[2]);
		const attr = data.attrs.get(s[2]) || (added && Array.isArray(added[1]['forward-identity']) ? added[1] : null);
		if (!attr) continue;
		const etype = fwdEtype(attr);
		let eid = s[1];
		if (Array.isArray(eid)) eid = resolveLookup(eid);
		const exists = eid != null && data0.entityExistsAs(eid, etype);
		if (etype === '$users' && mode === 'create' && !admin && !exists) {
			throw validationError('tx-step', s, ["$users is a system entity. You aren't allowed to create this directly."]);
		}
		if (mode === 'create' && exists && !createErr.includes(eid)) createErr.push(eid);
		if (mode === 'update' && !exists && !updateErr.includes(eid ?? s[1])) updateErr.push(eid ?? s[1]);
	}
	if (createErr.length) throw validationError('tx-step', steps, [`Creating entities that exist: ${createErr.join(', ')}`]);
	if (updateErr.length) throw validationError('tx-step', steps, [`Updating entities that don't exist: ${updateErr.map((x) => typeof x === 'string' ? x : JSON.stringify(x)).join(', ')}`]);

	const deleteEntity = (eid, etype) => {
		for (const [a, attr] of data.attrs) {
			if (fwdEtype(attr) === etype && data.eav.get(eid)?.has(a)) { data.removeEA(eid, a); touched.add(a); }
		}
		for (const [a, attr] of data.attrs) {
			if (!isRef(attr) || revEtype(attr) !== etype) continue;
			for (const src of data.entitiesWith(a, eid)) { data.removeRaw(src, a, eid); touched.add(a); }
		}
	};

	// Expands delete-entity steps with on-delete cascades (recursively, as appended steps).
	const expandDeletes = (dsteps) => {
		const queue = [];
		for (const s of dsteps) {
			let eid = s[1];
			if (Array.isArray(eid)) {
				eid = resolveLookup(eid);
				if (!eid) continue; // unresolved lookups are dropped silently
			}
			let etypes = s[2] ? [s[2]] : [];
			if (!etypes.length) {
				const set = new Set();
				for (const a of data.eav.get(eid)?.keys() ?? []) { const at = data.attrs.get(a); if (at) set.add(fwdEtype(at)); }
				etypes = [...set];
			}
			for (const et of etypes) queue.push([eid, et]);
		}
		const seen = new Set();
		const out = [];
		while (queue.length) {
			const [eid, et] = queue.shift();
			const k = eid + ' ' + et;
			if (seen.has(k)) continue;
			seen.add(k);
			if (et.startsWith('$') && et !== '$files' && !admin) {
				throw validationError('tx-step', [eid, et], [`${et} is a system entity. You aren't allowed to delete this directly.`]);
			}
			out.push([eid, et]);
			for (const attr of data.attrs.values()) {
				if (!isRef(attr)) continue;
				// on-delete: deleting the target deletes the sources that link to it.
				if (attr['on-delete'] === 'cascade' && revEtype(attr) === et) {
					for (const src of data.entitiesWith(attr.id, eid)) queue.push([src, fwdEtype(attr)]);
				}
				// on-delete-reverse: deleting the source deletes its targets.
				if (attr['on-delete-reverse'] === 'cascade' && fwdEtype(attr) === et) {
					for (const t of data.triplesEA(eid, attr.id)) queue.push([t[2], revEtype(attr)]);
				}
			}
		}
		return out;
	};

	const checkAddAttr = (raw) => {
		checkAttrSpec(raw);
		const attr = normalizeAttr(raw);
		const [_, etype, label] = attr['forward-identity'];
		const existing = data.attrs.get(attr.id);
		if (existing) {
			if (canon(normalizeAttr(existing, existing.catalog)) === canon({ ...attr, catalog: existing.catalog, 'inferred-types': existing['inferred-types'] ?? null })) return null;
			throw new MockError('sql-raise', `Raised Exception: The attribute with id ${attr.id} conflicts with an existing attribute with id ${attr.id}.`,
				{ table: 'attrs', condition: 'conflict', constraint: null });
		}
		if (etype.startsWith('$') && !ALLOWED_SYSTEM_ETYPES.has(etype)) {
			throw validationError('attributes', raw, [`$ is reserved for system tables. You can't create ${etype}`]);
		}
		const same = data.attrByIdent(etype, label);
		if (same) {
			if (same.catalog === 'system') throw validationError('attributes', raw, [`${etype}.${label} is a system column and it already exists.`]);
			throw new MockError('record-not-unique', `\`${label}\` already exists on \`${etype}\``,
				{ 'record-type': 'ident', etype, label });
		}
		if (attr['required?']) {
			for (const e of data.eav.keys()) if (data.entityExistsAs(e, etype)) {
				throw validationError('attributes', raw, [`Can't create attribute \`${label}\` as required because \`${etype}\` already have entities`]);
			}
		}
		return attr;
	};

	const requireAdmin = (op) => {
		if (!admin) {
			throw new MockError('permission-denied', 'Permission denied: not perms-pass?',
				{ input: ['attrs', op], expected: 'perms-pass?' });
		}
	};

	for (const op of order) {
		const group = groups.get(op);
		if (op === 'add-attr') {
			for (const [, raw] of group) {
				const attr = checkAddAttr(raw);
				if (attr) { data.setAttr(attr.id, attr); attrsChanged = true; }
			}
		} else if (op === 'update-attr') {
			requireAdmin('update');
			for (const [, raw] of group) {
				const old = getAttr(raw.id);
				const upd = { ...old, ...normalizeAttr({ ...old, ...raw }, old.catalog) };
				// Quirk kept: on-delete flags are overwritten with what was sent.
				if (!('on-delete' in raw)) delete upd['on-delete'];
				if (!('on-delete-reverse' in raw)) delete upd['on-delete-reverse'];
				data.setAttr(raw.id, upd);
				attrsChanged = true;
			}
		} else if (op === 'delete-attr') {
			requireAdmin('delete');
			for (const [, aid] of group) {
				const attr = getAttr(aid);
				const trs = [];
				for (const es of [...(data.av.get(aid)?.values() ?? [])]) {
					for (const e of [...es]) for (const t of data.triplesEA(e, aid)) { trs.push(t); data.removeRaw(t[0], t[1], t[2]); }
				}
				data.deleteAttr(aid);
				data.setDeleted(aid, { attr, triples: trs });
				touched.add(aid);
				attrsChanged = true;
			}
		} else if (op === 'restore-attr') {
			requireAdmin('restore');
			for (const [, aid] of group) {
				const d = data.deletedAttrs.get(aid);
				if (!d) continue;
				data.setAttr(aid, d.attr);
				for (const t of d.triples) data.addRaw(t);
				data.setDeleted(aid, null);
				touched.add(aid);
				attrsChanged = true;
			}
		} else if (op === 'add-triple' || op === 'deep-merge-triple') {
			for (const s of group) {
				const attr = getAttr(s[2]);
				checkSystemWrite(attr);
				if (op === 'deep-merge-triple' && isRef(attr)) {
					throw new MockError('sql-raise', 'Raised Exception: merge operation is not supported for links',
						{ table: 'triples', condition: 'merge', constraint: null });
				}
				const eid = resolveEntityForWrite(s[1], attr);
				let v = resolveValue(attr, s[3]);
				const old = data.triplesEA(eid, attr.id);
				if (op === 'deep-merge-triple') v = old.length ? deepMerge(old[0][2], v) : v;
				const cdt = attr['checked-data-type'];
				if (cdt && v !== null && DATA_TYPE_CHECK[cdt] && !DATA_TYPE_CHECK[cdt](v)) {
					const [, et, label] = attr['forward-identity'];
					throw new MockError('validation-failed',
						`Invalid value type for ${et}.${label}. Value must be a ${cdt} but the provided value type is ${jsonType(v)}.`,
						{ namespace: et, attribute: label, value: v, 'checked-data-type': cdt, 'attr-id': attr.id, 'entity-id': eid });
				}
				if (attr['unique?'] && v !== null) {
					const others = data.entitiesWith(attr.id, v).filter((x) => x !== eid);
					if (others.length) {
						const [, et, label] = attr['forward-identity'];
						throw new MockError('record-not-unique',
							`\`${label}\` is a unique attribute on \`${et}\` and an entity already exists with \`${et}.${label}\` = ${typeof v === 'string' ? v : JSON.stringify(v)}`,
							{ 'record-type': 'triple', 'attr-id': attr.id, etype: et, label, value: v });
					}
				}
				if (attr.cardinality === 'one' || !isRef(attr)) {
					const same = old.find((t) => canon(t[2]) === canon(v));
					if (same && old.length === 1) continue; // no-op update
					const createdAt = old.length ? old[0][3] : now;
					data.removeEA(eid, attr.id);
					data.addRaw([eid, attr.id, v, createdAt]);
				} else {
					if (old.some((t) => canon(t[2]) === canon(v))) continue;
					data.addRaw([eid, attr.id, v, now]);
				}
				touched.add(attr.id);
			}
		} else if (op === 'retract-triple') {
			for (const s of group) {
				const attr = getAttr(s[2]);
				checkSystemWrite(attr);
				let eid = s[1];
				if (Array.isArray(eid)) eid = resolveLookup(eid);
				if (!eid) continue;
				let v = s[3];
				if (Array.isArray(v) && v.length === 2 && isUuid(v[0]) && isRef(attr)) v = resolveLookup(v);
				if (v == null && s[3] != null) continue;
				if (data.removeRaw(eid, attr.id, v)) touched.add(attr.id);
			}
		} else if (op === 'delete-entity') {
			for (const [eid, et] of expandDeletes(group)) deleteEntity(eid, et);
		}
		// rule-params writes nothing.
	}
	return { data, attrsChanged, touched };
}
