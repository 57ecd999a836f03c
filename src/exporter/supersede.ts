import type { SpanFacts } from '../ingest/types.js';

/**
 * Double instrumentation: a framework (LangChain, LlamaIndex, an agent framework) and a provider SDK instrumentation
 * (OTel contrib, OpenLLMetry's or OpenInference's openai / anthropic ones, tokenmeter's own) both record the same
 * provider call, each with its usage, often in two different traces (OpenLLMetry + LangChain.js: both spans are
 * roots). Nothing on the two spans ties them together reliably, so the rule is by instrumentation, not by call:
 *
 * - `auto` (default): provider-level spans are always billed. A framework span is billed only when no
 *   provider-level span for the same provider has been seen from the same process (resource: service name,
 *   namespace, instance id, host and pid), in the same request or within `windowMillis` before it. Otherwise it
 *   is `superseded`: not billed, counted in tokenmeter_ingested_spans_total{outcome="superseded"}.
 * - `always`: every span is billed (only right when no provider SDK is instrumented next to the framework).
 * - `never`: framework spans are never billed (only right when every provider SDK the app uses is instrumented).
 *
 * The provider-level spans of a request are learnt before its framework spans are judged, so a batch holding both
 * (the usual case: the SDK span ends first) is decided right even on the exporter's first request. What is learnt
 * is kept in memory, bounded (MAX_RESOURCES, oldest forgotten first), not across restarts.
 */
export type FrameworkSpansMode = 'auto' | 'always' | 'never';

export const FRAMEWORK_SPANS_MODES: readonly FrameworkSpansMode[] = ['auto', 'always', 'never'];
export const DEFAULT_FRAMEWORK_SPANS_WINDOW_MILLIS = 24 * 3_600_000;
/** Processes × providers remembered. */
const MAX_RESOURCES = 10_000;

export interface SupersedeOptions {
  mode: FrameworkSpansMode;
  /** How long a provider-level instrumentation seen from a process counts as active there. */
  windowMillis: number;
}

export class ProviderLevelTracker {
  /** `${resourceKey}\0${provider}` → last seen (ms). Map order = insertion order: re-inserted on each sighting. */
  private readonly seen = new Map<string, number>();

  constructor(private readonly o: SupersedeOptions) {}

  /** The last learn()'s arguments: the spans of one request almost always repeat them. */
  private lastResource: string | undefined;
  private lastProvider: string | undefined;
  private lastMillis = NaN;

  /** Remembers a provider-level span. */
  learn(facts: SpanFacts, provider: string, nowMillis: number): void {
    if (facts.layer !== 'provider') return;
    // The same sighting again, nothing learnt in between: its keys are already the newest, with this time (the
    // keys are not built and re-inserted for every span of a request).
    if (nowMillis === this.lastMillis && provider === this.lastProvider && facts.resourceKey === this.lastResource) return;
    this.lastResource = facts.resourceKey;
    this.lastProvider = provider;
    this.lastMillis = nowMillis;
    for (const key of [`${facts.resourceKey}\u0000${provider}`, `${facts.resourceKey}\u0000*`]) {
      this.seen.delete(key);
      this.seen.set(key, nowMillis);
    }
    while (this.seen.size > MAX_RESOURCES) this.seen.delete(this.seen.keys().next().value as string);
  }

  /** True when a framework span must not be billed (learn() the request's spans first). */
  superseded(facts: SpanFacts, provider: string, nowMillis: number): boolean {
    if (facts.layer !== 'framework' || this.o.mode === 'always') return false;
    if (this.o.mode === 'never') return true;
    // A framework span that does not say its provider is superseded by any provider-level instrumentation.
    const at = this.seen.get(`${facts.resourceKey}\u0000${provider === 'unknown' ? '*' : provider}`);
    return at !== undefined && nowMillis - at <= this.o.windowMillis;
  }
}
