// Copies the files tsc does not emit (CommonJS shims, static assets, data) from src/ into dist/.
import { cpSync, readdirSync, statSync, mkdirSync } from 'node:fs';
import { join, dirname, relative, extname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
const dist = join(root, 'dist');
const copied = new Set(['.cjs', '.cts', '.json', '.html', '.css', '.js', '.svg', '.png', '.proto', '.yaml']);

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    // Hand-written CommonJS declarations (.d.cts) are copied; other TypeScript is tsc's.
    else if (copied.has(extname(name)) && (!name.endsWith('.ts') || name.endsWith('.d.cts'))) {
      const target = join(dist, relative(src, path));
      mkdirSync(dirname(target), { recursive: true });
      cpSync(path, target);
    }
  }
}
walk(src);
