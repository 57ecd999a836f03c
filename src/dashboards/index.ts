export {
  ALERTS,
  CATEGORY_LABEL,
  DEFAULT_GRAFANA_URL,
  DEFAULT_RUNBOOK_BASE_URL,
  NEAR_LIMIT_RATIO,
  OVER_LIMIT_RATIO,
  RECORDING_RULES,
  SEVERITIES,
  checkBaseUrl,
  dashboardUrl,
  prometheusRecordingRules,
  prometheusRules,
  runbookUrl,
} from './alerts.js';
export type {
  AlertDefinition,
  AlertRenderOptions,
  Category,
  PrometheusRecordingRuleFile,
  PrometheusRule,
  PrometheusRuleFile,
  RecordingRule,
  Severity,
} from './alerts.js';
export {
  CONDITION_EXPRESSION,
  CONDITION_REF,
  CONTACT_POINT_NAME,
  CUSTOMER_CONTACT_POINT_NAME,
  EXPRESSION_DATASOURCE_UID,
  GRAFANA_ALERT_FOLDER,
  QUERY_REF,
  WATCHDOG_ALERT,
  WATCHDOG_CONTACT_POINT_NAME,
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
export {
  ALERTMANAGER_SCRAPE_JOB,
  COLLECTOR_SCRAPE_JOB,
  FOREIGN_METRICS,
  PROMETHEUS_BUILTIN_METRICS,
  PROMETHEUS_DATASOURCE_UID,
  RECORDED,
  SCRAPE_JOB,
  baseMetricName,
  metricNamesIn,
} from './promql.js';
