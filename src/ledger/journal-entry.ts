/**
 * The payload of a journal entry, binary. A commit entry holds every new call of one group: a dictionary of the
 * entry's distinct strings (user ids, plans, models, cost strings... repeat from call to call), then one fixed
 * 160-byte record per call of numbers and dictionary indices. Encoding touches each distinct string once per
 * entry instead of once per call (a text join of ~29 fields per call cost about 2–3 µs per call in the exporter).
 *
 * Layout (little-endian); every payload starts with u8 type, u8 layout version (0 in format-1 files = layout 1):
 *   header:  u8 'H', u8 format version of the segment, 6 bytes padding, f64 segment sequence number
 *            (format 2: the first entry of every segment; a segment without one is format 1)
 *   commit:  u8 'C', u8 layout 1, u16 record bytes (0 = 160), 4 bytes padding, f64 receivedAt, u32 calls,
 *            u32 dictionary size,
 *            dictionary: per string u32 byte length + UTF-8 bytes, padding to a multiple of 8,
 *            calls × record: f64 × 7 (end time, the five token buckets, cache_write_1h),
 *                            u32 × 26 (trace id 4 words, span id 2 words, flags, and 19 string indices, NONE = absent)
 *                            + optional trailing fields (record bytes > 160, a multiple of 8; see README.md)
 *            layout 2 (an entry with per-call fees, issue 20): records of 176 bytes, the 160 above and u32 × 4:
 *                            fee cost string index (NONE = no fee), web_search, web_search_preview and
 *                            search_grounding call counts. Entries without fees stay layout 1.
 *   prune:   u8 'R', u8 layout 1, 6 bytes padding, f64 receivedAt, f64 rollupsBefore
 *   adjust:  u8 'A', u8 layout 1, 6 bytes padding, f64 receivedAt, u32 JSON bytes, 4 bytes padding, then JSON
 *            {"audit": RepriceAudit, "calls": CallAdjustment[]}: one applied re-pricing (issue 18), written only
 *            when one is applied (older readers refuse the type with the upgrade message)
 * A reader refuses an entry type or a layout version it does not know ("written by a newer tokenmeter").
 */
import type { LedgerRecord } from './types.js';
import type { CallAdjustment, RepriceAudit } from './adjustments.js';

export const ENTRY_COMMIT = 0x43; // 'C'
export const ENTRY_PRUNE = 0x52; // 'R'
export const ENTRY_HEADER = 0x48; // 'H'
export const ENTRY_ADJUST = 0x41; // 'A'
const ADJUST_LAYOUT = 1;
/** The newest layout of commit entries this code reads and writes (2: per-call fees); prune entries are layout 1. */
export const ENTRY_LAYOUT = 2;
const PRUNE_LAYOUT = 1;
const NONE = 0xffffffff;
const RECORD_F64 = 7;
const RECORD_U32 = 26;
/** Bytes per call record: 7 × 8 + 26 × 4. */
export const RECORD_BYTES = RECORD_F64 * 8 + RECORD_U32 * 4;

/** String slots of a record, in order (after the 6 id words and the flags word). */
const S_PERIOD = 7;
const S_USER = 8;
const S_PLAN = 9;
const S_FEATURE = 10;
const S_PROVIDER = 11;
const S_RAW_MODEL = 12;
const S_MODEL = 13;
const S_OPERATION = 14;
const S_OUTCOME = 15;
const S_SOURCE = 16;
const S_TIER = 17;
const S_PRICE = 18;
const S_COST = 19; // five per-type costs: 19..23
const S_TOTAL = 24;
const S_DISCOUNT = 25;
/** Layout 2: the fee cost string and the three call counts after the 26 words of layout 1. */
const S_FEE = 26;
const C_WEB_SEARCH = 27;
const C_WEB_SEARCH_PREVIEW = 28;
const C_SEARCH_GROUNDING = 29;
const FEE_RECORD_BYTES = RECORD_BYTES + 16;

function hexWord(s: string, at: number): number {
  let v = 0;
  for (let k = at; k < at + 8; k++) {
    const c = s.charCodeAt(k);
    v = (v << 4) | (c <= 57 ? c - 48 : c - 87);
  }
  return v >>> 0;
}

const hex8 = (w: number) => w.toString(16).padStart(8, '0');

/** Longest string measured and copied in JS when it is ASCII. */
const SHORT_ASCII = 64;

/** `s.length` when every char is ASCII (one UTF-8 byte each), else -1. */
function asciiLength(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return -1;
  return s.length;
}

/** Builds one commit entry's payload. */
export class CommitEncoder {
  readonly #dict = new Map<string, number>();
  readonly #strings: string[] = [];
  readonly #f64: Float64Array;
  readonly #u32: Uint32Array;
  #n = 0;
  /** Per string slot, the previous call's string and its index: consecutive calls mostly share plan, model... */
  readonly #lastString: (string | undefined)[] = new Array<string | undefined>(S_FEE + 1).fill(undefined);
  readonly #lastIndex = new Uint32Array(S_FEE + 1).fill(NONE);
  /** Layout 2 (fee fields) when some call of the entry has per-call fees or tool-call counts, else layout 1. */
  readonly #fees: boolean;
  readonly #recordBytes: number;

  constructor(calls: number, withFees = false) {
    this.#fees = withFees;
    this.#recordBytes = withFees ? FEE_RECORD_BYTES : RECORD_BYTES;
    this.#f64 = new Float64Array((calls * this.#recordBytes) / 8);
    this.#u32 = new Uint32Array(this.#f64.buffer);
  }

  #index(s: string): number {
    let i = this.#dict.get(s);
    if (i === undefined) {
      i = this.#strings.length;
      this.#strings.push(s);
      this.#dict.set(s, i);
    }
    return i;
  }

  /**
   * The index of a cost string (slots S_COST..S_DISCOUNT): costs are mostly distinct per call (they follow the
   * token counts), so looking them up in the dictionary map only grows it. Appended as they come (the format
   * allows a string twice); '0' and a repeat of the previous call's string still share one entry.
   */
  #costSlot(k: number, s: string | undefined): number {
    if (s === this.#lastString[k]) return this.#lastIndex[k];
    let i: number;
    if (s === undefined) i = NONE;
    else if (s === '0') i = this.#index(s);
    else {
      i = this.#strings.length;
      this.#strings.push(s);
    }
    this.#lastString[k] = s;
    this.#lastIndex[k] = i;
    return i;
  }

  /** The index of `s` for string slot `k`: a pointer compare with the previous call's string first. */
  #slot(k: number, s: string | undefined): number {
    if (s === this.#lastString[k]) return this.#lastIndex[k];
    const i = s === undefined ? NONE : this.#index(s);
    this.#lastString[k] = s;
    this.#lastIndex[k] = i;
    return i;
  }

  /**
   * Adds one call: `periodStart` normalised (ISO), `discount` the volume discount when there is one; `ids`, when
   * given, holds the record's trace and span id words at `idsAt` (already read for the dedup check).
   */
  add(r: LedgerRecord, periodStart: string, discount: string | undefined, ids?: Uint32Array, idsAt = 0): void {
    const f = (this.#n * this.#recordBytes) / 8;
    const u = (this.#n * this.#recordBytes) / 4 + RECORD_F64 * 2;
    this.#n += 1;
    const f64 = this.#f64;
    const u32 = this.#u32;
    const t = r.usage;
    f64[f] = r.endTimeMillis;
    f64[f + 1] = t.input;
    f64[f + 2] = t.cache_read;
    f64[f + 3] = t.cache_write;
    f64[f + 4] = t.output;
    f64[f + 5] = t.reasoning;
    f64[f + 6] = t.cache_write_1h ?? 0;
    if (ids !== undefined) {
      u32[u] = ids[idsAt]!;
      u32[u + 1] = ids[idsAt + 1]!;
      u32[u + 2] = ids[idsAt + 2]!;
      u32[u + 3] = ids[idsAt + 3]!;
      u32[u + 4] = ids[idsAt + 4]!;
      u32[u + 5] = ids[idsAt + 5]!;
    } else {
      u32[u] = hexWord(r.traceId, 0);
      u32[u + 1] = hexWord(r.traceId, 8);
      u32[u + 2] = hexWord(r.traceId, 16);
      u32[u + 3] = hexWord(r.traceId, 24);
      u32[u + 4] = hexWord(r.spanId, 0);
      u32[u + 5] = hexWord(r.spanId, 8);
    }
    u32[u + 6] = (r.estimated ? 1 : 0) | (r.priced ? 2 : 0) | (r.outcome === 'error' ? 4 : 0);
    u32[u + S_PERIOD] = this.#slot(S_PERIOD, periodStart);
    u32[u + S_USER] = this.#slot(S_USER, r.userId);
    u32[u + S_PLAN] = this.#slot(S_PLAN, r.plan);
    u32[u + S_FEATURE] = this.#slot(S_FEATURE, r.feature);
    u32[u + S_PROVIDER] = this.#slot(S_PROVIDER, r.provider);
    u32[u + S_RAW_MODEL] = this.#slot(S_RAW_MODEL, r.rawModel);
    u32[u + S_MODEL] = this.#slot(S_MODEL, r.model);
    u32[u + S_OPERATION] = this.#slot(S_OPERATION, r.operation);
    u32[u + S_OUTCOME] = this.#slot(S_OUTCOME, r.outcome);
    u32[u + S_SOURCE] = this.#slot(S_SOURCE, r.source);
    u32[u + S_TIER] = this.#slot(S_TIER, r.serviceTier);
    u32[u + S_PRICE] = this.#slot(S_PRICE, r.priceId);
    const c = r.costUsd;
    u32[u + S_COST] = this.#costSlot(S_COST, c.input);
    u32[u + S_COST + 1] = this.#costSlot(S_COST + 1, c.cache_read);
    u32[u + S_COST + 2] = this.#costSlot(S_COST + 2, c.cache_write);
    u32[u + S_COST + 3] = this.#costSlot(S_COST + 3, c.output);
    u32[u + S_COST + 4] = this.#costSlot(S_COST + 4, c.reasoning);
    u32[u + S_TOTAL] = this.#costSlot(S_TOTAL, r.totalCostUsd);
    u32[u + S_DISCOUNT] = this.#costSlot(S_DISCOUNT, discount);
    if (this.#fees) {
      u32[u + S_FEE] = this.#costSlot(S_FEE, r.feeCostUsd);
      const calls = r.toolCalls;
      u32[u + C_WEB_SEARCH] = calls?.web_search ?? 0;
      u32[u + C_WEB_SEARCH_PREVIEW] = calls?.web_search_preview ?? 0;
      u32[u + C_SEARCH_GROUNDING] = calls?.search_grounding ?? 0;
    } else if (r.feeCostUsd !== undefined || r.toolCalls !== undefined) {
      throw new Error('a call with per-call fees in a layout-1 commit entry (construct the encoder withFees)');
    }
  }

  /** The payload, as parts to write one after the other. */
  finish(receivedAtMillis: number): Buffer[] {
    const strings = this.#strings;
    let dictBytes = 0;
    // Short ASCII strings (costs, ids, names: nearly all) are measured and copied in JS: a native call per
    // string costs more than the loop. Anything else goes through Buffer's UTF-8 encoder.
    const lens = new Int32Array(strings.length);
    for (let k = 0; k < strings.length; k++) {
      const s = strings[k]!;
      let n = s.length <= SHORT_ASCII ? asciiLength(s) : -1;
      if (n < 0) {
        n = Buffer.byteLength(s, 'utf8');
        lens[k] = -1 - n;
      } else lens[k] = n;
      dictBytes += 4 + n;
    }
    const pad = (8 - (dictBytes % 8)) % 8;
    const head = Buffer.alloc(24 + dictBytes + pad);
    head[0] = ENTRY_COMMIT;
    head[1] = this.#fees ? 2 : 1;
    head.writeUInt16LE(this.#recordBytes, 2);
    head.writeDoubleLE(receivedAtMillis, 8);
    head.writeUInt32LE(this.#n, 16);
    head.writeUInt32LE(strings.length, 20);
    let off = 24;
    for (let k = 0; k < strings.length; k++) {
      const s = strings[k]!;
      const l = lens[k]!;
      const n = l < 0 ? -1 - l : l;
      head.writeUInt32LE(n, off);
      off += 4;
      if (l < 0) off += head.write(s, off, n, 'utf8');
      else {
        for (let i = 0; i < n; i++) head[off + i] = s.charCodeAt(i);
        off += n;
      }
    }
    return [head, Buffer.from(this.#f64.buffer, 0, this.#n * this.#recordBytes)];
  }
}

export function encodePrune(receivedAtMillis: number, rollupsBeforeMillis: number): Buffer[] {
  const b = Buffer.alloc(24);
  b[0] = ENTRY_PRUNE;
  b[1] = PRUNE_LAYOUT;
  b.writeDoubleLE(receivedAtMillis, 8);
  b.writeDoubleLE(rollupsBeforeMillis, 16);
  return [b];
}

/** A re-pricing's entry: its audit record and every call it adjusts. */
export function encodeAdjustment(receivedAtMillis: number, audit: RepriceAudit, calls: readonly CallAdjustment[]): Buffer[] {
  const json = Buffer.from(JSON.stringify({ audit, calls }), 'utf8');
  const b = Buffer.alloc(24);
  b[0] = ENTRY_ADJUST;
  b[1] = ADJUST_LAYOUT;
  b.writeDoubleLE(receivedAtMillis, 8);
  b.writeUInt32LE(json.length, 16);
  return [b, json];
}

/** The first entry of a format-2 segment: the format version and the segment's sequence number. */
export function encodeSegmentHeader(formatVersion: number, seq: number): Buffer[] {
  const b = Buffer.alloc(16);
  b[0] = ENTRY_HEADER;
  b[1] = formatVersion;
  b.writeDoubleLE(seq, 8);
  return [b];
}

/** A segment header entry's format version and sequence number, or undefined when `payload` is another entry. */
export function decodeSegmentHeader(payload: Buffer): { formatVersion: number; seq: number } | undefined {
  if (payload.length < 16 || payload[0] !== ENTRY_HEADER) return undefined;
  return { formatVersion: payload[1], seq: payload.readDoubleLE(8) };
}

export type DecodedEntry =
  | { kind: 'prune'; receivedAtMillis: number; rollupsBeforeMillis: number }
  | { kind: 'adjust'; receivedAtMillis: number; read: () => { audit: RepriceAudit; calls: CallAdjustment[] } }
  | { kind: 'commit'; receivedAtMillis: number; calls: number; forEach: (fn: (v: CallView) => void) => void };

/** A view of one call of a decoded commit entry (reused from call to call: copy what you keep). */
export interface CallView {
  /** The id words (trace id 4, span id 2) start at `idAt` in `words` (see DedupKeys.addWords). */
  words: Uint32Array;
  idAt: number;
  traceId(): string;
  spanId(): string;
  periodStart: string;
  userId: string;
  plan: string;
  provider: string;
  model: string;
  t0: number;
  t1: number;
  t2: number;
  t3: number;
  t4: number;
  t5: number;
  priced: boolean;
  estimated: boolean;
  totalCostUsd: string;
  discount: string | undefined;
  /** The whole record as it was committed (gross costs). */
  record(): LedgerRecord;
}

/** An entry this version cannot read: a newer tokenmeter wrote it. */
export class NewerFormatError extends Error {}

/**
 * Decodes a payload; throws a plain Error describing what is wrong (the caller adds file and offset). The
 * dictionary's bounds are checked here, its strings are decoded only when a call's field is read (replay reads
 * five names and one cost of a call's twenty strings): names through `intern`, costs as they are.
 */
export function decodeEntry(payload: Buffer, intern: (s: string) => string): DecodedEntry {
  if (payload.length < 24) throw new Error('entry too short');
  const type = payload[0];
  if (payload[1] > ENTRY_LAYOUT) throw new NewerFormatError(`entry layout ${payload[1]} of type ${type}`);
  const receivedAtMillis = payload.readDoubleLE(8);
  if (!Number.isSafeInteger(receivedAtMillis)) throw new Error('bad received time');
  if (type === ENTRY_PRUNE) return { kind: 'prune', receivedAtMillis, rollupsBeforeMillis: payload.readDoubleLE(16) };
  if (type === ENTRY_ADJUST) {
    if (payload[1] > ADJUST_LAYOUT) throw new NewerFormatError(`entry layout ${payload[1]} of type ${type}`);
    const n = payload.readUInt32LE(16);
    if (payload.length !== 24 + n) throw new Error('adjustment entry of the wrong length');
    return {
      kind: 'adjust',
      receivedAtMillis,
      read: () => {
        const v = JSON.parse(payload.toString('utf8', 24)) as { audit?: RepriceAudit; calls?: CallAdjustment[] };
        if (typeof v !== 'object' || v === null || typeof v.audit?.id !== 'string' || !Array.isArray(v.calls)) throw new Error('adjustment entry without its audit or calls');
        return { audit: v.audit, calls: v.calls };
      },
    };
  }
  if (type !== ENTRY_COMMIT) throw new NewerFormatError(`entry type ${type}`);
  // Records may carry optional trailing fields a later version added (record bytes > RECORD_BYTES): skipped.
  const layout = payload[1];
  const recordBytes = payload.readUInt16LE(2) || RECORD_BYTES;
  const minBytes = layout >= 2 ? FEE_RECORD_BYTES : RECORD_BYTES;
  if (recordBytes < minBytes || recordBytes % 8 !== 0) throw new Error(`bad record size ${recordBytes}`);
  const calls = payload.readUInt32LE(16);
  const nDict = payload.readUInt32LE(20);
  // Where each dictionary string starts (its length is the u32 before it).
  const starts = new Uint32Array(nDict);
  let off = 24;
  for (let k = 0; k < nDict; k++) {
    if (off + 4 > payload.length) throw new Error('dictionary cut short');
    const len = payload.readUInt32LE(off);
    off += 4;
    if (off + len > payload.length) throw new Error('dictionary cut short');
    starts[k] = off;
    off += len;
  }
  off += (8 - ((off - 24) % 8)) % 8;
  if (payload.length - off !== calls * recordBytes) throw new Error('wrong number of call records');
  // An aligned copy for the typed-array views (the payload may start anywhere in the file's buffer).
  const f64 = new Float64Array((calls * recordBytes) / 8);
  new Uint8Array(f64.buffer).set(payload.subarray(off));
  const u32 = new Uint32Array(f64.buffer);
  const strings = new CommitStrings(payload, starts, intern);
  const forEach = (fn: (v: CallView) => void) => {
    const view = new CommitCallView(f64, u32, strings, recordBytes, layout);
    for (let k = 0; k < calls; k++) {
      view.at(k);
      fn(view);
    }
  };
  return { kind: 'commit', receivedAtMillis, calls, forEach };
}

/** A commit entry's dictionary, each string decoded once, when first asked for. */
class CommitStrings {
  readonly #values: (string | undefined)[];
  readonly #interned: Uint8Array;

  constructor(
    readonly payload: Buffer,
    readonly starts: Uint32Array,
    readonly intern: (s: string) => string,
  ) {
    this.#values = new Array<string | undefined>(starts.length).fill(undefined);
    this.#interned = new Uint8Array(starts.length);
  }

  #decode(i: number): string {
    if (!(i < this.starts.length)) throw new Error(`string index ${i} out of range`);
    const at = this.starts[i];
    return this.payload.toString('utf8', at, at + this.payload.readUInt32LE(at - 4));
  }

  /** A cost or other value: decoded once, not interned. */
  value(i: number): string {
    return this.#values[i] ?? (this.#values[i] = this.#decode(i));
  }

  /** A name kept in the totals (user, plan, provider, model, period): interned once per entry. */
  name(i: number): string {
    if (this.#interned[i] === 1) return this.#values[i]!;
    const v = this.intern(this.#values[i] ?? this.#decode(i));
    this.#values[i] = v;
    this.#interned[i] = 1;
    return v;
  }

  optional(i: number): string | undefined {
    return i === NONE ? undefined : this.value(i);
  }
}

/** The one view `forEach` moves from call to call (nothing allocated per call but what is asked for). */
class CommitCallView implements CallView {
  words: Uint32Array;
  idAt = 0;
  t0 = 0;
  t1 = 0;
  t2 = 0;
  t3 = 0;
  t4 = 0;
  t5 = 0;
  priced = false;
  estimated = false;
  #f = 0;
  #flags = 0;
  readonly #fStride: number;
  readonly #uStride: number;

  constructor(
    readonly f64: Float64Array,
    readonly u32: Uint32Array,
    readonly strings: CommitStrings,
    recordBytes: number,
    readonly layout: number,
  ) {
    this.words = u32;
    this.#fStride = recordBytes / 8;
    this.#uStride = recordBytes / 4;
  }

  at(k: number): void {
    const f = k * this.#fStride;
    const u = k * this.#uStride + RECORD_F64 * 2;
    const f64 = this.f64;
    this.#f = f;
    this.idAt = u;
    this.t0 = f64[f + 1];
    this.t1 = f64[f + 2];
    this.t2 = f64[f + 3];
    this.t3 = f64[f + 4];
    this.t4 = f64[f + 5];
    this.t5 = f64[f + 6];
    const flags = this.u32[u + 6];
    this.#flags = flags;
    this.priced = (flags & 2) !== 0;
    this.estimated = (flags & 1) !== 0;
  }

  traceId(): string {
    const u32 = this.u32;
    const u = this.idAt;
    return hex8(u32[u]) + hex8(u32[u + 1]) + hex8(u32[u + 2]) + hex8(u32[u + 3]);
  }

  spanId(): string {
    return hex8(this.u32[this.idAt + 4]) + hex8(this.u32[this.idAt + 5]);
  }

  get periodStart(): string {
    return this.strings.name(this.u32[this.idAt + S_PERIOD]);
  }

  get userId(): string {
    return this.strings.name(this.u32[this.idAt + S_USER]);
  }

  get plan(): string {
    return this.strings.name(this.u32[this.idAt + S_PLAN]);
  }

  get provider(): string {
    return this.strings.name(this.u32[this.idAt + S_PROVIDER]);
  }

  get model(): string {
    return this.strings.name(this.u32[this.idAt + S_MODEL]);
  }

  get totalCostUsd(): string {
    return this.strings.value(this.u32[this.idAt + S_TOTAL]);
  }

  get discount(): string | undefined {
    return this.strings.optional(this.u32[this.idAt + S_DISCOUNT]);
  }

  record(): LedgerRecord {
    const u32 = this.u32;
    const u = this.idAt;
    const str = (i: number) => this.strings.value(i);
    const opt = (i: number) => this.strings.optional(i);
    const flags = this.#flags;
    const rec: LedgerRecord = {
      traceId: this.traceId(),
      spanId: this.spanId(),
      endTimeMillis: this.f64[this.#f],
      provider: this.provider,
      rawModel: str(u32[u + S_RAW_MODEL]),
      operation: str(u32[u + S_OPERATION]),
      usage: { input: this.t0, cache_read: this.t1, cache_write: this.t2, output: this.t3, reasoning: this.t4, cache_write_1h: this.t5 },
      estimated: this.estimated,
      userId: this.userId,
      outcome: (flags & 4) !== 0 ? 'error' : 'success',
      source: str(u32[u + S_SOURCE]) as LedgerRecord['source'],
      plan: this.plan,
      model: this.model,
      periodStart: this.periodStart,
      priced: this.priced,
      costUsd: { input: str(u32[u + S_COST]), cache_read: str(u32[u + S_COST + 1]), cache_write: str(u32[u + S_COST + 2]), output: str(u32[u + S_COST + 3]), reasoning: str(u32[u + S_COST + 4]) },
      totalCostUsd: this.totalCostUsd,
    };
    const feature = opt(u32[u + S_FEATURE]);
    if (feature !== undefined) rec.feature = feature;
    const tier = opt(u32[u + S_TIER]);
    if (tier !== undefined) rec.serviceTier = tier;
    const price = opt(u32[u + S_PRICE]);
    if (price !== undefined) rec.priceId = price;
    if (this.layout >= 2) {
      const fee = opt(u32[u + S_FEE]);
      if (fee !== undefined) rec.feeCostUsd = fee;
      const web = u32[u + C_WEB_SEARCH];
      const preview = u32[u + C_WEB_SEARCH_PREVIEW];
      const grounding = u32[u + C_SEARCH_GROUNDING];
      if (web || preview || grounding) {
        const calls: NonNullable<LedgerRecord['toolCalls']> = {};
        if (web) calls.web_search = web;
        if (preview) calls.web_search_preview = preview;
        if (grounding) calls.search_grounding = grounding;
        rec.toolCalls = calls;
      }
    }
    return rec;
  }
}
