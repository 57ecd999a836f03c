export {
  ALERTS,
  NEAR_LIMIT_RATIO,
  OVER_LIMIT_RATIO,
  SEVERITIES,
  prometheusRules,
  runbookUrl,
} from './alerts.js';
export type { AlertDefinition, PrometheusRule, PrometheusRuleFile, Severity } from './alerts.js';
export {
  CONDITION_EXPRESSION,
  CONDITION_REF,
  CONTACT_POINT_NAME,
  EXPRESSION_DATASOURCE_UID,
  GRAFANA_ALERT_FOLDER,
  QUERY_REF,
  grafanaAlertRules,
  grafanaNotifications,
  grafanaRuleUid,
  toGrafanaTemplate,
} from './grafana-alerting.js';
export { GRAFANA_DASHBOARDS_PATH, dashboards, generatedFiles, grafanaDashboardProvider, grafanaDatasources } from './generate.js';
export { OVERVIEW_UID } from './overview.js';
export { USAGE_LIMITS_UID } from './usage-limits.js';
export { USER_DRILLDOWN_UID } from './user-drilldown.js';
export { EXPORTER_HEALTH_UID } from './exporter-health.js';
export { PROMETHEUS_BUILTIN_METRICS, PROMETHEUS_DATASOURCE_UID, SCRAPE_JOB, baseMetricName, metricNamesIn } from './promql.js';
