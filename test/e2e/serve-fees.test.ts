/**
 * Per-call fees end to end (issue 20): an app run with `--import tokenmeter/register` makes calls that use the
 * providers' web search against a local server in each wire format, a real `tokenmeter serve` (embedded journal
 * ledger) prices them, and the usage API, the metrics and a restart agree: cost = token costs + fees, exactly.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, runApp } from './fixtures/run-app.js';
import { spawnServe, type ServeProcess } from './serve-helpers.js';

/** Anthropic: 10,000 input + 1,000 output tokens of claude-sonnet-4-6 ($3 / $15) and 3 searches ($10 / 1,000). */
const MESSAGE = {
  id: 'msg_fee',
  type: 'message',
  role: 'assistant',
  model: 'claude-sonnet-4-6',
  content: [{ type: 'text', text: 'It got cheaper.' }],
  stop_reason: 'end_turn',
  usage: { input_tokens: 10000, output_tokens: 1000, server_tool_use: { web_search_requests: 3 } },
};
/** OpenAI: 1,000 input + 100 output tokens of gpt-5.5 ($5 / $30) and 2 web_search calls ($10 / 1,000). */
const RESPONSE = {
  id: 'resp_fee',
  object: 'response',
  created_at: 1,
  status: 'completed',
  model: 'gpt-5.5',
  output: [
    { type: 'web_search_call', id: 'ws_1', status: 'completed' },
    { type: 'web_search_call', id: 'ws_2', status: 'completed' },
    { type: 'message', id: 'msg_1', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'ok', annotations: [] }] },
  ],
  usage: { input_tokens: 1000, input_tokens_details: { cached_tokens: 0 }, output_tokens: 100, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 1100 },
};

describe('per-call fees through the one import and tokenmeter serve', () => {
  let dir: string;
  let provider: Server;
  let providerUrl: string;
  let serve: ServeProcess;

  beforeAll(async () => {
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), 'tm-fees-e2e-'));
    provider = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const body = req.url?.startsWith('/v1/messages') ? MESSAGE : req.url?.startsWith('/responses') ? RESPONSE : undefined;
        res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body ?? { error: { message: 'unknown path' } }));
      });
    });
    await new Promise<void>((r) => provider.listen(0, '127.0.0.1', r));
    providerUrl = `http://127.0.0.1:${(provider.address() as AddressInfo).port}`;
    serve = await spawnServe({}, ['--storage', join(dir, 'ledger')]);
  }, 60_000);

  afterAll(async () => {
    await serve?.stop();
    await new Promise((r) => provider?.close(r));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const usage = async (s: ServeProcess) => (await (await fetch(`${s.httpUrl}/api/v1/usage/searcher`)).json()) as Record<string, unknown>;
  const feeSeries = async (s: ServeProcess) =>
    (await (await fetch(`${s.httpUrl}/metrics`)).text()).split('\n').filter((l) => l.startsWith('tokenmeter_cost_usd_total{') && l.includes('type="fee"'));

  it('prices the searches as fees next to the tokens, and the totals survive a restart', async () => {
    const run = await runApp({
      nodeArgs: ['--import', 'tokenmeter/register'],
      file: 'web-search-app.mjs',
      env: { SEARCH_URL: providerUrl, OTEL_EXPORTER_OTLP_ENDPOINT: serve.otlpUrl, OTEL_METRICS_EXPORTER: 'none' },
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    // Tokens 0.045 + 0.008, fees 0.03 + 0.02: 0.103.
    expect(await usage(serve)).toMatchObject({ requests: 2, plan: 'pro', cost_usd: '0.103' });
    const fees = await feeSeries(serve);
    expect(fees.map((l) => l.replace(/^tokenmeter_cost_usd_total/, ''))).toEqual([
      '{plan="pro",provider="anthropic",model="claude-sonnet-4-6",type="fee"} 0.03',
      '{plan="pro",provider="openai",model="gpt-5.5",type="fee"} 0.02',
    ]);
    // No tokens series says "fee": the fee is cost without tokens.
    expect((await (await fetch(`${serve.httpUrl}/metrics`)).text())).not.toMatch(/tokenmeter_tokens_total\{[^}]*type="fee"/);

    await serve.stop();
    serve = await spawnServe({}, ['--storage', join(dir, 'ledger')]);
    expect(await usage(serve)).toMatchObject({ requests: 2, cost_usd: '0.103' });
  }, 60_000);
});
