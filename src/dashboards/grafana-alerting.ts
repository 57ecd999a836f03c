/**
 * The Grafana-managed twins of the Prometheus alert rules (file provisioning format, `apiVersion: 1`), plus an
 * example contact point and notification policy. Built with the Grafana foundation SDK's alerting builders, then
 * laid out the way Grafana's file provisioning expects (`orgId`, `folder`, group `name`).
 */
import * as alerting from '@grafana/grafana-foundation-sdk/alerting';
import { TypeMathBuilder } from '@grafana/grafana-foundation-sdk/expr';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { parseDurationMillis } from '../config/units.js';
import { LABEL } from '../contract/names.js';
import {
  ALERTS,
  ALERT_GROUPS,
  CATEGORY_LABEL,
  SEVERITIES,
  alertAnnotations,
  alertLabels,
  type AlertDefinition,
  type AlertRenderOptions,
  type Severity,
} from './alerts.js';
import { PROMETHEUS_DATASOURCE_UID } from './promql.js';

export const GRAFANA_ALERT_FOLDER = 'Tokenmeter';
export const EXPRESSION_DATASOURCE_UID = '__expr__';
/** refIds of a Grafana rule's query (the PromQL) and its condition. */
export const QUERY_REF = 'A';
export const CONDITION_REF = 'C';
/**
 * The PromQL already applies the thresholds, exactly as Prometheus does; every series it returns is an alert
 * instance. The condition only turns "a numeric value is present" into firing (0 is a value: `up == 0`).
 */
export const CONDITION_EXPRESSION = `is_number($${QUERY_REF}) || is_inf($${QUERY_REF})`;
export const CONTACT_POINT_NAME = 'tokenmeter-webhook';
/** Customer usage alerts (category=customer): billing / customer operations, not on-call. */
export const CUSTOMER_CONTACT_POINT_NAME = 'tokenmeter-customer-ops';
/** The always-firing TokenmeterWatchdog: a dead man's switch service that pages when the heartbeats stop. */
export const WATCHDOG_CONTACT_POINT_NAME = 'tokenmeter-watchdog';
export const WATCHDOG_ALERT = 'TokenmeterWatchdog';
/** The example contact points post to docker-compose.yml's alert-log service; point them at your own receivers. */
export const GRAFANA_WEBHOOK_URL = 'http://alert-log:8080/grafana';

/** The Grafana-managed rule uid of an alert: stable, at most 40 characters, [a-z0-9-]. */
export function grafanaRuleUid(alertName: string): string {
  const kebab = alertName
    .replace(/^Tokenmeter/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .toLowerCase();
  return `tokenmeter-${kebab}`.slice(0, 40);
}

/**
 * Prometheus templates use `$value`; Grafana's equivalent for one query is `$values.<refId>.Value` (its `$value` is
 * a string describing every query). Everything else (`$labels.x`, humanize*) is the same in both.
 */
export function toGrafanaTemplate(template: string): string {
  return template.replace(/\$value\b/g, `$values.${QUERY_REF}.Value`);
}

function durationSeconds(d: string): number {
  const millis = parseDurationMillis(d);
  if (millis === undefined) throw new Error(`unsupported duration ${d}`);
  return millis / 1000;
}

function ruleBuilder(a: AlertDefinition, groupInterval: string, options: AlertRenderOptions): alerting.RuleBuilder {
  const promQuery = new DataqueryBuilder()
    .expr(a.expr)
    .instant()
    .refId(QUERY_REF)
    .datasource({ type: 'prometheus', uid: PROMETHEUS_DATASOURCE_UID });
  const condition = new TypeMathBuilder()
    .expression(CONDITION_EXPRESSION)
    .refId(CONDITION_REF)
    .datasource({ type: '__expr__', uid: EXPRESSION_DATASOURCE_UID });
  const window = Math.max(600, durationSeconds(groupInterval));
  const annotations = Object.fromEntries(Object.entries(alertAnnotations(a, options)).map(([k, v]) => [k, toGrafanaTemplate(v)]));
  return new alerting.RuleBuilder(a.name)
    .uid(grafanaRuleUid(a.name))
    .condition(CONDITION_REF)
    .queries([
      new alerting.QueryBuilder(QUERY_REF)
        .datasourceUid(PROMETHEUS_DATASOURCE_UID)
        .relativeTimeRange({ from: window, to: 0 })
        .model(promQuery),
      new alerting.QueryBuilder(CONDITION_REF)
        .datasourceUid(EXPRESSION_DATASOURCE_UID)
        .relativeTimeRange({ from: 0, to: 0 })
        .model(condition),
    ])
    .forDuration(a.for)
    .labels(alertLabels(a))
    .annotations(annotations)
    // No series means no alert (the PromQL filtered them all out); a failing query is an error, not "all clear".
    .noDataState('OK')
    .execErrState('Error')
    .isPaused(false);
}

/** `grafana/provisioning/alerting/tokenmeter-rules.yaml`. */
export function grafanaAlertRules(alerts: readonly AlertDefinition[] = ALERTS, options: AlertRenderOptions = {}): Record<string, unknown> {
  return {
    apiVersion: 1,
    groups: ALERT_GROUPS.map((g) => ({
      orgId: 1,
      name: g.name,
      folder: GRAFANA_ALERT_FOLDER,
      interval: g.interval,
      rules: alerts
        .filter((a) => a.group === g.name)
        .map((a) => {
          const r = ruleBuilder(a, g.interval, options).build();
          return {
            uid: r.uid,
            title: r.title,
            condition: r.condition,
            data: r.data,
            noDataState: r.noDataState,
            execErrState: r.execErrState,
            for: r.for,
            labels: r.labels,
            annotations: r.annotations,
            isPaused: r.isPaused,
          };
        }),
    })),
  };
}

const REPEAT_BY_SEVERITY: Record<Severity, string> = { critical: '1h', warning: '4h', info: '12h', none: '12h' };

function webhookContactPoint(name: string, path: string): Record<string, unknown> {
  const c = new alerting.ContactPointBuilder()
    .name(name)
    .uid(name)
    .type('webhook')
    .settings({ url: `${GRAFANA_WEBHOOK_URL}${path}`, httpMethod: 'POST' })
    .disableResolveMessage(false)
    .build();
  return {
    orgId: 1,
    name: c.name,
    receivers: [{ uid: c.uid, type: c.type, settings: c.settings, disableResolveMessage: c.disableResolveMessage }],
  };
}

/**
 * `grafana/provisioning/alerting/tokenmeter-notifications.yaml`: example webhook contact points (posting to
 * GRAFANA_WEBHOOK_URL) and the same policy tree as otel-config/alertmanager/alertmanager.yml: the Watchdog to its
 * own contact point, customer usage to customer ops (grouped by alert and plan, repeated daily), the rest by
 * severity.
 */
export function grafanaNotifications(): Record<string, unknown> {
  const policy = new alerting.NotificationPolicyBuilder()
    .receiver(CONTACT_POINT_NAME)
    .groupBy(['alertname', LABEL.plan])
    .groupWait('30s')
    .groupInterval('5m')
    .repeatInterval('4h')
    .routes([
      new alerting.NotificationPolicyBuilder()
        .receiver(WATCHDOG_CONTACT_POINT_NAME)
        .objectMatchers([['alertname', '=', WATCHDOG_ALERT]])
        .groupWait('0s')
        .groupInterval('1m')
        .repeatInterval('5m'),
      new alerting.NotificationPolicyBuilder()
        .receiver(CUSTOMER_CONTACT_POINT_NAME)
        .objectMatchers([[CATEGORY_LABEL, '=', 'customer']])
        .groupBy(['alertname', LABEL.plan])
        .groupWait('1m')
        .groupInterval('1h')
        .repeatInterval('24h'),
      ...SEVERITIES.filter((s) => s !== 'none').map((s) =>
        new alerting.NotificationPolicyBuilder()
          .receiver(CONTACT_POINT_NAME)
          .objectMatchers([['severity', '=', s]])
          .repeatInterval(REPEAT_BY_SEVERITY[s]),
      ),
    ])
    .build();
  return {
    apiVersion: 1,
    contactPoints: [
      webhookContactPoint(CONTACT_POINT_NAME, ''),
      webhookContactPoint(CUSTOMER_CONTACT_POINT_NAME, '/customer-ops'),
      webhookContactPoint(WATCHDOG_CONTACT_POINT_NAME, '/watchdog'),
    ],
    policies: [{ orgId: 1, ...policy }],
  };
}
