import fc from 'fast-check';

/**
 * Strings an attacker puts in span attributes: NUL and the other C0/C1 controls, DEL, bidi overrides and
 * isolates, zero-width and BOM characters, lone surrogates, terminal escapes, markup, the ids tokenmeter writes
 * itself, and values around the length limits.
 */
export const HOSTILE_PIECES = [
  '\u0000',
  '\u0007',
  '\u001b[31m',
  '\u007f',
  '\u0085',
  '\u009b',
  '\n',
  '\r',
  '\t',
  '\u202e',
  '\u202d',
  '\u2066',
  '\u2069',
  '\u200f',
  '\u200b',
  '\ufeff',
  '\ud800',
  '\udfff',
  '\ud83d\ude00',
  '"',
  '\\',
  '<img src=x onerror=alert(1)>',
  '__overflow__',
  'anonymous',
] as const;

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom(...HOSTILE_PIECES),
  fc.array(fc.oneof(fc.constantFrom(...HOSTILE_PIECES), fc.string({ maxLength: 3 })), { minLength: 1, maxLength: 5 }).map((a) => a.join('')),
  fc.constantFrom(255, 256, 257, 1024, 1025).map((n) => 'u'.repeat(n)),
);

/** `hostileString` without lone surrogates: what a protobuf string (valid UTF-8) can carry. */
export const wellFormedHostileString: fc.Arbitrary<string> = hostileString.filter((s) => !/[\uD800-\uDFFF]/u.test(s));
