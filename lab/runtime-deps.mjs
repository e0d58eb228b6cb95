// node runtime-deps.mjs <dest> <dir>...: copies into <dest>/node_modules the npm packages that
// the compiled code in <dest>/<dir>/**/*.js reaches through its imports, plus their
// dependencies, so an image carries only what it runs. Run from the repository root.
import { cpSync, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';

const [dest, ...dirs] = process.argv.slice(2);
const specifier = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)['"]([^'"]+)['"]/g;

function jsFiles(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? jsFiles(p) : p.endsWith('.js') ? [p] : [];
  });
}

const seen = new Set();
const packages = new Set();
const queue = dirs.flatMap((d) => jsFiles(path.join(dest, d)));
while (queue.length) {
  const file = queue.pop();
  if (seen.has(file) || !existsSync(file)) continue;
  seen.add(file);
  for (const [, spec] of readFileSync(file, 'utf8').matchAll(specifier)) {
    if (spec.startsWith('.')) queue.push(path.resolve(path.dirname(file), spec));
    else if (!spec.startsWith('node:') && !builtinModules.includes(spec)) {
      packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
    }
  }
}

// dependencies of dependencies, from each installed package.json
const todo = [...packages];
while (todo.length) {
  const name = todo.pop();
  const manifest = path.join('node_modules', name, 'package.json');
  if (!existsSync(manifest)) continue;
  for (const dep of Object.keys(JSON.parse(readFileSync(manifest, 'utf8')).dependencies ?? {})) {
    if (!packages.has(dep)) {
      packages.add(dep);
      todo.push(dep);
    }
  }
}
for (const name of packages) {
  if (existsSync(path.join('node_modules', name))) {
    cpSync(path.join('node_modules', name), path.join(dest, 'node_modules', name), { recursive: true, dereference: true });
  }
}
console.log([...packages].sort().join(' '));
