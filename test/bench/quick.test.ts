/**
 * Runs `node bench/run.mjs --quick` (every benchmark at a tiny size) so that the benchmarks never rot. Asserts that
 * each section ran and produced sane output — spans were produced with the provider's usage, counts add up, every
 * section is in the report — and NO timings (speed is measured only in bench/, never asserted in tests).
 * Needs dist/ (npm test builds first).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');

interface Check {
  spans: number;
  calls: number;
  spansWithUsage: number;
  spansWithWrongUsage: number;
}
interface ModeResult {
  perCallMicros: { median: number };
  usageCaptured: boolean | null;
  spansPerCall: number;
  check: Check;
}
interface InstrumentationRow {
  runtime: string;
  peer: boolean;
  node: string;
  sdkVersion: string;
  provider: string;
  variant: string;
  metricsEveryCall?: boolean | null;
  json: ModeResult;
  stream: ModeResult;
}
interface IngestRun {
  receiver: string;
  concurrency: number;
  spans: number;
  sentSpans: number;
  spansPerSecond: number;
  decodedSpans?: number;
  priced?: number;
  ledgerRequests?: number;
  partialResponses: number;
  consistent: boolean;
  statuses: Record<string, number>;
}
interface IngestGoal {
  preload: { calls: number; users: number; requestsAtStart: number };
  levels: Array<{
    concurrency: number;
    rounds: Array<{ order: string[]; ratio: number; receivers: Record<string, { spansPerSecond: number; cpuMicrosPerSpan: number }> }>;
    ratio: { median: number; min: number; max: number; n: number };
    goalMet: boolean;
  }>;
  check: { acked: number; priced: number; ledgerRequests: number; preloadCalls: number; duplicates: number; rejected: number; walkerDecoded: number; walkerSent: number; consistent: boolean };
}
interface Result {
  quick: boolean;
  environment: { nproc: number; node: string; packages: Record<string, string> };
  sections: {
    instrumentation?: { runtimes: Array<{ id: string }>; results: InstrumentationRow[]; ratios: Record<string, Record<string, Record<string, { ratio: number; goalMet: boolean }>>> };
    ingest?: { runs: IngestRun[]; growth: Array<IngestRun & { users: number }>; goal: IngestGoal; notes: string[] };
    scrape?: {
      rows: Array<{
        users: number;
        perUserSeriesOk: boolean;
        tokenmeter: { spansSent: number; bytes: number; series: { all: number; perUser: Record<string, number> } };
        promClient: { series: { all: number } };
      }>;
    };
    ledger?: {
      calls: number;
      users: number;
      consistent: boolean;
      bytesOnDisk: number;
      restarts: Array<{ usersLoaded: number; requestsLoaded: number }>;
      stalls?: {
        sustainedCallsPerSecond: number;
        rates: Array<{ fraction: number; offeredCallsPerSecond: number; requests: number; acknowledged: number; calls: number; latencyMillis: { p50: number; p99: number; max: number } }>;
        cleanRestartConsistent: boolean;
        crash: { consistent: boolean };
      };
    };
    reservations?: {
      config: { users: number; rounds: number; callsPerUser: number };
      latency: Record<'bare' | 'off' | 'block', { calls: number; medianMillis: number; p99Millis: number }>;
      http: Array<{ mode: 'single' | 'batched'; answered: number; granted: number; failed: number; httpRequests: number }>;
      inProcessPerSecond: number;
      goals: Record<string, boolean | null>;
    };
  };
  errors: Record<string, string>;
}

let dir: string;
let result: Result;
let stdout = '';
let stderr = '';
let exitCode: number | null = null;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tokenmeter-bench-test-'));
  const jsonPath = join(dir, 'latest.json');
  exitCode = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bench', 'run.mjs'), '--quick', '--json', jsonPath], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
  });
  if (existsSync(jsonPath)) result = JSON.parse(readFileSync(jsonPath, 'utf8')) as Result;
}, 480_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('npm run bench -- --quick', () => {
  it('runs every section without an error and exits 0', () => {
    expect(result, `no results written; stderr:\n${stderr.slice(-3000)}`).toBeDefined();
    expect(result.errors).toEqual({});
    expect(exitCode, stderr.slice(-3000)).toBe(0);
    expect(result.quick).toBe(true);
    expect(result.environment.nproc).toBeGreaterThan(0);
    expect(result.environment.packages.openai).toBe('6.49.0');
  });

  it('prints a Markdown report with every section', () => {
    for (const heading of ['### Machine and versions', '### Goals', '### 1. Instrumentation overhead', '### 2. Ingest throughput', '### 3. Scrape cost', '### 4. Ledger scale', '### 5. Growth', '### Admission control (issue 16)']) {
      expect(stdout).toContain(heading);
    }
    expect(stdout).not.toContain('NaN');
    // Growth exponents are computed from the measured sizes (their values are not checked: no timings).
    expect(stdout).toMatch(/\| scrape cost grows linearly or better .*\| k = -?\d/);
    expect(stdout).toMatch(/\| no per-user cost on the per-call ingest path .*\| k = -?\d/);
  });

  it('instrumentation runs on the Node at hand and on Node 24 with the newest SDKs and peers', () => {
    const i = result.sections.instrumentation!;
    expect(i.runtimes.map((r) => r.id)).toEqual(['current', 'newest', 'newest-openai6']);
    const current = i.results.filter((r) => r.runtime === 'current');
    const newest = i.results.filter((r) => r.runtime === 'newest');
    expect(new Set(current.map((r) => r.node))).toEqual(new Set([process.version]));
    expect(new Set(newest.map((r) => r.node))).toEqual(new Set(['v24.22.3']));
    expect(new Set(newest.filter((r) => r.provider === 'openai').map((r) => r.sdkVersion))).toEqual(new Set(['7.59.0']));
    expect(new Set(newest.filter((r) => r.provider === 'anthropic').map((r) => r.sdkVersion))).toEqual(new Set(['1.16.0']));
    expect(Object.keys(i.ratios).sort()).toEqual(['current', 'newest', 'newest-openai6']);
    const openai6 = i.results.filter((r) => r.runtime === 'newest-openai6');
    expect(new Set(openai6.map((r) => `${r.node} ${r.provider} ${r.sdkVersion}`))).toEqual(new Set(['v24.22.3 openai 6.49.0']));
    // With one process per variant the goal can never be judged: the report must say so, never 'met'.
    for (const rt of Object.values(i.ratios)) for (const modes of Object.values(rt)) for (const q of Object.values(modes)) expect(q.goalMet).toBe(false);
    expect(stdout).toContain('inconclusive');
  });

  it.each(['current', 'newest', 'newest-openai6'])('instrumentation (%s): every variant timed; tokenmeter and the peers made one span per call with the real usage', (runtime) => {
    const rows = result.sections.instrumentation!.results.filter((r) => r.runtime === runtime);
    const providers = runtime === 'newest-openai6' ? ['openai'] : ['openai', 'anthropic'];
    const variants = rows.map((r) => `${r.provider}/${r.variant}`).sort();
    expect(variants).toEqual(
      [
        'anthropic/bare',
        'anthropic/bare-context',
        'anthropic/span-floor',
        'anthropic/sdk-builtin',
        'anthropic/tokenmeter',
        'anthropic/tokenmeter-nometrics',
        'anthropic/tokenmeter-sdkhist',
        'anthropic/traceloop',
        'openai/bare',
        'openai/bare-context',
        'openai/span-floor',
        'openai/otel-contrib',
        'openai/tokenmeter',
        'openai/tokenmeter-nometrics',
        'openai/tokenmeter-sdkhist',
        'openai/traceloop',
      ]
        .filter((v) => providers.includes(v.split('/')[0]!))
        .sort(),
    );
    for (const r of rows) {
      for (const m of [r.json, r.stream]) {
        expect(Number.isFinite(m.perCallMicros.median) && m.perCallMicros.median > 0).toBe(true);
        if (r.variant === 'bare' || r.variant === 'bare-context') {
          expect(m.check.spans).toBe(0);
        } else if (r.variant === 'span-floor') {
          expect(m.spansPerCall).toBe(1);
          expect(m.check.spansWithUsage).toBe(0);
        } else if (runtime === 'newest' && r.provider === 'openai' && r.peer) {
          // No peer instruments openai 7 (they declare <7): no span, and the report says the goal is not judged.
          expect(m.spansPerCall).toBe(0);
        } else {
          expect(m.spansPerCall).toBe(1);
          // A variant may miss usage (reported in the table), but never report counts other than the provider's.
          expect(m.check.spansWithWrongUsage).toBe(0);
        }
      }
    }
    for (const provider of providers) {
      const tm = rows.find((r) => r.provider === provider && r.variant === 'tokenmeter')!;
      expect(tm.json.usageCaptured).toBe(true);
      expect(tm.stream.usageCaptured).toBe(true);
      expect(tm.json.check.spansWithUsage).toBe(tm.json.check.calls);
      // One duration and two token-usage points per call (and time to first chunk per stream) in every process,
      // through tokenmeter's MetricProducer and (diagnostic) through the SDK's histograms.
      expect(tm.metricsEveryCall).toBe(true);
      expect(rows.find((r) => r.provider === provider && r.variant === 'tokenmeter-sdkhist')!.metricsEveryCall).toBe(true);
    }
    expect(Object.keys(result.sections.instrumentation!.ratios[runtime]).sort()).toEqual([...providers].sort());
  });

  it('ingest: the walker decode-only server decoded every span; tokenmeter acknowledged, priced and committed every span', () => {
    const ingest = result.sections.ingest!;
    const g = ingest.goal;
    // Issue 15's comparison: alternating rounds of the walker server and tokenmeter (+ the in-memory diagnostic), 1 and 8 senders.
    expect(g.levels.map((l) => l.concurrency)).toEqual([1, 8]);
    for (const l of g.levels) {
      expect(l.rounds.length).toBe(l.ratio.n);
      expect(l.ratio.n).toBeGreaterThanOrEqual(3);
      // The order rotates: not every round starts with the same receiver.
      expect(new Set(l.rounds.map((r) => r.order[0])).size).toBeGreaterThan(1);
      for (const r of l.rounds) {
        expect(Object.keys(r.receivers).sort()).toEqual(['decode-walker', 'tokenmeter-embedded', 'tokenmeter-embedded-w0', 'tokenmeter-noledger']);
        expect(r.ratio).toBeCloseTo(r.receivers['tokenmeter-embedded']!.spansPerSecond / r.receivers['decode-walker']!.spansPerSecond, 9);
        for (const x of Object.values(r.receivers)) expect(x.cpuMicrosPerSpan).toBeGreaterThan(0);
      }
      expect(l.ratio.min).toBeLessThanOrEqual(l.ratio.median);
      expect(l.ratio.median).toBeLessThanOrEqual(l.ratio.max);
    }
    // The ledger was preloaded (every preloaded user's period totals loaded at start) and every acked span is in it.
    expect(g.preload.requestsAtStart).toBe(g.preload.calls);
    expect(g.check.acked).toBeGreaterThan(0);
    expect(g.check.priced).toBe(g.check.acked);
    expect(g.check.ledgerRequests).toBe(g.check.acked + g.check.preloadCalls);
    expect(g.check.duplicates).toBe(0);
    expect(g.check.rejected).toBe(0);
    expect(g.check.walkerDecoded).toBe(g.check.walkerSent);
    expect(g.check.consistent).toBe(true);
    expect(stdout).toMatch(/\| ingest, embedded \(journal\) ledger holding [\d,]+ users, ack after fdatasync, 8 sender\(s\): ≥ 0\.5× the walker decode-only server .*\| [\d.]+× \(range [\d.]+–[\d.]+, \d+ rounds/);
    expect(stdout).toMatch(/- \*\*1 sender\(s\): [\d.]+×\*\* the walker decode-only server \(range .*goal ≥ 0\.5: \*\*(met|NOT met)\*\*/);
    const receivers = new Set(ingest.runs.map((r) => r.receiver));
    for (const r of [...ingest.runs, ...ingest.growth]) {
      expect(r.spans).toBeGreaterThan(0);
      expect(r.spansPerSecond).toBeGreaterThan(0);
      expect(Object.keys(r.statuses)).toEqual(['200']);
      expect(r.partialResponses).toBe(0);
      expect(r.priced).toBe(r.sentSpans);
      expect(r.ledgerRequests).toBe(r.sentSpans);
      expect(r.consistent).toBe(true);
    }
    if (!ingest.notes.some((n) => n.includes('PostgreSQL runs skipped'))) expect(receivers.has('tokenmeter-postgres')).toBe(true);
    expect(ingest.growth.length).toBeGreaterThanOrEqual(2);
  });

  it('scrape: every active user has its per-user series; prom-client got the same number of series', () => {
    for (const row of result.sections.scrape!.rows) {
      expect(row.perUserSeriesOk).toBe(true);
      expect(row.tokenmeter.spansSent).toBeGreaterThanOrEqual(row.users);
      expect(row.tokenmeter.series.perUser.tokenmeter_period_requests).toBe(row.users + 1);
      expect(row.promClient.series.all).toBe(row.tokenmeter.series.all);
      expect(row.tokenmeter.bytes).toBeGreaterThan(0);
    }
  });

  it('reservations: every variant made every call; every reservation over HTTP was granted; batches carried several', () => {
    const r = result.sections.reservations!;
    const calls = r.config.users * r.config.rounds * r.config.callsPerUser;
    for (const v of ['bare', 'off', 'block'] as const) expect(r.latency[v].calls).toBe(calls);
    const single = r.http.find((h) => h.mode === 'single')!;
    const batched = r.http.find((h) => h.mode === 'batched')!;
    for (const h of [single, batched]) {
      expect(h.answered).toBeGreaterThan(0);
      expect(h.failed).toBe(0);
      expect(h.granted).toBe(h.answered);
    }
    expect(single.httpRequests).toBe(single.answered);
    expect(batched.httpRequests).toBeLessThan(batched.answered);
    expect(r.inProcessPerSecond).toBeGreaterThan(0);
    // A verdict for every goal (met, not met, or inconclusive), never missing.
    expect(Object.keys(r.goals).sort()).toEqual(['addedMedian', 'addedP99', 'reservationsPerSecond']);
    expect(stdout).toMatch(/\| exporter answers ≥ 10,000 reservations\/s .*\| (yes|\*\*no\*\*) \|/);
  });

  it('ledger: every acknowledged call is in the period state reloaded on restart', () => {
    const l = result.sections.ledger!;
    expect(l.calls).toBeGreaterThanOrEqual(5000);
    expect(l.consistent).toBe(true);
    expect(l.bytesOnDisk).toBeGreaterThan(0);
    const last = l.restarts[l.restarts.length - 1]!;
    expect(last.usersLoaded).toBe(l.users);
    expect(last.requestsLoaded).toBe(l.calls);
  });

  it('ledger stalls: capacity in a closed loop, then an open loop at 50% and 80% of it with every request acknowledged', () => {
    const st = result.sections.ledger!.stalls!;
    expect(st.sustainedCallsPerSecond).toBeGreaterThan(0);
    expect(st.rates.map((r) => r.fraction)).toEqual([0.5, 0.8]);
    for (const r of st.rates) {
      expect(r.offeredCallsPerSecond).toBe(Math.max(512, Math.round(st.sustainedCallsPerSecond * r.fraction)));
      expect(r.requests).toBeGreaterThan(0);
      expect(r.acknowledged).toBe(r.requests);
      expect(r.calls).toBe(r.requests * 512);
      expect(r.latencyMillis.p50).toBeLessThanOrEqual(r.latencyMillis.p99);
      expect(r.latencyMillis.p99).toBeLessThanOrEqual(r.latencyMillis.max);
    }
    expect(st.cleanRestartConsistent).toBe(true);
    expect(st.crash.consistent).toBe(true);
    // The goal verdicts are printed for the first (50%) rate, stating it in calls/s.
    expect(stdout).toMatch(/\| journal ledger, [\d,]+ users, sustained ingest \(open loop at [\d,.]+ calls\/s \(50% of the [\d,.]+ calls\/s capacity\)[^|]*\): p99 request latency [^|]*\| [\d,.]+ ms \| (yes|\*\*no\*\*) \|/);
    expect(stdout).toMatch(/Goal "longest event-loop stall < 50 ms", sustained ingest at [\d,.]+ calls\/s \(50% of capacity, open loop/);
  });
});
