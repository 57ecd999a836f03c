// Section 1: added overhead per SDK call. Each variant runs in its own processes, round-robin so that a busy
// moment of the (shared) machine is spread over every variant rather than landing on one.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runChild } from '../lib/child.mjs';
import { ensureDeps } from '../lib/deps.mjs';
import { bootstrapInterval, fmt, fmtRange, median, summary } from '../lib/stats.mjs';

const CHILD = fileURLToPath(new URL('./child.mjs', import.meta.url));
const NODE_SH = fileURLToPath(new URL('../../.ci/node.sh', import.meta.url));

/*
 * The runtimes the section runs on. `current`: the Node running the bench with the project's dev dependencies
 * (openai 6, the OpenTelemetry 2.x line). `newest`: what a new app installs today, on the newest Node LTS: the
 * newest openai and Anthropic SDKs, the newest peer instrumentations and the OpenTelemetry 3.x SDK line, which
 * need Node 22+ (so they cannot be the project's own dev dependencies). tokenmeter is the same build in both.
 */
export const RUNTIMES = {
  current: { label: `Node ${process.version}, the project's dev dependencies` },
  newest: {
    node: '24.22.3',
    packages: {
      openai: '7.59.0',
      '@anthropic-ai/sdk': '1.16.0',
      '@opentelemetry/instrumentation-openai': '0.22.0',
      '@traceloop/instrumentation-openai': '0.27.0',
      '@traceloop/instrumentation-anthropic': '0.27.0',
      '@opentelemetry/api': '1.10.0',
      '@opentelemetry/sdk-trace': '3.1.1',
      '@opentelemetry/sdk-metrics': '3.1.1',
      '@opentelemetry/instrumentation': '0.301.1',
      '@opentelemetry/context-async-hooks': '3.1.1',
    },
    label: 'Node 24.22.3, the newest SDKs, peers and OpenTelemetry 3.x',
  },
  // No peer instruments openai 7 yet (@opentelemetry/instrumentation-openai 0.22 and OpenLLMetry 0.27 declare
  // <7), so the OpenAI comparison with them is also run on the newest openai release they do instrument.
  'newest-openai6': {
    node: '24.22.3',
    providers: ['openai'],
    packages: {
      openai: '6.49.0',
      '@opentelemetry/instrumentation-openai': '0.22.0',
      '@traceloop/instrumentation-openai': '0.27.0',
      '@opentelemetry/api': '1.10.0',
      '@opentelemetry/sdk-trace': '3.1.1',
      '@opentelemetry/sdk-metrics': '3.1.1',
      '@opentelemetry/instrumentation': '0.301.1',
      '@opentelemetry/context-async-hooks': '3.1.1',
    },
    label: 'Node 24.22.3, openai 6.49 (the newest the peers instrument), the newest peers and OpenTelemetry 3.x',
  },
};

function prepareRuntime(id, log) {
  const rt = RUNTIMES[id];
  if (rt === undefined) throw new Error(`unknown runtime ${id} (${Object.keys(RUNTIMES).join(', ')})`);
  const providers = rt.providers ?? Object.keys(VARIANTS);
  if (rt.node === undefined) return { id, label: rt.label, providers, execPath: undefined, env: {} };
  // The newest-Node blocks run more processes, each shorter (cfg.newest): there one bare span costs a few µs, less
  // than a process's own offset, so the process count, not the calls per process, decides what a run resolves.
  log(`instrumentation: preparing runtime ${id} (node ${rt.node} and ${Object.keys(rt.packages).length} packages)`);
  const bin = execFileSync('bash', [NODE_SH, rt.node], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const deps = ensureDeps(id, rt.packages, log);
  return { id, label: rt.label, providers, execPath: `${bin}/node`, env: { BENCH_DEPS_DIR: deps }, newest: true };
}

export const VARIANTS = {
  openai: [
    { id: 'bare', label: 'bare `openai` SDK', peer: false },
    { id: 'bare-context', label: 'diagnostic: bare SDK, async context tracking on', peer: false, floor: true },
    { id: 'span-floor', label: 'diagnostic: floor, one bare span per call (no attributes, usage or metrics)', peer: false, floor: true },
    { id: 'tokenmeter', label: 'tokenmeter', peer: false },
    { id: 'tokenmeter-nometrics', label: 'diagnostic: tokenmeter, no MeterProvider', peer: false },
    { id: 'tokenmeter-sdkhist', label: "diagnostic: tokenmeter, GenAI histograms through the SDK (an app's own MeterProvider, no tokenmeter MetricProducer)", peer: false },
    { id: 'otel-contrib', label: '@opentelemetry/instrumentation-openai', peer: true },
    { id: 'traceloop', label: '@traceloop/instrumentation-openai (OpenLLMetry)', peer: true },
  ],
  anthropic: [
    { id: 'bare', label: 'bare `@anthropic-ai/sdk`', peer: false },
    { id: 'bare-context', label: 'diagnostic: bare SDK, async context tracking on', peer: false, floor: true },
    { id: 'span-floor', label: 'diagnostic: floor, one bare span per call (no attributes, usage or metrics)', peer: false, floor: true },
    { id: 'tokenmeter', label: 'tokenmeter', peer: false },
    { id: 'tokenmeter-nometrics', label: 'diagnostic: tokenmeter, no MeterProvider', peer: false },
    { id: 'tokenmeter-sdkhist', label: "diagnostic: tokenmeter, GenAI histograms through the SDK (an app's own MeterProvider, no tokenmeter MetricProducer)", peer: false },
    { id: 'traceloop', label: '@traceloop/instrumentation-anthropic (OpenLLMetry)', peer: true },
    { id: 'sdk-builtin', label: "the Anthropic SDK's own OTel spans (ANTHROPIC_OPEN_TELEMETRY)", peer: true },
  ],
};

export async function benchInstrumentation(cfg, log) {
  const runtimes = (cfg.runtimes ?? ['current']).map((id) => prepareRuntime(id, log));
  const results = [];
  const ratios = {};
  for (const rt of runtimes) {
    const one = await benchRuntime(cfg, rt, log);
    results.push(...one.results);
    ratios[rt.id] = one.ratios;
  }
  return { config: cfg, runtimes: runtimes.map((rt) => ({ id: rt.id, label: rt.label, providers: rt.providers, size: runtimeSize(cfg, rt) })), results, ratios };
}

/** Processes per variant, warm-up calls and batches of a runtime's block (cfg.newest overrides for Node 24). */
function runtimeSize(cfg, rt) {
  const o = rt.newest ? (cfg.newest ?? {}) : {};
  return { processes: o.processes ?? cfg.processes, warmup: o.warmup ?? cfg.warmup, batches: o.batches ?? cfg.batches, batchSize: o.batchSize ?? cfg.batchSize };
}

/*
 * The goal's comparisons, judged with their noise. A margin is (tokenmeter's added µs) − k × (the other's added µs),
 * each "added" against the bare SDK of the same run, on one estimate (the median of the processes, or the fastest
 * process); its 95% interval comes from resampling the processes of the three variants (bootstrap). A comparison
 * is met when the whole interval is ≤ 0, not met when the whole interval is > 0, and undecided otherwise: the run
 * never reports met (or not met) from noise.
 */
const ESTIMATORS = { median, fastest: (xs) => Math.min(...xs) };
function marginOf(tmProcs, otherProcs, bareProcs, k, estimator) {
  const f = ESTIMATORS[estimator];
  const m = bootstrapInterval([tmProcs, otherProcs, bareProcs], (t, o, b) => {
    const fb = f(b);
    return f(t) - fb - k * (f(o) - fb);
  });
  return { ...m, verdict: m.hi <= 0 ? 'met' : m.lo > 0 ? 'not met' : 'undecided' };
}

async function benchRuntime(cfg, rt, log) {
  const runs = {};
  const size = runtimeSize(cfg, rt);
  for (let p = 0; p < size.processes; p++) {
    for (const provider of rt.providers) {
      for (const v of VARIANTS[provider]) {
        log(`instrumentation [${rt.id}]: ${provider}/${v.id} process ${p + 1}/${size.processes}`);
        const r = await runChild(CHILD, [provider, v.id, String(size.warmup), String(size.batches), String(size.batchSize)], { execPath: rt.execPath, env: rt.env });
        (runs[`${provider}/${v.id}`] ??= []).push(r);
      }
    }
  }
  const results = [];
  for (const provider of rt.providers) {
    const bare = runs[`${provider}/bare`];
    const bareSum = { json: summary(bare.map((r) => r.json.perCallMicros)), stream: summary(bare.map((r) => r.stream.perCallMicros)) };
    const bareMed = { json: bareSum.json.median, stream: bareSum.stream.median };
    for (const v of VARIANTS[provider]) {
      const rs = runs[`${provider}/${v.id}`];
      const row = { runtime: rt.id, node: rs[0].node, sdkVersion: rs[0].sdkVersion, otelVersion: rs[0].otelVersion, provider, variant: v.id, label: v.label, peer: v.peer, version: rs[0].version, notes: rs[0].notes, metrics: rs[0].metricNames };
      // tokenmeter: one duration and two token-usage points per call (and time to first chunk per stream), in every
      // process; null for the other variants (not checked).
      if (rs[0].metricsEveryCall !== undefined && rs[0].metricsEveryCall !== null) row.metricsEveryCall = rs.every((r) => r.metricsEveryCall === true);
      for (const mode of ['json', 'stream']) {
        const per = summary(rs.map((r) => r[mode].perCallMicros));
        const checks = rs.map((r) => r[mode].check);
        row[mode] = {
          perCallMicros: per,
          // Each process's figure (its fastest batch), for the goal's noise intervals.
          processMicros: rs.map((r) => r[mode].perCallMicros),
          addedMicros: { median: per.median - bareMed[mode], min: per.min - bareMed[mode], max: per.max - bareMed[mode] },
          // The second estimate: fastest process against the bare SDK's fastest process (interference only adds).
          addedFromFastestMicros: per.min - bareSum[mode].min,
          timesBare: per.median / bareMed[mode],
          spansPerCall: checks.reduce((a, c) => a + c.spans, 0) / checks.reduce((a, c) => a + c.calls, 0),
          usageCaptured: v.id === 'bare' || v.floor ? null : checks.every((c) => c.spans === c.calls && c.spansWithUsage === c.calls),
          check: checks[checks.length - 1],
        };
      }
      results.push(row);
    }
  }
  const ratios = {};
  for (const provider of rt.providers) {
    const rows = results.filter((r) => r.provider === provider);
    const tm = rows.find((r) => r.variant === 'tokenmeter');
    ratios[provider] = {};
    for (const mode of ['json', 'stream']) {
      const peers = rows.filter((r) => r.peer);
      const best = peers.reduce((a, b) => (b[mode].addedMicros.median < a[mode].addedMicros.median ? b : a));
      const bestFast = peers.reduce((a, b) => (b[mode].addedFromFastestMicros < a[mode].addedFromFastestMicros ? b : a));
      const bestWithUsage = peers.filter((r) => r[mode].usageCaptured).reduce((a, b) => (a === undefined || b[mode].addedMicros.median < a[mode].addedMicros.median ? b : a), undefined);
      const ratio = tm[mode].addedMicros.median / best[mode].addedMicros.median;
      const ratioFromFastest = tm[mode].addedFromFastestMicros / bestFast[mode].addedFromFastestMicros;
      // The goal is judged on both estimates. When the bare SDK's own spread across processes exceeds the best
      // peer's overhead, or an overhead comes out negative, the machine's noise is larger than what is measured:
      // the run says nothing either way (reported as inconclusive, never as met).
      const bareRow = rows.find((r) => r.variant === 'bare');
      const bareSpreadMicros = bareRow[mode].perCallMicros.max - bareRow[mode].perCallMicros.min;
      // With fewer than 3 processes (--quick) there is no spread to judge the noise by.
      const conclusive =
        size.processes >= 3 &&
        best[mode].addedMicros.median > 0 && bestFast[mode].addedFromFastestMicros > 0 && tm[mode].addedMicros.median >= 0 && tm[mode].addedFromFastestMicros >= 0 && bareSpreadMicros < best[mode].addedMicros.median;
      const floor = rows.find((r) => r.variant === 'span-floor');
      const context = rows.find((r) => r.variant === 'bare-context');
      // The goal (issue 11, replacing issue 7's): no more overhead than the peer that records the same signals (a
      // span with the usage plus the GenAI metrics), and within 1.5x of one bare span per call, on both estimates.
      // For OpenAI that peer is the OTel contrib instrumentation. No Anthropic peer records the GenAI metrics, so
      // there the comparison is with the cheapest peer whose spans carry the usage (a smaller signal set: stricter).
      const signalPeer = provider === 'openai' ? rows.find((r) => r.variant === 'otel-contrib') : bestWithUsage;
      const floorLimit = { median: 1.5 * (floor?.[mode].addedMicros.median ?? NaN), fastest: 1.5 * (floor?.[mode].addedFromFastestMicros ?? NaN) };
      // A peer that made no span per call does not instrument this SDK release: nothing to compare with here.
      const peerApplies = signalPeer !== undefined && signalPeer[mode].spansPerCall === 1;
      const peerOk = peerApplies && tm[mode].addedMicros.median <= signalPeer[mode].addedMicros.median && tm[mode].addedFromFastestMicros <= signalPeer[mode].addedFromFastestMicros;
      const floorOk = tm[mode].addedMicros.median <= floorLimit.median && tm[mode].addedFromFastestMicros <= floorLimit.fastest;
      // Each of the four comparisons (peer and floor, median and fastest) with its 95% interval. A floor that
      // comes out ≤ 0 on an estimate (a span cannot cost nothing) leaves that estimate's floor comparison undecided;
      // with fewer than 3 processes (--quick) nothing is decided.
      const margins = {};
      for (const est of ['median', 'fastest']) {
        const floorAdded = est === 'median' ? floor?.[mode].addedMicros.median : floor?.[mode].addedFromFastestMicros;
        const floorM = floor === undefined ? undefined : marginOf(tm[mode].processMicros, floor[mode].processMicros, bareRow[mode].processMicros, 1.5, est);
        if (floorM !== undefined && !(floorAdded > 0)) floorM.verdict = 'undecided';
        const peerM = peerApplies ? marginOf(tm[mode].processMicros, signalPeer[mode].processMicros, bareRow[mode].processMicros, 1, est) : undefined;
        margins[est] = { floor: floorM, peer: peerM };
      }
      const parts = [margins.median.floor, margins.fastest.floor, margins.median.peer, margins.fastest.peer];
      const verdict =
        size.processes < 3 || !peerApplies || floor === undefined
          ? 'undecided'
          : parts.some((m) => m.verdict === 'not met')
            ? 'not met'
            : parts.every((m) => m.verdict === 'met')
              ? 'met'
              : 'undecided';
      const goalConclusive = verdict !== 'undecided';
      ratios[provider][mode] = {
        tokenmeterAddedMicros: tm[mode].addedMicros.median,
        bestPeer: best.variant,
        bestPeerAddedMicros: best[mode].addedMicros.median,
        ratio,
        tokenmeterAddedFromFastestMicros: tm[mode].addedFromFastestMicros,
        bestPeerFromFastest: bestFast.variant,
        bestPeerAddedFromFastestMicros: bestFast[mode].addedFromFastestMicros,
        ratioFromFastest,
        bareSpreadMicros,
        conclusive,
        // Issue 7's goal (≤ ½ the best peer), kept for comparison with earlier runs.
        halfOfBestPeerMet: conclusive && ratio <= 0.5 && ratioFromFastest <= 0.5,
        signalPeer: signalPeer?.variant,
        signalPeerAddedMicros: signalPeer?.[mode].addedMicros.median,
        signalPeerAddedFromFastestMicros: signalPeer?.[mode].addedFromFastestMicros,
        floorLimitMicros: floorLimit.median,
        floorLimitFromFastestMicros: floorLimit.fastest,
        peerOk,
        floorOk,
        goalConclusive,
        peerApplies,
        goalMet: verdict === 'met',
        goalVerdict: verdict,
        // { median, fastest } × { floor, peer }: { estimate, lo, hi, verdict } of tokenmeter − the limit, in µs.
        margins,
        processes: size.processes,
        bestPeerWithUsage: bestWithUsage?.variant,
        ratioVsBestPeerWithUsage: bestWithUsage ? tm[mode].addedMicros.median / bestWithUsage[mode].addedMicros.median : undefined,
        // The floors: what the bare SDK pays once async context tracking is on, and one bare span per call.
        contextAddedMicros: context?.[mode].addedMicros.median,
        spanFloorAddedMicros: floor?.[mode].addedMicros.median,
        contextAddedFromFastestMicros: context?.[mode].addedFromFastestMicros,
        spanFloorAddedFromFastestMicros: floor?.[mode].addedFromFastestMicros,
      };
    }
  }
  return { results, ratios };
}

const MODE_NAME = { json: 'non-streaming', stream: `${20}-chunk stream` };

export function instrumentationMarkdown(data) {
  const out = [];
  const c = data.config;
  out.push(
    `Per-call time of a chat call through the real SDK with a canned \`fetch\` (no network), spans into ` +
      `\`SimpleSpanProcessor(InMemorySpanExporter)\` on the line's tracer provider, a \`MeterProvider\` registered (for tokenmeter, its reader carries tokenmeter's MetricProducer, as \`tokenmeter/register\` puts on each of its readers). ` +
      `${c.processes} process(es) per variant, ${c.warmup} warm-up calls, then ${c.batches} batches of ${c.batchSize} sequential calls (the Node 24 blocks: as said under their heading); ` +
      `a process's figure is its fastest batch (the machine is shared with other work, which only ever adds time); the table gives the median and range (min–max) of those across processes. ` +
      `"Added" is the variant's median minus the bare SDK's median in the same run; the second estimate ("fastest") is the variant's fastest process minus the bare SDK's fastest process. ` +
      `Each runtime below is measured in its own processes; compare figures within a runtime. ` +
      `The goal's verdict judges each comparison with its noise: the margin (tokenmeter's added µs minus the limit) gets a 95% interval by resampling the processes (bootstrap); ` +
      `met only when every interval is ≤ 0, not met when one is wholly > 0, inconclusive otherwise.`,
    '',
  );
  const runtimes = data.runtimes ?? [{ id: 'current', label: 'the project\'s dev dependencies' }];
  for (const rt of runtimes) {
    const rtResults = data.results.filter((x) => (x.runtime ?? 'current') === rt.id);
    const rtRatios = data.ratios[rt.id] ?? data.ratios;
    const node = rtResults[0]?.node ?? '';
    out.push(`#### ${rt.label}${node ? ` (${node}, OpenTelemetry SDK ${rtResults[0].otelVersion})` : ''}`, '');
    if (rt.size !== undefined) out.push(`${rt.size.processes} process(es) per variant, ${rt.size.warmup} warm-up calls, then ${rt.size.batches} batches of ${rt.size.batchSize} calls.`, '');
    for (const provider of rt.providers ?? Object.keys(VARIANTS)) {
      const rows = rtResults.filter((x) => x.provider === provider);
      if (rows.length === 0) continue;
      const sdk = rows[0].sdkVersion ?? '';
      out.push(`**${provider === 'openai' ? `OpenAI (\`openai\` ${sdk}, chat.completions.create)` : `Anthropic (\`@anthropic-ai/sdk\` ${sdk}, messages.create)`}**`, '');
      out.push('| variant | version | mode | µs/call median (range) | added µs (range) | × bare | spans/call | real usage on every span | metrics recorded |');
      out.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
      for (const r of rows) {
        for (const mode of ['json', 'stream']) {
          const m = r[mode];
          const usage = m.usageCaptured === null ? '—' : m.usageCaptured ? 'yes' : `**NO** (${m.check.spansWithUsage}/${m.check.calls} spans with usage${m.check.spansWithWrongUsage ? `, ${m.check.spansWithWrongUsage} wrong` : ''})`;
          const added = r.variant === 'bare' ? '—' : fmtRange(m.addedMicros);
          const everyCall = r.metricsEveryCall === true ? ' (every call)' : r.metricsEveryCall === false ? ' — **points missing**' : '';
          out.push(`| ${r.label} | ${r.version || '—'} | ${MODE_NAME[mode]} | ${fmtRange(m.perCallMicros)} | ${added} | ${r.variant === 'bare' ? '1' : fmt(m.timesBare, 2)} | ${fmt(m.spansPerCall, 2)} | ${usage} | ${r.metrics.length ? r.metrics.map((x) => `\`${x}\``).join(', ') + everyCall : 'none'} |`);
        }
      }
      out.push('');
      for (const mode of ['json', 'stream']) {
        const q = rtRatios[provider][mode];
        out.push(`- ${MODE_NAME[mode]}: ${goalSentence(q)}`);
        out.push(
          `  For comparison with earlier runs: the best peer (${q.bestPeer}) adds ${fmt(q.bestPeerAddedMicros)} µs (fastest: ${fmt(q.bestPeerAddedFromFastestMicros)}, ${q.bestPeerFromFastest}), ` +
            `tokenmeter ${fmt(q.ratio, 2)}× of it (fastest: ${fmt(q.ratioFromFastest, 2)}×); async context tracking alone adds ${fmt(q.contextAddedMicros)} µs (fastest: ${fmt(q.contextAddedFromFastestMicros)}).`,
        );
      }
      const tmRow = rows.find((x) => x.variant === 'tokenmeter');
      const nm = rows.find((x) => x.variant === 'tokenmeter-nometrics');
      if (tmRow && nm) {
        out.push(
          `- Diagnostic: without a MeterProvider (its GenAI histograms become no-ops) tokenmeter adds ${fmt(nm.json.addedMicros.median)} µs / ${fmt(nm.stream.addedMicros.median)} µs ` +
            `(non-streaming / stream), so recording the metrics costs about ${fmt(tmRow.json.addedMicros.median - nm.json.addedMicros.median)} µs / ${fmt(tmRow.stream.addedMicros.median - nm.stream.addedMicros.median)} µs per call.`,
        );
      }
      const sh = rows.find((x) => x.variant === 'tokenmeter-sdkhist');
      if (tmRow && sh) {
        out.push(
          `- Diagnostic: with the GenAI histograms recorded through the SDK (an app's own MeterProvider without tokenmeter's MetricProducer) tokenmeter adds ` +
            `${fmt(sh.json.addedMicros.median)} µs / ${fmt(sh.stream.addedMicros.median)} µs (non-streaming / stream), ` +
            `${fmt(sh.json.addedMicros.median - tmRow.json.addedMicros.median)} µs / ${fmt(sh.stream.addedMicros.median - tmRow.stream.addedMicros.median)} µs more than through the producer.`,
        );
      }
      const notes = [...new Set(rows.flatMap((r) => r.notes ?? []))];
      for (const n of notes) out.push(`- Note: ${n}.`);
      const noUsage = rows.filter((x) => x.stream.usageCaptured === false);
      for (const r of noUsage) out.push(`- **${r.label} recorded no usage on streamed calls** (the stream's final chunk carries it; its spans have no token counts).`);
      out.push('');
    }
  }
  return out.join('\n');
}

/** The goal's verdict for one mode, with both estimates. */
export function goalSentence(q) {
  const m = q.margins;
  const missed = [];
  if (m !== undefined) {
    for (const est of ['median', 'fastest']) {
      if (m[est].peer?.verdict === 'not met') missed.push(`more than ${q.signalPeer ?? 'the peer'} (${est})`);
      if (m[est].floor?.verdict === 'not met') missed.push(`more than 1.5× the bare-span floor (${est})`);
    }
  } else {
    if (!q.peerOk) missed.push(`more than ${q.signalPeer ?? 'the peer'}`);
    if (!q.floorOk) missed.push('more than 1.5× the bare-span floor');
  }
  const why =
    (q.processes ?? 0) < 3
      ? 'fewer than 3 processes'
      : !(q.spanFloorAddedMicros > 0) || !(q.spanFloorAddedFromFastestMicros > 0)
        ? 'the bare-span floor came out ≤ 0 on an estimate'
        : "a margin's 95% interval includes zero (the processes' spread is larger than the difference)";
  const verdict = q.goalMet
    ? 'goal **met**'
    : q.peerApplies === false
      ? `**not judged here**: ${q.signalPeer ?? 'no peer'} made no span per call (it does not instrument this SDK release); see the runtime with the newest release the peers instrument`
      : q.goalConclusive === false
        ? `**inconclusive**: ${why} — counted as not met`
        : `goal **NOT met** (${missed.join('; ')})`;
  const iv = (x) => (x === undefined ? 'n/a' : `${x.estimate >= 0 ? '+' : ''}${fmt(x.estimate)} µs [${fmt(x.lo)}, ${fmt(x.hi)}]`);
  const margins =
    m === undefined
      ? ''
      : ` Margins, tokenmeter minus the limit with their 95% intervals (≤ 0 is within the goal): vs 1.5× the floor ${iv(m.median.floor)} (median), ${iv(m.fastest.floor)} (fastest); ` +
        `vs ${q.signalPeer ?? 'the peer'} ${iv(m.median.peer)} (median), ${iv(m.fastest.peer)} (fastest).`;
  return (
    `tokenmeter adds ${fmt(q.tokenmeterAddedMicros)} µs (fastest: ${fmt(q.tokenmeterAddedFromFastestMicros)}); ` +
    `the peer recording the same signals (${q.signalPeer ?? 'none'}) ${fmt(q.signalPeerAddedMicros)} µs (fastest: ${fmt(q.signalPeerAddedFromFastestMicros)}); ` +
    `1.5× one bare span per call: ${fmt(q.floorLimitMicros)} µs (fastest: ${fmt(q.floorLimitFromFastestMicros)}) — ${verdict}.${margins}`
  );
}
