/**
 * The Overview's "in the time range" panels across exporter restarts and rolling replacements (issue 19, point 4),
 * evaluated by promtool (Prometheus' own engine) on the expressions exactly as the generated dashboard holds them.
 *
 * Each replica is its own series (its `instance` label). A restarted or new replica starts the series the ledger knows
 * at 0 (ExporterMetrics.primeSeries, test/exporter/metrics-restart.test.ts), so increase() counts everything it
 * metered, also after it is gone. A label set first seen at runtime is born with its first increment; the panels add
 * that first sample for a series born inside the range.
 *
 * increase() extrapolates a little past the first and last samples of a series that starts or ends inside the range,
 * so 300 USD metered shows as 307.07 here (1-minute samples, three replicas that each lived 15 minutes); the panel
 * before this fix showed 100.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { METRIC } from '../../src/contract/names.js';
import { sumGrowth } from '../../src/dashboards/promql.js';
import { requireBinary } from '../helpers/binaries.js';
import { panelQueries } from './helpers.js';

const promtool = requireBinary('promtool');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const overview = panelQueries('grafana/dashboards/tokenmeter-overview.json');
const panel = (title: string, refId = 'A') => overview.find((q) => q.panel === title && q.refId === refId)!.expr;
/** The panel's query with Grafana's variables filled in: a 2-hour range, every plan, provider and model. */
const fill = (expr: string) => expr.replaceAll('$__range', '2h').replace(/\$(plan|provider|model)\b/g, '.*');

const base = { job: 'tokenmeter', plan: 'pro', provider: 'openai', model: 'gpt-4o' };
function series(metric: string, labels: Record<string, string>, values: string) {
  const l = Object.entries({ ...base, ...labels }).map(([k, v]) => `${k}="${v}"`).join(', ');
  return { series: `${metric}{${l}}`, values };
}
const cost = (instance: string, values: string) => series(METRIC.costUsdTotal, { instance, type: 'input' }, values);

/** Evaluated at 130m over [2h]: the range is 10m..130m. Samples every minute. */
const EVAL = '130m';

interface Case {
  name: string;
  input: ReturnType<typeof series>[];
  expr: string;
  value: number;
}

function runPromtool(cases: Case[]): { status: number; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-range-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'empty.yml'), 'groups: []\n');
  writeFileSync(
    join(dir, 'range.test.yml'),
    stringify({
      rule_files: ['empty.yml'],
      evaluation_interval: '1m',
      tests: cases.map((c) => ({
        name: c.name,
        interval: '1m',
        input_series: c.input,
        promql_expr_test: [{ expr: c.expr, eval_time: EVAL, exp_samples: [{ labels: '{}', value: c.value }] }],
      })),
    }),
  );
  const r = spawnSync(promtool!, ['test', 'rules', 'range.test.yml'], { cwd: dir, encoding: 'utf8' });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

// Three replicas replaced one after the other, each metering 100 USD in 10 minutes and then gone.
const rollingPrimed = [
  cost('a', '_x15 0+10x10 100x5 stale'),
  cost('b', '_x40 0+10x10 100x5 stale'),
  cost('c', '_x65 0+10x10 100x50'),
];
// The same, for a label set the ledger did not know: each replica's series is born at its first increments (40 USD).
const rollingBornNonZero = [
  cost('a', '_x15 40+6x10 100x5 stale'),
  cost('b', '_x40 40+6x10 100x5 stale'),
  cost('c', '_x65 40+6x10 100x50'),
];
// One replica restarted in place (same instance): 100 USD, restart (primed at 0), 200 USD more.
const restart = [cost('a', '_x15 0+10x10 100x5 0+20x10 200x50')];
// A replica that runs through the whole range: 1 USD a minute, 120 minutes in the range.
const steady = [cost('a', '0+1x200')];

describe.skipIf(!promtool)('"in the time range" panels across restarts and replacements (promtool)', () => {
  const spend = fill(panel('Spend today (UTC)'));
  const byProvider = fill(panel('Spend by provider (time range)')).replace(/^sort_desc\((.*)\)$/, '$1');

  it('the Overview panels use increase() over each series (with the first sample of a series born in the range)', () => {
    for (const title of ['Spend today (UTC)', 'Tokens', 'Requests']) {
      expect(panel(title), title).toMatch(/^sum \(\(increase\((\w+)\{[^}]*\}\[\$__range\]\) \+ \(min_over_time\(\1\{[^}]*\}\[\$__range\]\) unless \1\{[^}]*\} offset \$__range\)\) or \(min_over_time\(\1/);
    }
  });

  it('count 300 USD metered across a rolling replacement, a restart and a steady replica as ~300', () => {
    const r = runPromtool([
      { name: 'rolling replacement, primed series', input: rollingPrimed, expr: spend, value: 307.0696721311475 },
      { name: 'rolling replacement, by provider', input: rollingPrimed, expr: `sum(${byProvider})`, value: 307.0696721311475 },
      { name: 'rolling replacement, series born at their first increments', input: rollingBornNonZero, expr: spend, value: 308.483606557377 },
      { name: 'restart in place', input: restart, expr: spend, value: 301.9230769230769 },
      { name: 'a replica through the whole range', input: steady, expr: spend, value: 120 },
      // A replica scraped once before it was replaced: no increase(), its one sample is its growth.
      { name: 'a series with one sample', input: [cost('a', '_x20 7 stale')], expr: spend, value: 7 },
    ]);
    expect(r.out).toContain('SUCCESS');
    expect(r.status, r.out).toBe(0);
  });

  it('the expression before the fix shows 100 of the 300 USD (so this test can fail)', () => {
    const before = sumGrowth(METRIC.costUsdTotal, '2h');
    const r = runPromtool([{ name: 'old expression', input: rollingPrimed, expr: before, value: 100 }]);
    expect(r.status, r.out).toBe(0);
    const wrong = runPromtool([{ name: 'old expression', input: rollingPrimed, expr: before, value: 307.0696721311475 }]);
    expect(wrong.status).not.toBe(0);
  });
});
