/**
 * The per-user limit alerts as the alert rules would fire them, evaluated on the usage API's ratios so the
 * demo can show them without running Prometheus.
 */
import type { UserUsage } from './usage-api.js';

export interface LimitAlertRule {
  /** Alert name, the same as the Prometheus / Grafana rule. */
  name: string;
  measure: 'tokens' | 'requests' | 'cost_usd';
  /** Fires when used / limit >= this ratio (and below the next rule's, for the "near" rules). */
  minRatio: number;
  maxRatio: number;
  severity: 'warning' | 'critical';
}

export const LIMIT_ALERT_RULES: LimitAlertRule[] = [
  { name: 'OverTokenLimit', measure: 'tokens', minRatio: 1, maxRatio: Infinity, severity: 'critical' },
  { name: 'NearTokenLimit', measure: 'tokens', minRatio: 0.8, maxRatio: 1, severity: 'warning' },
  { name: 'OverRequestLimit', measure: 'requests', minRatio: 1, maxRatio: Infinity, severity: 'critical' },
  { name: 'NearRequestLimit', measure: 'requests', minRatio: 0.8, maxRatio: 1, severity: 'warning' },
  { name: 'BudgetExceeded', measure: 'cost_usd', minRatio: 1, maxRatio: Infinity, severity: 'critical' },
  { name: 'NearBudget', measure: 'cost_usd', minRatio: 0.8, maxRatio: 1, severity: 'warning' },
];

export interface FiringAlert {
  name: string;
  severity: 'warning' | 'critical';
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
  // Critical first, then the most over.
  return out.sort((a, b) => (a.severity === b.severity ? b.ratio - a.ratio : a.severity === 'critical' ? -1 : 1));
}

export function alertKey(a: FiringAlert): string {
  return `${a.name}/${a.user}`;
}
