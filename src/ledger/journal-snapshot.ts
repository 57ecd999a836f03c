/**
 * The journal ledger's snapshot content: the state (totals per period, user, plan, provider, model; dedup keys)
 * and the segment list.
 *
 * Format 2 (written): the magic line, then chunks framed like journal entries ([u32 length][u32 crc32][payload]),
 * each payload u8 kind, u8 layout (1), 2 bytes padding, then:
 *   'M' meta:   JSON {"covers": n, "segments": [[seq, records, bytes, maxReceivedMillis], ...]}, always first
 *   'P' period: JSON [periodStart, users, models, providers] (a period may take several chunks; they add up)
 *   'K' keys:   4 bytes padding, f64 day, u32 count, 4 bytes padding, count × 24 bytes (a day may take several)
 *   'A' re-pricings (issue 18; only in a snapshot of a ledger that was re-priced, so older readers refuse it with
 *               the upgrade message): JSON {"audits": RepriceAudit[] (first 'A' chunk only), "calls":
 *               [callKey, auditId, CallCosts][]} (up to 2,000 calls per chunk)
 *   'E' end:    u32 number of chunks before it; a file without it was cut short
 * Chunks keep each piece small, so the writer can produce them a slice at a time. Format 1 (read only): one JSON
 * document (`version: 1`) and the dedup keys, with one checksum over the file.
 */
import { readFileSync } from 'node:fs';
import { LedgerError } from './errors.js';
import { decodeSnapshotFile, frameEntry, NewerFormatLedgerError, snapshotHead } from './journal-format.js';
import { DAY_MILLIS, ModelRow, modelJson, userJson, UserRow, type JournalState, type SegmentInfo, type SnapshotModel, type SnapshotUser } from './journal-state.js';
import { LimbSum } from '../money/index.js';
import type { CallCosts, RepriceAudit } from './adjustments.js';

interface SnapshotJson {
  version: 1;
  covers: number;
  segments: [seq: number, records: number, bytes: number, maxReceivedMillis: number][];
  periods: [ps: string, users: SnapshotUser[], models: SnapshotModel[], providers: [provider: string, gross: string, discount: string, net: string, requests: number][]][];
}


function modelRowOf([provider, model, tokens, requests, unpriced, estimated, cost]: SnapshotModel, intern: (s: string) => string): ModelRow {
  const r = new ModelRow(intern(provider), intern(model));
  r.setTokens(tokens);
  r.requests = requests;
  r.unpriced = unpriced;
  r.estimated = estimated;
  r.addString(cost);
  return r;
}

const CHUNK_META = 0x4d; // 'M'
const CHUNK_PERIOD = 0x50; // 'P'
const CHUNK_KEYS = 0x4b; // 'K'
const CHUNK_END = 0x45; // 'E'
const CHUNK_ADJUST = 0x41; // 'A'
const ADJUSTED_PER_CHUNK = 2000; // a few ms of JSON per chunk, like the user chunks (a reader takes any count)
const CHUNK_LAYOUT = 1;
/** Users per period chunk, and dedup keys per key chunk: each chunk is a few ms of event-loop work at most (a reader takes any count). */
const USERS_PER_CHUNK = 500;
const KEYS_PER_CHUNK = 65536; // DedupKeys' page size: each chunk is a view of one page

type PeriodChunk = [ps: string, users: SnapshotUser[], models: SnapshotModel[], providers: SnapshotProvider[]];
type SnapshotProvider = [provider: string, gross: string, discount: string, net: string, requests: number];

function jsonChunk(kind: number, value: unknown): Buffer {
  const json = JSON.stringify(value);
  const b = Buffer.allocUnsafe(4 + Buffer.byteLength(json, 'utf8'));
  b[0] = kind;
  b[1] = CHUNK_LAYOUT;
  b[2] = 0;
  b[3] = 0;
  b.write(json, 4, 'utf8');
  return b;
}

/** A keys chunk as its 24-byte head and the keys (a view of a page): framed with one copy, not two (1.5 MB each). */
function keysChunk(day: number, keys: Buffer): Buffer[] {
  const b = Buffer.alloc(24);
  b[0] = CHUNK_KEYS;
  b[1] = CHUNK_LAYOUT;
  b.writeDoubleLE(day, 8);
  b.writeUInt32LE(keys.length / 24, 16);
  return [b, keys];
}

function endChunk(count: number): Buffer {
  const b = Buffer.alloc(8);
  b[0] = CHUNK_END;
  b[1] = CHUNK_LAYOUT;
  b.writeUInt32LE(count, 4);
  return b;
}

const isEnd = (chunk: Buffer, count: number) => chunk.length === 8 && chunk[0] === CHUNK_END && chunk.readUInt32LE(4) === count;

export interface SnapshotInProgress {
  /** The file's parts, produced one chunk at a time as they are pulled. */
  parts: Iterable<Buffer>;
  /** Ends the copy-on-write of the state (call when the file is written or failed). */
  done(): void;
}

/**
 * Begins a snapshot of `state` as it is now, covering the segments below `covers`. What is cheap is taken now
 * (the segment list, each period's list of user rows, model and provider totals, each day's dedup key count);
 * the user rows and dedup keys are read as the parts are pulled, while commits go on: a user row changed
 * meanwhile was frozen by `JournalState.apply` first, rows created meanwhile are not reached (a new plan row is put
 * at the head of the user's chain, before the head taken now), and dedup keys are only
 * ever appended (a failed commit's keys, removed again, are all beyond the counts taken now).
 */
export function beginSnapshot(state: JournalState, allSegments: readonly SegmentInfo[], covers: number): SnapshotInProgress {
  const epoch = ++state.snapshotEpoch;
  state.snapshotActive = true;
  state.frozen.clear();
  const segments = allSegments.filter((s) => s.seq < covers).map((s) => [s.seq, s.records, s.bytes, s.maxReceivedMillis]);
  const periods = [...state.periods].map(([ps, p]) => ({
    ps,
    heads: [...p.users.values()],
    models: [...p.models.values()].map(modelJson),
    providers: [...p.providers.values()].map((s): SnapshotProvider => [s.provider, s.gross.toFixed(), s.discount.toFixed(), s.net.toFixed(), s.requests]),
  }));
  const days = [...state.buckets].map(([day, set]) => ({ day, set, size: set.size }));
  // Re-pricings: the audit list and the adjusted calls as they are now (entries are replaced, never changed).
  const audits = [...state.audits];
  const adjusted = [...state.adjusted];
  function* parts(): Generator<Buffer> {
    yield snapshotHead();
    let count = 0;
    const frame = (payload: Buffer | Buffer[]) => {
      count++;
      return frameEntry(Array.isArray(payload) ? payload : [payload]);
    };
    yield frame(jsonChunk(CHUNK_META, { covers, segments }));
    for (const { ps, heads, models, providers } of periods) {
      let users: SnapshotUser[] = [];
      let first = true;
      for (const head of heads) {
        for (let u: UserRow | undefined = head; u !== undefined; u = u.next) {
          let row = u.seen === epoch ? state.frozen.get(u) : undefined;
          if (row === undefined) {
            row = userJson(u);
            u.seen = epoch;
          }
          users.push(row);
        }
        if (users.length >= USERS_PER_CHUNK) {
          yield frame(jsonChunk(CHUNK_PERIOD, [ps, users, first ? models : [], first ? providers : []] satisfies PeriodChunk));
          first = false;
          users = [];
        }
      }
      if (users.length > 0 || first) yield frame(jsonChunk(CHUNK_PERIOD, [ps, users, first ? models : [], first ? providers : []] satisfies PeriodChunk));
    }
    for (let from = 0; from < adjusted.length || (from === 0 && audits.length > 0); from += ADJUSTED_PER_CHUNK) {
      const calls = adjusted.slice(from, from + ADJUSTED_PER_CHUNK).map(([key, a]) => [key, a.auditId, a.costs]);
      yield frame(jsonChunk(CHUNK_ADJUST, from === 0 ? { audits, calls } : { calls }));
    }
    for (const { day, set, size } of days) {
      for (let from = 0; from < size; from += KEYS_PER_CHUNK) {
        // A view of one page of the set's key storage (keys below `size` never change; pages never move).
        const keys = set.keyBytes(from, Math.min(size, from + KEYS_PER_CHUNK));
        yield frame(keysChunk(day, keys));
      }
    }
    yield frameEntry([endChunk(count)]);
  }
  return {
    parts: parts(),
    done: () => {
      if (state.snapshotEpoch !== epoch) return;
      state.snapshotActive = false;
      state.frozen.clear();
    },
  };
}

function addUsers(state: JournalState, ps: string, users: SnapshotUser[], models: SnapshotModel[], providers: SnapshotProvider[]): void {
  const p = state.period(ps);
  // Plan, provider and model names shared by every row (JSON.parse gives each row its own copy): a replayed call
  // then finds its user's model row by comparing the same strings, not loading a copy per row from memory.
  const intern = state.intern;
  for (const [userId, plan, tokens, requests, cost, rows] of users) {
    const row = new UserRow(userId, intern(plan));
    row.setTokens(tokens);
    row.requests = requests;
    row.addString(cost);
    for (const m of rows) {
      const r = modelRowOf(m, intern);
      r.next = row.models;
      row.models = r;
    }
    row.next = p.users.get(userId);
    p.users.set(userId, row);
  }
  for (const m of models) p.models.set(state.modelKey(m[0], m[1]), modelRowOf(m, intern));
  for (const [provider, gross, discount, net, requests] of providers) {
    p.providers.set(provider, { provider, gross: LimbSum.of(gross), discount: LimbSum.of(discount), net: LimbSum.of(net), requests });
  }
}

const toSegments = (list: [number, number, number, number][]): SegmentInfo[] =>
  list.map(([seq, records, bytes, maxReceivedMillis]) => ({ seq, records, bytes, maxReceivedMillis, day: Math.floor(maxReceivedMillis / DAY_MILLIS) }));

/**
 * Loads the snapshot `file` (format 1 or 2) into an empty `state`; returns the segments it lists and the
 * snapshot's format version. Throws a LedgerError naming the file when it is corrupt or cut short.
 */
export function loadSnapshot(state: JournalState, file: string): { segments: SegmentInfo[]; version: number } {
  try {
    return readSnapshot(state, file);
  } catch (err) {
    if (err instanceof LedgerError) throw err;
    throw new LedgerError(`the journal ledger snapshot ${file} is corrupt (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
}

function readSnapshot(state: JournalState, file: string): { segments: SegmentInfo[]; version: number } {
  const decoded = decodeSnapshotFile(readFileSync(file), file, isEnd);
  const bad = (why: string) => new LedgerError(`the journal ledger snapshot ${file} is corrupt (${why})`);
  if ('json' in decoded) {
    const s = JSON.parse(decoded.json) as SnapshotJson;
    if (s.version !== 1) throw bad(`version ${String(s.version)} in a format-1 file`);
    for (const [ps, users, models, providers] of s.periods) addUsers(state, ps, users, models, providers);
    const binary = decoded.binary;
    // Dedup keys: per bucket, f64 day, u32 count, then count × 24 bytes (see DedupKeys.toBuffer).
    let off = 0;
    while (off + 12 <= binary.length) {
      const day = binary.readDoubleLE(off);
      const n = binary.readUInt32LE(off + 8);
      off += 12;
      if (off + 24 * n > binary.length) break;
      state.bucket(day).addBuffer(binary.subarray(off, off + 24 * n));
      off += 24 * n;
    }
    if (off !== binary.length) throw bad('dedup keys');
    return { segments: toSegments(s.segments), version: 1 };
  }
  let segments: SegmentInfo[] | undefined;
  for (const c of decoded.chunks) {
    if (c.length < 4) throw bad('a chunk too short');
    if (c[1] > CHUNK_LAYOUT) throw new NewerFormatLedgerError(`the journal ledger snapshot ${file} holds a chunk of layout ${c[1]}, written by a newer tokenmeter; upgrade tokenmeter`);
    const kind = c[0];
    if (kind === CHUNK_META) {
      const meta = JSON.parse(c.toString('utf8', 4)) as { covers: number; segments: [number, number, number, number][] };
      segments = toSegments(meta.segments);
    } else if (kind === CHUNK_PERIOD) {
      const [ps, users, models, providers] = JSON.parse(c.toString('utf8', 4)) as PeriodChunk;
      addUsers(state, ps, users, models, providers);
    } else if (kind === CHUNK_KEYS) {
      if (c.length < 24 || c.length !== 24 + 24 * c.readUInt32LE(16)) throw bad('a dedup key chunk of the wrong length');
      state.bucket(c.readDoubleLE(8)).addBuffer(c.subarray(24), true); // a checksummed chunk of one set
    } else if (kind === CHUNK_ADJUST) {
      const v = JSON.parse(c.toString('utf8', 4)) as { audits?: RepriceAudit[]; calls?: [string, string, CallCosts][] };
      if (!Array.isArray(v.calls)) throw bad('a re-pricing chunk without calls');
      if (v.audits !== undefined) state.audits.push(...v.audits);
      for (const [key, auditId, costs] of v.calls) state.adjusted.set(key, { auditId, costs });
    } else throw new NewerFormatLedgerError(`the journal ledger snapshot ${file} holds a chunk of kind ${kind}, written by a newer tokenmeter; upgrade tokenmeter`);
  }
  if (segments === undefined) throw bad('no meta chunk');
  return { segments, version: decoded.version };
}
