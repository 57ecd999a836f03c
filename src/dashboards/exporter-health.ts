/** The Exporter health dashboard: ingest outcomes, rejects, duplicates, ledger latency, series and overflow. */
import { DashboardBuilder, MappingType, RowBuilder, ThresholdsConfigBuilder, ThresholdsMode, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as Table } from '@grafana/grafana-foundation-sdk/table';
import { LABEL, METRIC, PROCESS_METRIC } from '../contract/names.js';
import { DS, EXPORTER_HEALTH_UID, UNIT, datasourceVariable, exportersUpPanel, query, statPanel, timeSeries, withDefaults } from './common.js';
import { SCRAPE_JOB, sel, sumIncreaseWithBirths, sumRate } from './promql.js';

export { EXPORTER_HEALTH_UID };

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
  const otlpQuantile = (q: number) =>
    `histogram_quantile(${q}, sum by (${LABEL.signal}, le) (rate(${sel(`${METRIC.otlpRequestDurationSeconds}_bucket`, { [LABEL.signal]: '!="other"' })}[$__rate_interval])))`;
  return withDefaults(new DashboardBuilder('tokenmeter / Exporter health'))
    .uid(EXPORTER_HEALTH_UID)
    .description('Is tokenmeter metering everything it receives? Ingest outcomes, rejects, duplicates, ledger and series.')
    .withVariable(datasourceVariable())
    .withRow(new RowBuilder('Status'))
    .withPanel(exportersUpPanel())
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
        .withTarget(query(sumIncreaseWithBirths(METRIC.ingestedSpansTotal, '$__range', [], { [LABEL.outcome]: '="duplicate"' }), { instant: true })),
    )
    .withPanel(
      statPanel('Rejected spans (time range)', UNIT.count)
        .withTarget(query(sumIncreaseWithBirths(METRIC.ingestedSpansTotal, '$__range', [], { [LABEL.outcome]: '="rejected"' }), { instant: true }))
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
      timeSeries('Spans ingested per second by outcome')
        .description(
          'priced: usage committed; ignored: not a GenAI span; duplicate: already counted; rejected: invalid usage; ' +
            'superseded: a framework span (LangChain, LlamaIndex...) whose call a provider-level span records (ingest.framework_spans). ' +
            'redated: priced spans whose end time was outside the accepted window (ingest.late_arrival_window, ingest.clock_skew), charged to their arrival.',
        )
        .withTarget(query(sumRate(METRIC.ingestedSpansTotal, '$__rate_interval', [LABEL.outcome]), { legend: `{{${LABEL.outcome}}}`, refId: 'A' }))
        .withTarget(query(sumRate(METRIC.redatedSpansTotal, '$__rate_interval', [LABEL.reason]), { legend: `redated: {{${LABEL.reason}}}`, refId: 'B' }))
        .unit(UNIT.perSecond)
        .span(12),
    )
    .withPanel(
      timeSeries('Rejects per second by reason')
        .description('Spans rejected (implausible usage...) and whole OTLP requests refused (malformed, too large...).')
        .withTarget(query(sumRate(METRIC.rejectedSpansTotal, '$__rate_interval', [LABEL.reason]), { legend: `span: {{${LABEL.reason}}}`, refId: 'A' }))
        .withTarget(
          query(sumRate(METRIC.rejectedRequestsTotal, '$__rate_interval', [LABEL.reason]), { legend: `request: {{${LABEL.reason}}}`, refId: 'B' }),
        )
        .unit(UNIT.perSecond)
        .span(12),
    )
    .withPanel(
      timeSeries('GenAI call spans without token counts per second')
        .description(
          'Billed anyway and flagged estimated (tokenmeter_estimated_tokens_total, the usage API\'s estimated_requests): ' +
            'estimated: tokens estimated from the prompt and completion the span carries; no_content / not_estimated: counted as a request with zero tokens. ' +
            'By the instrumentation convention that sent them.',
        )
        .withTarget(
          query(sumRate(METRIC.missingUsageSpansTotal, '$__rate_interval', [LABEL.source, LABEL.reason]), { legend: `{{${LABEL.source}}} {{${LABEL.reason}}}` }),
        )
        .unit(UNIT.perSecond)
        .span(12),
    )
    .withPanel(
      timeSeries('Cost reported by spans vs tokenmeter\'s, per second')
        .description(
          'The cost some instrumentations put on their spans (gen_ai.usage.cost, gen_ai.cost.*), never billed, next to tokenmeter\'s own cost of the same models.',
        )
        .withTarget(query(sumRate(METRIC.reportedCostUsdTotal, '$__rate_interval', [LABEL.provider, LABEL.model]), { legend: `reported: {{${LABEL.provider}}} {{${LABEL.model}}}`, refId: 'A' }))
        .withTarget(query(sumRate(METRIC.costUsdTotal, '$__rate_interval', [LABEL.provider, LABEL.model]), { legend: `tokenmeter: {{${LABEL.provider}}} {{${LABEL.model}}}`, refId: 'B' }))
        .unit(UNIT.usd)
        .span(12),
    )
    .withRow(new RowBuilder('OTLP requests'))
    .withPanel(
      timeSeries('OTLP requests per second by status code')
        .description('Every OTLP/HTTP request answered, by signal and HTTP status ("aborted": closed before an answer). 4xx and 5xx are usage not metered unless the sender retries (collectors drop 4xx).')
        .withTarget(
          query(sumRate(METRIC.otlpRequestsTotal, '$__rate_interval', [LABEL.signal, LABEL.code]), { legend: `{{${LABEL.signal}}} {{${LABEL.code}}}` }),
        )
        .unit(UNIT.perSecond)
        .span(12),
    )
    .withPanel(
      timeSeries('OTLP request latency')
        .description('From arrival to answer; for traces this includes the ledger commit (the answer waits for it).')
        .withTarget(query(otlpQuantile(0.5), { legend: `{{${LABEL.signal}}} p50`, refId: 'A' }))
        .withTarget(query(otlpQuantile(0.99), { legend: `{{${LABEL.signal}}} p99`, refId: 'B' }))
        .unit(UNIT.seconds)
        .span(12),
    )
    .withRow(new RowBuilder('Admission control'))
    .withPanel(
      timeSeries('Reservations held and expired')
        .description(
          'Reservations held now (granted, call not yet committed; per replica: on PostgreSQL every replica sees the shared table), ' +
            'and reservations that expired unsettled per second (a call whose span never arrived: an app that died, or a TTL shorter than its calls). ' +
            'Streams: reservation streams open per replica (one per app process; an app past the cap of 32 uses HTTP requests).',
        )
        .withTarget(query(`max by (instance) (${sel(METRIC.reservationsActive)})`, { legend: 'held {{instance}}', refId: 'A' }))
        .withTarget(query(`sum(rate(${sel(METRIC.reservationsExpiredTotal)}[$__rate_interval]))`, { legend: 'expired/s', refId: 'B' }))
        .withTarget(query(`max by (instance) (${sel(METRIC.reservationStreams)})`, { legend: 'streams {{instance}}', refId: 'C' }))
        .unit(UNIT.count)
        .span(12),
    )
    .withPanel(
      timeSeries('Reservation estimate accuracy (actual / estimate tokens)')
        .description(
          'How a settled call\'s real tokens compare with what its reservation held: below 1, estimates are generous (users near a ' +
            'limit are refused early); above 1, calls use more than held (the token and budget overshoot per concurrent call).',
        )
        .withTarget(query(`histogram_quantile(0.5, sum by (le) (rate(${sel(`${METRIC.reservationActualToEstimateRatio}_bucket`)}[$__rate_interval])))`, { legend: 'p50', refId: 'A' }))
        .withTarget(query(`histogram_quantile(0.99, sum by (le) (rate(${sel(`${METRIC.reservationActualToEstimateRatio}_bucket`)}[$__rate_interval])))`, { legend: 'p99', refId: 'B' }))
        .unit(UNIT.count)
        .span(12),
    )
    .withRow(new RowBuilder('Ledger'))
    .withPanel(
      timeSeries('Ledger commit latency')
        .description('Time to commit one OTLP request to the ledger, including the wait for its group commit.')
        .withTarget(query(latencyQuantile(0.5), { legend: 'p50', refId: 'A' }))
        .withTarget(query(latencyQuantile(0.99), { legend: 'p99', refId: 'B' }))
        .unit(UNIT.seconds)
        .span(12),
    )
    .withPanel(
      timeSeries('Ledger commits per second')
        .withTarget(query(`sum(rate(${sel(`${METRIC.ledgerCommitSeconds}_bucket`, { le: '="+Inf"' })}[$__rate_interval]))`, { legend: 'commits' }))
        .unit(UNIT.perSecond)
        .span(12),
    )
    .withPanel(
      timeSeries('Price reloads by outcome')
        .description(
          'SIGHUP or pricing.reload_interval: success (new prices in use), unchanged, failure (the new catalog or overrides were refused; the prices in use stay, the error is on the exporter\'s stderr).',
        )
        .withTarget(query(sumIncreaseWithBirths(METRIC.priceReloadTotal, '$__interval', [LABEL.outcome]), { legend: `{{${LABEL.outcome}}}` }))
        .unit(UNIT.count)
        .span(24),
    )
    .withRow(new RowBuilder('Series'))
    .withPanel(
      timeSeries('Per-user series by replica')
        .description('(user, plan) pairs with their own series, bounded by max_users; past it, calls go to user="__overflow__".')
        .withTarget(query(`max by (instance) (${sel(METRIC.userSeries)})`, { legend: '{{instance}}' }))
        .unit(UNIT.count)
        .span(8),
    )
    .withPanel(
      timeSeries('Calls attributed to the overflow user per second')
        .withTarget(query(sumRate(METRIC.userOverflowTotal, '$__rate_interval'), { legend: 'overflow' }))
        .unit(UNIT.perSecond)
        .span(8),
    )
    .withPanel(
      timeSeries('Series per scrape by replica')
        .description('All series on the exporter\'s /metrics (scrape_samples_scraped) and the scrape duration.')
        .withTarget(query(`max by (instance) (${sel('scrape_samples_scraped', job)})`, { legend: '{{instance}} series', refId: 'A' }))
        .withTarget(query(`max by (instance) (${sel('scrape_duration_seconds', job)})`, { legend: '{{instance}} scrape seconds', refId: 'B' }))
        .overrideByQuery('B', [{ id: 'unit', value: UNIT.seconds }, { id: 'custom.axisPlacement', value: 'right' }])
        .unit(UNIT.count)
        .span(8),
    )
    .withRow(new RowBuilder('Process'))
    .withPanel(
      timeSeries('CPU by replica')
        .description('CPU seconds per second (1 = one core busy).')
        .withTarget(query(`sum by (instance) (rate(${sel(PROCESS_METRIC.cpuSecondsTotal, job)}[$__rate_interval]))`, { legend: '{{instance}}' }))
        .unit(UNIT.count)
        .span(8),
    )
    .withPanel(
      timeSeries('Memory by replica')
        .description('Resident set size and the V8 heap in use.')
        .withTarget(query(`max by (instance) (${sel(PROCESS_METRIC.residentMemoryBytes, job)})`, { legend: '{{instance}} resident', refId: 'A' }))
        .withTarget(query(`max by (instance) (${sel(PROCESS_METRIC.heapUsedBytes, job)})`, { legend: '{{instance}} heap used', refId: 'B' }))
        .unit(UNIT.bytes)
        .span(8),
    )
    .withPanel(
      timeSeries('Event loop lag p99 by replica')
        .description('How long a ready callback waits for the event loop: scrapes of many series and large requests block it.')
        .withTarget(query(`max by (instance) (${sel(PROCESS_METRIC.eventLoopLagP99Seconds, job)})`, { legend: '{{instance}}' }))
        .unit(UNIT.seconds)
        .span(8),
    )
    .withPanel(
      new Table()
        .title('Replicas: version, Node.js, started')
        .description('tokenmeter_build_info and the process start time, per replica: spot a replica left on an old version.')
        .datasource(DS)
        .withTarget(
          query(`max by (instance, ${LABEL.version}, ${LABEL.nodeVersion}) (${sel(METRIC.buildInfo, job)}) * on (instance) group_left () max by (instance) (${sel(PROCESS_METRIC.startTimeSeconds, job)}) * 1000`, {
            instant: true,
            table: true,
          }),
        )
        .withTransformation({ id: 'organize', options: { excludeByName: { Time: true }, renameByName: { Value: 'Started' } } })
        .unit('dateTimeAsIso')
        .span(24),
    )
    .build();
}
