// Hand-written cases for the engine's differential test: every operator and
// option of the InstaQL language on the zeneca and movies data sets, the
// server-semantics cases of store/QUERY-DIFFERENCES.md, and invalid queries.

// Ids and attr ids looked up from the data, so the corpus states intent.
export function facts(ds) {
  const z = ds.zeneca;
  const attr = (set, etype, label) =>
    (Array.isArray(set.attrs) ? set.attrs : Object.values(set.attrs))
      .find((a) => a['forward-identity'][1] === etype && a['forward-identity'][2] === label);
  const byVal = (set, etype, label, v) => {
    const a = attr(set, etype, label);
    return set.triples.find((t) => t[1] === a.id && t[2] === v)?.[0];
  };
  const ids = (set, etype) => {
    const a = attr(set, etype, 'id');
    return set.triples.filter((t) => t[1] === a.id).map((t) => t[0]);
  };
  return {
    attr: (etype, label, set = 'zeneca') => attr(ds[set], etype, label),
    alex: byVal(z, 'users', 'handle', 'alex'),
    joe: byVal(z, 'users', 'handle', 'joe'),
    stopa: byVal(z, 'users', 'handle', 'stopa'),
    nicole: byVal(z, 'users', 'handle', 'nicolegf'),
    aesop: byVal(z, 'books', 'title', "Aesop's Fables"),
    shelves: ids(z, 'bookshelves'),
    books: ids(z, 'books'),
    movies: ids(ds.movies, 'movie'),
    people: ids(ds.movies, 'person'),
  };
}

export function handCases(ds) {
  const f = facts(ds);
  const Z = (q) => ({ dataset: 'zeneca', q });
  const M = (q) => ({ dataset: 'movies', q });
  const w = (ns, where, extra = {}) => ({ [ns]: { $: { where, ...extra } } });
  const sh = f.shelves, bk = f.books;
  const cases = [
    // namespaces, nesting, links both ways, any depth
    Z({ users: {} }), Z({ bookshelves: {} }), Z({ books: {} }),
    Z({ users: {}, books: {}, bookshelves: {} }),
    Z({ users: { bookshelves: {} } }),
    Z({ users: { bookshelves: { books: {} } } }),
    Z({ books: { bookshelves: { users: {} } } }),
    Z({ bookshelves: { users: {}, books: {} } }),
    Z({ users: { bookshelves: { books: { bookshelves: { users: {} } } } } }),
    Z({ books: { prequel: {}, sequels: {}, next: {}, previous: {} } }),
    Z({ nosuch: {} }), Z({ users: { nosuch: {} } }),
    Z({ users: {}, $$ruleParams: { x: 1 } }),
    Z({ users: { bookshelves: { nosuch: {}, books: { $: { where: { nosuch: 1 } } } } } }),
    // equality
    Z(w('users', { handle: 'alex' })), Z(w('users', { handle: 'nobody' })),
    Z(w('users', { id: f.alex })), Z(w('users', { handle: 'alex', email: 'alex@instantdb.com' })),
    Z(w('users', { handle: 'alex', email: 'joe@instantdb.com' })),
    Z(w('users', { bookshelves: sh[0] })), Z(w('bookshelves', { users: f.alex })),
    Z(w('books', { pageCount: 107 })), Z(w('books', { pageCount: '107' })),
    Z(w('books', { title: "Aesop's Fables" }, { fields: ['title'] })),
    Z(w('users', { handle: '?x' })), Z(w('users', { $entityIdStartsWith: 'ad' })),
    Z(w('users', { handle: { a: 1 } })), Z(w('users', { handle: ['alex'] })),
    // dotted paths, correlation by (etype, depth)
    Z(w('users', { 'bookshelves.name': 'Nonfiction' })),
    Z(w('users', { 'bookshelves.books.title': "Aesop's Fables" })),
    Z(w('users', { 'bookshelves.books.title': "Aesop's Fables", 'bookshelves.name': 'Nonfiction' })),
    Z(w('users', { and: [{ 'bookshelves.books.title': "Aesop's Fables" }, { 'bookshelves.name': 'Nonfiction' }] })),
    Z(w('bookshelves', { 'users.handle': 'stopa' }, { limit: 5 })),
    Z(w('books', { 'bookshelves.users.handle': 'joe' }, { fields: ['title'] })),
    Z(w('books', { 'bookshelves.users.id': { $in: [f.joe, f.nicole] } }, { fields: ['title'] })),
    Z(w('bookshelves', { 'users.id': f.alex })), Z(w('bookshelves', { users: { $in: [f.alex] } })),
    Z(w('users', { 'bookshelves.nosuch': 1 })), Z(w('users', { 'nosuch.name': 1 })),
    Z(w('users', { 'bookshelves.books.pageCount': { $gt: 900 } })),
    Z(w('users', { bookshelves: { $in: [sh[0], sh[5], 'nope'] } })),
    Z(w('users', { bookshelves: { $not: sh[0] } })),
    Z(w('users', { bookshelves: { $gt: sh[3] } })),
    Z(w('bookshelves', { books: { $in: [bk[0], bk[1]] } }, { fields: ['name'] })),
    Z(w('bookshelves', { 'books.id': { $in: [bk[0], bk[1]] } }, { fields: ['name'] })),
    Z(w('books', { 'bookshelves.users.handle': { $in: ['joe', 'alex'] }, pageCount: { $gt: 300 } }, { fields: ['title'], order: { pageCount: 'desc' }, limit: 7 })),
    // and / or
    Z(w('users', { or: [{ handle: 'alex' }, { handle: 'joe' }] })),
    Z(w('users', { or: [] })), Z(w('users', { and: [] })),
    Z(w('users', { or: [{ handle: 'alex' }, { 'bookshelves.name': 'Nonfiction' }] })),
    Z(w('users', { and: [{ or: [{ handle: 'alex' }, { handle: 'joe' }] }, { email: 'joe@instantdb.com' }] })),
    Z(w('users', { or: [{ and: [{ handle: 'alex' }, { email: 'alex@instantdb.com' }] }, { handle: 'stopa' }] })),
    Z(w('books', { or: [{ pageCount: { $lt: 50 } }, { pageCount: { $gt: 1000 } }] }, { fields: ['title', 'pageCount'] })),
    Z(w('users', { or: [{ 'bookshelves.books.title': "Aesop's Fables" }, { 'bookshelves.books.title': 'Dune' }] })),
    // $in / in
    Z(w('users', { handle: { $in: ['alex', 'joe', 'nobody'] } })), Z(w('users', { handle: { $in: [] } })),
    Z(w('users', { handle: { in: ['stopa'] } })), Z(w('books', { pageCount: { $in: [107, '128', 0] } })),
    Z(w('users', { id: { $in: [f.alex, f.stopa] } })),
    Z(w('users', { handle: { $in: ['alex'], $like: 'j%' } })),
    // $not / $ne
    Z(w('users', { handle: { $not: 'alex' } })), Z(w('users', { handle: { $ne: 'alex' } })),
    Z(w('users', { handle: { $not: null } })), Z(w('books', { pageCount: { $ne: '107' } }, { fields: ['pageCount'] })),
    Z(w('users', { 'bookshelves.name': { $not: 'Nonfiction' } })),
    Z(w('bookshelves', { 'users.handle': { $ne: 'alex' } }, { fields: ['name'] })),
    Z(w('bookshelves', { users: { $not: f.alex } })),
    Z(w('users', { handle: { $not: 'alex', $in: ['joe'] } })),
    // $isNull
    Z(w('bookshelves', { desc: { $isNull: true } })), Z(w('bookshelves', { desc: { $isNull: false } })),
    Z(w('users', { bookshelves: { $isNull: true } })), Z(w('users', { bookshelves: { $isNull: false } })),
    Z(w('bookshelves', { users: { $isNull: true } })), Z(w('bookshelves', { users: { $isNull: false } })),
    Z(w('users', { 'bookshelves.books.title': { $isNull: true } })),
    Z(w('users', { 'bookshelves.books.title': { $isNull: false } })),
    Z(w('books', { prequel: { $isNull: true } }, { limit: 3 })),
    Z(w('users', { fullName: { $isNull: false }, handle: { $isNull: false } })),
    // comparators
    Z(w('books', { pageCount: { $gt: 500 } }, { fields: ['pageCount'] })),
    Z(w('books', { pageCount: { $gte: 500 } }, { fields: ['pageCount'] })),
    Z(w('books', { pageCount: { $lt: 100 } }, { fields: ['pageCount'] })),
    Z(w('books', { pageCount: { $lte: 100 } }, { fields: ['pageCount'] })),
    Z(w('books', { pageCount: { $gt: '500' } }, { fields: ['pageCount'] })),
    Z(w('books', { pageCount: { $lte: null } }, { fields: ['pageCount'] })),
    Z(w('books', { title: { $gt: 'The' } }, { fields: ['title'] })),
    Z(w('books', { title: { $lt: 'B' } }, { fields: ['title'] })),
    Z(w('users', { createdAt: { $gt: '2021-01-08' } })),
    Z(w('bookshelves', { order: { $gte: 3 } }, { fields: ['name', 'order'] })),
    Z(w('books', { pageCount: { $gt: true } }, { fields: ['pageCount'], limit: 5 })),
    // $like / $ilike
    Z(w('books', { title: { $like: '%the%' } }, { fields: ['title'] })),
    Z(w('books', { title: { $like: 'The%' } }, { fields: ['title'] })),
    Z(w('books', { title: { $like: '_he %' } }, { fields: ['title'] })),
    Z(w('books', { title: { $ilike: '%HARRY%' } }, { fields: ['title'] })),
    Z(w('books', { title: { $ilike: 'the%' } }, { fields: ['title'] })),
    Z(w('books', { title: { $like: '%.%' } }, { fields: ['title'] })),
    Z(w('books', { title: { $like: '%(%' } }, { fields: ['title'] })),
    Z(w('books', { pageCount: { $like: '1%' } })),
    Z(w('users', { email: { $like: '%@instantdb.com' } })),
    Z(w('users', { 'bookshelves.books.title': { $ilike: '%dune%' } })),
    // order
    Z({ books: { $: { order: { pageCount: 'asc' }, fields: ['pageCount'] } } }),
    Z({ books: { $: { order: { pageCount: 'desc' }, fields: ['pageCount'] } } }),
    Z({ books: { $: { order: { title: 'asc' }, limit: 20, fields: ['title'] } } }),
    Z({ books: { $: { order: { title: 'desc' }, limit: 20, fields: ['title'] } } }),
    Z({ users: { $: { order: { serverCreatedAt: 'desc' } } } }),
    Z({ users: { $: { order: { serverCreatedAt: 'asc' } } } }),
    Z({ users: { $: { order: { handle: 'desc' } } } }),
    Z({ users: { $: { order: { nosuch: 'desc' } } } }),
    Z({ users: { $: { order: { id: 'desc' } } } }),
    Z({ bookshelves: { $: { order: { order: 'asc' } }, books: { $: { order: { pageCount: 'desc' }, limit: 2 } } } }),
    Z({ users: { bookshelves: { $: { order: { order: 'desc' } } } } }),
    Z({ books: { $: { order: { bookshelves: 'asc' }, limit: 5, fields: ['title'] } } }),
    // mixed-type values (numbers and strings): V8's sort order for an inconsistent comparator
    Z({ bookshelves: { $: { order: { name: 'asc' }, fields: ['name'] } } }),
    Z({ bookshelves: { $: { order: { name: 'desc' }, fields: ['name'] } } }),
    Z({ users: { bookshelves: { $: { order: { name: 'desc' }, fields: ['name'] } } } }),
    Z({ users: { bookshelves: { $: { order: { name: 'asc' }, fields: ['name'] } } } }),
    Z(w('bookshelves', { name: { $gt: 2015 } }, { fields: ['name'] })),
    Z(w('bookshelves', { name: { $lt: 'S' } }, { fields: ['name'] })),
    // limit / first / last / offset / before / after (no page-info)
    Z({ books: { $: { limit: 3 } } }), Z({ books: { $: { first: 2, fields: ['title'] } } }),
    Z({ books: { $: { last: 2, fields: ['title'] } } }), Z({ users: { $: { limit: 0 } } }),
    Z({ users: { $: { limit: 1, first: 3 } } }),
    Z({ users: { bookshelves: { $: { limit: 1 }, books: { $: { limit: 2, fields: ['title'] } } } } }),
    Z({ users: { $: { offset: 2 } } }), Z({ users: { $: { after: ['x'] } } }), Z({ users: { $: { before: ['x'] } } }),
    Z({ users: { $: { offset: 0 } } }), Z({ users: { bookshelves: { $: { offset: 1 } } } }),
    // fields
    Z({ books: { $: { fields: ['title', 'pageCount'], limit: 5 } } }),
    Z({ books: { $: { fields: [], limit: 5 } } }), Z({ users: { $: { fields: ['bookshelves', 'nosuch'] } } }),
    Z({ users: { $: { fields: ['handle'] }, bookshelves: { $: { fields: ['name'] } } } }),
    Z({ users: { $: { fields: ['id'] } } }),
    // link key replacing an attr key, children under fields
    Z({ users: { $: { fields: ['handle'] }, bookshelves: { books: { $: { fields: ['title'] } } } } }),
    // movies
    M({ movie: {} }), M({ person: {} }), M({ movie: { cast: {} } }), M({ movie: { director: {}, sequel: {} } }),
    M({ person: { movie: {} } }),
    M(w('movie', { year: { $gt: 1990 } }, { fields: ['title', 'year'] })),
    M(w('movie', { year: { $gte: '1990' } }, { fields: ['title', 'year'] })),
    M(w('movie', { title: { $ilike: '%the%' } }, { fields: ['title'] })),
    M(w('person', { born: { $lt: '1950-01-01' } }, { fields: ['name', 'born'] })),
    M(w('person', { death: { $isNull: true } }, { fields: ['name'] })),
    M(w('person', { death: { $isNull: false } }, { fields: ['name', 'death'] })),
    M(w('movie', { 'cast.name': 'Arnold Schwarzenegger' }, { fields: ['title'] })),
    M(w('movie', { 'cast.name': { $like: 'A%' } }, { fields: ['title'] })),
    M({ movie: { $: { order: { year: 'desc' }, limit: 10, fields: ['title', 'year'] } } }),
    M({ movie: { $: { order: { serverCreatedAt: 'desc' }, limit: 5, fields: ['title'] } } }),
    M({ person: { $: { order: { born: 'asc' }, fields: ['name', 'born'] } } }),
    M(w('movie', { trivia: { $isNull: false } }, { fields: ['title'] })),
    M(w('movie', { year: { $in: [1987, 1984, '1991'] } }, { fields: ['title', 'year'] })),
  ];
  return cases;
}

// Attrs with schema types: dates and strings, and a link index.
export function typedCases(ds) {
  const cases = [];
  const movAttrs = Object.values(structuredClone(ds.movies.attrs));
  for (const a of movAttrs) {
    const [, e, l] = a['forward-identity'];
    if (e === 'person' && (l === 'born' || l === 'death')) a['checked-data-type'] = 'date';
    if (e === 'movie' && l === 'title') a['checked-data-type'] = 'string';
  }
  const T = (q) => ({ attrs: movAttrs, triples: ds.movies.triples, q });
  const w = (ns, where, extra = {}) => ({ [ns]: { $: { where, ...extra } } });
  cases.push(
    T(w('person', { born: { $gt: '1950-01-01' } }, { fields: ['name', 'born'] })),
    T(w('person', { born: { $lt: '1950-01-01T00:00:00+02:00' } }, { fields: ['name', 'born'] })),
    T(w('person', { born: { $gte: -315619200000 } }, { fields: ['name', 'born'] })),
    T(w('person', { born: { $lte: '1940' } }, { fields: ['name', 'born'] })),
    T(w('person', { death: { $gt: '2000-06-01T12:00:00Z' } }, { fields: ['name', 'death'] })),
    T(w('person', { death: { $lt: '2100' } }, { fields: ['name', 'death'] })),
    T(w('person', { born: { $gt: 'not a date' } }, { fields: ['name'] })),
    T({ person: { $: { order: { born: 'desc' }, fields: ['name', 'born'] } } }),
    T({ person: { $: { order: { death: 'asc' }, fields: ['name', 'death'] } } }),
    T({ movie: { $: { order: { title: 'asc' }, fields: ['title'] } } }),
    T({ movie: { $: { order: { title: 'desc' }, fields: ['title'] } } }),
  );
  const zAttrs = structuredClone(ds.zeneca.attrs);
  for (const a of zAttrs) {
    const [, e, l] = a['forward-identity'];
    if (l === 'title' || l === 'handle' || l === 'name') a['checked-data-type'] = 'string';
    if (l === 'pageCount' || l === 'order') a['checked-data-type'] = 'number';
    if (e === 'users' && l === 'createdAt') a['checked-data-type'] = 'date';
  }
  const linkIndex = {
    books: { prequel: { isSingular: true }, bookshelves: { isSingular: false } },
    bookshelves: { users: { isSingular: true } },
    users: { bookshelves: { isSingular: false } },
  };
  const ZT = (q, li) => ({ attrs: zAttrs, triples: ds.zeneca.triples, q, ...(li ? { 'link-index': li } : {}) });
  cases.push(
    ZT({ books: { $: { order: { title: 'asc' }, fields: ['title'] } } }),
    ZT({ books: { $: { order: { title: 'desc' }, fields: ['title'] } } }),
    ZT({ bookshelves: { $: { order: { name: 'asc' }, fields: ['name'] } } }),
    ZT({ bookshelves: { $: { fields: ['name'] }, users: { $: { fields: ['handle'] } } } }, linkIndex),
    ZT({ books: { $: { limit: 10, fields: ['title'] }, prequel: {}, bookshelves: { $: { fields: ['name'] } } } }, linkIndex),
    ZT({ users: { bookshelves: { users: {} } } }, linkIndex),
    ZT({ users: { $: { where: { createdAt: { $gt: '2021-01-08' } }, fields: ['createdAt'] } } }),
    ZT({ users: { $: { where: { createdAt: { $lte: 1610045483742 } }, fields: ['createdAt'] } } }),
    ZT({ users: { $: { order: { createdAt: 'desc' }, fields: ['createdAt'] } } }),
  );
  // date values in the legacy forms V8 accepts, written by pending steps
  const ca = zAttrs.find((a) => a['forward-identity'][1] === 'users' && a['forward-identity'][2] === 'createdAt').id;
  const uids = ds.zeneca.triples.filter((t) => t[1] === zAttrs.find((a) => a['forward-identity'][1] === 'users' && a['forward-identity'][2] === 'id').id).map((t) => t[0]);
  const dates = ['2021-02-30 10:00', '2021-01-07T18:51:23.7Z', '+002021-01-07T00:00:00Z', '2021/01/07', '2021-01-07T10:00:00+0100', 1610045483742, null, 'junk'];
  for (let k = 0; k < 4; k++) {
    const steps = uids.map((u, i) => ['add-triple', u, ca, dates[(i + k) % dates.length]]);
    cases.push({ attrs: zAttrs, triples: ds.zeneca.triples, mutations: [{ steps }], q: { users: { $: { order: { createdAt: k % 2 ? 'asc' : 'desc' }, fields: ['createdAt'] } } } });
    cases.push({ attrs: zAttrs, triples: ds.zeneca.triples, mutations: [{ steps }], q: { users: { $: { where: { createdAt: { $gte: '2021-01-07T12:00:00Z' } }, fields: ['createdAt'] } } } });
  }
  return cases;
}

// Page-info cases: cursors taken from the leading result's own rows.
export function pageCases(ds, evaluate) {
  const f = facts(ds);
  const cases = [];
  const idAttr = f.attr('books', 'id').id, pcAttr = f.attr('books', 'pageCount').id;
  const tOf = (e) => ds.zeneca.triples.find((t) => t[0] === e && t[1] === idAttr)[3];
  const pcOf = (e) => ds.zeneca.triples.find((t) => t[0] === e && t[1] === pcAttr)?.[2];
  const orders = [
    [{ serverCreatedAt: 'asc' }, (e) => [e, idAttr, e, tOf(e)]],
    [{ serverCreatedAt: 'desc' }, (e) => [e, idAttr, e, tOf(e)]],
    [{ pageCount: 'asc' }, (e) => [e, pcAttr, pcOf(e), tOf(e)]],
    [{ pageCount: 'desc' }, (e) => [e, pcAttr, pcOf(e), tOf(e)]],
  ];
  for (const [order, cur] of orders) {
    const full = evaluate({ dataset: 'zeneca', q: { books: { $: { order, fields: ['title'] } } } }, ds).data.books;
    for (const [a, b, opt] of [[3, 12, { offset: 3 }], [0, 9, { limit: 10 }], [20, 40, { after: ['x'] }], [5, 5, { before: ['y'], limit: 4 }], [7, 30, { offset: 7, limit: 5 }]]) {
      const pi = {
        books: {
          'start-cursor': cur(full[a].id), 'end-cursor': cur(full[b].id),
          'has-next-page?': true, 'has-previous-page?': a > 0,
        },
      };
      cases.push({ dataset: 'zeneca', q: { books: { $: { order, fields: ['title', 'pageCount'], ...opt } } }, 'page-info': pi });
    }
  }
  // typed order attrs: a date (movies person.born) and a collated string (books.title)
  const mov = Object.values(structuredClone(ds.movies.attrs));
  for (const a of mov) if (a['forward-identity'][1] === 'person' && a['forward-identity'][2] === 'born') a['checked-data-type'] = 'date';
  const zt = structuredClone(ds.zeneca.attrs);
  for (const a of zt) if (a['forward-identity'][1] === 'books' && a['forward-identity'][2] === 'title') a['checked-data-type'] = 'string';
  const typed = [
    [mov, ds.movies.triples, 'person', 'born', ['name', 'born']],
    [zt, ds.zeneca.triples, 'books', 'title', ['title']],
  ];
  for (const [attrs, triples, etype, label, fields] of typed) {
    const oa = attrs.find((a) => a['forward-identity'][1] === etype && a['forward-identity'][2] === label).id;
    const valOf = (e) => triples.find((t) => t[0] === e && t[1] === oa)?.[2];
    for (const dir of ['asc', 'desc']) {
      const base = { attrs, triples };
      const full = evaluate({ ...base, q: { [etype]: { $: { order: { [label]: dir }, fields } } } }, ds).data[etype];
      for (const [a, b, opt] of [[2, 9, { offset: 2 }], [4, 4, { after: ['x'] }], [1, 20, { before: ['y'], limit: 6 }]]) {
        const pi = { [etype]: { 'start-cursor': [full[a].id, oa, valOf(full[a].id), 1], 'end-cursor': [full[b].id, oa, valOf(full[b].id), 1] } };
        cases.push({ ...base, q: { [etype]: { $: { order: { [label]: dir }, fields, ...opt } } }, 'page-info': pi });
      }
    }
  }
  // leading query with page-info: no cursor filter, order from the cursor's attr
  cases.push({ dataset: 'zeneca', q: { books: { $: { limit: 5, fields: ['pageCount'] } } },
    'page-info': { books: { 'start-cursor': [f.books[0], pcAttr, 107, 1], 'end-cursor': [f.books[1], pcAttr, 5, 1] } } });
  // unknown cursor attr: no filter, t order
  cases.push({ dataset: 'zeneca', q: { books: { $: { offset: 1, limit: 3 } } },
    'page-info': { books: { 'start-cursor': [f.books[0], 'nope', 1, 1], 'end-cursor': [f.books[1], 'nope', 1, 1] } } });
  // aggregate keys are left out
  cases.push({ dataset: 'zeneca', q: { books: { $: { aggregate: 'count' } }, users: {} }, aggregate: { books: { count: 5 } } });
  cases.push({ dataset: 'zeneca', q: { users: {} }, 'page-info': {} });
  return cases;
}

// Where the engine follows the server, not the JS client: every comparator
// of one operator object applies. `expect` rewrites the query into one the
// JS client evaluates with the server's meaning.
export function serverCases() {
  const out = [];
  const mk = (ns, key, ops, extra = {}) => {
    const q = { [ns]: { $: { where: { [key]: ops }, ...extra } } };
    const expectQ = { [ns]: { $: { where: { and: Object.entries(ops).map(([k, v]) => ({ [key]: { [k]: v } })) }, ...extra } } };
    return { q, expectQ };
  };
  const specs = [
    ['books', 'pageCount', { $gt: 100, $lt: 200 }, { fields: ['pageCount'] }],
    ['books', 'pageCount', { $gte: 300, $lte: 310 }, { fields: ['pageCount'] }],
    ['books', 'pageCount', { $lt: 150, $gt: 120 }, { fields: ['pageCount'] }],
    ['books', 'title', { $gte: 'A', $lt: 'C' }, { fields: ['title'] }],
    ['books', 'title', { $like: '%the%', $gt: 'M' }, { fields: ['title'] }],
    ['books', 'title', { $ilike: 'the%', $like: '%s%' }, { fields: ['title'] }],
    ['users', 'handle', { $gt: 'a', $lt: 'k' }, {}],
    ['books', 'pageCount', { $gt: 1000, $lt: 100 }, {}],
  ];
  for (const [ns, key, ops, extra] of specs) {
    const { q, expectQ } = mk(ns, key, ops, extra);
    out.push({ dataset: 'zeneca', q, expectQ, server: true });
  }
  out.push({ dataset: 'movies', ...(() => {
    const ops = { $gte: 1980, $lt: 1990 };
    return { q: { movie: { $: { where: { year: ops }, fields: ['year'] } } },
      expectQ: { movie: { $: { where: { and: [{ year: { $gte: 1980 } }, { year: { $lt: 1990 } }] }, fields: ['year'] } } } };
  })(), server: true });
  return out;
}

// Invalid queries: the engine must answer with an error naming `part`.
export function errorCases() {
  const E = (q, part, jsThrows = false) => ({ dataset: 'zeneca', q, expectError: part, jsThrows });
  return [
    E({ users: { $: { where: { handle: null } } } }, 'users.$.where.handle', true),
    E({ users: { $: { where: { 'bookshelves.name': null } } } }, 'users.$.where.bookshelves.name', true),
    E({ users: { $: { where: { 'handle.foo': 1 } } } }, 'users.$.where.handle.foo', true),
    E({ bookshelves: { $: { where: { 'users.handle.x': 1 } } } }, 'bookshelves.$.where.users.handle.x', true),
    E({ users: { handle: {} } }, 'users.handle', true),
    E({ users: { bookshelves: { name: {} } } }, 'users.bookshelves.name', true),
    E({ users: { $: { where: { handle: { $foo: 1 } } } } }, 'users.$.where.handle'),
    E({ users: { $: { where: { handle: { $nin: ['a'] } } } } }, 'users.$.where.handle'),
    E({ users: { $: { where: { or: 'x' } } } }, 'users.$.where.or'),
    E({ users: { $: { where: { and: [1] } } } }, 'users.$.where.and[0]'),
    E({ users: { $: { where: { or: [{ handle: { $in: 'alex' } }] } } } }, 'users.$.where.or[0].handle.$in'),
    E({ users: { $: { where: { handle: { $isNull: 'yes' } } } } }, 'users.$.where.handle.$isNull'),
    E({ users: { $: { where: { handle: { $like: 5 } } } } }, 'users.$.where.handle.$like'),
    E({ users: { $: { where: 'x' } } }, 'users.$.where'),
    E({ users: { $: { limit: -1 } } }, 'users.$.limit'),
    E({ users: { $: { limit: 'a' } } }, 'users.$.limit'),
    E({ users: { $: { first: 1.5 } } }, 'users.$.first'),
    E({ users: { $: { order: { handle: 'up' } } } }, 'users.$.order.handle'),
    E({ users: { $: { bogus: 1 } } }, 'users.$.bogus'),
    E({ users: { $: { fields: 'handle' } } }, 'users.$.fields'),
    E({ users: null }, 'users'),
    E({ users: [] }, 'users'),
    E({ users: { bookshelves: 5 } }, 'users.bookshelves'),
    E({ users: { $: 1 } }, 'users.$'),
    E([], 'query'),
    E({ users: { $: { where: { '': 1 } } } }, 'users.$.where.'),
  ];
}

// checked-data-type string ordering (ICU collation) on generated words.
export function collationCases(r) {
  const alphabet = [...'abcxyzABCXYZ019 _-,.;!?\'"()/&#%+<=>|~$'] .concat(['\u00e9', '\u00c9', '\u00e8', '\u00ea', '\u00eb', '\u00e0', '\u00c5', '\u00f1', '\u00e7', '\u00f6', '\u00d8', '\u00fc', '\u00df', '\u00e6', '\u00a0', '\u2019', '\u2018', '\u201c', '\u2013', '\u2014', '\u2026', '\u00a9', '\u20ac']);
  const cases = [];
  for (let k = 0; k < 6; k++) {
    const attrs = [
      { id: 'c0000000-0000-4000-8000-000000000001', 'forward-identity': ['c1', 'w', 'id'], 'value-type': 'blob', cardinality: 'one', 'unique?': true, 'index?': true },
      { id: 'c0000000-0000-4000-8000-000000000002', 'forward-identity': ['c2', 'w', 's'], 'value-type': 'blob', cardinality: 'one', 'unique?': false, 'index?': true, 'checked-data-type': 'string' },
    ];
    const triples = [];
    for (let i = 0; i < 60; i++) {
      const id = r.uuid();
      let w = '';
      const n = 1 + r.int(6);
      for (let j = 0; j < n; j++) w += r.pick(alphabet);
      triples.push([id, attrs[0].id, id, 1000 + i], [id, attrs[1].id, w, 1000 + i]);
    }
    cases.push({ attrs, triples, q: { w: { $: { order: { s: k % 2 ? 'desc' : 'asc' } } } } });
  }
  return cases;
}
