/**
 * The README's two commands work from a fresh clone of the committed HEAD: `npm install && npm start` (the demo,
 * here with `-- --duration 8 --ports auto` appended so it stops by itself and cannot collide with other tests'
 * ports), and `npm test` exists (it is not run: this test is part of it).
 *
 * `npm install` runs for real in the clone, with --prefer-offline so that it installs from npm's local cache
 * (populated by the checkout's own install) instead of asking the registry for every package.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findBinary } from '../helpers/binaries.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const git = findBinary('git');
const npm = findBinary('npm');
const isRepo = existsSync(join(ROOT, '.git'));
const work = mkdtempSync(join(tmpdir(), 'tokenmeter-readme-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The commands of the README's first shell block, without their comments. */
export function readmeCommands(readme: string): string[] {
  const block = /```sh\n([\s\S]*?)```/.exec(readme);
  if (!block) return [];
  return block[1]
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l.length > 0);
}

function run(cmd: string, cwd: string, timeoutMillis: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', cmd], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMillis);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe.skipIf(!git || !npm || !isRepo)('README commands from a fresh clone', () => {
  it('names exactly the two commands', () => {
    expect(readmeCommands(readFileSync(join(ROOT, 'README.md'), 'utf8'))).toEqual(['npm install && npm start', 'npm test']);
  });

  it('`npm install && npm start` runs the demo end to end', { timeout: 600_000 }, async () => {
    const clone = join(work, 'tokenmeter');
    execFileSync(git!, ['clone', '--quiet', '--no-hardlinks', ROOT, clone]);
    const [main, tests] = readmeCommands(readFileSync(join(clone, 'README.md'), 'utf8'));
    expect(main).toBe('npm install && npm start');
    const cmd = main
      .replace('npm install', 'npm install --prefer-offline --no-audit --no-fund')
      .replace('npm start', `npm start -- --duration 8 --ports auto --data-dir ${join(work, 'demo-data')}`);
    const { code, output } = await run(cmd, clone, 540_000);
    expect(code, output.slice(-4000)).toBe(0);
    expect(output).toMatch(/\[demo \d+s\] users=12 requests=[1-9]\d* tokens=[1-9]\d*/);
    expect(output).toContain('tokenmeter demo stopped.');
    expect(existsSync(join(work, 'demo-data', 'mock-sent-usage.json'))).toBe(true);

    // The second command exists and runs the test runner (not run here: this test is part of it).
    expect(tests).toBe('npm test');
    const pkg = JSON.parse(readFileSync(join(clone, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.test).toMatch(/vitest run/);
    expect(existsSync(join(clone, 'node_modules', '.bin', 'vitest'))).toBe(true);
  });
});
