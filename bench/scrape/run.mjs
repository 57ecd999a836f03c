// Section 3 (and the scrape half of 5): /metrics time, bytes and heap with N active users, against prom-client
// serialising the same number of plain series.
import { fileURLToPath } from 'node:url';
import { runChild } from '../lib/child.mjs';
import { fmt, fmtBytes } from '../lib/stats.mjs';

const CHILD = fileURLToPath(new URL('./child.mjs', import.meta.url));

export async function benchScrape(cfg, log) {
  const rows = [];
  for (const users of cfg.users) {
    const scrapes = users >= 100_000 ? Math.max(2, Math.ceil(cfg.scrapes / 2)) : cfg.scrapes;
    log(`scrape: tokenmeter with ${users} active users`);
    const tm = await runChild(CHILD, ['tokenmeter', String(users), String(scrapes)], { execArgv: ['--expose-gc', '--max-old-space-size=4096'] });
    log(`scrape: prom-client with ${tm.series.all} series`);
    const pc = await runChild(CHILD, ['prom-client', String(users), String(scrapes), String(tm.series.all)], { execArgv: ['--expose-gc', '--max-old-space-size=4096'] });
    const perUserOk = Object.entries(tm.series.perUser).every(([name, n]) => name === 'tokenmeter_limit_cost_usd' || n === users + 1);
    rows.push({
      users,
      tokenmeter: tm,
      promClient: pc,
      perUserSeriesOk: perUserOk,
      renderVsPromClient: tm.renderMillis / pc.scrapeMillis,
      httpVsPromClient: tm.scrapeMillis / pc.scrapeMillis,
    });
  }
  return { config: cfg, rows };
}

export function scrapeMarkdown(d) {
  const out = [];
  out.push(
    `The real exporter (embedded ledger) after N users each made a call through OTLP (so every per-user counter, period gauge and ` +
      `limit gauge exists), against a prom-client \`Registry\` holding the same number of plain \`Gauge\` series spread over the ` +
      `same per-user families. "render" is \`ExporterMetrics.renderBody()\` in-process (the time the scrape blocks the event loop), ` +
      `"GET" the whole \`GET /metrics\` from a client in the same process. Heap: \`heapUsed\` after \`global.gc()\` ` +
      `(\`--expose-gc\`), before and after the users became active, / N. Medians of ${d.config.scrapes} scrapes (fewer at 100k).`,
    '',
  );
  out.push('| active users | series | tokenmeter render ms | tokenmeter GET ms | prom-client `metrics()` ms | render / prom-client | body | heap / user (tokenmeter) | heap / user (prom-client) | check |');
  out.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of d.rows) {
    out.push(
      `| ${r.users.toLocaleString('en-US')} | ${r.tokenmeter.series.all.toLocaleString('en-US')} | **${fmt(r.tokenmeter.renderMillis)}** | ${fmt(r.tokenmeter.scrapeMillis)} | ${fmt(r.promClient.scrapeMillis)} | ${fmt(r.renderVsPromClient, 2)} | ${fmtBytes(r.tokenmeter.bytes)} | **${fmtBytes(r.tokenmeter.heapBytesPerUser)}** | ${fmtBytes(r.promClient.heapBytesPerUser)} | ${r.perUserSeriesOk ? 'ok' : '**series missing**'} |`,
    );
  }
  out.push('');
  const renderOk = d.rows.every((r) => r.renderVsPromClient <= 1);
  const httpOk = d.rows.every((r) => r.httpVsPromClient <= 1);
  const heapOk = d.rows.every((r) => r.tokenmeter.heapBytesPerUser <= 2048);
  out.push(`- Goal "scrape ≤ prom-client's own serialisation of the same series": render **${renderOk ? 'met' : 'NOT met'}** at every size; the whole GET ${httpOk ? 'also within it' : '**is not** (HTTP and the client reading the body add to it)'}.`);
  out.push(`- Goal "≤ 2 KB heap per active user": **${heapOk ? 'met' : 'NOT met'}** (${d.rows.map((r) => `${fmtBytes(r.tokenmeter.heapBytesPerUser)} at ${r.users.toLocaleString('en-US')}`).join(', ')}).`);
  out.push('- The ledger is never read during a scrape: the period gauges are the rollups the ledger returned with each commit (and the periodic refresh, switched off here).');
  out.push('');
  return out.join('\n');
}

export function scrapeGrowthMarkdown(d) {
  const out = ['| active users | render ms | ms per 1k users | prom-client ms per 1k users | body bytes per user |', '| --- | --- | --- | --- | --- |'];
  for (const r of d.rows) {
    out.push(`| ${r.users.toLocaleString('en-US')} | ${fmt(r.tokenmeter.renderMillis)} | ${fmt((r.tokenmeter.renderMillis * 1000) / r.users, 2)} | ${fmt((r.promClient.scrapeMillis * 1000) / r.users, 2)} | ${fmt(r.tokenmeter.bytes / r.users, 0)} |`);
  }
  return out.join('\n');
}
