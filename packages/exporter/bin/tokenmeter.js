#!/usr/bin/env node
// The `tokenmeter` command of the exporter package. The published package carries its dist/ next to this file
// (assembled from the repository's one build at pack time); in the development repository, where this package is
// an npm workspace, the one build is the repository's own dist/ (`npm run build`).
import { existsSync } from 'node:fs';

const packed = new URL('../dist/cli/main.js', import.meta.url);
const repository = new URL('../../../dist/cli/main.js', import.meta.url);
const inRepository = existsSync(new URL('../../../packages/exporter/package.json', import.meta.url));
const target = existsSync(packed) ? packed : inRepository && existsSync(repository) ? repository : undefined;
if (target === undefined) {
  process.stderr.write('tokenmeter: this copy of tokenmeter-exporter has no dist/ (in the repository, run `npm run build` first)\n');
  process.exitCode = 1;
} else {
  const { main } = await import(target.href);
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`tokenmeter: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
