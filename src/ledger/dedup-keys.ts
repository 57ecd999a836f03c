/**
 * Exact (trace id, span id) set for the journal ledger's dedup record, outside the JS heap's object graph: each
 * key is its 24 bytes as six 32-bit words in one Uint32Array, found through an open-addressing table (linear
 * probing) of entry numbers. About 32–40 bytes per key, no string per key for the garbage collector to trace,
 * nothing lossy (a hash collision would drop a real span: keys are always compared in full). Ids must be
 * lower-case hex (validateRecord checks it before anything reaches the ledger).
 */
import { randomBytes } from 'node:crypto';

const WORDS = 6;
const EMPTY = 0;
const SEED = randomBytes(4).readUInt32LE(0);

function hexWord(s: string, at: number): number {
  let v = 0;
  for (let k = at; k < at + 8; k++) {
    const c = s.charCodeAt(k);
    v = (v << 4) | (c <= 57 ? c - 48 : c - 87);
  }
  return v >>> 0;
}

/** Writes a (trace id, span id) pair's six words at `at` in `out` (lower-case hex, as DedupKeys reads it). */
export function readIdWords(traceId: string, spanId: string, out: Uint32Array, at: number): void {
  out[at] = hexWord(traceId, 0);
  out[at + 1] = hexWord(traceId, 8);
  out[at + 2] = hexWord(traceId, 16);
  out[at + 3] = hexWord(traceId, 24);
  out[at + 4] = hexWord(spanId, 0);
  out[at + 5] = hexWord(spanId, 8);
}

/** Old-table entries moved into the new table per add while a rehash is under way (see `#grow`). */
const MOVES_PER_ADD = 8;
/** Keys per page of key storage (1.5 MiB): growing adds a page, never copies the keys already held. */
const PAGE_BITS = 16;
const PAGE_KEYS = 1 << PAGE_BITS;
const PAGE_MASK = PAGE_KEYS - 1;

export class DedupKeys {
  /**
   * Entry e's six words at ((e & PAGE_MASK) * WORDS) in page e >>> PAGE_BITS. Pages, not one array doubled:
   * copying a million keys (24 MB) into a new array at once held the event loop for tens of ms.
   */
  readonly #pages: Uint32Array[] = [];
  /** Entry number + 1 per slot (0 = empty); its length is a power of two, at least twice the entries. */
  #slots: Int32Array;
  #mask: number;
  #size = 0;
  /**
   * The previous, smaller table while a rehash is under way: entries below `#moveEnd` not yet moved (from
   * `#moved` on) are found only there. Growing is incremental (a few entries moved per add) so that no single
   * add rehashes a million keys on the event loop at once (tens of ms).
   */
  #oldSlots: Int32Array | undefined = undefined;
  #oldMask = 0;
  #moved = 0;
  #moveEnd = 0;
  readonly #w = new Uint32Array(WORDS);

  constructor(capacity = 1024) {
    const table = tableFor(Math.max(16, capacity));
    this.#slots = new Int32Array(table);
    this.#mask = table - 1;
  }

  get size(): number {
    return this.#size;
  }

  /** Bytes held (for the memory figures of the benchmark). */
  get bytes(): number {
    let keys = 0;
    for (const p of this.#pages) keys += p.byteLength;
    return keys + this.#slots.byteLength + (this.#oldSlots?.byteLength ?? 0);
  }

  #parse(traceId: string, spanId: string): Uint32Array {
    const w = this.#w;
    w[0] = hexWord(traceId, 0);
    w[1] = hexWord(traceId, 8);
    w[2] = hexWord(traceId, 16);
    w[3] = hexWord(traceId, 24);
    w[4] = hexWord(spanId, 0);
    w[5] = hexWord(spanId, 8);
    return w;
  }

  /**
   * Every word mixed in turn (ids are not always random: sequential span ids, zero-padded trace ids), seeded per
   * process so that ids chosen to collide in one process do not collide in another.
   */
  #hash(w: Uint32Array, at: number, mask: number): number {
    let h = SEED;
    for (let k = at; k < at + WORDS; k++) {
      h = Math.imul(h ^ w[k], 0xcc9e2d51);
      h = Math.imul((h << 15) | (h >>> 17), 0x1b873593);
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    return (h ^ (h >>> 16)) & mask;
  }

  /** The slot of `slots` holding the key in `w` (at word `at`), or the empty slot where it would go (negative: -slot - 1). */
  #findIn(slots: Int32Array, mask: number, w: Uint32Array, at: number): number {
    const pages = this.#pages;
    let i = this.#hash(w, at, mask);
    for (;;) {
      const e = slots[i];
      if (e === EMPTY) return -i - 1;
      const keys = pages[(e - 1) >>> PAGE_BITS];
      const b = ((e - 1) & PAGE_MASK) * WORDS;
      if (keys[b] === w[at] && keys[b + 4] === w[at + 4] && keys[b + 5] === w[at + 5] && keys[b + 1] === w[at + 1] && keys[b + 2] === w[at + 2] && keys[b + 3] === w[at + 3]) {
        return i;
      }
      i = (i + 1) & mask;
    }
  }

  /** `#findIn` the current table. */
  #find(w: Uint32Array, at: number): number {
    return this.#findIn(this.#slots, this.#mask, w, at);
  }

  /**
   * The page holding entry `e` (added when `e` is the first of a new page). The first page starts small and
   * doubles up to a whole page (a small set stays small; a copy of at most 1.5 MiB).
   */
  #page(e: number): Uint32Array {
    const n = e >>> PAGE_BITS;
    if (n === 0) {
      let first = this.#pages[0];
      if (first === undefined || first.length <= e * WORDS) {
        let cap = first === undefined ? 1024 : first.length / WORDS;
        while (cap <= e) cap *= 2;
        const bigger = new Uint32Array(Math.min(cap, PAGE_KEYS) * WORDS);
        if (first !== undefined) bigger.set(first);
        this.#pages[0] = first = bigger;
      }
      return first;
    }
    if (this.#pages[0].length < PAGE_KEYS * WORDS) this.#page(PAGE_KEYS - 1); // the first page whole before a second
    while (this.#pages.length <= n) this.#pages.push(new Uint32Array(PAGE_KEYS * WORDS));
    return this.#pages[n];
  }

  has(traceId: string, spanId: string): boolean {
    return this.hasWords(this.#parse(traceId, spanId), 0);
  }

  /** `has` for the key whose six words start at `at` in `w` (see readIdWords). */
  hasWords(w: Uint32Array, at: number): boolean {
    if (this.#find(w, at) >= 0) return true;
    return this.#oldSlots !== undefined && this.#findIn(this.#oldSlots, this.#oldMask, w, at) >= 0;
  }

  /** Adds the pair; false when it was already present. */
  add(traceId: string, spanId: string): boolean {
    return this.addWords(this.#parse(traceId, spanId), 0);
  }

  /** Adds the key whose six words start at `at` in `w` (trace id 4 words, span id 2, as hex digits read in 8s). */
  addWords(w: Uint32Array, at: number): boolean {
    if (this.#oldSlots !== undefined && this.#findIn(this.#oldSlots, this.#oldMask, w, at) >= 0) return false;
    let slot = this.#find(w, at);
    if (slot >= 0) return false;
    if ((this.#size + 1) * 2 > this.#slots.length) {
      this.#grow(this.#slots.length * 2);
      slot = this.#find(w, at);
    }
    const e = this.#size++;
    this.#page(e).set(w.subarray(at, at + WORDS), (e & PAGE_MASK) * WORDS);
    this.#slots[-slot - 1] = e + 1;
    if (this.#oldSlots !== undefined) this.#move(MOVES_PER_ADD);
    return true;
  }

  /** Starts moving every entry into a new table of `table` slots (the old one still answers for those not moved yet). */
  #grow(table: number): void {
    if (this.#oldSlots !== undefined) this.#move(Infinity); // not reached while MOVES_PER_ADD >= 1: a rehash ends before the next
    this.#oldSlots = this.#slots;
    this.#oldMask = this.#mask;
    this.#moved = 0;
    this.#moveEnd = this.#size;
    this.#slots = new Int32Array(table);
    this.#mask = table - 1;
    if (this.#size === 0) this.#oldSlots = undefined;
  }

  /** Moves up to `n` entries of the old table into the current one (they are unique: no compare needed). */
  #move(n: number): void {
    const pages = this.#pages;
    const slots = this.#slots;
    const mask = this.#mask;
    const end = Math.min(this.#moveEnd, this.#moved + n);
    for (let e = this.#moved; e < end; e++) {
      let i = this.#hash(pages[e >>> PAGE_BITS], (e & PAGE_MASK) * WORDS, mask);
      while (slots[i] !== EMPTY) i = (i + 1) & mask;
      slots[i] = e + 1;
    }
    this.#moved = end;
    if (end >= this.#moveEnd) this.#oldSlots = undefined;
  }

  /** Removes the pair (undoing an `add` whose commit failed). */
  delete(traceId: string, spanId: string): void {
    if (this.#oldSlots !== undefined) this.#move(Infinity); // rare (a failed write): finish the rehash first
    let slot = this.#find(this.#parse(traceId, spanId), 0);
    if (slot < 0) return;
    const slots = this.#slots;
    const pages = this.#pages;
    const e = slots[slot] - 1;
    // Backward-shift deletion keeps every probe sequence unbroken without tombstones.
    let j = slot;
    for (;;) {
      j = (j + 1) & this.#mask;
      const ej = slots[j];
      if (ej === EMPTY) break;
      const home = this.#hash(pages[(ej - 1) >>> PAGE_BITS], ((ej - 1) & PAGE_MASK) * WORDS, this.#mask);
      // Move entry j back into the hole when its home is not cyclically in (slot, j].
      if (slot <= j ? home <= slot || home > j : home <= slot && home > j) {
        slots[slot] = ej;
        slot = j;
      }
    }
    slots[slot] = EMPTY;
    // Keep entries dense: the last entry takes the freed number.
    const last = --this.#size;
    if (e !== last) {
      const from = pages[last >>> PAGE_BITS];
      const fromAt = (last & PAGE_MASK) * WORDS;
      const s = this.#find(from, fromAt);
      pages[e >>> PAGE_BITS].set(from.subarray(fromAt, fromAt + WORDS), (e & PAGE_MASK) * WORDS);
      slots[s] = e + 1;
    }
  }

  /**
   * Keys [from, to) as bytes (24 per key: six little-endian 32-bit words), for snapshots: a view of the storage
   * when they are in one page (a snapshot reads whole pages: KEYS_PER_CHUNK = the page size), else a copy.
   * Pages never move, so a view taken while keys are added stays valid.
   */
  keyBytes(from: number, to: number): Buffer {
    if (!(from >= 0 && to <= this.#size && from <= to)) throw new RangeError(`dedup keys: [${from}, ${to}) is not within the ${this.#size} keys`);
    const parts: Buffer[] = [];
    for (let e = from; e < to; ) {
      const page = this.#pages[e >>> PAGE_BITS];
      const end = Math.min(to, ((e >>> PAGE_BITS) + 1) * PAGE_KEYS);
      parts.push(Buffer.from(page.buffer, page.byteOffset + (e & PAGE_MASK) * WORDS * 4, (end - e) * WORDS * 4));
      e = end;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /** Every key as bytes (see keyBytes). */
  toBuffer(): Buffer {
    return this.keyBytes(0, this.#size);
  }

  /**
   * Adds every key of a `toBuffer()` image. Loading a snapshot: the table is sized once for everything, not
   * grown (and rehashed) again and again as the keys go in. `unique`: the image comes from a set (a snapshot whose
   * checksum held) and shares no key with what this set holds, so each key goes into the first free slot without
   * being compared: one random memory access per key instead of two or more.
   */
  addBuffer(buf: Buffer, unique = false): void {
    if (buf.length % (WORDS * 4) !== 0) throw new RangeError('dedup keys: a key image must be a multiple of 24 bytes');
    const n = buf.length / (WORDS * 4);
    const total = this.#size + n;
    if (this.#oldSlots !== undefined) this.#move(Infinity);
    if (total * 2 > this.#slots.length) {
      const table = tableFor(total);
      this.#slots = new Int32Array(table);
      this.#mask = table - 1;
      this.#moved = 0;
      this.#moveEnd = this.#size;
      this.#move(this.#size);
    }
    if (unique) {
      const first = this.#size;
      for (let e = first; e < total; ) {
        const end = Math.min(total, ((e >>> PAGE_BITS) + 1) * PAGE_KEYS);
        const page = this.#page(end - 1); // the page of e, long enough for every key up to end
        Buffer.from(page.buffer, page.byteOffset + (e & PAGE_MASK) * WORDS * 4, (end - e) * WORDS * 4).set(buf.subarray((e - first) * WORDS * 4, (end - first) * WORDS * 4));
        e = end;
      }
      this.#moved = first;
      this.#moveEnd = total;
      this.#size = total;
      this.#move(n);
      return;
    }
    const words = new Uint32Array(n * WORDS);
    Buffer.from(words.buffer).set(buf);
    for (let e = 0; e < n; e++) this.addWords(words, e * WORDS);
  }
}

/** Slots for `entries` keys: a power of two, at least twice as many. */
function tableFor(entries: number): number {
  let table = 32;
  while (table < entries * 2) table *= 2;
  return table;
}
