/**
 * Shared pieces of the four dashboards: the datasource reference, template variables, queries and panel
 * defaults. Panels are built with the Grafana foundation SDK.
 */
import { PanelBuilder as BarGauge } from '@grafana/grafana-foundation-sdk/bargauge';
import {
  BarGaugeDisplayMode,
  BigValueColorMode,
  BigValueTextMode,
  LegendDisplayMode,
  LegendPlacement,
  ReduceDataOptionsBuilder,
  VizLegendOptionsBuilder,
  VizOrientation,
  type DataSourceRef,
} from '@grafana/grafana-foundation-sdk/common';
import {
  DashboardLinkBuilder,
  DashboardLinkType,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
  VariableRefresh,
  VariableSort,
  type DashboardBuilder,
  type DashboardLink,
} from '@grafana/grafana-foundation-sdk/dashboard';
import type { Builder } from '@grafana/grafana-foundation-sdk/cog';
import { DataqueryBuilder, PromQueryFormat } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as Stat } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeSeries } from '@grafana/grafana-foundation-sdk/timeseries';
import { LABEL, METRIC } from '../contract/names.js';
import { NEAR_LIMIT_RATIO, OVER_LIMIT_RATIO } from './alerts.js';
import { PROMETHEUS_DATASOURCE_UID, SCRAPE_JOB, sel } from './promql.js';

/** Every panel and query uses the `$datasource` variable, which defaults to the provisioned Prometheus. */
export const DS: DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

/**
 * Grafana units. Tokens and requests have no built-in unit: `count:<word>` is Grafana's custom count unit, which
 * scales like `short` (1.2K, 3.4M tokens) and keeps the word, where `suffix:` printed 12345678 tokens.
 */
export const UNIT = {
  usd: 'currencyUSD',
  tokens: 'count:tokens',
  tokensPerSecond: 'count:tokens/s',
  requests: 'count:requests',
  bytes: 'bytes',
  ratio: 'percentunit',
  seconds: 's',
  duration: 'dtdurations',
  perSecond: 'reqps',
  count: 'short',
} as const;

export const DASHBOARD_TAG = 'tokenmeter';

export interface QueryOptions {
  legend?: string;
  /** Instant query (stat, bar gauge, table panels); the default is a range query (time series). */
  instant?: boolean;
  /** Table format: one row per series, labels as columns. */
  table?: boolean;
  refId?: string;
}

export function query(expr: string, options: QueryOptions = {}): DataqueryBuilder {
  const q = new DataqueryBuilder().expr(expr).refId(options.refId ?? 'A').datasource(DS);
  if (options.instant) q.instant();
  else q.range();
  if (options.table) q.format(PromQueryFormat.Table);
  if (options.legend !== undefined) q.legendFormat(options.legend);
  return q;
}

/** green below NEAR_LIMIT_RATIO, orange from it, red from OVER_LIMIT_RATIO (the alert thresholds). */
export function limitThresholds(): ThresholdsConfigBuilder {
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
    { value: null, color: 'green' },
    { value: NEAR_LIMIT_RATIO, color: 'orange' },
    { value: OVER_LIMIT_RATIO, color: 'red' },
  ]);
}

/** For counts of users near a limit: green at 0, amber from 1 (near is a heads-up, not a fault). */
export function nearCountThresholds(): ThresholdsConfigBuilder {
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
    { value: null, color: 'green' },
    { value: 1, color: 'orange' },
  ]);
}

/** For counts of users over a limit: green at 0, red from 1. */
export function overCountThresholds(): ThresholdsConfigBuilder {
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
    { value: null, color: 'green' },
    { value: 1, color: 'red' },
  ]);
}

/** The User drill-down's uid (here so that every board can link to it). */
export const USER_DRILLDOWN_UID = 'tokenmeter-user';
/** The Exporter health board's uid. */
export const EXPORTER_HEALTH_UID = 'tokenmeter-exporter-health';

/** A Grafana field data link (title and URL only); the SDK's builder would add dashboard-link fields. */
function dataLink(title: string, url: string): Builder<DashboardLink> {
  return { build: () => ({ title, url }) as unknown as DashboardLink };
}

/**
 * A data link to one user's drill-down, keeping the time range and data source. `from` says where the user and plan
 * are: the series labels (bar gauges, time series) or the table row's columns.
 */
export function userDrilldownLink(from: 'labels' | 'row'): Builder<DashboardLink>[] {
  const v = (l: string) => (from === 'labels' ? `\${__field.labels.${l}}` : `\${__data.fields.${l}}`);
  const url =
    `/d/${USER_DRILLDOWN_UID}/?var-${LABEL.user}=${v(LABEL.user)}&var-${LABEL.plan}=${v(LABEL.plan)}` +
    '&var-datasource=${datasource}&${__url_time_range}';
  return [dataLink(`Open ${v(LABEL.user)} (${v(LABEL.plan)}) in the user drill-down`, url)];
}

/** A panel link (top-left menu) to another board, keeping the time range. */
export function boardLink(title: string, uid: string): Builder<DashboardLink>[] {
  return [dataLink(title, `/d/${uid}/?var-datasource=\${datasource}&\${__url_time_range}`)];
}

/** A time-series panel with its legend shown (below, as a list with the last and max values). */
export function timeSeries(title: string): TimeSeries {
  return new TimeSeries()
    .title(title)
    .datasource(DS)
    .legend(
      new VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(LegendDisplayMode.List)
        .placement(LegendPlacement.Bottom)
        .calcs(['lastNotNull', 'max']),
    );
}

/**
 * Scrape targets of the exporter job that answer, out of those Prometheus expects: the share up (red when none is,
 * amber while some are down, green when all are) next to the two counts, "up" and "expected".
 */
export function exportersUpPanel(): Stat {
  const job = { job: `="${SCRAPE_JOB}"` };
  const up = `(count(${sel('up', job)} == 1) or vector(0))`;
  const fixed = [{ id: 'unit', value: UNIT.count }, { id: 'color', value: { mode: 'fixed', fixedColor: 'text' } }];
  return statPanel('Exporters up', UNIT.ratio)
    .description(
      `Scrape targets of job "${SCRAPE_JOB}" that answer ("up") out of the targets Prometheus knows ("expected"), and ` +
        'the share up. Green only when all are up; a replica gone from service discovery is not expected any more ' +
        '(the ExporterDown alerts also cover absent targets).',
    )
    .withTarget(query(`${up} / count(${sel('up', job)})`, { instant: true, legend: 'share up', refId: 'A' }))
    .withTarget(query(up, { instant: true, legend: 'up', refId: 'B' }))
    .withTarget(query(`count(${sel('up', job)}) or vector(0)`, { instant: true, legend: 'expected', refId: 'C' }))
    .textMode(BigValueTextMode.ValueAndName)
    .colorMode(BigValueColorMode.Background)
    .overrideByName('up', fixed)
    .overrideByName('expected', fixed)
    .thresholds(upShareThresholds());
}

/** Share of exporter targets up: red at 0, amber below 1, green at 1. */
export function upShareThresholds(): ThresholdsConfigBuilder {
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
    { value: null, color: 'red' },
    { value: 0.001, color: 'orange' },
    { value: 1, color: 'green' },
  ]);
}

export function plainThresholds(): ThresholdsConfigBuilder {
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([{ value: null, color: 'green' }]);
}

/** A single-value panel showing the last value, with plain thresholds; callers add the query and may override the rest. */
export function statPanel(title: string, unit: string): Stat {
  return new Stat()
    .title(title)
    .datasource(DS)
    .unit(unit)
    .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
    .thresholds(plainThresholds())
    .height(5)
    .span(6);
}

/** A horizontal bar gauge of shares of limits, from 0 to 100%, coloured at the alert thresholds. */
export function limitBarGauge(title: string): BarGauge {
  return new BarGauge()
    .title(title)
    .datasource(DS)
    .unit(UNIT.ratio)
    .min(0)
    .max(OVER_LIMIT_RATIO)
    .thresholds(limitThresholds())
    .orientation(VizOrientation.Horizontal)
    .displayMode(BarGaugeDisplayMode.Gradient)
    .showUnfilled(true);
}

export function datasourceVariable(): DatasourceVariableBuilder {
  return new DatasourceVariableBuilder('datasource')
    .label('Data source')
    .type('prometheus')
    .current({ text: 'Prometheus', value: PROMETHEUS_DATASOURCE_UID });
}

function labelVariable(name: string, label: string, q: string, multi: boolean): QueryVariableBuilder {
  const v = new QueryVariableBuilder(name)
    .label(label)
    .datasource(DS)
    .query(q)
    .definition(q)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc);
  if (multi) v.multi(true).includeAll(true).allValue('.*').current({ text: 'All', value: '$__all' });
  return v;
}

/** Plans come from the period-end gauge, which the exporter sets for every configured plan. */
export function planVariable(): QueryVariableBuilder {
  return labelVariable(LABEL.plan, 'Plan', `label_values(${sel(METRIC.periodEndTimestampSeconds)}, ${LABEL.plan})`, true);
}

export function providerVariable(): QueryVariableBuilder {
  return labelVariable(
    LABEL.provider,
    'Provider',
    `label_values(${sel(METRIC.tokensTotal, { [LABEL.plan]: `=~"$${LABEL.plan}"` })}, ${LABEL.provider})`,
    true,
  );
}

export function modelVariable(): QueryVariableBuilder {
  return labelVariable(
    LABEL.model,
    'Model',
    `label_values(${sel(METRIC.tokensTotal, { [LABEL.plan]: `=~"$${LABEL.plan}"`, [LABEL.provider]: `=~"$${LABEL.provider}"` })}, ${LABEL.model})`,
    true,
  );
}

/** Users are those with a ledger gauge this period. `multi` for the limits board, single for the drill-down. */
export function userVariable(multi: boolean): QueryVariableBuilder {
  return labelVariable(
    LABEL.user,
    'User',
    `label_values(${sel(METRIC.periodTokens, { [LABEL.plan]: `=~"$${LABEL.plan}"` })}, ${LABEL.user})`,
    multi,
  );
}

/** Common dashboard settings: UTC (billing periods are UTC by default), last 24 hours, refresh, tag. */
export function withDefaults(d: DashboardBuilder): DashboardBuilder {
  return d
    .tags([DASHBOARD_TAG])
    .timezone('utc')
    .time({ from: 'now-24h', to: 'now' })
    .refresh('30s')
    .editable()
    .link(
      new DashboardLinkBuilder('tokenmeter')
        .type(DashboardLinkType.Dashboards)
        .tags([DASHBOARD_TAG])
        .asDropdown(true)
        .includeVars(true)
        .keepTime(true),
    );
}
