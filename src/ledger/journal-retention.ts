/**
 * The journal ledger's retention: which segment files `prune` may delete. A segment goes only when every call
 * in it was received before the cut and a durable snapshot already holds its totals.
 */
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { segmentName } from './journal-format.js';
import type { SegmentInfo } from './journal-state.js';

/** Whether prune must first write a snapshot (some old segment's totals are not in the newest snapshot yet). */
export function pruneNeedsSnapshot(segments: readonly SegmentInfo[], current: SegmentInfo | undefined, snapshotSeq: number, cutMillis: number): boolean {
  const old = (s: SegmentInfo) => s.maxReceivedMillis < cutMillis && (s !== current || s.records > 0);
  return segments.some((s) => old(s) && (s === current || s.seq >= snapshotSeq));
}

/** Deletes the segments of calls received before the cut that a snapshot covers; returns the rest. */
export function deletePrunedSegments(
  dir: string,
  segments: readonly SegmentInfo[],
  current: SegmentInfo | undefined,
  snapshotSeq: number,
  cutMillis: number,
): { keep: SegmentInfo[]; callsDeleted: number } {
  let callsDeleted = 0;
  const keep: SegmentInfo[] = [];
  for (const s of segments) {
    if (s !== current && s.seq < snapshotSeq && s.maxReceivedMillis < cutMillis) {
      unlinkSync(join(dir, segmentName(s.seq)));
      callsDeleted += s.records;
    } else keep.push(s);
  }
  return { keep, callsDeleted };
}
