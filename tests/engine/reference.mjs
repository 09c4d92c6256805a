// The reference side of the engine's differential test: the same inputs
// evaluated by @instantdb/core 1.0.67's own store, instaql and instaqlResult
// modules (their dist files), the way the Reactor renders one query
// (client-semantics.md 5.4): per-query store, pending mutations layered in
// order with one transact() per mutation, then instaql query().
import { importDep } from '../lib/deps.mjs';

const storeMod = await importDep('@instantdb/core/dist/esm/store.js');
const instaqlMod = await importDep('@instantdb/core/dist/esm/instaql.js');
const resultMod = await importDep('@instantdb/core/dist/esm/model/instaqlResult.js');
const warnMod = await importDep('@instantdb/core/dist/esm/warningToggle.js');
// quiet the "limits in child queries" warning, which the corpus triggers on purpose
warnMod.setInstantWarningsEnabled(false);

const query = instaqlMod.default;
const { createStore, transact, AttrsStoreClass, allMapValues } = storeMod;

export function attrsMap(attrs) {
  const m = {};
  for (const a of Array.isArray(attrs) ? attrs : Object.values(attrs)) m[a.id] = a;
  return m;
}

function applies(txId, processedTxId) {
  // _applyOptimisticUpdates
  return !txId || (processedTxId && txId > processedTxId);
}

// Canonical JSON: keys sorted, undefined dropped (as JSON.stringify does).
export function canonical(v) {
  if (v === undefined) return undefined;
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return '[' + v.map((x) => canonical(x) ?? 'null').join(',') + ']';
  const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort();
  return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonical(v[k])).join(',') + '}';
}

// Evaluate one case. `rebuild` re-creates the store's indexes after every
// mutation, which clears the JS store's two index quirks (empty value maps
// left by retracts, stale reverse entries); see store/QUERY-DIFFERENCES.md.
export function evaluate(c, datasets, { rebuild = true } = {}) {
  try {
    let attrs, triples;
    if (c.dataset) {
      attrs = datasets[c.dataset].attrs;
      triples = datasets[c.dataset].triples;
    } else {
      attrs = c.attrs;
      triples = c.triples ?? resultMod.extractTriples(structuredClone(c.result));
    }
    const linkIndex = c['link-index'];
    let attrsStore = new AttrsStoreClass(structuredClone(attrsMap(attrs)), linkIndex);
    let store = createStore(attrsStore, structuredClone(triples), !!linkIndex, false);
    const ptx = c['processed-tx-id'] ?? 0;
    for (const m of c.mutations ?? []) {
      if (!applies(m['tx-id'] ?? 0, ptx)) continue;
      const r = transact(store, attrsStore, structuredClone(m.steps));
      store = r.store;
      attrsStore = r.attrsStore;
      if (rebuild) {
        store = createStore(attrsStore, allMapValues(store.eav, 3), !!linkIndex, false);
      }
    }
    const res = query({ store, attrsStore, pageInfo: c['page-info'], aggregate: c.aggregate }, c.q);
    const out = { data: res.data };
    if (res.pageInfo) out.pageInfo = res.pageInfo;
    return out;
  } catch (e) {
    return { error: String(e && e.message ? e.message : e) };
  }
}

// For timing: build + layer + query, n times; mean ms.
export function timeCase(c, datasets, n) {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) evaluate(c, datasets);
  return (performance.now() - t0) / n;
}
