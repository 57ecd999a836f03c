// `npm run test:matrix [-- --report <file>] [-- --only <text>]`: the provider SDK version matrix.
// Installs every cell of test/matrix/sdk-matrix.json that can run on this Node into .cache/sdk-matrix/ (reused
// when already there), then runs the cells' end-to-end tests with vitest, writing vitest's JSON report to
// --report (or $SDK_MATRIX_REPORT; default test-results/sdk-matrix-node<major>.json). Cells whose SDK needs a
// newer Node are not run here: they are listed, with the reason, before and after the tests.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const matrix = JSON.parse(readFileSync(join(root, 'test', 'matrix', 'sdk-matrix.json'), 'utf8'));
const cacheDir = join(root, '.cache', 'sdk-matrix');
// tokenmeter's own minimum Node: a cell without minNode runs on every Node tokenmeter supports.
const projectMinNode = /(\d+\.\d+\.\d+)/.exec(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).engines.node)[1];

function argValue(name) {
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name) return args[i + 1];
    if (args[i].startsWith(`${name}=`)) return args[i].slice(name.length + 1);
  }
  return undefined;
}

const nodeVersion = process.versions.node;
const report = resolve(root, argValue('--report') ?? process.env.SDK_MATRIX_REPORT ?? join('test-results', `sdk-matrix-node${nodeVersion.split('.')[0]}.json`));
const only = argValue('--only');

function parse(v) {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v ?? '');
  if (m === null) throw new Error(`sdk-matrix: not a version: ${v}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}
function atLeast(v, min) {
  const a = parse(v);
  const b = parse(min);
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] > b[i];
  return true;
}

const cellId = (c) => `${c.package}@${c.version}`;
const cellDir = (c) => join(cacheDir, cellId(c).replaceAll('/', '+'));

function installedVersion(dir, name) {
  try {
    return JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

/** The minimum Node the package itself declares (`engines.node` of the form `>=X[.Y[.Z]]`), if any. */
function declaredMinNode(dir, name) {
  try {
    const engines = JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')).engines?.node;
    const m = /^\s*>=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?\s*$/.exec(engines ?? '');
    return m === null ? undefined : `${m[1]}.${m[2] ?? 0}.${m[3] ?? 0}`;
  } catch {
    return undefined;
  }
}

function install(cell) {
  const dir = cellDir(cell);
  const wanted = { [cell.package]: cell.version, ...(cell.with ?? {}) };
  const missing = Object.entries(wanted).filter(([name, version]) => installedVersion(dir, name) !== version);
  if (missing.length === 0) return dir;
  mkdirSync(dir, { recursive: true });
  const specs = Object.entries(wanted).map(([name, version]) => `${name}@${version}`);
  console.log(`sdk-matrix: installing ${specs.join(' ')} into ${dir}`);
  const npm = spawnSync('npm', ['install', '--prefix', dir, '--no-save', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error', ...specs], {
    stdio: 'inherit',
  });
  if (npm.status !== 0) throw new Error(`sdk-matrix: npm install of ${specs.join(' ')} failed (exit ${npm.status})`);
  for (const [name, version] of Object.entries(wanted)) {
    if (installedVersion(dir, name) !== version) throw new Error(`sdk-matrix: ${name}@${version} is not in ${dir} after npm install`);
  }
  return dir;
}

const run = [];
const leftOut = [];
for (const cell of matrix.cells) {
  if (only !== undefined && !cellId(cell).includes(only) && cell.suite !== only) continue;
  if (cell.minNode !== undefined && !atLeast(nodeVersion, cell.minNode)) {
    leftOut.push(`${cellId(cell)} (${cell.suite}): needs Node >= ${cell.minNode}, this is ${process.version}`);
    continue;
  }
  run.push(cell);
}

function printLeftOut() {
  if (leftOut.length === 0) {
    console.log(`sdk-matrix: no cell left out on Node ${process.version}`);
    return;
  }
  console.log(`sdk-matrix: ${leftOut.length} cell(s) not run on Node ${process.version}:`);
  for (const l of leftOut) console.log(`  - ${l}`);
}

printLeftOut();
if (!existsSync(join(root, 'dist', 'instrumentation', 'register.js'))) {
  console.error('sdk-matrix: dist/ is missing: run `npm run build` first (npm run test:matrix does)');
  process.exit(1);
}
const prepared = [];
for (const cell of run) {
  const dir = install(cell);
  // The matrix file must not claim a cell runs on a Node its package refuses.
  for (const name of [cell.package, ...Object.keys(cell.with ?? {})]) {
    const min = declaredMinNode(dir, name);
    if (min !== undefined && !atLeast(cell.minNode ?? projectMinNode, min)) {
      console.error(`sdk-matrix: ${name} in cell ${cellId(cell)} declares engines node >=${min}; set "minNode": "${min}" (or higher) in test/matrix/sdk-matrix.json`);
      process.exit(1);
    }
  }
  prepared.push({ id: cellId(cell), suite: cell.suite, package: cell.package, version: cell.version, with: cell.with ?? {}, dir });
}
if (prepared.length === 0) {
  console.error('sdk-matrix: no cell to run');
  process.exit(1);
}

const files = [...new Set(prepared.map((c) => `test/matrix/${c.suite}.cell.ts`))];
mkdirSync(dirname(report), { recursive: true });
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const started = Date.now();
const result = spawnSync(
  process.execPath,
  [vitest, 'run', '--config', 'test/matrix/vitest.config.ts', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, SDK_MATRIX_CELLS: JSON.stringify(prepared) } },
);
console.log(`sdk-matrix: ran ${prepared.length} cell(s) on Node ${process.version} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${prepared.map((c) => c.id).join(', ')}`);
printLeftOut();
console.log(`sdk-matrix: vitest JSON report: ${report}`);
process.exit(result.status ?? 1);
