import { describe, expect, it } from 'vitest';
import { LABEL } from '../../src/contract/names.js';
import {
  ALERTS,
  CONDITION_REF,
  CONTACT_POINT_NAME,
  EXPRESSION_DATASOURCE_UID,
  PROMETHEUS_DATASOURCE_UID,
  QUERY_REF,
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
  'TokenmeterSpendSpike',
  'TokenmeterUnpricedModel',
  'TokenmeterEstimatedShareHigh',
  'TokenmeterIngestRejections',
  'TokenmeterExporterDown',
  'TokenmeterLedgerUnavailable',
];

const grafanaRules = (): any[] => grafanaAlertRuleFile().groups.flatMap((g: any) => g.rules.map((r: any) => ({ ...r, group: g })));

describe('alert definitions', () => {
  it('are exactly the required alerts, in both outputs', () => {
    expect(ALERTS.map((a) => a.name).sort()).toEqual([...REQUIRED].sort());
    expect(prometheusAlertRules().map((r) => r.alert).sort()).toEqual([...REQUIRED].sort());
    expect(grafanaRules().map((r) => r.title).sort()).toEqual([...REQUIRED].sort());
  });

  it('carry a severity, a summary and description naming the figure, and a runbook anchor that exists', () => {
    const runbooks = readRepoFile('docs/runbooks.md');
    const anchors = new Set([...runbooks.matchAll(/^#{2,3} (.+)$/gm)].map((m) => m[1].trim().toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')));
    for (const r of prometheusAlertRules()) {
      expect(['critical', 'warning', 'info']).toContain(r.labels.severity);
      // The figure: the value, or for the per-replica exporter alerts, which replica.
      for (const text of [r.annotations.summary, r.annotations.description]) expect(text, r.alert).toMatch(/\{\{ \$value|\$labels\.instance/);
      expect(r.annotations.runbook_url).toBe(runbookUrl(r.alert));
      expect(anchors, `docs/runbooks.md has no heading for ${r.alert}`).toContain(r.annotations.runbook_url.split('#')[1]);
    }
    for (const r of prometheusAlertRules().filter((x) => x.alert.startsWith('TokenmeterUser'))) {
      for (const text of [r.annotations.summary, r.annotations.description]) {
        expect(text).toContain(`{{ $labels.${LABEL.user} }}`);
        expect(text).toContain(`{{ $labels.${LABEL.plan} }}`);
        expect(text).toContain('{{ $value | humanizePercentage }}');
      }
      expect(r.expr).toMatch(/^max by \(user, plan\) \(tokenmeter_period_\w+\) \/ max by \(user, plan\) \(tokenmeter_limit_\w+\) >= /);
    }
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

  it('notify through an example contact point and a severity policy tree', () => {
    const n = readYaml('grafana/provisioning/alerting/tokenmeter-notifications.yaml');
    const names = n.contactPoints.map((c: any) => c.name);
    expect(names).toContain(CONTACT_POINT_NAME);
    const policy = n.policies[0];
    expect(names).toContain(policy.receiver);
    expect(policy.routes.map((r: any) => r.object_matchers[0])).toEqual([
      ['severity', '=', 'critical'],
      ['severity', '=', 'warning'],
      ['severity', '=', 'info'],
    ]);
    for (const r of policy.routes) expect(names).toContain(r.receiver);
  });
});

function prometheusRuleGroupOf(alert: string): string {
  const file = readYaml('otel-config/prometheus/rules/tokenmeter-alerts.yml');
  return file.groups.find((g: any) => g.rules.some((r: any) => r.alert === alert)).name;
}
