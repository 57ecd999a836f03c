import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { loadConfig, renderConfigReference } from '../../src/config/index.js';

async function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += String(c)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((err += String(c)), true));
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  try {
    const code = await main(args);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

afterEach(() => vi.restoreAllMocks());

describe('tokenmeter config check', () => {
  it('exit 0 and the redacted effective config for a valid file', async () => {
    const d = mkdtempSync(join(tmpdir(), 'tm-cc-'));
    writeFileSync(join(d, 'ok.yaml'), 'storage: postgres://tm:hunter2@127.0.0.1/tm\nauth:\n  api_token: a-very-secret-token-123\n');
    const r = await runCli(['config', 'check', '--config', join(d, 'ok.yaml')]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('storage: postgres://tm:<redacted>@127.0.0.1/tm');
    expect(r.out).toContain('api_token: <redacted>');
    expect(r.out).not.toContain('hunter2');
    expect(r.out).not.toContain('a-very-secret-token-123');
    expect(r.err).toMatch(/OK/);
  });

  it('exit 1 with every problem named for an invalid file; exit 2 for bad usage', async () => {
    const d = mkdtempSync(join(tmpdir(), 'tm-cc-'));
    const f = join(d, 'bad.yaml');
    writeFileSync(f, 'plans:\n  pro:\n    limits:\n      tokens: lots\nsever: {}\n');
    const r = await runCli(['config', 'check', '--config', f]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${f}: plans.pro.limits.tokens: expected a non-negative integer or null, got "lots"`);
    expect(r.err).toContain(`${f}: sever: unknown key`);
    expect((await runCli(['config', 'check', '--config', join(d, 'missing.yaml')])).code).toBe(1);
    expect((await runCli(['config', 'check', '--bogus'])).code).toBe(2);
    expect((await runCli(['config'])).code).toBe(2);
    expect((await runCli(['config', 'frobnicate'])).code).toBe(2);
    const envBad = await runCli(['config', 'check', '--config', join(d, 'missing.yaml')], { TOKENMETER_HTTP_PORT: 'x' });
    expect(envBad.code).toBe(1);
  });

  it('never prints a rejected secret: a short token in the file or the environment is redacted in the error', async () => {
    const d = mkdtempSync(join(tmpdir(), 'tm-cc-'));
    writeFileSync(join(d, 'short.yaml'), 'auth:\n  ingest_token: s3cr3t-short\n  api_token: 12345\n');
    const r = await runCli(['config', 'check', '--config', join(d, 'short.yaml')]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('auth.ingest_token: expected a token of at least 16 characters, got a secret of 12 characters (redacted)');
    expect(r.err).toContain('auth.api_token: expected a quoted string, got a secret (redacted)');
    expect(r.err + r.out).not.toContain('s3cr3t-short');
    expect(r.err + r.out).not.toContain('12345');
    writeFileSync(join(d, 'ok.yaml'), 'storage: ./x\n');
    const env = await runCli(['config', 'check', '--config', join(d, 'ok.yaml')], { TOKENMETER_API_TOKEN: 'env-short-tok' });
    expect(env.code).toBe(1);
    expect(env.err).not.toContain('env-short-tok');
    expect(env.err).toContain('got a secret of 13 characters (redacted)');
  });

  it('environment variables are part of the check', async () => {
    const d = mkdtempSync(join(tmpdir(), 'tm-cc-'));
    writeFileSync(join(d, 'ok.yaml'), 'storage: ./x\n');
    const r = await runCli(['config', 'check', '--config', join(d, 'ok.yaml')], { TOKENMETER_HTTP_PORT: 'http' });
    expect(r.code).toBe(1);
    expect(r.err).toContain('environment variable TOKENMETER_HTTP_PORT: server.http_port: expected an integer from 0 to 65535, got "http"');
  });
});

describe('shipped configuration files', () => {
  it('tokenmeter.example.yaml is valid', () => {
    const loaded = loadConfig({ configPath: 'tokenmeter.example.yaml', env: {} });
    expect(loaded.config.plans?.pro?.limits?.cost_usd).toBe('25.00');
  });

  it('docs/configuration.md carries the current generated reference', () => {
    expect(readFileSync('docs/configuration.md', 'utf8')).toContain(renderConfigReference());
  });
});
