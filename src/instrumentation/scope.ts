import type { AsyncLocalStorage } from 'node:async_hooks';
import { context, diag, propagation, type Context } from '@opentelemetry/api';
import { ATTR_FEATURE, ATTR_PLAN, ATTR_USER_ID, type FeeKind } from '../contract/names.js';
import type { Usage } from '../usage/index.js';
import { countWithUser, registerCopy } from './bundling.js';

/** Who a call is made for. `plan` and `feature` are low-cardinality labels; `id` is the user's id. */
export interface UserAttribution {
  id?: string;
  plan?: string;
  feature?: string;
  /**
   * Admission control for the calls inside (issue 16): `block` refuses a call over the user's plan limits with
   * UsageLimitError before it is sent, `warn` sends it and records the would-be refusal, `off` checks nothing.
   * Default: `configureEnforcement` / TOKENMETER_ENFORCE, else `off`.
   */
  enforce?: 'block' | 'warn' | 'off';
}

/** One finished call as `trackUsage` sees it. */
export interface TrackedCall {
  provider: string;
  model: string;
  operation: string;
  usage: Usage;
  estimated: boolean;
  serviceTier?: string;
  outcome: 'success' | 'error';
  /** When the call ended (epoch milliseconds): chooses the price in force. */
  endTimeMillis: number;
  /** Per-call fee counts the provider reported (web searches, grounding queries), priced as fees. */
  toolCalls?: Partial<Record<FeeKind, number>>;
}

/** Receives the calls that end inside a `trackUsage` scope (and, through `parent`, its enclosing scopes). */
export interface UsageCollector {
  calls: TrackedCall[];
  parent: UsageCollector | undefined;
}

export interface Scope {
  user: UserAttribution | undefined;
  collector: UsageCollector | undefined;
  /**
   * Set inside a model call a framework layer (the Vercel AI SDK) already meters: a provider SDK that the
   * framework's model calls underneath (e.g. a provider built on `openai`) is not counted a second time.
   */
  metered?: true;
}

// One store for both withUser and trackUsage: each extra AsyncLocalStorage adds work to every async hop. Shared
// by every copy of tokenmeter in the process (see bundling.ts), so a withUser from a bundled copy still reaches
// the calls the other copy records.
const storage = registerCopy(import.meta.url) as AsyncLocalStorage<Scope>;

function cleanLabel(value: unknown, what: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > 256) {
    diag.error(`tokenmeter: withUser ignored an invalid ${what} (expected a non-empty string of at most 256 characters)`);
    return undefined;
  }
  return value;
}

/**
 * Runs `fn` with every LLM call inside it (across awaits, timers and streams started inside) attributed to
 * `user`. Fields not given are inherited from an enclosing `withUser`. Returns what `fn` returns.
 */
export function withUser<T>(user: UserAttribution, fn: () => T): T {
  let next: Scope;
  try {
    const outer = storage.getStore();
    const merged: UserAttribution = { ...outer?.user };
    const id = cleanLabel(user?.id, 'user id');
    const plan = cleanLabel(user?.plan, 'plan');
    const feature = cleanLabel(user?.feature, 'feature');
    if (id !== undefined) merged.id = id;
    if (plan !== undefined) merged.plan = plan;
    if (feature !== undefined) merged.feature = feature;
    const enforce = user?.enforce;
    if (enforce === 'block' || enforce === 'warn' || enforce === 'off') merged.enforce = enforce;
    else if (enforce !== undefined) diag.error('tokenmeter: withUser ignored an invalid enforce (expected "block", "warn" or "off")');
    next = { user: merged, collector: outer?.collector };
    if (outer?.metered === true) next.metered = true;
    countWithUser();
  } catch (err) {
    diag.error('tokenmeter: withUser failed; running without attribution', err);
    return fn();
  }
  return storage.run(next, fn);
}

/** Runs `fn` with a new collector that receives every call ending inside it. */
export function runCollecting<T>(collector: UsageCollector, fn: () => T): T {
  const outer = storage.getStore();
  collector.parent = outer?.collector;
  return storage.run(outer?.metered === true ? { user: outer.user, collector, metered: true } : { user: outer?.user, collector }, fn);
}

/** Runs `fn` (a framework's model call that tokenmeter meters) so that SDK calls inside it are not metered again. */
export function runMetered<T>(fn: () => T): T {
  const outer = storage.getStore();
  return storage.run({ user: outer?.user, collector: outer?.collector, metered: true }, fn);
}

/** Whether a call starting now is inside a model call an outer layer already meters (see `runMetered`). */
export function insideMeteredCall(): boolean {
  return storage.getStore()?.metered === true;
}

/** The `withUser` / `trackUsage` scope a call starting now belongs to (read once per call). */
export function currentScope(): Scope | undefined {
  return storage.getStore();
}

/**
 * The attribution attributes for a call starting now: `withUser` first, then OTel baggage entries
 * (`user.id`, `tokenmeter.plan`, `tokenmeter.feature`) propagated from an upstream service.
 */
export function currentAttribution(
  out: Record<string, string | number | boolean | string[]>,
  scope: Scope | undefined = storage.getStore(),
  // The active OTel context when the caller already has it (GenAiCall starts its span in the same one).
  activeContext?: Context,
): void {
  const user = scope?.user;
  let id = user?.id;
  let plan = user?.plan;
  let feature = user?.feature;
  if (id === undefined || plan === undefined || feature === undefined) {
    const baggage = propagation.getBaggage(activeContext ?? context.active());
    if (baggage !== undefined) {
      id ??= baggage.getEntry(ATTR_USER_ID)?.value;
      plan ??= baggage.getEntry(ATTR_PLAN)?.value;
      feature ??= baggage.getEntry(ATTR_FEATURE)?.value;
    }
  }
  if (id) out[ATTR_USER_ID] = id;
  if (plan) out[ATTR_PLAN] = plan;
  if (feature) out[ATTR_FEATURE] = feature;
}
