/** The Overview dashboard: spend, tokens and requests, cost rate, breakdowns, top users, data-quality figures. */
import { PanelBuilder as BarGauge } from '@grafana/grafana-foundation-sdk/bargauge';
import { BarGaugeDisplayMode, StackingConfigBuilder, StackingMode, TableSortByFieldStateBuilder, VizOrientation } from '@grafana/grafana-foundation-sdk/common';
import { DashboardBuilder, MappingType, RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as Table } from '@grafana/grafana-foundation-sdk/table';
import { COST_TYPE_FEE, LABEL, METRIC } from '../contract/names.js';
import { NEAR_LIMIT_RATIO, OVER_LIMIT_RATIO } from './alerts.js';
import {
  DS,
  EXPORTER_HEALTH_UID,
  UNIT,
  boardLink,
  datasourceVariable,
  exportersUpPanel,
  modelVariable,
  nearCountThresholds,
  overCountThresholds,
  planVariable,
  plainThresholds,
  providerVariable,
  query,
  statPanel,
  timeSeries,
  upShareThresholds,
  userDrilldownLink,
  withDefaults,
} from './common.js';
import { countFlaggedUsers, flaggedLimits, ledgerGauge, sumIncreaseWithBirths, sumRate, varMatchers } from './promql.js';
import { USAGE_LIMITS_UID } from './usage-limits.js';

export const OVERVIEW_UID = 'tokenmeter-overview';

const f = varMatchers('plan', 'provider', 'model');
const planOnly = varMatchers('plan');

function stat(title: string, description: string, expr: string, unit: string) {
  return statPanel(title, unit).description(description).withTarget(query(expr, { instant: true })).span(4);
}

/** A horizontal bar gauge of one figure broken down by a label, highest first. */
/** Spend and tokens per provider and model over the panel's range, as one table sorted by spend. */
function spendAndTokensByModel(title: string): Table {
  return new Table()
    .title(title)
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
    .span(12);
}

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

/** A month-to-date panel: Grafana's relative time "this month so far" (the dashboard is in UTC). */
const THIS_MONTH = 'now/M';

export function overviewDashboard(): Dashboard {
  const totalTokens = sumIncreaseWithBirths(METRIC.tokensTotal, '$__range', [], f);
  const planTokenRate = sumRate(METRIC.tokensTotal, '$__rate_interval', [LABEL.plan], f);
  const ledgerUp = `min(min by (instance) (${METRIC.ledgerUp}))`;
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
      stat(
        'Requests',
        'LLM calls in the selected time range (successful and failed).',
        sumIncreaseWithBirths(METRIC.requestsTotal, '$__range', [], f),
        UNIT.requests,
      ),
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
    .withRow(new RowBuilder('Limits and pipeline health'))
    .withPanel(
      stat(
        'Users over a limit',
        `Users at or above ${OVER_LIMIT_RATIO * 100}% of any of their limits this billing period (exact, from the ledger). ` +
          'Details in the Usage vs limits board.',
        countFlaggedUsers(flaggedLimits(OVER_LIMIT_RATIO, undefined, planOnly), planOnly),
        UNIT.count,
      )
        .thresholds(overCountThresholds())
        .links(boardLink('Usage vs limits', USAGE_LIMITS_UID))
        .span(4),
    )
    .withPanel(
      stat(
        'Users near a limit',
        `Users between ${NEAR_LIMIT_RATIO * 100}% and ${OVER_LIMIT_RATIO * 100}% of any of their limits this billing period.`,
        countFlaggedUsers(flaggedLimits(NEAR_LIMIT_RATIO, OVER_LIMIT_RATIO, planOnly), planOnly),
        UNIT.count,
      )
        .thresholds(nearCountThresholds())
        .links(boardLink('Usage vs limits', USAGE_LIMITS_UID))
        .span(4),
    )
    .withPanel(exportersUpPanel().links(boardLink('Exporter health', EXPORTER_HEALTH_UID)).span(6))
    .withPanel(
      stat(
        'Ledger',
        'The worst replica: 1 (up) when every replica\'s last ledger operation succeeded; 0 (down) while one answers OTLP with 503.',
        ledgerUp,
        UNIT.count,
      )
        .mappings([{ type: MappingType.ValueToText, options: { '0': { text: 'down', color: 'red' }, '1': { text: 'up', color: 'green' } } }])
        .thresholds(upShareThresholds())
        .links(boardLink('Exporter health', EXPORTER_HEALTH_UID))
        .span(4),
    )
    .withPanel(
      stat(
        'OTLP requests refused (time range)',
        'Whole OTLP requests the exporter refused (malformed, too large, wrong token, ledger unavailable): their usage ' +
          'is not metered unless the sender retries. By reason in the Exporter health board.',
        `${sumIncreaseWithBirths(METRIC.rejectedRequestsTotal, '$__range')} or vector(0)`,
        UNIT.count,
      )
        .thresholds(nearCountThresholds())
        .links(boardLink('Exporter health', EXPORTER_HEALTH_UID))
        .span(6),
    )
    .withRow(new RowBuilder('Rates'))
    .withPanel(
      timeSeries('Cost rate by provider (USD per hour)')
        .withTarget(query(`${sumRate(METRIC.costUsdTotal, '$__rate_interval', [LABEL.provider], f)} * 3600`, { legend: `{{${LABEL.provider}}}` }))
        .unit(UNIT.usd)
        .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
        .fillOpacity(20)
        .span(12),
    )
    .withPanel(
      timeSeries('Tokens per second by type')
        .withTarget(query(sumRate(METRIC.tokensTotal, '$__rate_interval', [LABEL.type], f), { legend: `{{${LABEL.type}}}` }))
        .unit(UNIT.tokensPerSecond)
        .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
        .fillOpacity(20)
        .span(12),
    )
    .withPanel(
      timeSeries('Requests per second by outcome')
        .withTarget(query(sumRate(METRIC.requestsTotal, '$__rate_interval', [LABEL.outcome], f), { legend: `{{${LABEL.outcome}}}` }))
        .unit(UNIT.perSecond)
        .span(12),
    )
    .withPanel(
      timeSeries('Cost rate by plan (USD per hour)')
        .withTarget(query(`${sumRate(METRIC.costUsdTotal, '$__rate_interval', [LABEL.plan], f)} * 3600`, { legend: `{{${LABEL.plan}}}` }))
        .unit(UNIT.usd)
        .span(12),
    )
    .withRow(new RowBuilder('This month (UTC calendar month so far)'))
    .withPanel(
      breakdown(
        'Spend this month by provider',
        sumIncreaseWithBirths(METRIC.costUsdTotal, '$__range', [LABEL.provider], f),
        `{{${LABEL.provider}}}`,
      )
        .description(
          'From the cost counters over the calendar month so far (UTC), whatever the dashboard\'s time range. Close to, ' +
            'not exactly, the billed figure (increase() extrapolates); needs Prometheus to keep at least 31 days.',
        )
        .timeFrom(THIS_MONTH)
        .span(12),
    )
    .withPanel(
      spendAndTokensByModel('Spend and tokens this month by model')
        .description('Per provider and model over the calendar month so far (UTC), whatever the dashboard\'s time range.')
        .timeFrom(THIS_MONTH),
    )
    .withRow(new RowBuilder('Breakdowns (time range)'))
    .withPanel(
      breakdown('Spend by provider (time range)', sumIncreaseWithBirths(METRIC.costUsdTotal, '$__range', [LABEL.provider], f), `{{${LABEL.provider}}}`),
    )
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
      breakdown('Spend by cost type (time range)', sumIncreaseWithBirths(METRIC.costUsdTotal, '$__range', [LABEL.type], f), `{{${LABEL.type}}}`).description(
        `The five token types and "${COST_TYPE_FEE}": per-call fees (web searches, search grounding queries), which have no tokens. Together they are the spend.`,
      ),
    )
    .withPanel(
      spendAndTokensByModel('Spend and tokens by model (time range)'),
    )
    .withPanel(
      new Table()
        .title('Top users by spend (this billing period)')
        .description(
          'Exact, from the ledger gauges: the 10 highest. "__overflow__" collects users past the exporter\'s max_users ' +
            'bound. Click a row for the user\'s drill-down.',
        )
        .datasource(DS)
        .withTarget(query(`topk(10, ${ledgerGauge(METRIC.periodCostUsd, planOnly)})`, { instant: true, table: true }))
        .withTransformation({ id: 'organize', options: { excludeByName: { Time: true }, renameByName: { Value: 'Spend (USD)' } } })
        .unit(UNIT.usd)
        .sortBy([new TableSortByFieldStateBuilder().displayName('Spend (USD)').desc(true)])
        .dataLinks(userDrilldownLink('row'))
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
      timeSeries('Share of estimated tokens by plan')
        .description('Tokens counted with a tokenizer estimate instead of the provider\'s report, as a share of all tokens.')
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
