import { CountReader, detailsObject, result, usageObject, type NormalizedUsage } from './counts.js';
import type { Usage } from './usage.js';

/**
 * Anthropic Messages `usage`. Unlike OpenAI, `input_tokens` EXCLUDES cache reads and cache writes: the three
 * are disjoint and ADDED. `cache_creation_input_tokens` is the sum of the TTL split in `cache_creation`
 * (`ephemeral_5m_input_tokens` + `ephemeral_1h_input_tokens`); the 1-hour part is priced higher and kept as
 * `cache_write_1h` inside `cache_write`. Thinking tokens are included in `output_tokens` and not reported
 * separately, so `reasoning` is 0 and thinking is priced as output (which is how Anthropic bills it).
 * The same shape comes back from Bedrock InvokeModel and Vertex for Claude models.
 */
export function normalizeAnthropicUsage(raw: unknown): NormalizedUsage {
  const u = usageObject(raw, 'Anthropic');
  const r = new CountReader();
  const input = r.count(u, 'input_tokens') ?? 0;
  const cacheRead = r.count(u, 'cache_read_input_tokens') ?? 0;
  const creation = r.count(u, 'cache_creation_input_tokens');
  const split = detailsObject(u, 'cache_creation');
  const w5m = r.count(split, 'ephemeral_5m_input_tokens', 'cache_creation.ephemeral_5m_input_tokens');
  const w1h = r.count(split, 'ephemeral_1h_input_tokens', 'cache_creation.ephemeral_1h_input_tokens');
  const output = r.count(u, 'output_tokens') ?? 0;
  r.requireAny('Anthropic');

  const warnings: string[] = [];
  const splitSum = (w5m ?? 0) + (w1h ?? 0);
  // The documented total wins; the split only says how much of it was 1-hour.
  const cacheWrite = creation ?? splitSum;
  let oneHour = w1h ?? 0;
  if (creation !== undefined) {
    if (oneHour > creation) {
      warnings.push(
        `cache_creation.ephemeral_1h_input_tokens (${oneHour}) exceeds cache_creation_input_tokens (${creation}); clamped to ${creation}`,
      );
      oneHour = creation;
    } else if (w5m !== undefined && w1h !== undefined && splitSum !== creation) {
      warnings.push(
        `cache_creation split (5m ${w5m} + 1h ${w1h} = ${splitSum}) differs from cache_creation_input_tokens (${creation}); using cache_creation_input_tokens`,
      );
    }
  }
  const usage: Usage = { input, cache_read: cacheRead, cache_write: cacheWrite, output, reasoning: 0 };
  if (oneHour !== 0) usage.cache_write_1h = oneHour;
  return result(usage, warnings);
}
