/**
 * `tokenmeter price <model> --input N --output N [...]`: prices one call from the catalog and prints the
 * per-type breakdown (or one JSON object with --json).
 */
import { COST_TYPE_FEE, TOKEN_TYPES } from '../contract/names.js';
import { PriceBook } from '../pricing/price-book.js';
import { convertFromUsd, CurrencyError, formatMoney, parseCurrencyRates, type CurrencyRates } from '../pricing/currency.js';
import { effectiveDateMillis, effectiveDateSchema } from '../pricing/catalog-schema.js';
import { SERVICE_TIERS } from '../pricing/service-tier.js';
import type { ServiceTier, ToolCalls } from '../pricing/types.js';
import { totalTokens, type Usage } from '../usage/usage.js';
import { CliError } from './cli-error.js';
import { parseFlags } from './parse-flags.js';

const HELP = `Usage: tokenmeter price <model> --input N --output N [options]

Prices one call with the shipped catalog (USD per million tokens, exact decimals).

Options:
  --input N            uncached input tokens (not read from or written to a prompt cache)
  --output N           output tokens that are not reasoning tokens
  --cache-read N       input tokens read from a prompt cache
  --cache-write N      input tokens written to a prompt cache (5-minute TTL unless --cache-write-1h)
  --cache-write-1h N   the part of --cache-write written with a 1-hour TTL
  --reasoning N        reasoning / thinking tokens
  --input-audio N      the part of --input that was audio (priced at the model's audio input rate)
  --output-audio N     the part of --output that was audio
  --output-image N     the part of --output that was image tokens
  --web-searches N     web search calls (OpenAI web_search tool, Anthropic web_search_requests): per-call fee
  --web-search-preview-calls N   calls of OpenAI's older web_search_preview tool: per-call fee
  --grounding-queries N          Gemini grounding with Google Search queries: per-call fee
  --provider P         provider (openai, anthropic, gcp.gemini, aws.bedrock, ...)
  --at WHEN           the call's instant: YYYY-MM-DD (00:00 UTC) or an ISO instant such as
                       2026-09-01T02:30:00Z; picks the price in force and peak / off-peak hours (default: now)
  --tier T             service tier: standard, batch, flex, priority (default: standard)
  --speed S            standard or fast (Anthropic fast mode, priced at the model's fast-mode multiplier)
  --processing P       global or regional (a data-residency / in-geography endpoint: the model's regional
                       premium, where it has one)
  --currency CODE      also show the total in CODE (needs a rate)
  --rate CODE=RATE     exchange rate, units of CODE per 1 USD (repeatable; or TOKENMETER_CURRENCY_RATES)
  --json               print one JSON object
  -h, --help           this help
`;

const TOKEN_FLAGS = ['input', 'output', 'cache-read', 'cache-write', 'cache-write-1h', 'reasoning', 'input-audio', 'output-audio', 'output-image'] as const;
/** Per-call fee counts: flag -> fee kind. */
const FEE_FLAGS = { 'web-searches': 'web_search', 'web-search-preview-calls': 'web_search_preview', 'grounding-queries': 'search_grounding' } as const;

const OPTIONS = {
  input: { type: 'string' },
  output: { type: 'string' },
  'cache-read': { type: 'string' },
  'cache-write': { type: 'string' },
  'cache-write-1h': { type: 'string' },
  reasoning: { type: 'string' },
  'input-audio': { type: 'string' },
  'output-audio': { type: 'string' },
  'output-image': { type: 'string' },
  'web-searches': { type: 'string' },
  'web-search-preview-calls': { type: 'string' },
  'grounding-queries': { type: 'string' },
  provider: { type: 'string' },
  at: { type: 'string' },
  tier: { type: 'string' },
  speed: { type: 'string' },
  processing: { type: 'string' },
  currency: { type: 'string' },
  rate: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function tokenCount(flag: string, raw: string | undefined): number {
  if (raw === undefined) return 0;
  if (!/^\d+$/.test(raw)) throw new CliError(`--${flag} must be a non-negative integer, got '${raw}'`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new CliError(`--${flag} is too large: ${raw}`);
  return n;
}

function collectRates(flagRates: string[] | undefined, env: string | undefined): CurrencyRates {
  try {
    return { ...(env ? parseCurrencyRates(env) : {}), ...parseCurrencyRates((flagRates ?? []).join(',')) };
  } catch (err) {
    if (err instanceof CurrencyError) throw new CliError(`--rate / TOKENMETER_CURRENCY_RATES: ${err.message}`);
    throw err;
  }
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, OPTIONS, [...TOKEN_FLAGS, ...Object.keys(FEE_FLAGS)]);
  const positionals = parsed.positionals;
  const values = parsed.values as {
    [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K] extends { multiple: true } ? string[] : (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string;
  };
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length === 0) throw new CliError('missing <model> argument (e.g. tokenmeter price gpt-4o --input 1000 --output 200)');
  if (positionals.length > 1) throw new CliError(`expected one <model>, got ${positionals.length}: ${positionals.join(' ')}`);
  const model = positionals[0];

  const n = Object.fromEntries(TOKEN_FLAGS.map((f) => [f, tokenCount(f, values[f] as string | undefined)])) as Record<(typeof TOKEN_FLAGS)[number], number>;
  if (n['cache-write-1h'] > n['cache-write']) throw new CliError('--cache-write-1h must not exceed --cache-write (it is the 1-hour part of it)');
  const usage: Usage = {
    input: n.input,
    cache_read: n['cache-read'],
    cache_write: n['cache-write'],
    output: n.output,
    reasoning: n.reasoning,
  };
  if (n['cache-write-1h'] > 0) usage.cache_write_1h = n['cache-write-1h'];
  if (n['input-audio'] > n.input) throw new CliError('--input-audio must not exceed --input (it is the audio part of it)');
  if (n['output-audio'] + n['output-image'] > n.output) {
    throw new CliError('--output-audio + --output-image must not exceed --output (they are parts of it)');
  }
  if (n['input-audio'] > 0) usage.input_audio = n['input-audio'];
  if (n['output-audio'] > 0) usage.output_audio = n['output-audio'];
  if (n['output-image'] > 0) usage.output_image = n['output-image'];

  let toolCalls: ToolCalls | undefined;
  for (const [flag, kind] of Object.entries(FEE_FLAGS)) {
    const c = tokenCount(flag, values[flag as keyof typeof FEE_FLAGS] as string | undefined);
    if (c > 0) (toolCalls ??= {})[kind] = c;
  }

  let at = new Date();
  if (values.at !== undefined) {
    if (!effectiveDateSchema.safeParse(values.at).success) {
      throw new CliError(`--at must be a date YYYY-MM-DD or an ISO instant ending in Z (2026-09-01T02:30:00Z), got '${values.at}'`);
    }
    at = new Date(effectiveDateMillis(values.at));
  }
  let tier: ServiceTier = 'standard';
  if (values.tier !== undefined) {
    if (!(SERVICE_TIERS as readonly string[]).includes(values.tier)) {
      throw new CliError(`--tier must be one of ${SERVICE_TIERS.join(', ')}, got '${values.tier}'`);
    }
    tier = values.tier as ServiceTier;
  }
  if (values.speed !== undefined && values.speed !== 'standard' && values.speed !== 'fast') {
    throw new CliError(`--speed must be standard or fast, got '${values.speed}'`);
  }
  if (values.processing !== undefined && values.processing !== 'global' && values.processing !== 'regional') {
    throw new CliError(`--processing must be global or regional, got '${values.processing}'`);
  }
  const speed = values.speed as 'standard' | 'fast' | undefined;
  const processing = values.processing as 'global' | 'regional' | undefined;
  let currency: string | undefined;
  let rates: CurrencyRates = {};
  if (values.currency !== undefined) {
    currency = values.currency.trim().toUpperCase();
    if (!/^[A-Z]{3}$/.test(currency)) throw new CliError(`--currency must be an ISO 4217 code such as EUR, got '${values.currency}'`);
    rates = collectRates(values.rate, process.env.TOKENMETER_CURRENCY_RATES);
    if (currency !== 'USD' && rates[currency] === undefined) {
      throw new CliError(
        `no exchange rate for ${currency}: pass --rate ${currency}=<units per USD> or set TOKENMETER_CURRENCY_RATES=${currency}=<units per USD>`,
      );
    }
  }

  const book = PriceBook.load();
  const result = book.price({ provider: values.provider, model, usage, at, serviceTier: tier, speed, processing, toolCalls });
  if (!result.priced) {
    const hint = result.suggestions.length ? ` (did you mean: ${result.suggestions.join(', ')}?)` : '';
    throw new CliError(`${result.reason}${hint}`);
  }

  let display: { currency: string; total: string; formatted: string; rate: string } | undefined;
  if (currency) {
    try {
      const converted = convertFromUsd(result.totalUsd, currency, rates);
      display = { currency, total: converted.toFixed(), formatted: formatMoney(converted, currency), rate: currency === 'USD' ? '1' : rates[currency] };
    } catch (err) {
      if (err instanceof CurrencyError) throw new CliError(err.message);
      throw err;
    }
  }

  if (values.json) {
    const out: Record<string, unknown> = {
      provider: result.provider,
      model: result.model,
      total_usd: result.totalUsd.toFixed(),
      cost_usd: Object.fromEntries(TOKEN_TYPES.map((t) => [t, result.costUsd[t].toFixed()])),
      tokens: Object.fromEntries(TOKEN_TYPES.map((t) => [t, usage[t]])),
    };
    if (result.pricePeriod) out.price_period = result.pricePeriod;
    if (result.adjustments) out.adjustments = result.adjustments;
    if (result.fees) {
      out.fee_usd = result.feeCostUsd?.toFixed();
      out.fees = result.fees.map((f) => ({ kind: f.kind, calls: f.calls, billed: f.billed, usd_per_1000: f.usdPer1000, cost_usd: f.costUsd }));
    }
    if (display) out.display = { currency: display.currency, rate: display.rate, total: display.total, formatted: display.formatted };
    process.stdout.write(JSON.stringify(out) + '\n');
    return 0;
  }

  const rateOf = (t: (typeof TOKEN_TYPES)[number]): string => {
    const r = result.ratesUsdPerMtok;
    if (!r) return '';
    if (t === 'cache_write' && usage.cache_write_1h) return `${r.cache_write} / 1h ${r.cache_write_1h}`;
    if (t === 'input' && usage.input_audio) return `${r.input} / audio ${r.input_audio}`;
    if (t === 'output' && (usage.output_audio || usage.output_image)) {
      return [r.output, usage.output_audio ? `audio ${r.output_audio}` : '', usage.output_image ? `image ${r.output_image}` : ''].filter(Boolean).join(' / ');
    }
    return r[t] || '-';
  };
  const rows = [
    ['type', 'tokens', 'USD/Mtok', 'cost USD'],
    ...TOKEN_TYPES.map((t) => [t, String(usage[t]), rateOf(t), result.costUsd[t].toFixed()]),
  ];
  // Fees are not tokens: one row per fee kind, its count in the tokens column's place and its rate per 1,000 calls.
  for (const f of result.fees ?? []) {
    rows.push([`${COST_TYPE_FEE} ${f.kind}`, `${f.calls} call${f.calls === 1 ? '' : 's'}`, `${f.usdPer1000}/1k${f.billed !== f.calls ? ' per request' : ''}`, f.costUsd]);
  }
  const total = ['total', String(totalTokens(usage)), '', result.totalUsd.toFixed()];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...[...rows, total].map((r) => r[i].length)));
  const line = (r: string[]) => `${r[0].padEnd(widths[0])}  ${r[1].padStart(widths[1])}  ${r[2].padStart(widths[2])}  ${r[3].padStart(widths[3])}`;
  const out = [
    `${result.provider}/${result.model}  ${tier} tier${result.contextTier ? `, ${result.contextTier}` : ''}${result.pricePeriod ? `, ${result.pricePeriod === 'peak' ? 'peak' : 'off-peak'} hours (${at.toISOString()})` : ''}${result.adjustments ? `, ${result.adjustments.join(', ')}` : ''}`,
    `price ${result.priceId} (${result.origin})${result.source ? `, source ${result.source}` : ''}${result.sourceDate ? ` (taken ${result.sourceDate})` : ''}`,
    '',
    line(rows[0]),
    ...rows.slice(1).map(line),
    '-'.repeat(widths.reduce((a, b) => a + b, 6)),
    line(total),
  ];
  if (display) out.push(`total ${display.currency}: ${display.formatted} (at ${display.rate} ${display.currency}/USD, rounded half-even)`);
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}
