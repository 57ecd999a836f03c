import { describe, expect, it } from 'vitest';
import { LABEL } from '../../src/contract/names.js';
import {
  ALERTS,
  CONDITION_REF,
  CONTACT_POINT_NAME,
  CUSTOMER_CONTACT_POINT_NAME,
  DEFAULT_GRAFANA_URL,
  DEFAULT_RUNBOOK_BASE_URL,
  EXPRESSION_DATASOURCE_UID,
  PROMETHEUS_DATASOURCE_UID,
  QUERY_REF,
  RECORDING_RULES,
  WATCHDOG_ALERT,
  WATCHDOG_CONTACT_POINT_NAME,
  checkBaseUrl,
  dashboards,
  generatedFiles,
  metricNamesIn,
  runbookUrl,
  toGrafanaTemplate,
} from '../../src/dashboards/index.js';
import { grafanaAlertRuleFile, prometheusAlertRules, readRepoFile, readYaml } from './helpers.js';

const REQUIRED = [
  'TokenmeterUserNearTokenLimit',
  'TokenmeterUserOverTokenLimit',
  'TokenmeterUserNearRequestLimit',
  'TokenmeterUserOverRequestLimit',
  'TokenmeterUserNearBudget',
  'TokenmeterUserOverBudget',
  'TokenmeterRefusalSpike',
  'TokenmeterSpendSpike',
  'TokenmeterUnpricedModel',
  'TokenmeterEstimatedShareHigh',
  'TokenmeterIngestRejections',
  'TokenmeterCallsWithoutUsage',
  'TokenmeterIngestRequestsRefused',
  'TokenmeterInternalErrors',
  'TokenmeterIngestStalled',
  'TokenmeterExporterDown',
  'TokenmeterExporterReplicasDown',
  'TokenmeterLedgerUnavailable',
  'TokenmeterCollectorDroppingSpans',
  'TokenmeterCollectorQueueFilling',
  'TokenmeterCollectorDown',
  'TokenmeterWatchdog',
  'TokenmeterAlertmanagerNotificationsFailing',
];

const grafanaRules = (): any[] => grafanaAlertRuleFile().groups.flatMap((g: any) => g.rules.map((r: any) => ({ ...r, group: g })));

describe('alert definitions', () => {
  it('are exactly the required alerts, in both outputs', () => {
    expect(ALERTS.map((a) => a.name).sort()).toEqual([...REQUIRED].sort());
    expect(prometheusAlertRules().map((r) => r.alert).sort()).toEqual([...REQUIRED].sort());
    expect(grafanaRules().map((r) => r.title).sort()).toEqual([...REQUIRED].sort());
  });

  it('carry a severity, a category, a summary, and absolute runbook and dashboard links that exist', () => {
    const runbooks = readRepoFile('docs/runbooks.md');
    const anchors = new Set([...runbooks.matchAll(/^#{2,3} (.+)$/gm)].map((m) => m[1].trim().toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')));
    const dashboardUids = new Set(Object.values(dashboards()).map((d) => d.uid));
    for (const r of prometheusAlertRules()) {
      expect(['critical', 'warning', 'info', 'none']).toContain(r.labels.severity);
      expect(['customer', 'spend', 'pipeline', 'meta']).toContain(r.labels.category);
      expect(r.annotations.summary.trim(), r.alert).not.toBe('');
      // A notification groups the alerts of several instances: a summary naming one would make the common one empty.
      expect(r.annotations.summary, r.alert).not.toContain('$labels.instance');
      expect(r.annotations.runbook_url).toBe(runbookUrl(r.alert));
      expect(r.annotations.runbook_url).toBe(`${DEFAULT_RUNBOOK_BASE_URL}#${r.alert.toLowerCase()}`);
      expect(new URL(r.annotations.runbook_url).protocol).toMatch(/^https?:$/);
      expect(anchors, `docs/runbooks.md has no heading for ${r.alert}`).toContain(r.annotations.runbook_url.split('#')[1]);
      const dash = new URL(r.annotations.dashboard_url.replace(/\{\{[^}]*\}\}/g, 'x'));
      expect(`${dash.protocol}//${dash.host}`).toBe(DEFAULT_GRAFANA_URL);
      expect(dashboardUids, r.alert).toContain(dash.pathname.replace(/^\/d\//, ''));
      // Label values are URL-encoded into the link.
      for (const m of r.annotations.dashboard_url.matchAll(/\{\{([^}]*)\}\}/g)) expect(m[1]).toMatch(/^ \$labels\.\w+ \| urlquery $/);
    }
    for (const r of prometheusAlertRules().filter((x) => x.alert.startsWith('TokenmeterUser'))) {
      for (const text of [r.annotations.summary, r.annotations.description]) {
        expect(text).toContain(`{{ $labels.${LABEL.user} }}`);
        expect(text).toContain(`{{ $labels.${LABEL.plan} }}`);
        expect(text).toContain('{{ $value | humanizePercentage }}');
      }
      expect(r.expr).toMatch(/^max by \(user, plan\) \(tokenmeter_period_\w+\) \/ max by \(user, plan\) \(tokenmeter_limit_\w+\) >= /);
      // Customer usage is never a page.
      expect(r.labels.category).toBe('customer');
      expect(r.labels.severity).not.toBe('critical');
    }
  });

  it('read the recording rules for the heavy expressions: no subquery in any alert, and every recorded series is recorded', () => {
    const recorded = new Set(RECORDING_RULES.map((r) => r.record));
    for (const r of prometheusAlertRules()) {
      expect(r.expr, r.alert).not.toMatch(/\[\d+[smhdwy]:\d*[smhdwy]?\]/);
      for (const n of metricNamesIn(r.expr)) if (n.includes(':')) expect(recorded, r.alert).toContain(n);
    }
    const spike = prometheusAlertRules().find((r) => r.alert === 'TokenmeterSpendSpike');
    expect(spike.expr).toContain('tokenmeter:plan_cost_usd:increase1h offset 1w');
    const file = readYaml('otel-config/prometheus/recording/tokenmeter-recording.yml');
    expect(file.groups[0].rules.map((r: any) => r.record)).toEqual([...recorded]);
  });

  it('take absolute runbook and Grafana base URLs as options, and refuse relative, fragment or template-breaking ones', () => {
    const files = generatedFiles({ runbookBaseUrl: 'https://wiki.acme.test/ops/tokenmeter-runbooks.md', grafanaUrl: 'https://grafana.acme.test/' });
    const rules = files.get('otel-config/prometheus/rules/tokenmeter-alerts.yml')!;
    expect(rules).toContain('runbook_url: https://wiki.acme.test/ops/tokenmeter-runbooks.md#tokenmeterexporterdown');
    expect(rules).toContain('dashboard_url: https://grafana.acme.test/d/tokenmeter-exporter-health');
    expect(rules).not.toContain(DEFAULT_RUNBOOK_BASE_URL);
    expect(files.get('grafana/provisioning/alerting/tokenmeter-rules.yaml')).toContain('https://wiki.acme.test/ops/tokenmeter-runbooks.md#tokenmeterwatchdog');
    for (const bad of ['docs/runbooks.md', '/runbooks.md', 'ftp://x.test/r.md', 'https://x.test/r.md#top', 'javascript:alert(1)', 'https://x.test/{{ .Foo }}', 'https://x.test/a b', '']) {
      expect(() => checkBaseUrl('--runbook-base-url', bad), bad).toThrow(/--runbook-base-url/);
      expect(() => generatedFiles({ runbookBaseUrl: bad }), bad).toThrow(/runbook base URL/);
    }
    expect(checkBaseUrl('--grafana-url', 'http://grafana.local:3000/')).toBe('http://grafana.local:3000');
  });

  it('near-limit rules stop where over-limit rules start', () => {
    for (const r of prometheusAlertRules().filter((x) => /^TokenmeterUserNear/.test(x.alert))) {
      expect(r.expr).toMatch(/ >= 0\.8 < 1$/);
      const over = prometheusAlertRules().find((x) => x.alert === r.alert.replace('Near', 'Over'));
      expect(over.expr).toBe(r.expr.replace(/ >= 0\.8 < 1$/, ' >= 1'));
    }
  });
});

describe('Grafana-managed rules', () => {
  it('each has the same PromQL, for, labels and annotations as its Prometheus twin', () => {
    const prom = new Map(prometheusAlertRules().map((r) => [r.alert, r]));
    for (const g of grafanaRules()) {
      const twin = prom.get(g.title);
      const query = g.data.find((d: any) => d.refId === QUERY_REF);
      expect(query.model.expr, g.title).toBe(twin.expr);
      expect(query.model.instant).toBe(true);
      expect(g.for).toBe(twin.for);
      expect(g.labels).toEqual(twin.labels);
      expect(g.group.name).toBe(prometheusRuleGroupOf(twin.alert));
      expect(g.annotations).toEqual(Object.fromEntries(Object.entries(twin.annotations).map(([k, v]) => [k, toGrafanaTemplate(v as string)])));
      expect(JSON.stringify(g.annotations)).not.toMatch(/\$value\b(?!s)/);
    }
  });

  it('have a condition that names an existing refId and datasources that exist', () => {
    const provisioned = readYaml('grafana/provisioning/datasources/tokenmeter-prometheus.yaml').datasources;
    expect(provisioned.map((d: any) => d.uid)).toContain(PROMETHEUS_DATASOURCE_UID);
    const uids = new Set<string>();
    for (const g of grafanaRules()) {
      expect(g.uid.length).toBeLessThanOrEqual(40);
      expect(uids.has(g.uid), g.uid).toBe(false);
      uids.add(g.uid);
      const refIds = g.data.map((d: any) => d.refId);
      expect(refIds).toContain(g.condition);
      expect(g.condition).toBe(CONDITION_REF);
      for (const d of g.data) {
        if (d.refId === QUERY_REF) {
          expect(d.datasourceUid).toBe(PROMETHEUS_DATASOURCE_UID);
          expect(d.model.datasource.uid).toBe(PROMETHEUS_DATASOURCE_UID);
        } else {
          expect(d.datasourceUid).toBe(EXPRESSION_DATASOURCE_UID);
          // Expressions may only reference refIds of this rule.
          for (const ref of String(d.model.expression).matchAll(/\$(\w+)/g)) expect(refIds).toContain(ref[1]);
        }
      }
      expect(g.noDataState).toBe('OK');
      expect(g.execErrState).toBe('Error');
    }
  });

  it('notify through example contact points: the Watchdog and customer usage apart, the rest by severity', () => {
    const n = readYaml('grafana/provisioning/alerting/tokenmeter-notifications.yaml');
    const names = n.contactPoints.map((c: any) => c.name);
    expect(names).toEqual([CONTACT_POINT_NAME, CUSTOMER_CONTACT_POINT_NAME, WATCHDOG_CONTACT_POINT_NAME]);
    const policy = n.policies[0];
    expect(names).toContain(policy.receiver);
    expect(policy.routes.map((r: any) => r.object_matchers[0])).toEqual([
      ['alertname', '=', WATCHDOG_ALERT],
      ['category', '=', 'customer'],
      ['severity', '=', 'critical'],
      ['severity', '=', 'warning'],
      ['severity', '=', 'info'],
    ]);
    expect(policy.routes[0].receiver).toBe(WATCHDOG_CONTACT_POINT_NAME);
    expect(policy.routes[1]).toMatchObject({ receiver: CUSTOMER_CONTACT_POINT_NAME, group_by: ['alertname', 'plan'], repeat_interval: '24h' });
    for (const r of policy.routes) expect(names).toContain(r.receiver);
  });
});

function prometheusRuleGroupOf(alert: string): string {
  const file = readYaml('otel-config/prometheus/rules/tokenmeter-alerts.yml');
  return file.groups.find((g: any) => g.rules.some((r: any) => r.alert === alert)).name;
}
