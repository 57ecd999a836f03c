/**
 * Writes the generated stack files (Grafana dashboards and provisioning, Grafana-managed and Prometheus alert
 * rules, Prometheus recording rules) from src/dashboards/, and the price catalog embedded as a module
 * (src/pricing/catalog-data.ts, from data/price-catalog.yaml): `npm run generate`. With --check (`npm run
 * check:generated`, run by CI) it writes nothing and fails when a committed file differs from what the code generates.
 *
 * The alerts' links are absolute: `--runbook-base-url=<url of docs/runbooks.md as your team publishes it>` and
 * `--grafana-url=<your Grafana>` (or TOKENMETER_RUNBOOK_BASE_URL / TOKENMETER_GRAFANA_URL) replace the defaults
 * (DEFAULT_RUNBOOK_BASE_URL, DEFAULT_GRAFANA_URL in src/dashboards/alerts.ts). --check always compares against the
 * defaults, which is what the repository commits.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedFiles } from '../src/dashboards/generate.js';
import { CATALOG_DATA_MODULE, catalogDataModule } from './catalog-data.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');

/** `--name=value` or `--name value`, else the environment variable, else undefined (the default). */
function option(name: string, env: string): string | undefined {
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}`) {
      const v = args[i + 1];
      if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
      return v;
    }
    if (args[i]!.startsWith(`--${name}=`)) return args[i]!.slice(name.length + 3);
  }
  return process.env[env] || undefined;
}

const known = new Set(['--check', '--runbook-base-url', '--grafana-url']);
for (const a of process.argv.slice(2)) {
  if (a.startsWith('--') && !known.has(a.split('=')[0]!)) throw new Error(`unknown option ${a} (options: ${[...known].join(', ')})`);
}
const options = check
  ? {}
  : { runbookBaseUrl: option('runbook-base-url', 'TOKENMETER_RUNBOOK_BASE_URL'), grafanaUrl: option('grafana-url', 'TOKENMETER_GRAFANA_URL') };

let stale = 0;
let files: Map<string, string>;
try {
  files = generatedFiles(options);
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
}
const catalogYaml = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'data', 'price-catalog.yaml'), 'utf8');
files.set(CATALOG_DATA_MODULE, catalogDataModule(catalogYaml));
for (const [path, content] of files) {
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
