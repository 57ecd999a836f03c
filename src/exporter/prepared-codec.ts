/**
 * The form prepared spans cross from an ingest worker thread to the main thread in (issue 15). A structured clone
 * of 512 record objects cost the receiving thread about half of what the worker saved it (V8's deserializer builds
 * every object and string one by one); here each request's distinct strings go once in a table, every other field
 * in an Int32Array (string indices, flags) and a Float64Array (times, counts), both transferred, not copied, and
 * the main thread builds the records with plain property stores. Lossless: a span the fixed layout cannot carry exactly (tool-call fees, extra usage parts, anything
 * unexpected) travels as its own object by structured clone.
 */
import type { LedgerRecord } from '../ledger/types.js';
import type { SpanFacts } from '../ingest/types.js';
import type { PreparedSpan } from './pipeline.js';

export interface PackedSpans {
  /** Distinct strings of the request. */
  strings: string[];
  /** SLOTS int32 per span: kinds, flags, string indices (see the layout below). */
  slots: Int32Array;
  /** NUMS float64 per usage span: end time, the five token counts, the reported cost. */
  nums: Float64Array;
  /** Spans sent as objects (kind OBJECT). */
  objects: PreparedSpan[];
}

const SLOTS = 30;
const NUMS = 7;
const IGNORED = 0;
const REJECTED = 1;
const USAGE = 2;
const OBJECT = 3;
const ABSENT = -1;

// Slots of a usage span.
const PROVIDER = 1;
const TRACE_ID = 2;
const SPAN_ID = 3;
const RECORD_PROVIDER = 4;
const RAW_MODEL = 5;
const OPERATION = 6;
const ESTIMATED = 7;
const USER_ID = 8;
const OUTCOME = 9;
const SOURCE = 10;
const PLAN = 11;
const PERIOD_START = 12;
const MODEL = 13;
const PRICED = 14;
const COST = 15; // 15..19: input, cache_read, cache_write, output, reasoning
const TOTAL_COST = 20;
const PRICE_ID = 21;
const PLAN_FROM_SPAN = 22;
const FEATURE = 23;
const SERVICE_TIER = 24;
const FACTS_LAYER = 25;
const FACTS_RESOURCE = 26;
const FACTS_MISSING = 27;
const REDATED = 28; // 0 none, 1 late, 2 future
const INVALID = 29;
// Numbers of a usage span.
const END_TIME = 0;
const USAGE_INPUT = 1; // 1..5: input, cache_read, cache_write, output, reasoning
const FACTS_REPORTED = 6;

/** The record fields toLedgerRecord always sets. */
const RECORD_FIELDS = 17;

function countDefined(o: object): number {
  let n = 0;
  for (const k in o) if ((o as Record<string, unknown>)[k] !== undefined) n++;
  return n;
}

/** True when the fixed layout carries the span exactly (no field it does not know). */
function fits(p: Extract<PreparedSpan, { kind: 'usage' }>): boolean {
  const r = p.record;
  if (countDefined(r.usage) !== 5 || countDefined(r.costUsd) !== 5) return false;
  if (r.toolCalls !== undefined || r.feeCostUsd !== undefined || r.discountUsd !== undefined || r.grossCostUsd !== undefined) return false;
  const optional = (r.priceId !== undefined ? 1 : 0) + (r.planFromSpan !== undefined ? 1 : 0) + (r.feature !== undefined ? 1 : 0) + (r.serviceTier !== undefined ? 1 : 0);
  if (countDefined(r) !== RECORD_FIELDS + optional) return false;
  if (typeof r.estimated !== 'boolean' || typeof r.priced !== 'boolean' || typeof r.endTimeMillis !== 'number') return false;
  const f = p.facts;
  if (f !== undefined) {
    const n = 2 + (f.missingUsage !== undefined ? 1 : 0) + (f.reportedCostUsd !== undefined ? 1 : 0);
    if (countDefined(f) !== n || (f.reportedCostUsd !== undefined && !Number.isFinite(f.reportedCostUsd))) return false;
  }
  const keys = countDefined(p) - 3 - (p.facts !== undefined ? 1 : 0) - (p.redated !== undefined ? 1 : 0) - (p.invalid !== undefined ? 1 : 0);
  return keys === 0;
}

/** Packs a request's prepared spans (in the worker). Transfer `slots.buffer` and `nums.buffer`. */
export function packSpans(spans: readonly PreparedSpan[]): PackedSpans {
  const strings: string[] = [];
  const index = new Map<string, number>();
  const str = (s: string): number => {
    let i = index.get(s);
    if (i === undefined) {
      i = strings.length;
      strings.push(s);
      index.set(s, i);
    }
    return i;
  };
  const opt = (s: string | undefined): number => (s === undefined ? ABSENT : str(s));
  const slots = new Int32Array(spans.length * SLOTS);
  const nums = new Float64Array(spans.length * NUMS);
  const objects: PreparedSpan[] = [];
  for (let i = 0; i < spans.length; i++) {
    const p = spans[i]!;
    const o = i * SLOTS;
    const q = i * NUMS;
    if (p.kind === 'ignored') slots[o] = IGNORED;
    else if (p.kind === 'rejected') {
      slots[o] = REJECTED;
      slots[o + 1] = str(p.reason);
      slots[o + 2] = str(p.message);
    } else if (!fits(p)) {
      slots[o] = OBJECT;
      slots[o + 1] = objects.length;
      objects.push(p);
    } else {
      const r = p.record;
      slots[o] = USAGE;
      slots[o + PROVIDER] = str(p.provider);
      slots[o + TRACE_ID] = str(r.traceId);
      slots[o + SPAN_ID] = str(r.spanId);
      nums[q + END_TIME] = r.endTimeMillis;
      slots[o + RECORD_PROVIDER] = str(r.provider);
      slots[o + RAW_MODEL] = str(r.rawModel);
      slots[o + OPERATION] = str(r.operation);
      nums[q + USAGE_INPUT] = r.usage.input;
      nums[q + USAGE_INPUT + 1] = r.usage.cache_read;
      nums[q + USAGE_INPUT + 2] = r.usage.cache_write;
      nums[q + USAGE_INPUT + 3] = r.usage.output;
      nums[q + USAGE_INPUT + 4] = r.usage.reasoning;
      slots[o + ESTIMATED] = r.estimated ? 1 : 0;
      slots[o + USER_ID] = str(r.userId);
      slots[o + OUTCOME] = str(r.outcome);
      slots[o + SOURCE] = str(r.source);
      slots[o + PLAN] = str(r.plan);
      slots[o + PERIOD_START] = str(r.periodStart);
      slots[o + MODEL] = str(r.model);
      slots[o + PRICED] = r.priced ? 1 : 0;
      slots[o + COST] = str(r.costUsd.input);
      slots[o + COST + 1] = str(r.costUsd.cache_read);
      slots[o + COST + 2] = str(r.costUsd.cache_write);
      slots[o + COST + 3] = str(r.costUsd.output);
      slots[o + COST + 4] = str(r.costUsd.reasoning);
      slots[o + TOTAL_COST] = str(r.totalCostUsd);
      slots[o + PRICE_ID] = opt(r.priceId);
      slots[o + PLAN_FROM_SPAN] = opt(r.planFromSpan);
      slots[o + FEATURE] = opt(r.feature);
      slots[o + SERVICE_TIER] = opt(r.serviceTier);
      const f = p.facts;
      slots[o + FACTS_LAYER] = f === undefined ? ABSENT : str(f.layer);
      slots[o + FACTS_RESOURCE] = f === undefined ? ABSENT : str(f.resourceKey);
      slots[o + FACTS_MISSING] = opt(f?.missingUsage);
      nums[q + FACTS_REPORTED] = f?.reportedCostUsd ?? Number.NaN;
      slots[o + REDATED] = p.redated === 'late' ? 1 : p.redated === 'future' ? 2 : 0;
      slots[o + INVALID] = opt(p.invalid);
    }
  }
  return { strings, slots, nums, objects };
}

/** Unpacks what packSpans made (on the main thread): the same spans, field for field. */
export function unpackSpans(packed: PackedSpans): PreparedSpan[] {
  const { strings: s, slots, nums, objects } = packed;
  const n = slots.length / SLOTS;
  const out = new Array<PreparedSpan>(n);
  const opt = (i: number): string | undefined => (i === ABSENT ? undefined : s[i]);
  for (let i = 0; i < n; i++) {
    const o = i * SLOTS;
    const q = i * NUMS;
    const kind = slots[o]!;
    if (kind === IGNORED) out[i] = { kind: 'ignored' };
    else if (kind === REJECTED) out[i] = { kind: 'rejected', reason: s[slots[o + 1]!]!, message: s[slots[o + 2]!]! };
    else if (kind === OBJECT) out[i] = objects[slots[o + 1]!]!;
    else {
      // Field by field in toLedgerRecord's order: one object shape for every record.
      const record: LedgerRecord = {
        traceId: s[slots[o + TRACE_ID]!]!,
        spanId: s[slots[o + SPAN_ID]!]!,
        endTimeMillis: nums[q + END_TIME]!,
        provider: s[slots[o + RECORD_PROVIDER]!]!,
        rawModel: s[slots[o + RAW_MODEL]!]!,
        operation: s[slots[o + OPERATION]!]!,
        usage: {
          input: nums[q + USAGE_INPUT]!,
          cache_read: nums[q + USAGE_INPUT + 1]!,
          cache_write: nums[q + USAGE_INPUT + 2]!,
          output: nums[q + USAGE_INPUT + 3]!,
          reasoning: nums[q + USAGE_INPUT + 4]!,
        },
        estimated: slots[o + ESTIMATED] === 1,
        userId: s[slots[o + USER_ID]!]!,
        outcome: s[slots[o + OUTCOME]!]! as LedgerRecord['outcome'],
        source: s[slots[o + SOURCE]!]! as LedgerRecord['source'],
        plan: s[slots[o + PLAN]!]!,
        periodStart: s[slots[o + PERIOD_START]!]!,
        model: s[slots[o + MODEL]!]!,
        priced: slots[o + PRICED] === 1,
        costUsd: {
          input: s[slots[o + COST]!]!,
          cache_read: s[slots[o + COST + 1]!]!,
          cache_write: s[slots[o + COST + 2]!]!,
          output: s[slots[o + COST + 3]!]!,
          reasoning: s[slots[o + COST + 4]!]!,
        },
        totalCostUsd: s[slots[o + TOTAL_COST]!]!,
      };
      const priceId = opt(slots[o + PRICE_ID]!);
      if (priceId !== undefined) record.priceId = priceId;
      const planFromSpan = opt(slots[o + PLAN_FROM_SPAN]!);
      if (planFromSpan !== undefined) record.planFromSpan = planFromSpan;
      const feature = opt(slots[o + FEATURE]!);
      if (feature !== undefined) record.feature = feature;
      const serviceTier = opt(slots[o + SERVICE_TIER]!);
      if (serviceTier !== undefined) record.serviceTier = serviceTier;
      const p: PreparedSpan = { kind: 'usage', provider: s[slots[o + PROVIDER]!]!, record };
      const layer = slots[o + FACTS_LAYER]!;
      if (layer !== ABSENT) {
        const facts: SpanFacts = { layer: s[layer] as SpanFacts['layer'], resourceKey: s[slots[o + FACTS_RESOURCE]!]! };
        const missing = opt(slots[o + FACTS_MISSING]!);
        if (missing !== undefined) facts.missingUsage = missing as SpanFacts['missingUsage'];
        const reported = nums[q + FACTS_REPORTED]!;
        if (!Number.isNaN(reported)) facts.reportedCostUsd = reported;
        p.facts = facts;
      }
      const redated = slots[o + REDATED];
      if (redated === 1) p.redated = 'late';
      else if (redated === 2) p.redated = 'future';
      const invalid = opt(slots[o + INVALID]!);
      if (invalid !== undefined) p.invalid = invalid;
      out[i] = p;
    }
  }
  return out;
}
