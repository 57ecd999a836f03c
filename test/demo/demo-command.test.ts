import { describe, it, expect } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { run } from '../../src/cli/demo-command.js';
import { CliError } from '../../src/cli/cli-error.js';
import { demoPorts, runDemo, PortInUseError, DEMO_MOCK_PORT, missingSdks, MissingSdkError } from '../../src/demo/demo.js';

async function rejection(argv: string[]): Promise<CliError> {
  try {
    await run(argv);
  } catch (err) {
    if (err instanceof CliError) return err;
    throw err;
  }
  throw new Error(`expected ${argv.join(' ')} to be refused`);
}

describe('tokenmeter demo flags', () => {
  it.each([
    [['--users', '0'], /--users must be an integer from 1/],
    [['--users', '2.5'], /--users must be an integer/],
    [['--users', '1e3'], /--users must be an integer/],
    [['--rate', 'fast'], /--rate must be a number/],
    [['--rate=-1'], /--rate must be a number/],
    [['--duration', '0'], /--duration must be a number/],
    [['--duration', ''], /--duration must be a number/],
    [['--seed=-3'], /--seed must be an integer/],
    [['--port-offset', '60000'], /--port-offset must be an integer from -4317 to 56071/],
    [['--port-offset', 'x'], /--port-offset must be an integer/],
    [['--ports', 'random'], /--ports accepts only 'auto'/],
    [['--ports', 'auto', '--port-offset', '1'], /either --ports auto or --port-offset/],
    [['--workload-only', '--mock-only'], /either --workload-only or --mock-only/],
    [['--workload-only', '--provider-url', 'http://127.0.0.1:1'], /--workload-only needs --otlp-endpoint/],
    [['--workload-only', '--otlp-endpoint', 'file:///etc/passwd', '--provider-url', 'http://x'], /--otlp-endpoint must be an http\(s\) URL/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['extra'], /Unexpected argument 'extra'/],
    [['--users', 'x'.repeat(100_000)], /--users must be an integer/],
  ])('refuses %j', async (argv, message) => {
    const err = await rejection(argv as string[]);
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(message);
  });

  it('shifts every port by the offset, or asks the OS for free ones', () => {
    expect(demoPorts(100)).toEqual({ otlp: 4418, http: 9564, mock: DEMO_MOCK_PORT + 100 });
    expect(demoPorts('auto')).toEqual({ otlp: 0, http: 0, mock: 0 });
  });
});

describe('tokenmeter demo with a port in use', () => {
  it.each(['otlp', 'http'] as const)('names the exporter port (%s) that is taken', async (which) => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-demo-port-'));
    try {
      const err = await runDemo({
        users: 2, rate: 1, seed: 1, ports: { otlp: 0, http: 0, mock: 0, [which]: port }, dataDir: dir, live: false, color: false,
        out: new PassThrough(), err: new PassThrough(), signal: new AbortController().signal,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PortInUseError);
      expect((err as Error).message).toContain(`port ${port} (the exporter's ${which === 'otlp' ? 'OTLP receiver' : 'metrics, usage API and status page'}) is already in use`);
      expect((err as Error).message).toContain('--port-offset');
    } finally {
      blocker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops with a message naming the port and the flags to use', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-demo-port-'));
    try {
      const err = await runDemo({
        users: 2, rate: 1, seed: 1, ports: { otlp: 0, http: 0, mock: port }, dataDir: dir, live: false, color: false,
        out: new PassThrough(), err: new PassThrough(), signal: new AbortController().signal,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PortInUseError);
      expect((err as Error).message).toContain(`port ${port} (the mock provider) is already in use`);
      // What holds it, from /proc (this test process).
      expect((err as Error).message).toContain(`in use by process ${process.pid} (`);
      expect((err as Error).message).toContain('--port-offset');
      expect((err as Error).message).toContain('--ports auto');
    } finally {
      blocker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tokenmeter demo without the provider SDKs', () => {
  it('finds them here, and names the ones missing elsewhere with the command to install them', () => {
    expect(missingSdks()).toEqual([]);
    const elsewhere = missingSdks(`file://${tmpdir()}/nowhere/x.js`);
    expect(elsewhere).toEqual(['openai', '@anthropic-ai/sdk']);
    expect(new MissingSdkError(elsewhere).message).toContain('npm install openai @anthropic-ai/sdk');
  });
});
