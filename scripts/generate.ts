/**
 * Writes the generated stack files (Grafana dashboards and provisioning, Grafana-managed and Prometheus alert
 * rules) from src/dashboards/: `npm run generate`. With --check (`npm run check:generated`, run by CI) it writes
 * nothing and fails when a committed file differs from what the code generates.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedFiles } from '../src/dashboards/generate.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');

let stale = 0;
for (const [path, content] of generatedFiles()) {
  const target = join(root, path);
  const current = existsSync(target) ? readFileSync(target, 'utf8') : undefined;
  if (current === content) continue;
  if (check) {
    stale += 1;
    process.stderr.write(`${path}: ${current === undefined ? 'missing' : 'differs from what src/dashboards/ generates'}\n`);
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
