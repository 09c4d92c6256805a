// Mock Instant server: evaluates an InstaQL query against an app's triples and returns the triples
// the real server would send (protocol.md section 4.4), flattened into one join row.
// Which entities match a `where` is decided by @instantdb/core's own instaql on a store of all triples.
import { importDep } from '../lib/deps.mjs';
import { canon, validationError } from './store.mjs';

const instaql = (await importDep('@instantdb/core/dist/esm/instaql.js'));
const s = await importDep('@instantdb/core/dist/esm/store.js');
const runInstaql = instaql.default;
const compareOrder = instaql.compareOrder;

const OPTION_KEYS = new Set(['where', 'order', 'limit', 'first', 'last', 'offset', 'before', 'after',
	'beforeInclusive', 'afterInclusive', 'fields', 'aggregate']);
const TOP_ONLY = ['offset', 'before', 'after'];
const PAGINATING = ['limit', 'first', 'last', 'offset', 'before', 'after', 'order'];
const isObj = (x) => x !== null && typeof x === 'object' && !Array.isArray(x);

// The client-side store of all triples, built once per attrs version and then kept up to date
// from the data's change log.
function libFor(data) {
	const lib = data._lib;
	if (lib) {
		if (lib.version !== data.version) {
			for (const [op, t] of data.libLog) {
				if (op === '+') s.addTriple(lib.store, lib.attrsStore, t);
				else s.retractTriple(lib.store, lib.attrsStore, t);
			}
			data.libLog = [];
			lib.memo.clear();
			lib.version = data.version;
		}
		return lib;
	}
	const attrs = {};
	for (const a of data.attrs.values()) attrs[a.id] = a;
	const attrsStore = new s.AttrsStoreClass(attrs, null);
	const store = s.createStore(attrsStore, [...data.allTriples()], false, false);
	data._lib = { attrsStore, store, memo: new Map(), version: data.version };
	data.libLog = [];
	return data._lib;
}

// Attr ids a query's result can depend on: every attr touching an etype the query reaches.
export function queryDeps(data, q) {
	const etypes = new Set();
	const walkWhere = (etype, where) => {
		for (const [k, v] of Object.entries(where || {})) {
			if ((k === 'or' || k === 'and') && Array.isArray(v)) { for (const w of v) if (isObj(w)) walkWhere(etype, w); continue; }
			let et = etype;
			for (const label of k.split('.')) {
				const l = linkAttr(data, et, label);
				if (!l || l.attr['value-type'] !== 'ref') break;
				et = l.forward ? l.attr['reverse-identity'][1] : l.attr['forward-identity'][1];
				etypes.add(et);
			}
		}
	};
	const walk = (etype, form) => {
		etypes.add(etype);
		if (!isObj(form)) return;
		if (isObj(form.$?.where)) walkWhere(etype, form.$.where);
		for (const [label, child] of Object.entries(form)) {
			if (label === '$') continue;
			const l = linkAttr(data, etype, label);
			if (!l || l.attr['value-type'] !== 'ref') continue;
			walk(l.forward ? l.attr['reverse-identity'][1] : l.attr['forward-identity'][1], child);
		}
	};
	if (isObj(q)) for (const [k, form] of Object.entries(q)) if (k !== '$$ruleParams') walk(k, form);
	const deps = new Set();
	for (const a of data.attrs.values()) {
		if (etypes.has(a['forward-identity'][1]) || etypes.has(a['reverse-identity']?.[1])) deps.add(a.id);
	}
	return deps;
}

function mix(n, seed) {
	let h = Math.imul(n ^ seed, 0x45d9f3b);
	h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
	return (h ^ (h >>> 16)) >>> 0;
}

// Ids of every `etype` entity (with an id triple) matching `where`, as the JS client computes it.
function matchIds(data, etype, where) {
	if (!where || !Object.keys(where).length) {
		// Every entity with an id triple (what the client's default where matches), without
		// building the client store.
		const idAttr = data.idAttr(etype);
		if (!idAttr) return [];
		const out = [];
		for (const es of data.av.get(idAttr.id)?.values() ?? []) for (const e of es) out.push(e);
		return out;
	}
	const lib = libFor(data);
	const key = canon([etype, where ?? null]);
	let ids = lib.memo.get(key);
	if (ids) return ids;
	const form = where ? { $: { where } } : {};
	const res = runInstaql({ store: lib.store, attrsStore: lib.attrsStore }, { [etype]: form });
	ids = (res.data[etype] || []).map((o) => o.id).filter((x) => x !== undefined);
	ids = [...new Set(ids)];
	lib.memo.set(key, ids);
	return ids;
}

function validateForm(q, form, level, path) {
	if (!isObj(form)) {
		throw validationError('query', q, [`Expected a map at ${JSON.stringify(path)}`], [path]);
	}
	for (const [k, v] of Object.entries(form)) {
		if (k === '$') {
			if (!isObj(v)) throw validationError('query', q, ['Expected a map for `$`'], [[...path, '$']]);
			for (const ok of Object.keys(v)) {
				if (!OPTION_KEYS.has(ok)) {
					throw validationError('query', q, ['We only support `where`, `order`, `limit`, `offset`, `before`, and `after` clauses.'], [[...path, '$', ok]]);
				}
				if (level > 0 && TOP_ONLY.includes(ok)) {
					throw validationError('query', q, [`\`${ok}\` is only supported for top-level namespaces.`], [[...path, '$', ok]]);
				}
			}
			if (v.where !== undefined && !isObj(v.where)) throw validationError('query', q, ['`where` must be a map.'], [[...path, '$', 'where']]);
			if (isObj(v.where)) validateWhere(q, v.where, [...path, '$', 'where']);
		} else {
			validateForm(q, v, level + 1, [...path, k]);
		}
	}
}

function validateWhere(q, where, path) {
	for (const [k, v] of Object.entries(where)) {
		if (k === 'or' || k === 'and') {
			if (!Array.isArray(v) || !v.every(isObj)) throw validationError('query', q, [`\`${k}\` must be a list of where clauses.`], [[...path, k]]);
			v.forEach((w, i) => validateWhere(q, w, [...path, k, i]));
			continue;
		}
		if (!k || k.split('.').some((x) => !x)) throw validationError('query', q, [`Invalid where path \`${k}\`.`], [[...path, k]]);
		if (!isObj(v)) continue;
		const bad = (msg) => { throw validationError('query', q, [msg], [[...path, k]]); };
		if ('$in' in v && !Array.isArray(v.$in)) bad('`$in` expects a list of values.');
		if ('in' in v && !Array.isArray(v.in)) bad('`in` expects a list of values.');
		if ('$isNull' in v && typeof v.$isNull !== 'boolean') bad('`$isNull` expects a boolean.');
		for (const op of ['$like', '$ilike']) if (op in v && typeof v[op] !== 'string') bad(`\`${op}\` expects a string.`);
	}
}

export function validateQuery(q, { admin = false } = {}) {
	if (q === null || q === undefined) throw validationError('add-query', q, ['Query can not be null.']);
	if (!isObj(q)) throw validationError('query', q, ['Query must be a map.']);
	for (const [k, form] of Object.entries(q)) {
		if (k === '$$ruleParams') continue;
		validateForm(q, form, 0, [k]);
		if (form.$?.aggregate !== undefined && !admin) {
			throw validationError('query', q, ['Aggregates are currently only available for admin queries.']);
		}
	}
}

function linkAttr(data, etype, label) {
	const fwd = data.attrByIdent(etype, label);
	if (fwd) return { attr: fwd, forward: true };
	const rev = data.attrByRevIdent(etype, label);
	if (rev) return { attr: rev, forward: false };
	return null;
}

// [{triple, other}] links from entity e along label.
function links(data, etype, e, label) {
	const l = linkAttr(data, etype, label);
	if (!l || l.attr['value-type'] !== 'ref') return { next: null, items: [] };
	const a = l.attr;
	if (l.forward) {
		return { next: a['reverse-identity'][1], items: data.triplesEA(e, a.id).map((t) => ({ triple: t, other: t[2] })) };
	}
	const items = [];
	for (const src of data.entitiesWith(a.id, e)) {
		for (const t of data.triplesEA(src, a.id)) if (t[2] === e) items.push({ triple: t, other: src });
	}
	return { next: a['forward-identity'][1], items };
}

function likeRe(p, ci) {
	const esc = p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/%/g, '.*').replace(/_/g, '.');
	return new RegExp(`^${esc}$`, ci ? 'is' : 's');
}

// Whether value x satisfies a where condition; `null` means "include regardless" (negations, nulls).
function condMatches(x, c) {
	if (!isObj(c)) return canon(x) === canon(c);
	if ('$not' in c || '$ne' in c || '$isNull' in c) return null;
	if ('$in' in c || 'in' in c) return (c.$in ?? c.in ?? []).some((y) => canon(y) === canon(x));
	if ('$gt' in c) return x > c.$gt;
	if ('$gte' in c) return x >= c.$gte;
	if ('$lt' in c) return x < c.$lt;
	if ('$lte' in c) return x <= c.$lte;
	if ('$like' in c) return typeof x === 'string' && typeof c.$like === 'string' && likeRe(c.$like, false).test(x);
	if ('$ilike' in c) return typeof x === 'string' && typeof c.$ilike === 'string' && likeRe(c.$ilike, true).test(x);
	return canon(x) === canon(c);
}

// Triples along a where path from entity e (ref chain plus the leaf value), for matching chains.
function wherePath(data, etype, e, path, cond) {
	if (path.length === 1) {
		const l = linkAttr(data, etype, path[0]);
		if (!l) return [];
		let trs;
		if (l.forward) trs = data.triplesEA(e, l.attr.id);
		else trs = data.entitiesWith(l.attr.id, e).flatMap((src) => data.triplesEA(src, l.attr.id).filter((t) => t[2] === e));
		return trs.filter((t) => {
			const m = condMatches(l.forward ? t[2] : t[0], cond);
			return m === null || m;
		});
	}
	const { next, items } = links(data, etype, e, path[0]);
	const out = [];
	for (const { triple, other } of items) {
		const sub = wherePath(data, next, other, path.slice(1), cond);
		if (sub.length || condMatches(undefined, cond) === null) out.push(triple, ...sub);
	}
	return out;
}

function whereTriples(data, etype, e, where, out) {
	for (const [k, v] of Object.entries(where)) {
		if ((k === 'or' || k === 'and') && Array.isArray(v)) {
			for (const w of v) if (isObj(w)) whereTriples(data, etype, e, w, out);
			continue;
		}
		if (k === '$entityIdStartsWith') continue;
		for (const t of wherePath(data, etype, e, k.split('.'), v)) out(t);
	}
}

function entityTriples(data, etype, e, fields, out) {
	const am = data.eav.get(e);
	if (!am) return;
	const wanted = Array.isArray(fields) ? new Set([...fields, 'id']) : null;
	for (const [aid, vm] of am) {
		const a = data.attrs.get(aid);
		if (!a || a.cardinality !== 'one' || a['forward-identity'][1] !== etype) continue;
		if (wanted && !wanted.has(a['forward-identity'][2])) continue;
		for (const t of vm.values()) out(t);
	}
}

function emitEntity(data, etype, e, form, out) {
	entityTriples(data, etype, e, form.$?.fields, out);
	if (isObj(form.$?.where)) whereTriples(data, etype, e, form.$.where, out);
	for (const [label, child] of Object.entries(form)) {
		if (label === '$') continue;
		const { next, items } = links(data, etype, e, label);
		if (!next) continue;
		const allowed = isObj(child.$?.where) ? new Set(matchIds(data, next, child.$.where)) : null;
		for (const { triple, other } of items) {
			if (allowed && !allowed.has(other)) continue;
			out(triple);
			emitEntity(data, next, other, child, out);
		}
	}
}

const comparableDate = (x) => (x == null ? x : new Date(x).getTime());

// Orders, cuts and describes one page of a top-level form (page-info-of-form).
function paginate(data, etype, form, ids, out) {
	const opts = form.$ || {};
	const order = opts.order || {};
	const label = Object.keys(order)[0] || 'serverCreatedAt';
	const dir = order[label] === 'desc' ? 'desc' : 'asc';
	const idAttr = data.idAttr(etype);
	let orderAttr = idAttr;
	if (label !== 'serverCreatedAt') {
		orderAttr = data.attrByIdent(etype, label);
		if (!orderAttr || !orderAttr['index?'] || !orderAttr['checked-data-type'] || orderAttr.cardinality !== 'one') {
			throw validationError('query', { [etype]: form },
				[`The \`${etype}.${label}\` attribute is not indexed. Only indexed and typed attributes can be used to order by.`]);
		}
	}
	if (!idAttr) return { ids: [], pageInfo: null };
	const isDate = orderAttr['checked-data-type'] === 'date';
	const dataType = orderAttr === idAttr ? null : orderAttr['checked-data-type'];
	const vecs = ids.map((e) => {
		const idT = data.triplesEA(e, idAttr.id)[0];
		let cursor, v;
		if (orderAttr === idAttr) { cursor = idT; v = idT?.[3]; }
		else {
			const t = data.triplesEA(e, orderAttr.id)[0];
			cursor = t || [e, orderAttr.id, null, idT?.[3] ?? 0];
			v = isDate ? comparableDate(t?.[2]) : t?.[2];
		}
		return { e, v, cursor };
	});
	const cmp = (a, b) => compareOrder(a.e, a.v, b.e, b.v, dataType);
	vecs.sort(dir === 'asc' ? cmp : (a, b) => cmp(b, a));
	const vsCursor = (x, c) => {
		const cv = orderAttr === idAttr ? c[3] : (isDate ? comparableDate(c[2]) : c[2]);
		const r = compareOrder(x.e, x.v, c[0], cv, dataType);
		return dir === 'asc' ? r : -r;
	};
	let page = vecs;
	if (Array.isArray(opts.after)) page = page.filter((x) => (opts.afterInclusive ? vsCursor(x, opts.after) >= 0 : vsCursor(x, opts.after) > 0));
	if (Array.isArray(opts.before)) page = page.filter((x) => (opts.beforeInclusive ? vsCursor(x, opts.before) <= 0 : vsCursor(x, opts.before) < 0));
	if (Number.isInteger(opts.offset) && opts.offset > 0) page = page.slice(opts.offset);
	const n = opts.limit ?? opts.first;
	if (Number.isInteger(n) && n >= 0) page = page.slice(0, n);
	else if (Number.isInteger(opts.last) && opts.last >= 0) page = page.slice(Math.max(0, page.length - opts.last));
	for (const x of page) if (x.cursor && x.cursor[2] !== null) out(x.cursor);
	const first = page[0];
	const last = page[page.length - 1];
	const pageInfo = {
		'start-cursor': first ? first.cursor : null,
		'end-cursor': last ? last.cursor : null,
		'has-next-page?': last ? vecs.indexOf(last) < vecs.length - 1 : false,
		'has-previous-page?': first ? vecs.indexOf(first) > 0 : false,
	};
	return { ids: page.map((x) => x.e), pageInfo };
}

// Returns { result, hash } where result is the wire `result` array of add-query-ok.
export function evalQuery(data, q, { admin = false } = {}) {
	validateQuery(q, { admin });
	const triples = new Set(); // stored triple objects are unique per (e, a, v)
	const out = (t) => { triples.add(t); };
	const pageInfo = {};
	const aggregate = {};
	for (const [etype, form] of Object.entries(q)) {
		if (etype === '$$ruleParams') continue;
		let ids = matchIds(data, etype, form.$?.where);
		if (form.$?.aggregate !== undefined) {
			aggregate[etype] = { count: ids.length };
			continue;
		}
		if (PAGINATING.some((k) => form.$?.[k] !== undefined)) {
			const p = paginate(data, etype, form, ids, out);
			ids = p.ids;
			if (p.pageInfo) pageInfo[etype] = p.pageInfo;
		}
		for (const e of ids) emitEntity(data, etype, e, form, out);
	}
	const rows = [...triples.values()];
	const d = { 'datalog-result': { 'join-rows': [rows] } };
	if (Object.keys(pageInfo).length) d['page-info'] = pageInfo;
	if (Object.keys(aggregate).length) d.aggregate = aggregate;
	const result = [{ data: d, 'child-nodes': [] }];
	// Order-independent hash of the triple set (with created_at), plus page-info and aggregate.
	let h1 = 0;
	let h2 = 0;
	for (const t of triples) {
		h1 = (h1 + mix(t.serial, 0x9e3779b9)) >>> 0;
		h2 = (h2 ^ mix(t.serial, 0x85ebca6b)) >>> 0;
	}
	const hash = `${triples.size}:${h1}:${h2}:${canon([pageInfo, aggregate])}`;
	const ents = new Set();
	for (const t of triples) ents.add(t[0]);
	return { result, hash, ents };
}

// The attrs among `deps` that only fill the objects of entities a result already holds: not a
// link, not an id, and not named by any where or order of the query (labels matched on every
// etype, to stay on the safe side). A change to one of them on an entity outside the last
// result cannot change the result, which lets a commit skip the recompute (the real server's
// topics are at least this precise).
export function queryFillAttrs(data, q, deps) {
	const labels = new Set();
	const walk = (form) => {
		if (!isObj(form)) return;
		const where = (w) => {
			for (const [k, v] of Object.entries(w || {})) {
				if ((k === 'or' || k === 'and') && Array.isArray(v)) { for (const x of v) if (isObj(x)) where(x); continue; }
				for (const l of k.split('.')) labels.add(l);
			}
		};
		if (isObj(form.$?.where)) where(form.$.where);
		if (isObj(form.$?.order)) for (const k of Object.keys(form.$.order)) labels.add(k);
		for (const [k, child] of Object.entries(form)) if (k !== '$') walk(child);
	};
	if (isObj(q)) for (const [k, form] of Object.entries(q)) if (k !== '$$ruleParams') walk(form);
	const fill = new Set();
	for (const id of deps) {
		const a = data.attrs.get(id);
		const label = a?.['forward-identity']?.[2];
		if (!a || a['value-type'] === 'ref' || label === 'id' || a['primary?'] || labels.has(label)) continue;
		fill.add(id);
	}
	return fill;
}

