import { diag, ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import type { AggregationTemporality, CollectionResult, MetricData, MetricProducer, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { ATTR_USAGE_ESTIMATED, GENAI, GENAI_METRIC_OPERATION_DURATION, GENAI_METRIC_TIME_TO_FIRST_CHUNK, GENAI_METRIC_TOKEN_USAGE } from '../contract/names.js';

/*
 * The GenAI histograms, aggregated by tokenmeter itself and handed to the SDK's metric readers through a
 * MetricProducer (the readers' `metricProducers` option). Recording through the SDK's histograms costs most of
 * a record in `@opentelemetry/sdk-metrics` hashing the attribute set (sorted keys, JSON) on every record; here a
 * call looks its series up once by a key built from the few values that make the set, and the attribute object
 * is built once per series. The data is what the SDK's histograms give for the same records: the same names,
 * descriptors, buckets, attributes, start and end times, temporality and cardinality limit (test/instrumentation/
 * genai-metrics.test.ts compares the two). Only a producer that every reader of the app carries may replace the
 * SDK's histograms, so `tokenmeter/register` attaches one to each of its readers or to none; without an active
 * producer the calls record through the SDK's histograms as before.
 *
 * This module imports no value from @opentelemetry/sdk-metrics: instrumenting an app must not load a second
 * metrics SDK next to the app's own. The few enum values the data needs are spelled here (checked by the test).
 */

/** The OTel GenAI spec's advisory buckets. */
export const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
export const DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

interface HistogramSpec {
  name: string;
  options: { description: string; unit: string; valueType?: ValueType; advice: { explicitBucketBoundaries: number[] } };
}

/** The three GenAI histograms' names and options, as created on the SDK's meter (instrumentation.ts). */
export const GENAI_HISTOGRAMS: Record<'tokenUsage' | 'operationDuration' | 'timeToFirstChunk', HistogramSpec> = {
  tokenUsage: {
    name: GENAI_METRIC_TOKEN_USAGE,
    options: { description: 'Number of input and output tokens used', unit: '{token}', valueType: ValueType.INT, advice: { explicitBucketBoundaries: TOKEN_BUCKETS } },
  },
  operationDuration: {
    name: GENAI_METRIC_OPERATION_DURATION,
    options: { description: 'GenAI operation duration', unit: 's', advice: { explicitBucketBoundaries: DURATION_BUCKETS } },
  },
  timeToFirstChunk: {
    name: GENAI_METRIC_TIME_TO_FIRST_CHUNK,
    options: { description: 'Time to receive the first chunk of a streamed response', unit: 's', advice: { explicitBucketBoundaries: DURATION_BUCKETS } },
  },
};

// @opentelemetry/sdk-metrics enum values (stable across its 1.x–3.x lines).
const DELTA = 0 as AggregationTemporality;
const CUMULATIVE = 1 as AggregationTemporality;
const DATA_POINT_HISTOGRAM = 0;
const INSTRUMENT_HISTOGRAM = 'HISTOGRAM';
/** The SDK's default cardinality limit per metric stream and collection, and its overflow attribute set. */
export const DEFAULT_CARDINALITY_LIMIT = 2000;
const OVERFLOW_ATTRIBUTES: Attributes = { 'otel.metric.overflow': true };

/** As @opentelemetry/core's millisToHrTime. */
function millisToHrTime(millis: number): HrTime {
  return [Math.trunc(millis / 1000), Math.round((millis % 1000) * 1e6)];
}

/** One series of one histogram (one attribute set), in the current collection interval or cumulated. */
interface Point {
  attributes: Attributes;
  startTime: HrTime;
  count: number;
  sum: number;
  min: number;
  max: number;
  counts: number[];
  /** The collection interval in which this series was last recorded (the cardinality limit counts per interval). */
  interval: number;
}

/** The sdk-metrics bucket index: the first boundary >= value, or the overflow bucket. */
function bucketIndex(boundaries: readonly number[], value: number): number {
  let lo = 0;
  let hi = boundaries.length - 1;
  let ret = boundaries.length;
  while (hi >= lo) {
    const mid = lo + ((hi - lo) >> 1);
    if (boundaries[mid] < value) lo = mid + 1;
    else {
      ret = mid;
      hi = mid - 1;
    }
  }
  return ret;
}

function addValue(p: Point, boundaries: readonly number[], value: number): void {
  p.count++;
  p.sum += value;
  if (value < p.min) p.min = value;
  if (value > p.max) p.max = value;
  p.counts[bucketIndex(boundaries, value)]++;
}

/** One histogram's series for one producer. */
class HistogramStore {
  /** The series, in the order they were first recorded. */
  points: Point[] = [];
  overflow: Point | undefined;
  seriesThisInterval = 0;
  interval = 0;
  /** Delta: whether the overflow series was in the previous collection. */
  overflowReported = false;
  readonly isInt: boolean;

  constructor(
    readonly spec: HistogramSpec,
    readonly boundaries: readonly number[],
    readonly cardinalityLimit: number,
  ) {
    this.isInt = spec.options.valueType === ValueType.INT;
  }

  /** The value the SDK's histogram would record, or undefined for one it drops (sdk-metrics Instruments.ts). */
  accept(value: number): number | undefined {
    if (value < 0) {
      diag.warn(`negative value provided to histogram ${this.spec.name}: ${value}`);
      return undefined;
    }
    if (this.isInt && !Number.isInteger(value)) {
      diag.warn(`INT value type cannot accept a floating-point value for ${this.spec.name}, ignoring the fractional digits.`);
      value = Math.trunc(value);
      if (!Number.isInteger(value)) return undefined;
    }
    return Number.isNaN(value) ? undefined : value;
  }

  newPoint(attributes: Attributes, startTime: HrTime): Point {
    return {
      attributes,
      startTime,
      count: 0,
      sum: 0,
      min: Infinity,
      max: -Infinity,
      counts: new Array<number>(this.boundaries.length + 1).fill(0),
      interval: this.interval,
    };
  }

  /** Records into the overflow series (the limit was reached in this interval). */
  recordOverflow(value: number, lastCollectionTime: HrTime | undefined): void {
    let p = this.overflow;
    if (p === undefined) {
      const start = this.overflowReported && lastCollectionTime !== undefined ? lastCollectionTime : millisToHrTime(Date.now());
      p = this.overflow = this.newPoint(OVERFLOW_ATTRIBUTES, start);
    }
    addValue(p, this.boundaries, value);
  }

  /** The metric as the SDK's histogram reports it at `endTime`, or undefined when it has no series. */
  collect(temporality: AggregationTemporality, endTime: HrTime): MetricData | undefined {
    const all = this.overflow === undefined ? this.points : [...this.points, this.overflow];
    const dataPoints = all.map((p) => ({
      attributes: p.attributes,
      startTime: p.startTime,
      endTime,
      value: {
        min: p.count > 0 ? p.min : undefined,
        max: p.count > 0 ? p.max : undefined,
        sum: p.sum,
        buckets: { boundaries: this.boundaries as number[], counts: p.counts.slice() },
        count: p.count,
      },
    }));
    this.interval++;
    this.seriesThisInterval = 0;
    if (temporality === DELTA) {
      this.overflowReported = this.overflow !== undefined;
      this.points = [];
      this.overflow = undefined;
    }
    if (dataPoints.length === 0) return undefined;
    const o = this.spec.options;
    return {
      descriptor: { name: this.spec.name, type: INSTRUMENT_HISTOGRAM, description: o.description, unit: o.unit, valueType: o.valueType ?? ValueType.DOUBLE, advice: o.advice },
      aggregationTemporality: temporality,
      dataPointType: DATA_POINT_HISTOGRAM,
      dataPoints,
    } as unknown as MetricData;
  }
}

/** What a finished call records: its values, and how to build its attribute set when its series is new. */
export interface CallMetrics {
  /** Identifies the call's metric attribute set (without the token type and estimate flag). */
  key: string;
  /** A fresh attribute set of the call (the same `key` always gives equal sets). */
  attributes(): Attributes;
  durationSeconds: number;
  /** Streams only. */
  timeToFirstChunkSeconds: number | undefined;
  /** Input and output token counts, when the call has a usage. */
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  estimated: boolean;
}

export interface TokenmeterMetricProducerOptions {
  /** The temporality of the reader this producer is given to (default cumulative, like the SDK's readers). */
  aggregationTemporality?: AggregationTemporality;
  /** The reader's cardinality limit per metric (default 2000, the SDK's). */
  cardinalityLimit?: number;
}

/** The instrumentation scope of tokenmeter's meter and tracer (its name and version on every span and metric). */
export const INSTRUMENTATION_NAME = 'tokenmeter';
export const INSTRUMENTATION_VERSION = '0.1.0';
const INSTRUMENTATION_SCOPE = { name: INSTRUMENTATION_NAME, version: INSTRUMENTATION_VERSION, schemaUrl: undefined };

/** Producers every call records into; when none is active, calls record through the SDK's histograms. */
const active = new Set<TokenmeterMetricProducer>();
let activeList: TokenmeterMetricProducer[] = [];

/** The active producers (an empty array when calls record through the SDK's histograms). */
export function activeMetricProducers(): readonly TokenmeterMetricProducer[] {
  return activeList;
}

/*
 * The series of one call's attribute set, one slot per histogram series it records: operation duration, time to
 * first chunk, input and output tokens (measured, or estimated: a different attribute set). One map lookup per
 * call finds them all.
 */
const DURATION = 0;
const FIRST_CHUNK = 1;
const INPUT = 2;
const OUTPUT = 3;
const INPUT_ESTIMATED = 4;
const OUTPUT_ESTIMATED = 5;
type Slots = Array<Point | undefined>;

/** The GenAI histograms of tokenmeter's calls, for one metric reader (see the module comment). */
export class TokenmeterMetricProducer implements MetricProducer {
  readonly aggregationTemporality: AggregationTemporality;
  private readonly tokenUsage: HistogramStore;
  private readonly operationDuration: HistogramStore;
  private readonly timeToFirstChunk: HistogramStore;
  private slots = new Map<string, Slots>();
  /** Delta: the previous collection's series (their start is that collection's time), and when it was. */
  private lastSlots = new Map<string, Slots>();
  private lastCollectionTime: HrTime | undefined;

  constructor(options: TokenmeterMetricProducerOptions = {}) {
    this.aggregationTemporality = options.aggregationTemporality === DELTA ? DELTA : CUMULATIVE;
    const limit = options.cardinalityLimit !== undefined && options.cardinalityLimit > 0 ? options.cardinalityLimit : DEFAULT_CARDINALITY_LIMIT;
    this.tokenUsage = new HistogramStore(GENAI_HISTOGRAMS.tokenUsage, TOKEN_BUCKETS, limit);
    this.operationDuration = new HistogramStore(GENAI_HISTOGRAMS.operationDuration, DURATION_BUCKETS, limit);
    this.timeToFirstChunk = new HistogramStore(GENAI_HISTOGRAMS.timeToFirstChunk, DURATION_BUCKETS, limit);
  }

  /** Calls record into this producer (and no longer through the SDK's histograms). */
  activate(): void {
    active.add(this);
    activeList = [...active];
  }

  deactivate(): void {
    active.delete(this);
    activeList = [...active];
  }

  /** Records one finished call, as the SDK's histograms would with the call's attribute sets. */
  record(m: CallMetrics): void {
    let slots = this.slots.get(m.key);
    const isNew = slots === undefined;
    if (slots === undefined) slots = [undefined, undefined, undefined, undefined, undefined, undefined];
    this.recordSlot(slots, DURATION, this.operationDuration, m.durationSeconds, m);
    if (m.timeToFirstChunkSeconds !== undefined) this.recordSlot(slots, FIRST_CHUNK, this.timeToFirstChunk, m.timeToFirstChunkSeconds, m);
    if (m.inputTokens !== undefined && m.outputTokens !== undefined) {
      this.recordSlot(slots, m.estimated ? INPUT_ESTIMATED : INPUT, this.tokenUsage, m.inputTokens, m);
      this.recordSlot(slots, m.estimated ? OUTPUT_ESTIMATED : OUTPUT, this.tokenUsage, m.outputTokens, m);
    }
    // Kept only when it holds a series: attribute sets beyond the cardinality limit (all in the overflow series)
    // must not grow this map, as they do not grow the SDK's.
    if (isNew && slots.some((p) => p !== undefined)) this.slots.set(m.key, slots);
  }

  private recordSlot(slots: Slots, slot: number, store: HistogramStore, raw: number, m: CallMetrics): void {
    const value = store.accept(raw);
    if (value === undefined) return;
    let p = slots[slot];
    if (p === undefined || p.interval !== store.interval) {
      // As the SDK counts: the overflow series takes the last of the limit's places.
      if (store.seriesThisInterval >= store.cardinalityLimit - 1) {
        store.recordOverflow(value, this.lastCollectionTime);
        return;
      }
      store.seriesThisInterval++;
      if (p === undefined) {
        const reported = this.aggregationTemporality === DELTA && this.lastCollectionTime !== undefined && this.lastSlots.get(m.key)?.[slot] !== undefined;
        p = store.newPoint(slotAttributes(m, slot), reported ? this.lastCollectionTime! : millisToHrTime(Date.now()));
        slots[slot] = p;
        store.points.push(p);
      } else {
        p.interval = store.interval;
      }
    }
    addValue(p, store.boundaries, value);
  }

  async collect(): Promise<CollectionResult> {
    const endTime = millisToHrTime(Date.now());
    const metrics: MetricData[] = [];
    // The order the SDK reports them in: the order the instrumentation creates them.
    for (const store of [this.tokenUsage, this.operationDuration, this.timeToFirstChunk]) {
      const data = store.collect(this.aggregationTemporality, endTime);
      if (data !== undefined) metrics.push(data);
    }
    if (this.aggregationTemporality === DELTA) {
      this.lastSlots = this.slots;
      this.slots = new Map();
      this.lastCollectionTime = endTime;
    }
    const resourceMetrics = {
      // The reader keeps the SDK's resource and takes only the scope metrics from a producer.
      resource: undefined,
      scopeMetrics: metrics.length === 0 ? [] : [{ scope: INSTRUMENTATION_SCOPE, metrics }],
    } as unknown as ResourceMetrics;
    return { resourceMetrics, errors: [] };
  }
}

function slotAttributes(m: CallMetrics, slot: number): Attributes {
  if (slot === DURATION || slot === FIRST_CHUNK) return m.attributes();
  return tokenAttributes(m, slot === INPUT || slot === INPUT_ESTIMATED ? 'input' : 'output');
}

function tokenAttributes(m: CallMetrics, type: 'input' | 'output'): Attributes {
  const a = m.attributes();
  if (m.estimated) a[ATTR_USAGE_ESTIMATED] = true;
  a[GENAI.tokenType] = type;
  return a;
}

/**
 * A MetricProducer carrying tokenmeter's GenAI histograms, for an app that starts its own OpenTelemetry SDK:
 * pass it to EVERY metric reader (`new PeriodicExportingMetricReader({ exporter, metricProducers: [producer] })`,
 * one producer per reader), with that reader's temporality. From then on tokenmeter's calls record into it
 * instead of the SDK's histograms (the same data, at a fraction of the cost per call); a reader without it no
 * longer receives them. `tokenmeter/register` does this by itself.
 */
export function tokenmeterMetricProducer(options?: TokenmeterMetricProducerOptions): TokenmeterMetricProducer {
  const p = new TokenmeterMetricProducer(options);
  p.activate();
  return p;
}
