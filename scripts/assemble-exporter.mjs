// Assembles the tokenmeter-exporter package (packages/exporter) from the repository's one build, at pack time
// (its `prepack`): builds, then copies dist/ (without source maps: src/ is not shipped), the price catalog, the
// Grafana and Collector configurations, the project README and the docs it links to, the example configuration
// and LICENSE.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(root, 'packages', 'exporter');

// --no-build (or TOKENMETER_ASSEMBLE_NO_BUILD=1): the build just ran (the packaging test packs both packages).
if (!process.argv.includes('--no-build') && process.env.TOKENMETER_ASSEMBLE_NO_BUILD !== '1') {
  // From a clean dist/: a file left by an older build (a module since removed) must not be shipped.
  rmSync(join(root, 'dist'), { recursive: true, force: true });
  execFileSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 2, 2] });
}
for (const name of ['dist', 'data', 'grafana', 'otel-config', 'docs']) {
  rmSync(join(target, name), { recursive: true, force: true });
  cpSync(join(root, name), join(target, name), { recursive: true, filter: (src) => !src.endsWith('.map') });
}
for (const name of ['LICENSE', 'README.md', 'BENCHMARKS.md', 'tokenmeter.example.yaml']) cpSync(join(root, name), join(target, name));
if (!existsSync(join(target, 'dist', 'cli', 'main.js'))) throw new Error('assemble-exporter: the build produced no dist/cli/main.js');
