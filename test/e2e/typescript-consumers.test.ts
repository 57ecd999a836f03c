/**
 * TypeScript settings an app may compile with, each type-checking a tiny consumer of the built package
 * (installed as a copy in the fixture's node_modules, declarations checked too: no skipLibCheck):
 * CommonJS under `module: node16` (TS1479 without the .d.cts declarations), ES modules under `nodenext`,
 * `moduleResolution: node10` (no `exports` support: typesVersions), and `bundler`; with `esModuleInterop` (tsc --init's
 * default; without it zod's own declarations fail under node10).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, ROOT } from './fixtures/run-app.js';

const WORK = join(ROOT, '.e2e-ts');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

const CONSUMER = `import { withUser, trackUsage, TokenmeterInstrumentation, type UserAttribution, type UsageTotals } from 'tokenmeter';
import { shutdownTokenmeter } from 'tokenmeter/register';

const user: UserAttribution = { id: 'u1', plan: 'pro' };
export const instrumentation: TokenmeterInstrumentation = new TokenmeterInstrumentation();

export async function run(): Promise<number> {
  const totals: UsageTotals<number> = await trackUsage(() => withUser(user, () => 1));
  const n: number = totals.result + totals.requests;
  await shutdownTokenmeter();
  return n;
}

// A wrong use must still be an error (the declarations are not 'any').
// @ts-expect-error withUser takes a UserAttribution
withUser(42, () => 1);
`;

const SETTINGS = {
  'CommonJS, module node16': { type: undefined, compilerOptions: { module: 'node16', moduleResolution: 'node16' } },
  'CommonJS, module nodenext': { type: undefined, compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext' } },
  'ES module, module nodenext': { type: 'module', compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext' } },
  // TypeScript 6 refuses node10 unless told to ignore its deprecation (TS5107); TypeScript 5 needs nothing.
  'moduleResolution node10 (module commonjs)': { type: undefined, compilerOptions: { module: 'commonjs', moduleResolution: 'node10', ignoreDeprecations: '6.0' } },
  'moduleResolution bundler (module esnext)': { type: 'module', compilerOptions: { module: 'esnext', moduleResolution: 'bundler' } },
} as const;

beforeAll(() => {
  assertBuilt();
  rmSync(WORK, { recursive: true, force: true });
});

function project(name: string, type: string | undefined, compilerOptions: Record<string, string>): string {
  const dir = join(WORK, name.replace(/[^a-z0-9]+/gi, '-'));
  const installed = join(dir, 'node_modules', 'tokenmeter');
  mkdirSync(installed, { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(installed, 'package.json'));
  cpSync(join(ROOT, 'dist'), join(installed, 'dist'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, ...(type ? { type } : {}) }));
  writeFileSync(join(dir, 'index.ts'), CONSUMER);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { ...compilerOptions, target: 'es2022', strict: true, esModuleInterop: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')] }, files: ['index.ts'] }),
  );
  return dir;
}

describe('TypeScript consumers', () => {
  it.each(Object.entries(SETTINGS))('%s type-checks', (name, s) => {
    const dir = project(name, s.type, s.compilerOptions);
    const r = spawnSync(process.execPath, [TSC, '-p', dir], { cwd: dir, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 240_000);

  it('the CommonJS declarations name every export of src/index.ts', () => {
    const names = (text: string, re: RegExp) => new Set([...text.matchAll(re)].flatMap((m) => m[1].split(',').map((n) => n.trim()).filter(Boolean)));
    const esm = names(readFileSync(join(ROOT, 'src', 'index.ts'), 'utf8'), /export (?:type )?\{([^}]*)\}/g);
    const cjs = new Set([...readFileSync(join(ROOT, 'src', 'index.d.cts'), 'utf8').matchAll(/export (?:declare const|type) (\w+)/g)].map((m) => m[1]));
    expect([...esm].sort()).toEqual([...cjs].sort());
  });
});
