// Differential test of the InstaML transform and the rewrite of queued steps:
// the C code (through instaml/instaml-run) against @instantdb/core 1.0.67's
// own instaml.js transform, store.js attrs/stores and Reactor.js
// _rewriteMutations, on the zeneca, movies and empty attrs. Results must be
// equal up to freshly generated uuids, which both sides' outputs replace by
// their first-appearance index.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { importDep } from '../lib/deps.mjs';
import { handCases, randomCases, rewriteCases } from './cases.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const topSrc = process.env.top_srcdir || path.join(here, '..', '..');
const topBuild = process.env.top_builddir || topSrc;
const driver = process.env.INSTAML_RUN || path.join(topBuild, 'tests', 'instaml', 'instaml-run');
const verbose = !!process.env.INSTAML_VERBOSE;

const instaml = await importDep('@instantdb/core/dist/esm/instaml.js');
const store = await importDep('@instantdb/core/dist/esm/store.js');
const Reactor = (await importDep('@instantdb/core/dist/esm/Reactor.js')).default;

const readJSON = (p) => JSON.parse(fs.readFileSync(path.join(topSrc, 'tests', 'data', p), 'utf8'));
const zenecaAttrs = readJSON('zeneca/attrs.json');
const zenecaTriples = readJSON('zeneca/triples.json');
const moviesAttrs = readJSON('movies/attrs.json');
// attrs a client might have before it learnt the rest: no handle/email, no links, no shelves
const partialAttrs = zenecaAttrs.filter((a) => {
  const [, et, l] = a['forward-identity'];
  return !(et === 'bookshelves' || l === 'handle' || l === 'email' || a['value-type'] === 'ref');
});
// zeneca plus later attrs that share identities with earlier ones: the client's
// attr map lets the last one win
const dupId = (n) => `dddddddd-0000-4000-8000-${String(n).padStart(12, '0')}`;
const dupesAttrs = [...zenecaAttrs,
  { id: dupId(1), 'forward-identity': [dupId(101), 'users', 'handle'], 'value-type': 'blob', cardinality: 'one', 'unique?': false, 'index?': false },
  { id: dupId(2), 'forward-identity': [dupId(102), 'users', 'email'], 'value-type': 'blob', cardinality: 'one', 'unique?': true, 'index?': true },
  { id: dupId(3), 'forward-identity': [dupId(103), 'bookshelves', 'owner'], 'reverse-identity': [dupId(104), 'users', 'bookshelves'], 'value-type': 'ref', cardinality: 'one', 'unique?': false, 'index?': false },
];
// zeneca plus attrs an earlier pending mutation created (isUnsynced)
const unsyncedAttrs = [...zenecaAttrs,
  { id: dupId(11), 'forward-identity': [dupId(111), 'goals', 'id'], 'value-type': 'blob', cardinality: 'one', 'unique?': true, 'index?': false, isUnsynced: true },
  { id: dupId(12), 'forward-identity': [dupId(112), 'goals', 'title'], 'value-type': 'blob', cardinality: 'one', 'unique?': false, 'index?': false, isUnsynced: true },
  { id: dupId(13), 'forward-identity': [dupId(113), 'goals', 'todos'], 'reverse-identity': [dupId(114), 'todos', 'goals'], 'value-type': 'ref', cardinality: 'many', 'unique?': false, 'index?': false, isUnsynced: true },
  { id: dupId(14), 'forward-identity': [dupId(115), 'users', 'nick'], 'value-type': 'blob', cardinality: 'one', 'unique?': true, 'index?': true, isUnsynced: true },
];
const defs = {
  zeneca: zenecaAttrs, movies: moviesAttrs, empty: [], partial: partialAttrs, none: [],
  dupes: dupesAttrs, unsynced: unsyncedAttrs,
};
const tripleDefs = { zeneca: zenecaTriples, none: [] };

// facts about zeneca for the case generators
const attrName = new Map(zenecaAttrs.map((a) => [a.id, `${a['forward-identity'][1]}.${a['forward-identity'][2]}`]));
const vals = (name) => zenecaTriples.filter((t) => attrName.get(t[1]) === name).map((t) => t[2]);
const z = {
  users: vals('users.id'), books: vals('books.id'), shelves: vals('bookshelves.id'),
  handles: vals('users.handle'), emails: vals('users.email'),
};

const clone = (x) => (x === undefined ? x : JSON.parse(JSON.stringify(x)));
const attrList = (x) => (Array.isArray(x) ? x : Object.values(x));
function attrsStoreOf(list) {
  const m = {};
  for (const a of attrList(list)) m[a.id] = a;
  return new store.AttrsStoreClass(m, undefined);
}
function withAdded(attrsStore, steps) {
  const added = steps.filter((s) => s[0] === 'add-attr').map((s) => s[1]);
  if (!added.length) return attrsStore;
  const m = { ...attrsStore.attrs };
  for (const a of added) m[a.id] = a;
  return new store.AttrsStoreClass(m, undefined);
}

// The JS client's side of a transform case.
function jsTransform(c) {
  const base = attrsStoreOf(clone(defs[c.attrs]));
  const stores = [store.createStore(base, clone(tripleDefs[c.triples || 'none']), false, false)];
  let cur = base;
  const results = [];
  for (const ops of c.seq) {
    try {
      const steps = clone(instaml.transform({ attrsStore: cur, stores }, [{ __ops: clone(ops) }]));
      results.push({ steps });
      cur = withAdded(cur, steps);
    } catch (e) {
      results.push({ error: String(e && e.message) });
    }
  }
  return { results };
}

// Steps of a `from` rewrite case: transformed offline by the JS client.
function materialise(c) {
  if (!c.from) return c;
  const { results } = jsTransform({ attrs: c.from.attrs, triples: 'none', seq: c.from.seq });
  const muts = results.filter((x) => x.steps).map((x, i) => ({
    steps: x.steps, drop: !!(c.dropEvery && i % c.dropEvery === c.dropEvery - 1),
  }));
  return { name: c.name, attrs: c.attrs, muts };
}

// The JS client's side of a rewrite case: Reactor#_rewriteMutations does not
// use `this`, so it runs on a bare object. drop means tx-id <= processed-tx-id.
function jsRewrite(c) {
  const muts = new Map(c.muts.map((m, i) => [`m${String(i).padStart(4, '0')}`,
    { op: 'transact', 'tx-steps': clone(m.steps), ...(m.drop ? { 'tx-id': 5 } : { 'tx-id': 20 }) }]));
  const out = Reactor.prototype._rewriteMutations.call({}, attrsStoreOf(clone(defs[c.attrs])), muts, 10);
  return { muts: [...out.values()].map((m) => clone(m['tx-steps'])) };
}

const UUID_RE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const knownIds = (x) => new Set((JSON.stringify(x).match(UUID_RE) || []).map((s) => s.toLowerCase()));
const knownDefs = {};
for (const [k, v] of Object.entries(defs)) knownDefs[k] = knownIds(v);
const knownZenecaTriples = knownIds(zenecaTriples);

// Replace uuids that are in no input by #new<first-appearance index>; errors
// compare as errors (their texts differ by design).
function canon(result, known) {
  const map = new Map();
  const walk = (v) => {
    if (typeof v === 'string') {
      if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v) && !known.has(v.toLowerCase())) {
        if (!map.has(v)) map.set(v, `#new${map.size}`);
        return map.get(v);
      }
      return v;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      if ('error' in v && Object.keys(v).length === 1) return { error: true };
      const o = {};
      for (const k of Object.keys(v).sort()) o[k] = walk(v[k]);
      return o;
    }
    return v;
  };
  return JSON.stringify(walk(result));
}

// INSTAML_SEED / INSTAML_RANDOM explore other random cases (the suite uses the defaults).
const seed = Number(process.env.INSTAML_SEED || 20261127);
const nRandom = Number(process.env.INSTAML_RANDOM || 150);
const transformCases = [...handCases(z), ...randomCases(z, nRandom, seed)];
const rewriteList = rewriteCases(z, zenecaAttrs, Math.ceil(nRandom / 4), seed + 1).map(materialise);
const all = [
  ...transformCases.map((c, i) => ({ ...c, id: `t${i}`, kind: 'transform' })),
  ...rewriteList.map((c, i) => ({ ...c, id: `r${i}`, kind: 'rewrite' })),
];

let input = '';
for (const [k, v] of Object.entries(defs)) input += JSON.stringify({ define: k, value: v }) + '\n';
input += JSON.stringify({ define: 'zeneca-triples', value: zenecaTriples }) + '\n';
input += JSON.stringify({ define: 'none-triples', value: [] }) + '\n';
for (const c of all) {
  const line = { id: c.id, kind: c.kind, attrs: c.attrs };
  if (c.kind === 'transform') Object.assign(line, { triples: `${c.triples || 'none'}-triples`, seq: c.seq });
  else line.muts = c.muts;
  input += JSON.stringify(line) + '\n';
}

const run = spawnSync(driver, [], { input, maxBuffer: 1 << 28, encoding: 'utf8' });
if (run.error || run.status !== 0) {
  console.error(`instaml-run failed (${run.error || `exit ${run.status}`}):\n${run.stderr}`);
  process.exit(1);
}
const cOut = new Map(run.stdout.trim().split('\n').filter(Boolean).map((l) => {
  const o = JSON.parse(l);
  return [o.id, o];
}));

// Ops whose ids are strings that are neither uuids nor lookups; the
// commonest: [attr, value] as a link value, which the client reads as two ids.
const UUID_ONLY = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const plainNonUuid = (x) => typeof x === 'string' && !x.startsWith('lookup__') && !UUID_ONLY.test(x);
function usesNonUuidIds(seq) {
  for (const ops of seq || []) {
    for (const [action, , eid, obj] of ops) {
      if (plainNonUuid(eid)) return true;
      if (action !== 'link' && action !== 'unlink') continue;
      for (const v of Object.values(obj || {}))
        if ((Array.isArray(v) ? v : [v]).some(plainNonUuid)) return true;
    }
  }
  return false;
}

let pass = 0, fail = 0, opLists = 0, errorsBoth = 0;
const invalid = [];
const failures = [];
// What the expected outputs exercise, so that a summary shows the coverage.
const seen = {};
const count = (k) => { seen[k] = (seen[k] || 0) + 1; };
function tally(steps) {
  for (const s of steps) {
    count(s[0]);
    if (s[4]?.mode) count(`mode ${s[4].mode}`);
    if (Array.isArray(s[1])) count('lookup entity');
    if (s[0] === 'add-attr') count(`add-attr ${s[1]['value-type']}${s[1]['unique?'] ? ' unique' : ''}`);
  }
}
for (const c of all) {
  const got = cOut.get(c.id);
  let want;
  if (c.kind === 'transform') {
    want = jsTransform(c);
    opLists += c.seq.length;
    errorsBoth += want.results.filter((r) => r.error).length;
    for (const r of want.results) if (r.steps) tally(r.steps);
  } else {
    want = jsRewrite(c);
    opLists += c.muts.length;
  }
  const known = new Set([...knownIds({ seq: c.seq, muts: c.muts }), ...knownDefs[c.attrs],
    ...(c.triples === 'zeneca' ? knownZenecaTriples : [])]);
  // the C steps must also pass instaml_validate_steps (unless the case uses non-uuid ids on purpose)
  for (const [i, r] of (got?.results || []).entries()) {
    if (!r.invalid) continue;
    if (c.nonUuidIds || usesNonUuidIds(c.seq)) delete r.invalid;
    else invalid.push(`${c.id} ${c.name} #${i}: ${r.invalid}`);
  }
  for (const r of got?.results || []) delete r.invalid;
  const gotC = got ? canon({ results: got.results, muts: got.muts }, known) : 'missing';
  const wantC = canon({ results: want.results, muts: want.muts }, known);
  if (gotC === wantC) {
    pass++;
    if (verbose) {
      const errs = (want.results || []).map((r, i) => r.error && `js: ${r.error} / c: ${got.results[i].error}`).filter(Boolean);
      console.log(`ok ${c.id} ${c.name}${errs.length ? ` (errors: ${errs.join('; ')})` : ''}`);
    }
  } else {
    fail++;
    failures.push({ c, got, want, gotC, wantC });
  }
}

console.log(`instaml diff: ${all.length} cases (${transformCases.length} transform, ${rewriteList.length} rewrite), ` +
  `${opLists} op lists/mutations, ${errorsBoth} expected errors; ${pass} equal, ${fail} different`);
console.log(`expected step kinds: ${JSON.stringify(seen)}`);
if (invalid.length) {
  console.log(`${invalid.length} transform results fail instaml_validate_steps:\n  ${invalid.slice(0, 10).join('\n  ')}`);
  fail++;
}
// The comparison itself must see a difference: one changed value must not pass.
const control = jsTransform(transformCases[0]);
const perturbed = clone(control);
perturbed.results[0].steps[perturbed.results[0].steps.length - 1][3] = 'perturbed';
if (canon(control, new Set()) === canon(perturbed, new Set())) {
  console.log('self-check failed: the comparison does not see a changed value');
  fail++;
}
for (const f of failures.slice(0, 5)) {
  console.log(`\n--- ${f.c.id} ${f.c.name}`);
  console.log(`input: ${JSON.stringify(f.c.seq || f.c.muts)}`);
  console.log(`js:    ${f.wantC}`);
  console.log(`c:     ${f.gotC}`);
  const errs = [...(f.want.results || []), ...(f.got?.results || [])].filter((r) => r.error).map((r) => r.error);
  if (errs.length) console.log(`errors: ${JSON.stringify(errs)}`);
}
process.exit(fail ? 1 : 0);
