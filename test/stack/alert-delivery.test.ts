/**
 * The shipped Alertmanager configuration (otel-config/alertmanager/alertmanager.yml), run by the real Alertmanager
 * binary, fed by a real Prometheus evaluating the shipped alert and recording rules, delivering to a local sink that
 * speaks the webhook, Slack and PagerDuty (Events v2) wire formats.
 *
 * The copy of the configuration differs from the shipped one only where it must: receiver URLs point at the sink, the
 * secrets are temporary files, and group_wait / group_interval are shortened so the test does not wait minutes. The
 * routing tree, receivers, inhibition and every template are the shipped ones.
 *
 * Scenario: two tokenmeter exporter instances down (scrape targets on closed ports), a real exporter on which three
 * users of the free plan are over their token limit and one is near it, a model without a price, and the Watchdog.
 * Checked: every notification has a non-empty title / summary (PagerDuty's summary in particular), the page for the
 * exporters is one event for the job, customer alerts reach the customer-ops receiver only (grouped by alert and
 * plan, never paged), the Watchdog reaches its own receiver.
 */
import { freePort, startProcess, stopProcess, type Proc } from '../helpers/processes.js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ALERTMANAGER_SCRAPE_JOB, SCRAPE_JOB, WATCHDOG_ALERT } from '../../src/dashboards/index.js';
import { startExporter, type RunningExporter } from '../../src/exporter/index.js';
import { requireBinary } from '../helpers/binaries.js';
import { readRepoFile } from '../dashboards/helpers.js';

const prometheusBin = requireBinary('prometheus');
const alertmanagerBin = requireBinary('prometheus-alertmanager');

interface Delivery {
  path: string;
  body: any;
}

let dir: string;
let exporter: RunningExporter;
let sink: Server;
let sinkUrl: string;
const deliveries: Delivery[] = [];
let prometheus: Proc;
let alertmanager: Proc;
let amUrl: string;
let promUrl: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMillis = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMillis;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch {
      // not ready yet
    }
    await sleep(250);
  }
  const logs = [prometheus, alertmanager].map((p) => p?.output.join('').slice(-3000)).join('\n---\n');
  const rules = await fetch(`${promUrl}/api/v1/rules`).then(
    async (r) =>
      JSON.stringify(((await r.json()) as any).data.groups.flatMap((g: any) => g.rules.map((x: any) => [x.name, x.state, x.health, x.lastError, x.alerts?.length]))),
    (e: unknown) => String(e),
  );
  const amAlerts = await fetch(`${amUrl}/api/v2/alerts`).then(
    async (r) => JSON.stringify(((await r.json()) as any[]).map((a) => [a.labels.alertname, a.status.state, a.receivers.map((x: any) => x.name)])),
    (e: unknown) => String(e),
  );
  const seen = deliveries.map((d) => `${d.path}: ${JSON.stringify(d.body).slice(0, 300)}`).join('\n');
  throw new Error(`timed out waiting for ${what}\ndeliveries:\n${seen}\nPrometheus rules: ${rules.slice(0, 6000)}\nAlertmanager alerts: ${amAlerts.slice(0, 3000)}\n${logs}`);
}

/** The shipped Alertmanager configuration, with only its endpoints, secrets and grouping delays replaced. */
function testAlertmanagerConfig(slackUrlFile: string, routingKeyFile: string): string {
  const shipped = readRepoFile('otel-config/alertmanager/alertmanager.yml');
  for (const s of ['http://alert-log:8080/', '/run/secrets/slack_webhook_url', '/run/secrets/pagerduty_routing_key']) expect(shipped).toContain(s);
  const text = shipped
    .replaceAll('http://alert-log:8080', sinkUrl)
    .replaceAll('/run/secrets/slack_webhook_url', slackUrlFile)
    .replaceAll('/run/secrets/pagerduty_routing_key', routingKeyFile);
  const am = parse(text);
  am.global = { ...am.global, pagerduty_url: `${sinkUrl}/pagerduty` };
  const fast = (route: any) => {
    if (route.group_wait !== undefined || route === am.route) route.group_wait = '1s';
    if (route.group_interval !== undefined || route === am.route) route.group_interval = '2s';
    for (const r of route.routes ?? []) fast(r);
  };
  fast(am.route);
  return stringify(am, { aliasDuplicateObjects: false, lineWidth: 0 });
}

/** The shipped rules with every `for:` and group interval shortened to 1s. */
function fastRules(path: string): string {
  const rules = parse(readRepoFile(path));
  for (const g of rules.groups) {
    g.interval = '1s';
    for (const r of g.rules) if (r.alert) r.for = '1s';
  }
  return stringify(rules, { lineWidth: 0 });
}

/** One OTLP/JSON request with one GenAI span. */
function span(user: string, model: string, inputTokens: number): string {
  const attr = (key: string, value: string | number) => ({ key, value: typeof value === 'number' ? { intValue: String(value) } : { stringValue: value } });
  const now = BigInt(Date.now()) * 1_000_000n;
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [attr('service.name', 'alert-delivery-test')] },
        scopeSpans: [
          {
            scope: { name: 'alert-delivery' },
            spans: [
              {
                traceId: randomBytes(16).toString('hex'),
                spanId: randomBytes(8).toString('hex'),
                name: `chat ${model}`,
                kind: 3,
                startTimeUnixNano: String(now - 1_000_000n),
                endTimeUnixNano: String(now),
                attributes: [
                  attr('gen_ai.operation.name', 'chat'),
                  attr('gen_ai.provider.name', 'openai'),
                  attr('gen_ai.request.model', model),
                  attr('gen_ai.response.model', model),
                  attr('gen_ai.usage.input_tokens', inputTokens),
                  attr('gen_ai.usage.output_tokens', 0),
                  attr('user.id', user),
                  attr('tokenmeter.plan', 'free'),
                ],
              },
            ],
          },
        ],
      },
    ],
  });
}

const at = (path: string) => deliveries.filter((d) => d.path === path);
/** Webhook payloads (the alert-log's paths), with the alert names they carry. */
const webhookAlertNames = (path: string) => new Set(at(path).flatMap((d) => d.body.alerts.map((a: any) => a.labels.alertname)));

const OVER_USERS = ['u-over-1', 'u-over-2', 'u-over-3'];

describe.skipIf(!prometheusBin || !alertmanagerBin)('the shipped Alertmanager configuration delivers what on-call and customer ops need', { timeout: 90_000 }, () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tokenmeter-alert-delivery-'));
    sink = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          body = { unparsable: Buffer.concat(chunks).toString('utf8') };
        }
        deliveries.push({ path: (req.url ?? '/').split('?')[0]!, body });
        // PagerDuty's Events API v2 answers 202 with a JSON status; Slack and webhooks 200.
        if (req.url === '/pagerduty') res.writeHead(202, { 'content-type': 'application/json' }).end('{"status":"success","message":"Event processed"}');
        else res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;

    exporter = await startExporter({
      config: { plans: { free: { default: true, limits: { tokens: 1000, requests: 1000 } } } },
      storage: join(dir, 'ledger'),
      host: '127.0.0.1',
      otlpPort: 0,
      httpPort: 0,
      log: () => {},
    });

    const [promPort, amPort, deadA, deadB] = [await freePort(), await freePort(), await freePort(), await freePort()];
    amUrl = `http://127.0.0.1:${amPort}`;
    promUrl = `http://127.0.0.1:${promPort}`;
    writeFileSync(join(dir, 'slack_webhook_url'), `${sinkUrl}/slack\n`);
    writeFileSync(join(dir, 'pagerduty_routing_key'), 'test-routing-key-0123456789abcdef\n');
    writeFileSync(join(dir, 'alertmanager.yml'), testAlertmanagerConfig(join(dir, 'slack_webhook_url'), join(dir, 'pagerduty_routing_key')));
    writeFileSync(join(dir, 'alerts.yml'), fastRules('otel-config/prometheus/rules/tokenmeter-alerts.yml'));
    writeFileSync(join(dir, 'recording.yml'), fastRules('otel-config/prometheus/recording/tokenmeter-recording.yml'));
    writeFileSync(
      join(dir, 'prometheus.yml'),
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: ['alerts.yml', 'recording.yml'],
        alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${amPort}`] }] }] },
        scrape_configs: [
          // Two exporter instances, both down (nothing listens on these ports).
          { job_name: SCRAPE_JOB, static_configs: [{ targets: [`127.0.0.1:${deadA}`, `127.0.0.1:${deadB}`] }] },
          // The live exporter whose users are over their limits, in a job of its own so that the two dead
          // instances above are all of job tokenmeter.
          { job_name: 'tokenmeter-live', static_configs: [{ targets: [new URL(exporter.httpUrl).host] }] },
          { job_name: ALERTMANAGER_SCRAPE_JOB, static_configs: [{ targets: [`127.0.0.1:${amPort}`] }] },
        ],
      }),
    );

    alertmanager = startProcess(alertmanagerBin!, [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'am-data')}`,
      `--web.listen-address=127.0.0.1:${amPort}`,
      `--web.external-url=${amUrl}`,
      '--cluster.listen-address=',
    ], dir);
    // Alertmanager first: alerts that fire at Prometheus' first evaluations would otherwise go to an Alertmanager
    // not yet listening, and be re-sent only a resend delay later.
    await waitFor('Alertmanager ready', async () => ((await fetch(`${amUrl}/-/ready`)).ok ? true : undefined));
    prometheus = startProcess(prometheusBin!, [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'prom-data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      `--web.external-url=http://127.0.0.1:${promPort}`,
      '--rules.alert.resend-delay=1s',
    ], dir);
    await waitFor('Prometheus ready', async () => ((await fetch(`${promUrl}/-/ready`)).ok ? true : undefined));

    const post = (body: string) => fetch(`${exporter.otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    for (const u of OVER_USERS) expect((await post(span(u, 'gpt-4o-mini', 1500))).status).toBe(200);
    expect((await post(span('u-near', 'gpt-4o-mini', 850))).status).toBe(200);
    expect((await post(span('u-fine', 'alert-delivery-model-without-a-price', 10))).status).toBe(200);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([stopProcess(prometheus), stopProcess(alertmanager)]);
    await exporter?.close();
    await new Promise((r) => (sink ? sink.close(r) : r(undefined)));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('pages once for the two exporter instances down, with a non-empty PagerDuty summary', async () => {
    const event = await waitFor('the ExporterDown page', () =>
      at('/pagerduty').find((d) => d.body.event_action === 'trigger' && d.body.payload?.summary?.startsWith('TokenmeterExporterDown')),
    );
    expect(event.body.routing_key).toBe('test-routing-key-0123456789abcdef');
    expect(event.body.payload.summary).toBe('TokenmeterExporterDown: Every tokenmeter exporter is down: nothing is being metered');
    expect(event.body.payload.severity).toBe('critical');
    expect(event.body.client_url).toBe(amUrl);
    expect(event.body.payload.custom_details.num_firing).toBe('1');
    expect(event.body.payload.custom_details.runbook_url).toMatch(/^https?:\/\/.+#tokenmeterexporterdown$/);
    expect(event.body.payload.custom_details.dashboard_url).toMatch(/^https?:\/\/.+\/d\/tokenmeter-exporter-health$/);
    // The on-call webhook (the alert log) sees the same page: one alert for the job, not one per instance.
    const hook = await waitFor('ExporterDown at the webhook', () =>
      at('/alertmanager').find((d) => d.body.groupLabels.alertname === 'TokenmeterExporterDown'),
    );
    expect(hook.body.alerts).toHaveLength(1);
    expect(hook.body.alerts[0].labels).toMatchObject({ job: SCRAPE_JOB, severity: 'critical', category: 'pipeline' });
  });

  it('keeps the PagerDuty summary non-empty when the alerts of a group have different summaries', async () => {
    // Two alerts of one group whose summaries differ (as per-instance summaries did): the common summary is empty,
    // the template falls back to counts and the first alert's summary.
    const alerts = ['a:9464', 'b:9464'].map((instance) => ({
      labels: { alertname: 'TokenmeterTemplateProbe', severity: 'critical', category: 'pipeline', instance },
      annotations: { summary: `probe on ${instance}`, description: `probe description ${instance}` },
    }));
    const res = await fetch(`${amUrl}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alerts) });
    expect(res.status).toBe(200);
    const event = await waitFor('the probe page with both instances', () =>
      at('/pagerduty').find((d) => d.body.payload?.summary?.startsWith('TokenmeterTemplateProbe') && d.body.payload.custom_details.num_firing === '2'),
    );
    expect(event.body.payload.summary).toMatch(/^TokenmeterTemplateProbe: 2 firing, 0 resolved: probe on [ab]:9464 \(2 instances\)$/);
    expect(event.body.payload.custom_details.firing).toMatch(/probe on a:9464 \[a:9464\]; .*probe on b:9464 \[b:9464\]|probe on b:9464 \[b:9464\]; .*probe on a:9464 \[a:9464\]/);
  });

  it('sends customer usage to customer ops only, one notification per alert and plan listing every user', async () => {
    const users = await waitFor('all three over-limit users at customer ops', () => {
      const seen = new Set(
        at('/customer-ops')
          .filter((d) => d.body.groupLabels.alertname === 'TokenmeterUserOverTokenLimit')
          .flatMap((d) => d.body.alerts.filter((a: any) => a.status === 'firing').map((a: any) => a.labels.user)),
      );
      return OVER_USERS.every((u) => seen.has(u)) ? seen : undefined;
    });
    expect([...users].sort()).toEqual(OVER_USERS);
    for (const d of at('/customer-ops')) {
      expect(Object.keys(d.body.groupLabels).sort()).toEqual(['alertname', 'plan']);
      expect(d.body.groupLabels.plan).toBe('free');
    }
    // The near-limit user too (same receiver, its own group).
    await waitFor('the near-limit user at customer ops', () =>
      at('/customer-ops').find((d) => d.body.groupLabels.alertname === 'TokenmeterUserNearTokenLimit' && d.body.alerts.some((a: any) => a.labels.user === 'u-near')),
    );
    // Customer ops' Slack channel gets a titled message listing the users.
    const slack = await waitFor('the customer-ops Slack message with all three users', () =>
      at('/slack').find(
        (d) => d.body.channel === '#tokenmeter-customer-usage' && OVER_USERS.every((u) => String(d.body.attachments?.[0]?.text).includes(u)),
      ),
    );
    expect(slack.body.attachments[0].title).toMatch(/^\[FIRING:3\] TokenmeterUserOverTokenLimit \(plan free\)$/);
    expect(slack.body.attachments[0].text).toContain('u-over-1 (free) is over their token limit: 150%');
    // Never paged, never in on-call's channel or webhook.
    for (const d of at('/pagerduty')) expect(d.body.payload.summary).not.toMatch(/TokenmeterUser/);
    for (const d of at('/slack').filter((x) => x.body.channel !== '#tokenmeter-customer-usage')) expect(d.body.attachments[0].title).not.toMatch(/TokenmeterUser/);
    for (const name of webhookAlertNames('/alertmanager')) expect(name).not.toMatch(/^TokenmeterUser/);
  });

  it('posts a warning (a model without a price) to the on-call Slack channel with a title and text', async () => {
    const slack = await waitFor('the UnpricedModel Slack message', () =>
      at('/slack').find((d) => d.body.channel === '#tokenmeter-alerts' && String(d.body.attachments?.[0]?.title).includes('TokenmeterUnpricedModel')),
    );
    expect(slack.body.attachments[0].title).toBe('[FIRING:1] TokenmeterUnpricedModel');
    expect(slack.body.attachments[0].text).toContain('Model alert-delivery-model-without-a-price (openai) has no price: 10 unpriced tokens in 15m');
    expect(slack.body.attachments[0].text).toMatch(/Runbook: https?:\/\/\S+#tokenmeterunpricedmodel/);
  });

  it('sends the Watchdog to its own receiver, and nowhere else', async () => {
    const beat = await waitFor('the Watchdog heartbeat', () => at('/watchdog').find((d) => d.body.groupLabels.alertname === WATCHDOG_ALERT));
    expect(beat.body.status).toBe('firing');
    expect(webhookAlertNames('/alertmanager').has(WATCHDOG_ALERT)).toBe(false);
    for (const d of at('/pagerduty')) expect(d.body.payload.summary).not.toContain(WATCHDOG_ALERT);
  });

  it('gave every notification a non-empty title and summary', () => {
    expect(deliveries.length).toBeGreaterThan(4);
    for (const d of deliveries) {
      if (d.path === '/pagerduty') {
        expect(d.body.payload.summary, JSON.stringify(d.body)).toMatch(/^\w+: \S.*\S$/s);
      } else if (d.path === '/slack') {
        expect(d.body.attachments[0].title.trim(), JSON.stringify(d.body)).toMatch(/^\[(FIRING|RESOLVED)(:\d+)?\] \w+/);
        expect(d.body.attachments[0].text.trim()).not.toBe('');
      } else {
        expect(['/alertmanager', '/customer-ops', '/watchdog']).toContain(d.path);
        expect(d.body.groupLabels.alertname).toBeTruthy();
        for (const a of d.body.alerts) expect(a.annotations.summary.trim(), JSON.stringify(a)).not.toBe('');
      }
    }
  });
});
