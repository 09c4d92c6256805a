// Seeded generator of queries and pending mutations over a data set's attrs
// and values, for the engine's differential test.

export function rng(seed) {
  // mulberry32
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    chance: (p) => next() < p,
    uuid: () => {
      const h = [];
      for (let i = 0; i < 32; i++) h.push(Math.floor(next() * 16).toString(16));
      h[12] = '4';
      h[16] = '89ab'[Math.floor(next() * 4)];
      const s = h.join('');
      return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
    },
  };
}

// What the generator knows about a data set: etypes, their blob labels with
// sample values, links, entity ids and link rows.
export function describe(set) {
  const attrs = Array.isArray(set.attrs) ? set.attrs : Object.values(set.attrs);
  const byId = new Map(attrs.map((a) => [a.id, a]));
  const et = {};
  const E = (n) => (et[n] ??= { name: n, blobs: {}, links: [], ids: [], idAttr: null });
  for (const a of attrs) {
    const [, e, l] = a['forward-identity'];
    if (a['value-type'] === 'blob') {
      E(e).blobs[l] = { attr: a, values: [] };
      if (l === 'id') E(e).idAttr = a;
    } else {
      const [, re, rl] = a['reverse-identity'];
      E(e).links.push({ label: l, target: re, attr: a, forward: true });
      E(re).links.push({ label: rl, target: e, attr: a, forward: false });
    }
  }
  const refRows = new Map();
  for (const t of set.triples) {
    const a = byId.get(t[1]);
    if (!a) continue;
    const [, e, l] = a['forward-identity'];
    if (a['value-type'] === 'blob') {
      E(e).blobs[l].values.push(t[2]);
      if (l === 'id') E(e).ids.push(t[0]);
    } else {
      if (!refRows.has(a.id)) refRows.set(a.id, []);
      refRows.get(a.id).push([t[0], t[2]]);
    }
  }
  for (const e of Object.values(et)) {
    for (const b of Object.values(e.blobs)) {
      const types = new Set(b.values.filter((v) => v !== null).map((v) => typeof v));
      b.type = types.size === 1 ? [...types][0] : types.size === 0 ? 'none' : 'mixed';
    }
  }
  const queryable = Object.values(et).filter((e) => e.idAttr && e.ids.length);
  return { et, byId, refRows, queryable, attrs };
}

function likeOf(r, s) {
  if (typeof s !== 'string' || s.length < 2) return '%';
  const k = r.int(4);
  const i = r.int(s.length - 1) + 1;
  if (k === 0) return s.slice(0, i) + '%';
  if (k === 1) return '%' + s.slice(i);
  if (k === 2) return '%' + s.slice(1, Math.min(s.length, i + 2)) + '%';
  return s.slice(0, i - 1) + '_' + s.slice(i) ;
}

function caseFlip(r, s) {
  return [...s].map((c) => (r.chance(0.5) ? c.toUpperCase() : c.toLowerCase())).join('');
}

// One where clause on etype e: [key, value].
function genClause(r, D, e, depth) {
  const ent = D.et[e];
  const blobs = Object.entries(ent.blobs).filter(([, b]) => b.values.length);
  const kind = r.int(depth > 1 ? 9 : 11);
  if ((kind >= 9 || !blobs.length) && ent.links.length) {
    // a dotted path through a link
    const l = r.pick(ent.links);
    const t = D.et[l.target];
    if (t && (Object.keys(t.blobs).length || t.links.length) && depth < 3) {
      const [k, v] = genClause(r, D, l.target, depth + 1);
      if (k !== 'or' && k !== 'and') return [`${l.label}.${k}`, v];
    }
  }
  if (!blobs.length) return ent.ids.length ? ['id', r.pick(ent.ids)] : ['id', { $isNull: false }];
  const [label, b] = r.pick(blobs);
  const v = () => (r.chance(0.1) ? (b.type === 'number' ? 123456 : 'zzz-none') : r.pick(b.values));
  switch (kind) {
    case 0: case 1: return [label, v()];
    case 2: return [label, { $in: [v(), v(), ...(r.chance(0.3) ? [v()] : [])] }];
    case 3: return [label, r.chance(0.5) ? { $not: v() } : { $ne: v() }];
    case 4: return [label, { $isNull: r.chance(0.5) }];
    case 5: case 6: {
      if (b.type !== 'number' && b.type !== 'string') return [label, v()];
      return [label, { [r.pick(['$gt', '$gte', '$lt', '$lte'])]: v() }];
    }
    case 7: {
      const s = r.pick(b.values);
      if (typeof s !== 'string') return [label, v()];
      return [label, r.chance(0.5) ? { $like: likeOf(r, s) } : { $ilike: caseFlip(r, likeOf(r, s)) }];
    }
    case 8: {
      const sub = () => Object.fromEntries([genClause(r, D, e, depth + 1)]);
      return [r.chance(0.5) ? 'or' : 'and', [sub(), sub(), ...(r.chance(0.3) ? [sub()] : [])]];
    }
    default:
      return [label, v()];
  }
}

function genWhere(r, D, e) {
  const where = {};
  const n = 1 + r.int(r.chance(0.3) ? 3 : 1);
  for (let i = 0; i < n; i++) {
    const [k, v] = genClause(r, D, e, 0);
    if (!(k in where)) where[k] = v;
  }
  return where;
}

function genForm(r, D, e, depth) {
  const ent = D.et[e];
  const form = {};
  const $ = {};
  if (r.chance(depth ? 0.25 : 0.55)) $.where = genWhere(r, D, e);
  if (r.chance(0.35)) {
    const sortable = Object.entries(ent.blobs).filter(([l, b]) => l !== 'id' && (b.type === 'number' || b.type === 'string' || (b.type === 'mixed' && ent.ids.length < 64 && !$.where)));
    const key = sortable.length && r.chance(0.7) ? r.pick(sortable)[0] : 'serverCreatedAt';
    $.order = { [key]: r.pick(['asc', 'desc']) };
  }
  if (r.chance(0.3)) $[r.pick(['limit', 'limit', 'first', 'last'])] = 1 + r.int(depth ? 3 : 8);
  if (r.chance(0.2)) {
    const labels = Object.keys(ent.blobs);
    $.fields = labels.filter(() => r.chance(0.4));
  }
  if (Object.keys($).length) form.$ = $;
  if (depth < 3) {
    const links = ent.links.filter((l) => D.et[l.target]?.idAttr);
    const n = r.chance(depth ? 0.3 : 0.6) ? 1 + r.int(2) : 0;
    for (let i = 0; i < n && links.length; i++) {
      const l = r.pick(links);
      form[l.label] = genForm(r, D, l.target, depth + 1);
    }
  }
  return form;
}

export function genQuery(r, D) {
  const q = {};
  const n = r.chance(0.2) ? 2 : 1;
  for (let i = 0; i < n; i++) {
    const e = r.pick(D.queryable).name;
    q[e] = genForm(r, D, e, 0);
  }
  return q;
}

// Pending mutations: a list of {steps, tx-id?}, each a few tx-steps in the
// shapes InstaML produces (and some raw ones).
export function genMutations(r, D, state) {
  const muts = [];
  const n = 1 + r.int(4);
  const newIds = state.newIds;
  const ents = D.queryable;
  for (let m = 0; m < n; m++) {
    const steps = [];
    const k = 1 + r.int(3);
    for (let i = 0; i < k; i++) {
      const ent = r.pick(ents);
      const idA = ent.idAttr.id;
      const blobs = Object.entries(ent.blobs).filter(([l]) => l !== 'id');
      const existing = r.pick(ent.ids);
      const anyId = newIds[ent.name]?.length && r.chance(0.4) ? r.pick(newIds[ent.name]) : existing;
      // values of the attr's own type, so orderings stay consistent
      const val = (b) => {
        if (r.chance(0.5) && b.values.length) return r.pick(b.values);
        if (r.chance(0.1)) return null;
        return b.type === 'number' ? r.int(2000) : b.type === 'boolean' ? r.chance(0.5) : `v${r.int(1000)}`;
      };
      switch (r.int(13)) {
        case 0: case 1: { // update
          const mode = r.pick([{ mode: 'update' }, undefined, undefined]);
          steps.push(['add-triple', anyId, idA, anyId, ...(mode ? [mode] : [])]);
          for (const [, b] of blobs.filter(() => r.chance(0.5)))
            steps.push(['add-triple', anyId, b.attr.id, val(b), ...(mode ? [mode] : [])]);
          break;
        }
        case 2: case 3: { // create
          const id = r.uuid();
          (newIds[ent.name] ??= []).push(id);
          const mode = r.chance(0.7) ? [{ mode: 'create' }] : [];
          steps.push(['add-triple', id, idA, id, ...mode]);
          for (const [, b] of blobs.filter(() => r.chance(0.6)))
            steps.push(['add-triple', id, b.attr.id, val(b), ...mode]);
          break;
        }
        case 4: { // create on an existing entity: dropped; update on a new one: dropped
          const id = r.uuid();
          if (r.chance(0.5)) steps.push(['add-triple', existing, idA, existing, { mode: 'create' }]);
          else steps.push(['add-triple', id, idA, id, { mode: 'update' }]);
          break;
        }
        case 5: { // delete
          steps.push(['delete-entity', anyId, ...(r.chance(0.9) ? [ent.name] : [])]);
          break;
        }
        case 6: case 7: { // link
          const l = r.pick(ent.links.length ? ent.links : [null]);
          if (!l || !D.et[l.target]?.ids.length) break;
          const other = newIds[l.target]?.length && r.chance(0.4) ? r.pick(newIds[l.target]) : r.pick(D.et[l.target].ids);
          steps.push(l.forward ? ['add-triple', anyId, l.attr.id, other] : ['add-triple', other, l.attr.id, anyId]);
          break;
        }
        case 8: { // unlink an existing link
          const l = r.pick(ent.links.length ? ent.links : [null]);
          const rows = l && D.refRows.get(l.attr.id);
          if (!rows?.length) break;
          const [src, dst] = r.pick(rows);
          steps.push(['retract-triple', src, l.attr.id, dst]);
          break;
        }
        case 9: { // merge
          if (!blobs.length) break;
          const [, b] = r.pick(blobs);
          steps.push(['add-triple', anyId, idA, anyId, { mode: 'update' }]);
          if (r.chance(0.5)) steps.push(['add-triple', anyId, b.attr.id, { a: { b: 1, c: 2 }, d: 'x' }]);
          steps.push(['deep-merge-triple', anyId, b.attr.id, r.pick([{ a: { b: null, e: 3 } }, { d: null }, 'scalar', { n: 1 }]), ...(r.chance(0.5) ? [{ mode: 'update' }] : [])]);
          break;
        }
        case 10: { // through a lookup on a unique attr
          const uniq = Object.entries(ent.blobs).filter(([l, b]) => l !== 'id' && b.attr['unique?'] && b.values.length);
          if (!uniq.length) break;
          const [, b] = r.pick(uniq);
          const lv = r.chance(0.8) ? r.pick(b.values) : 'no-such-value';
          const L = [b.attr.id, lv];
          steps.push(['add-triple', L, idA, L]);
          if (blobs.length) {
            const [, b2] = r.pick(blobs);
            if (b2 !== b) steps.push(['add-triple', L, b2.attr.id, val(b2)]);
          }
          if (r.chance(0.3)) steps.push(['delete-entity', L, ent.name]);
          break;
        }
        case 11: { // admin attr steps, or a retract of a blob value
          const [, b] = blobs.length ? r.pick(blobs) : [null, null];
          if (!b) break;
          const k2 = r.int(4);
          if (k2 === 0) steps.push(['update-attr', { id: b.attr.id, 'forward-identity': [r.uuid(), ent.name, `renamed${r.int(2)}`] }]);
          else if (k2 === 1) steps.push(['update-attr', { id: b.attr.id, cardinality: 'many' }]);
          else if (k2 === 2) steps.push(['delete-attr', b.attr.id]);
          else if (b.values.length) steps.push(['retract-triple', existing, b.attr.id, r.pick(b.values)]);
          break;
        }
        default: { // a new attr, then values for it
          const id = r.uuid();
          const label = `extra${r.int(3)}`;
          steps.push(['add-attr', { id, 'forward-identity': [r.uuid(), ent.name, label], 'value-type': 'blob', cardinality: 'one', 'unique?': false, 'index?': false, isUnsynced: true }]);
          steps.push(['add-triple', anyId, id, `x${r.int(100)}`]);
          state.extraLabels.add(`${ent.name}.${label}`);
        }
      }
    }
    if (!steps.length) continue;
    const mut = { steps };
    if (r.chance(0.25)) mut['tx-id'] = 100 + r.int(100);
    muts.push(mut);
  }
  return muts;
}
