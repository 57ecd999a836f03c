import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSupportedVersion, parseVersion, rangeText, SUPPORTED_SDKS, type SdkPackage } from '../../src/instrumentation/supported.js';

/*
 * The supported ranges are stated in four places; they must be the tested ones: the matrix file, the code that
 * warns (supported.ts), package.json's peerDependencies and the docs' table.
 */

interface Cell {
  suite: string;
  package: string;
  version: string;
  minNode?: string;
  with?: Record<string, string>;
}

const ROOT = join(import.meta.dirname, '..', '..');
const matrix = JSON.parse(readFileSync(join(ROOT, 'test', 'matrix', 'sdk-matrix.json'), 'utf8')) as { supported: Record<string, string>; cells: Cell[] };
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { peerDependencies: Record<string, string>; engines: { node: string } };
const docs = readFileSync(join(ROOT, 'docs', 'instrumentation.md'), 'utf8');
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const SDKS = Object.keys(SUPPORTED_SDKS) as SdkPackage[];

function cmp(a: string, b: string): number {
  const x = parseVersion(a)!;
  const y = parseVersion(b)!;
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
}

/** The docs' "tested releases" cell for a package, built from the matrix. */
function testedReleases(name: string): string {
  const byMajor = new Map<number, Cell[]>();
  for (const c of matrix.cells.filter((x) => x.package === name)) {
    const major = parseVersion(c.version)![0];
    byMajor.set(major, [...(byMajor.get(major) ?? []), c]);
  }
  return [...byMajor.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([major, cells]) => {
      const sorted = cells.sort((a, b) => cmp(a.version, b.version));
      const minNode = sorted.find((c) => c.minNode !== undefined)?.minNode;
      return `${major}.x: ${sorted.map((c) => c.version).join(', ')}${minNode === undefined ? '' : ` (Node ${minNode.replace(/\.0$/, '').replace(/\.0$/, '')}+)`}`;
    })
    .join('; ');
}

const NON_SDK_PEERS = ['js-tiktoken'];

describe('the SDK version matrix file', () => {
  it('states the same supported ranges as supported.ts and package.json peerDependencies', () => {
    expect(Object.keys(matrix.supported).sort()).toEqual([...SDKS].sort());
    // js-tiktoken is an optional peer too (the app side's tokenizer for estimates), not an instrumented SDK.
    expect(Object.keys(pkg.peerDependencies).filter((n) => !NON_SDK_PEERS.includes(n)).sort()).toEqual([...SDKS].sort());
    for (const name of SDKS) {
      expect(matrix.supported[name]).toBe(rangeText(name));
      expect(pkg.peerDependencies[name]).toBe(rangeText(name));
    }
  });

  it('tests the oldest supported release and every supported major, and nothing outside the ranges', () => {
    for (const name of SDKS) {
      const versions = matrix.cells.filter((c) => c.package === name).map((c) => c.version);
      const { min, belowMajor } = SUPPORTED_SDKS[name];
      expect(versions.sort(cmp)[0]).toBe(min);
      for (const v of versions) expect(isSupportedVersion(name, v), `${name}@${v}`).toBe(true);
      const majors = new Set(versions.map((v) => parseVersion(v)![0]));
      for (let m = parseVersion(min)![0]; m < belowMajor; m++) {
        expect(majors.has(m), `${name} ${m}.x is in the range but has no cell`).toBe(true);
        // The oldest and the newest release of the major (one cell only when the major has one release).
        expect(versions.filter((v) => parseVersion(v)![0] === m).length, `${name} ${m}.x`).toBe(2);
      }
    }
  });

  it('names a suite that exists, exact versions and valid minimum Node versions for every cell', () => {
    const nodeMin = /(\d+\.\d+\.\d+)/.exec(pkg.engines.node)![1];
    const ids = new Set<string>();
    for (const c of matrix.cells) {
      expect(existsSync(join(ROOT, 'test', 'matrix', `${c.suite}.cell.ts`)), c.suite).toBe(true);
      expect(c.version).toMatch(/^\d+\.\d+\.\d+$/);
      for (const v of Object.values(c.with ?? {})) expect(v).toMatch(/^\d+\.\d+\.\d+$/);
      if (c.minNode !== undefined) {
        expect(c.minNode).toMatch(/^\d+\.\d+\.\d+$/);
        expect(cmp(c.minNode, nodeMin)).toBeGreaterThan(0);
      }
      const id = `${c.package}@${c.version}`;
      expect(ids.has(id), id).toBe(false);
      ids.add(id);
    }
    // Point 5 of issue 11: an app's own NodeSDK of the current line.
    expect(matrix.cells.some((c) => c.suite === 'own-sdk' && c.package === '@opentelemetry/sdk-node')).toBe(true);
  });

  it('is the supported versions table of docs/instrumentation.md, and the README states the same ranges', () => {
    for (const name of SDKS) {
      expect(docs).toContain(`| \`${name}\` | \`${rangeText(name)}\` | ${testedReleases(name)} |`);
      expect(readme).toContain(`\`${name}\` (${rangeText(name)})`);
    }
    for (const c of matrix.cells.filter((x) => x.suite === 'own-sdk')) {
      expect(docs).toContain(`| \`${c.package}\` (your own SDK) |`);
      expect(docs).toContain(`${c.version} (Node ${c.minNode!.replace(/\.0$/, '')}+)`);
    }
  });
});
