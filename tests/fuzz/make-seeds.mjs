// Writes the fuzz seed corpora (fuzz/corpus/<target>/) from the other tests'
// cases: engine queries, InstaML op lists, local requests, and real frames of
// the mock server. Run by hand (node tests/fuzz/make-seeds.mjs) when the
// cases change; the output is committed. Never run by make check.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { handCases as qlHand, errorCases, serverCases, typedCases, facts } from '../engine/corpus.mjs';
import { handCases as mlHand } from '../instaml/cases.mjs';
import { startMock, rawClient } from '../mock/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const top = path.resolve(here, '..', '..');
const data = (n, f) => JSON.parse(fs.readFileSync(path.join(top, 'tests/data', n, f), 'utf8'));

function writeSeeds(target, items, limit = 120) {
  const dir = path.join(here, 'corpus', target);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(dir)) if (!f.startsWith('.')) fs.unlinkSync(path.join(dir, f));
  const seen = new Set();
  let n = 0;
  for (const it of items) {
    const buf = Buffer.isBuffer(it) ? it : Buffer.from(typeof it === 'string' ? it : JSON.stringify(it));
    if (buf.length > 16384) continue;
    const h = crypto.createHash('sha1').update(buf).digest('hex').slice(0, 16);
    if (seen.has(h)) continue;
    seen.add(h);
    fs.writeFileSync(path.join(dir, `seed-${h}`), buf);
    if (++n === limit) break;
  }
  console.log(`${target}: ${n} seeds`);
}

const ds = { zeneca: { attrs: data('zeneca', 'attrs.json'), triples: data('zeneca', 'triples.json') },
  movies: { attrs: data('movies', 'attrs.json'), triples: data('movies', 'triples.json') } };

// InstaQL: the engine corpus's zeneca queries, valid and invalid.
const qs = [...qlHand(ds), ...typedCases(ds), ...serverCases(), ...errorCases()]
  .filter((c) => (c.dataset || 'zeneca') === 'zeneca' && c.q !== undefined).map((c) => c.q);
writeSeeds('instaql', qs);

// InstaML: the differential test's op lists, and raw steps.
const zattrs = ds.zeneca.attrs;
const attrName = new Map(zattrs.map((a) => [a.id, `${a['forward-identity'][1]}.${a['forward-identity'][2]}`]));
const vals = (name) => ds.zeneca.triples.filter((t) => attrName.get(t[1]) === name).map((t) => t[2]);
const z = { users: vals('users.id'), books: vals('books.id'), shelves: vals('bookshelves.id'),
  handles: vals('users.handle'), emails: vals('users.email') };
const ops = [];
for (const c of mlHand(z)) for (const o of c.seq || []) ops.push(o);
const aid = (e, l) => zattrs.find((a) => a['forward-identity'][1] === e && a['forward-identity'][2] === l).id;
const u0 = z.users[0];
const steps = [
  [['add-triple', u0, aid('users', 'handle'), 'x']],
  [['deep-merge-triple', u0, aid('users', 'handle'), { a: 1 }]],
  [['retract-triple', u0, aid('users', 'bookshelves'), z.shelves[0]]],
  [['delete-entity', u0, 'users']],
  [['add-attr', { id: '00000000-0000-4000-8000-0000000000aa', 'forward-identity': ['f', 'goals', 'title'],
    'value-type': 'blob', cardinality: 'one', 'unique?': false, 'index?': false }],
   ['add-triple', '00000000-0000-4000-8000-0000000000bb', '00000000-0000-4000-8000-0000000000aa', 't']],
  [['add-triple', [aid('users', 'handle'), 'alex'], aid('users', 'fullName'), 'A', { mode: 'update' }]],
  [['rule-params', u0, 'users', { a: 1 }]],
];
writeSeeds('instaml', [...ops.map((o) => o), ...steps.map((s) => ({ steps: s })), ...steps]);

// Local requests: every op, valid and broken.
const Q = { goals: { todos: {} } };
const reqs = [
  { op: 'init', 'app-id': '11111111-1111-4111-8111-111111111111', 'client-event-id': 'a' },
  { op: 'init', 'app-id': '11111111-1111-4111-8111-111111111111', 'refresh-token': 't', 'api-uri': 'http://x', 'client-name': 'n' },
  { op: 'add-query', q: Q, 'client-event-id': 'b' },
  { op: 'remove-query', q: Q }, { op: 'remove-query', 'query-id': 'b' },
  { op: 'query-once', q: Q, policy: 'cache-only' }, { op: 'query-once', q: Q, policy: 'bogus' },
  { op: 'transact', ops: [['update', 'goals', '7d9bc7a6-1c2e-4f3e-9d8e-3b6f0b1e2a11', { title: 'x' }]] },
  { op: 'transact', 'tx-steps': [['add-triple', 'e', 'a', 1]] },
  { op: 'list-mutations' }, { op: 'retry-mutation', 'mutation-id': 'm' }, { op: 'discard-mutation', 'mutation-id': 'm' },
  { op: 'join-room', 'room-id': 'r', 'room-type': 't', data: { a: 1 } }, { op: 'leave-room', 'room-id': 'r' },
  { op: 'set-presence', 'room-id': 'r', data: { x: 1 } },
  { op: 'client-broadcast', 'room-id': 'r', topic: 't', data: [1] },
  { op: 'status' }, { op: 'watch-status' }, { op: 'nope' }, { op: 7 }, {}, [], 'x', 1, null,
  { op: 'add-query' }, { op: 'add-query', q: 'x' }, { op: 'transact', ops: 'x' },
  { op: 'init', 'app-id': 5 }, { op: 'retry-mutation', 'mutation-id': [] },
];
writeSeeds('ipc-protocol', reqs);
const lines = reqs.map((r) => JSON.stringify(r));
const srv = [];
for (let i = 0; i < lines.length; i++) srv.push(Buffer.concat([Buffer.from([i * 37 & 0xff]), Buffer.from(lines[i] + '\n')]));
srv.push(Buffer.concat([Buffer.from([0]), Buffer.from(lines.join('\n') + '\n')]));
srv.push(Buffer.concat([Buffer.from([3]), Buffer.from(lines.slice(0, 5).join('\r\n') + '\n\n  \n')]));
srv.push(Buffer.concat([Buffer.from([0x81]), Buffer.from('{"op":"status"}\n{"op":"st')]));
srv.push(Buffer.concat([Buffer.from([1]), Buffer.from('['.repeat(20) + ']'.repeat(20) + '\n')]));
srv.push(Buffer.concat([Buffer.from([0]), Buffer.from('{"op":"status","x":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')]));
srv.push(Buffer.concat([Buffer.from([0x40 | 8]), Buffer.from('{"op":"status","pad":"' + 'a'.repeat(5000) + '"}\n{"op":"status"}\n')]));
srv.push(Buffer.concat([Buffer.from([2]), Buffer.from('{"op":"status"} x\n{"op":"status"}\n')]));
writeSeeds('ipc-server', srv);

// Server frames: what the mock really sends for init, queries, writes and rooms.
const mock = await startMock(['--port', '0', '--seed', 'zeneca']);
try {
  const c = await rawClient(mock.url);
  const frames = [];
  const init = await c.init();
  frames.push(init);
  const queries = [{ users: { $: { limit: 2 } } }, { users: { $: { where: { handle: 'alex' } }, bookshelves: { $: { limit: 1 } } } },
    { bookshelves: { $: { first: 2, order: { order: 'asc' } } } }, { books: { $: { where: { title: { $like: 'A%' } }, limit: 3 } } }];
  for (const q of queries) frames.push(await c.request({ op: 'add-query', q }));
  const from = c.mark();
  const g = '7d9bc7a6-1c2e-4f3e-9d8e-3b6f0b1e2a11';
  const hid = aid('users', 'handle');
  frames.push(await c.request({ op: 'transact', 'tx-steps': [['add-triple', z.users[0], hid, 'alex2']] }));
  frames.push(await c.waitFor((m) => m.op === 'refresh-ok', { from }));
  frames.push(await c.request({ op: 'join-room', 'room-id': 'r1', 'room-type': 't', data: { a: 1 } }));
  const c2 = await rawClient(mock.url);
  await c2.init();
  const f2 = c.mark();
  await c2.request({ op: 'join-room', 'room-id': 'r1', 'room-type': 't', data: { b: [1, 2] } });
  await c2.request({ op: 'set-presence', 'room-id': 'r1', data: { b: [3], c: { d: 1 } } });
  await c2.request({ op: 'client-broadcast', 'room-id': 'r1', topic: 'x', data: { y: 1 } });
  await new Promise((r) => setTimeout(r, 300));
  for (const m of c.log.events ? c.log.events.slice(f2) : []) frames.push(m);
  frames.push(await c.request({ op: 'nope' }));
  frames.push(await c.request({ op: 'transact', 'tx-steps': [['add-triple', 'e', 'nope', 1]] }));
  frames.push({ op: 'patch-presence', 'room-id': 'r1', edits: [[['s1'], '+', { data: { a: 1 } }], [['s1', 'data', 'a'], 'r', 2],
    [['s1', 'data', 'l'], '+', []], [['s1', 'data', 'l', 0], '+', 'x'], [['s1', 'data', 'a'], '-']] });
  frames.push({ op: 'refresh-presence', 'room-id': 'r1', data: { s1: { data: { a: 1 }, 'peer-id': 'p' } } });
  frames.push({ op: 'error', status: 400, type: 'record-not-found', message: 'secret-token', 'refresh-token': 'secret-token', hint: { args: ['secret-token'] } });
  writeSeeds('upstream', frames.map((f) => f));
  c.close(); c2.close();
} finally {
  await mock.stop();
}
