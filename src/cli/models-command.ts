/** `tokenmeter models [--provider P] [--json]`: lists the price catalog (the price in force now per model). */
import { PriceBook, type CompiledEntry } from '../pricing/price-book.js';
import { catalogProviderFor, providerLabel } from '../pricing/normalize.js';
import { CliError } from './cli-error.js';
import { parseFlags } from './parse-flags.js';

const HELP = `Usage: tokenmeter models [--provider P] [--json]

Lists the price catalog: one line per model with the price in force now (USD per million tokens), how sure its
source is (provider_page, announcement, dated_price_map) and the source it was taken from.

Options:
  --provider P   only this provider (openai, anthropic, google / gcp.gemini, mistral, deepseek)
  --json         print a JSON array with every dated entry, aliases, tiers and sources
  -h, --help     this help
`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, {
    provider: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  const positionals = parsed.positionals;
  const values = parsed.values as { provider?: string; json?: boolean; help?: boolean };
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length) throw new CliError(`unexpected argument '${positionals[0]}'`);
  const book = PriceBook.load();
  let entries: readonly CompiledEntry[] = book.entries;
  if (values.provider !== undefined) {
    const p = catalogProviderFor(values.provider) ?? providerLabel(values.provider);
    entries = entries.filter((e) => e.provider === p);
    if (!entries.length) {
      const known = [...new Set(book.entries.map((e) => e.provider))].join(', ');
      throw new CliError(`--provider: no catalog models for '${values.provider}' (providers: ${known})`);
    }
  }

  if (values.json) {
    const out = entries.map((e) => ({
      provider: e.provider,
      model: e.model,
      effective_from: e.effectiveFrom,
      aliases: e.raw.aliases ?? [],
      match_prefixes: e.raw.match_prefixes ?? [],
      prices_usd_per_mtok: e.raw.prices_usd_per_mtok,
      context_tiers: e.raw.context_tiers ?? [],
      service_tiers: e.raw.service_tiers ?? {},
      ...(e.raw.retired_from !== undefined ? { retired_from: e.raw.retired_from } : {}),
      ...(e.raw.fees !== undefined ? { fees: e.raw.fees } : {}),
      source: e.source,
      source_date: e.sourceDate,
      source_confidence: e.raw.source_confidence,
      ...(e.raw.notes !== undefined ? { notes: e.raw.notes } : {}),
    }));
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return 0;
  }

  // One row per model: the entry in force now (or the first future one).
  const now = Date.now();
  const byModel = new Map<string, CompiledEntry>();
  for (const e of entries) {
    const key = `${e.provider}/${e.model}`;
    const cur = byModel.get(key);
    const better =
      !cur ||
      (e.effectiveFromMillis <= now && (cur.effectiveFromMillis > now || e.effectiveFromMillis > cur.effectiveFromMillis)) ||
      (e.effectiveFromMillis > now && cur.effectiveFromMillis > now && e.effectiveFromMillis < cur.effectiveFromMillis);
    if (better) byModel.set(key, e);
  }
  const rows = [['provider', 'model', 'input', 'cache_read', 'cache_write', 'cache_1h', 'output', 'tiers', 'since', 'confidence', 'source']];
  for (const e of byModel.values()) {
    const p = e.raw.prices_usd_per_mtok;
    const tiers = [
      ...(e.raw.context_tiers ?? []).map((t) =>
        t.from_input_tokens !== undefined ? `>=${t.from_input_tokens / 1000}k` : `>${(t.above_input_tokens ?? 0) / 1000}k`,
      ),
      ...Object.keys(e.raw.service_tiers ?? {}),
    ].join(',');
    rows.push([
      e.provider,
      e.model,
      p.input,
      p.cache_read ?? p.input,
      p.cache_write ?? p.input,
      p.cache_write_1h ?? p.cache_write ?? p.input,
      p.output ?? '-',
      tiers || '-',
      e.effectiveFrom.slice(0, 10),
      e.raw.source_confidence ?? '-',
      e.source ?? '-',
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) => r.map((c, i) => (i >= 2 && i <= 6 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd());
  process.stdout.write(lines.join('\n') + `\n\n${byModel.size} models, USD per million tokens. Details: tokenmeter models --json\n`);
  return 0;
}
