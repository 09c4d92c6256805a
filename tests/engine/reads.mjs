// Property test of store/reads.h (which writes can change which query): the
// differential corpus's queries x generated mutations go to reads-check (C),
// which fails on any pair judged "unaffected" whose result did change. Here:
// the floors that keep the predicate useful (a predicate that always says
// "affected" passes the property but not these).
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { evaluate } from './reference.mjs';
import { handCases, pageCases, errorCases, facts } from './corpus.mjs';
import { rng, describe, genQuery, genMutations } from './generate.mjs';

const top = process.env.top_srcdir || path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const builddir = process.env.top_builddir || top;
const driver = path.join(builddir, 'tests', 'engine', 'reads-check');
const SEED = Number(process.env.ENGINE_READS_SEED || 20261202);
const SCALE = Number(process.env.ENGINE_READS_SCALE || 1);

const ds = {};
for (const n of ['zeneca', 'movies']) {
  ds[n] = {
    attrs: JSON.parse(fs.readFileSync(path.join(top, 'tests/data', n, 'attrs.json'), 'utf8')),
    triples: JSON.parse(fs.readFileSync(path.join(top, 'tests/data', n, 'triples.json'), 'utf8')),
  };
}
const r = rng(SEED);
const D = { zeneca: describe(ds.zeneca), movies: describe(ds.movies) };

// ---- queries: the differential corpus's, plus generated ones ----
const queries = { zeneca: [], movies: [] };
for (const c of [...handCases(ds), ...pageCases(ds, evaluate), ...errorCases()]) {
  if (!queries[c.dataset] || c.attrs) continue;
  queries[c.dataset].push({ q: c.q, ...(c['page-info'] ? { 'page-info': c['page-info'] } : {}) });
  if (c['page-info']) {
    // the same without order and with fields that leave the cursor's attr
    // out: only the cursor makes the query read it
    const q = structuredClone(c.q);
    for (const f of Object.values(q)) if (f.$) { delete f.$.order; f.$.fields = ['id']; }
    queries[c.dataset].push({ q, 'page-info': c['page-info'] });
  }
}
// generated ones at most three levels deep, to keep the run short (the hand
// cases go deeper)
const depth = (form) => 1 + Math.max(0, ...Object.entries(form).filter(([k]) => k !== '$').map(([, v]) => depth(v)));
const genShallow = (D) => {
  for (;;) {
    const q = genQuery(r, D);
    if (Object.values(q).every((f) => depth(f) <= 3)) return q;
  }
};
for (let i = 0; i < 100 * SCALE; i++) queries.zeneca.push({ q: genShallow(D.zeneca) });
for (let i = 0; i < 120 * SCALE; i++) queries.movies.push({ q: genShallow(D.movies) });

// ---- mutations, one kind at a time, so each kind's fraction is known ----
function genKinds(D, set, qs, n) {
  const out = [];
  const ents = D.queryable;
  const blobsOf = (ent) => Object.entries(ent.blobs).filter(([l]) => l !== 'id');
  const val = (b) => (r.chance(0.6) && b.values.length ? r.pick(b.values)
    : b.type === 'number' ? r.int(2000) : b.type === 'boolean' ? r.chance(0.5) : `v${r.int(1000)}`);
  const add = (kind, steps) => steps.length && out.push({ kind, steps });
  // ids the queries name (where values): writes to these change results
  const allIds = new Set(Object.values(D.et).flatMap((e) => e.ids));
  const hot = [...new Set(JSON.stringify(qs).match(/[0-9a-f-]{36}/g) ?? [])].filter((x) => allIds.has(x));
  const idOf = (ent) => {
    const h = hot.filter((x) => ent.ids.includes(x));
    return h.length && r.chance(0.5) ? r.pick(h) : r.pick(ent.ids);
  };
  const blobTriples = set.triples.filter((t) => D.byId.get(t[1])?.['value-type'] === 'blob');
  const kinds = {
    // one attr of one existing entity
    update: () => {
      const ent = r.pick(ents), bl = blobsOf(ent);
      if (!bl.length) return;
      const [, b] = r.pick(bl);
      add('update', [['add-triple', idOf(ent), b.attr.id, val(b), ...(r.chance(0.3) ? [{ mode: 'update' }] : [])]]);
    },
    // what the JS client's update sends: the id triple again, then the attr
    'update-entity': () => {
      const ent = r.pick(ents), bl = blobsOf(ent), e = idOf(ent);
      if (!bl.length) return;
      const [, b] = r.pick(bl);
      add('update-entity', [['add-triple', e, ent.idAttr.id, e], ['add-triple', e, b.attr.id, val(b)]]);
    },
    create: () => {
      const ent = r.pick(ents), id = r.uuid();
      add('create', [['add-triple', id, ent.idAttr.id, id, { mode: 'create' }],
        ...blobsOf(ent).filter(() => r.chance(0.6)).map(([, b]) => ['add-triple', id, b.attr.id, val(b), { mode: 'create' }])]);
    },
    link: () => {
      const ent = r.pick(ents), l = ent.links.length && r.pick(ent.links);
      if (!l || !D.et[l.target]?.ids.length) return;
      const a = idOf(ent), b = idOf(D.et[l.target]);
      add('link', [l.forward ? ['add-triple', a, l.attr.id, b] : ['add-triple', b, l.attr.id, a]]);
    },
    unlink: () => {
      const rows = [...D.refRows.entries()];
      if (!rows.length) return;
      const [a, rs] = r.pick(rows), [src, dst] = r.pick(rs);
      add('unlink', [['retract-triple', src, a, dst]]);
    },
    delete: () => {
      const ent = r.pick(ents);
      add('delete', [['delete-entity', idOf(ent), ...(r.chance(0.9) ? [ent.name] : [])]]);
    },
    retract: () => {
      const t = r.pick(blobTriples);
      add('retract', [['retract-triple', t[0], t[1], t[2]]]);
    },
    lookup: () => {
      const withUniq = ents.filter((e) => blobsOf(e).some(([, b]) => b.attr['unique?'] && b.values.length));
      if (!withUniq.length) return;
      const ent = r.pick(withUniq), bl = blobsOf(ent);
      const uniq = bl.filter(([, b]) => b.attr['unique?'] && b.values.length);
      const [, u] = r.pick(uniq), [, b] = r.pick(bl);
      const L = [u.attr.id, r.chance(0.85) ? r.pick(u.values) : 'no-such-value'];
      add('lookup', [r.chance(0.7) ? ['add-triple', L, b.attr.id, val(b)] : ['delete-entity', L, ent.name]]);
    },
    merge: () => {
      const ent = r.pick(ents), bl = blobsOf(ent);
      if (!bl.length) return;
      const [, b] = r.pick(bl), e = r.pick(ent.ids);
      add('merge', [['add-triple', e, b.attr.id, { a: { b: 1 }, d: 'x' }], ['deep-merge-triple', e, b.attr.id, { a: { b: null, c: 2 } }]]);
    },
    invalid: () => {
      const ent = r.pick(ents), l = ent.links.find((x) => x.forward);
      add('invalid', r.chance(0.5) || !l ? [['frobnicate', r.pick(ent.ids)]] : [['deep-merge-triple', r.pick(ent.ids), l.attr.id, { a: 1 }]]);
    },
    'rule-params': () => add('rule-params', [['rule-params', r.pick(r.pick(ents).ids), r.pick(ents).name, { k: 1 }]]),
    // a pending write re-sending an attr it created: the attr as held, then an update
    'readd-attr': () => {
      const ent = r.pick(ents), bl = blobsOf(ent);
      if (!bl.length) return;
      const [, b] = r.pick(bl), [, c] = r.pick(bl);
      add('readd-attr', [['add-attr', D.byId.get(b.attr.id)], ['add-triple', idOf(ent), c.attr.id, val(c)]]);
    },
    // InstaML-shaped mutations of the differential test, attr steps included
    generated: () => {
      for (const m of genMutations(r, D, { newIds: {}, extraLabels: new Set() })) add('generated', m.steps);
    },
  };
  const weights = { update: 10, 'update-entity': 6, create: 3, link: 3, unlink: 3, delete: 3, retract: 2, lookup: 2, merge: 1, invalid: 1, 'rule-params': 1, 'readd-attr': 2, generated: 3 };
  const bag = Object.entries(weights).flatMap(([k, w]) => Array(w).fill(k));
  for (let i = 0; i < n; i++) kinds[bag[i % bag.length]]();
  return out;
}
const runs = [
  { dataset: 'zeneca', queries: queries.zeneca, mutations: genKinds(D.zeneca, ds.zeneca, queries.zeneca, 55 * SCALE) },
  { dataset: 'movies', queries: queries.movies, mutations: genKinds(D.movies, ds.movies, queries.movies, 100 * SCALE) },
];
// Deletes only, on ids the queries name, over zeneca as it is and with
// cascades that cross etypes (its own stay within books): deleting a book
// deletes the shelves holding it (on-delete), deleting a user its shelves
// (on-delete-reverse).
for (const [label, cascade] of [['zeneca-delete', null], ['zeneca-on-delete', ['bookshelves', 'books', 'on-delete']],
  ['zeneca-on-delete-reverse', ['users', 'bookshelves', 'on-delete-reverse']]]) {
  const attrs = structuredClone(Object.values(ds.zeneca.attrs));
  if (cascade) attrs.find((a) => a['forward-identity'][1] === cascade[0] && a['forward-identity'][2] === cascade[1])[cascade[2]] = 'cascade';
  const qs = queries.zeneca;
  const hot = [...new Set(JSON.stringify(qs).match(/[0-9a-f-]{36}/g) ?? [])];
  const muts = [];
  for (let i = 0; i < 20 * SCALE; i++) {
    const ent = r.pick(D.zeneca.queryable);
    const h = hot.filter((x) => ent.ids.includes(x));
    muts.push({ kind: 'delete-only', steps: [['delete-entity', h.length && r.chance(0.7) ? r.pick(h) : r.pick(ent.ids), ent.name]] });
  }
  runs.push({ dataset: 'zeneca', label, ...(cascade ? { attrs } : {}), queries: qs, mutations: muts });
}

// ---- run ----
const input = runs.map((x) => JSON.stringify(x)).join('\n') + '\n';
// ENGINE_READS_INPUT=<file>: keep the driver's input there (to run reads-check by hand)
if (process.env.ENGINE_READS_INPUT) fs.writeFileSync(process.env.ENGINE_READS_INPUT, input);
const t0 = performance.now();
const res = spawnSync(driver, [], { input, env: { ...process.env, top_srcdir: top }, maxBuffer: 1 << 28 });
const ms = performance.now() - t0;
const lines = res.stdout.toString().trim().split('\n');
for (const l of lines.filter((x) => x.startsWith('not ok')).slice(0, 5)) console.log(l);
if (res.status !== 0) {
  const rest = lines.filter((x) => !x.startsWith('{')).slice(0, 40).join('\n');
  console.error(`reads-check failed: status ${res.status} signal ${res.signal}\n${rest}\n${res.stderr}`);
  process.exit(1);
}
const sums = lines.filter((x) => x.startsWith('{')).map((x) => JSON.parse(x));
const total = {};
for (const s of sums) {
  for (const [k, v] of Object.entries(s.kinds)) {
    const t = (total[k] ??= { pairs: 0, unaffected: 0, 'unaffected-by-attr': 0, affected: 0, sampled: 0, changed: 0, 'removal-checked': 0 });
    for (const f of Object.keys(t)) t[f] += v[f];
  }
}
let fails = 0;
const frac = (k, f = 'unaffected') => (total[k] ? total[k][f] / total[k].pairs : 0);
const pc = (x) => `${(100 * x).toFixed(1)} %`;
for (const [k, t] of Object.entries(total))
  console.log(`# ${k}: of ${t.pairs} pairs, ${pc(frac(k, 'unaffected-by-attr'))} judged unaffected by attr, ${pc(frac(k))} by attr and entity; of a sample of the affected, ${t.changed}/${t.sampled} changed; ${t['removal-checked']} checked for removal`);
const pairs = Object.values(total).reduce((a, t) => a + t.pairs, 0);
console.log(`# ${runs.map((x) => `${x.label ?? x.dataset}: ${x.queries.length} queries x ${x.mutations.length} mutations`).join(', ')}: ${pairs} pairs, every unaffected one checked, ${ms.toFixed(0)} ms (seed ${SEED})`);
// Usefulness floors: most single-attr updates leave most queries alone.
const floors = [['update', 'unaffected-by-attr', 0.5], ['update', 'unaffected', 0.7], ['link', 'unaffected', 0.3], ['delete', 'unaffected', 0.2]];
for (const [k, f, min] of floors) {
  if (!(frac(k, f) >= min)) {
    console.log(`not ok: ${k}: only ${pc(frac(k, f))} judged ${f}, want >= ${pc(min)}`);
    fails++;
  }
}
// The removal direction (a write leaving the optimistic layer) must have been exercised.
if (!(total.update?.['removal-checked'] > 0)) {
  console.log('not ok: no pair checked for removal');
  fails++;
}
// What must never be judged unaffected.
for (const k of ['invalid']) {
  if (total[k]?.unaffected) {
    console.log(`not ok: ${k}: ${total[k].unaffected} pairs judged unaffected`);
    fails++;
  }
}
// The mutations must be sharp enough to catch a wrong answer.
if (!(total.update?.changed > 0 && total.delete?.changed > 0 && total.link?.changed > 0 && total['delete-only']?.changed > 0)) {
  console.log('not ok: the generated mutations change no result');
  fails++;
}
process.exit(fails ? 1 : 0);
