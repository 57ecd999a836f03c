/**
 * The journal ledger's snapshot content: the state (totals per period, user, plan, provider, model; dedup keys)
 * and the segment list, to and from the bytes journal-format.ts frames (`encodeSnapshot` / `decodeSnapshot`).
 */
import { readFileSync } from 'node:fs';
import { LedgerError } from './errors.js';
import { decodeSnapshot, encodeSnapshot } from './journal-format.js';
import { DAY_MILLIS, ModelRow, planRows, UserRow, type JournalState, type SegmentInfo, type Tokens } from './journal-state.js';
import { LimbSum } from '../money/index.js';

type SnapshotModel = [provider: string, model: string, tokens: Tokens, requests: number, unpriced: number, estimated: number, cost: string];
type SnapshotUser = [userId: string, plan: string, tokens: Tokens, requests: number, cost: string, models: SnapshotModel[]];
interface SnapshotJson {
  version: 1;
  covers: number;
  segments: [seq: number, records: number, bytes: number, maxReceivedMillis: number][];
  periods: [ps: string, users: SnapshotUser[], models: SnapshotModel[], providers: [provider: string, gross: string, discount: string, net: string, requests: number][]][];
}

const modelJson = (m: ModelRow): SnapshotModel => [m.provider, m.model, m.tokens(), m.requests, m.unpriced, m.estimated, m.toFixed()];

function modelRowOf([provider, model, tokens, requests, unpriced, estimated, cost]: SnapshotModel): ModelRow {
  const r = new ModelRow(provider, model);
  r.setTokens(tokens);
  r.requests = requests;
  r.unpriced = unpriced;
  r.estimated = estimated;
  r.addString(cost);
  return r;
}

/** The snapshot of `state`, covering the segments below `covers`, as the parts of the file. */
export function serialiseSnapshot(state: JournalState, allSegments: readonly SegmentInfo[], covers: number): Buffer[] {
  const segments = allSegments.filter((s) => s.seq < covers).map((s): SnapshotJson['segments'][number] => [s.seq, s.records, s.bytes, s.maxReceivedMillis]);
  const periods: SnapshotJson['periods'] = [];
  for (const [ps, p] of state.periods) {
    const users: SnapshotUser[] = [];
    for (const head of p.users.values()) {
      for (const u of planRows(head)) users.push([u.userId, u.plan, u.tokens(), u.requests, u.toFixed(), u.modelRows().map(modelJson)]);
    }
    const providers: SnapshotJson['periods'][number][3] = [...p.providers.values()].map((s) => [s.provider, s.gross.toFixed(), s.discount.toFixed(), s.net.toFixed(), s.requests]);
    periods.push([ps, users, [...p.models.values()].map(modelJson), providers]);
  }
  const json = JSON.stringify({ version: 1, covers, segments, periods } satisfies SnapshotJson);
  const binary: Buffer[] = [];
  for (const [day, set] of state.buckets) {
    const head = Buffer.allocUnsafe(12);
    head.writeDoubleLE(day, 0);
    head.writeUInt32LE(set.size, 8);
    binary.push(head, Buffer.from(set.toBuffer())); // a copy: commits go on while the snapshot is written
  }
  return encodeSnapshot(json, binary);
}

/** Loads the snapshot `file` into an empty `state`; returns the segments it lists. */
export function loadSnapshot(state: JournalState, file: string): SegmentInfo[] {
  const { json, binary } = decodeSnapshot(readFileSync(file), file);
  const s = JSON.parse(json) as SnapshotJson;
  const segments = s.segments.map(([seq, records, bytes, maxReceivedMillis]) => ({ seq, records, bytes, maxReceivedMillis, day: Math.floor(maxReceivedMillis / DAY_MILLIS) }));
  for (const [ps, users, models, providers] of s.periods) {
    const p = state.period(ps);
    for (const [userId, plan, tokens, requests, cost, rows] of users) {
      const row = new UserRow(userId, plan);
      row.setTokens(tokens);
      row.requests = requests;
      row.addString(cost);
      for (const m of rows) {
        const r = modelRowOf(m);
        r.next = row.models;
        row.models = r;
      }
      row.next = p.users.get(userId);
      p.users.set(userId, row);
    }
    for (const m of models) p.models.set(state.modelKey(m[0], m[1]), modelRowOf(m));
    for (const [provider, gross, discount, net, requests] of providers) {
      p.providers.set(provider, { provider, gross: LimbSum.of(gross), discount: LimbSum.of(discount), net: LimbSum.of(net), requests });
    }
  }
  // Dedup keys: per bucket, f64 day, u32 count, then count × 24 bytes (see DedupKeys.toBuffer).
  let off = 0;
  while (off < binary.length) {
    const day = binary.readDoubleLE(off);
    const n = binary.readUInt32LE(off + 8);
    off += 12;
    state.bucket(day).addBuffer(binary.subarray(off, off + 24 * n));
    off += 24 * n;
  }
  if (off !== binary.length) throw new LedgerError(`the journal ledger snapshot ${file} is corrupt (dedup keys); restore the directory from a backup`);
  return segments;
}
