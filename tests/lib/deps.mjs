// Loads the tests' npm packages from the directory the build names, so Node tools
// work from a VPATH or distcheck build whose source tree has no node_modules.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const nodeModules = process.env.INSTANTD_NODE_MODULES || path.join(here, '..', 'node_modules');

// Import a file inside a package, e.g. importDep('@instantdb/core/dist/esm/instaql.js').
export async function importDep(spec) {
  const parts = spec.split('/');
  const pkgLen = spec.startsWith('@') ? 2 : 1;
  const pkg = parts.slice(0, pkgLen).join('/');
  let file = parts.slice(pkgLen).join('/');
  if (!file) {
    const meta = (await import(pathToFileURL(path.join(nodeModules, pkg, 'package.json')), { with: { type: 'json' } })).default;
    file = pickEntry(meta);
  }
  return import(pathToFileURL(path.join(nodeModules, pkg, file)).href);
}

function pickEntry(meta) {
  const e = meta.exports;
  const root = e && (typeof e === 'string' ? e : e['.']);
  if (typeof root === 'string') return root;
  if (root && typeof root === 'object') {
    const imp = root.import;
    if (typeof imp === 'string') return imp;
    if (imp && imp.default) return imp.default;
    if (root.default) return typeof root.default === 'string' ? root.default : root.default.default;
    if (root.node) return root.node.import || root.node;
  }
  return meta.module || meta.main || 'index.js';
}
