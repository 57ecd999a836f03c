import { ANONYMOUS_USER, OVERFLOW_USER } from '../contract/names.js';

/**
 * The one rule for the text fields of a usage record, shared by extraction (src/ingest), the ledger's record
 * check (src/ledger) and the usage API (src/exporter): a record that extraction accepts is never refused by the
 * ledger for its text, so one bad span can never fail the commit of a whole request.
 */

/** Longest text the ledger stores in one field (extraction's own limit, MAX_LABEL_CHARS, is lower). */
export const MAX_RECORD_TEXT_CHARS = 1024;

/** Longest user id, at ingest and on `/api/v1/usage/{user}` alike. */
export const MAX_USER_ID_CHARS = 256;

// A lone surrogate: with the u flag a well-formed pair is one code point and does not match.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
// C0 controls (NUL included), DEL and C1 controls.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Why `v` cannot be stored as a record's text field, or undefined when it can. NUL: PostgreSQL text cannot hold
 * it and the journal ledger separates key fields with it. A lone surrogate has no UTF-8 form: it would be stored
 * as U+FFFD and come back as another string than the one counted in memory.
 */
export function recordTextProblem(v: unknown, maxChars = MAX_RECORD_TEXT_CHARS): string | undefined {
  if (typeof v !== 'string') return 'must be a string';
  if (v.length > maxChars) return `must be at most ${maxChars} characters (got ${v.length})`;
  // One scan of the char codes instead of a search and a Unicode regex: this runs for several fields of every
  // span the exporter ingests (extraction and the ledger's record check). The regex decides only when a
  // surrogate is present at all.
  let surrogate = false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0) return 'must not contain NUL characters';
    if (c >= 0xd800 && c <= 0xdfff) surrogate = true;
  }
  if (surrogate && LONE_SURROGATE.test(v)) return 'must be well-formed Unicode (it holds a lone surrogate)';
  return undefined;
}

/** User ids the exporter itself writes: a client sending one would merge its usage with the system's series. */
export const RESERVED_USER_IDS: ReadonlySet<string> = new Set([OVERFLOW_USER, ANONYMOUS_USER]);

/**
 * Why `v` is not a valid user id, or undefined when it is. The same rule at ingest (a span with such an id is
 * rejected alone, reason `invalid_attribute`) and on `/api/v1/usage/{user}` (400): 1 to MAX_USER_ID_CHARS
 * characters, the record text rule, and no control characters (C0, DEL, C1: they display as nothing or move
 * the cursor). Reserved ids are checked apart (`RESERVED_USER_IDS`): they are valid to query, not to send.
 */
export function userIdProblem(v: unknown): string | undefined {
  const p = recordTextProblem(v, MAX_USER_ID_CHARS);
  if (p !== undefined) return p;
  const s = v as string;
  if (s.length === 0) return 'must not be empty';
  if (CONTROL.test(s)) return 'must not contain control characters';
  return undefined;
}
