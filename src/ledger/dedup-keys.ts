/**
 * Exact (trace id, span id) set for the journal ledger's dedup record. Keyed by span id, with the trace id (or
 * the few trace ids sharing a span id) as the value: no 48-character key is built and hashed per lookup, and
 * nothing is lossy (a hash collision would drop a real span).
 */
export class DedupKeys {
  readonly #bySpan = new Map<string, string | string[]>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  has(traceId: string, spanId: string): boolean {
    const v = this.#bySpan.get(spanId);
    if (v === undefined) return false;
    return typeof v === 'string' ? v === traceId : v.includes(traceId);
  }

  /** Adds the pair; false when it was already present. */
  add(traceId: string, spanId: string): boolean {
    const v = this.#bySpan.get(spanId);
    if (v === undefined) this.#bySpan.set(spanId, traceId);
    else if (typeof v === 'string') {
      if (v === traceId) return false;
      this.#bySpan.set(spanId, [v, traceId]);
    } else {
      if (v.includes(traceId)) return false;
      v.push(traceId);
    }
    this.#size += 1;
    return true;
  }

  /** Calls `fn` for every pair. */
  forEach(fn: (traceId: string, spanId: string) => void): void {
    for (const [spanId, v] of this.#bySpan) {
      if (typeof v === 'string') fn(v, spanId);
      else for (const t of v) fn(t, spanId);
    }
  }
}
