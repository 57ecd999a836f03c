/**
 * What an app loads from tokenmeter (the built package, as apps get it): `tokenmeter/register` and `tokenmeter`
 * never load the pricing engine statically (trackUsage imports it on first use), and no built module computes a
 * file path with `new URL('<literal>', import.meta.url)`, the form webpack rewrites into an asset URL object
 * (`next build --webpack` failed on the price catalog's).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertBuilt, ROOT } from './fixtures/run-app.js';

const DIST = join(ROOT, 'dist');

/** Relative specifiers a built module imports: static (followed) and dynamic `import('...')` (not followed). */
function imports(file: string): { static: string[]; dynamic: string[] } {
  const text = readFileSync(file, 'utf8');
  const stat = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*'([^']+)'/g), ...text.matchAll(/(?:^|\n)\s*import\s*'([^']+)'/g)].map((m) => m[1]);
  const dyn = [...text.matchAll(/import\(\s*'([^']+)'\s*\)/g)].map((m) => m[1]);
  const local = (list: string[]) => list.filter((s) => s.startsWith('.')).map((s) => resolve(dirname(file), s));
  return { static: local(stat), dynamic: local(dyn) };
}

function staticGraph(entry: string): Set<string> {
  const seen = new Set<string>();
  const todo = [join(DIST, entry)];
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    todo.push(...imports(f).static);
  }
  return new Set([...seen].map((f) => relative(DIST, f)));
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.js') ? [p] : [];
  });
}

describe('the app-side import path', () => {
  it.each(['instrumentation/register.js', 'index.js'])('%s loads no pricing module', (entry) => {
    assertBuilt();
    const graph = staticGraph(entry);
    expect(graph.has('instrumentation/scope.js')).toBe(true);
    expect([...graph].filter((f) => f.startsWith('pricing/'))).toEqual([]);
  });

  it('trackUsage loads the pricing engine on first use', () => {
    expect(imports(join(DIST, 'instrumentation', 'track-usage.js')).dynamic.map((f) => relative(DIST, f))).toEqual(['pricing/index.js']);
  });

  it('no module an app loads (register, tokenmeter, tokenmeter/pricing, trackUsage) resolves a file with new URL(<literal>, import.meta.url)', () => {
    const appSide = new Set([...staticGraph('instrumentation/register.js'), ...staticGraph('index.js'), ...staticGraph('pricing/index.js')]);
    expect(appSide.has('pricing/price-book.js')).toBe(true);
    const offenders = walk(DIST).filter((f) => appSide.has(relative(DIST, f))).filter((f) => /new URL\(\s*['"`][^'"`]*['"`]\s*,\s*import\.meta\.url\s*\)/.test(readFileSync(f, 'utf8')));
    expect(offenders.map((f) => relative(DIST, f))).toEqual([]);
  });
});
