/**
 * Writes the generated stack files (Grafana dashboards and provisioning, Grafana-managed and Prometheus alert
 * rules) from src/dashboards/, and the price catalog embedded as a module (src/pricing/catalog-data.ts, from
 * data/price-catalog.yaml): `npm run generate`. With --check (`npm run check:generated`, run by CI) it writes
 * nothing and fails when a committed file differs from what the code generates.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedFiles } from '../src/dashboards/generate.js';
import { CATALOG_DATA_MODULE, catalogDataModule } from './catalog-data.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');

let stale = 0;
const catalogYaml = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'data', 'price-catalog.yaml'), 'utf8');
for (const [path, content] of [...generatedFiles(), [CATALOG_DATA_MODULE, catalogDataModule(catalogYaml)] as const]) {
  const target = join(root, path);
  const current = existsSync(target) ? readFileSync(target, 'utf8') : undefined;
  if (current === content) continue;
  if (check) {
    stale += 1;
    process.stderr.write(`${path}: ${current === undefined ? 'missing' : 'differs from what src/dashboards/ (or data/price-catalog.yaml) generates'}\n`);
  } else {
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
    process.stdout.write(`wrote ${path}\n`);
  }
}
if (stale > 0) {
  process.stderr.write(`${stale} generated file(s) out of date: run \`npm run generate\` and commit the result.\n`);
  process.exitCode = 1;
} else if (check) {
  process.stdout.write('generated files are current\n');
}
