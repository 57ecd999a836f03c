/**
 * The demo's live view on a real pseudo-terminal (util-linux `script`), and Ctrl-C: the view renders users, bars,
 * alerts, spend by model and the ingest rate; Ctrl-C stops everything, prints the summary and leaves no process.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireBinary } from '../helpers/binaries.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'dist', 'cli', 'main.js');
const script = requireBinary('script', ['/usr/bin/script']);
const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-demo-tty-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every descendant of `pid`, from /proc (parent links). */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Field 4 (ppid) follows the command name in parentheses, which may itself contain spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(name), ppid);
    } catch {
      // Gone meanwhile.
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, pp] of parent) if (pp === p) {
      out.push(child);
      walk(child);
    }
  };
  walk(pid);
  return out;
}

function alive(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return state.slice(state.lastIndexOf(')') + 2, state.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

// eslint-disable-next-line no-control-regex -- terminal escapes start with ESC
const stripAnsi = (s: string) => s.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');

describe.skipIf(!script || !existsSync(BIN))('tokenmeter demo on a terminal', () => {
  it('renders the live view and stops cleanly on Ctrl-C, leaving no process behind', { timeout: 90_000 }, async () => {
    const cmd = `stty cols 150 rows 60; exec ${process.execPath} ${BIN} demo --ports auto --users 6 --rate 5 --data-dir ${dir}`;
    const child = spawn(script!, ['-qfec', cmd, '/dev/null'], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, TERM: 'xterm-256color', NO_COLOR: '' },
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));

    // Wait for a frame showing every user, a bar, an over-limit alert and a measured ingest rate.
    let frame = '';
    for (let i = 0; i < 120; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const frames = out.split('\u001b[H'); // each live frame starts at the top left
      frame = frames[frames.length - 1];
      const plain = stripAnsi(frame);
      if (/OverRequestLimit/.test(plain) && /INGEST\s+\d+\.\d spans\/s/.test(plain) && plain.includes('SPEND BY MODEL')) break;
    }
    const plain = stripAnsi(frame);
    expect(plain, out.slice(-3000)).toContain('SPEND BY MODEL');
    expect(plain).toMatch(/^alice\s+free\s+[█░]+ /m);
    expect(plain).toMatch(/TokenmeterUserOverRequestLimit\s+user=alice plan=free/);
    expect(plain).toMatch(/INGEST\s+\d+\.\d spans\/s/);
    expect(plain).toMatch(/openai\/gpt-4o-mini\s+[\d,]+ tokens/);
    expect(frame).toContain('\u001b[31m'); // red: over a limit

    const tree = descendants(child.pid!);
    // script → node (demo) → node (workload, --import tokenmeter/register)
    expect(tree.length).toBeGreaterThanOrEqual(2);
    child.stdin.write('\u0003'); // Ctrl-C on the terminal
    expect(await exited).toBe(0);

    const tail = stripAnsi(out.slice(out.lastIndexOf('tokenmeter demo stopped.')));
    expect(tail).toContain('tokenmeter demo stopped.');
    expect(tail).toMatch(/over a limit: .*alice \(free\)/);
    expect(tail).toContain(join(dir, 'ledger'));
    expect(tail).toContain(join(dir, 'mock-sent-usage.json'));
    expect(out).toContain('\u001b[?25h'); // cursor shown again
    for (const pid of tree) expect(alive(pid), `process ${pid} still running`).toBe(false);
  });
});
