/**
 * The demo's live view on a real 80×24 terminal (tmux): the header, the column titles with COST and every user
 * row's cost stay on screen, lines fit 80 columns, the frames go to the alternate screen (nothing in the scrollback),
 * and the command printed at the end to look at the ledger again runs as printed from the clone.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../helpers/binaries.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'dist', 'cli', 'main.js');
const tmux = requireBinary('tmux', ['/usr/bin/tmux']);
const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-demo-80x24-'));
// A private tmux server (its own socket), so the test never touches a user's sessions.
const socket = join(dir, 'tmux.sock');
const t = (...args: string[]) => execFileSync(tmux!, ['-S', socket, ...args], { encoding: 'utf8' });
afterAll(() => {
  try {
    t('kill-server');
  } catch {
    // already gone
  }
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!tmux || !existsSync(BIN))('tokenmeter demo on an 80×24 terminal', () => {
  it('keeps the header and COST on screen, fits 80×24, leaves no frames in the scrollback; the exit hint runs', { timeout: 120_000 }, async () => {
    const data = join(dir, 'data');
    const cmd = `${process.execPath} ${BIN} demo --ports auto --users 12 --rate 8 --data-dir ${data}; echo DEMO-EXIT=$?; sleep 60`;
    t('-f', '/dev/null', 'new-session', '-d', '-s', 'demo', '-x', '80', '-y', '24', '-c', ROOT, '-e', 'NO_COLOR=1', cmd);

    // Wait for a screen with an over-limit alert (free users pass 10 requests) and a measured ingest rate.
    let screen = '';
    for (let i = 0; i < 120; i++) {
      await sleep(500);
      screen = t('capture-pane', '-p', '-t', 'demo');
      if (/OverRequestLimit/.test(screen) && /INGEST\s+\d+\.\d spans\/s/.test(screen)) break;
    }
    const lines = screen.replace(/\n+$/, '').split('\n');
    expect(lines.length, screen).toBeLessThanOrEqual(24);
    expect(lines[0]).toMatch(/^tokenmeter demo\s+period .* left\s+running \d+s/);
    const head = lines.findIndex((l) => /^USER\s+PLAN\s+TOKENS\s+REQUESTS\s+COST\s*$/.test(l));
    expect(head, screen).toBeGreaterThan(0);
    // Every user row shown ends with its cost; the rows the screen has no room for are counted, not cut.
    const rows = lines.slice(head + 1).filter((l) => /^\S+\s+(free|pro|team)\s/.test(l));
    expect(rows.length).toBeGreaterThan(3);
    for (const r of rows) expect(r, screen).toMatch(/\$\d[\d,]*\.\d+$/);
    const more = lines.find((l) => /… and (\d+) more users/.test(l));
    expect(rows.length + Number(more ? /… and (\d+) more/.exec(more)![1] : 0)).toBe(12);
    expect(screen).toMatch(/TokenmeterUserOverRequestLimit\s+user=\S+ plan=free requests at \d+%/);
    expect(screen).toContain('SPEND BY MODEL');
    expect(screen).toMatch(/^\s+total\s+[\d,]+ tokens\s+[\d,]+ requests\s+\$\d/m);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);
    // The frames are drawn on the alternate screen: nothing has scrolled into the history.
    expect(t('display-message', '-p', '-t', 'demo', '#{alternate_on} #{history_size}').trim()).toBe('1 0');

    t('send-keys', '-t', 'demo', 'C-c');
    let after = '';
    for (let i = 0; i < 60 && !after.includes('DEMO-EXIT='); i++) {
      await sleep(500);
      after = t('capture-pane', '-p', '-J', '-t', 'demo', '-S', '-200');
    }
    expect(after).toContain('DEMO-EXIT=0');
    expect(t('display-message', '-p', '-t', 'demo', '#{alternate_on}').trim()).toBe('0');
    // The last figures and the summary are on the normal screen, once.
    expect(after.match(/^USER\s+PLAN/gm)).toHaveLength(1);
    const hint = /look again with: (node dist\/cli\/main\.js serve --storage (\S+) --host 127\.0\.0\.1)$/m.exec(after);
    expect(hint, after).not.toBeNull();
    expect(hint![2]).toBe(join(data, 'ledger'));

    // Run the printed command, as printed, from the clone (ports 0 through the environment so it cannot collide).
    const serve = spawn('sh', ['-c', `exec ${hint![1].replace(/^node /, `${process.execPath} `)}`], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', TOKENMETER_OTLP_PORT: '0', TOKENMETER_HTTP_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const first = await new Promise<string>((resolve, reject) => {
        createInterface({ input: serve.stdout }).once('line', resolve);
        serve.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
      });
      const { httpUrl } = JSON.parse(first) as { httpUrl: string };
      const usage = (await (await fetch(`${httpUrl}/api/v1/usage`)).json()) as { total: number };
      expect(usage.total).toBe(12);
    } finally {
      const exited = new Promise((r) => serve.once('exit', r));
      serve.kill('SIGTERM');
      await exited;
    }
  });
});
