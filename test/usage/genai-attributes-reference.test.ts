import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ATTR_CACHE_CREATION_1H, GENAI } from '../../src/contract/names.js';
import { CountReader, clampPart, label, result, usageObject, type NormalizedUsage } from '../../src/usage/counts.js';
import { normalizeGenAiAttributes } from '../../src/usage/index.js';

/**
 * normalizeGenAiAttributes runs for every span the exporter prices, so it is written out without a CountReader
 * and writes its warning labels only when it clamps. This is the general form it replaced, kept as the
 * reference: same buckets, same warnings, same errors (field and message) for any attributes.
 */
function reference(attrs: Record<string, unknown>): NormalizedUsage {
  const a = usageObject(attrs, 'GenAI span');
  const r = new CountReader(true);
  const warnings: string[] = [];
  const current = (name: string, deprecated: string): { value: number | undefined; field: string } => {
    const now = r.count(a, name);
    const old = r.count(a, deprecated);
    if (now !== undefined && old !== undefined && now !== old) {
      warnings.push(`${deprecated} (${old}) differs from ${name} (${now}); using ${name}`);
    }
    return now !== undefined || old === undefined ? { value: now, field: name } : { value: old, field: deprecated };
  };
  const inTotal = current(GENAI.inputTokens, GENAI.deprecatedPromptTokens);
  const outTotal = current(GENAI.outputTokens, GENAI.deprecatedCompletionTokens);
  const cacheReadRaw = r.count(a, GENAI.cacheReadInputTokens) ?? 0;
  const cacheWriteRaw = r.count(a, GENAI.cacheCreationInputTokens) ?? 0;
  const reasoningRaw = r.count(a, GENAI.reasoningOutputTokens) ?? 0;
  const oneHourRaw = r.count(a, ATTR_CACHE_CREATION_1H) ?? 0;
  r.requireAny('GenAI span');
  const input = inTotal.value ?? 0;
  const output = outTotal.value ?? 0;
  const inLabel = label(inTotal.field, inTotal.value);
  const cacheRead = clampPart(cacheReadRaw, GENAI.cacheReadInputTokens, input, inLabel, warnings);
  const cacheWrite = clampPart(cacheWriteRaw, GENAI.cacheCreationInputTokens, input - cacheRead, `${inLabel} minus ${GENAI.cacheReadInputTokens} (${cacheRead})`, warnings);
  const reasoning = clampPart(reasoningRaw, GENAI.reasoningOutputTokens, output, label(outTotal.field, outTotal.value), warnings);
  const oneHour = clampPart(oneHourRaw, ATTR_CACHE_CREATION_1H, cacheWrite, `${GENAI.cacheCreationInputTokens} (${cacheWrite})`, warnings);
  return result(
    { input: input - cacheRead - cacheWrite, cache_read: cacheRead, cache_write: cacheWrite, output: output - reasoning, reasoning, cache_write_1h: oneHour },
    warnings,
  );
}

function outcome(fn: () => NormalizedUsage): unknown {
  try {
    const r = fn();
    return { usage: r.usage, keys: Object.keys(r.usage), warnings: r.warnings };
  } catch (err) {
    return { error: (err as Error).constructor.name, field: (err as { field?: string }).field, message: (err as Error).message };
  }
}

const KEYS = [
  GENAI.inputTokens,
  GENAI.deprecatedPromptTokens,
  GENAI.outputTokens,
  GENAI.deprecatedCompletionTokens,
  GENAI.cacheReadInputTokens,
  GENAI.cacheCreationInputTokens,
  GENAI.reasoningOutputTokens,
  ATTR_CACHE_CREATION_1H,
  'gen_ai.request.model',
];
const valueArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 5000 }) },
  fc.constant(0),
  fc.integer({ min: -5, max: 60_000_000 }),
  fc.constantFrom('120', '12a', '', '-3', '1e3', 1.5, Number.NaN, Infinity, null, true, [1], { n: 1 }, 10n, 2n ** 60n, '99999999999'),
);

describe('normalizeGenAiAttributes', () => {
  it('gives the reference implementation’s buckets, warnings and errors for any attributes', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...KEYS), valueArb, { maxKeys: 9 }), (attrs) => {
        expect(outcome(() => normalizeGenAiAttributes(attrs))).toEqual(outcome(() => reference(attrs)));
      }),
      { numRuns: 5000 },
    );
    for (const raw of [null, [], 'x', 3]) {
      expect(outcome(() => normalizeGenAiAttributes(raw as never))).toEqual(outcome(() => reference(raw as never)));
    }
  });
});
