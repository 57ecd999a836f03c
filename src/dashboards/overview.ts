/** The Overview dashboard: spend, tokens and requests, cost rate, breakdowns, top users, data-quality figures. */
import { PanelBuilder as BarGauge } from '@grafana/grafana-foundation-sdk/bargauge';
import { BarGaugeDisplayMode, StackingConfigBuilder, StackingMode, TableSortByFieldStateBuilder, VizOrientation } from '@grafana/grafana-foundation-sdk/common';
import { DashboardBuilder, RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as Table } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeSeries } from '@grafana/grafana-foundation-sdk/timeseries';
import { LABEL, METRIC } from '../contract/names.js';
import { DS, UNIT, datasourceVariable, modelVariable, planVariable, plainThresholds, providerVariable, query, statPanel, withDefaults } from './common.js';
import { ledgerGauge, sumIncreaseWithBirths, sumRate, varMatchers } from './promql.js';

export const OVERVIEW_UID = 'tokenmeter-overview';

const f = varMatchers('plan', 'provider', 'model');
const planOnly = varMatchers('plan');

function stat(title: string, description: string, expr: string, unit: string) {
  return statPanel(title, unit).description(description).withTarget(query(expr, { instant: true })).span(4);
}

/** A horizontal bar gauge of one figure broken down by a label, highest first. */
function breakdown(title: string, expr: string, legend: string): BarGauge {
  return new BarGauge()
    .title(title)
    .datasource(DS)
    .withTarget(query(`sort_desc(${expr})`, { instant: true, legend }))
    .unit(UNIT.usd)
    .orientation(VizOrientation.Horizontal)
    .displayMode(BarGaugeDisplayMode.Basic)
    .thresholds(plainThresholds())
    .span(8);
}

export function overviewDashboard(): Dashboard {
  const totalTokens = sumIncreaseWithBirths(METRIC.tokensTotal, '$__range', [], f);
  const planTokenRate = sumRate(METRIC.tokensTotal, '$__rate_interval', [LABEL.plan], f);
  return withDefaults(new DashboardBuilder('tokenmeter / Overview'))
    .uid(OVERVIEW_UID)
    .description('What LLM calls cost: spend, tokens and requests by provider, model, plan and user.')
    .withVariable(datasourceVariable())
    .withVariable(planVariable())
    .withVariable(providerVariable())
    .withVariable(modelVariable())
    .withRow(new RowBuilder('Spend and volume'))
    .withPanel(
      stat(
        'Spend this billing period',
        'Exact month-to-date spend (or the configured billing period) from the ledger gauges tokenmeter_period_cost_usd, ' +
          'summed over users. Provider and model filters do not apply: the ledger keeps per-user totals.',
        `sum(${ledgerGauge(METRIC.periodCostUsd, planOnly)})`,
        UNIT.usd,
      ),
    )
    .withPanel(
      stat(
        'Spend today (UTC)',
        'Spend since 00:00 UTC from the cost counters. Prometheus extrapolates increase(), so this is close to, not ' +
          'exactly, the billed figure; the billing-period total is exact.',
        sumIncreaseWithBirths(METRIC.costUsdTotal, '$__range', [], f),
        UNIT.usd,
      ).timeFrom('now/d'),
    )
    .withPanel(stat('Tokens', 'Tokens of all five types in the selected time range.', totalTokens, UNIT.tokens))
    .withPanel(
      stat('Requests', 'LLM calls in the selected time range (successful and failed).', sumIncreaseWithBirths(METRIC.requestsTotal, '$__range', [], f), UNIT.requests),
    )
    .withPanel(
      stat(
        'Estimated tokens',
        'Share of tokens in the time range whose counts were estimated with a tokenizer because the provider did not ' +
          'report usage. 0 when every count is the provider\'s own.',
        `(${sumIncreaseWithBirths(METRIC.estimatedTokensTotal, '$__range', [], f)} or 0 * ${totalTokens}) / ${totalTokens}`,
        UNIT.ratio,
      ),
    )
    .withPanel(
      stat(
        'Unpriced tokens',
        'Tokens of models with no known price in the time range. They are never counted as free: configure a price.',
        `${sumIncreaseWithBirths(METRIC.unpricedTokensTotal, '$__range', [], varMatchers('provider', 'model'))} or 0 * ${totalTokens}`,
        UNIT.tokens,
      ),
    )
    .withRow(new RowBuilder('Rates'))
    .withPanel(
      new TimeSeries()
        .title('Cost rate by provider (USD per hour)')
        .datasource(DS)
        .withTarget(query(`${sumRate(METRIC.costUsdTotal, '$__rate_interval', [LABEL.provider], f)} * 3600`, { legend: `{{${LABEL.provider}}}` }))
        .unit(UNIT.usd)
        .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
        .fillOpacity(20)
        .span(12),
    )
    .withPanel(
      new TimeSeries()
        .title('Tokens per second by type')
        .datasource(DS)
        .withTarget(query(sumRate(METRIC.tokensTotal, '$__rate_interval', [LABEL.type], f), { legend: `{{${LABEL.type}}}` }))
        .unit('suffix: tokens/s')
        .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
        .fillOpacity(20)
        .span(12),
    )
    .withPanel(
      new TimeSeries()
        .title('Requests per second by outcome')
        .datasource(DS)
        .withTarget(query(sumRate(METRIC.requestsTotal, '$__rate_interval', [LABEL.outcome], f), { legend: `{{${LABEL.outcome}}}` }))
        .unit(UNIT.perSecond)
        .span(12),
    )
    .withPanel(
      new TimeSeries()
        .title('Cost rate by plan (USD per hour)')
        .datasource(DS)
        .withTarget(query(`${sumRate(METRIC.costUsdTotal, '$__rate_interval', [LABEL.plan], f)} * 3600`, { legend: `{{${LABEL.plan}}}` }))
        .unit(UNIT.usd)
        .span(12),
    )
    .withRow(new RowBuilder('Breakdowns'))
    .withPanel(breakdown('Spend by provider (time range)', sumIncreaseWithBirths(METRIC.costUsdTotal, '$__range', [LABEL.provider], f), `{{${LABEL.provider}}}`))
    .withPanel(
      breakdown(
        'Spend by plan (this billing period)',
        `sum by (${LABEL.plan}) (${ledgerGauge(METRIC.periodCostUsd, planOnly)})`,
        `{{${LABEL.plan}}}`,
      ).description('Exact, from the ledger gauges.'),
    )
    .withPanel(
      breakdown(
        'Spend by feature (time range)',
        sumIncreaseWithBirths(METRIC.featureCostUsdTotal, '$__range', [LABEL.feature], planOnly),
        `{{${LABEL.feature}}}`,
      ).description('By the tokenmeter.feature span attribute ("none" when absent).'),
    )
    .withPanel(
      new Table()
        .title('Spend and tokens by model (time range)')
        .datasource(DS)
        .withTarget(query(sumIncreaseWithBirths(METRIC.costUsdTotal, '$__range', [LABEL.provider, LABEL.model], f), { instant: true, table: true, refId: 'A' }))
        .withTarget(query(sumIncreaseWithBirths(METRIC.tokensTotal, '$__range', [LABEL.provider, LABEL.model], f), { instant: true, table: true, refId: 'B' }))
        .withTransformation({ id: 'merge', options: {} })
        .withTransformation({
          id: 'organize',
          options: { excludeByName: { Time: true }, renameByName: { 'Value #A': 'Spend (USD)', 'Value #B': 'Tokens' } },
        })
        .unit(UNIT.usd)
        .overrideByName('Tokens', [{ id: 'unit', value: UNIT.tokens }])
        .sortBy([new TableSortByFieldStateBuilder().displayName('Spend (USD)').desc(true)])
        .span(12),
    )
    .withPanel(
      new Table()
        .title('Top users by spend (this billing period)')
        .description('Exact, from the ledger gauges. "__overflow__" collects users past the exporter\'s max_users bound.')
        .datasource(DS)
        .withTarget(query(`topk(10, ${ledgerGauge(METRIC.periodCostUsd, planOnly)})`, { instant: true, table: true }))
        .withTransformation({ id: 'organize', options: { excludeByName: { Time: true }, renameByName: { Value: 'Spend (USD)' } } })
        .unit(UNIT.usd)
        .sortBy([new TableSortByFieldStateBuilder().displayName('Spend (USD)').desc(true)])
        .span(12),
    )
    .withPanel(
      new Table()
        .title('Unpriced tokens by model (time range)')
        .description('Models with no known price. Add them to the price overrides; until then their spend is missing.')
        .datasource(DS)
        .withTarget(
          query(`${sumIncreaseWithBirths(METRIC.unpricedTokensTotal, '$__range', [LABEL.provider, LABEL.model], varMatchers('provider', 'model'))} > 0`, {
            instant: true,
            table: true,
          }),
        )
        .withTransformation({ id: 'organize', options: { excludeByName: { Time: true }, renameByName: { Value: 'Unpriced tokens' } } })
        .unit(UNIT.tokens)
        .span(12),
    )
    .withPanel(
      new TimeSeries()
        .title('Share of estimated tokens by plan')
        .description('Tokens counted with a tokenizer estimate instead of the provider\'s report, as a share of all tokens.')
        .datasource(DS)
        .withTarget(
          query(
            `(${sumRate(METRIC.estimatedTokensTotal, '$__rate_interval', [LABEL.plan], f)} or 0 * ${planTokenRate}) / ${planTokenRate}`,
            { legend: `{{${LABEL.plan}}}` },
          ),
        )
        .unit(UNIT.ratio)
        .span(12),
    )
    .build();
}
