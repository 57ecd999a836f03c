/**
 * `tokenmeter serve` start-up errors through the real CLI (child processes of dist/): a port held by a real
 * listener, a second exporter on the same embedded ledger, a host that is not on this machine. Each is one line on
 * stderr, no stack, exit code 2, naming what to change; and a healthy start prints the ledger's absolute path and the
 * address really bound.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, spawnServe } from './serve-helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tm-serve-errors-'));
  dirs.push(d);
  return d;
}

/** Runs `serve` expecting it to exit by itself (it fails to start); kills it after 30 s otherwise. */
function serveUntilExit(args: string[], env: Record<string, string>, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { env: { PATH: process.env.PATH ?? '', ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

async function holdPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

function expectOneLineNoStack(stderr: string): void {
  expect(stderr.trimEnd().split('\n'), stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at /m);
}

describe.skipIf(!existsSync(BIN))('tokenmeter serve: start-up errors', () => {
  it('a port in use by a real listener: one line naming the port, its holder and the flag / variable; exit 2', async () => {
    const { server, port } = await holdPort();
    try {
      const cwd = tempDir();
      const otlp = await serveUntilExit(['--host', '127.0.0.1', '--otlp-port', String(port), '--http-port', '0'], {}, cwd);
      expect(otlp.code).toBe(2);
      expectOneLineNoStack(otlp.stderr);
      expect(otlp.stderr).toContain(`tokenmeter serve: port ${port} (OTLP/HTTP receiver; host 127.0.0.1) is already in use`);
      // The holder is this test process (found through /proc/net/tcp and /proc/<pid>/fd).
      expect(otlp.stderr).toContain(`by process ${process.pid} (`);
      expect(otlp.stderr).toContain('--otlp-port <n> or TOKENMETER_OTLP_PORT');
      expect(otlp.stdout).toBe('');

      const ops = await serveUntilExit([], { TOKENMETER_HOST: '127.0.0.1', TOKENMETER_OTLP_PORT: '0', TOKENMETER_HTTP_PORT: String(port) }, cwd);
      expect(ops.code).toBe(2);
      expectOneLineNoStack(ops.stderr);
      expect(ops.stderr).toContain(`port ${port} (operations: metrics, usage API, status page; host 127.0.0.1) is already in use by process ${process.pid}`);
      expect(ops.stderr).toContain('--http-port <n> or TOKENMETER_HTTP_PORT');
    } finally {
      server.close();
    }
  });

  it('the same port for both servers is refused before anything starts', async () => {
    const r = await serveUntilExit(['--host', '127.0.0.1', '--otlp-port', '47311', '--http-port', '47311'], {}, tempDir());
    expect(r.code).toBe(2);
    expectOneLineNoStack(r.stderr);
    expect(r.stderr).toContain('server.otlp_port and server.http_port are both 47311');
  });

  it('a second serve on the same embedded ledger: one line naming the ledger, the first exporter and --storage; exit 2', async () => {
    const cwd = tempDir();
    const first = await spawnServe({}, ['--storage', 'shared-ledger'], cwd);
    try {
      const second = await serveUntilExit(['--host', '127.0.0.1', '--otlp-port', '0', '--http-port', '0', '--storage', 'shared-ledger'], {}, cwd);
      expect(second.code).toBe(2);
      expectOneLineNoStack(second.stderr);
      expect(second.stderr).toContain(`the ledger ${join(cwd, 'shared-ledger')} is already in use by another exporter (process ${first.child.pid}: `);
      expect(second.stderr).toContain('--storage <dir> or TOKENMETER_STORAGE');
      // The first one is unharmed.
      expect((await fetch(`${first.httpUrl}/readyz`)).status).toBe(200);
    } finally {
      expect(await first.stop()).toBe(0);
    }
  });

  it('a host that is not an address of this machine: one line naming --host / TOKENMETER_HOST; exit 2', async () => {
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never assigned to a real interface.
    const r = await serveUntilExit(['--host', '192.0.2.1', '--otlp-port', '0', '--http-port', '0'], {}, tempDir());
    expect(r.code).toBe(2);
    expectOneLineNoStack(r.stderr);
    expect(r.stderr).toContain('cannot listen on host "192.0.2.1"');
    expect(r.stderr).toContain('--host or TOKENMETER_HOST');
  });

  it('prints the ledger as an absolute path and the addresses really bound; no warning on loopback', async () => {
    const cwd = tempDir();
    const s = await spawnServe({}, ['--storage', 'rel/ledger'], cwd);
    try {
      const otlpPort = new URL(s.otlpUrl).port;
      const httpPort = new URL(s.httpUrl).port;
      // stderr may trail the stdout line that spawnServe waits for.
      for (let i = 0; i < 100 && !s.stderr().includes('ledger '); i++) await new Promise((r) => setTimeout(r, 50));
      const err = s.stderr();
      expect(err).toContain(`OTLP/HTTP receiver on 127.0.0.1:${otlpPort}`);
      expect(err).toContain(`operations on 127.0.0.1:${httpPort}`);
      expect(err).toContain(`ledger ${join(cwd, 'rel', 'ledger')}`);
      expect(err).not.toContain('warning');
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });
});
