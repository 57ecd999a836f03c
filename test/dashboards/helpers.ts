/** Reads the generated stack files and pulls every PromQL expression out of them. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

export const root = join(import.meta.dirname, '..', '..');

export function readRepoFile(path: string): string {
  return readFileSync(join(root, path), 'utf8');
}

export function readYaml<T = any>(path: string): T {
  return parse(readRepoFile(path)) as T;
}

export const DASHBOARD_FILES = [
  'grafana/dashboards/tokenmeter-overview.json',
  'grafana/dashboards/tokenmeter-usage-limits.json',
  'grafana/dashboards/tokenmeter-user.json',
  'grafana/dashboards/tokenmeter-exporter-health.json',
] as const;

export interface PanelQuery {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
  instant: boolean;
}

export function readDashboard(path: string): any {
  return JSON.parse(readRepoFile(path));
}

/** Every (non-row) panel of a dashboard, including panels nested in collapsed rows. */
export function panelsOf(d: any): any[] {
  const out: any[] = [];
  for (const p of d.panels ?? []) {
    if (p.type === 'row') out.push(...(p.panels ?? []));
    else out.push(p);
  }
  return out;
}

export function panelQueries(path: string): PanelQuery[] {
  const d = readDashboard(path);
  return panelsOf(d).flatMap((p) =>
    (p.targets ?? []).map((t: any) => ({ dashboard: d.uid, panel: p.title, refId: t.refId, expr: t.expr, instant: t.instant === true })),
  );
}

export function allPanelQueries(): PanelQuery[] {
  return DASHBOARD_FILES.flatMap((f) => panelQueries(f));
}

/** The template-variable queries (`label_values(...)`) of every dashboard. */
export function variableQueries(): { dashboard: string; name: string; query: string }[] {
  return DASHBOARD_FILES.flatMap((f) => {
    const d = readDashboard(f);
    return (d.templating?.list ?? [])
      .filter((v: any) => v.type === 'query')
      .map((v: any) => ({ dashboard: d.uid, name: v.name, query: typeof v.query === 'string' ? v.query : v.query.query }));
  });
}

/** Prometheus alert rules from the generated rule file. */
export function prometheusAlertRules(): any[] {
  return readYaml('otel-config/prometheus/rules/tokenmeter-alerts.yml').groups.flatMap((g: any) => g.rules);
}

export function grafanaAlertRuleFile(): any {
  return readYaml('grafana/provisioning/alerting/tokenmeter-rules.yaml');
}
