/**
 * The stack end to end, with real processes: Prometheus and Alertmanager (Debian's binaries) on free loopback ports,
 * the tokenmeter exporter (in process, embedded ledger), a webhook receiver, and an app instrumented with
 * `node --import tokenmeter/register` calling the mock provider through the real OpenAI and Anthropic SDKs.
 *
 * One user on the free plan passes 80%, then 100%, of the plan's token limit. Prometheus scrapes the exporter and
 * evaluates the generated alert rules (with `for:` shortened to 1s); Alertmanager delivers the near- and
 * over-limit alerts to the webhook, naming the user; every dashboard panel's PromQL returns data.
 */
import { freePort, startProcess, stopProcess, type Proc } from '../helpers/processes.js';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { METRIC } from '../../src/contract/names.js';
import {
  FOREIGN_METRICS,
  PROMETHEUS_BUILTIN_METRICS,
  RECORDING_RULES,
  SCRAPE_JOB,
  baseMetricName,
  metricNamesIn,
  runbookUrl,
} from '../../src/dashboards/index.js';
import { startExporter, type RunningExporter } from '../../src/exporter/index.js';
import { startMockProvider, type MockProvider } from '../../src/mock-provider/index.js';
import type { Usage } from '../../src/usage/index.js';
import { requireBinary } from '../helpers/binaries.js';
import { allPanelQueries, readRepoFile, root, variableQueries } from '../dashboards/helpers.js';

const prometheusBin = requireBinary('prometheus');
const alertmanagerBin = requireBinary('prometheus-alertmanager');

/** The free plan in this test: 10,000 tokens, so 4 calls of 2,000 tokens are 80% and the 5th is 100%. */
const TOKEN_LIMIT = 10_000;
const USAGE_PER_CALL: Usage = { input: 1500, cache_read: 0, cache_write: 0, output: 500, reasoning: 0 };
const USER = 'alice';
const PLAN = 'free';

interface WebhookAlert {
  status: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

let dir: string;
let mock: MockProvider;
let exporter: RunningExporter;
let hook: Server;
let hookUrl: string;
const received: WebhookAlert[] = [];
let prometheus: Proc;
let alertmanager: Proc;
let promUrl: string;
let amUrl: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value (not undefined), or fails with `what` and the processes' logs. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMillis = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMillis;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    await sleep(250);
  }
  const logs = [prometheus, alertmanager].map((p) => p?.output.join('').slice(-3000)).join('\n---\n');
  throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}\n${logs}`);
}

async function promQuery(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`${promUrl}/api/v1/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ query: expr }).toString(),
  });
  const body = (await res.json()) as { status: string; error?: string; data: { resultType: string; result: any } };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
  if (body.data.resultType === 'scalar') return [{ metric: {}, value: body.data.result }];
  return body.data.result;
}

async function promAlerts(): Promise<{ labels: Record<string, string>; state: string; value: string }[]> {
  const res = await fetch(`${promUrl}/api/v1/alerts`);
  return ((await res.json()) as { data: { alerts: any[] } }).data.alerts;
}

/** Runs the instrumented app as a child: `node --import tokenmeter/register usage-app.mjs`. */
function runApp(calls: object[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = {
      ...process.env,
      MOCK_URL: mock.url,
      CALLS: JSON.stringify(calls),
      OTEL_EXPORTER_OTLP_ENDPOINT: exporter.otlpUrl,
      OTEL_SERVICE_NAME: 'stack-e2e-app',
    };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, ['--import', 'tokenmeter/register', join(root, 'test/stack/fixtures/usage-app.mjs')], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function runAppOk(calls: object[]): Promise<void> {
  const r = await runApp(calls);
  expect(r.stderr, r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual({ made: calls.length });
}

const aliceCall = { user: USER, plan: PLAN, api: 'openai', model: 'gpt-4o-mini' };

/** One OTLP/JSON span with GenAI usage attributes, for the exporter-health cases (duplicates, rejections). */
/** A GenAI call span; `inputTokens` undefined = a span without token counts; `reportedCostUsd` = a cost the span carries. */
function otlpSpan(user: string, inputTokens: number | undefined, reportedCostUsd?: string): string {
  const attr = (key: string, value: string | number) => ({
    key,
    value: typeof value === 'number' ? { intValue: String(value) } : { stringValue: value },
  });
  const now = BigInt(Date.now()) * 1_000_000n;
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [attr('service.name', 'stack-e2e-raw')] },
        scopeSpans: [
          {
            scope: { name: 'stack-e2e' },
            spans: [
              {
                traceId: randomBytes(16).toString('hex'),
                spanId: randomBytes(8).toString('hex'),
                name: 'chat gpt-4o-mini',
                kind: 3,
                startTimeUnixNano: String(now - 1_000_000n),
                endTimeUnixNano: String(now),
                attributes: [
                  attr('gen_ai.operation.name', 'chat'),
                  attr('gen_ai.provider.name', 'openai'),
                  attr('gen_ai.request.model', 'gpt-4o-mini'),
                  attr('gen_ai.response.model', 'gpt-4o-mini'),
                  ...(inputTokens === undefined ? [] : [attr('gen_ai.usage.input_tokens', inputTokens), attr('gen_ai.usage.output_tokens', 5)]),
                  ...(reportedCostUsd === undefined ? [] : [{ key: 'gen_ai.usage.cost', value: { doubleValue: Number(reportedCostUsd) } }]),
                  attr('user.id', user),
                  attr('tokenmeter.plan', 'pro'),
                ],
              },
            ],
          },
        ],
      },
    ],
  });
}

async function sendExporterHealthTraffic(): Promise<void> {
  const span = otlpSpan('erin', 10);
  expect((await postTraces(span)).status).toBe(200);
  expect((await postTraces(span)).status).toBe(200);
  expect((await postTraces(otlpSpan('erin', -5))).status).toBe(200);
  expect((await postTraces('{"resourceSpans": [')).status).toBe(400);
}

function postTraces(body: string): Promise<Response> {
  return fetch(`${exporter.otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
}

/** The generated rules with every `for:` and group interval shortened to 1s, so the test does not wait minutes. */
function fastRules(): string {
  const rules = parse(readRepoFile('otel-config/prometheus/rules/tokenmeter-alerts.yml'));
  for (const g of rules.groups) {
    g.interval = '1s';
    for (const r of g.rules) if (r.alert) r.for = '1s';
  }
  return stringify(rules);
}

describe.skipIf(!prometheusBin || !alertmanagerBin)('stack end to end: app → exporter → Prometheus → Alertmanager → webhook', () => {
  beforeAll(async () => {
    for (const f of ['dist/instrumentation/register.js', 'dist/instrumentation/index.js']) {
      if (!existsSync(join(root, f))) throw new Error(`${f} is missing: run \`npm run build\` before the stack tests`);
    }
    dir = mkdtempSync(join(tmpdir(), 'tokenmeter-stack-'));
    mock = await startMockProvider({ seed: 5 });

    exporter = await startExporter({
      config: {
        plans: {
          free: { default: true, limits: { tokens: TOKEN_LIMIT, requests: 1000, cost_usd: '5.00' } },
          pro: { limits: { tokens: 500_000, requests: 1000, cost_usd: '50.00' } },
        },
      },
      storage: join(dir, 'ledger'),
      host: '127.0.0.1',
      otlpPort: 0,
      httpPort: 0,
      log: () => {},
    });

    hook = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { alerts: WebhookAlert[] };
          received.push(...body.alerts);
        } catch {}
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/alerts`;

    const [promPort, amPort] = [await freePort(), await freePort()];
    promUrl = `http://127.0.0.1:${promPort}`;
    amUrl = `http://127.0.0.1:${amPort}`;

    writeFileSync(
      join(dir, 'alertmanager.yml'),
      stringify({
        route: { receiver: 'hook', group_by: ['alertname', 'user', 'plan'], group_wait: '1s', group_interval: '1s', repeat_interval: '1h' },
        receivers: [{ name: 'hook', webhook_configs: [{ url: hookUrl, send_resolved: true }] }],
      }),
    );
    writeFileSync(join(dir, 'tokenmeter-alerts.yml'), fastRules());
    writeFileSync(
      join(dir, 'prometheus.yml'),
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: ['tokenmeter-alerts.yml'],
        alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${amPort}`] }] }] },
        scrape_configs: [{ job_name: SCRAPE_JOB, static_configs: [{ targets: [new URL(exporter.httpUrl).host] }] }],
      }),
    );

    alertmanager = startProcess(alertmanagerBin!, [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'am-data')}`,
      `--web.listen-address=127.0.0.1:${amPort}`,
      '--cluster.listen-address=',
    ], dir);
    prometheus = startProcess(prometheusBin!, [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'prom-data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ], dir);
    await waitFor('Alertmanager ready', async () => ((await fetch(`${amUrl}/-/ready`)).ok ? true : undefined));
    await waitFor('Prometheus ready', async () => ((await fetch(`${promUrl}/-/ready`)).ok ? true : undefined));
  }, 60_000);

  afterAll(async () => {
    await Promise.all([stopProcess(prometheus), stopProcess(alertmanager)]);
    await exporter?.close();
    await mock?.close();
    await new Promise((r) => (hook ? hook.close(r) : r(undefined)));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('Prometheus scrapes the exporter', async () => {
    const up = await waitFor('up{job="tokenmeter"} == 1', async () => {
      const r = await promQuery(`up{job="${SCRAPE_JOB}"}`);
      return r.length === 1 && r[0].value[1] === '1' ? r : undefined;
    });
    expect(up[0].metric.instance).toBe(new URL(exporter.httpUrl).host);
  });

  it('fires the near-limit alert at 80% of the token limit, and Alertmanager delivers it to the webhook', async () => {
    mock.setFixedUsage(USAGE_PER_CALL);
    // alice: 4 × 2,000 = 8,000 of 10,000 tokens. Plus traffic for the other panels: another user and provider, a
    // model with no price, and a call without usage (its tokens are estimated).
    await runAppOk([
      aliceCall, aliceCall, aliceCall, aliceCall,
      { user: 'bob', plan: 'pro', api: 'anthropic', model: 'claude-haiku-4-5' },
      { user: 'dave', plan: 'pro', api: 'openai', model: 'stack-e2e-model-without-a-price' },
    ]);
    mock.setOmitUsage(true);
    await runAppOk([{ user: 'carol', plan: 'pro', api: 'openai', model: 'gpt-4o-mini' }]);
    mock.setOmitUsage(false);
    // Exporter-health traffic: a span sent twice (a duplicate), a span with impossible usage (rejected), a malformed
    // request. Sent now and again later, because a counter series that first appears with its value shows no
    // increase until a later sample.
    await sendExporterHealthTraffic();

    const ratio = await waitFor('alice at 80% in Prometheus', async () => {
      const r = await promQuery(`max by (user, plan) (${METRIC.periodTokens}{user="${USER}"}) / max by (user, plan) (${METRIC.limitTokens}{user="${USER}"})`);
      return r.length === 1 && r[0].value[1] === '0.8' ? r : undefined;
    });
    expect(ratio[0].metric).toEqual({ user: USER, plan: PLAN });

    const firing = await waitFor('TokenmeterUserNearTokenLimit firing in Prometheus', async () =>
      (await promAlerts()).find((a) => a.labels.alertname === 'TokenmeterUserNearTokenLimit' && a.state === 'firing'),
    );
    expect(firing.labels).toMatchObject({ user: USER, plan: PLAN, severity: 'info' });
    expect((await promAlerts()).some((a) => a.labels.alertname === 'TokenmeterUserOverTokenLimit')).toBe(false);

    const delivered = await waitFor('the near-limit alert at the webhook', async () =>
      received.find((a) => a.labels.alertname === 'TokenmeterUserNearTokenLimit' && a.status === 'firing'),
    );
    expect(delivered.labels).toMatchObject({ user: USER, plan: PLAN, severity: 'info' });
    expect(delivered.annotations.summary).toBe('alice (free) has used 80% of their token limit');
    expect(delivered.annotations.runbook_url).toBe(runbookUrl('TokenmeterUserNearTokenLimit'));
    // Apps, Prometheus rule evaluation and Alertmanager delivery: a busy 2-core machine needs more than 30 s.
  }, 120_000);

  it('fires the over-limit alert at 100% instead, and Alertmanager delivers it to the webhook', async () => {
    await runAppOk([aliceCall, { user: 'dave', plan: 'pro', api: 'openai', model: 'stack-e2e-model-without-a-price' }]);
    await sendExporterHealthTraffic();
    const firing = await waitFor('TokenmeterUserOverTokenLimit firing in Prometheus', async () =>
      (await promAlerts()).find((a) => a.labels.alertname === 'TokenmeterUserOverTokenLimit' && a.state === 'firing'),
    );
    expect(firing.labels).toMatchObject({ user: USER, plan: PLAN, severity: 'warning' });
    const delivered = await waitFor('the over-limit alert at the webhook', async () =>
      received.find((a) => a.labels.alertname === 'TokenmeterUserOverTokenLimit' && a.status === 'firing'),
    );
    expect(delivered.labels.user).toBe(USER);
    expect(delivered.annotations.summary).toBe('alice (free) is over their token limit: 100%');
    // Near stops where over starts: it resolves, and the webhook hears so.
    await waitFor('the near-limit alert resolved', async () =>
      received.find((a) => a.labels.alertname === 'TokenmeterUserNearTokenLimit' && a.status === 'resolved'),
    );
    expect((await promAlerts()).some((a) => a.labels.alertname === 'TokenmeterUserNearTokenLimit')).toBe(false);
    // Nobody else is near or over anything.
    const users = received.filter((a) => a.labels.alertname?.startsWith('TokenmeterUser')).map((a) => a.labels.user);
    expect(new Set(users)).toEqual(new Set([USER]));
    // Apps, Prometheus rule evaluation and Alertmanager delivery: a busy 2-core machine needs more than 30 s.
  }, 120_000);

  it('every dashboard panel\'s PromQL, with its variables filled in, returns data from this Prometheus', async () => {
    const fill = (expr: string) =>
      expr
        .replaceAll('$__rate_interval', '1m')
        .replaceAll('$__range', '10m')
        .replaceAll('$__interval', '15s')
        .replaceAll('$plan', '.*')
        .replaceAll('$provider', '.*')
        .replaceAll('$model', '.*')
        .replaceAll('$user', USER);
    const queries = allPanelQueries();
    expect(queries.length).toBeGreaterThan(40);
    // What the newer panels show: a call span without counts (billed as a flagged request), a span that reports its
    // own cost, and admission control refusing alice (over her token limit by now) and granting erin.
    expect((await postTraces(otlpSpan('erin', undefined))).status).toBe(200);
    expect((await postTraces(otlpSpan('erin', 10, '0.0001'))).status).toBe(200);
    const reserve = (user: string, inputTokens: number) =>
      fetch(`${exporter.httpUrl}/api/v1/reservations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user, provider: 'openai', model: 'gpt-4o-mini', input_tokens: inputTokens, max_output_tokens: 10 }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { granted?: boolean } }));
    expect((await reserve(USER, 10 * TOKEN_LIMIT)).body.granted).toBe(false);
    expect((await reserve('erin', 10)).body.granted).toBe(true);
    for (const m of [METRIC.userRefusedCallsTotal, METRIC.reservationsTotal, METRIC.missingUsageSpansTotal, METRIC.reportedCostUsdTotal]) {
      await waitFor(`${m} scraped twice`, async () => ((await promQuery(`count_over_time(${m}[1m]) >= 2`)).length > 0 ? true : undefined));
    }
    // The last sends have been scraped (a rate needs two samples of the series).
    for (const m of [METRIC.rejectedRequestsTotal, METRIC.rejectedSpansTotal, METRIC.unpricedTokensTotal]) {
      await waitFor(`${m} increasing in Prometheus`, async () => ((await promQuery(`increase(${m}[1m]) > 0`)).length > 0 ? true : undefined));
    }

    const empty: string[] = [];
    for (const q of queries) {
      const result = await promQuery(fill(q.expr));
      if (result.length === 0) empty.push(`${q.dashboard} / ${q.panel} / ${q.refId}: ${fill(q.expr)}`);
    }
    // Joined, so a failure lists every empty panel in full.
    expect(empty.join('\n')).toBe('');

    // Every counter series here was born inside the 10-minute range (a fresh ledger: nothing to prime), so the range
    // panels must count all of it: the Overview's "Tokens" and "Requests" are the exact ledger totals, give or take
    // increase()'s extrapolation of the growth after each series' first sample (never less: increase() alone would
    // miss each series' first sample and show less).
    const overviewPanel = (title: string) => queries.find((q) => q.dashboard === 'tokenmeter-overview' && q.panel === title)!.expr;
    for (const [title, ledger] of [['Tokens', METRIC.periodTokens], ['Requests', METRIC.periodRequests]] as const) {
      const agreed = await waitFor(`Overview "${title}" equal to the ledger's ${ledger}`, async () => {
        const [panel] = await promQuery(fill(overviewPanel(title)));
        const [exact] = await promQuery(`sum(max by (user, plan) (${ledger}))`);
        if (!panel || !exact || !(Number(panel.value[1]) > 0)) return undefined;
        const [p, e] = [Number(panel.value[1]), Number(exact.value[1])];
        return p >= e && p <= e * 1.1 ? p : undefined;
      }, 10_000);
      expect(agreed).toBeGreaterThan(0);
    }

    // plan, provider, model (Overview); plan, user (Usage vs limits); plan, user (User drill-down).
    expect(variableQueries().map((v) => `${v.dashboard}/${v.name}`)).toHaveLength(7);
    for (const v of variableQueries()) {
      const m = /^label_values\((.*), *(\w+)\)$/.exec(v.query)!;
      const series = await promQuery(fill(m[1]));
      expect(series.some((s) => s.metric[m[2]] !== undefined), `${v.dashboard} variable ${v.name}: ${v.query}`).toBe(true);
    }
  });

  it('every metric the dashboards and rules name is in the exporter\'s /metrics', async () => {
    const text = await (await fetch(`${exporter.httpUrl}/metrics`)).text();
    const exposed = new Set([...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1]));
    const rules = parse(readFileSync(join(root, 'otel-config/prometheus/rules/tokenmeter-alerts.yml'), 'utf8'));
    const exprs = [
      ...allPanelQueries().map((q) => q.expr),
      ...rules.groups.flatMap((g: any) => g.rules.map((r: any) => r.expr)),
      ...RECORDING_RULES.map((r) => r.expr),
    ];
    // Prometheus' own series, other components' metrics (Alertmanager), and the series the recording rules write.
    const builtins = new Set<string>([...PROMETHEUS_BUILTIN_METRICS, ...FOREIGN_METRICS, ...RECORDING_RULES.map((r) => r.record)]);
    for (const e of exprs) {
      for (const n of metricNamesIn(e)) {
        if (builtins.has(n)) continue;
        expect(exposed, `${n} (in ${e})`).toContain(baseMetricName(n, [METRIC.ledgerCommitSeconds, METRIC.otlpRequestDurationSeconds, METRIC.reservationActualToEstimateRatio]));
      }
    }
  });
});
