/**
 * Generates README.md's reference sections from the code they describe, so the README cannot drift:
 *   - config:  the configuration reference, from the zod schema (src/config renderConfigReference()),
 *   - metrics: the Prometheus metrics, from the names in src/contract/names.ts and the exporter's own HELP texts,
 *   - alerts:  the alert rules, from the definitions in src/dashboards,
 *   - catalog: the price catalog's models and dated entries by provider and source confidence, from data/price-catalog.yaml.
 * Each section sits between `<!-- generated:NAME:start -->` and `<!-- generated:NAME:end -->`.
 *
 *   npm run readme          rewrites the sections in README.md
 *   npm run check:readme    exits 1 when README.md is not what `npm run readme` would write
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LABEL, METRIC, PROCESS_METRIC } from '../src/contract/names.js';
import { renderConfigReference } from '../src/config/index.js';
import { ALERTS } from '../src/dashboards/alerts.js';
import { ExporterMetrics } from '../src/exporter/metrics.js';
import { CATALOG_PROVIDERS, PriceBook } from '../src/pricing/index.js';

export const SECTION_NAMES = ['config', 'metrics', 'alerts', 'catalog'] as const;
export type SectionName = (typeof SECTION_NAMES)[number];

const startMarker = (name: string) => `<!-- generated:${name}:start -->`;
const endMarker = (name: string) => `<!-- generated:${name}:end -->`;

/** Escapes a value for a Markdown table cell. */
function cell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** Per-user series carry exactly these labels (DESIGN.md: never multiplied by model and type). */
const PER_USER_METRICS = new Set<string>([
  METRIC.userTokensTotal, METRIC.userCostUsdTotal, METRIC.periodTokens, METRIC.periodRequests, METRIC.periodCostUsd,
  METRIC.limitTokens, METRIC.limitRequests, METRIC.limitCostUsd,
]);

export function renderMetricsReference(): string {
  // The exporter's real registry gives each metric's type and HELP text; names come from the contract constants.
  const metrics = new ExporterMetrics({
    maxUsers: 1,
    limitsFor: () => ({}),
    processMetrics: true,
  });
  const byName = new Map<string, { type: string; help: string; labelNames: readonly string[] }>();
  for (const m of metrics.metricFamilies()) {
    const labelNames = m.labelNames ?? (PER_USER_METRICS.has(m.name) ? [LABEL.user, LABEL.plan] : []);
    byName.set(m.name, { type: m.type, help: m.help, labelNames });
  }
  const rows = ['| metric | type | labels | meaning |', '| --- | --- | --- | --- |'];
  const missing: string[] = [];
  for (const name of [...Object.values(METRIC), ...Object.values(PROCESS_METRIC)]) {
    const m = byName.get(name);
    if (!m) {
      missing.push(name);
      continue;
    }
    const labels = m.labelNames.length ? m.labelNames.map((l) => `\`${l}\``).join(', ') : '—';
    rows.push(`| \`${name}\` | ${m.type} | ${labels} | ${cell(m.help)} |`);
  }
  if (missing.length) {
    rows.push('', `Named in the contract but not (yet) emitted by the exporter: ${missing.map((n) => `\`${n}\``).join(', ')}.`);
  }
  return rows.join('\n');
}

export function renderAlertsReference(): string {
  const rows = ['| alert | severity | for | fires when | summary |', '| --- | --- | --- | --- | --- |'];
  for (const a of ALERTS) {
    rows.push(`| \`${a.name}\` | ${a.severity} | ${a.for} | \`${cell(a.expr)}\` | ${cell(a.summary)} |`);
  }
  return rows.join('\n');
}

export function renderCatalogSummary(): string {
  const book = PriceBook.load();
  const confidences = ['provider_page', 'announcement', 'dated_price_map'] as const;
  const rows = [
    '| provider | models | dated entries | from a provider page | from an announcement | from a dated price map | latest effective_from |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  const line = (label: string, entries: typeof book.entries) => {
    const models = new Set(entries.map((e) => `${e.provider}/${e.model}`)).size;
    const by = confidences.map((c) => entries.filter((e) => e.raw.source_confidence === c).length);
    const latest = entries.map((e) => e.effectiveFrom.slice(0, 10)).sort().at(-1) ?? '—';
    return `| ${label} | ${models} | ${entries.length} | ${by.join(' | ')} | ${latest} |`;
  };
  for (const p of CATALOG_PROVIDERS) rows.push(line(p, book.entries.filter((e) => e.provider === p)));
  rows.push(line('**all**', book.entries));
  return rows.join('\n');
}

export function renderSections(): Record<SectionName, string> {
  return {
    config: renderConfigReference().trim(),
    metrics: renderMetricsReference(),
    alerts: renderAlertsReference(),
    catalog: renderCatalogSummary(),
  };
}

/** Replaces the text between each pair of markers; throws when a marker is missing or out of order. */
export function replaceSections(readme: string, sections: Partial<Record<string, string>>): string {
  let out = readme;
  for (const [name, body] of Object.entries(sections)) {
    const start = out.indexOf(startMarker(name));
    const end = out.indexOf(endMarker(name));
    if (start < 0 || end < 0 || end < start) {
      throw new Error(`README.md has no ${startMarker(name)} … ${endMarker(name)} pair`);
    }
    out = out.slice(0, start) + `${startMarker(name)}\n${body}\n` + out.slice(end);
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  const check = argv.includes('--check');
  const path = fileURLToPath(new URL('../README.md', import.meta.url));
  const current = readFileSync(path, 'utf8');
  const next = replaceSections(current, renderSections());
  if (check) {
    if (next !== current) {
      process.stderr.write('README.md is out of date with the code it documents: run `npm run readme` and commit it.\n');
      return 1;
    }
    process.stdout.write('README.md generated sections are current.\n');
    return 0;
  }
  if (next !== current) writeFileSync(path, next);
  process.stdout.write(next !== current ? 'README.md updated.\n' : 'README.md already current.\n');
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      process.stderr.write(`readme: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
