/** Which limit refused a call; `unavailable`: the exporter did not answer and enforcement fails closed. */
export type UsageLimitName = 'requests' | 'tokens' | 'cost_usd' | 'unavailable';

export interface UsageLimitDetails {
  user: string;
  plan: string;
  limit: UsageLimitName;
  /** Usage of the period so far including calls in flight (reservations), for `limit`: a count or a decimal string. */
  used: number | string;
  /** The limit's value (a count, or for cost_usd an exact decimal string); null for `unavailable`. */
  limitValue: number | string | null;
  /** When the limit resets: the end of the billing period (for `unavailable`, a few seconds from now). */
  retryAfter: Date;
}

/**
 * An LLM call refused before anything was sent: the user is over (or the call would take them over) a limit of
 * their plan for this period. Express: `if (err instanceof UsageLimitError) return res.status(429).set('Retry-After',
 * String(err.retryAfterSeconds)).json(err.toJSON())`.
 */
export class UsageLimitError extends Error {
  readonly user: string;
  readonly plan: string;
  readonly limit: UsageLimitName;
  readonly used: number | string;
  readonly limitValue: number | string | null;
  readonly retryAfter: Date;
  /** The HTTP status an app answers with (429 Too Many Requests; 503 when the limit could not be checked). */
  readonly status: 429 | 503;
  readonly code = 'usage_limit_exceeded';

  constructor(d: UsageLimitDetails) {
    super(
      d.limit === 'unavailable'
        ? `usage limits of user ${d.user} could not be checked (the tokenmeter exporter did not answer) and enforcement fails closed`
        : `user ${d.user} (plan ${d.plan}) is over the ${d.limit} limit for this period: ${String(d.used)} used of ${String(d.limitValue)}; resets ${d.retryAfter.toISOString()}`,
    );
    this.name = 'UsageLimitError';
    this.user = d.user;
    this.plan = d.plan;
    this.limit = d.limit;
    this.used = d.used;
    this.limitValue = d.limitValue;
    this.retryAfter = d.retryAfter;
    this.status = d.limit === 'unavailable' ? 503 : 429;
  }

  /** Seconds until `retryAfter` (at least 1), for a Retry-After header. */
  get retryAfterSeconds(): number {
    return Math.max(1, Math.ceil((this.retryAfter.getTime() - Date.now()) / 1000));
  }

  toJSON(): Record<string, unknown> {
    return {
      error: this.code,
      message: this.message,
      user: this.user,
      plan: this.plan,
      limit: this.limit,
      used: this.used,
      limit_value: this.limitValue,
      retry_after: this.retryAfter.toISOString(),
    };
  }
}
