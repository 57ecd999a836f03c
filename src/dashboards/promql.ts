/**
 * PromQL building blocks shared by the dashboards and the alert rules. Every metric and label name comes from
 * `src/contract/names.ts`, so a renamed metric breaks the generated files (and CI) instead of silently emptying
 * a panel.
 *
 * Aggregation over several exporter replicas (DESIGN.md "Scaling out"): counters are summed (`sum`), while the
 * ledger gauges (period_*, limit_*) carry the same value on every replica and are folded with `max by (user, plan)`.
 */
import { LABEL, METRIC, type MetricName, type ProcessMetricName } from '../contract/names.js';

/** The Prometheus datasource uid Grafana is provisioned with; the alert rules and dashboards default to it. */
export const PROMETHEUS_DATASOURCE_UID = 'tokenmeter-prometheus';
/** The Prometheus scrape job of the exporter (used by `TokenmeterExporterDown` and the exporter-health board). */
export const SCRAPE_JOB = 'tokenmeter';
/** The Prometheus scrape job of the OpenTelemetry Collector's own metrics (otel-config/prometheus/prometheus.yml). */
export const COLLECTOR_SCRAPE_JOB = 'otel-collector';
/** The Prometheus scrape job of Alertmanager's own metrics (meta-monitoring of notifications). */
export const ALERTMANAGER_SCRAPE_JOB = 'alertmanager';

/** A label matcher list, e.g. `{plan=~"$plan"}`. Matchers are written as given (already quoted). */
export type Matchers = Record<string, string>;

/** `plan=~"$plan"` style regex matchers for Grafana template variables. */
export function varMatchers(...labels: (keyof typeof LABEL)[]): Matchers {
  const m: Matchers = {};
  for (const l of labels) m[LABEL[l]] = `=~"$${LABEL[l]}"`;
  return m;
}

/** `metric{a=~"x",b="y"}`. */
export function sel(
  metric: MetricName | `${MetricName}_bucket` | ProcessMetricName | (typeof PROMETHEUS_BUILTIN_METRICS)[number] | (typeof FOREIGN_METRICS)[number] | RecordedSeries,
  matchers: Matchers = {},
): string {
  const parts = Object.entries(matchers).map(([k, v]) => `${k}${v}`);
  return parts.length > 0 ? `${metric}{${parts.join(', ')}}` : metric;
}

export function by(labels: string[]): string {
  return labels.length > 0 ? ` by (${labels.join(', ')})` : '';
}

/** `sum by (...) (rate(counter[window]))` — counters summed across replicas. */
export function sumRate(metric: MetricName, window: string, groupBy: string[] = [], matchers: Matchers = {}): string {
  return `sum${by(groupBy)} (rate(${sel(metric, matchers)}[${window}]))`;
}

/** `sum by (...) (increase(counter[window]))`. */
export function sumIncrease(metric: MetricName, window: string, groupBy: string[] = [], matchers: Matchers = {}): string {
  return `sum${by(groupBy)} (increase(${sel(metric, matchers)}[${window}]))`;
}

/**
 * How much a counter grew in `window`, summed: `increase()` for the series that existed when the window began, plus
 * the whole current value of the series born inside it. prom-client creates a labelled series with its first
 * increment, so its first sample is already non-zero and `increase()` alone never counts that first step (a new
 * model, plan or reject reason would show less than it used, or nothing). A series absent `window` ago started from
 * 0, so its current value is all of its growth. The two halves never hold the same series.
 */
export function sumGrowth(metric: MetricName, window: string, groupBy: string[] = [], matchers: Matchers = {}): string {
  const s = sel(metric, matchers);
  return `sum${by(groupBy)} ((increase(${s}[${window}]) and ${s} offset ${window}) or (${s} unless ${s} offset ${window}))`;
}

/**
 * How much a counter grew in `window`, summed, across restarts and replica replacements: `increase()` of every
 * series, plus, for a series born inside the window (absent `window` ago), its lowest value in the window. The
 * exporter starts every series the ledger knows at 0 (ExporterMetrics.primeSeries), so for those the second term is
 * 0 and this is plain `increase()`, which also counts a replica that metered and was replaced inside the window (the
 * older `sumGrowth` counted such a series only by its current value, i.e. not at all once it was gone). A label set
 * first seen at runtime (a new model, an operation or feature the ledger's totals do not carry) is born with its
 * first increment; the second term adds that first sample, which increase() alone never counts.
 */
export function sumIncreaseWithBirths(metric: MetricName, window: string, groupBy: string[] = [], matchers: Matchers = {}): string {
  const s = sel(metric, matchers);
  const born = `(min_over_time(${s}[${window}]) unless ${s} offset ${window})`;
  // `or born`: a series with a single sample in the window has no increase() but has its first sample.
  return `sum${by(groupBy)} ((increase(${s}[${window}]) + ${born}) or ${born} or increase(${s}[${window}]))`;
}

/** A ledger gauge folded across replicas: `max by (user, plan) (gauge)`. */
export function ledgerGauge(metric: MetricName, matchers: Matchers = {}): string {
  return `max by (${LABEL.user}, ${LABEL.plan}) (${sel(metric, matchers)})`;
}

/** The three limits a user can have, each as (period gauge, limit gauge). */
export const LIMIT_KINDS = {
  tokens: { period: METRIC.periodTokens, limit: METRIC.limitTokens, title: 'token', unit: 'tokens' },
  requests: { period: METRIC.periodRequests, limit: METRIC.limitRequests, title: 'request', unit: 'requests' },
  cost: { period: METRIC.periodCostUsd, limit: METRIC.limitCostUsd, title: 'cost budget', unit: 'USD' },
} as const;
export type LimitKind = keyof typeof LIMIT_KINDS;

/**
 * A user's usage this billing period as a fraction of their limit, per (user, plan). Users without a limit have no
 * limit series (absent = unlimited), so the division yields nothing for them.
 */
export function limitRatio(kind: LimitKind, matchers: Matchers = {}): string {
  const k = LIMIT_KINDS[kind];
  return `${ledgerGauge(k.period, matchers)} / ${ledgerGauge(k.limit, matchers)}`;
}

/** The label flaggedLimits adds to say which limit a series is about. */
export const LIMIT_LABEL = 'limit';

/**
 * Every (user, plan) at or above `threshold` of one of their limits (and below `below`), one series per limit with
 * `limit="tokens|requests|cost"`.
 */
export function flaggedLimits(threshold: number, below: number | undefined, matchers: Matchers = {}): string {
  return (Object.keys(LIMIT_KINDS) as LimitKind[])
    .map((k) => {
      const cond = `${limitRatio(k, matchers)} >= ${threshold}${below === undefined ? '' : ` < ${below}`}`;
      return `label_replace(${cond}, "${LIMIT_LABEL}", "${k}", "", "")`;
    })
    .join(' or ');
}

/** How many (user, plan) pairs have a series in `flagged` (0, not empty, when there are users but none flagged). */
export function countFlaggedUsers(flagged: string, matchers: Matchers = {}): string {
  return `count(count by (${LABEL.user}, ${LABEL.plan}) (${flagged})) or 0 * count(${ledgerGauge(METRIC.periodTokens, matchers)})`;
}

/**
 * The linear forecast of a period gauge at the end of the billing period, per (user, plan):
 * `predict_linear(g[window], 0)` (the regression's value now) plus its slope times the seconds left in the plan's
 * period. The horizon differs per plan, which `predict_linear`'s scalar argument cannot express on its own.
 */
export function periodForecast(kind: LimitKind, window: string, matchers: Matchers = {}, planMatchers: Matchers = {}): string {
  const g = sel(LIMIT_KINDS[kind].period, matchers);
  const secondsLeft = `(max by (${LABEL.plan}) (${sel(METRIC.periodEndTimestampSeconds, planMatchers)}) - time())`;
  return (
    `(max by (${LABEL.user}, ${LABEL.plan}) (predict_linear(${g}[${window}], 0))` +
    ` + max by (${LABEL.user}, ${LABEL.plan}) (deriv(${g}[${window}])) * on (${LABEL.plan}) group_left () ${secondsLeft})`
  );
}

/** Prometheus' own series a dashboard or rule may use besides the exporter's metrics. */
export const PROMETHEUS_BUILTIN_METRICS = ['up', 'scrape_duration_seconds', 'scrape_samples_scraped'] as const;

/**
 * Metrics of the other components of the stack that the alert rules read (Alertmanager's own metrics, scraped by the
 * `alertmanager` job). The collector's metrics are selected by a `__name__` regex instead (their `_total` suffix
 * depends on the collector version), so they are not listed.
 */
export const FOREIGN_METRICS = ['alertmanager_notifications_failed_total', 'alertmanager_notifications_total'] as const;

/**
 * The series the recording rules (otel-config/prometheus/recording/) write, `level:metric:operations` as Prometheus
 * recommends. Heavy expressions are evaluated once a minute there; the alert rules read the results.
 */
export const RECORDED = {
  /** Spend per plan in the last hour (growth of tokenmeter_cost_usd_total, restarts and new series included). */
  planCostUsdIncrease1h: 'tokenmeter:plan_cost_usd:increase1h',
  /** Spans received by all exporters in the last 15 minutes (every outcome). */
  ingestedSpansIncrease15m: 'tokenmeter:ingested_spans:increase15m',
} as const;
export type RecordedSeries = (typeof RECORDED)[keyof typeof RECORDED];

const PROMQL_KEYWORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'atan2',
  'inf', 'nan',
]);

/**
 * The metric names a PromQL expression selects. A small lexer, not a parser: it drops strings, label matchers,
 * range selectors and grouping label lists, then keeps the identifiers that are not functions or keywords.
 * Grafana template variables (`$user`, `$__rate_interval`) are dropped too.
 */
export function metricNamesIn(expr: string): string[] {
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  s = s.replace(/\{[^}]*\}/g, ' ');
  s = s.replace(/\[[^\]]*\]/g, ' ');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  s = s.replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/g, ' ');
  const names = new Set<string>();
  const re = /[A-Za-z_:][A-Za-z0-9_:]*/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    const word = m[0];
    const before = s[m.index - 1];
    if (before !== undefined && /[0-9.]/.test(before)) continue; // the exponent or unit of a number: 1e3, 5m
    const rest = s.slice(m.index + word.length);
    if (/^\s*\(/.test(rest)) continue; // a function call
    if (PROMQL_KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names].sort();
}

/** Strips the histogram/summary sample suffixes so `x_bucket` maps back to the metric `x`. */
export function baseMetricName(sampleName: string, histograms: Iterable<string>): string {
  for (const h of histograms) {
    for (const suffix of ['_bucket', '_sum', '_count']) if (sampleName === h + suffix) return h;
  }
  return sampleName;
}
