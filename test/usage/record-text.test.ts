import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_RECORD_TEXT_CHARS, recordTextProblem, userIdProblem } from '../../src/usage/record-text.js';

/** The rule as first written (a search and a Unicode regex): the one-scan version must answer the same. */
function reference(v: unknown, maxChars = MAX_RECORD_TEXT_CHARS): string | undefined {
  if (typeof v !== 'string') return 'must be a string';
  if (v.length > maxChars) return `must be at most ${maxChars} characters (got ${v.length})`;
  if (v.includes('\u0000')) return 'must not contain NUL characters';
  if (/[\uD800-\uDFFF]/u.test(v)) return 'must be well-formed Unicode (it holds a lone surrogate)';
  return undefined;
}

// Strings made of the characters that matter: NUL, lone high/low surrogates, a well-formed pair, ASCII, Latin-1.
const tricky = fc.array(fc.constantFrom('\u0000', '\uD83D', '\uDE00', '\uD83D\uDE00', 'a', 'é', '\u007f', '-', ' '), { maxLength: 12 }).map((a) => a.join(''));

describe('recordTextProblem', () => {
  it('accepts ordinary text, well-formed pairs and the limit exactly', () => {
    for (const v of ['', 'gpt-4o-mini', 'user-000123', 'héllo', 'emoji \uD83D\uDE00 ok', 'x'.repeat(MAX_RECORD_TEXT_CHARS)]) expect(recordTextProblem(v)).toBeUndefined();
  });

  it('refuses non-strings, overlong text, NUL and lone surrogates, with a message naming the problem', () => {
    expect(recordTextProblem(42)).toBe('must be a string');
    expect(recordTextProblem(undefined)).toBe('must be a string');
    expect(recordTextProblem('x'.repeat(MAX_RECORD_TEXT_CHARS + 1))).toMatch(/at most 1024 characters \(got 1025\)/);
    expect(recordTextProblem('a\u0000b')).toBe('must not contain NUL characters');
    expect(recordTextProblem('a\uD83D')).toBe('must be well-formed Unicode (it holds a lone surrogate)');
    expect(recordTextProblem('\uDE00a')).toBe('must be well-formed Unicode (it holds a lone surrogate)');
    expect(recordTextProblem('\uDE00\uD83D')).toBe('must be well-formed Unicode (it holds a lone surrogate)');
    // NUL is named first, as before, even when a lone surrogate comes earlier.
    expect(recordTextProblem('\uD83D\u0000')).toBe('must not contain NUL characters');
  });

  it('answers exactly as the search + regex rule for any string (fast-check)', () => {
    fc.assert(
      fc.property(fc.oneof(tricky, fc.string({ unit: 'binary', maxLength: 40 }), fc.anything()), fc.integer({ min: 0, max: 20 }), (v, max) => {
        expect(recordTextProblem(v)).toBe(reference(v));
        expect(recordTextProblem(v, max)).toBe(reference(v, max));
      }),
      { numRuns: 3000 },
    );
  });

  it('user ids keep the same rule plus their own', () => {
    expect(userIdProblem('user-1')).toBeUndefined();
    expect(userIdProblem('')).toBe('must not be empty');
    expect(userIdProblem('a\u0000')).toBe('must not contain NUL characters');
    expect(userIdProblem('a\u0007')).toBe('must not contain control characters');
    expect(userIdProblem('a\uD83D')).toBe('must be well-formed Unicode (it holds a lone surrogate)');
  });
});
