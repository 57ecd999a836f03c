/** The Exporter health dashboard: ingest outcomes, rejects, duplicates, ledger latency, series and overflow. */
import { DashboardBuilder, MappingType, RowBuilder, ThresholdsConfigBuilder, ThresholdsMode, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as TimeSeries } from '@grafana/grafana-foundation-sdk/timeseries';
import { LABEL, METRIC } from '../contract/names.js';
import { DS, UNIT, datasourceVariable, query, statPanel, withDefaults } from './common.js';
import { SCRAPE_JOB, sel, sumGrowth, sumRate } from './promql.js';

export const EXPORTER_HEALTH_UID = 'tokenmeter-exporter-health';

const job = { job: `="${SCRAPE_JOB}"` };

function upDownThresholds(): ThresholdsConfigBuilder {
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
    { value: null, color: 'red' },
    { value: 1, color: 'green' },
  ]);
}

function latencyQuantile(q: number): string {
  return `histogram_quantile(${q}, sum by (le) (rate(${sel(`${METRIC.ledgerCommitSeconds}_bucket`)}[$__rate_interval])))`;
}

export function exporterHealthDashboard(): Dashboard {
  return withDefaults(new DashboardBuilder('tokenmeter / Exporter health'))
    .uid(EXPORTER_HEALTH_UID)
    .description('Is tokenmeter metering everything it receives? Ingest outcomes, rejects, duplicates, ledger and series.')
    .withVariable(datasourceVariable())
    .withRow(new RowBuilder('Status'))
    .withPanel(
      statPanel('Exporters up', UNIT.count)
        .description(`Scrape targets of job "${SCRAPE_JOB}" that answer.`)
        .withTarget(query(`sum(${sel('up', job)})`, { instant: true }))
        .thresholds(upDownThresholds()),
    )
    .withPanel(
      statPanel('Ledger', UNIT.count)
        .description('Per replica: 1 when its last ledger operation succeeded. While 0 the replica answers OTLP with 503.')
        .withTarget(query(`min by (instance) (${sel(METRIC.ledgerUp)})`, { instant: true, legend: '{{instance}}' }))
        .mappings([{ type: MappingType.ValueToText, options: { '0': { text: 'down', color: 'red' }, '1': { text: 'up', color: 'green' } } }])
        .thresholds(upDownThresholds()),
    )
    .withPanel(
      statPanel('Duplicate spans (time range)', UNIT.count)
        .description('Spans received again (retries, replays) and counted once: exactly-once by trace id + span id.')
        .withTarget(query(sumGrowth(METRIC.ingestedSpansTotal, '$__range', [], { [LABEL.outcome]: '="duplicate"' }), { instant: true })),
    )
    .withPanel(
      statPanel('Rejected spans (time range)', UNIT.count)
        .withTarget(query(sumGrowth(METRIC.ingestedSpansTotal, '$__range', [], { [LABEL.outcome]: '="rejected"' }), { instant: true }))
        .thresholds(
          new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
            { value: null, color: 'green' },
            { value: 1, color: 'orange' },
          ]),
        )
        .height(5)
        .span(6),
    )
    .withRow(new RowBuilder('Ingest'))
    .withPanel(
      new TimeSeries()
        .title('Spans ingested per second by outcome')
        .description(
          'priced: usage committed; ignored: not a GenAI span; duplicate: already counted; rejected: invalid usage. ' +
            'redated: priced spans whose end time was outside the accepted window (ingest.late_arrival_window, ingest.clock_skew), charged to their arrival.',
        )
        .datasource(DS)
        .withTarget(query(sumRate(METRIC.ingestedSpansTotal, '$__rate_interval', [LABEL.outcome]), { legend: `{{${LABEL.outcome}}}`, refId: 'A' }))
        .withTarget(query(sumRate(METRIC.redatedSpansTotal, '$__rate_interval', [LABEL.reason]), { legend: `redated: {{${LABEL.reason}}}`, refId: 'B' }))
        .unit(UNIT.perSecond)
        .span(12),
    )
    .withPanel(
      new TimeSeries()
        .title('Rejects per second by reason')
        .description('Spans rejected (implausible usage...) and whole OTLP requests refused (malformed, too large...).')
        .datasource(DS)
        .withTarget(query(sumRate(METRIC.rejectedSpansTotal, '$__rate_interval', [LABEL.reason]), { legend: `span: {{${LABEL.reason}}}`, refId: 'A' }))
        .withTarget(
          query(sumRate(METRIC.rejectedRequestsTotal, '$__rate_interval', [LABEL.reason]), { legend: `request: {{${LABEL.reason}}}`, refId: 'B' }),
        )
        .unit(UNIT.perSecond)
        .span(12),
    )
    .withRow(new RowBuilder('Ledger'))
    .withPanel(
      new TimeSeries()
        .title('Ledger commit latency')
        .description('Time to commit one OTLP request to the ledger, including the wait for its group commit.')
        .datasource(DS)
        .withTarget(query(latencyQuantile(0.5), { legend: 'p50', refId: 'A' }))
        .withTarget(query(latencyQuantile(0.99), { legend: 'p99', refId: 'B' }))
        .unit(UNIT.seconds)
        .span(12),
    )
    .withPanel(
      new TimeSeries()
        .title('Ledger commits per second')
        .datasource(DS)
        .withTarget(query(`sum(rate(${sel(`${METRIC.ledgerCommitSeconds}_bucket`, { le: '="+Inf"' })}[$__rate_interval]))`, { legend: 'commits' }))
        .unit(UNIT.perSecond)
        .span(12),
    )
    .withRow(new RowBuilder('Series'))
    .withPanel(
      new TimeSeries()
        .title('Per-user series by replica')
        .description('(user, plan) pairs with their own series, bounded by max_users; past it, calls go to user="__overflow__".')
        .datasource(DS)
        .withTarget(query(`max by (instance) (${sel(METRIC.userSeries)})`, { legend: '{{instance}}' }))
        .unit(UNIT.count)
        .span(8),
    )
    .withPanel(
      new TimeSeries()
        .title('Calls attributed to the overflow user per second')
        .datasource(DS)
        .withTarget(query(sumRate(METRIC.userOverflowTotal, '$__rate_interval'), { legend: 'overflow' }))
        .unit(UNIT.perSecond)
        .span(8),
    )
    .withPanel(
      new TimeSeries()
        .title('Series per scrape by replica')
        .description('All series on the exporter\'s /metrics (scrape_samples_scraped) and the scrape duration.')
        .datasource(DS)
        .withTarget(query(`max by (instance) (${sel('scrape_samples_scraped', job)})`, { legend: '{{instance}} series', refId: 'A' }))
        .withTarget(query(`max by (instance) (${sel('scrape_duration_seconds', job)})`, { legend: '{{instance}} scrape seconds', refId: 'B' }))
        .overrideByQuery('B', [{ id: 'unit', value: UNIT.seconds }, { id: 'custom.axisPlacement', value: 'right' }])
        .unit(UNIT.count)
        .span(8),
    )
    .build();
}
