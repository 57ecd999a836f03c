/**
 * What the README's "Running the exporter" and "Troubleshooting" sections tell an app developer, checked against a
 * real `tokenmeter serve` (embedded ledger, an ingest token) and a real app run with `--import tokenmeter/register`:
 * the ingest token goes through OTEL_EXPORTER_OTLP_HEADERS, a call outside withUser is metered as `anonymous`, and
 * without the token OTEL_LOG_LEVEL shows why nothing arrives.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockProvider, type MockProvider } from '../../src/mock-provider/index.js';
import { assertBuilt, runApp } from './fixtures/run-app.js';
import { spawnServe, type ServeProcess } from './serve-helpers.js';

const TOKEN = 'readme-ingest-token-0123456789';

describe('README: ingest token, the anonymous user, OTEL_LOG_LEVEL', () => {
  let dir: string;
  let mock: MockProvider;
  let serve: ServeProcess;

  beforeAll(async () => {
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), 'tm-readme-trouble-'));
    mock = await startMockProvider({ seed: 12 });
    serve = await spawnServe({ TOKENMETER_INGEST_TOKEN: TOKEN }, ['--storage', join(dir, 'ledger')]);
  });
  afterAll(async () => {
    await serve?.stop();
    await mock?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const usage = async (user: string) => (await (await fetch(`${serve.httpUrl}/api/v1/usage/${user}`)).json()) as { requests: number; plan: string };

  it('without the token nothing is counted, and OTEL_LOG_LEVEL=info shows the exporter refusing it', async () => {
    const run = await runApp({
      nodeArgs: ['--import', 'tokenmeter/register'],
      file: 'anonymous-app.mjs',
      env: { MOCK_URL: mock.url, OTEL_EXPORTER_OTLP_ENDPOINT: serve.otlpUrl, OTEL_LOG_LEVEL: 'info', OTEL_METRICS_EXPORTER: 'none' },
    });
    // The SDK's diag console logger writes to the app's stdout and stderr.
    expect(run.stdout).toContain('done');
    expect(run.stdout + run.stderr).toMatch(/Export failed with non-retryable error: OTLPExporterError: Unauthorized/);
    expect((await usage('doc-user')).requests).toBe(0);
  });

  it('with OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer%20<token>" it is, and the call outside withUser is `anonymous`', async () => {
    const run = await runApp({
      nodeArgs: ['--import', 'tokenmeter/register'],
      file: 'anonymous-app.mjs',
      env: { MOCK_URL: mock.url, OTEL_EXPORTER_OTLP_ENDPOINT: serve.otlpUrl, OTEL_EXPORTER_OTLP_HEADERS: `Authorization=Bearer%20${TOKEN}`, OTEL_METRICS_EXPORTER: 'none' },
    });
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    expect(await usage('doc-user')).toMatchObject({ requests: 1, plan: 'pro' });
    // The default plan (free) for a call without user or plan.
    expect(await usage('anonymous')).toMatchObject({ requests: 1, plan: 'free' });
  });
});
