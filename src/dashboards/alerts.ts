/**
 * Alert rules as code: ONE list of definitions renders both the Prometheus rule file and the Grafana-managed
 * alert rules, with the same PromQL, thresholds, `for` durations, labels and annotations.
 */
import { LABEL, METRIC } from '../contract/names.js';
import {
  LIMIT_KINDS,
  SCRAPE_JOB,
  limitRatio,
  sel,
  sumGrowth,
  sumIncrease,
  type LimitKind,
} from './promql.js';

export type Severity = 'critical' | 'warning' | 'info';
export const SEVERITIES: readonly Severity[] = ['critical', 'warning', 'info'];

export interface AlertDefinition {
  /** The alert name (`alertname` label), also the runbook anchor. */
  name: string;
  /** Rule group (one per concern, evaluated together). */
  group: 'tokenmeter-limits' | 'tokenmeter-spend' | 'tokenmeter-exporter';
  /** PromQL; every series it returns is a firing (or pending) alert, with the series' value as `$value`. */
  expr: string;
  /** How long the condition must hold before the alert fires. */
  for: string;
  severity: Severity;
  /** Go templates: `{{ $labels.x }}`, `{{ $value | humanizePercentage }}` (Prometheus and Grafana both render them). */
  summary: string;
  description: string;
}

/** Usage at or above this fraction of a limit is "near"; at or above OVER_LIMIT_RATIO it is "over". */
export const NEAR_LIMIT_RATIO = 0.8;
export const OVER_LIMIT_RATIO = 1;
/** Spend in the last hour above this multiple of the 7-day hourly average... */
export const SPEND_SPIKE_FACTOR = 3;
/** ...and above this many USD (so that a quiet plan's first calls of the day do not page anyone). */
export const SPEND_SPIKE_MIN_USD = 1;
/** Share of a plan's tokens that were estimated (not reported by the provider) above which the numbers are doubtful. */
export const ESTIMATED_SHARE_MAX = 0.1;

/**
 * Where the runbooks live; each alert's `runbook_url` is this plus `#<alertname in lower case>` (the Markdown
 * heading anchor). Relative to the repository root: change it here to where your team publishes docs/runbooks.md.
 */
export const RUNBOOK_BASE_URL = 'docs/runbooks.md';

export function runbookUrl(alertName: string): string {
  return `${RUNBOOK_BASE_URL}#${alertName.toLowerCase()}`;
}

/** `absent()` has no instance label: say so instead of leaving a gap. */
const INSTANCE_OR_NONE = '{{ if $labels.instance }}{{ $labels.instance }}{{ else }}(no scrape target){{ end }}';

const LIMIT_NAMES: Record<LimitKind, { near: string; over: string; what: string }> = {
  tokens: { near: 'TokenmeterUserNearTokenLimit', over: 'TokenmeterUserOverTokenLimit', what: 'token limit' },
  requests: { near: 'TokenmeterUserNearRequestLimit', over: 'TokenmeterUserOverRequestLimit', what: 'request limit' },
  cost: { near: 'TokenmeterUserNearBudget', over: 'TokenmeterUserOverBudget', what: 'cost budget' },
};

function pct(ratio: number): string {
  return `${Math.round(ratio * 100)}%`;
}

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
      summary: `{{ $labels.${LABEL.user} }} ({{ $labels.${LABEL.plan} }}) has used {{ $value | humanizePercentage }} of their ${names.what}`,
      description:
        `${who} has used {{ $value | humanizePercentage }} of their ${names.what} (${unit}) this billing period ` +
        `(near from ${pct(NEAR_LIMIT_RATIO)}, over at ${pct(OVER_LIMIT_RATIO)}). Exact figures from the tokenmeter ledger.`,
    },
    {
      name: names.over,
      group: 'tokenmeter-limits',
      expr: `${ratio} >= ${OVER_LIMIT_RATIO}`,
      for: '1m',
      severity: kind === 'cost' ? 'critical' : 'warning',
      summary: `{{ $labels.${LABEL.user} }} ({{ $labels.${LABEL.plan} }}) is over their ${names.what}: {{ $value | humanizePercentage }}`,
      description:
        `${who} has used {{ $value | humanizePercentage }} of their ${names.what} (${unit}) this billing period. ` +
        `Exact figures from the tokenmeter ledger.`,
    },
  ];
}

/** Hourly spend per plan, as a 1h-step subquery over the last 7 days, excluding the current hour. */
const hourlySpend = sumIncrease(METRIC.costUsdTotal, '1h', [LABEL.plan]);
const spendBaseline = `avg_over_time((${hourlySpend})[7d:1h] offset 1h)`;

export const ALERTS: readonly AlertDefinition[] = [
  ...limitAlerts('tokens'),
  ...limitAlerts('requests'),
  ...limitAlerts('cost'),
  {
    name: 'TokenmeterSpendSpike',
    group: 'tokenmeter-spend',
    // A plan with no spend history before the current hour has no baseline and so no spike.
    expr: `${hourlySpend} > ${SPEND_SPIKE_FACTOR} * ${spendBaseline} and ${hourlySpend} > ${SPEND_SPIKE_MIN_USD}`,
    for: '10m',
    severity: 'warning',
    summary: `Spend spike on plan {{ $labels.${LABEL.plan} }}: {{ $value | humanize }} USD in the last hour`,
    description:
      `Plan {{ $labels.${LABEL.plan} }} spent {{ $value | humanize }} USD in the last hour, more than ${SPEND_SPIKE_FACTOR}x its ` +
      `average hourly spend over the previous 7 days (and above ${SPEND_SPIKE_MIN_USD} USD). Look for the users and models behind it.`,
  },
  {
    name: 'TokenmeterUnpricedModel',
    group: 'tokenmeter-spend',
    // sumGrowth also counts series born in the window (a model's first unpriced call since the exporter started).
    expr: `${sumGrowth(METRIC.unpricedTokensTotal, '15m', [LABEL.provider, LABEL.model])} > 0`,
    for: '1m',
    severity: 'warning',
    summary: `Model {{ $labels.${LABEL.model} }} ({{ $labels.${LABEL.provider} }}) has no price: {{ $value | humanize }} unpriced tokens in 15m`,
    description:
      `{{ $value | humanize }} tokens of model {{ $labels.${LABEL.model} }} (provider {{ $labels.${LABEL.provider} }}) were used in ` +
      `the last 15 minutes with no known price. They are counted as unpriced, never as free; spend is understated until a price is configured.`,
  },
  {
    name: 'TokenmeterEstimatedShareHigh',
    group: 'tokenmeter-spend',
    expr:
      `${sumGrowth(METRIC.estimatedTokensTotal, '1h', [LABEL.plan])} / ` +
      `${sumGrowth(METRIC.tokensTotal, '1h', [LABEL.plan])} > ${ESTIMATED_SHARE_MAX}`,
    for: '15m',
    severity: 'info',
    summary: `{{ $value | humanizePercentage }} of plan {{ $labels.${LABEL.plan} }}'s tokens in the last hour were estimated`,
    description:
      `{{ $value | humanizePercentage }} of the tokens of plan {{ $labels.${LABEL.plan} }} in the last hour were estimated with a ` +
      `tokenizer because the provider did not report usage (above ${pct(ESTIMATED_SHARE_MAX)}). Its usage and spend figures are less reliable.`,
  },
  {
    name: 'TokenmeterIngestRejections',
    group: 'tokenmeter-exporter',
    // A first burst of rejections with a new reason is a new series: sumGrowth counts it, increase() would not.
    expr: `${sumGrowth(METRIC.rejectedSpansTotal, '10m', [LABEL.reason])} > 0`,
    for: '5m',
    severity: 'warning',
    summary: `tokenmeter rejected {{ $value | humanize }} spans in 10m (reason {{ $labels.${LABEL.reason} }})`,
    description:
      `The tokenmeter exporter rejected {{ $value | humanize }} spans in the last 10 minutes with reason {{ $labels.${LABEL.reason} }}. ` +
      `Rejected spans are neither priced nor counted against any user's limit.`,
  },
  {
    name: 'TokenmeterExporterDown',
    group: 'tokenmeter-exporter',
    expr: `${sel('up', { job: `="${SCRAPE_JOB}"` })} == 0 or absent(${sel('up', { job: `="${SCRAPE_JOB}"` })})`,
    for: '2m',
    severity: 'critical',
    summary: `tokenmeter exporter ${INSTANCE_OR_NONE} is down`,
    description:
      `Prometheus cannot scrape the tokenmeter exporter ${INSTANCE_OR_NONE} of job {{ $labels.job }} (value {{ $value }}: 0 = scrape ` +
      `failing, 1 = no target at all). ` +
      `Usage is not being metered and limit alerts cannot fire; OTLP senders are buffering or dropping spans.`,
  },
  {
    name: 'TokenmeterLedgerUnavailable',
    group: 'tokenmeter-exporter',
    expr: `${sel(METRIC.ledgerUp)} == 0`,
    for: '1m',
    severity: 'critical',
    summary: `tokenmeter exporter {{ $labels.instance }} cannot reach its ledger`,
    description:
      `The tokenmeter exporter {{ $labels.instance }} reports its ledger as unavailable. It answers OTLP requests with 503 ` +
      `(senders retry) and the period gauges are stale until the ledger is back.`,
  },
];

/** The alert groups in the order they are rendered, with their evaluation interval. */
export const ALERT_GROUPS = [
  { name: 'tokenmeter-limits', interval: '1m' },
  { name: 'tokenmeter-spend', interval: '1m' },
  { name: 'tokenmeter-exporter', interval: '30s' },
] as const;

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

export function alertLabels(a: AlertDefinition): Record<string, string> {
  return { severity: a.severity };
}

export function alertAnnotations(a: AlertDefinition): Record<string, string> {
  return { summary: a.summary, description: a.description, runbook_url: runbookUrl(a.name) };
}

/** The Prometheus rule file (`otel-config/prometheus/rules/tokenmeter-alerts.yml`). */
export function prometheusRules(alerts: readonly AlertDefinition[] = ALERTS): PrometheusRuleFile {
  return {
    groups: ALERT_GROUPS.map((g) => ({
      name: g.name,
      interval: g.interval,
      rules: alerts
        .filter((a) => a.group === g.name)
        .map((a) => ({ alert: a.name, expr: a.expr, for: a.for, labels: alertLabels(a), annotations: alertAnnotations(a) })),
    })),
  };
}
