import { enforcementSettings, exporterRequest } from './enforce.js';
import { UsageLimitError, type UsageLimitName } from './usage-limit-error.js';

/** What is left of a user's allowance this period, after usage and the calls in flight (reservations). */
export interface RemainingUsage {
  user: string;
  plan: string;
  /** null: unlimited. */
  requests: number | null;
  tokens: number | null;
  /** Exact decimal string; null: no budget. */
  costUsd: string | null;
  /** The end of the billing period (when the limits reset). */
  periodEnd: Date;
}

interface UsageJson {
  user: string;
  plan: string;
  period: { end: string };
  limits: { tokens: number | null; requests: number | null; cost_usd: string | null };
  available?: { tokens: number | null; requests: number | null; cost_usd: string | null };
  remaining: { tokens: number | null; requests: number | null; cost_usd: string | null };
  tokens: { total: number };
  requests: number;
  cost_usd: string | null;
  reserved?: { tokens: number; requests: number; cost_usd: string };
}

function userOf(user: string | { id: string }): string {
  const id = typeof user === 'string' ? user : user?.id;
  if (typeof id !== 'string' || id.length === 0) throw new TypeError('tokenmeter: checkUsage/remaining need a user id (a string or { id })');
  return id;
}

async function fetchUsage(id: string): Promise<UsageJson> {
  const s = enforcementSettings();
  const url = new URL(`/api/v1/usage/${encodeURIComponent(id)}`, s.url);
  const res = await exporterRequest('GET', url, undefined, s);
  const j = res.json as UsageJson & { error?: string };
  if (res.status !== 200 || typeof j !== 'object' || j === null || typeof j.period?.end !== 'string') {
    throw new Error(`tokenmeter: the usage API answered HTTP ${res.status}${typeof j?.error === 'string' ? `: ${j.error.slice(0, 160)}` : ''}`);
  }
  return j;
}

/**
 * The user's remaining allowance this period (usage and calls in flight subtracted), from the exporter. Rejects
 * when the exporter cannot be reached within the enforcement timeout (it never guesses).
 */
export async function remaining(user: string | { id: string }): Promise<RemainingUsage> {
  const id = userOf(user);
  const j = await fetchUsage(id);
  const a = j.available ?? j.remaining;
  return { user: j.user, plan: j.plan, requests: a.requests, tokens: a.tokens, costUsd: a.cost_usd, periodEnd: new Date(j.period.end) };
}

/**
 * Resolves with the remaining allowance when the user may make another call; rejects with UsageLimitError (the
 * limit that is used up) when not, so an app can decide before doing any work.
 */
export async function checkUsage(user: string | { id: string }): Promise<RemainingUsage> {
  const id = userOf(user);
  const j = await fetchUsage(id);
  const a = j.available ?? j.remaining;
  const out: RemainingUsage = { user: j.user, plan: j.plan, requests: a.requests, tokens: a.tokens, costUsd: a.cost_usd, periodEnd: new Date(j.period.end) };
  const reserved = j.reserved ?? { tokens: 0, requests: 0, cost_usd: '0' };
  const over = (limit: UsageLimitName, used: number | string, value: number | string) =>
    new UsageLimitError({ user: j.user, plan: j.plan, limit, used, limitValue: value, retryAfter: out.periodEnd });
  if (a.requests !== null && a.requests <= 0 && j.limits.requests !== null) throw over('requests', j.requests + reserved.requests, j.limits.requests);
  if (a.tokens !== null && a.tokens <= 0 && j.limits.tokens !== null) throw over('tokens', j.tokens.total + reserved.tokens, j.limits.tokens);
  if (a.cost_usd !== null && j.limits.cost_usd !== null && Number(a.cost_usd) <= 0) throw over('cost_usd', j.cost_usd ?? '0', j.limits.cost_usd);
  return out;
}
