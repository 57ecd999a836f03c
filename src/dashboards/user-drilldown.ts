/** The User drill-down dashboard: one user (`$user`), their usage against limits and their rates. */
import { PanelBuilder as BarGauge } from '@grafana/grafana-foundation-sdk/bargauge';
import { DashboardBuilder, RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import type { PanelBuilder as TimeSeries } from '@grafana/grafana-foundation-sdk/timeseries';
import { LABEL, METRIC } from '../contract/names.js';
import { USER_DRILLDOWN_UID, UNIT, datasourceVariable, limitBarGauge, planVariable, query, statPanel, timeSeries, userVariable, withDefaults } from './common.js';
import { LIMIT_KINDS, ledgerGauge, limitRatio, periodForecast, sel, sumRate, type LimitKind } from './promql.js';
import { FORECAST_WINDOW } from './usage-limits.js';

export { USER_DRILLDOWN_UID };

/** One user, exactly (`user="$user"`): a single-value variable, so no regex escaping is involved. */
const u = { [LABEL.user]: `="$${LABEL.user}"`, [LABEL.plan]: `=~"$${LABEL.plan}"` };
const KIND_UNITS: Record<LimitKind, string> = { tokens: UNIT.tokens, requests: UNIT.requests, cost: UNIT.usd };
const TITLES: Record<LimitKind, string> = { tokens: 'Tokens', requests: 'Requests', cost: 'Spend' };
const GAUGE_LEGENDS: Record<LimitKind, string> = { tokens: 'tokens', requests: 'requests', cost: 'cost budget' };

function usedAndLimit(kind: LimitKind) {
  const k = LIMIT_KINDS[kind];
  return statPanel(`${TITLES[kind]} this billing period`, KIND_UNITS[kind])
    .description('Used so far (exact, from the ledger) and the user\'s limit; no limit value means unlimited.')
    .withTarget(query(ledgerGauge(k.period, u), { instant: true, legend: 'used', refId: 'A' }))
    .withTarget(query(ledgerGauge(k.limit, u), { instant: true, legend: 'limit', refId: 'B' }));
}

/** One instant query per limit kind (tokens A, requests B, cost C) on a bar gauge. */
function perLimit(gauge: BarGauge, expr: (kind: LimitKind) => string): BarGauge {
  for (const [refId, kind] of [['A', 'tokens'], ['B', 'requests'], ['C', 'cost']] as const) {
    gauge.withTarget(query(expr(kind), { instant: true, legend: GAUGE_LEGENDS[kind], refId }));
  }
  return gauge.span(12).height(8);
}

function periodVsLimit(kind: LimitKind): TimeSeries {
  const k = LIMIT_KINDS[kind];
  return timeSeries(`${TITLES[kind]} this billing period vs limit`)
    .withTarget(query(ledgerGauge(k.period, u), { legend: 'used', refId: 'A' }))
    .withTarget(query(ledgerGauge(k.limit, u), { legend: 'limit', refId: 'B' }))
    .unit(KIND_UNITS[kind])
    .overrideByName('limit', [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }])
    .span(12);
}

export function userDrilldownDashboard(): Dashboard {
  return withDefaults(new DashboardBuilder('tokenmeter / User'))
    .uid(USER_DRILLDOWN_UID)
    .description('One user\'s usage against their plan\'s limits, rates and forecast.')
    .withVariable(datasourceVariable())
    .withVariable(planVariable())
    .withVariable(userVariable(false))
    .withRow(new RowBuilder('This billing period'))
    .withPanel(usedAndLimit('tokens'))
    .withPanel(usedAndLimit('requests'))
    .withPanel(usedAndLimit('cost'))
    .withPanel(
      statPanel('Time left in billing period', UNIT.duration).withTarget(
        query(`min(${sel(METRIC.periodEndTimestampSeconds)} and on (${LABEL.plan}) ${ledgerGauge(METRIC.periodTokens, u)}) - time()`, { instant: true }),
      ),
    )
    .withPanel(perLimit(limitBarGauge('Share of limits used'), (kind) => limitRatio(kind, u)))
    .withPanel(
      perLimit(
        limitBarGauge(`Forecast at period end (linear over ${FORECAST_WINDOW})`).description(
          'A forecast, not a measurement: predict_linear extended to the end of the billing period, as a share of each limit.',
        ),
        (kind) => `${periodForecast(kind, FORECAST_WINDOW, u)} / ${ledgerGauge(LIMIT_KINDS[kind].limit, u)}`,
      ),
    )
    .withRow(new RowBuilder('Over time'))
    .withPanel(periodVsLimit('tokens'))
    .withPanel(periodVsLimit('cost'))
    .withPanel(
      timeSeries('Tokens per hour')
        .withTarget(query(`${sumRate(METRIC.userTokensTotal, '$__rate_interval', [LABEL.plan], u)} * 3600`, { legend: `{{${LABEL.plan}}}` }))
        .unit(UNIT.tokens)
        .span(12),
    )
    .withPanel(
      timeSeries('Spend per hour (USD)')
        .withTarget(query(`${sumRate(METRIC.userCostUsdTotal, '$__rate_interval', [LABEL.plan], u)} * 3600`, { legend: `{{${LABEL.plan}}}` }))
        .unit(UNIT.usd)
        .span(12),
    )
    .build();
}
