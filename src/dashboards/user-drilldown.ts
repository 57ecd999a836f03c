/** The User drill-down dashboard: one user (`$user`), their usage against limits and their rates. */
import { PanelBuilder as BarGauge } from '@grafana/grafana-foundation-sdk/bargauge';
import { BarGaugeDisplayMode, ReduceDataOptionsBuilder, VizOrientation } from '@grafana/grafana-foundation-sdk/common';
import { DashboardBuilder, RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as Stat } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeSeries } from '@grafana/grafana-foundation-sdk/timeseries';
import { LABEL, METRIC } from '../contract/names.js';
import { OVER_LIMIT_RATIO } from './alerts.js';
import { DS, UNIT, datasourceVariable, limitThresholds, planVariable, plainThresholds, query, userVariable, withDefaults } from './common.js';
import { LIMIT_KINDS, ledgerGauge, limitRatio, periodForecast, sel, sumRate, type LimitKind } from './promql.js';
import { FORECAST_WINDOW } from './usage-limits.js';

export const USER_DRILLDOWN_UID = 'tokenmeter-user';

/** One user, exactly (`user="$user"`): a single-value variable, so no regex escaping is involved. */
const u = { [LABEL.user]: `="$${LABEL.user}"`, [LABEL.plan]: `=~"$${LABEL.plan}"` };
const KIND_UNITS: Record<LimitKind, string> = { tokens: UNIT.tokens, requests: UNIT.requests, cost: UNIT.usd };
const TITLES: Record<LimitKind, string> = { tokens: 'Tokens', requests: 'Requests', cost: 'Spend' };

function usedAndLimit(kind: LimitKind): Stat {
  const k = LIMIT_KINDS[kind];
  return new Stat()
    .title(`${TITLES[kind]} this billing period`)
    .description('Used so far (exact, from the ledger) and the user\'s limit; no limit value means unlimited.')
    .datasource(DS)
    .withTarget(query(ledgerGauge(k.period, u), { instant: true, legend: 'used', refId: 'A' }))
    .withTarget(query(ledgerGauge(k.limit, u), { instant: true, legend: 'limit', refId: 'B' }))
    .unit(KIND_UNITS[kind])
    .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
    .thresholds(plainThresholds())
    .height(5)
    .span(6);
}

function periodVsLimit(kind: LimitKind): TimeSeries {
  const k = LIMIT_KINDS[kind];
  return new TimeSeries()
    .title(`${TITLES[kind]} this billing period vs limit`)
    .datasource(DS)
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
      new Stat()
        .title('Time left in billing period')
        .datasource(DS)
        .withTarget(
          query(
            `min(${sel(METRIC.periodEndTimestampSeconds)} and on (${LABEL.plan}) ${ledgerGauge(METRIC.periodTokens, u)}) - time()`,
            { instant: true },
          ),
        )
        .unit(UNIT.duration)
        .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
        .thresholds(plainThresholds())
        .height(5)
        .span(6),
    )
    .withPanel(
      new BarGauge()
        .title('Share of limits used')
        .datasource(DS)
        .withTarget(query(limitRatio('tokens', u), { instant: true, legend: 'tokens', refId: 'A' }))
        .withTarget(query(limitRatio('requests', u), { instant: true, legend: 'requests', refId: 'B' }))
        .withTarget(query(limitRatio('cost', u), { instant: true, legend: 'cost budget', refId: 'C' }))
        .unit(UNIT.ratio)
        .min(0)
        .max(OVER_LIMIT_RATIO)
        .thresholds(limitThresholds())
        .orientation(VizOrientation.Horizontal)
        .displayMode(BarGaugeDisplayMode.Gradient)
        .showUnfilled(true)
        .span(12)
        .height(8),
    )
    .withPanel(
      new BarGauge()
        .title(`Forecast at period end (linear over ${FORECAST_WINDOW})`)
        .description('A forecast, not a measurement: predict_linear extended to the end of the billing period, as a share of each limit.')
        .datasource(DS)
        .withTarget(
          query(`${periodForecast('tokens', FORECAST_WINDOW, u)} / ${ledgerGauge(METRIC.limitTokens, u)}`, { instant: true, legend: 'tokens', refId: 'A' }),
        )
        .withTarget(
          query(`${periodForecast('requests', FORECAST_WINDOW, u)} / ${ledgerGauge(METRIC.limitRequests, u)}`, {
            instant: true,
            legend: 'requests',
            refId: 'B',
          }),
        )
        .withTarget(
          query(`${periodForecast('cost', FORECAST_WINDOW, u)} / ${ledgerGauge(METRIC.limitCostUsd, u)}`, { instant: true, legend: 'cost budget', refId: 'C' }),
        )
        .unit(UNIT.ratio)
        .min(0)
        .max(OVER_LIMIT_RATIO)
        .thresholds(limitThresholds())
        .orientation(VizOrientation.Horizontal)
        .displayMode(BarGaugeDisplayMode.Gradient)
        .span(12)
        .height(8),
    )
    .withRow(new RowBuilder('Over time'))
    .withPanel(periodVsLimit('tokens'))
    .withPanel(periodVsLimit('cost'))
    .withPanel(
      new TimeSeries()
        .title('Tokens per hour')
        .datasource(DS)
        .withTarget(query(`${sumRate(METRIC.userTokensTotal, '$__rate_interval', [LABEL.plan], u)} * 3600`, { legend: `{{${LABEL.plan}}}` }))
        .unit(UNIT.tokens)
        .span(12),
    )
    .withPanel(
      new TimeSeries()
        .title('Spend per hour (USD)')
        .datasource(DS)
        .withTarget(query(`${sumRate(METRIC.userCostUsdTotal, '$__rate_interval', [LABEL.plan], u)} * 3600`, { legend: `{{${LABEL.plan}}}` }))
        .unit(UNIT.usd)
        .span(12),
    )
    .build();
}
