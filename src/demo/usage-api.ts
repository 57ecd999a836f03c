/**
 * A small client for the exporter's usage API — the demo's only source of numbers, so that what the terminal
 * shows is exactly what a user of the API (or the status page) sees.
 */
import { METRIC } from '../contract/names.js';

export interface TokenCounts {
  input: number;
  cache_read: number;
  cache_write: number;
  output: number;
  reasoning: number;
  total: number;
}

export interface Period {
  start: string;
  end: string;
}

export interface UserUsage {
  user: string;
  plan: string;
  tokens: TokenCounts;
  requests: number;
  /** Exact cost of the priced requests; null when none had a price (unknown, not 0). */
  cost_usd: string | null;
  /** Requests whose model had no price (their tokens are counted, their cost is not in cost_usd). */
  unpriced_requests?: number;
  limits: { tokens: number | null; requests: number | null; cost_usd: string | null };
  ratios: { tokens: number | null; requests: number | null; cost_usd: number | null };
  max_ratio: number | null;
}

export interface UsageResponse {
  period: Period;
  /** Users with usage this period (the list is capped, by default at 1,000). */
  total?: number;
  users: UserUsage[];
}

export interface ModelSpend {
  provider: string;
  model: string;
  tokens: TokenCounts;
  requests: number;
  cost_usd: string | null;
  unpriced_requests?: number;
}

export interface SummaryResponse {
  period: Period;
  totals: { tokens: TokenCounts; requests: number; cost_usd: string | null; unpriced_requests?: number };
  by_provider: { provider: string; tokens: TokenCounts; requests: number; cost_usd: string | null; unpriced_requests?: number }[];
  by_model: ModelSpend[];
}

export interface Snapshot {
  usage: UsageResponse;
  summary: SummaryResponse;
  /** Sum of `tokenmeter_ingested_spans_total` over all outcomes, from `/metrics`. */
  ingestedSpans: number;
  takenAtMillis: number;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
  return (await res.json()) as T;
}

/** Sums every sample of one counter in a Prometheus text exposition. */
export function sumCounter(exposition: string, name: string): number {
  let sum = 0;
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}

export class UsageApiClient {
  constructor(private readonly baseUrl: string) {}

  usage(): Promise<UsageResponse> {
    return getJson(new URL('/api/v1/usage', this.baseUrl).href);
  }

  summary(): Promise<SummaryResponse> {
    return getJson(new URL('/api/v1/summary', this.baseUrl).href);
  }

  async ingestedSpans(): Promise<number> {
    const res = await fetch(new URL('/metrics', this.baseUrl));
    if (!res.ok) throw new Error(`GET /metrics: HTTP ${res.status}`);
    return sumCounter(await res.text(), METRIC.ingestedSpansTotal);
  }

  async snapshot(): Promise<Snapshot> {
    const [usage, summary, ingestedSpans] = await Promise.all([this.usage(), this.summary(), this.ingestedSpans()]);
    return { usage, summary, ingestedSpans, takenAtMillis: Date.now() };
  }
}
