#!/usr/bin/env node
// Event-loop delay during the first token estimate of a process (issue 21): `node bench/first-estimate/run.mjs`
// (3 processes per variant) or `--quick` (1). Needs `npm run build`. Each measurement is a fresh child process,
// so the tokenizer is not loaded yet, as for an app's first aborted stream:
//   before  the former path: js-tiktoken's constructor builds the o200k table synchronously on first use;
//   after   tokenmeter's loadEstimator(): the table is built in slices between event-loop turns;
//   noise   no estimate: 4 ms slices of plain arithmetic between event-loop turns for 2 s, i.e. what the
//           machine's scheduling alone does to a process as busy as `after` (a shared machine preempts it).
// A 1 ms interval timer measures the longest gap between its ticks (what any request handler, or the close of
// an aborted stream, waits at worst) while the estimator gets ready. Prints Markdown on stdout.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmtRange, summary } from '../lib/stats.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const CHILD = `
const { createRequire } = require('node:module');
const req = createRequire(process.cwd() + '/package.json');
const mode = process.argv[1];
let last = performance.now(), maxGap = 0, ticks = 0;
const probe = setInterval(() => { const n = performance.now(); maxGap = Math.max(maxGap, n - last); last = n; ticks++; }, 1);
setTimeout(async () => {
  // tokenmeter's modules are loaded at the app's start, not at its first estimate.
  const tm = mode === 'after' ? await import(process.cwd() + '/dist/usage/index.js') : undefined;
  last = performance.now(); maxGap = 0; ticks = 0;
  const t0 = performance.now();
  let tokens;
  if (mode === 'noise') {
    await new Promise((resolve) => {
      const end = performance.now() + 2000;
      let x = 0;
      const step = () => {
        const until = performance.now() + 4;
        while (performance.now() < until) x += Math.sqrt(x + 1);
        if (performance.now() < end) setImmediate(step);
        else resolve(x);
      };
      step();
    });
    tokens = 0;
  } else if (mode === 'before') {
    await new Promise((r) => setImmediate(r));
    const { Tiktoken } = req('js-tiktoken/lite');
    const ranks = req('js-tiktoken/ranks/o200k_base');
    tokens = new Tiktoken(ranks.default ?? ranks).encode('hello world', [], []).length;
  } else {
    await tm.loadEstimator('gpt-4o');
    tokens = tm.estimateTokens('hello world', 'gpt-4o');
  }
  const readyMillis = performance.now() - t0;
  // One more tick, so a block at the very end is measured too.
  await new Promise((r) => setTimeout(r, 5));
  clearInterval(probe);
  process.stdout.write(JSON.stringify({ readyMillis, maxGapMillis: maxGap, ticks, tokens }));
}, 50);
`;

function measure(mode) {
  const out = execFileSync(process.execPath, ['-e', CHILD, mode], { cwd: ROOT, encoding: 'utf8' });
  return JSON.parse(out);
}

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const processes = values.quick ? 1 : 3;
const rows = [];
for (const mode of ['before', 'after', 'noise']) {
  const runs = [];
  for (let i = 0; i < processes; i++) {
    process.stderr.write(`first-estimate: ${mode} ${i + 1}/${processes}\n`);
    runs.push(measure(mode));
  }
  if (new Set(runs.map((r) => r.tokens)).size !== 1) throw new Error(`${mode}: the estimate differed between runs`);
  rows.push({ mode, ready: summary(runs.map((r) => r.readyMillis)), gap: summary(runs.map((r) => r.maxGapMillis)), ticks: summary(runs.map((r) => r.ticks)) });
}
console.log(`First estimate of a process (o200k), ${processes} process(es) per variant, median (min–max):\n`);
console.log('| variant | time until estimates are cheap (ms; noise: its fixed 2 s) | longest event-loop block (ms) | 1 ms timer ticks meanwhile |');
console.log('| --- | --- | --- | --- |');
for (const r of rows) console.log(`| ${r.mode} | ${fmtRange(r.ready, 0)} | ${fmtRange(r.gap, 0)} | ${fmtRange(r.ticks, 0)} |`);
