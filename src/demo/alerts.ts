/**
 * The per-user limit alerts as the alert rules would fire them (ignoring their `for` delay), evaluated on the
 * usage API's ratios so the demo can show them without running Prometheus.
 */
import { ALERTS, NEAR_LIMIT_RATIO, OVER_LIMIT_RATIO, type AlertDefinition, type Severity } from '../dashboards/alerts.js';
import type { UserUsage } from './usage-api.js';

export interface LimitAlertRule {
  /** Alert name, the same as the Prometheus / Grafana rule. */
  name: string;
  measure: 'tokens' | 'requests' | 'cost_usd';
  /** Fires when minRatio <= used / limit < maxRatio (near rules stop where over rules start). */
  minRatio: number;
  maxRatio: number;
  severity: Severity;
}

/** Which usage-API ratio a limit alert watches, from its name (TokenmeterUserNearTokenLimit, ...). */
function measureOf(name: string): LimitAlertRule['measure'] | undefined {
  if (/TokenLimit$/.test(name)) return 'tokens';
  if (/RequestLimit$/.test(name)) return 'requests';
  if (/Budget$/.test(name)) return 'cost_usd';
  return undefined;
}

/** The per-user limit rules of src/dashboards' alert definitions, with their own names, thresholds and severities. */
export function limitAlertRules(alerts: readonly AlertDefinition[] = ALERTS): LimitAlertRule[] {
  const rules: LimitAlertRule[] = [];
  for (const a of alerts) {
    const measure = measureOf(a.name);
    if (a.group !== 'tokenmeter-limits' || !measure) continue;
    const near = /Near/.test(a.name);
    rules.push({
      name: a.name,
      measure,
      minRatio: near ? NEAR_LIMIT_RATIO : OVER_LIMIT_RATIO,
      maxRatio: near ? OVER_LIMIT_RATIO : Infinity,
      severity: a.severity,
    });
  }
  return rules;
}

export const LIMIT_ALERT_RULES: LimitAlertRule[] = limitAlertRules();

export interface FiringAlert {
  name: string;
  severity: Severity;
  user: string;
  plan: string;
  measure: LimitAlertRule['measure'];
  ratio: number;
}

export function firingAlerts(users: UserUsage[], rules: LimitAlertRule[] = LIMIT_ALERT_RULES): FiringAlert[] {
  const out: FiringAlert[] = [];
  for (const u of users) {
    for (const r of rules) {
      const ratio = u.ratios[r.measure];
      if (ratio === null || ratio === undefined) continue;
      if (ratio >= r.minRatio && ratio < r.maxRatio) {
        out.push({ name: r.name, severity: r.severity, user: u.user, plan: u.plan, measure: r.measure, ratio });
      }
    }
  }
  // Most severe first, then the most over.
  const rank: Record<Severity, number> = { critical: 0, warning: 1, info: 2, none: 3 };
  return out.sort((a, b) => rank[a.severity] - rank[b.severity] || b.ratio - a.ratio);
}
