import { describe, it, expect } from 'vitest';
import { PriceBook } from '../../src/pricing/index.js';
import { DEMO_MODELS } from '../../src/demo/workload.js';

describe('demo models', () => {
  it('are all priced by the shipped catalog (the demo never shows an unpriced model by accident)', () => {
    const book = PriceBook.load();
    for (const m of DEMO_MODELS) expect(book.normalizeModel(m.provider, m.model), m.model).toMatchObject({ known: true });
  });
});
