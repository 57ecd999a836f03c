/**
 * The compose stack's `mock-provider` and `demo` services run `tokenmeter demo` with the arguments written in
 * docker-compose.yml. No container runtime is installed here, so this runs those very arguments through the built
 * bin (the image's ENTRYPOINT), with only the compose host names swapped for loopback addresses: the mock provider
 * comes up, and the workload's calls reach an exporter and are metered.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRIC } from '../../src/contract/names.js';
import { startExporter, type RunningExporter } from '../../src/exporter/index.js';
import { readRepoFile, readYaml, root } from '../dashboards/helpers.js';

const compose = readYaml('docker-compose.yml');
const BIN = join(root, 'dist/cli/main.js');

/** The Dockerfile's ENTRYPOINT of the demo stage, as argv. */
function demoEntrypoint(): string[] {
  const text = readRepoFile('Dockerfile');
  const demo = text.slice(text.search(/^FROM \S+ AS demo/m), text.search(/^FROM \S+ AS runtime/m));
  return JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(demo)![1]) as string[];
}

/** Replaces the value after `flag` in a compose command. */
function withFlag(args: string[], flag: string, value: string): string[] {
  const i = args.indexOf(flag);
  expect(i, `${flag} in ${args.join(' ')}`).toBeGreaterThanOrEqual(0);
  return [...args.slice(0, i + 1), value, ...args.slice(i + 2)];
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));
}

let dir: string;
let exporter: RunningExporter;
let mock: ChildProcess | undefined;

describe('docker-compose.yml demo services, run through the real tokenmeter bin', () => {
  beforeAll(async () => {
    if (!existsSync(BIN)) throw new Error('dist/cli/main.js is missing: run `npm run build` before the stack tests');
    dir = mkdtempSync(join(tmpdir(), 'tokenmeter-compose-demo-'));
    exporter = await startExporter({ storage: join(dir, 'ledger'), host: '127.0.0.1', otlpPort: 0, httpPort: 0, log: () => {} });
  });

  afterAll(async () => {
    if (mock && mock.exitCode === null) {
      mock.kill('SIGKILL');
      await exited(mock);
    }
    await exporter?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the images run the bin the test runs', () => {
    expect(demoEntrypoint()).toEqual(['node', 'dist/cli/main.js']);
    expect(compose.services['mock-provider'].build.target).toBe('demo');
    expect(compose.services.demo.build.target).toBe('demo');
  });

  it('mock-provider and demo commands start, and the workload is metered by the exporter', async () => {
    // mock-provider: bind loopback instead of 0.0.0.0, on a free port instead of 8787.
    const mockArgs = [...withFlag(compose.services['mock-provider'].command, '--mock-host', '127.0.0.1'), '--ports', 'auto'];
    mock = spawn(process.execPath, [BIN, ...mockArgs], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let mockErr = '';
    const mockUrl = await new Promise<string>((resolve, reject) => {
      mock!.stderr!.on('data', (d: Buffer) => {
        mockErr += d.toString();
        const m = /mock provider on (http:\/\/127\.0\.0\.1:\d+)/.exec(mockErr);
        if (m) resolve(m[1]);
      });
      mock!.once('exit', (code) => reject(new Error(`mock provider exited ${code}: ${mockErr}`)));
    });

    // demo: the same arguments with the collector and mock-provider host names replaced, for a few seconds.
    let demoArgs = withFlag(compose.services.demo.command, '--otlp-endpoint', exporter.otlpUrl);
    demoArgs = [...withFlag(demoArgs, '--provider-url', mockUrl), '--duration', '3'];
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const demo = spawn(process.execPath, [BIN, ...demoArgs], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let demoOut = '';
    demo.stdout!.on('data', (d: Buffer) => (demoOut += d.toString()));
    demo.stderr!.on('data', (d: Buffer) => (demoOut += d.toString()));
    expect(await exited(demo), demoOut).toBe(0);

    const metrics = await (await fetch(`${exporter.httpUrl}/metrics`)).text();
    const requests = [...metrics.matchAll(new RegExp(`^${METRIC.requestsTotal}\\{[^}]*\\} (\\d+)$`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);
    const users = new Set([...metrics.matchAll(new RegExp(`^${METRIC.periodTokens}\\{[^}]*user="([^"]+)"`, 'gm'))].map((m) => m[1]));
    expect(requests, metrics).toBeGreaterThan(0);
    expect(users.size, metrics).toBeGreaterThan(0);

    mock.kill('SIGTERM');
    expect(await exited(mock)).toBe(0);
  });
});
