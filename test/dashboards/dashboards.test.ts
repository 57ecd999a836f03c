import { describe, expect, it } from 'vitest';
import { LABEL, METRIC, PROCESS_METRIC } from '../../src/contract/names.js';
import { sumGrowth, sumIncreaseWithBirths } from '../../src/dashboards/promql.js';
import {
  EXPORTER_HEALTH_UID,
  OVERVIEW_UID,
  FOREIGN_METRICS,
  PROMETHEUS_BUILTIN_METRICS,
  PROMETHEUS_DATASOURCE_UID,
  RECORDING_RULES,
  USAGE_LIMITS_UID,
  USER_DRILLDOWN_UID,
  baseMetricName,
  generatedFiles,
  metricNamesIn,
} from '../../src/dashboards/index.js';
import {
  DASHBOARD_FILES,
  allPanelQueries,
  panelsOf,
  prometheusAlertRules,
  readDashboard,
  readRepoFile,
  readYaml,
  variableQueries,
} from './helpers.js';

const EMITTED = new Set<string>([...Object.values(METRIC), ...Object.values(PROCESS_METRIC), ...PROMETHEUS_BUILTIN_METRICS]);
const HISTOGRAMS = [METRIC.ledgerCommitSeconds, METRIC.otlpRequestDurationSeconds, METRIC.reservationActualToEstimateRatio];

/**
 * How each metric must be aggregated wherever a dashboard or rule reads it, so that several exporter replicas add
 * up correctly: counters are summed over rate()/increase(); ledger gauges are the same on every replica, so max.
 */
function aggregationProblem(expr: string, metric: string, index: number): string | undefined {
  const before = expr.slice(0, index);
  const counter = metric.endsWith('_total') || metric.endsWith('_bucket');
  if (counter) {
    const m = /(?:rate|increase)\($/.exec(before);
    if (!m) return `${metric} is not inside rate() or increase()`;
    if (!/sum(?: by \([^)]*\))? ?\($/.test(before.slice(0, m.index))) return `rate/increase(${metric}) is not summed`;
    return undefined;
  }
  const perUser: string[] = [
    METRIC.periodTokens, METRIC.periodRequests, METRIC.periodCostUsd, METRIC.limitTokens, METRIC.limitRequests, METRIC.limitCostUsd,
  ];
  if (perUser.includes(metric)) {
    return /max by \(user, plan\) \((?:predict_linear\(|deriv\()?$/.test(before) ? undefined : `${metric} is not folded with max by (user, plan)`;
  }
  if (metric === METRIC.periodEndTimestampSeconds) {
    return /(?:max by \(plan\) \(|min\()$/.test(before) ? undefined : `${metric} is not folded with max by (plan) or min`;
  }
  if (metric === METRIC.ledgerUp) return /(?:min by \(instance\) \(|^)$/.test(before) ? undefined : `${metric} is not per instance`;
  if (metric === METRIC.userSeries) return /max by \(instance\) \($/.test(before) ? undefined : `${metric} is not per instance`;
  return undefined;
}

/**
 * sumGrowth's inner form, `(increase(x[w]) and x offset w) or (x unless x offset w)`, reads the raw counter on purpose
 * (series born in the window); with the same selector and window on every side it is folded to `increase(x[w])`.
 */
const GROWTH = /\(increase\((\w+)(\{[^}]*\})?\[([^\]]+)\]\) and \1\2 offset \3\) or \(\1\2 unless \1\2 offset \3\)/g;

/**
 * sumIncreaseWithBirths' inner form, `(increase(x[w]) + B) or B or increase(x[w])` with B = `(min_over_time(x[w]) unless x offset w)`,
 * reads the raw counter on purpose (the first sample of a series born in the window); folded the same way.
 */
const BIRTHS =
  /\(increase\((\w+)(\{[^}]*\})?\[([^\]]+)\]\) \+ \(min_over_time\(\1\2\[\3\]\) unless \1\2 offset \3\)\) or \(min_over_time\(\1\2\[\3\]\) unless \1\2 offset \3\) or increase\(\1\2\[\3\]\)/g;

function aggregationProblems(rawExpr: string): string[] {
  const expr = rawExpr
    .replace(GROWTH, (_m, metric: string, matchers: string | undefined, window: string) => `increase(${metric}${matchers ?? ''}[${window}])`)
    .replace(BIRTHS, (_m, metric: string, matchers: string | undefined, window: string) => `increase(${metric}${matchers ?? ''}[${window}])`);
  const problems: string[] = [];
  for (const name of [...EMITTED, `${METRIC.ledgerCommitSeconds}_bucket`]) {
    const re = new RegExp(`(?<![A-Za-z0-9_:])${name}(?![A-Za-z0-9_:])`, 'g');
    let m: RegExpExecArray | null;
    while ((m = re.exec(expr))) {
      const p = aggregationProblem(expr, name, m.index);
      if (p) problems.push(p);
    }
  }
  return problems;
}

describe('generated files', () => {
  it('are committed exactly as src/dashboards generates them (npm run generate)', () => {
    for (const [path, content] of generatedFiles()) expect(readRepoFile(path), path).toBe(content);
  });
});

describe('dashboards', () => {
  const dashboards = DASHBOARD_FILES.map((f) => readDashboard(f));

  it('are the four dashboards with stable uids', () => {
    expect(dashboards.map((d) => d.uid)).toEqual([OVERVIEW_UID, USAGE_LIMITS_UID, USER_DRILLDOWN_UID, EXPORTER_HEALTH_UID]);
    expect(new Set(dashboards.map((d) => d.title)).size).toBe(4);
    for (const d of dashboards) expect(d.uid).toMatch(/^[a-z0-9-]{1,40}$/);
  });

  it('have the template variables: datasource everywhere, plan/provider/model/user where they filter', () => {
    const names = (d: any) => d.templating.list.map((v: any) => v.name);
    expect(names(dashboards[0])).toEqual(['datasource', 'plan', 'provider', 'model']);
    expect(names(dashboards[1])).toEqual(['datasource', 'plan', 'user']);
    expect(names(dashboards[2])).toEqual(['datasource', 'plan', 'user']);
    expect(names(dashboards[3])).toEqual(['datasource']);
    for (const d of dashboards) {
      const ds = d.templating.list.find((v: any) => v.name === 'datasource');
      expect(ds.type).toBe('datasource');
      expect(ds.query).toBe('prometheus');
      expect(ds.current.value).toBe(PROMETHEUS_DATASOURCE_UID);
    }
    // The drill-down is one user at a time; the limits board takes several.
    const user = (d: any) => d.templating.list.find((v: any) => v.name === 'user');
    expect(user(dashboards[2]).multi).toBeFalsy();
    expect(user(dashboards[1]).multi).toBe(true);
  });

  it('query the $datasource variable from every panel and target', () => {
    for (const d of dashboards) {
      for (const p of panelsOf(d)) {
        expect(p.datasource, `${d.uid}/${p.title}`).toEqual({ type: 'prometheus', uid: '${datasource}' });
        expect(p.targets.length, `${d.uid}/${p.title}`).toBeGreaterThan(0);
        for (const t of p.targets) expect(t.datasource, `${d.uid}/${p.title}`).toEqual({ type: 'prometheus', uid: '${datasource}' });
      }
    }
  });

  it('set units on every panel, with USD and tokens among them', () => {
    const units = new Set<string>();
    for (const d of dashboards) {
      for (const p of panelsOf(d)) {
        expect(p.fieldConfig?.defaults?.unit, `${d.uid}/${p.title}`).toBeTruthy();
        units.add(p.fieldConfig.defaults.unit);
      }
    }
    expect(units).toContain('currencyUSD');
    expect(units).toContain('count:tokens');
    // Tokens and requests scale (count:), never a fixed suffix that prints 12345678 tokens.
    expect([...units].filter((u) => u.startsWith('suffix:'))).toEqual([]);
    expect(units).toContain('percentunit');
  });

  it('take "spend this billing period" from the ledger gauge, not from increase() over 30 days', () => {
    const overview = dashboards[0];
    const spend = panelsOf(overview).find((p) => p.title === 'Spend this billing period');
    expect(spend.targets[0].expr).toBe('sum(max by (user, plan) (tokenmeter_period_cost_usd{plan=~"$plan"}))');
    for (const q of allPanelQueries()) expect(q.expr).not.toMatch(/\[(30d|31d|4w|720h)\]/);
  });

  it('show usage vs limits as bar gauges and ratio-sorted tables, a predict_linear forecast and the time left', () => {
    const limits = panelsOf(dashboards[1]);
    const gauges = limits.filter((p) => p.type === 'bargauge');
    expect(gauges.map((p) => p.title)).toEqual(['Tokens used of limit', 'Requests used of limit', 'Cost budget used of limit']);
    for (const g of gauges) {
      expect(g.fieldConfig.defaults.unit).toBe('percentunit');
      expect(g.fieldConfig.defaults.thresholds.steps.map((s: any) => s.value)).toEqual([null, 0.8, 1]);
    }
    const tables = limits.filter((p) => p.type === 'table');
    expect(tables.map((t) => t.options.sortBy[0])).toEqual([
      { displayName: 'Used of limit', desc: true },
      { displayName: 'Tokens used', desc: true },
      { displayName: 'Refused calls', desc: true },
    ]);
    expect(limits.some((p) => p.targets.some((t: any) => t.expr.includes('predict_linear(')))).toBe(true);
    expect(limits.some((p) => p.title === 'Time left in billing period' && p.targets[0].expr.endsWith('- time()'))).toBe(true);
  });

  it('drive the user drill-down by $user (exact match)', () => {
    for (const p of panelsOf(dashboards[2])) {
      for (const t of p.targets) expect(t.expr, p.title).toContain('user="$user"');
    }
  });

  it('only name metrics the exporter emits (METRIC) or Prometheus\' own series', () => {
    const exprs = [
      ...allPanelQueries().map((q) => q.expr),
      ...variableQueries().map((v) => v.query.replace(/^label_values\((.*), *\w+\)$/, '$1')),
      ...RECORDING_RULES.map((r) => r.expr),
    ];
    // The alert rules may also read what the recording rules record and Alertmanager's own metrics; the Watchdog
    // (vector(1)) and the collector rules (metrics selected by a __name__ regex) name none.
    const ruleNames = new Set<string>([...EMITTED, ...FOREIGN_METRICS, ...RECORDING_RULES.map((r) => r.record)]);
    const named = new Set<string>();
    for (const e of exprs) {
      const names = metricNamesIn(e);
      expect(names.length, e).toBeGreaterThan(0);
      for (const n of names) {
        const base = baseMetricName(n, HISTOGRAMS);
        expect(EMITTED.has(base), `${n} in ${e}`).toBe(true);
        named.add(base);
      }
    }
    for (const r of prometheusAlertRules()) {
      for (const n of metricNamesIn(r.expr)) {
        expect(ruleNames.has(n), `${n} in ${r.alert}`).toBe(true);
        named.add(n);
      }
    }
    // Between them, the dashboards and rules use every metric the exporter emits.
    for (const m of Object.values(METRIC)) expect(named, m).toContain(m);
  });

  it('count the growth of counter series born inside the window (sumGrowth), and check its form', () => {
    expect(aggregationProblems(sumGrowth(METRIC.tokensTotal, '$__range', [LABEL.plan], { [LABEL.plan]: '=~"$plan"' }))).toEqual([]);
    // A raw counter outside that exact form (another window on one side) is still a problem.
    expect(aggregationProblems('sum ((increase(tokenmeter_tokens_total[1h]) and tokenmeter_tokens_total offset 1h) or (tokenmeter_tokens_total unless tokenmeter_tokens_total offset 2h))')).not.toEqual([]);
  });

  it('count the growth of counters in the range with increase() plus the first sample of series born in it (sumIncreaseWithBirths)', () => {
    expect(aggregationProblems(sumIncreaseWithBirths(METRIC.tokensTotal, '$__range', [LABEL.plan], { [LABEL.plan]: '=~"$plan"' }))).toEqual([]);
    // Another window on one side is not the form, so the raw counter in it is a problem.
    const t = 'tokenmeter_tokens_total';
    expect(aggregationProblems(`sum ((increase(${t}[1h]) + (min_over_time(${t}[1h]) unless ${t} offset 2h)) or (min_over_time(${t}[1h]) unless ${t} offset 2h) or increase(${t}[1h]))`)).not.toEqual([]);
    // The old form (which lost a replica replaced inside the range) is no longer used by any panel.
    for (const q of allPanelQueries()) expect(q.expr, `${q.dashboard}/${q.panel}`).not.toMatch(/\) and \w+(\{[^}]*\})? offset /);
  });

  it('aggregate across replicas: counters with sum, ledger gauges with max by (user, plan)', () => {
    const exprs = [...allPanelQueries().map((q) => q.expr), ...prometheusAlertRules().map((r) => r.expr as string)];
    for (const e of exprs) expect(aggregationProblems(e), e).toEqual([]);
  });

  it('are found by the provisioned dashboard provider', () => {
    const provider = readYaml('grafana/provisioning/dashboards/tokenmeter.yaml').providers[0];
    expect(provider.type).toBe('file');
    const compose = readYaml('docker-compose.yml');
    expect(compose.services.grafana.volumes).toContain(`./grafana/dashboards:${provider.options.path}:ro`);
    expect(compose.services.grafana.volumes).toContain('./grafana/provisioning/datasources:/etc/grafana/provisioning/datasources:ro');
    expect(compose.services.grafana.volumes).toContain('./grafana/provisioning/dashboards:/etc/grafana/provisioning/dashboards:ro');
  });
});

describe('dashboards an on-call team can read in 10 seconds', () => {
  const boards: Record<string, any[]> = Object.fromEntries(
    DASHBOARD_FILES.map((f) => {
      const d = readDashboard(f);
      return [d.uid, panelsOf(d)];
    }),
  );
  const all: any[] = Object.values(boards).flat();
  const byTitle = (uid: string, title: string) => {
    const p = boards[uid].find((x: any) => x.title === title);
    expect(p, `${uid}: no panel "${title}"`).toBeTruthy();
    return p;
  };
  const drilldownUrl = (p: any) => (p.fieldConfig.defaults.links ?? []).map((l: any) => l.url as string).find((u: string) => u.startsWith(`/d/${USER_DRILLDOWN_UID}/`));

  it('show the legend of every time-series panel', () => {
    const series = all.filter((p) => p.type === 'timeseries');
    expect(series.length).toBeGreaterThan(10);
    for (const p of series) {
      expect(p.options.legend.showLegend, p.title).toBe(true);
      expect(p.options.legend.displayMode, p.title).not.toBe('hidden');
    }
  });

  it('link top users, the near/over lists and the limit bar gauges to the user drill-down', () => {
    const linked = [
      [OVERVIEW_UID, 'Top users by spend (this billing period)', 'row'],
      [USAGE_LIMITS_UID, 'Users near or over a limit', 'row'],
      [USAGE_LIMITS_UID, 'Usage vs limits by user', 'row'],
      [USAGE_LIMITS_UID, 'Tokens used of limit', 'labels'],
      [USAGE_LIMITS_UID, 'Requests used of limit', 'labels'],
      [USAGE_LIMITS_UID, 'Cost budget used of limit', 'labels'],
      [USAGE_LIMITS_UID, 'Share of token limit over time', 'labels'],
    ] as const;
    for (const [uid, title, from] of linked) {
      const url = drilldownUrl(byTitle(uid, title));
      expect(url, title).toBeTruthy();
      const v = (l: string) => (from === 'row' ? `\${__data.fields.${l}}` : `\${__field.labels.${l}}`);
      expect(url).toContain(`var-user=${v('user')}`);
      expect(url).toContain(`var-plan=${v('plan')}`);
      expect(url).toContain('${__url_time_range}');
    }
    // Every per-user table and bar gauge outside the drill-down links to it.
    for (const uid of [OVERVIEW_UID, USAGE_LIMITS_UID]) {
      for (const p of boards[uid].filter((x: any) => ['table', 'bargauge'].includes(x.type))) {
        const perUser = p.targets.some((t: any) => /tokenmeter_(period|limit)_\w+\{[^}]*user=/.test(t.expr) || /max by \(user, plan\)/.test(t.expr) && !/sum by \(plan\)/.test(t.expr));
        if (perUser) expect(drilldownUrl(p), `${uid}/${p.title}`).toBeTruthy();
      }
    }
    // The drill-down's uid and variables are the ones the links fill.
    expect(readDashboard('grafana/dashboards/tokenmeter-user.json').templating.list.map((v: any) => v.name)).toEqual(['datasource', 'plan', 'user']);
  });

  it('limit every per-user panel with topk (10,000 users at the default max_users)', () => {
    let checked = 0;
    for (const uid of [OVERVIEW_UID, USAGE_LIMITS_UID]) {
      for (const p of boards[uid]) {
        for (const t of p.targets) {
          // A per-user result: a ledger gauge kept by (user, plan) without summing the users away.
          const perUser = /max by \(user, plan\)/.test(t.expr) && !/\b(sum|count|min)\(|sum by \(plan\)/.test(t.expr);
          if (perUser) {
            checked++;
            expect(t.expr, `${uid}/${p.title}/${t.refId}`).toMatch(/topk\(\d+, /);
          }
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(10);
  });

  it('colour users near a limit amber and over a limit red, on the Overview and on Usage vs limits', () => {
    for (const uid of [OVERVIEW_UID, USAGE_LIMITS_UID]) {
      const near = byTitle(uid, 'Users near a limit').fieldConfig.defaults.thresholds.steps;
      const over = byTitle(uid, 'Users over a limit').fieldConfig.defaults.thresholds.steps;
      expect(near).toEqual([{ value: null, color: 'green' }, { value: 1, color: 'orange' }]);
      expect(over).toEqual([{ value: null, color: 'green' }, { value: 1, color: 'red' }]);
    }
  });

  it('show exporters up out of expected (count of up targets vs count of targets), not sum(up)', () => {
    for (const uid of [OVERVIEW_UID, EXPORTER_HEALTH_UID]) {
      const p = byTitle(uid, 'Exporters up');
      const exprs = p.targets.map((t: any) => t.expr);
      expect(exprs).toEqual([
        '(count(up{job="tokenmeter"} == 1) or vector(0)) / count(up{job="tokenmeter"})',
        '(count(up{job="tokenmeter"} == 1) or vector(0))',
        'count(up{job="tokenmeter"}) or vector(0)',
      ]);
      expect(p.targets.map((t: any) => t.legendFormat)).toEqual(['share up', 'up', 'expected']);
      expect(p.fieldConfig.defaults.thresholds.steps.map((x: any) => x.color)).toEqual(['red', 'orange', 'green']);
      for (const e of exprs) expect(e).not.toMatch(/sum\(up/);
    }
  });

  it('give the Overview the users near/over a limit and the pipeline health, linked to their boards', () => {
    for (const title of ['Users over a limit', 'Users near a limit', 'Exporters up', 'Ledger', 'OTLP requests refused (time range)']) {
      expect(byTitle(OVERVIEW_UID, title).links?.length, title).toBeGreaterThan(0);
    }
  });

  it('have "this month" by provider and by model on a fixed month range, whatever the dashboard range', () => {
    for (const title of ['Spend this month by provider', 'Spend and tokens this month by model']) {
      const p = byTitle(OVERVIEW_UID, title);
      expect(p.timeFrom).toBe('now/M');
      for (const t of p.targets) expect(t.expr).toContain('[$__range]');
    }
  });

  it('use scaling units for tokens and requests', () => {
    expect(byTitle(OVERVIEW_UID, 'Tokens').fieldConfig.defaults.unit).toBe('count:tokens');
    expect(byTitle(OVERVIEW_UID, 'Requests').fieldConfig.defaults.unit).toBe('count:requests');
    expect(byTitle(OVERVIEW_UID, 'Tokens per second by type').fieldConfig.defaults.unit).toBe('count:tokens/s');
  });

  it('show the exporter\'s process, OTLP request and build metrics', () => {
    const exprs = boards[EXPORTER_HEALTH_UID].flatMap((p: any) => p.targets.map((t: any) => t.expr)).join('\n');
    for (const m of [METRIC.otlpRequestsTotal, `${METRIC.otlpRequestDurationSeconds}_bucket`, METRIC.buildInfo, PROCESS_METRIC.cpuSecondsTotal, PROCESS_METRIC.residentMemoryBytes, PROCESS_METRIC.eventLoopLagP99Seconds]) {
      expect(exprs).toContain(m);
    }
  });
});

describe('metricNamesIn', () => {
  it('finds metric names and skips functions, labels, keywords, durations and variables', () => {
    expect(
      metricNamesIn(
        'sum by (user, plan) (rate(tokenmeter_tokens_total{plan=~"$plan", type="input"}[$__rate_interval])) * 3600 ' +
          '/ on (plan) group_left () max by (plan) (tokenmeter_period_end_timestamp_seconds) - time() > 1e3 and up offset 5m',
      ),
    ).toEqual(['tokenmeter_period_end_timestamp_seconds', 'tokenmeter_tokens_total', 'up']);
    expect(metricNamesIn('histogram_quantile(0.99, sum by (le) (rate(x_bucket{le="+Inf"}[5m])))')).toEqual(['x_bucket']);
    expect(metricNamesIn('label_replace(a >= 0.8, "limit", "tokens", "", "") or b')).toEqual(['a', 'b']);
  });

  it('maps histogram samples back to the metric', () => {
    expect(baseMetricName('tokenmeter_ledger_commit_seconds_bucket', HISTOGRAMS)).toBe(METRIC.ledgerCommitSeconds);
    expect(baseMetricName('tokenmeter_tokens_total', HISTOGRAMS)).toBe(METRIC.tokensTotal);
  });
});
