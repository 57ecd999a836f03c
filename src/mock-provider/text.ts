/** Deterministic response text for the mock provider: the same seed and request number give the same words. */

const WORDS = [
  'the', 'meter', 'counts', 'every', 'token', 'a', 'provider', 'reports', 'and', 'prices', 'it', 'once', 'plans',
  'limit', 'what', 'users', 'spend', 'each', 'month', 'dashboards', 'show', 'cost', 'by', 'model', 'cache', 'reads',
  'are', 'cheaper', 'than', 'fresh', 'input', 'output', 'streams', 'arrive', 'in', 'chunks', 'latency', 'matters',
  'budget', 'alerts', 'fire', 'before', 'overage', 'ledger', 'commits', 'exactly', 'spans', 'carry', 'usage',
  'reasoning', 'thinks', 'quietly', 'answers', 'politely', 'summaries', 'translate', 'documents', 'quickly',
];

/** mulberry32: a tiny, well-distributed 32-bit PRNG, so the mock and the demo workload are reproducible by seed. */
export function createRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` words (at least 1), the first capitalised, ending with a full stop. */
export function generateWords(seed: number, requestNumber: number, count: number): string[] {
  const next = createRng((seed * 2654435761 + requestNumber * 40503) >>> 0);
  const n = Math.max(1, Math.floor(count));
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(WORDS[Math.floor(next() * WORDS.length)]);
  words[0] = words[0][0].toUpperCase() + words[0].slice(1);
  words[n - 1] += '.';
  return words;
}

/** The words as stream pieces: the first bare, every other one with its leading space. */
export function streamPieces(words: string[]): string[] {
  return words.map((w, i) => (i === 0 ? w : ` ${w}`));
}

/** Hidden reasoning words per response word, by reasoning effort (more effort, longer thinking). */
export const REASONING_WORDS_PER_RESPONSE_WORD: Readonly<Record<string, number>> = { none: 0, minimal: 0.5, low: 1, medium: 2, high: 4, xhigh: 6 };

/**
 * The hidden "reasoning" a reasoning model produced for a request: deterministic words (a different stream from
 * the answer's) whose tokenizer count is the reported reasoning tokens. Empty for effort `none`.
 */
export function generateReasoning(seed: number, requestNumber: number, responseWords: number, effort: string): string {
  const count = Math.round(responseWords * (REASONING_WORDS_PER_RESPONSE_WORD[effort] ?? REASONING_WORDS_PER_RESPONSE_WORD.medium));
  if (count <= 0) return '';
  return generateWords((seed ^ 0x52454153) >>> 0, requestNumber, count).join(' ');
}
