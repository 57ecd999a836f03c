/**
 * The compose stacks as an on-call team would run them (issue 19, point 9), checked on what `docker-compose config`
 * (Debian's docker-compose; there is no container engine here) resolves, and the production Prometheus configuration
 * with `promtool check config`:
 *
 * - docker-compose.yml: `--scale tokenmeter=N` possible (no fixed host port), Prometheus and Grafana up whatever the
 *   exporter's health, Grafana with a required admin password and no anonymous access, OTLP and the usage API behind
 *   tokens, 40 days of retention, every host port on loopback;
 * - docs/production/: replicas on PostgreSQL with WAL archiving, gateways load-balancing by trace id with a
 *   persistent queue and the tokens, an HA Prometheus pair remote-writing with external labels, an Alertmanager
 *   cluster.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SCRAPE_JOB } from '../../src/dashboards/index.js';
import { requireBinary } from '../helpers/binaries.js';
import { readRepoFile, readYaml, root } from '../dashboards/helpers.js';

const dockerCompose = requireBinary('docker-compose');
const promtool = requireBinary('promtool');

const temps: string[] = [];
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

const DEV_SECRETS = {
  GRAFANA_ADMIN_PASSWORD: 'grafana-admin-password-for-tests',
  TOKENMETER_INGEST_TOKEN: 'ingest-token-for-tests-0123456789',
  TOKENMETER_API_TOKEN: 'api-token-for-tests-0123456789',
};
const PROD_SECRETS = {
  ...DEV_SECRETS,
  POSTGRES_PASSWORD: 'postgres-password-for-tests',
  COLLECTOR_RECEIVER_TOKEN: 'collector-token-for-tests-0123456789',
  SLACK_WEBHOOK_URL_FILE: join(root, 'otel-config/alertmanager/secrets/slack_webhook_url.example'),
  PAGERDUTY_ROUTING_KEY_FILE: join(root, 'otel-config/alertmanager/secrets/pagerduty_routing_key.example'),
};

const cache = new Map<string, { status: number; out: string; config: any }>();
/** `docker-compose -f file config` with exactly `env` (memoised: each run takes seconds). */
function compose(file: string, env: Record<string, string>): { status: number; out: string; config: any } {
  const key = `${file}\0${JSON.stringify(env)}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const result = composeUncached(file, env);
  cache.set(key, result);
  return result;
}

function composeUncached(file: string, env: Record<string, string>): { status: number; out: string; config: any } {
  const r = spawnSync(dockerCompose!, ['-f', file, 'config'], {
    cwd: root,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
  });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}`, config: r.status === 0 ? parse(r.stdout) : undefined };
}

const ports = (s: any): string[] => (s.ports ?? []).map((p: any) => (typeof p === 'string' ? p : `${p.host_ip ?? ''}:${p.published ?? ''}:${p.target}`));
const dependsOn = (s: any): Record<string, string> => {
  const d = s.depends_on ?? {};
  return Array.isArray(d) ? Object.fromEntries(d.map((x: string) => [x, 'service_started'])) : Object.fromEntries(Object.entries<any>(d).map(([k, v]) => [k, v.condition]));
};
const flag = (s: any, name: string): string | undefined => {
  const cmd: string[] = Array.isArray(s.command) ? s.command : [];
  return cmd.find((c) => c.startsWith(`${name}=`))?.slice(name.length + 1);
};
const days = (d: string) => {
  const m = /^(\d+)d$/.exec(d);
  expect(m, d).toBeTruthy();
  return Number(m![1]);
};

describe.skipIf(!dockerCompose)('docker-compose.yml for on-call', () => {
  const c = () => compose('docker-compose.yml', DEV_SECRETS).config;

  it('refuses to start without the Grafana admin password and the two tokens (no weak defaults)', () => {
    for (const missing of Object.keys(DEV_SECRETS)) {
      const env: Record<string, string> = { ...DEV_SECRETS };
      delete env[missing];
      const r = compose('docker-compose.yml', env);
      expect(r.status, missing).not.toBe(0);
      expect(r.out, missing).toContain(`set ${missing}`);
    }
    expect(compose('docker-compose.yml', DEV_SECRETS).status).toBe(0);
  });

  it('can scale the exporter: no fixed host port on it, Prometheus finds replicas by DNS', () => {
    const tm = c().services.tokenmeter;
    for (const p of ports(tm)) {
      // host_ip:published:target with nothing published = an ephemeral port per replica.
      expect(p, 'a fixed host port breaks --scale').toMatch(/^127\.0\.0\.1::9464(\/tcp)?$/);
    }
    expect(tm.container_name).toBeUndefined();
    const prom = readYaml('otel-config/prometheus/prometheus.yml');
    const job = prom.scrape_configs.find((j: any) => j.job_name === SCRAPE_JOB);
    expect(job.dns_sd_configs[0].names).toEqual(['tokenmeter']);
  });

  it('starts Prometheus and Grafana whatever the exporter\'s (or PostgreSQL\'s) health', () => {
    const s = c().services;
    expect(Object.keys(dependsOn(s.prometheus))).not.toContain('tokenmeter');
    expect(dependsOn(s.grafana)).toEqual({ prometheus: 'service_started' });
    // Nothing of the monitoring path waits for a healthy exporter.
    for (const name of ['prometheus', 'grafana', 'alertmanager', 'collector']) {
      expect(dependsOn(s[name]).tokenmeter ?? 'none', name).not.toBe('service_healthy');
    }
  });

  it('runs Grafana with the required admin password and without anonymous access or sign-up', () => {
    const env = c().services.grafana.environment;
    expect(env.GF_SECURITY_ADMIN_PASSWORD).toBe(DEV_SECRETS.GRAFANA_ADMIN_PASSWORD);
    expect(env.GF_AUTH_ANONYMOUS_ENABLED).toBe('false');
    expect(env.GF_USERS_ALLOW_SIGN_UP).toBe('false');
    expect(readRepoFile('docker-compose.yml')).not.toMatch(/GRAFANA_ADMIN_PASSWORD:-/);
  });

  it('protects OTLP and the usage API with tokens, and the collector sends the ingest token', () => {
    const s = c().services;
    expect(s.tokenmeter.environment.TOKENMETER_INGEST_TOKEN).toBe(DEV_SECRETS.TOKENMETER_INGEST_TOKEN);
    expect(s.tokenmeter.environment.TOKENMETER_API_TOKEN).toBe(DEV_SECRETS.TOKENMETER_API_TOKEN);
    expect(s.collector.environment.TOKENMETER_INGEST_TOKEN).toBe(DEV_SECRETS.TOKENMETER_INGEST_TOKEN);
    const exporter = readYaml('otel-config/collector.yaml').exporters['otlphttp/tokenmeter'];
    expect(exporter.headers.Authorization).toBe('Bearer ${env:TOKENMETER_INGEST_TOKEN}');
  });

  it('keeps more than a 31-day month in Prometheus and sets its external URL', () => {
    const prom = c().services.prometheus;
    expect(days(flag(prom, '--storage.tsdb.retention.time')!)).toBeGreaterThanOrEqual(35);
    expect(flag(prom, '--web.external-url')).toMatch(/^https?:\/\//);
  });

  it('publishes host ports on loopback only, and pins every image to an exact version', () => {
    for (const [name, s] of Object.entries<any>(c().services)) {
      for (const p of ports(s)) expect(p, name).toMatch(/^127\.0\.0\.1:/);
      // An exact release (PostgreSQL's are major.minor), never a moving major-only or latest tag.
      expect(s.image, name).toMatch(/:v?\d+\.\d+(\.\d+)?(-[a-z0-9]+)?$/);
    }
  });
});

describe.skipIf(!dockerCompose)('docs/production/docker-compose.yml', () => {
  const file = 'docs/production/docker-compose.yml';
  const c = () => compose(file, PROD_SECRETS).config;

  it('validates, and refuses to start without each secret', () => {
    expect(compose(file, PROD_SECRETS).status).toBe(0);
    for (const missing of Object.keys(PROD_SECRETS)) {
      const env: Record<string, string> = { ...PROD_SECRETS };
      delete env[missing];
      expect(compose(file, env).status, missing).not.toBe(0);
    }
    // One `docker-compose config` per missing secret, about 3 s each.
  }, 120_000);

  it('runs several exporter replicas on one PostgreSQL, each with a sidecar in its network namespace', () => {
    const s = c().services;
    const replicas = Object.keys(s).filter((n) => /^tokenmeter-\d+$/.test(n));
    expect(replicas.length).toBeGreaterThanOrEqual(3);
    for (const r of replicas) {
      expect(s[r].environment.TOKENMETER_STORAGE).toMatch(/^postgres:\/\/tokenmeter:.+@postgres:5432\/tokenmeter$/);
      expect(s[r].environment.TOKENMETER_INGEST_TOKEN).toBe(PROD_SECRETS.TOKENMETER_INGEST_TOKEN);
      expect(s[r].environment.TOKENMETER_API_TOKEN).toBe(PROD_SECRETS.TOKENMETER_API_TOKEN);
      // Not gated on PostgreSQL's health: a replica answers 503 until the ledger opens.
      expect(dependsOn(s[r]).postgres).toBe('service_started');
      const sidecar = s[`sidecar-${r.split('-')[1]}`];
      expect(sidecar.network_mode).toBe(`service:${r}`);
    }
    const sidecarCfg = readYaml('docs/production/collector-sidecar.yaml');
    expect(sidecarCfg.exporters['otlphttp/tokenmeter'].endpoint).toBe('http://127.0.0.1:4318');
    expect(sidecarCfg.exporters['otlphttp/tokenmeter'].headers.Authorization).toBe('Bearer ${env:TOKENMETER_INGEST_TOKEN}');
  });

  it('load-balances by trace id from authenticated gateways with a persistent queue on a volume', () => {
    const s = c().services;
    const gateways = Object.keys(s).filter((n) => /^collector-\d+$/.test(n));
    expect(gateways.length).toBeGreaterThanOrEqual(2);
    const cfg = readYaml('docs/production/collector-gateway.yaml');
    const lb = cfg.exporters['loadbalancing/tokenmeter'];
    expect(lb.routing_key).toBe('traceID');
    // The load balancer's own queue (top level), persistent; the per-replica exporters neither queue nor retry.
    expect(lb.sending_queue).toMatchObject({ enabled: true, storage: 'file_storage/queue' });
    expect(lb.retry_on_failure).toMatchObject({ enabled: true, max_elapsed_time: 0 });
    expect(lb.protocol.otlp.sending_queue.enabled).toBe(false);
    expect(lb.protocol.otlp.retry_on_failure.enabled).toBe(false);
    expect(s[gateways[0]].image).toMatch(/^otel\/opentelemetry-collector-contrib:0\.(11[4-9]|1[2-9]\d)\.\d+$/);
    expect(cfg.extensions['file_storage/queue'].directory).toBe('/var/lib/otelcol/queue');
    expect(cfg.service.extensions).toEqual(expect.arrayContaining(['file_storage/queue', 'bearertokenauth/apps']));
    for (const proto of ['grpc', 'http']) expect(cfg.receivers.otlp.protocols[proto].auth.authenticator).toBe('bearertokenauth/apps');
    // Every replica is a backend, and each gateway has its own queue volume.
    const replicas = Object.keys(s).filter((n) => /^tokenmeter-\d+$/.test(n));
    expect(lb.resolver.static.hostnames.sort()).toEqual(replicas.map((r) => `${r}:4317`).sort());
    const mount = (v: any) => (typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1] } : v);
    const queueVolumes = gateways.map((g) => s[g].volumes.map(mount).find((v: any) => v.target === '/var/lib/otelcol/queue')?.source);
    expect(new Set(queueVolumes).size).toBe(gateways.length);
    for (const v of queueVolumes) expect(Object.keys(c().volumes)).toContain(v);
  });

  it('runs an HA Prometheus pair with 40 days, external labels and remote_write, and an Alertmanager cluster', () => {
    const s = c().services;
    const proms = Object.keys(s).filter((n) => /^prometheus-\d+$/.test(n));
    expect(proms.length).toBe(2);
    for (const p of proms) {
      expect(days(flag(s[p], '--storage.tsdb.retention.time')!)).toBeGreaterThanOrEqual(35);
      expect(s[p].command).toContain('--enable-feature=expand-external-labels');
      expect(s[p].environment.PROMETHEUS_REPLICA).toBe(p);
    }
    const cfg = readYaml('docs/production/prometheus/prometheus.yml');
    expect(cfg.global.external_labels).toEqual({ cluster: 'tokenmeter-prod', __replica__: '${PROMETHEUS_REPLICA}' });
    expect(cfg.remote_write[0].url).toMatch(/^http:\/\/mimir:9009\/api\/v1\/push$/);
    const ams = Object.keys(s).filter((n) => /^alertmanager-\d+$/.test(n));
    expect(ams.length).toBe(2);
    expect(cfg.alerting.alertmanagers[0].static_configs[0].targets.sort()).toEqual(ams.map((a) => `${a}:9093`).sort());
    for (const a of ams) {
      const peers = s[a].command.filter((x: string) => x.startsWith('--cluster.peer='));
      expect(peers.length, a).toBeGreaterThan(0);
      for (const peer of peers) expect(ams).toContain(peer.split('=')[1].split(':')[0]);
    }
    expect(cfg.scrape_configs.find((j: any) => j.job_name === SCRAPE_JOB).static_configs[0].targets.sort()).toEqual(
      Object.keys(s).filter((n) => /^tokenmeter-\d+$/.test(n)).map((r) => `${r}:9464`).sort(),
    );
  });

  it('archives PostgreSQL\'s WAL and takes base backups (point-in-time recovery)', () => {
    const pg = c().services.postgres;
    const settings = pg.command.filter((_: string, i: number) => pg.command[i - 1] === '-c');
    expect(settings).toEqual(expect.arrayContaining(['wal_level=replica', 'archive_mode=on', 'archive_command=/opt/tokenmeter/archive-wal.sh %p %f']));
    expect(settings.some((x: string) => /^archive_timeout=\d+$/.test(x))).toBe(true);
    const backup = c().services['postgres-backup'];
    expect(backup.command.join(' ')).toContain('pg_basebackup');
    expect(readRepoFile('docs/production/postgres/pg_hba.conf')).toMatch(/^host\s+replication\s+all\s+all\s+scram-sha-256$/m);
    const sh = spawnSync('sh', ['-n', join(root, 'docs/production/postgres/archive-wal.sh')]);
    expect(sh.status).toBe(0);
  });

  it('points Grafana at Mimir under the dashboards\' datasource uid, with no anonymous access', () => {
    const ds = readYaml('docs/production/grafana/datasources.yaml').datasources[0];
    expect(ds.uid).toBe('tokenmeter-prometheus');
    expect(ds.url).toBe('http://mimir:9009/prometheus');
    const env = c().services.grafana.environment;
    expect(env.GF_AUTH_ANONYMOUS_ENABLED).toBe('false');
    expect(env.GF_SECURITY_ADMIN_PASSWORD).toBe(PROD_SECRETS.GRAFANA_ADMIN_PASSWORD);
  });
});

describe.skipIf(!promtool)('production Prometheus configuration (promtool)', () => {
  it('promtool check config accepts it with the generated rules where the compose file mounts them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-prod-prom-'));
    temps.push(dir);
    cpSync(join(root, 'docs/production/prometheus/prometheus.yml'), join(dir, 'prometheus.yml'));
    mkdirSync(join(dir, 'rules'));
    cpSync(join(root, 'otel-config/prometheus/rules'), join(dir, 'rules'), { recursive: true });
    const r = spawnSync(promtool!, ['check', 'config', 'prometheus.yml'], { cwd: dir, encoding: 'utf8' });
    const out = `${r.stdout}${r.stderr}`;
    expect(r.status, out).toBe(0);
    expect(out).toMatch(/SUCCESS: [1-9]\d* rule files found/);
  });

  it('promtool rejects a broken copy (so the check can fail)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-prod-prom-'));
    temps.push(dir);
    writeFileSync(join(dir, 'prometheus.yml'), readRepoFile('docs/production/prometheus/prometheus.yml').replace('remote_write:', 'remote_write: 3\nx:'));
    const r = spawnSync(promtool!, ['check', 'config', 'prometheus.yml'], { cwd: dir, encoding: 'utf8' });
    expect(r.status).not.toBe(0);
  });
});
