/**
 * Alert rules as code: ONE list of definitions renders both the Prometheus rule file and the Grafana-managed
 * alert rules, with the same PromQL, thresholds, `for` durations, labels and annotations. The recording rules the
 * alerts read are rendered from here too (RECORDING_RULES).
 */
import { LABEL, METRIC } from '../contract/names.js';
import {
  ALERTMANAGER_SCRAPE_JOB,
  COLLECTOR_SCRAPE_JOB,
  LIMIT_KINDS,
  RECORDED,
  SCRAPE_JOB,
  limitRatio,
  sel,
  sumGrowth,
  type LimitKind,
} from './promql.js';

/** `none` is only for the Watchdog, which is routed by its name, never by severity. */
export type Severity = 'critical' | 'warning' | 'info' | 'none';
/** The severities Alertmanager routes on: critical pages, warning posts to chat, info goes to the webhook. */
export const SEVERITIES: readonly Severity[] = ['critical', 'warning', 'info', 'none'];

/**
 * Who acts on an alert (the `category` label, which Alertmanager routes on before severity):
 * - `customer`: a customer's usage against their plan (near / over a limit or budget). Not a fault: billing or
 *   customer operations act on it, in business hours. Routed to its own receiver, grouped by alert and plan.
 * - `spend`: the money and data-quality view (spend spikes, unpriced models, estimated tokens).
 * - `pipeline`: the metering pipeline itself (exporter, ledger, collector, ingest). Only these page.
 * - `meta`: the alerting path itself (Watchdog, Alertmanager failing to notify).
 */
export type Category = 'customer' | 'spend' | 'pipeline' | 'meta';
export const CATEGORY_LABEL = 'category';

export type AlertGroupName =
  | 'tokenmeter-limits'
  | 'tokenmeter-spend'
  | 'tokenmeter-exporter'
  | 'tokenmeter-collector'
  | 'tokenmeter-meta';

/** Which Grafana dashboard an alert links to (`dashboard_url`), and with which variables from its labels. */
export interface DashboardLink {
  uid: string;
  /** Grafana variable name → alert label whose value fills it. */
  vars?: Record<string, string>;
}

export interface AlertDefinition {
  /** The alert name (`alertname` label), also the runbook anchor. */
  name: string;
  /** Rule group (one per concern, evaluated together). */
  group: AlertGroupName;
  /** PromQL; every series it returns is a firing (or pending) alert, with the series' value as `$value`. */
  expr: string;
  /** How long the condition must hold before the alert fires. */
  for: string;
  severity: Severity;
  category: Category;
  /**
   * Go templates: `{{ $labels.x }}`, `{{ $value | humanizePercentage }}` (Prometheus and Grafana both render them).
   * Alerts that can fire for several instances at once keep the instance out of the summary, so that a notification
   * grouping them still has a common summary (PagerDuty refuses an empty one).
   */
  summary: string;
  description: string;
  dashboard: DashboardLink;
}

/** Usage at or above this fraction of a limit is "near"; at or above OVER_LIMIT_RATIO it is "over". */
export const NEAR_LIMIT_RATIO = 0.8;
export const OVER_LIMIT_RATIO = 1;
/** Spend in the last hour above this multiple of the same hour one week earlier... */
export const SPEND_SPIKE_FACTOR = 3;
/** ...and above this many USD (so that a quiet plan's first calls of the day do not page anyone). */
export const SPEND_SPIKE_MIN_USD = 1;
/** Share of a plan's tokens that were estimated (not reported by the provider) above which the numbers are doubtful. */
export const ESTIMATED_SHARE_MAX = 0.1;
/** Spans per 15 minutes that the same time one week earlier must have had for 15 silent minutes to be a stall. */
export const INGEST_STALL_MIN_SPANS = 10;
/** LLM calls refused by admission control (issue 16) per plan in 15 minutes above which refusals are a spike. */
export const REFUSAL_SPIKE_MIN_CALLS = 50;
/** Fraction of a collector's sending queue to tokenmeter above which data loss is near. */
export const COLLECTOR_QUEUE_MAX_RATIO = 0.5;

/**
 * Where the runbooks are published: each alert's `runbook_url` is this plus `#<alertname in lower case>` (the
 * Markdown heading anchor of docs/runbooks.md). Absolute, because the link arrives in Slack and PagerDuty. This
 * default is a placeholder to replace: `npm run generate -- --runbook-base-url=<where your team publishes
 * docs/runbooks.md>` (or TOKENMETER_RUNBOOK_BASE_URL) regenerates the rule files with yours.
 */
export const DEFAULT_RUNBOOK_BASE_URL = 'https://tokenmeter.example.com/docs/runbooks.md';
/**
 * Grafana's external URL, for each alert's `dashboard_url`. The default is the compose stack's Grafana
 * (docker-compose.yml publishes it on port 3000): `--grafana-url` / TOKENMETER_GRAFANA_URL for yours.
 */
export const DEFAULT_GRAFANA_URL = 'http://localhost:3000';

/** Options of the generated alerting files (rules, notification policies). */
export interface AlertRenderOptions {
  runbookBaseUrl?: string;
  grafanaUrl?: string;
}

/** An absolute http(s) URL, without a fragment (the runbook anchor is appended) or a trailing slash. */
export function checkBaseUrl(option: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${option}: "${value}" is not an absolute URL (e.g. https://wiki.example.com/tokenmeter/runbooks.md)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`${option}: "${value}" must be an http or https URL`);
  if (url.hash !== '' || value.includes('#')) throw new Error(`${option}: "${value}" must not contain "#": the alert's anchor is appended`);
  if (/[\s{}"'<>]/.test(value)) throw new Error(`${option}: "${value}" contains a character not allowed in a URL template`);
  return value.replace(/\/+$/, '');
}

export function runbookUrl(alertName: string, options: AlertRenderOptions = {}): string {
  const base = checkBaseUrl('runbook base URL', options.runbookBaseUrl ?? DEFAULT_RUNBOOK_BASE_URL);
  return `${base}#${alertName.toLowerCase()}`;
}

/** Dashboard uids (src/dashboards/*.ts export the same; not imported, because those modules import this one). */
const DASHBOARD = {
  overview: 'tokenmeter-overview',
  usageLimits: 'tokenmeter-usage-limits',
  user: 'tokenmeter-user',
  exporterHealth: 'tokenmeter-exporter-health',
} as const;

/** `<grafana>/d/<uid>?var-x={{ $labels.y | urlquery }}`: a Go template rendered with the alert's labels. */
export function dashboardUrl(link: DashboardLink, options: AlertRenderOptions = {}): string {
  const base = checkBaseUrl('Grafana URL', options.grafanaUrl ?? DEFAULT_GRAFANA_URL);
  const vars = Object.entries(link.vars ?? {}).map(([v, label]) => `var-${v}={{ $labels.${label} | urlquery }}`);
  return `${base}/d/${link.uid}${vars.length > 0 ? `?${vars.join('&')}` : ''}`;
}

const LIMIT_NAMES: Record<LimitKind, { near: string; over: string; what: string }> = {
  tokens: { near: 'TokenmeterUserNearTokenLimit', over: 'TokenmeterUserOverTokenLimit', what: 'token limit' },
  requests: { near: 'TokenmeterUserNearRequestLimit', over: 'TokenmeterUserOverRequestLimit', what: 'request limit' },
  cost: { near: 'TokenmeterUserNearBudget', over: 'TokenmeterUserOverBudget', what: 'cost budget' },
};

function pct(ratio: number): string {
  return `${Math.round(ratio * 100)}%`;
}

const USER_DASHBOARD: DashboardLink = { uid: DASHBOARD.user, vars: { user: LABEL.user, plan: LABEL.plan } };
const EXPORTER_DASHBOARD: DashboardLink = { uid: DASHBOARD.exporterHealth };

/**
 * Customer usage: not a fault, so never a page. Every limit alert has category `customer`; Alertmanager sends them
 * to the customer-ops receiver, one notification per (alert, plan) listing the users, repeated daily.
 */
function limitAlerts(kind: LimitKind): AlertDefinition[] {
  const names = LIMIT_NAMES[kind];
  const ratio = limitRatio(kind);
  const unit = LIMIT_KINDS[kind].unit;
  const who = `User {{ $labels.${LABEL.user} }} on plan {{ $labels.${LABEL.plan} }}`;
  return [
    {
      name: names.near,
      group: 'tokenmeter-limits',
      // Near fires only below the over-limit threshold, so a user over the limit gets one alert, not two.
      expr: `${ratio} >= ${NEAR_LIMIT_RATIO} < ${OVER_LIMIT_RATIO}`,
      for: '5m',
      severity: 'info',
      category: 'customer',
      summary: `{{ $labels.${LABEL.user} }} ({{ $labels.${LABEL.plan} }}) has used {{ $value | humanizePercentage }} of their ${names.what}`,
      description:
        `${who} has used {{ $value | humanizePercentage }} of their ${names.what} (${unit}) this billing period ` +
        `(near from ${pct(NEAR_LIMIT_RATIO)}, over at ${pct(OVER_LIMIT_RATIO)}). Exact figures from the tokenmeter ledger.`,
      dashboard: USER_DASHBOARD,
    },
    {
      name: names.over,
      group: 'tokenmeter-limits',
      expr: `${ratio} >= ${OVER_LIMIT_RATIO}`,
      for: '1m',
      severity: 'warning',
      category: 'customer',
      summary: `{{ $labels.${LABEL.user} }} ({{ $labels.${LABEL.plan} }}) is over their ${names.what}: {{ $value | humanizePercentage }}`,
      description:
        `${who} has used {{ $value | humanizePercentage }} of their ${names.what} (${unit}) this billing period. ` +
        `Exact figures from the tokenmeter ledger.`,
      dashboard: USER_DASHBOARD,
    },
  ];
}

const spendLastHour = sel(RECORDED.planCostUsdIncrease1h);
const ingested15m = sel(RECORDED.ingestedSpansIncrease15m);
const up = sel('up', { job: `="${SCRAPE_JOB}"` });
const collectorMetric = (name: string) => `{__name__=~"${name}", exporter=~".*tokenmeter.*"}`;
/** Spans a collector gave up on, by cause; `_total` only on collectors that expose their metrics through the OTel SDK. */
const droppedSpans = (cause: 'send' | 'enqueue') =>
  `sum by (job, exporter) (increase(${collectorMetric(`otelcol_exporter_${cause}_failed_spans(_total)?`)}[10m]))`;

export const ALERTS: readonly AlertDefinition[] = [
  ...limitAlerts('tokens'),
  ...limitAlerts('requests'),
  ...limitAlerts('cost'),
  {
    name: 'TokenmeterRefusalSpike',
    group: 'tokenmeter-limits',
    // Refusals are the limits working; many at once mean a customer hammering a used-up plan, a limit set too low,
    // or an estimate far too large (a huge default max_tokens). sumGrowth counts a plan's first refusals too.
    expr: `${sumGrowth(METRIC.reservationsTotal, '15m', [LABEL.plan], { [LABEL.outcome]: '="refused"' })} > ${REFUSAL_SPIKE_MIN_CALLS}`,
    for: '5m',
    severity: 'info',
    category: 'customer',
    summary: `{{ $value | humanize }} LLM calls of plan {{ $labels.${LABEL.plan} }} refused over a limit in 15m`,
    description:
      `Admission control refused {{ $value | humanize }} LLM calls of plan {{ $labels.${LABEL.plan} }} in the last 15 minutes ` +
      `(above ${REFUSAL_SPIKE_MIN_CALLS}): the users got UsageLimitError (HTTP 429). See which users and limits on the usage dashboard.`,
    dashboard: { uid: DASHBOARD.usageLimits, vars: { plan: LABEL.plan } },
  },
  {
    name: 'TokenmeterSpendSpike',
    group: 'tokenmeter-spend',
    // The same hour one week earlier is the baseline (weekday and hour-of-day seasonality: Monday 11:00 is compared
    // with last Monday 11:00, not with a flat weekly average that nights and weekends pull down). Both sides come
    // from a recording rule, so this is two lookups, not a subquery. No spend a week ago (a new plan, the first
    // week after installing) means no baseline and no alert.
    expr:
      `${spendLastHour} > ${SPEND_SPIKE_FACTOR} * (${spendLastHour} offset 1w) ` +
      `and ${spendLastHour} > ${SPEND_SPIKE_MIN_USD}`,
    for: '10m',
    severity: 'warning',
    category: 'spend',
    summary: `Spend spike on plan {{ $labels.${LABEL.plan} }}: {{ $value | humanize }} USD in the last hour`,
    description:
      `Plan {{ $labels.${LABEL.plan} }} spent {{ $value | humanize }} USD in the last hour, more than ${SPEND_SPIKE_FACTOR}x what it ` +
      `spent in the same hour one week earlier (and above ${SPEND_SPIKE_MIN_USD} USD). Look for the users and models behind it.`,
    dashboard: { uid: DASHBOARD.overview, vars: { plan: LABEL.plan } },
  },
  {
    name: 'TokenmeterUnpricedModel',
    group: 'tokenmeter-spend',
    // sumGrowth also counts series born in the window (a model's first unpriced call since the exporter started).
    expr: `${sumGrowth(METRIC.unpricedTokensTotal, '15m', [LABEL.provider, LABEL.model])} > 0`,
    for: '1m',
    severity: 'warning',
    category: 'spend',
    summary: `Model {{ $labels.${LABEL.model} }} ({{ $labels.${LABEL.provider} }}) has no price: {{ $value | humanize }} unpriced tokens in 15m`,
    description:
      `{{ $value | humanize }} tokens of model {{ $labels.${LABEL.model} }} (provider {{ $labels.${LABEL.provider} }}) were used in ` +
      `the last 15 minutes with no known price. They are counted as unpriced, never as free; spend is understated until a price is configured.`,
    dashboard: { uid: DASHBOARD.overview, vars: { provider: LABEL.provider, model: LABEL.model } },
  },
  {
    name: 'TokenmeterEstimatedShareHigh',
    group: 'tokenmeter-spend',
    expr:
      `${sumGrowth(METRIC.estimatedTokensTotal, '1h', [LABEL.plan])} / ` +
      `${sumGrowth(METRIC.tokensTotal, '1h', [LABEL.plan])} > ${ESTIMATED_SHARE_MAX}`,
    for: '15m',
    severity: 'info',
    category: 'spend',
    summary: `{{ $value | humanizePercentage }} of plan {{ $labels.${LABEL.plan} }}'s tokens in the last hour were estimated`,
    description:
      `{{ $value | humanizePercentage }} of the tokens of plan {{ $labels.${LABEL.plan} }} in the last hour were estimated with a ` +
      `tokenizer because the provider did not report usage (above ${pct(ESTIMATED_SHARE_MAX)}). Its usage and spend figures are less reliable.`,
    dashboard: { uid: DASHBOARD.overview, vars: { plan: LABEL.plan } },
  },
  {
    name: 'TokenmeterIngestRejections',
    group: 'tokenmeter-exporter',
    // A first burst of rejections with a new reason is a new series: sumGrowth counts it, increase() would not.
    expr: `${sumGrowth(METRIC.rejectedSpansTotal, '10m', [LABEL.reason])} > 0`,
    for: '5m',
    severity: 'warning',
    category: 'pipeline',
    summary: `tokenmeter rejected {{ $value | humanize }} spans in 10m (reason {{ $labels.${LABEL.reason} }})`,
    description:
      `The tokenmeter exporter rejected {{ $value | humanize }} spans in the last 10 minutes with reason {{ $labels.${LABEL.reason} }}. ` +
      `Rejected spans are neither priced nor counted against any user's limit.`,
    dashboard: EXPORTER_DASHBOARD,
  },
  {
    name: 'TokenmeterCallsWithoutUsage',
    group: 'tokenmeter-exporter',
    // Issue 13: a GenAI call span without token counts and without content to estimate them from is billed as a
    // request with zero tokens (never dropped): its tokens are not metered, so say so. Estimated ones are in
    // TokenmeterEstimatedShareHigh.
    expr: `${sumGrowth(METRIC.missingUsageSpansTotal, '10m', [LABEL.source, LABEL.reason], { [LABEL.reason]: '!="estimated"' })} > 0`,
    for: '5m',
    severity: 'warning',
    category: 'pipeline',
    summary: `{{ $value | humanize }} LLM calls from {{ $labels.${LABEL.source} }} spans in 10m were counted with zero tokens ({{ $labels.${LABEL.reason} }})`,
    description:
      `{{ $value | humanize }} GenAI call spans of convention {{ $labels.${LABEL.source} }} in the last 10 minutes reported no token counts ` +
      `and tokenmeter could not estimate them ({{ $labels.${LABEL.reason} }}: no_content = the span carries no prompt or completion, ` +
      `not_estimated = too large or no tokenizer). They count as requests with zero tokens: their tokens and cost are not metered.`,
    dashboard: EXPORTER_DASHBOARD,
  },
  {
    name: 'TokenmeterIngestRequestsRefused',
    group: 'tokenmeter-exporter',
    // Whole OTLP requests refused with 401 (wrong or rotated ingest token), 413 (batch above max_request_bytes), 400
    // (malformed) or 415. Senders treat a 4xx as permanent and drop the batch: every span in it is lost, silently.
    // Refusals in every 5-minute window for 10 minutes: a stray probe does not page, a rotated token does.
    expr:
      `${sumGrowth(METRIC.rejectedRequestsTotal, '5m', [LABEL.reason], { [LABEL.reason]: '=~"unauthorized|too_large|malformed|unsupported_media_type"' })} > 0`,
    for: '10m',
    severity: 'critical',
    category: 'pipeline',
    summary: `tokenmeter is refusing OTLP requests ({{ $labels.${LABEL.reason} }}): their usage is lost`,
    description:
      `The tokenmeter exporters refused {{ $value | humanize }} OTLP requests in the last 5 minutes with reason {{ $labels.${LABEL.reason} }} ` +
      `(unauthorized = 401, too_large = 413, malformed = 400, unsupported_media_type = 415). Senders do not retry a 4xx: ` +
      `the usage in those requests is dropped, never metered, and invisible to every limit alert.`,
    dashboard: EXPORTER_DASHBOARD,
  },
  {
    name: 'TokenmeterInternalErrors',
    group: 'tokenmeter-exporter',
    // A 500 is the exporter's own fault (issue 14: a span the ledger would refuse is rejected alone, through
    // partial success). OTLP senders do not retry a 500, so each one is a batch of usage lost.
    expr: `${sumGrowth(METRIC.rejectedRequestsTotal, '10m', [], { [LABEL.reason]: '="internal_error"' })} > 0`,
    for: '1m',
    severity: 'critical',
    category: 'pipeline',
    summary: `tokenmeter answered {{ $value | humanize }} OTLP requests with 500 in 10m: their usage is lost`,
    description:
      `The tokenmeter exporters answered {{ $value | humanize }} OTLP requests in the last 10 minutes with 500 internal error ` +
      `(tokenmeter_rejected_requests_total{reason="internal_error"}). OTLP senders do not retry a 500, so the usage in those ` +
      `requests was not metered. This is a tokenmeter bug: the exporter log has the stack trace.`,
    dashboard: EXPORTER_DASHBOARD,
  },
  {
    name: 'TokenmeterIngestStalled',
    group: 'tokenmeter-exporter',
    // Nothing reached any exporter for 15 minutes, although around the same time one week earlier every 15-minute
    // window had at least INGEST_STALL_MIN_SPANS spans (weekly seasonality: a quiet night or weekend does not fire,
    // and a stall that lasts keeps firing through the hours that normally have traffic). No history a week ago (the
    // first week) means no alert. A down exporter has no samples and leaves this to TokenmeterExporterDown.
    expr: `${ingested15m} == 0 and min_over_time(${ingested15m}[30m] offset 1w) >= ${INGEST_STALL_MIN_SPANS}`,
    for: '5m',
    severity: 'warning',
    category: 'pipeline',
    summary: 'No usage has reached tokenmeter for 15 minutes, though this time last week had traffic',
    description:
      'The tokenmeter exporters are up but received no span at all (tokenmeter_ingested_spans_total, every outcome) in the last ' +
      `15 minutes, while at this time last week at least ${INGEST_STALL_MIN_SPANS} arrived in every 15 minutes. Usage is probably being lost ` +
      'upstream: a rotated ingest token, a collector that is down or dropping, a network or DNS change, or the apps themselves.',
    dashboard: EXPORTER_DASHBOARD,
  },
  {
    name: 'TokenmeterExporterDown',
    group: 'tokenmeter-exporter',
    // Pages only when no replica is left (all scrapes failing, or no target at all); one replica down is
    // TokenmeterExporterReplicasDown. One alert per job, never per instance, so the summary is never empty.
    expr: `sum by (job) (${up}) == 0 or absent(${up})`,
    for: '2m',
    severity: 'critical',
    category: 'pipeline',
    summary: 'Every tokenmeter exporter is down: nothing is being metered',
    description:
      `Prometheus can scrape none of the tokenmeter exporters of job {{ $labels.job }} (every target failing, or no target at all). ` +
      `Usage is not being metered and limit alerts cannot fire; OTLP senders are buffering (the collector's persistent queue) or dropping spans.`,
    dashboard: EXPORTER_DASHBOARD,
  },
  {
    name: 'TokenmeterExporterReplicasDown',
    group: 'tokenmeter-exporter',
    expr: `count by (job) (${up} == 0) / count by (job) (${up}) > 0`,
    for: '5m',
    severity: 'warning',
    category: 'pipeline',
    summary: '{{ $value | humanizePercentage }} of the tokenmeter exporter replicas are down',
    description:
      `{{ $value | humanizePercentage }} of the scrape targets of job {{ $labels.job }} are down (up == 0). The other replicas ` +
      `keep metering (senders retry on them); capacity is reduced. Which ones: up{job="${SCRAPE_JOB}"} == 0.`,
    dashboard: EXPORTER_DASHBOARD,
  },
  {
    name: 'TokenmeterLedgerUnavailable',
    group: 'tokenmeter-exporter',
    // Per instance (an embedded ledger's disk is per replica), with a static summary: PostgreSQL down for every
    // replica gives one notification whose common summary is this sentence.
    expr: `${sel(METRIC.ledgerUp)} == 0`,
    for: '1m',
    severity: 'critical',
    category: 'pipeline',
    summary: 'tokenmeter cannot reach its ledger: usage is refused with 503',
    description:
      `The tokenmeter exporter {{ $labels.instance }} reports its ledger as unavailable. It answers OTLP requests with 503 ` +
      `(senders retry, from their queues) and the period gauges are stale until the ledger is back.`,
    dashboard: EXPORTER_DASHBOARD,
  },
  {
    name: 'TokenmeterCollectorDroppingSpans',
    group: 'tokenmeter-collector',
    // send_failed counts spans given up on (permanent 4xx errors; retries never expire in collector.yaml), and
    // enqueue_failed spans refused by a full sending queue: both are usage that will never reach tokenmeter.
    // Summed apart (increase() of both names at once would give two series with the same labels); `or` keeps a
    // side whose counter does not exist yet.
    expr: `(${droppedSpans('send')} + ${droppedSpans('enqueue')} or ${droppedSpans('send')} or ${droppedSpans('enqueue')}) > 0`,
    for: '1m',
    severity: 'critical',
    category: 'pipeline',
    summary: 'The OpenTelemetry Collector is dropping spans bound for tokenmeter',
    description:
      `Collector exporter {{ $labels.exporter }} (job {{ $labels.job }}) dropped {{ $value | humanize }} spans in the last 10 minutes ` +
      `(send failed after retries, or sending queue full). Their usage is lost.`,
    dashboard: EXPORTER_DASHBOARD,
  },
  {
    name: 'TokenmeterCollectorQueueFilling',
    group: 'tokenmeter-collector',
    expr:
      `max by (job, instance, exporter) (${collectorMetric('otelcol_exporter_queue_size')} / ${collectorMetric('otelcol_exporter_queue_capacity')}) ` +
      `> ${COLLECTOR_QUEUE_MAX_RATIO}`,
    for: '5m',
    severity: 'warning',
    category: 'pipeline',
    summary: "A collector's sending queue to tokenmeter is filling up",
    description:
      `The sending queue of collector exporter {{ $labels.exporter }} on {{ $labels.instance }} is {{ $value | humanizePercentage }} ` +
      `full: tokenmeter is not taking the data (down, ledger unavailable, refusing, or too slow). When the queue is full, ` +
      `new spans are dropped.`,
    dashboard: EXPORTER_DASHBOARD,
  },
  {
    name: 'TokenmeterCollectorDown',
    group: 'tokenmeter-collector',
    // No absent(): a deployment without a collector has no such job, and that is fine.
    expr: `sum by (job) (${sel('up', { job: `="${COLLECTOR_SCRAPE_JOB}"` })}) == 0`,
    for: '2m',
    severity: 'critical',
    category: 'pipeline',
    summary: 'Every OpenTelemetry Collector in front of tokenmeter is down',
    description:
      `Prometheus can scrape none of the collectors of job {{ $labels.job }}. Apps' OTLP exporters retry briefly, then drop spans: ` +
      `usage is being lost.`,
    dashboard: EXPORTER_DASHBOARD,
  },
  {
    name: 'TokenmeterWatchdog',
    group: 'tokenmeter-meta',
    // A dead man's switch: always firing. Alertmanager sends it to the watchdog receiver every few minutes; an
    // outside service pages when those heartbeats stop (Prometheus, Alertmanager or the network between is down).
    expr: 'vector(1)',
    for: '0m',
    severity: 'none',
    category: 'meta',
    summary: 'The tokenmeter alerting pipeline is working (always firing)',
    description:
      'This alert always fires, so that the path Prometheus → Alertmanager → receiver is proven end to end. ' +
      'The watchdog receiver must get it every few minutes; its absence is the alert.',
    dashboard: EXPORTER_DASHBOARD,
  },
  {
    name: 'TokenmeterAlertmanagerNotificationsFailing',
    group: 'tokenmeter-meta',
    // Failures in every 5-minute window for 10 minutes: one refused webhook call does not fire.
    expr: `sum by (job, integration) (increase(${sel('alertmanager_notifications_failed_total', { job: `="${ALERTMANAGER_SCRAPE_JOB}"` })}[5m])) > 0`,
    for: '10m',
    severity: 'critical',
    category: 'meta',
    summary: 'Alertmanager is failing to deliver notifications',
    description:
      `Alertmanager failed {{ $value | humanize }} {{ $labels.integration }} notifications in the last 5 minutes ` +
      `(alertmanager_notifications_failed_total). Alerts routed there are not reaching anyone: check the receiver's secret, ` +
      `URL and the integration's status page.`,
    dashboard: EXPORTER_DASHBOARD,
  },
];

/** The alert groups in the order they are rendered, with their evaluation interval. */
export const ALERT_GROUPS: readonly { name: AlertGroupName; interval: string }[] = [
  { name: 'tokenmeter-limits', interval: '1m' },
  { name: 'tokenmeter-spend', interval: '1m' },
  { name: 'tokenmeter-exporter', interval: '30s' },
  { name: 'tokenmeter-collector', interval: '30s' },
  { name: 'tokenmeter-meta', interval: '30s' },
];

export interface RecordingRule {
  record: string;
  expr: string;
}

/**
 * The recording rules the alerts read (otel-config/prometheus/recording/tokenmeter-recording.yml). They live apart
 * from the alert rules: Grafana-managed alerting empties Prometheus' `rules/` directory but still needs these.
 */
export const RECORDING_RULES: readonly RecordingRule[] = [
  // sumGrowth: a series born inside the hour (an exporter replaced by a new instance) counts with all of its value.
  { record: RECORDED.planCostUsdIncrease1h, expr: sumGrowth(METRIC.costUsdTotal, '1h', [LABEL.plan]) },
  { record: RECORDED.ingestedSpansIncrease15m, expr: sumGrowth(METRIC.ingestedSpansTotal, '15m') },
];
export const RECORDING_GROUP = { name: 'tokenmeter-recording', interval: '1m' } as const;

export interface PrometheusRule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface PrometheusRuleFile {
  groups: { name: string; interval: string; rules: PrometheusRule[] }[];
}

export interface PrometheusRecordingRuleFile {
  groups: { name: string; interval: string; rules: RecordingRule[] }[];
}

export function alertLabels(a: AlertDefinition): Record<string, string> {
  return { severity: a.severity, [CATEGORY_LABEL]: a.category };
}

export function alertAnnotations(a: AlertDefinition, options: AlertRenderOptions = {}): Record<string, string> {
  return {
    summary: a.summary,
    description: a.description,
    runbook_url: runbookUrl(a.name, options),
    dashboard_url: dashboardUrl(a.dashboard, options),
  };
}

/** The Prometheus rule file (`otel-config/prometheus/rules/tokenmeter-alerts.yml`). */
export function prometheusRules(alerts: readonly AlertDefinition[] = ALERTS, options: AlertRenderOptions = {}): PrometheusRuleFile {
  return {
    groups: ALERT_GROUPS.map((g) => ({
      name: g.name,
      interval: g.interval,
      rules: alerts
        .filter((a) => a.group === g.name)
        .map((a) => ({ alert: a.name, expr: a.expr, for: a.for, labels: alertLabels(a), annotations: alertAnnotations(a, options) })),
    })),
  };
}

/** The recording rule file (`otel-config/prometheus/recording/tokenmeter-recording.yml`). */
export function prometheusRecordingRules(): PrometheusRecordingRuleFile {
  return { groups: [{ name: RECORDING_GROUP.name, interval: RECORDING_GROUP.interval, rules: RECORDING_RULES.map((r) => ({ ...r })) }] };
}
