/**
 * Shared pieces of the four dashboards: the datasource reference, template variables, queries and panel
 * defaults. Panels are built with the Grafana foundation SDK.
 */
import { PanelBuilder as BarGauge } from '@grafana/grafana-foundation-sdk/bargauge';
import { BarGaugeDisplayMode, ReduceDataOptionsBuilder, VizOrientation, type DataSourceRef } from '@grafana/grafana-foundation-sdk/common';
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
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder, PromQueryFormat } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as Stat } from '@grafana/grafana-foundation-sdk/stat';
import { LABEL, METRIC } from '../contract/names.js';
import { NEAR_LIMIT_RATIO, OVER_LIMIT_RATIO } from './alerts.js';
import { PROMETHEUS_DATASOURCE_UID, sel } from './promql.js';

/** Every panel and query uses the `$datasource` variable, which defaults to the provisioned Prometheus. */
export const DS: DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

/** Grafana units. Tokens and requests have no built-in unit, so they get a custom suffix. */
export const UNIT = {
  usd: 'currencyUSD',
  tokens: 'suffix: tokens',
  requests: 'suffix: requests',
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
