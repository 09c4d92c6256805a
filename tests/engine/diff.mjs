// Differential test of the local InstaQL engine: the same cases (queries,
// server page-info, pending tx-steps) go to engine-eval (C) and to
// @instantdb/core 1.0.67's own modules; the canonical JSON results must be
// equal, except for the documented server-semantics cases of
// store/QUERY-DIFFERENCES.md, where the expected answer is the server's.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { evaluate, canonical, timeCase } from './reference.mjs';
import { handCases, typedCases, pageCases, serverCases, errorCases, collationCases, facts } from './corpus.mjs';
import { rng, describe, genQuery, genMutations } from './generate.mjs';

const top = process.env.top_srcdir || path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const builddir = process.env.top_builddir || top;
const driver = path.join(builddir, 'tests', 'engine', 'engine-eval');
const SEED = Number(process.env.ENGINE_DIFF_SEED || 20261127);
// ENGINE_DIFF_SCALE multiplies the generated cases (for longer runs by hand)
const SCALE = Number(process.env.ENGINE_DIFF_SCALE || 1);

const ds = {};
for (const n of ['zeneca', 'movies']) {
  ds[n] = {
    attrs: JSON.parse(fs.readFileSync(path.join(top, 'tests/data', n, 'attrs.json'), 'utf8')),
    triples: JSON.parse(fs.readFileSync(path.join(top, 'tests/data', n, 'triples.json'), 'utf8')),
  };
}
const f = facts(ds);

// ---- the cases ----
const cases = [];
// Every case goes through JSON, so both sides see exactly the same input.
const add = (c, kind) => cases.push({ ...JSON.parse(JSON.stringify(c)), kind, id: cases.length });

for (const c of handCases(ds)) add(c, 'hand');
for (const c of typedCases(ds)) add(c, 'typed');
for (const c of pageCases(ds, evaluate)) add(c, 'page-info');
for (const c of serverCases()) add(c, 'server');
for (const c of errorCases()) add(c, 'error');

const r = rng(SEED);
for (const c of collationCases(r)) add(c, 'collation');
const D = { zeneca: describe(ds.zeneca), movies: describe(ds.movies) };
for (let i = 0; i < 260 * SCALE; i++) add({ dataset: 'zeneca', q: genQuery(r, D.zeneca) }, 'generated');
for (let i = 0; i < 110 * SCALE; i++) add({ dataset: 'movies', q: genQuery(r, D.movies) }, 'generated');

// Hand-written pending-mutation cases.
{
  const A = (e, l) => f.attr(e, l).id;
  const shelvesOfAlex = ds.zeneca.triples.filter((t) => t[0] === f.alex && t[1] === A('users', 'bookshelves')).map((t) => t[2]);
  const [b1, b2, b3, b4] = f.books;
  const nb = '0e1a5f3c-9d7b-4c2a-8f00-00000000000a', nb2 = '0e1a5f3c-9d7b-4c2a-8f00-00000000000b';
  const Zm = (mutations, q, extra = {}) => add({ dataset: 'zeneca', mutations, q, ...extra }, 'mutation-hand');
  const usersDeep = { users: { bookshelves: { books: { $: { fields: ['title'] } } } } };
  // unlink every shelf of alex: $isNull follows the server (no empty-map quirk)
  Zm([{ steps: shelvesOfAlex.map((s) => ['retract-triple', f.alex, A('users', 'bookshelves'), s]) }],
    { users: { $: { where: { bookshelves: { $isNull: true } } } } }, { quirk: 'empty-map' });
  // re-point a card-one link: reverse $isNull follows the server (no stale reverse entry)
  Zm([{ steps: [['add-triple', b1, A('books', 'prequel'), b2]] }, { steps: [['add-triple', b1, A('books', 'prequel'), b3]] }],
    { books: { $: { where: { sequels: { $isNull: false } }, fields: ['title'] } } }, { quirk: 'stale-vae' });
  // re-point then delete the old target in one mutation: the cascade follows the server
  add({ dataset: 'zeneca', quirk: 'stale-cascade',
    mutations: [{ steps: [['add-triple', b1, A('books', 'prequel'), b2]] },
      { steps: [['add-triple', b1, A('books', 'prequel'), b3], ['delete-entity', b2, 'books']] }],
    expectMutations: [{ steps: [['add-triple', b1, A('books', 'prequel'), b2]] },
      { steps: [['add-triple', b1, A('books', 'prequel'), b3]] }, { steps: [['delete-entity', b2, 'books']] }],
    q: { books: { $: { where: { id: { $in: [b1, b2, b3] } }, fields: ['title'] }, prequel: {} } } }, 'mutation-hand');
  // cascades: on-delete (prequel) and on-delete-reverse (next)
  Zm([{ steps: [['add-triple', b1, A('books', 'prequel'), b2]] }, { steps: [['delete-entity', b2, 'books']] }],
    { books: { $: { where: { id: { $in: [b1, b2] } } } } });
  Zm([{ steps: [['add-triple', b1, A('books', 'next'), b2], ['add-triple', b2, A('books', 'next'), b3]] }, { steps: [['delete-entity', b1, 'books']] }],
    { books: { $: { where: { id: { $in: [b1, b2, b3, b4] } }, fields: ['title'] } } });
  // new entities sort last; links to new entities; a link alone does not make an entity visible
  Zm([{ steps: [['add-triple', nb, A('books', 'id'), nb, { mode: 'create' }], ['add-triple', nb, A('books', 'title'), 'New', { mode: 'create' }]] },
    { steps: [['add-triple', shelvesOfAlex[0], A('bookshelves', 'books'), nb], ['add-triple', shelvesOfAlex[0], A('bookshelves', 'books'), nb2]] }],
  { users: { $: { where: { handle: 'alex' } }, bookshelves: { books: { $: { fields: ['title'] } } } }, books: { $: { fields: ['title'], order: { serverCreatedAt: 'desc' }, limit: 3 } } });
  // create then update {upsert:false} of the same new entity in one mutation: the update is dropped
  Zm([{ steps: [['add-triple', nb, A('books', 'id'), nb, { mode: 'create' }], ['add-triple', nb, A('books', 'title'), 'C', { mode: 'create' }], ['add-triple', nb, A('books', 'title'), 'U', { mode: 'update' }]] }],
    { books: { $: { where: { id: nb } } } });
  // lookups: resolved, unresolved (dropped), as link targets
  Zm([{ steps: [['add-triple', [A('users', 'handle'), 'alex'], A('users', 'fullName'), 'Alex Lookup']] },
    { steps: [['add-triple', [A('users', 'handle'), 'nobody'], A('users', 'fullName'), 'Nobody']] },
    { steps: [['add-triple', [A('users', 'email'), 'joe@instantdb.com'], A('users', 'bookshelves'), shelvesOfAlex[0]],
      ['add-triple', shelvesOfAlex[0], A('bookshelves', 'books'), [A('books', 'id'), b4]]] }],
  usersDeep);
  // merges: onto a missing value (no-op), onto an object, with null deletes
  Zm([{ steps: [['deep-merge-triple', f.alex, A('users', 'fullName'), { a: 1 }]] }], { users: { $: { fields: ['fullName'] } } });
  Zm([{ steps: [['add-triple', f.alex, A('users', 'createdAt'), { x: { y: 1, z: 2 }, w: 1 }]] },
    { steps: [['deep-merge-triple', f.alex, A('users', 'createdAt'), { x: { y: null, q: [1, 2] }, w: null, n: 'new' }]] }],
  { users: { $: { fields: ['createdAt'] } } });
  // attr steps: add-attr, update-attr (rename label), delete-attr
  const na = '0e1a5f3c-9d7b-4c2a-8f00-0000000000aa';
  Zm([{ steps: [['add-attr', { id: na, 'forward-identity': ['0e1a5f3c-9d7b-4c2a-8f00-0000000000ab', 'users', 'nick'], 'value-type': 'blob', cardinality: 'one', 'unique?': false, 'index?': false }],
    ['add-triple', f.alex, na, 'al']] }], { users: { $: { where: { nick: 'al' } } } });
  Zm([{ steps: [['update-attr', { id: A('users', 'fullName'), 'forward-identity': ['x', 'users', 'name2'] }]] }], { users: { $: { fields: ['name2', 'fullName', 'handle'] } } });
  Zm([{ steps: [['delete-attr', A('books', 'title')]] }], { books: { $: { limit: 3 } } });
  // confirmed mutations: applied only past the result's processed-tx-id
  Zm([{ steps: [['add-triple', f.alex, A('users', 'handle'), 'a1']], 'tx-id': 10 }, { steps: [['add-triple', f.joe, A('users', 'handle'), 'j1']], 'tx-id': 30 }],
    { users: { $: { fields: ['handle'] } } }, { 'processed-tx-id': 20 });
  Zm([{ steps: [['add-triple', f.alex, A('users', 'handle'), 'a1']], 'tx-id': 10 }], { users: { $: { fields: ['handle'] } } }, { 'processed-tx-id': 0 });
  // $like / $ilike count UTF-16 code units and fold case beyond ASCII
  const likeSteps = [{ steps: [['add-triple', b1, A('books', 'title'), 'a\u{1F600}b'], ['add-triple', b2, A('books', 'title'), '\u00c9cole \u00e9t\u00e9'], ['add-triple', b3, A('books', 'title'), 'line1\nline2']] }];
  for (const cond of [{ $like: 'a__b' }, { $like: 'a_b' }, { $ilike: '\u00e9COLE%' }, { $ilike: '%\u00c9T\u00c9' }, { $like: 'line1_line2' }, { $like: 'line1%' }, { $ilike: 'A%B' }])
    Zm(likeSteps, { books: { $: { where: { title: cond }, fields: ['title'] } } });
  // a throwing mutation fails the query
  Zm([{ steps: [['frobnicate', f.alex]] }], { users: {} });
  Zm([{ steps: [['deep-merge-triple', f.alex, A('users', 'bookshelves'), { a: 1 }]] }], { users: {} });
  Zm([{ steps: [['rule-params', f.alex, 'users', { k: 1 }], ['restore-attr', 'x']] }], { users: { $: { fields: ['handle'] } } });
  // wire result tree input instead of triples
  add({ attrs: ds.zeneca.attrs, result: [{ data: { 'datalog-result': { 'join-rows': [ds.zeneca.triples.slice(0, 1200)] } }, 'child-nodes': [{ data: { 'datalog-result': { 'join-rows': [ds.zeneca.triples.slice(1200), []] } }, 'child-nodes': [] }] }],
    q: usersDeep }, 'result-tree');
}

// Generated pending-mutation cases.
const genQueries = { zeneca: cases.filter((c) => c.dataset === 'zeneca' && !c.expectError && !c.server && !c['page-info']).map((c) => c.q),
  movies: cases.filter((c) => c.dataset === 'movies' && !c.expectError && !c.server).map((c) => c.q) };
for (let i = 0; i < 170 * SCALE; i++) {
  const name = i % 4 === 3 ? 'movies' : 'zeneca';
  const state = { newIds: {}, extraLabels: new Set() };
  const mutations = genMutations(r, D[name], state);
  let q = r.chance(0.6) ? genQuery(r, D[name]) : r.pick(genQueries[name]);
  if (state.extraLabels.size && r.chance(0.7)) {
    const [e, l] = [...state.extraLabels][0].split('.');
    q = r.chance(0.5) ? { [e]: {} } : { [e]: { $: { where: { [l]: { $isNull: false } } } } };
  }
  const c = { dataset: name, mutations, q };
  if (r.chance(0.3)) c['processed-tx-id'] = 150;
  add(c, 'mutation-gen');
}

// The timing cases (reported, not asserted).
const heavy = [{ users: { bookshelves: { books: {} } } }, { books: { bookshelves: { users: {} } } }];
for (const q of heavy) add({ dataset: 'zeneca', q, repeat: 20, fresh: true }, 'timing');

// ---- run the C engine ----
const input = cases.map((c) => {
  const { kind, expectQ, expectMutations, expectError, jsThrows, server, quirk, ...wire } = c;
  return JSON.stringify(wire);
}).join('\n') + '\n';
const t0 = performance.now();
const res = spawnSync(driver, [], { input, env: { ...process.env, top_srcdir: top }, maxBuffer: 1 << 30 });
const cMs = performance.now() - t0;
if (res.status !== 0) {
  console.error(`engine-eval failed: status ${res.status} signal ${res.signal}\n${res.stderr}`);
  process.exit(1);
}
const outs = res.stdout.toString().trim().split('\n').map((l) => JSON.parse(l));
if (outs.length !== cases.length) {
  console.error(`engine-eval gave ${outs.length} results for ${cases.length} cases`);
  process.exit(1);
}

// ---- compare ----
const stats = {};
const fails = [];
let quirkCases = 0, serverDiffers = 0, jsWouldDiffer = 0;
const t1 = performance.now();
for (const c of cases) {
  const out = outs[c.id];
  const ms = out.ms;
  delete out.id;
  delete out.ms;
  const st = (stats[c.kind] ??= { n: 0, ok: 0 });
  st.n++;
  if (c.kind === 'timing') {
    const jsMs = timeCase(c, ds, 5);
    console.log(`# timing ${JSON.stringify(c.q)} on zeneca: C ${ms.toFixed(3)} ms, @instantdb/core ${jsMs.toFixed(3)} ms (build + eval, mean)`);
  }
  if (c.expectError) {
    const js = evaluate(c, ds);
    if (out.error && out.error.includes(c.expectError) && (!c.jsThrows || js.error)) st.ok++;
    else fails.push({ c, why: `expected an error naming ${c.expectError}`, got: canonical(out), js: canonical(js) });
    continue;
  }
  let expected;
  if (c.server) {
    expected = evaluate({ ...c, q: c.expectQ }, ds);
    if (canonical(evaluate(c, ds)) !== canonical(expected)) serverDiffers++;
  } else if (c.expectMutations) {
    expected = evaluate({ ...c, mutations: c.expectMutations }, ds);
    if (canonical(evaluate(c, ds)) !== canonical(expected)) jsWouldDiffer++;
  } else {
    expected = evaluate(c, ds);
    if (c.mutations?.length && canonical(evaluate(c, ds, { rebuild: false })) !== canonical(expected)) quirkCases++;
  }
  const a = canonical(expected), b = canonical(out);
  if (expected.error && out.error) st.ok++;
  else if (a === b) st.ok++;
  else fails.push({ c, why: 'results differ', got: b, js: a });
}
const jsMs = performance.now() - t1;

let total = 0, ok = 0;
for (const [k, s] of Object.entries(stats)) {
  console.log(`# ${k}: ${s.ok}/${s.n}`);
  total += s.n;
  ok += s.ok;
}
const nMut = cases.filter((c) => c.mutations?.length).length;
const nQ = cases.filter((c) => !c.expectError).length;
console.log(`# ${ok}/${total} cases agree (${nQ} queries, ${nMut} with pending tx-steps, seed ${SEED})`);
console.log(`# documented server-semantics cases where the JS client answers otherwise: comparators ${serverDiffers}, index quirks ${quirkCases}, stale cascade ${jsWouldDiffer}`);
console.log(`# C engine run ${cMs.toFixed(0)} ms for all cases; reference ${jsMs.toFixed(0)} ms`);
// ENGINE_DIFF_DUMP=<dir>: write every failing case in full there (for debugging by hand)
if (process.env.ENGINE_DIFF_DUMP) {
  for (const x of fails) {
    fs.writeFileSync(path.join(process.env.ENGINE_DIFF_DUMP, `case-${x.c.id}.json`),
      JSON.stringify({ case: x.c, c: JSON.parse(x.got), want: JSON.parse(x.js) }, null, 1));
  }
}
for (const x of fails.slice(0, 8)) {
  console.log(`not ok: case ${x.c.id} (${x.c.kind}): ${x.why}`);
  console.log(`  case: ${JSON.stringify({ q: x.c.q, mutations: x.c.mutations, 'page-info': x.c['page-info'], 'processed-tx-id': x.c['processed-tx-id'] }).slice(0, 1500)}`);
  console.log(`  C:    ${x.got.slice(0, 1200)}`);
  console.log(`  want: ${x.js.slice(0, 1200)}`);
}
process.exit(fails.length ? 1 : 0);
