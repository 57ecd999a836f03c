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
import { ALERTS, ALERT_GROUPS, SEVERITIES, alertAnnotations, alertLabels, type AlertDefinition, type Severity } from './alerts.js';
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
/** The example contact point posts to docker-compose.yml's alert-log service; point it at your own receiver. */
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

function ruleBuilder(a: AlertDefinition, groupInterval: string): alerting.RuleBuilder {
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
  const annotations = Object.fromEntries(Object.entries(alertAnnotations(a)).map(([k, v]) => [k, toGrafanaTemplate(v)]));
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
export function grafanaAlertRules(alerts: readonly AlertDefinition[] = ALERTS): Record<string, unknown> {
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
          const r = ruleBuilder(a, g.interval).build();
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

const REPEAT_BY_SEVERITY: Record<Severity, string> = { critical: '1h', warning: '4h', info: '12h' };

/**
 * `grafana/provisioning/alerting/tokenmeter-notifications.yaml`: an example webhook contact point (posting to
 * GRAFANA_WEBHOOK_URL) and a policy tree routing by severity.
 */
export function grafanaNotifications(): Record<string, unknown> {
  const contact = new alerting.ContactPointBuilder()
    .name(CONTACT_POINT_NAME)
    .uid('tokenmeter-webhook')
    .type('webhook')
    .settings({ url: GRAFANA_WEBHOOK_URL, httpMethod: 'POST' })
    .disableResolveMessage(false)
    .build();
  const policy = new alerting.NotificationPolicyBuilder()
    .receiver(CONTACT_POINT_NAME)
    .groupBy(['alertname', LABEL.user, LABEL.plan])
    .groupWait('30s')
    .groupInterval('5m')
    .repeatInterval('4h')
    .routes(
      SEVERITIES.map((s) =>
        new alerting.NotificationPolicyBuilder()
          .receiver(CONTACT_POINT_NAME)
          .objectMatchers([['severity', '=', s]])
          .repeatInterval(REPEAT_BY_SEVERITY[s]),
      ),
    )
    .build();
  return {
    apiVersion: 1,
    contactPoints: [
      {
        orgId: 1,
        name: contact.name,
        receivers: [
          { uid: contact.uid, type: contact.type, settings: contact.settings, disableResolveMessage: contact.disableResolveMessage },
        ],
      },
    ],
    policies: [{ orgId: 1, ...policy }],
  };
}
