/** The Usage vs limits dashboard: every user's share of their token, request and cost limits this billing period. */
import { TableSortByFieldStateBuilder } from '@grafana/grafana-foundation-sdk/common';
import { DashboardBuilder, RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as Table } from '@grafana/grafana-foundation-sdk/table';
import { LABEL, METRIC } from '../contract/names.js';
import { NEAR_LIMIT_RATIO, OVER_LIMIT_RATIO } from './alerts.js';
import type { PanelBuilder as TimeSeries } from '@grafana/grafana-foundation-sdk/timeseries';
import {
  DS,
  UNIT,
  datasourceVariable,
  limitBarGauge,
  limitThresholds,
  nearCountThresholds,
  overCountThresholds,
  planVariable,
  query,
  statPanel,
  timeSeries,
  userDrilldownLink,
  userVariable,
  withDefaults,
} from './common.js';
import {
  LIMIT_KINDS,
  LIMIT_LABEL as FLAGGED_LIMIT_LABEL,
  countFlaggedUsers,
  flaggedLimits,
  ledgerGauge,
  limitRatio,
  periodForecast,
  sel,
  sumIncreaseWithBirths,
  varMatchers,
  type LimitKind,
} from './promql.js';

export const USAGE_LIMITS_UID = 'tokenmeter-usage-limits';
/** The label the near/over table adds to say which limit a row is about. */
export const LIMIT_LABEL = FLAGGED_LIMIT_LABEL;
/**
 * At most this many users per panel: with max_users at 10,000 an unbounded per-user panel would draw 10,000 series.
 * Bar gauges and tables show the highest; time series the highest at each step.
 */
export const TOP_USERS = { barGauge: 20, table: 100, timeSeries: 10 } as const;
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
    .withTarget(query(`sort_desc(topk(${TOP_USERS.barGauge}, ${limitRatio(kind, m)}))`, { instant: true, legend: userLegend }))
    .dataLinks(userDrilldownLink('labels'))
    .span(8)
    .height(10);
}

/** A user's share of a limit at period end, extrapolated linearly. */
function forecastPanel(kind: LimitKind, title: string, description: string): TimeSeries {
  return timeSeries(`Forecast: share of ${title} at period end (linear over ${FORECAST_WINDOW})`)
    .description(`${description} The ${TOP_USERS.timeSeries} highest at each point in time.`)
    .withTarget(
      query(`topk(${TOP_USERS.timeSeries}, ${periodForecast(kind, FORECAST_WINDOW, m, varMatchers('plan'))} / ${ledgerGauge(LIMIT_KINDS[kind].limit, m)})`, {
        legend: userLegend,
      }),
    )
    .dataLinks(userDrilldownLink('labels'))
    .unit(UNIT.ratio)
    .thresholds(limitThresholds())
    .span(12);
}

/** Users with any ratio at or above `threshold` (and below `below`), one row per (user, plan, limit). */
function flagged(threshold: number, below?: number): string {
  return flaggedLimits(threshold, below, m);
}

function userCount(title: string, description: string, expr: string) {
  return statPanel(title, UNIT.count).description(description).withTarget(query(countFlaggedUsers(expr, m), { instant: true }));
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
      ).thresholds(overCountThresholds()),
    )
    .withPanel(
      userCount(
        'Users near a limit',
        `Users between ${NEAR_LIMIT_RATIO * 100}% and ${OVER_LIMIT_RATIO * 100}% of any of their limits.`,
        flagged(NEAR_LIMIT_RATIO, OVER_LIMIT_RATIO),
      ).thresholds(nearCountThresholds()),
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
        .description(
          `Every (user, plan, limit) at or above ${NEAR_LIMIT_RATIO * 100}% of the limit, highest first (the ${TOP_USERS.table} highest). ` +
            'Click a row for the user\'s drill-down.',
        )
        .datasource(DS)
        .withTarget(query(`sort_desc(topk(${TOP_USERS.table}, ${flagged(NEAR_LIMIT_RATIO)}))`, { instant: true, table: true }))
        .dataLinks(userDrilldownLink('row'))
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
        .description(
          `Share of each limit used this billing period, sorted by the token ratio: the ${TOP_USERS.table} highest of each ` +
            'limit. Empty cells: no such limit (or not among the highest). Click a row for the user\'s drill-down.',
        )
        .datasource(DS)
        .withTarget(query(`topk(${TOP_USERS.table}, ${limitRatio('tokens', m)})`, { instant: true, table: true, refId: 'A' }))
        .withTarget(query(`topk(${TOP_USERS.table}, ${limitRatio('requests', m)})`, { instant: true, table: true, refId: 'B' }))
        .withTarget(query(`topk(${TOP_USERS.table}, ${limitRatio('cost', m)})`, { instant: true, table: true, refId: 'C' }))
        .dataLinks(userDrilldownLink('row'))
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
    .withPanel(
      new Table()
        .title('Refused calls by user (admission control)')
        .description(
          'LLM calls refused before they were sent because they would take the user over a limit of their plan ' +
            '(withUser({ enforce: "block" }): the app got UsageLimitError), in the selected time range, the ' +
            `${TOP_USERS.table} users with the most. Users past limits.max_users are summed as __overflow__.`,
        )
        .datasource(DS)
        .withTarget(
          query(`sort_desc(topk(${TOP_USERS.table}, ${sumIncreaseWithBirths(METRIC.userRefusedCallsTotal, '$__range', [LABEL.user, LABEL.plan], m)} > 0))`, {
            instant: true,
            table: true,
          }),
        )
        .dataLinks(userDrilldownLink('row'))
        .withTransformation({ id: 'organize', options: { excludeByName: { Time: true }, renameByName: { Value: 'Refused calls' } } })
        .sortBy([new TableSortByFieldStateBuilder().displayName('Refused calls').desc(true)])
        .unit(UNIT.count)
        .span(12)
        .height(8),
    )
    .withPanel(
      timeSeries('Reservations by outcome and limit')
        .description(
          'Admission control answers per second: granted, refused (by the limit that refused), warned (enforce: "warn", sent anyway).',
        )
        .withTarget(query(`sum by (${LABEL.outcome}, ${LABEL.limit}) (rate(${sel(METRIC.reservationsTotal, varMatchers('plan'))}[$__rate_interval]))`, { legend: `{{${LABEL.outcome}}} {{${LABEL.limit}}}` }))
        .unit(UNIT.perSecond)
        .span(12),
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
      timeSeries('Share of token limit over time')
        .description(`The ${TOP_USERS.timeSeries} highest at each point in time.`)
        .withTarget(query(`topk(${TOP_USERS.timeSeries}, ${limitRatio('tokens', m)})`, { legend: userLegend }))
        .dataLinks(userDrilldownLink('labels'))
        .unit(UNIT.ratio)
        .thresholds(limitThresholds())
        .span(24),
    )
    .build();
}
