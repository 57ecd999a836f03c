import { TOKEN_TYPES } from '../contract/names.js';
import type { Usage } from './usage.js';

/**
 * Upper bound for one token count (one provider field, one bucket) of ONE call. The largest context windows
 * offered today are in the low millions of tokens, so 50 million is beyond any real call by an order of
 * magnitude, yet small enough that a corrupted or hostile value (1e12, 2^53) is rejected before it can be
 * priced and poison a counter that never goes down.
 */
export const MAX_PLAUSIBLE_TOKENS = 50_000_000;

/** A token count that cannot be real (negative, fractional, NaN, not a number, absurd), or no counts at all. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  /** The offending field as the provider or the span named it (nested fields dotted), or `usage` for the whole. */
  readonly field: string;

  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

/** What every normaliser returns: the five buckets, and one message per inconsistency it clamped. */
export interface NormalizedUsage {
  usage: Usage;
  warnings: string[];
}

/** A short, safe rendering of a hostile value for an error message. */
function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** The UsageError for a field whose value is unusable; the message names the field and the value. */
export function invalid(field: string, problem: string, value: unknown): UsageError {
  return new UsageError(field, `usage field "${field}" ${problem}: ${show(value)}`);
}

const INTEGER_STRING = /^-?[0-9]+$/;

/**
 * Validates one count. `undefined` and `null` mean "not reported" (OpenAI-compatible servers send
 * `"prompt_tokens_details": null`). With `allowStrings`, integer strings and bigints are accepted: OTLP/JSON
 * encodes int64 attribute values as strings.
 */
export function readCount(value: unknown, field: string, allowStrings = false): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (allowStrings && (typeof value === 'string' || typeof value === 'bigint')) {
    if (typeof value === 'string' && !INTEGER_STRING.test(value)) throw invalid(field, 'is not an integer', value);
    const big = BigInt(value);
    if (big < 0n) throw invalid(field, 'is negative', value);
    if (big > BigInt(MAX_PLAUSIBLE_TOKENS)) throw invalid(field, `exceeds MAX_PLAUSIBLE_TOKENS (${MAX_PLAUSIBLE_TOKENS})`, value);
    return Number(big);
  }
  if (typeof value !== 'number') throw invalid(field, 'is not a number', value);
  if (Number.isNaN(value)) throw invalid(field, 'is not a number', value);
  if (!Number.isFinite(value)) throw invalid(field, 'is not finite', value);
  if (value < 0) throw invalid(field, 'is negative', value);
  if (!Number.isInteger(value)) throw invalid(field, 'is not an integer', value);
  if (value > MAX_PLAUSIBLE_TOKENS) throw invalid(field, `exceeds MAX_PLAUSIBLE_TOKENS (${MAX_PLAUSIBLE_TOKENS})`, value);
  return value;
}

/** The usage object itself: anything but a plain object is rejected. */
export function usageObject(raw: unknown, what: string): Record<string, unknown> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new UsageError('usage', `${what} usage is not an object: ${show(raw)}`);
  }
  return raw as Record<string, unknown>;
}

/** A nested details object; absent or null = not reported. */
export function detailsObject(parent: Record<string, unknown>, key: string, field = key): Record<string, unknown> | undefined {
  const value = parent[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid(field, 'is not an object', value);
  return value as Record<string, unknown>;
}

/**
 * Reads the counts of one usage object and remembers whether any was present. Missing counts are 0, but a
 * usage with NO count at all is rejected: it is almost certainly the wrong object (a whole response, an
 * unrelated span), and pricing it as a free call would hide that.
 */
export class CountReader {
  private present = false;
  private readonly fields: string[] = [];

  constructor(private readonly allowStrings = false) {}

  count(obj: Record<string, unknown> | undefined, key: string, field = key): number | undefined {
    const n = obj === undefined ? undefined : readCount(obj[key], field, this.allowStrings);
    if (n !== undefined) this.present = true;
    // The names are only needed for requireAny's message, i.e. while no count was present (once one is, none is).
    else if (!this.present) this.fields.push(field);
    return n;
  }

  /** Throws `UsageError('usage')` when none of the fields read so far was present. */
  requireAny(what: string): void {
    if (!this.present) {
      const names = this.fields.length > 8 ? [...this.fields.slice(0, 8), '...'] : this.fields;
      throw new UsageError('usage', `${what} usage has no token counts (none of ${names.join(', ')})`);
    }
  }
}

/** `name (n)`, or `name (absent, 0)` for a total that was not reported. */
export function label(field: string, value: number | undefined): string {
  return value === undefined ? `${field} (absent, 0)` : `${field} (${value})`;
}

/** A part that the provider defines as a subset of a total, clamped to it with a warning when it is larger. */
export function clampPart(
  part: number,
  partField: string,
  whole: number,
  wholeLabel: string,
  warnings: string[],
): number {
  if (part <= whole) return part;
  warnings.push(`${partField} (${part}) exceeds ${wholeLabel}; clamped to ${whole}`);
  return whole;
}

/** Builds the result; rejects a bucket that a sum of fields pushed past the plausible bound. */
export function result(usage: Usage, warnings: string[]): NormalizedUsage {
  for (const t of TOKEN_TYPES) {
    if (usage[t] > MAX_PLAUSIBLE_TOKENS) {
      throw new UsageError(`usage.${t}`, `usage bucket "${t}" exceeds MAX_PLAUSIBLE_TOKENS (${MAX_PLAUSIBLE_TOKENS}): ${usage[t]}`);
    }
  }
  // Normalisers add cache_write_1h only when non-zero; `delete` would leave a slow dictionary-mode object.
  if (usage.cache_write_1h === 0) delete usage.cache_write_1h;
  return { usage, warnings };
}
