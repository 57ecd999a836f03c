/**
 * Model-id and provider-name normalisation. All patterns are compiled once here; nothing is compiled per call.
 */

/** Catalog provider names. */
// `bedrock`: AWS's own list prices for the models only Amazon Bedrock prices (Amazon Nova, Meta Llama as hosted there).
export const CATALOG_PROVIDERS = ['openai', 'anthropic', 'google', 'mistral', 'deepseek', 'xai', 'bedrock'] as const;

/**
 * OTel `gen_ai.provider.name` values (current and deprecated `gen_ai.system` spellings) that name exactly one
 * catalog provider. Hosting platforms that serve several vendors' models (aws.bedrock, gcp.vertex_ai,
 * azure.ai.inference, proxies) are absent on purpose: for them the model id alone decides the entry.
 */
const PROVIDER_MAP: ReadonlyMap<string, string> = new Map([
  ['openai', 'openai'],
  ['azure.ai.openai', 'openai'],
  ['az.ai.openai', 'openai'],
  ['azure_openai', 'openai'],
  ['anthropic', 'anthropic'],
  ['gcp.gemini', 'google'],
  ['gcp.gen_ai', 'google'],
  ['google', 'google'],
  ['gemini', 'google'],
  ['google_genai', 'google'],
  ['mistral_ai', 'mistral'],
  ['mistral', 'mistral'],
  ['mistralai', 'mistral'],
  ['deepseek', 'deepseek'],
  ['x_ai', 'xai'],
  ['xai', 'xai'],
  ['x-ai', 'xai'],
]);

/** The catalog provider a span's provider name maps to, or undefined for platforms and unknown names. */
export function catalogProviderFor(provider: string | undefined): string | undefined {
  if (provider === undefined) return undefined;
  return PROVIDER_MAP.get(provider.trim().toLowerCase());
}

/** The provider label for a model that is not in the catalog: the raw name, lower-cased, or `unknown`. */
export function providerLabel(provider: string | undefined): string {
  const p = provider?.trim().toLowerCase();
  if (!p) return 'unknown';
  return PROVIDER_MAP.get(p) ?? p;
}

// Bedrock cross-region inference profiles: us.anthropic.claude-..., eu., apac., global., us-gov., jp., au., ca.
const BEDROCK_REGION_PREFIX = /^(?:us|eu|apac|global|us-gov|jp|au|ca)\./;
// Bedrock vendor prefix: anthropic.claude-..., mistral.mistral-large-..., deepseek.r1-...
const BEDROCK_VENDOR_PREFIX = /^(?:anthropic|mistral|deepseek|openai|google|meta|amazon|cohere|ai21|qwen|writer)\./;
// Bedrock version suffix: -v1:0, -v2:0, or a bare :0.
const BEDROCK_VERSION_SUFFIX = /(?:-v\d+)?:\d+$/;
// Vertex snapshot suffix: claude-3-5-haiku@20241022.
const VERTEX_AT_SUFFIX = /@[^@/]*$/;
// Context-window variant suffix some clients append: claude-sonnet-4-5[1m].
const BRACKET_SUFFIX = /\[[^\]]*\]$/;

/**
 * Normalises a model id as spans carry it: lower-cased, path prefixes (`openai/gpt-4o`, Vertex resource paths,
 * Bedrock ARNs) reduced to the last segment, Bedrock region/vendor prefixes and `-v1:0` suffixes removed,
 * Vertex `@date` suffixes removed. Dated snapshots are NOT collapsed here: the catalog decides which dated ids
 * share a price (gpt-4o-2024-05-13 does not share gpt-4o's).
 */
export function normalizeModelId(raw: string): string {
  let m = raw.trim().toLowerCase();
  const slash = m.lastIndexOf('/');
  if (slash >= 0) m = m.slice(slash + 1);
  m = m.replace(BRACKET_SUFFIX, '');
  m = m.replace(VERTEX_AT_SUFFIX, '');
  m = m.replace(BEDROCK_REGION_PREFIX, '');
  m = m.replace(BEDROCK_VENDOR_PREFIX, '');
  m = m.replace(BEDROCK_VERSION_SUFFIX, '');
  return m;
}
