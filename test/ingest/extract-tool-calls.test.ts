/**
 * Per-call fee counts on spans (`tokenmeter.usage.tool_calls.<kind>`): read into the usage record, hostile values
 * rejected per span with the attribute named, never priced.
 */
import { describe, expect, it } from 'vitest';
import { decodedSpan } from './decoded-span.js';
import { extractUsage, MAX_PLAUSIBLE_TOOL_CALLS, type ExtractResult } from '../../src/ingest/index.js';
import type { AttributeValue } from '../../src/ingest/types.js';

const span = decodedSpan;

const BASE = {
  'gen_ai.operation.name': 'chat',
  'gen_ai.provider.name': 'anthropic',
  'gen_ai.request.model': 'claude-sonnet-4-6',
  'gen_ai.usage.input_tokens': 100,
  'gen_ai.usage.output_tokens': 50,
};

function rejected(r: ExtractResult): { reason: string; message: string } {
  expect(r.kind).toBe('rejected');
  return r as { reason: string; message: string };
}

describe('per-call fee counts on spans', () => {
  it('reads every kind (numbers or integer strings) into record.toolCalls; zeros are left out', () => {
    const r = extractUsage(
      span({
        ...BASE,
        'tokenmeter.usage.tool_calls.web_search': 3,
        'tokenmeter.usage.tool_calls.web_search_preview': '2',
        'tokenmeter.usage.tool_calls.search_grounding': 0,
      }),
    );
    expect(r.kind === 'usage' && r.record.toolCalls).toEqual({ web_search: 3, web_search_preview: 2 });
  });

  it('a span without counts has no toolCalls field (the common path is unchanged)', () => {
    const r = extractUsage(span(BASE));
    expect(r.kind).toBe('usage');
    expect(r.kind === 'usage' && 'toolCalls' in r.record).toBe(false);
  });

  it('an unknown tool_calls kind is ignored (it has no price), the known ones are read', () => {
    const r = extractUsage(span({ ...BASE, 'tokenmeter.usage.tool_calls.image_search': 5, 'tokenmeter.usage.tool_calls.web_search': 1 }));
    expect(r.kind === 'usage' && r.record.toolCalls).toEqual({ web_search: 1 });
  });

  it.each([
    [-1, 'implausible_usage', /non-negative integer count of calls/],
    [1.5, 'implausible_usage', /non-negative integer count of calls/],
    [Number.NaN, 'implausible_usage', /non-negative integer count of calls/],
    ['many', 'invalid_usage', /non-negative integer count of calls/],
    ['-3', 'invalid_usage', /non-negative integer count of calls/],
    ['9'.repeat(40), 'invalid_usage', /non-negative integer count of calls/],
    [[1, 2] as AttributeValue, 'invalid_usage', /non-negative integer count of calls/],
    [true, 'invalid_usage', /non-negative integer count of calls/],
    [MAX_PLAUSIBLE_TOOL_CALLS + 1, 'implausible_usage', /above MAX_PLAUSIBLE_TOOL_CALLS/],
  ])('rejects tokenmeter.usage.tool_calls.web_search = %j, naming the attribute', (value, reason, msg) => {
    const r = rejected(extractUsage(span({ ...BASE, 'tokenmeter.usage.tool_calls.web_search': value as AttributeValue })));
    expect(r.reason).toBe(reason);
    expect(r.message).toMatch(msg);
    expect(r.message).toContain('tokenmeter.usage.tool_calls.web_search');
  });

  it('accepts the largest plausible count', () => {
    const r = extractUsage(span({ ...BASE, 'tokenmeter.usage.tool_calls.search_grounding': MAX_PLAUSIBLE_TOOL_CALLS }));
    expect(r.kind === 'usage' && r.record.toolCalls).toEqual({ search_grounding: MAX_PLAUSIBLE_TOOL_CALLS });
  });
});
