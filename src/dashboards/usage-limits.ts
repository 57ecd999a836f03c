/** The Usage vs limits dashboard: every user's share of their token, request and cost limits this billing period. */
import { TableSortByFieldStateBuilder } from '@grafana/grafana-foundation-sdk/common';
import { DashboardBuilder, RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as Table } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeSeries } from '@grafana/grafana-foundation-sdk/timeseries';
import { LABEL, METRIC } from '../contract/names.js';
import { NEAR_LIMIT_RATIO, OVER_LIMIT_RATIO } from './alerts.js';
import { DS, UNIT, datasourceVariable, limitBarGauge, limitThresholds, planVariable, query, statPanel, userVariable, withDefaults } from './common.js';
import { LIMIT_KINDS, ledgerGauge, limitRatio, periodForecast, sel, varMatchers, type LimitKind } from './promql.js';

export const USAGE_LIMITS_UID = 'tokenmeter-usage-limits';
/** The label the near/over table adds to say which limit a row is about. */
export const LIMIT_LABEL = 'limit';
/** The window of the linear forecast: long enough to smooth bursts, short enough to follow a change of pace. */
export const FORECAST_WINDOW = '6h';

const m = varMatchers('plan', 'user');
const KINDS: LimitKind[] = ['tokens', 'requests', 'cost'];
const TITLES: Record<LimitKind, string> = { tokens: 'Tokens', requests: 'Requests', cost: 'Cost budget' };
const userLegend = `{{${LABEL.user}}} ({{${LABEL.plan}}})`;

function ratioBarGauge(kind: LimitKind) {
  return limitBarGauge(`${TITLES[kind]} used of limit`)
    .description(
      `${LIMIT_KINDS[kind].period} / its limit, per user, this billing period (exact, from ` +
        'the ledger). Users without this limit are not shown.',
    )
    .withTarget(query(`sort_desc(${limitRatio(kind, m)})`, { instant: true, legend: userLegend }))
    .span(8)
    .height(10);
}

/** A user's share of a limit at period end, extrapolated linearly. */
function forecastPanel(kind: LimitKind, title: string, description: string): TimeSeries {
  return new TimeSeries()
    .title(`Forecast: share of ${title} at period end (linear over ${FORECAST_WINDOW})`)
    .description(description)
    .datasource(DS)
    .withTarget(
      query(`${periodForecast(kind, FORECAST_WINDOW, m, varMatchers('plan'))} / ${ledgerGauge(LIMIT_KINDS[kind].limit, m)}`, {
        legend: userLegend,
      }),
    )
    .unit(UNIT.ratio)
    .thresholds(limitThresholds())
    .span(12);
}

/** Users with any ratio at or above `threshold` (and below `below`), one row per (user, plan, limit). */
function flagged(threshold: number, below?: number): string {
  return KINDS.map((k) => {
    const cond = `${limitRatio(k, m)} >= ${threshold}${below === undefined ? '' : ` < ${below}`}`;
    return `label_replace(${cond}, "${LIMIT_LABEL}", "${k}", "", "")`;
  }).join(' or ');
}

function userCount(title: string, description: string, expr: string) {
  const anyUser = `count(${ledgerGauge(METRIC.periodTokens, m)})`;
  return statPanel(title, UNIT.count)
    .description(description)
    .withTarget(query(`count(count by (${LABEL.user}, ${LABEL.plan}) (${expr})) or 0 * ${anyUser}`, { instant: true }))
    .thresholds(limitThresholds());
}

export function usageLimitsDashboard(): Dashboard {
  const d = withDefaults(new DashboardBuilder('tokenmeter / Usage vs limits'))
    .uid(USAGE_LIMITS_UID)
    .description('Each user\'s usage against the token, request and cost limits of their plan this billing period.')
    .withVariable(datasourceVariable())
    .withVariable(planVariable())
    .withVariable(userVariable(true))
    .withRow(new RowBuilder('This billing period'))
    .withPanel(
      statPanel('Time left in billing period', UNIT.duration).withTarget(
        query(`min(${sel(METRIC.periodEndTimestampSeconds, varMatchers('plan'))}) - time()`, { instant: true }),
      ),
    )
    .withPanel(
      userCount(
        'Users over a limit',
        `Users at or above ${OVER_LIMIT_RATIO * 100}% of any of their limits.`,
        flagged(OVER_LIMIT_RATIO),
      ),
    )
    .withPanel(
      userCount(
        'Users near a limit',
        `Users between ${NEAR_LIMIT_RATIO * 100}% and ${OVER_LIMIT_RATIO * 100}% of any of their limits.`,
        flagged(NEAR_LIMIT_RATIO, OVER_LIMIT_RATIO),
      ),
    )
    .withPanel(
      statPanel('Spend this billing period', UNIT.usd)
        .description('Exact, from the ledger gauges, for the selected plans and users.')
        .withTarget(query(`sum(${ledgerGauge(METRIC.periodCostUsd, m)})`, { instant: true })),
    )
    .withRow(new RowBuilder('Share of limits'));
  for (const k of KINDS) d.withPanel(ratioBarGauge(k));
  return d
    .withPanel(
      new Table()
        .title('Users near or over a limit')
        .description(`Every (user, plan, limit) at or above ${NEAR_LIMIT_RATIO * 100}% of the limit, highest first.`)
        .datasource(DS)
        .withTarget(query(`sort_desc(${flagged(NEAR_LIMIT_RATIO)})`, { instant: true, table: true }))
        .withTransformation({ id: 'organize', options: { excludeByName: { Time: true }, renameByName: { Value: 'Used of limit' } } })
        .unit(UNIT.ratio)
        .overrideByName('Used of limit', [{ id: 'custom.cellOptions', value: { type: 'color-background' } }])
        .thresholds(limitThresholds())
        .sortBy([new TableSortByFieldStateBuilder().displayName('Used of limit').desc(true)])
        .span(12)
        .height(10),
    )
    .withPanel(
      new Table()
        .title('Usage vs limits by user')
        .description('Share of each limit used this billing period, sorted by the token ratio. Empty cells: no such limit.')
        .datasource(DS)
        .withTarget(query(limitRatio('tokens', m), { instant: true, table: true, refId: 'A' }))
        .withTarget(query(limitRatio('requests', m), { instant: true, table: true, refId: 'B' }))
        .withTarget(query(limitRatio('cost', m), { instant: true, table: true, refId: 'C' }))
        .withTransformation({ id: 'merge', options: {} })
        .withTransformation({
          id: 'organize',
          options: {
            excludeByName: { Time: true },
            renameByName: { 'Value #A': 'Tokens used', 'Value #B': 'Requests used', 'Value #C': 'Budget used' },
          },
        })
        .unit(UNIT.ratio)
        .overrideByRegexp('.* used', [{ id: 'custom.cellOptions', value: { type: 'color-background' } }])
        .thresholds(limitThresholds())
        .sortBy([new TableSortByFieldStateBuilder().displayName('Tokens used').desc(true)])
        .span(12)
        .height(10),
    )
    .withRow(new RowBuilder('Forecast'))
    .withPanel(
      forecastPanel(
        'tokens',
        'token limit',
        'A forecast, not a measurement: predict_linear over the period-tokens gauge, extended to the end of the plan\'s ' +
          'billing period, divided by the token limit. Unreliable in the first hours after a period starts.',
      ),
    )
    .withPanel(forecastPanel('cost', 'cost budget', 'A forecast, not a measurement (see the token forecast).'))
    .withPanel(
      new TimeSeries()
        .title('Share of token limit over time')
        .datasource(DS)
        .withTarget(query(limitRatio('tokens', m), { legend: userLegend }))
        .unit(UNIT.ratio)
        .thresholds(limitThresholds())
        .span(24),
    )
    .build();
}
