import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { replaceSections, renderSections, renderAlertsReference, renderMetricsReference, renderCatalogSummary } from '../../scripts/readme.js';
import { METRIC } from '../../src/contract/names.js';
import { ALERTS } from '../../src/dashboards/alerts.js';

describe('README generator', () => {
  const doc = 'intro\n<!-- generated:a:start -->\nold\n<!-- generated:a:end -->\nmiddle\n<!-- generated:b:start -->\n<!-- generated:b:end -->\n';

  it('replaces only the text between the markers, and is idempotent', () => {
    const once = replaceSections(doc, { a: 'new A', b: 'new B' });
    expect(once).toBe('intro\n<!-- generated:a:start -->\nnew A\n<!-- generated:a:end -->\nmiddle\n<!-- generated:b:start -->\nnew B\n<!-- generated:b:end -->\n');
    expect(replaceSections(once, { a: 'new A', b: 'new B' })).toBe(once);
  });

  it('refuses a README without a section marker pair', () => {
    expect(() => replaceSections(doc, { c: 'x' })).toThrow(/generated:c:start/);
    expect(() => replaceSections('<!-- generated:a:end -->\n<!-- generated:a:start -->', { a: 'x' })).toThrow();
  });

  it('lists every contract metric the exporter emits, and every alert', () => {
    const metrics = renderMetricsReference();
    for (const name of Object.values(METRIC)) expect(metrics).toContain(`\`${name}\``);
    const alerts = renderAlertsReference();
    for (const a of ALERTS) expect(alerts).toContain(`\`${a.name}\``);
    // PromQL and Go templates contain '|', which would split a Markdown table cell.
    for (const line of alerts.split('\n').slice(2)) expect(line.replace(/\\\|/g, '').split('|')).toHaveLength(7);
  });

  it('summarises the price catalog by provider, with a total that adds up', () => {
    const rows = renderCatalogSummary().split('\n').slice(2).map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
    expect(rows.map((r) => r[0])).toEqual(['openai', 'anthropic', 'google', 'mistral', 'deepseek', 'xai', 'bedrock', '**all**']);
    const total = rows.at(-1)!;
    for (const col of [1, 2, 3, 4, 5]) {
      expect(rows.slice(0, -1).reduce((sum, r) => sum + Number(r[col]), 0), `column ${col}`).toBe(Number(total[col]));
    }
    // Every dated entry has exactly one confidence.
    for (const r of rows) expect(Number(r[3]) + Number(r[4]) + Number(r[5])).toBe(Number(r[2]));
  });

  it('README.md is current (npm run readme)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(replaceSections(readme, renderSections())).toBe(readme);
  });
});
