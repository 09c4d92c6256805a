// Builds the benchmark data set: the zeneca data set (tests/data/zeneca) copied `copies` times with
// fresh ids and perturbed values from a seeded generator, so every run sees the same ~100k triples.
// CLI: node gen.mjs OUT.json [copies] [seed]   (writes {"attrs":[…],"triples":[…]} for the mock's --seed)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

// mulberry32: small, fast, and good enough to make reproducible ids and values.
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

// A version-4 UUID from the generator (the JS client checks version and variant bits).
export function uuidFrom(rand) {
	const h = [];
	for (let i = 0; i < 16; i++) h.push(Math.floor(rand() * 256));
	h[6] = (h[6] & 0x0f) | 0x40;
	h[8] = (h[8] & 0x3f) | 0x80;
	const s = h.map((b) => b.toString(16).padStart(2, '0')).join('');
	return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

// Returns {attrs, triples, users, shelves, books}: entity ids by etype, in generation order.
export function generate({ copies = 40, seed = 20240611, dataDir = path.join(here, '..', 'data', 'zeneca') } = {}) {
	const rawAttrs = JSON.parse(fs.readFileSync(path.join(dataDir, 'attrs.json'), 'utf8'));
	const attrs = Array.isArray(rawAttrs) ? rawAttrs : Object.values(rawAttrs);
	const base = JSON.parse(fs.readFileSync(path.join(dataDir, 'triples.json'), 'utf8'));
	const byId = new Map(attrs.map((a) => [a.id, a]));
	const rand = rng(seed);
	// Which ids are entities of which etype: the subjects of each etype's attrs.
	const etypeOf = new Map();
	for (const [e, a] of base) etypeOf.set(e, byId.get(a)['forward-identity'][1]);
	const triples = [];
	const ids = { users: [], bookshelves: [], books: [] };
	for (let c = 0; c < copies; c++) {
		const map = new Map();
		const idOf = (old) => {
			let n = map.get(old);
			if (!n) {
				n = uuidFrom(rand);
				map.set(old, n);
				const et = etypeOf.get(old);
				if (ids[et]) ids[et].push(n);
			}
			return n;
		};
		for (const [e, a, v, t] of base) {
			const attr = byId.get(a);
			const label = attr['forward-identity'][2];
			let nv = v;
			if (attr['value-type'] === 'ref' || label === 'id') nv = idOf(v);
			else if (typeof v === 'number') nv = label === 'order' ? v : Math.floor(v * (0.5 + rand()));
			else if (typeof v === 'string' && (label === 'handle' || label === 'email' || label === 'isbn13'))
				nv = c === 0 ? v : `${v}-${c}`;		// unique attrs stay unique
			else if (typeof v === 'string' && c > 0 && rand() < 0.5) nv = `${v} (${c})`;
			triples.push([idOf(e), a, nv, t + c]);
		}
	}
	return { attrs, triples, ...ids };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
	const [out, copies, seed] = process.argv.slice(2);
	const d = generate({ copies: Number(copies || 40), seed: Number(seed || 20240611) });
	fs.writeFileSync(out, JSON.stringify({ attrs: d.attrs, triples: d.triples }));
	console.log(`${d.triples.length} triples, ${d.users.length} users, ${d.bookshelves.length} shelves, ${d.books.length} books`);
}
