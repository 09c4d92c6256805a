// Cases for the differential InstaML test (diff.mjs): hand-written op lists for
// every action and id/lookup form, seeded random op lists, and rewrite cases.
// A transform case: {name, attrs: 'zeneca'|'movies'|'empty', triples: 'zeneca'|'none', seq: [ops, ...]}.
// A rewrite case: {name, attrs, muts: [{steps, drop}]}; `from` cases get their
// steps from the JS transform on other attrs first (see diff.mjs).

// Deterministic PRNG (mulberry32).
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Fixed fresh ids (version-4 shaped) so that cases are reproducible.
export function fixedId(n) {
  const h = n.toString(16).padStart(12, '0');
  return `00000000-0000-4000-8000-${h}`;
}

const lk = (attr, v) => `lookup__${attr}__${JSON.stringify(v)}`;

// z: facts about zeneca: {users: [ids], books: [ids], shelves: [ids], handles: [..], emails: [..]}
export function handCases(z) {
  const U = z.users, B = z.books, S = z.shelves;
  const N1 = fixedId(1), N2 = fixedId(2), N3 = fixedId(3), N4 = fixedId(4);
  const c = [];
  const zc = (name, ...seq) => c.push({ name, attrs: 'zeneca', triples: 'zeneca', seq });
  const ec = (name, ...seq) => c.push({ name, attrs: 'empty', triples: 'none', seq });
  const mc = (name, ...seq) => c.push({ name, attrs: 'movies', triples: 'none', seq });

  // update / create / merge and their modes
  zc('update existing user (mode update)', [['update', 'users', U[0], { fullName: 'A' }]]);
  zc('update new user (no mode)', [['update', 'users', N1, { fullName: 'A', handle: 'new' }]]);
  zc('update existing upsert:true', [['update', 'users', U[1], { fullName: 'B' }, { upsert: true }]]);
  zc('update new upsert:false', [['update', 'users', N1, { fullName: 'B' }, { upsert: false }]]);
  zc('update existing upsert:false', [['update', 'users', U[1], { fullName: 'B' }, { upsert: false }]]);
  zc('update with empty object', [['update', 'books', B[0], {}]]);
  zc('update with id key dropped', [['update', 'books', N2, { id: N2, title: 'T' }]]);
  zc('update user id under another etype', [['update', 'books', U[0], { title: 'not a book' }]]);
  zc('create new book', [['create', 'books', N1, { title: 'T', pageCount: 12 }]]);
  zc('create existing book', [['create', 'books', B[1], { title: 'T' }]]);
  zc('create with unknown fields', [['create', 'books', N1, { title: 'T', rating: 4.5, tags: ['a', 'b'] }]]);
  zc('merge existing nested', [['merge', 'bookshelves', S[0], { desc: { a: { b: 1 }, c: null } }]]);
  zc('merge new', [['merge', 'bookshelves', N3, { meta: { x: [1, 2, { y: null }] } }]]);
  zc('merge upsert:false', [['merge', 'bookshelves', N3, { desc: 'x' }, { upsert: false }]]);
  zc('merge empty', [['merge', 'books', B[2], {}]]);
  zc('values of every JSON type', [['update', 'books', N4, {
    title: 'ünïcødé "quoted" \\ \n', pageCount: -12.5, isbn13: null, thumbnail: true,
    description: { deep: { deeper: [1, 'two', { three: 3 }, [4]] } }, big: 123456789012, zero: 0, empty: '',
  }]]);
  zc('numeric keys come first', [['update', 'books', N4, { b: 1, 2: 'two', a: 3, 1: 'one', 10: 'ten' }]]);
  zc('delete', [['delete', 'users', U[2]]]);
  zc('delete unknown etype', [['delete', 'widgets', N1]]);
  zc('ruleParams', [['ruleParams', 'books', B[3], { k: 'v', id: 'dropped', n: 1 }]]);
  zc('several ops on one entity', [
    ['update', 'books', N1, { title: 'T' }],
    ['link', 'books', N1, { bookshelves: S[1] }],
    ['merge', 'books', N1, { description: { a: 1 } }],
    ['ruleParams', 'books', N1, { x: 1 }],
    ['delete', 'books', N1],
  ]);

  // links
  zc('link forward', [['link', 'users', U[0], { bookshelves: S[0] }]]);
  zc('link forward many', [['link', 'users', U[0], { bookshelves: [S[0], S[1], N1] }]]);
  zc('link reverse label', [['link', 'bookshelves', S[2], { users: U[3] }]]);
  zc('link reverse many', [['link', 'books', B[0], { bookshelves: [S[0], S[1]] }]]);
  zc('unlink forward', [['unlink', 'bookshelves', S[0], { books: B[0] }]]);
  zc('unlink reverse', [['unlink', 'books', B[0], { bookshelves: S[3] }]]);
  zc('link self ref card one', [['link', 'books', B[0], { prequel: B[1], next: [B[2]] }]]);
  zc('link self ref reverse labels', [['link', 'books', B[0], { sequels: B[1], previous: B[2] }]]);
  zc('link unknown label creates ref', [['link', 'users', U[0], { friends: [U[1], U[2]] }]]);
  zc('unlink unknown label creates ref', [['unlink', 'users', U[0], { friends: U[1] }]]);
  zc('link two-element array is two ids', [['link', 'users', U[0], { bookshelves: [S[0], S[1]] }]]);
  zc('link empty array', [['link', 'users', U[0], { bookshelves: [] }]]);
  zc('link empty object', [['link', 'users', U[0], {}]]);
  zc('link label of a blob attr (error)', [['link', 'users', U[0], { handle: U[1] }]]);
  zc('link through the id attr reverse ident _id', [['link', 'users', U[0], { _id: U[1] }]]);
  ec('link on empty attrs', [['link', 'goals', N1, { todos: [N2, N3] }]]);
  ec('link then reverse link reuses ref', [
    ['link', 'goals', N1, { todos: N2 }],
    ['link', 'todos', N3, { goals: N1 }],
    ['unlink', 'todos', N2, { goals: N1 }],
  ]);
  ec('create then link', [
    ['create', 'goals', N1, { title: 'g' }],
    ['create', 'todos', N2, { text: 't' }],
    ['link', 'goals', N1, { todos: N2 }],
  ]);
  ec('field and link with the same label', [
    ['update', 'goals', N1, { todos: 'a field' }],
    ['link', 'goals', N1, { todos: N2 }],
  ]);

  // lookups as entity ids, every form, every action
  const forms = {
    string: lk('handle', 'alex'),
    array: ['handle', 'alex'],
    object: { handle: 'alex' },
  };
  for (const [form, id] of Object.entries(forms)) {
    zc(`update via ${form} lookup (exists)`, [['update', 'users', id, { fullName: 'Alex' }]]);
    zc(`create via ${form} lookup`, [['create', 'users', id, { fullName: 'Alex' }]]);
    zc(`merge via ${form} lookup`, [['merge', 'users', id, { fullName: { a: 1 } }]]);
    zc(`delete via ${form} lookup`, [['delete', 'users', id]]);
    zc(`ruleParams via ${form} lookup`, [['ruleParams', 'users', id, { a: 1 }]]);
    zc(`link via ${form} lookup`, [['link', 'users', id, { bookshelves: S[0] }]]);
    zc(`unlink via ${form} lookup`, [['unlink', 'users', id, { bookshelves: S[0] }]]);
    zc(`reverse link via ${form} lookup`, [['link', 'bookshelves', S[0], { users: id }]]);
  }
  zc('update via lookup (missing value, no mode)', [['update', 'users', ['handle', 'nobody'], { fullName: 'N' }]]);
  zc('update via email lookup', [['update', 'users', lk('email', z.emails[0]), { fullName: 'J' }]]);
  zc('lookup on id attr', [['update', 'users', ['id', U[0]], { fullName: 'J' }]]);
  zc('lookup value with __ inside', [['update', 'users', lk('handle', 'a__b'), { fullName: 'x' }]]);
  zc('lookup with number value', [['update', 'users', ['handle', 42], { fullName: 'x' }]]);
  zc('lookup with object value', [['update', 'users', { handle: { a: 1 } }, { fullName: 'x' }]]);
  zc('lookup with null value', [['update', 'users', ['handle', null], { fullName: 'x' }]]);
  zc('lookup on non-unique attr (error)', [['update', 'users', ['fullName', 'Joe'], { handle: 'j' }]]);
  zc('lookup on unknown attr creates it', [['update', 'users', ['nick', 'al'], { fullName: 'x' }]]);
  zc('lookup on unknown attr that the op also sets', [['update', 'users', ['nick', 'al'], { nick: 'al2' }]]);
  ec('lookup on empty attrs', [['update', 'goals', lk('slug', 'my-slug'), { title: 'by-lookup' }]]);
  ec('lookup then field of the same name', [
    ['update', 'goals', N1, { slug: 'x' }],
    ['update', 'goals', ['slug', 'y'], { title: 't' }],
  ]);
  zc('link target lookups, every form', [['link', 'users', U[0], {
    bookshelves: [lk('id', S[0]), ['id', S[1]], { id: S[2] }],
  }]]);
  zc('link target lookup on unknown attr', [['link', 'users', U[0], { bookshelves: { slug: 's' } }]]);
  zc('link target lookup on reverse label', [['link', 'bookshelves', S[0], { users: lk('handle', 'joe') }]]);
  zc('link target lookup non-unique (error)', [['link', 'bookshelves', S[0], { users: { fullName: 'Joe' } }]]);
  zc('unlink target lookup on unknown attr (error)', [['unlink', 'users', U[0], { bookshelves: { slug: 's' } }]]);
  zc('link target lookup on unknown label', [['link', 'users', U[0], { pets: { name: 'rex' } }]]);
  ec('link target lookups on empty attrs', [['link', 'goals', ['slug', 'g'], { todos: [['key', 't1'], lk('key', 't2')] }]]);
  zc('lookups on both sides', [['link', 'users', ['handle', 'stopa'], { bookshelves: ['id', S[3]] }]]);

  // ref lookups (`link.id`)
  zc('ref lookup on unique ref', [['update', 'books', ['next.id', B[1]], { title: 'x' }]]);
  zc('ref lookup through reverse label', [['update', 'books', { 'previous.id': B[1] }, { title: 'x' }]]);
  zc('ref lookup on non-unique ref (error)', [['update', 'books', ['prequel.id', B[1]], { title: 'x' }]]);
  zc('ref lookup on blob (error)', [['update', 'users', ['handle.id', 'x'], { fullName: 'x' }]]);
  zc('ref lookup malformed (error)', [['update', 'users', ['a.b.c', 'x'], { fullName: 'x' }]]);
  zc('ref lookup not on id (error)', [['update', 'users', ['bookshelves.name', 'x'], { fullName: 'x' }]]);
  ec('ref lookup on empty attrs creates ref', [['update', 'users', ['posts.id', N1], { name: 'x' }]]);
  ec('ref lookup in link target', [['link', 'users', N1, { posts: { 'author.id': N2 } }]]);
  ec('attr named with a dot', [['update', 'users', N1, { 'a.b': 1 }]], [['update', 'users', ['a.b', 1], { c: 2 }]]);

  // unsynced attrs remembered and re-emitted
  ec('unsynced attrs re-emitted in later transactions',
    [['update', 'goals', N1, { title: 'a' }]],
    [['update', 'goals', N2, { title: 'b', n: 1 }]],
    [['link', 'goals', N1, { todos: N3 }]],
    [['link', 'todos', N3, { goals: N2 }]],
    [['delete', 'goals', N1]],
    [['update', 'goals', ['slug', 's'], { title: 'c' }]],
    [['update', 'goals', ['slug', 't'], {}]]);
  zc('unsynced field on a server etype',
    [['update', 'users', U[0], { nickname: 'a' }]],
    [['update', 'users', U[1], { nickname: 'b', fullName: 'B' }]],
    [['merge', 'users', U[1], { nickname: { x: 1 } }]]);
  ec('empty op list', []);
  zc('unknown action (error)', [['upsert', 'users', U[0], { fullName: 'x' }]]);

  // odd labels
  zc('link with an id key', [['link', 'users', U[0], { id: S[0], bookshelves: S[1] }]]);
  zc('link with an id key holding a lookup', [['link', 'users', U[0], { id: { handle: 'joe' } }]]);
  zc('ruleParams without id', [['ruleParams', 'users', U[0], {}]]);
  zc('update an attr named like a lookup string', [['update', 'users', N1, { 'lookup__x__1': 1 }]]);
  c.push({ name: 'id value that looks like a lookup but is not', attrs: 'zeneca', triples: 'zeneca', nonUuidIds: true,
    seq: [[['update', 'users', 'lookupXhandle', { fullName: 'x' }]]] });

  // later attrs with the same identity win
  const dc = (name, ...seq) => c.push({ name, attrs: 'dupes', triples: 'zeneca', seq });
  dc('duplicate ident: lookup on the later, non-unique handle (error)', [['update', 'users', ['handle', 'joe'], {}]]);
  dc('duplicate ident: update writes the later handle attr', [['update', 'users', U[0], { handle: 'j', email: 'e' }]]);
  dc('duplicate ident: lookup on the later email attr', [['update', 'users', { email: z.emails[0] }, { fullName: 'J' }]]);
  dc('duplicate reverse ident', [['link', 'users', U[0], { bookshelves: S[0] }], ['unlink', 'bookshelves', S[0], { owner: U[0] }]]);

  // attrs that an earlier pending mutation created are re-emitted
  const uc = (name, ...seq) => c.push({ name, attrs: 'unsynced', triples: 'zeneca', seq });
  uc('unsynced: update uses and re-emits', [['update', 'goals', N1, { title: 't' }]]);
  uc('unsynced: link re-emits id and ref', [['link', 'goals', N1, { todos: N2 }]]);
  uc('unsynced: reverse link re-emits the ref', [['link', 'todos', N2, { goals: N1 }]]);
  uc('unsynced: lookup attr re-emitted', [['update', 'users', ['nick', 'n'], { fullName: 'x' }]]);
  uc('unsynced: link target lookup re-emitted', [['link', 'users', U[0], { bookshelves: { id: S[0] } }], ['link', 'todos', N2, { goals: ['title', 't'] }]]);
  uc('unsynced: not used, not emitted', [['update', 'users', U[0], { fullName: 'x' }]]);

  // a large op list: hash tables grow, identities stay in the client's order
  {
    const big = [];
    for (let i = 0; i < 300; i++) {
      const et = ['alpha', 'beta', 'gamma'][i % 3];
      if (i % 7 === 0) big.push(['link', et, fixedId(2000 + (i % 40)), { [`l${i % 50}`]: fixedId(3000 + i) }]);
      else if (i % 11 === 0) big.push(['update', et, [`key${i % 13}`, i], { [`f${i % 97}`]: i }]);
      else big.push(['update', et, fixedId(2000 + (i % 40)), { [`f${i % 97}`]: i, [`g${i % 89}`]: { n: i } }]);
    }
    ec('300 ops over many new labels', big, big.slice(0, 50));
  }

  // movies attrs (an id -> attr map)
  mc('movies update', [['update', 'movie', N1, { title: 'M', year: 1999 }]]);
  mc('movies link', [['link', 'movie', N1, { director: N2, cast: [N3, N4] }]]);
  mc('movies reverse link', [['link', 'person', N2, { directed: N1 }]]);
  return c;
}

// Random op lists over the known and some new etypes and labels.
export function randomCases(z, n, seed) {
  const r = rng(seed);
  const pick = (a) => a[Math.floor(r() * a.length)];
  let fresh = 1000;
  const etypes = {
    users: { ids: z.users, fields: ['fullName', 'handle', 'email', 'createdAt', 'nick', '1', '0'], links: ['bookshelves', 'friends', 'id'], lookups: [['handle', z.handles], ['email', z.emails], ['fullName', ['Joe']], ['nick', ['n1']], ['bookshelves.id', z.shelves.slice(0, 1)], ['id', z.users.slice(0, 2)]] },
    books: { ids: z.books.slice(0, 6), fields: ['title', 'pageCount', 'isbn13', 'rating'], links: ['bookshelves', 'prequel', 'next', 'sequels', 'previous', 'authors'], lookups: [['id', z.books.slice(0, 3)], ['isbn', ['123']], ['next.id', z.books.slice(0, 2)], ['prequel.id', z.books.slice(0, 1)], ['title', ['Sum']]] },
    bookshelves: { ids: z.shelves.slice(0, 6), fields: ['name', 'desc', 'order'], links: ['books', 'users'], lookups: [['id', z.shelves.slice(0, 3)], ['slug', ['s1', 's2']]] },
    goals: { ids: [], fields: ['title', 'done'], links: ['todos', 'owner'], lookups: [['slug', ['g1', 'g2']], ['owner.id', [fixedId(77)]]] },
    todos: { ids: [], fields: ['text'], links: ['goals'], lookups: [['key', ['t1']]] },
  };
  const value = (d = 0) => {
    const k = r();
    if (k < 0.3) return pick(['a', 'b', 'hello', '', 'lookup__not__"a lookup as a value"']);
    if (k < 0.5) return Math.floor(r() * 1000) - 100;
    if (k < 0.6) return r() < 0.5;
    if (k < 0.7) return null;
    if (k < 0.85 && d < 2) return { a: value(d + 1), n: { m: value(d + 1) } };
    if (d < 2) return [value(d + 1), value(d + 1)];
    return 1.5;
  };
  const id = (et) => {
    const pool = etypes[et].ids;
    const k = r();
    if (k < 0.45 && pool.length) return pick(pool);
    if (k < 0.75) return fixedId(fresh++);
    const [attr, vals] = pick(etypes[et].lookups);
    const v = pick(vals);
    const form = r();
    if (form < 0.34) return lk(attr, v);
    if (form < 0.67) return [attr, v];
    return { [attr]: v };
  };
  const targetEtype = (et, label) => ({
    'users.bookshelves': 'bookshelves', 'books.bookshelves': 'bookshelves', 'bookshelves.books': 'books',
    'bookshelves.users': 'users', 'goals.todos': 'todos', 'todos.goals': 'goals',
  })[`${et}.${label}`] || (etypes[label] ? label : 'books');
  const cases = [];
  for (let i = 0; i < n; i++) {
    const k = r();
    const empty = k < 0.25;
    const attrs = empty ? 'empty' : k < 0.45 ? 'unsynced' : k < 0.55 ? 'dupes' : 'zeneca';
    const names = empty ? ['goals', 'todos', 'users'] : Object.keys(etypes);
    const seqLen = r() < 0.25 ? 2 : 1;
    const seq = [];
    for (let s = 0; s < seqLen; s++) {
      const ops = [];
      const nOps = 1 + Math.floor(r() * 4);
      for (let o = 0; o < nOps; o++) {
        const et = pick(names);
        const action = pick(['update', 'update', 'create', 'merge', 'delete', 'link', 'link', 'unlink', 'ruleParams']);
        const e = id(et);
        if (action === 'delete') { ops.push([action, et, e]); continue; }
        const obj = {};
        if (action === 'link' || action === 'unlink') {
          const nl = 1 + Math.floor(r() * 2);
          for (let l = 0; l < nl; l++) {
            const label = pick(etypes[et].links);
            const te = targetEtype(et, label);
            obj[label] = r() < 0.4 ? [id(te), id(te)].slice(0, 1 + Math.floor(r() * 2)) : id(te);
          }
        } else {
          const nf = Math.floor(r() * 3) + (action === 'ruleParams' ? 0 : 1);
          for (let f = 0; f < nf; f++) obj[action === 'ruleParams' ? pick(['k', 'p', 'id']) : pick(etypes[et].fields)] = value();
        }
        const opts = (action === 'update' || action === 'merge') && r() < 0.3 ? { upsert: r() < 0.5 } : undefined;
        ops.push(opts ? [action, et, e, obj, opts] : [action, et, e, obj]);
      }
      seq.push(ops);
    }
    cases.push({ name: `random ${seed}/${i}`, attrs, triples: empty ? 'none' : 'zeneca', seq });
  }
  return cases;
}

// Rewrite cases. `from` cases: op lists transformed (by the JS client) on
// "offline" attrs, then rewritten against the server's attrs.
export function rewriteCases(z, attrsZ, nRandom, seed) {
  const U = z.users, S = z.shelves, B = z.books;
  const N1 = fixedId(1), N2 = fixedId(2), N3 = fixedId(3);
  const byName = (et, l) => attrsZ.find((a) => a['forward-identity'][1] === et && a['forward-identity'][2] === l);
  const usersId = byName('users', 'id').id, handle = byName('users', 'handle').id;
  const shelvesUsers = byName('users', 'bookshelves');
  const X1 = fixedId(901), X2 = fixedId(902), X3 = fixedId(903), X4 = fixedId(904);
  const blob = (id, et, l, extra = {}) => ({ id, 'forward-identity': [fixedId(950), et, l], 'value-type': 'blob', cardinality: 'one', 'unique?': false, 'index?': false, isUnsynced: true, ...extra });
  const ref = (id, et, l, ret, rl) => ({ id, 'forward-identity': [fixedId(951), et, l], 'reverse-identity': [fixedId(952), ret, rl], 'value-type': 'ref', cardinality: 'many', 'unique?': false, 'index?': false, isUnsynced: true });
  const c = [];
  const rc = (name, muts, attrs = 'zeneca') => c.push({ name, attrs, muts });
  rc('nothing to rewrite', [{ steps: [['add-triple', U[0], handle, 'x']] }]);
  rc('add-attr known under another id', [{ steps: [
    ['add-attr', blob(X1, 'users', 'handle', { 'unique?': true, 'index?': true })],
    ['add-triple', U[0], X1, 'h'],
    ['add-triple', [X1, 'h'], usersId, [X1, 'h']],
    ['retract-triple', U[0], X1, 'h'],
  ] }]);
  rc('add-attr unknown to the server stays', [{ steps: [
    ['add-attr', blob(X2, 'users', 'nickname')],
    ['add-triple', U[0], X2, 'n'],
  ] }]);
  rc('add-attr with the server id stays', [{ steps: [['add-attr', byName('users', 'fullName')], ['add-triple', U[0], byName('users', 'fullName').id, 'f']] }]);
  rc('reverse ref swaps e and v', [{ steps: [
    ['add-attr', ref(X3, 'bookshelves', 'users', 'users', 'bookshelves')],
    ['add-triple', S[0], X3, U[0]],
    ['retract-triple', S[1], X3, U[1]],
    ['delete-entity', S[2], 'bookshelves'],
  ] }]);
  rc('forward ref maps without swap', [{ steps: [
    ['add-attr', ref(X3, 'users', 'bookshelves', 'bookshelves', 'users')],
    ['add-triple', U[0], X3, S[0]],
  ] }]);
  rc('update-attr and delete-attr are dropped', [{ steps: [
    ['update-attr', { id: handle, 'index?': false }],
    ['add-triple', U[0], handle, 'x'],
    ['delete-attr', shelvesUsers.id],
  ] }]);
  rc('drop add-attrs of processed mutations', [
    { steps: [['add-attr', blob(X2, 'users', 'nickname')], ['add-triple', U[0], X2, 'n']], drop: true },
    { steps: [['add-attr', blob(X4, 'users', 'nickname2')], ['add-triple', U[0], X4, 'n']], drop: false },
  ]);
  rc('mapping carries over to later mutations', [
    { steps: [['add-attr', blob(X1, 'users', 'handle')], ['add-triple', U[0], X1, 'a']] },
    { steps: [['add-triple', U[1], X1, 'b'], ['add-triple', [X1, 'b'], usersId, [X1, 'b']]] },
    { steps: [['add-triple', U[2], handle, 'c']] },
  ]);
  rc('swap carries over to later mutations', [
    { steps: [['add-attr', ref(X3, 'bookshelves', 'users', 'users', 'bookshelves')]] },
    { steps: [['add-triple', S[0], X3, U[0]]] },
  ]);
  rc('earlier mutations untouched', [
    { steps: [['add-triple', U[0], handle, 'a']] },
    { steps: [['add-attr', blob(X1, 'users', 'handle')], ['add-triple', U[0], X1, 'a']] },
  ]);
  rc('one-element array part is mapped (client quirk)', [{ steps: [
    ['add-attr', blob(X1, 'users', 'handle')],
    ['add-triple', U[0], X1, [X1]],
    ['add-triple', U[0], X1, [[X1]]],
  ] }]);
  rc('value equal to a mapped id is mapped too', [{ steps: [
    ['add-attr', blob(X1, 'users', 'handle')],
    ['add-triple', U[0], byName('users', 'fullName').id, X1],
  ] }]);
  rc('rewrite on empty server attrs', [{ steps: [['add-attr', blob(X1, 'users', 'handle')], ['add-triple', U[0], X1, 'a']] }], 'empty');
  rc('server attrs with duplicate identities: the last wins', [{ steps: [
    ['add-attr', blob(X1, 'users', 'handle')], ['add-triple', U[0], X1, 'a'],
    ['add-attr', ref(X3, 'users', 'bookshelves', 'bookshelves', 'users')], ['add-triple', U[0], X3, S[0]],
  ] }], 'dupes');
  rc('movies server attrs', [{ steps: [['add-attr', ref(X3, 'person', 'directed', 'movie', 'director')], ['add-triple', N1, X3, N2]] }], 'movies');

  // Mutations made offline: the JS client transforms them on empty or partial
  // attrs, then both rewrite against the zeneca attrs.
  const from = [
    [['update', 'users', N1, { handle: 'h', fullName: 'F' }]],
    [['link', 'bookshelves', N2, { users: N1 }]],
    [['link', 'users', N1, { bookshelves: [N2, N3] }]],
    [['unlink', 'books', B[0], { bookshelves: S[0] }]],
    [['update', 'users', ['handle', 'joe'], { fullName: 'J' }]],
    [['link', 'users', ['email', 'e@x'], { bookshelves: { id: S[0] } }]],
    [['create', 'books', N3, { title: 't', newField: 1 }], ['link', 'books', N3, { next: B[1], sequels: B[2] }]],
    [['merge', 'bookshelves', S[0], { desc: { a: 1 } }], ['delete', 'bookshelves', S[1]]],
  ];
  for (const [i, ops] of from.entries()) {
    c.push({ name: `offline ${i} (empty)`, attrs: 'zeneca', from: { attrs: 'empty', seq: [ops] } });
    c.push({ name: `offline ${i} (partial)`, attrs: 'zeneca', from: { attrs: 'partial', seq: [ops] } });
  }
  // Random offline queues.
  const rnd = randomCases(z, nRandom, seed);
  for (const [i, rcase] of rnd.entries())
    c.push({ name: `offline random ${i}`, attrs: i % 5 === 4 ? 'dupes' : 'zeneca', from: { attrs: i % 2 ? 'empty' : 'partial', seq: rcase.seq }, dropEvery: 3 });
  return c;
}
