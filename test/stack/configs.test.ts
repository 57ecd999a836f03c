/**
 * The stack's configuration files, checked by the real tools from Debian's packages: promtool (config, rules, rule
 * unit tests), amtool (config, routing) and docker-compose (the compose file). Plus structural checks of the
 * collector configurations and the Dockerfile, for which no tool is installed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { GENAI } from '../../src/contract/names.js';
import { ALERTS, COLLECTOR_SCRAPE_JOB, ALERTMANAGER_SCRAPE_JOB, RECORDING_RULES, SEVERITIES, WATCHDOG_ALERT } from '../../src/dashboards/index.js';
import { requireBinary } from '../helpers/binaries.js';
import { readRepoFile, readYaml, root } from '../dashboards/helpers.js';

const promtool = requireBinary('promtool');
const amtool = requireBinary('amtool');
const dockerCompose = requireBinary('docker-compose');

function run(bin: string, args: string[], cwd = root): { status: number; out: string; stdout: string } {
  const r = spawnSync(bin, args, { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}`, stdout: r.stdout };
}

const temps: string[] = [];
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

describe.skipIf(!promtool)('Prometheus configuration (promtool)', () => {
  it('promtool check config accepts prometheus.yml and the rule files it loads', () => {
    const r = run(promtool!, ['check', 'config', 'otel-config/prometheus/prometheus.yml']);
    expect(r.out).toMatch(/SUCCESS: 2 rule files found/);
    expect(r.out).toContain(`SUCCESS: ${ALERTS.length} rules found`);
    expect(r.out).toContain(`SUCCESS: ${RECORDING_RULES.length} rules found`);
    expect(r.status, r.out).toBe(0);
  });

  it('promtool check rules accepts the generated rule files', () => {
    const r = run(promtool!, ['check', 'rules', 'otel-config/prometheus/rules/tokenmeter-alerts.yml', 'otel-config/prometheus/recording/tokenmeter-recording.yml']);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain(`SUCCESS: ${ALERTS.length} rules found`);
    expect(r.out).toContain(`SUCCESS: ${RECORDING_RULES.length} rules found`);
  });

  it('scrapes Alertmanager and the collector (the meta-monitoring and collector alerts read their metrics)', () => {
    const jobs = readYaml('otel-config/prometheus/prometheus.yml').scrape_configs;
    const job = (name: string) => jobs.find((j: any) => j.job_name === name);
    expect(job(ALERTMANAGER_SCRAPE_JOB).static_configs[0].targets).toEqual(['alertmanager:9093']);
    expect(job(COLLECTOR_SCRAPE_JOB).static_configs[0].targets).toEqual(['collector:8888']);
    // The collector serves its metrics where Prometheus looks for them.
    const reader = readYaml('otel-config/collector.yaml').service.telemetry.metrics.readers[0].pull.exporter.prometheus;
    expect(reader).toEqual({ host: '0.0.0.0', port: 8888 });
  });

  const testFiles = readdirSync(join(root, 'otel-config/prometheus/tests'))
    .filter((f) => f.endsWith('.yml'))
    .map((f) => `otel-config/prometheus/tests/${f}`);

  it('promtool test rules passes every unit test', () => {
    expect(testFiles.length).toBeGreaterThan(0);
    const r = run(promtool!, ['test', 'rules', ...testFiles]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain('SUCCESS');
    // tokenmeter-weekly.test.yml evaluates every rule every 5 minutes over 8 days: seconds, more on a busy machine.
  }, 180_000);

  it('has, for every alert, a case where it fires and a case where it must not', () => {
    const fires = new Set<string>();
    const silent = new Set<string>();
    for (const f of testFiles) {
      for (const t of readYaml(f).tests) {
        for (const c of t.alert_rule_test ?? []) {
          if ((c.exp_alerts ?? []).length > 0) {
            fires.add(c.alertname);
            for (const a of c.exp_alerts) {
              expect(a.exp_labels.severity, c.alertname).toBeTruthy();
              expect(Object.keys(a.exp_annotations ?? {}).sort(), c.alertname).toEqual(['dashboard_url', 'description', 'runbook_url', 'summary']);
              expect(a.exp_labels.category, c.alertname).toBeTruthy();
            }
          } else silent.add(c.alertname);
        }
      }
    }
    for (const a of ALERTS) {
      expect(fires, `no firing case for ${a.name}`).toContain(a.name);
      // The Watchdog fires by definition; its "not firing" is the outside dead man's switch's business.
      if (a.name !== WATCHDOG_ALERT) expect(silent, `no must-not-fire case for ${a.name}`).toContain(a.name);
    }
  });

  /** Runs the unit tests against a copy of the rules with `edit` applied; returns promtool's result. */
  function testBrokenCopy(edit: (rules: string) => string, tests: string[] = testFiles): { status: number; out: string } {
    const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-promtool-'));
    temps.push(dir);
    for (const d of ['rules', 'recording', 'tests']) mkdirSync(join(dir, d));
    const rules = readRepoFile('otel-config/prometheus/rules/tokenmeter-alerts.yml');
    const edited = edit(rules);
    expect(edited).not.toBe(rules);
    writeFileSync(join(dir, 'rules/tokenmeter-alerts.yml'), edited);
    copyFileSync(join(root, 'otel-config/prometheus/recording/tokenmeter-recording.yml'), join(dir, 'recording/tokenmeter-recording.yml'));
    for (const f of tests) copyFileSync(join(root, f), join(dir, 'tests', f.split('/').pop()!));
    return run(promtool!, ['test', 'rules', ...tests.map((f) => `tests/${f.split('/').pop()}`)], dir);
  }

  it('the weekly unit tests catch a SpendSpike that compares with a flat 7-day average (it fires on a normal Monday)', () => {
    const r = testBrokenCopy(
      (rules) =>
        rules.replace(
          '> 3 * (tokenmeter:plan_cost_usd:increase1h offset 1w)',
          '> 3 * avg_over_time(tokenmeter:plan_cost_usd:increase1h[7d] offset 1h)',
        ),
      ['otel-config/prometheus/tests/tokenmeter-weekly.test.yml'],
    );
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/alertname: TokenmeterSpendSpike, time: 7d11h,/);
  }, 180_000);

  it('the unit tests catch a near-limit rule that overlaps the over-limit rule', () => {
    const r = testBrokenCopy((rules) => rules.replaceAll(' >= 0.8 < 1', ' >= 0.8'), ['otel-config/prometheus/tests/tokenmeter-alerts.test.yml']);
    expect(r.status).not.toBe(0);
    expect(r.out).toContain('TokenmeterUserNearTokenLimit');
  }, 60_000);
});

describe.skipIf(!amtool)('Alertmanager configuration (amtool)', () => {
  const config = 'otel-config/alertmanager/alertmanager.yml';

  it('amtool check-config accepts alertmanager.yml', () => {
    const r = run(amtool!, ['check-config', config]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain('SUCCESS');
  });

  it.each([
    ['critical', 'pipeline', 'pagerduty'],
    ['warning', 'pipeline', 'slack'],
    ['warning', 'spend', 'slack'],
    ['info', 'spend', 'webhook'],
    // Customer usage never pages, whatever its severity: it goes to customer ops.
    ['critical', 'customer', 'customer-ops'],
    ['warning', 'customer', 'customer-ops'],
    ['info', 'customer', 'customer-ops'],
  ])('routes severity=%s category=%s to %s', (severity, category, receiver) => {
    const r = run(amtool!, ['config', 'routes', 'test', `--config.file=${config}`, `severity=${severity}`, `category=${category}`, 'alertname=TokenmeterTest', 'plan=free']);
    expect(r.status, r.out).toBe(0);
    expect(r.stdout.trim()).toBe(receiver);
  });

  it('routes every alert by its own labels: customer alerts to customer-ops, pages only for pipeline and meta faults', () => {
    for (const a of ALERTS) {
      const r = run(amtool!, ['config', 'routes', 'test', `--config.file=${config}`, `alertname=${a.name}`, `severity=${a.severity}`, `category=${a.category}`, 'plan=free']);
      const receiver = r.stdout.trim();
      if (a.name === WATCHDOG_ALERT) expect(receiver).toBe('watchdog');
      else if (a.name === 'TokenmeterAlertmanagerNotificationsFailing') expect(receiver).toBe('meta');
      else if (a.category === 'customer') expect(receiver, a.name).toBe('customer-ops');
      else expect(receiver, a.name).toBe({ critical: 'pagerduty', warning: 'slack', info: 'webhook', none: 'webhook' }[a.severity]);
      if (receiver === 'pagerduty') expect(a.category, a.name).toBe('pipeline');
    }
  });

  it('groups customer alerts by alert and plan with a daily repeat', () => {
    const route = readYaml(config).route.routes.find((x: any) => x.receiver === 'customer-ops');
    expect(route.group_by).toEqual(['alertname', 'plan']);
    expect(route.repeat_interval).toBe('24h');
  });

  it('routes every severity the alert rules use to a receiver, and alerts without one to the webhook', () => {
    for (const s of new Set(ALERTS.map((a) => a.severity))) expect(SEVERITIES).toContain(s);
    const r = run(amtool!, ['config', 'routes', 'test', `--config.file=${config}`, 'alertname=Other']);
    expect(r.stdout.trim()).toBe('webhook');
  });

  it('reads receiver secrets from files, never inline', () => {
    const am = readYaml(config);
    const text = readRepoFile(config);
    expect(text).not.toMatch(/^\s*(api_url|routing_key|service_key|auth_password|password):/m);
    for (const r of am.receivers) {
      for (const slack of r.slack_configs ?? []) expect(slack.api_url_file, r.name).toBe('/run/secrets/slack_webhook_url');
      for (const pd of r.pagerduty_configs ?? []) expect(pd.routing_key_file, r.name).toBe('/run/secrets/pagerduty_routing_key');
    }
    // docker-compose.yml mounts those secrets into the Alertmanager container.
    const compose = readYaml('docker-compose.yml');
    expect(compose.services.alertmanager.secrets.sort()).toEqual(['pagerduty_routing_key', 'slack_webhook_url']);
  });

  it('rejects a configuration with an inline environment reference it would not expand', () => {
    // The reason for *_file: Alertmanager 0.25 takes "${SLACK_URL}" literally, and it is not a URL.
    const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-amtool-'));
    temps.push(dir);
    const bad = readRepoFile(config).replace('api_url_file: /run/secrets/slack_webhook_url', 'api_url: ${SLACK_URL}');
    writeFileSync(join(dir, 'am.yml'), bad);
    const r = run(amtool!, ['check-config', join(dir, 'am.yml')]);
    expect(r.status).not.toBe(0);
  });
});

/** The variables docker-compose.yml requires (no defaults), as an operator would export them. */
const COMPOSE_SECRETS = {
  GRAFANA_ADMIN_PASSWORD: 'grafana-admin-password-for-tests',
  TOKENMETER_INGEST_TOKEN: 'ingest-token-for-tests-0123456789',
  TOKENMETER_API_TOKEN: 'api-token-for-tests-0123456789',
};

describe.skipIf(!dockerCompose)('docker-compose.yml (docker-compose config)', () => {
  function composeConfig(...overrides: string[]): any {
    const out = execFileSync(dockerCompose!, ['-f', 'docker-compose.yml', ...overrides.flatMap((f) => ['-f', f]), 'config'], {
      cwd: root,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...COMPOSE_SECRETS },
    });
    return parse(out);
  }

  it('validates, and has the services of the stack', () => {
    const c = composeConfig();
    expect(Object.keys(c.services).sort()).toEqual(
      ['alert-log', 'alertmanager', 'collector', 'demo', 'grafana', 'mock-provider', 'postgres', 'prometheus', 'tokenmeter'].sort(),
    );
  });

  it('pins every image, gives every service a healthcheck, keeps state in named volumes', () => {
    const c = composeConfig();
    for (const [name, s] of Object.entries<any>(c.services)) {
      expect(s.image, name).toMatch(/^[a-z0-9./-]+:[A-Za-z0-9._-]+$/);
      expect(s.image, name).not.toMatch(/:latest$/);
      expect(s.image.split(':')[1], name).toMatch(/\d/);
      expect(s.healthcheck?.test, name).toBeTruthy();
      for (const v of s.volumes ?? []) {
        const source = typeof v === 'string' ? v.split(':')[0] : v.source;
        const type = typeof v === 'string' ? (source.startsWith('/') || source.startsWith('.') ? 'bind' : 'volume') : v.type;
        if (type === 'volume') expect(Object.keys(c.volumes), `${name}: ${source}`).toContain(source);
        else expect(source.startsWith(root), `${name}: bind mount ${source} is inside the repository`).toBe(true);
      }
    }
    expect(Object.keys(c.volumes).sort()).toEqual(['alertmanager-data', 'grafana-data', 'postgres-data', 'prometheus-data']);
  });

  it('builds the exporter from the repository Dockerfile and wires the configs', () => {
    const c = composeConfig();
    expect(c.services.tokenmeter.build).toMatchObject({ dockerfile: 'Dockerfile', target: 'runtime' });
    expect(c.services.tokenmeter.environment.TOKENMETER_STORAGE).toMatch(/^postgres:\/\/tokenmeter:.+@postgres:5432\/tokenmeter$/);
    expect(c.services.demo.build).toMatchObject({ dockerfile: 'Dockerfile', target: 'demo' });
    expect(c.services.demo.command).toEqual([
      'demo', '--workload-only', '--otlp-endpoint', 'http://collector:4318', '--provider-url', 'http://mock-provider:8787', '--users', '12', '--rate', '4',
    ]);
    expect(c.services.collector.image).toMatch(/^otel\/opentelemetry-collector-contrib:/);
    const mounts = (s: string) => (c.services[s].volumes ?? []).map((v: any) => (typeof v === 'string' ? v : `${v.source}:${v.target}`));
    expect(mounts('prometheus').some((m: string) => m.startsWith(`${root}/otel-config/prometheus:/etc/prometheus`))).toBe(true);
    expect(mounts('collector').some((m: string) => m.startsWith(`${root}/otel-config/collector.yaml:`))).toBe(true);
    for (const dir of ['datasources', 'dashboards']) {
      expect(mounts('grafana').some((m: string) => m.startsWith(`${root}/grafana/provisioning/${dir}:/etc/grafana/provisioning/${dir}`))).toBe(true);
    }
    // The Prometheus and Alertmanager images are the versions CI checks the configuration with.
    const version = (bin: string, re: RegExp) => re.exec(execFileSync(bin, ['--version'], { encoding: 'utf8' }))?.[1];
    expect(c.services.prometheus.image).toBe(`prom/prometheus:v${version(promtool!, /promtool, version (\d+\.\d+\.\d+)/)}`);
    expect(c.services.alertmanager.image).toBe(`prom/alertmanager:v${version(amtool!, /amtool, version (\d+\.\d+\.\d+)/)}`);
  });

  it('alerts through one path at a time: Prometheus + Alertmanager by default, Grafana with the override file', () => {
    const alertingMount = (c: any) =>
      (c.services.grafana.volumes ?? []).filter((v: any) => (typeof v === 'string' ? v : v.target).includes('/etc/grafana/provisioning/alerting'));
    const byDefault = composeConfig();
    expect(alertingMount(byDefault)).toEqual([]);
    expect(byDefault.services.prometheus.tmpfs).toBeUndefined();

    const grafana = composeConfig('docker-compose.grafana-alerting.yml');
    expect(alertingMount(grafana)).toEqual([`${root}/grafana/provisioning/alerting:/etc/grafana/provisioning/alerting:ro`]);
    // Prometheus' rules directory is emptied, so prometheus.yml's `rules/*.yml` glob matches nothing; the recording
    // rules (recording/) stay, because the Grafana-managed alerts read what they record.
    expect(readYaml('otel-config/prometheus/prometheus.yml').rule_files).toEqual(['rules/*.yml', 'recording/*.yml']);
    expect(grafana.services.prometheus.tmpfs).toEqual(['/etc/prometheus/rules']);
    const promMount = grafana.services.prometheus.volumes.find((v: any) => (typeof v === 'string' ? v : v.source).includes('otel-config/prometheus'));
    expect(typeof promMount === 'string' ? promMount.split(':')[1] : promMount.target).toBe('/etc/prometheus');
  });

  it('fails validation of a broken compose file (so the check can fail)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-compose-'));
    temps.push(dir);
    writeFileSync(join(dir, 'docker-compose.yml'), readRepoFile('docker-compose.yml').replace('    healthcheck:\n      test: ["CMD-SHELL"', '    healthcheck: [\n      test: ["CMD-SHELL"'));
    const r = spawnSync(dockerCompose!, ['-f', join(dir, 'docker-compose.yml'), 'config', '-q'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, ...COMPOSE_SECRETS },
    });
    expect(r.status).not.toBe(0);
  });
});

describe('Dockerfile', () => {
  const text = readRepoFile('Dockerfile');
  const stages = [...text.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)].map((m) => ({ from: m[1], name: m[2] }));

  it('is multi-stage from a pinned Node 20 image', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'prod-deps', 'demo', 'runtime']);
    expect(text).toMatch(/^ARG NODE_IMAGE=node:20\.\d+\.\d+-bookworm-slim$/m);
  });

  it('uses a Node version that package.json\'s engines accept', () => {
    const image = /^ARG NODE_IMAGE=node:(\d+)\.(\d+)\.(\d+)-/m.exec(text)!.slice(1).map(Number);
    const engines = /^>=(\d+)\.(\d+)\.(\d+)$/.exec(JSON.parse(readRepoFile('package.json')).engines.node)!.slice(1).map(Number);
    const atLeast = image[0] !== engines[0] ? image[0] > engines[0] : image[1] !== engines[1] ? image[1] > engines[1] : image[2] >= engines[2];
    expect(atLeast, `node:${image.join('.')} vs engines >=${engines.join('.')}`).toBe(true);
  });

  it('runs the exporter (the last, default stage) as a non-root user with production dependencies only', () => {
    const runtime = text.slice(text.search(/^FROM \S+ AS runtime/m));
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toContain('COPY --from=prod-deps /app/node_modules');
    expect(runtime).toMatch(/^CMD \["serve"\]$/m);
    const demo = text.slice(text.search(/^FROM \S+ AS demo/m), text.search(/^FROM \S+ AS runtime/m));
    expect(demo).toMatch(/^USER node$/m);
  });

  it('leaves local build output and dependencies out of the build context', () => {
    const ignore = readRepoFile('.dockerignore').split('\n');
    for (const p of ['node_modules', 'dist', '.git']) expect(ignore).toContain(p);
  });
});

describe('collector configurations', () => {
  function pipelinesAreWired(cfg: any): void {
    for (const [name, p] of Object.entries<any>(cfg.service.pipelines)) {
      for (const r of p.receivers) expect(Object.keys(cfg.receivers), `${name}: receiver ${r}`).toContain(r);
      for (const x of p.processors ?? []) expect(Object.keys(cfg.processors), `${name}: processor ${x}`).toContain(x);
      for (const e of p.exporters) expect(Object.keys(cfg.exporters), `${name}: exporter ${e}`).toContain(e);
      // memory_limiter first, batch last (the collector's recommended order).
      if (p.processors?.length) {
        expect(p.processors[0]).toBe('memory_limiter');
        if (p.processors.includes('batch')) expect(p.processors.at(-1)).toBe('batch');
      }
    }
    for (const e of cfg.service.extensions ?? []) expect(Object.keys(cfg.extensions)).toContain(e);
  }

  function genaiFilter(cfg: any): string {
    return cfg.processors['filter/genai-only'].traces.span.join(' ');
  }

  it('collector.yaml queues for tokenmeter on disk and never gives up retrying (a ledger outage loses nothing until the queue is full)', () => {
    const cfg = readYaml('otel-config/collector.yaml');
    const exporter = cfg.exporters['otlphttp/tokenmeter'];
    expect(exporter.retry_on_failure).toMatchObject({ enabled: true, max_elapsed_time: '0s' });
    expect(exporter.sending_queue.enabled).toBe(true);
    const storage = exporter.sending_queue.storage;
    expect(storage).toMatch(/^file_storage(\/|$)/);
    expect(cfg.service.extensions).toContain(storage);
    expect(cfg.extensions[storage].directory).toMatch(/^\//);
    expect(cfg.extensions[storage].create_directory).toBe(true);
    expect(exporter.sending_queue.queue_size).toBeGreaterThanOrEqual(20000);
  });

  it('collector.yaml sends only GenAI spans to tokenmeter over otlphttp, everything to the tracing pipeline', () => {
    const cfg = readYaml('otel-config/collector.yaml');
    pipelinesAreWired(cfg);
    expect(cfg.receivers.otlp.protocols.http.endpoint).toBe('0.0.0.0:4318');
    const tm = cfg.service.pipelines['traces/tokenmeter'];
    expect(tm.processors).toEqual(['memory_limiter', 'filter/genai-only', 'batch']);
    expect(tm.exporters).toEqual(['otlphttp/tokenmeter']);
    expect(cfg.exporters['otlphttp/tokenmeter'].endpoint).toBe('http://tokenmeter:4318');
    expect(cfg.service.pipelines['traces/backend'].processors).not.toContain('filter/genai-only');
    // The filter drops a span only when it has none of the GenAI attributes, across the conventions.
    const f = genaiFilter(cfg);
    for (const attr of [GENAI.operationName, GENAI.deprecatedSystem, GENAI.providerName, GENAI.inputTokens, 'llm.request.type', 'ai.model.id']) {
      expect(f).toContain(`attributes["${attr}"] == nil`);
    }
    expect(f).not.toMatch(/\bor\b/);
  });

  it('collector-scaled.yaml load-balances GenAI spans by trace id over the replicas, with the same filter', () => {
    const cfg = readYaml('otel-config/collector-scaled.yaml');
    pipelinesAreWired(cfg);
    const lb = cfg.exporters['loadbalancing/tokenmeter'];
    expect(lb.routing_key).toBe('traceID');
    expect(lb.resolver.dns.hostname).toBeTruthy();
    expect(genaiFilter(cfg)).toBe(genaiFilter(readYaml('otel-config/collector.yaml')));
    const sidecar = readYaml('otel-config/collector-sidecar.yaml');
    pipelinesAreWired(sidecar);
    expect(sidecar.exporters['otlphttp/tokenmeter'].endpoint).toBe('http://127.0.0.1:4318');
    expect(sidecar.receivers.otlp.protocols.grpc.endpoint).toBe(`0.0.0.0:${lb.resolver.dns.port}`);
    // The loadbalancing exporter's only protocol is `otlp` (OTLP/gRPC; upstream's config has no HTTP variant), hence
    // the sidecar. It neither batches nor queues nor retries, so tokenmeter's answer (success only after the ledger
    // commit, 503 while it is down) is the gRPC result the gateway sees, and the gateway's queue does the retrying.
    expect(Object.keys(lb.protocol)).toEqual(['otlp']);
    expect(lb.protocol.otlp.sending_queue.enabled).toBe(true);
    expect(lb.protocol.otlp.retry_on_failure.enabled).toBe(true);
    expect(sidecar.service.pipelines.traces.processors).toEqual(['memory_limiter']);
    expect(sidecar.exporters['otlphttp/tokenmeter'].sending_queue.enabled).toBe(false);
    expect(sidecar.exporters['otlphttp/tokenmeter'].retry_on_failure.enabled).toBe(false);
  });
});

describe('alert-log (the compose stack\'s webhook receiver)', () => {
  it('is valid JavaScript', () => {
    expect(() => execFileSync(process.execPath, ['--check', join(root, 'otel-config/alert-log/alert-log.mjs')])).not.toThrow();
    expect(readFileSync(join(root, 'otel-config/alertmanager/secrets/slack_webhook_url.example'), 'utf8').trim()).toBe('http://alert-log:8080/slack');
  });
});
