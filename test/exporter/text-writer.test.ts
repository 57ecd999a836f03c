import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TextWriter } from '../../src/exporter/text-writer.js';

describe('TextWriter', () => {
  it('gives back exactly the UTF-8 of everything written, across growth', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme', maxLength: 300 }), { maxLength: 60 }), fc.integer({ min: 0, max: 2048 }), (parts, initial) => {
        const w = new TextWriter(initial);
        for (const p of parts) w.write(p);
        expect(w.finish().equals(Buffer.from(parts.join(''), 'utf8'))).toBe(true);
      }),
    );
  });

  it('takes a string far larger than its buffer in one write (3-byte and 4-byte characters)', () => {
    const w = new TextWriter(0);
    const big = 'é€😀a'.repeat(50_000);
    w.write('x');
    w.write(big);
    expect(w.finish().toString('utf8')).toBe(`x${big}`);
  });
});
