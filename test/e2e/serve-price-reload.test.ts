/**
 * Issue 18, point 4: prices without a restart. The real `tokenmeter serve` process re-reads the configuration
 * file's prices on SIGHUP: a valid change prices the next calls with the new rate; a broken override, malformed
 * YAML, a missing or invalid catalog file are refused with the error on stderr, counted in
 * tokenmeter_price_reload_total{outcome="failure"}, and the exporter keeps serving with the prices in use.
 * Needs `npm run build` (runs dist/).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decimal } from 'decimal.js';
import { afterEach, describe, expect, it } from 'vitest';
import { getJson, otlpJson, postOtlp, scrape } from '../exporter/harness.js';
import { spawnServe, type ServeProcess } from './serve-helpers.js';

const running: ServeProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop()));
});

function configText(inputRate: string, extra = ''): string {
  return [
    'ledger: { refresh_interval: "0s" }',
    'pricing:',
    '  overrides:',
    '    - provider: acme',
    '      model: acme-large',
    `      prices_usd_per_mtok: { input: "${inputRate}", output: "0" }`,
    extra,
  ].join('\n');
}

async function waitFor(what: string, check: () => boolean, timeoutMillis = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMillis;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let seq = 0;
const sid = () => `8${(++seq).toString(16).padStart(15, '0')}`;

/** One call of 1,000,000 input tokens: its cost in USD is the input rate itself. */
async function call(p: ServeProcess, user: string): Promise<void> {
  const res = await postOtlp(p.otlpUrl, otlpJson([{ spanId: sid(), user, provider: 'acme', model: 'acme-large', input: 1_000_000, output: 0 }]));
  expect(res.status).toBe(200);
}

async function costOf(p: ServeProcess, user: string): Promise<string> {
  const r = await getJson(`${p.httpUrl}/api/v1/usage/${user}`);
  expect(r.status).toBe(200);
  return r.json.cost_usd as string;
}

async function reloads(p: ServeProcess): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of await scrape(p.httpUrl)) {
    const m = /^tokenmeter_price_reload_total\{outcome="(\w+)"\} (\S+)$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** Sends SIGHUP and waits for the answer on stderr (the n-th occurrence of `marker`). */
async function hangup(p: ServeProcess, marker: string): Promise<string> {
  const before = p.stderr().split(marker).length;
  p.child.kill('SIGHUP');
  await waitFor(`"${marker}" on stderr`, () => p.stderr().split(marker).length > before);
  return p.stderr();
}

describe('tokenmeter serve: SIGHUP reloads the prices', () => {
  it('applies a valid change to the next calls; refuses broken ones with the error and keeps serving with the old prices', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-reload-'));
    const configPath = join(dir, 'tokenmeter.yaml');
    writeFileSync(configPath, configText('2.00'));
    const p = await spawnServe({ TOKENMETER_STORAGE: join(dir, 'ledger') }, ['--config', configPath]);
    running.push(p);
    expect(await reloads(p)).toEqual({ success: 0, unchanged: 0, failure: 0 });

    await call(p, 'u1');
    expect(await costOf(p, 'u1')).toBe('2');

    // A valid new rate: the next call is priced with it, the recorded one keeps its price.
    writeFileSync(configPath, configText('3.50'));
    expect(await hangup(p, 'prices reloaded')).toContain('SIGHUP: prices reloaded');
    await call(p, 'u1');
    expect(await costOf(p, 'u1')).toBe('5.5');
    expect(await reloads(p)).toMatchObject({ success: 1, failure: 0 });

    // The same file again: nothing to swap.
    await hangup(p, 'prices unchanged');
    expect(await reloads(p)).toMatchObject({ success: 1, unchanged: 1, failure: 0 });

    // Broken inputs, each refused with an error naming the problem; prices stay at 3.50.
    const broken: [string, string, RegExp][] = [
      ['a negative price', configText('-1'), /refused.*pricing\.overrides\.0\.prices_usd_per_mtok\.input|refused[\s\S]*input/],
      ['a price that is not a decimal string', configText('1e400'), /refused/],
      ['malformed YAML', 'pricing:\n  overrides: [ {provider: acme\n', /refused[\s\S]*tokenmeter\.yaml/],
      ['an unknown setting', `${configText('9')}\n  price_overides: []`, /refused[\s\S]*price_overides/],
      ['a missing catalog file', configText('9', `  catalog_file: ${JSON.stringify(join(dir, 'nope.yaml'))}`), /refused[\s\S]*nope\.yaml: cannot read it \(no such file\)/],
      ['a directory as catalog file', configText('9', `  catalog_file: ${JSON.stringify(dir)}`), /refused[\s\S]*is a directory/],
      ['an invalid catalog file', configText('9', `  catalog_file: ${JSON.stringify(join(dir, 'bad-catalog.yaml'))}`), /refused[\s\S]*bad-catalog\.yaml/],
      ['a catalog file with NUL bytes', configText('9', `  catalog_file: ${JSON.stringify(join(dir, 'nul.yaml'))}`), /refused[\s\S]*NUL bytes/],
    ];
    writeFileSync(join(dir, 'bad-catalog.yaml'), 'schema_version: 1\nentries:\n  - provider: openai\n    model: gpt-x\n    prices_usd_per_mtok: { input: 2.5 }\n');
    writeFileSync(join(dir, 'nul.yaml'), 'entries: []\u0000\n');
    let failures = 0;
    for (const [what, text, expected] of broken) {
      writeFileSync(configPath, text);
      const stderr = await hangup(p, 'the new prices were refused');
      const last = stderr.slice(stderr.lastIndexOf('the new prices were refused') - 40);
      expect(last, what).toMatch(expected);
      failures++;
      expect((await reloads(p)).failure, what).toBe(failures);
      await call(p, 'u2');
    }
    // Every call after a refused reload was priced at the last good rate (3.50), and the exporter kept serving.
    expect(await costOf(p, 'u2')).toBe(new Decimal('3.5').times(broken.length).toFixed());
    expect(p.child.exitCode).toBeNull();

    // A good file again is picked up.
    writeFileSync(configPath, configText('1.25'));
    await hangup(p, 'prices reloaded');
    await call(p, 'u3');
    expect(await costOf(p, 'u3')).toBe('1.25');
    expect(await p.stop()).toBe(0);
  }, 60_000);

  it('a catalog file replaces the shipped catalog; an oversized one is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-reload-cat-'));
    const catalogPath = join(dir, 'catalog.yaml');
    const catalog = (rate: string) =>
      [
        'schema_version: 1',
        'entries:',
        '  - provider: openai',
        '    model: gpt-house',
        '    effective_from: 2020-01-01',
        `    prices_usd_per_mtok: { input: "${rate}", output: "1" }`,
        '    source: https://example.com/prices',
        '    source_date: 2026-12-01',
        '    source_confidence: provider_page',
      ].join('\n');
    writeFileSync(catalogPath, catalog('4'));
    const configPath = join(dir, 'tokenmeter.yaml');
    writeFileSync(configPath, `ledger: { refresh_interval: "0s" }\npricing: { catalog_file: ${JSON.stringify(catalogPath)} }\n`);
    const p = await spawnServe({ TOKENMETER_STORAGE: join(dir, 'ledger') }, ['--config', configPath]);
    running.push(p);
    const post = async (user: string) =>
      expect((await postOtlp(p.otlpUrl, otlpJson([{ spanId: sid(), user, provider: 'openai', model: 'gpt-house', input: 1_000_000, output: 0 }]))).status).toBe(200);
    await post('c1');
    expect(await costOf(p, 'c1')).toBe('4');

    writeFileSync(catalogPath, catalog('6'));
    await hangup(p, 'prices reloaded');
    await post('c2');
    expect(await costOf(p, 'c2')).toBe('6');

    // 16 MiB + 1 byte of comment: refused before parsing.
    writeFileSync(catalogPath, `${catalog('7')}\n#${'x'.repeat(16 * 1024 * 1024)}\n`);
    const stderr = await hangup(p, 'the new prices were refused');
    expect(stderr).toMatch(/catalog\.yaml: larger than 16777216 bytes/);
    await post('c3');
    expect(await costOf(p, 'c3')).toBe('6');
  }, 60_000);

  it('an invalid catalog file at start is a configuration error (exit 2), not a stack trace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-reload-start-'));
    const configPath = join(dir, 'tokenmeter.yaml');
    writeFileSync(configPath, `pricing: { catalog_file: ${JSON.stringify(join(dir, 'missing.yaml'))} }\n`);
    await expect(spawnServe({ TOKENMETER_STORAGE: join(dir, 'ledger') }, ['--config', configPath])).rejects.toThrow(
      /serve exited with 2 before listening:[\s\S]*invalid prices: pricing\.catalog_file .*missing\.yaml: cannot read it \(no such file\)/,
    );
  });

  it('pricing.reload_interval: out-of-range values are refused naming the option', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-reload-int-'));
    for (const [value, expected] of [
      ['"1s"', /pricing\.reload_interval.*between 10s and 7d/],
      ['"30d"', /pricing\.reload_interval.*between 10s and 7d/],
      ['"soon"', /pricing\.reload_interval.*expected a duration/],
      ['-5', /pricing\.reload_interval/],
    ] as const) {
      const configPath = join(dir, 'tokenmeter.yaml');
      writeFileSync(configPath, `pricing: { reload_interval: ${value} }\n`);
      await expect(spawnServe({ TOKENMETER_STORAGE: join(dir, 'ledger') }, ['--config', configPath]), value).rejects.toThrow(expected);
    }
  }, 30_000);
});
