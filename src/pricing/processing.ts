/**
 * Where a call was served, from what its span carries, for regional / data-residency premiums:
 * - Anthropic's usage.inference_geo ("global", or a geography such as "us");
 * - an AWS Bedrock model id: `global.` inference profiles are global; geographic profiles (`us.`, `eu.`, `apac.`,
 *   ...) and in-region model ids (`anthropic.claude-...`) are regional;
 * - the `server.address` of the endpoint: OpenAI's data-residency hosts (us. / eu. / au. / in. / jp.api.openai.com)
 *   and Vertex AI's regional or multi-region hosts (`us-east5-aiplatform.googleapis.com`) are regional, their
 *   global hosts global.
 * Undefined when nothing on the span says; such a call is priced at the list (global) price.
 */
import { catalogProviderFor } from './normalize.js';

export interface ProcessingFacts {
  /** The span's provider name (gen_ai.provider.name). */
  provider?: string;
  /** The model id as the span carries it (before normalisation). */
  rawModel?: string;
  /** OTel `server.address`. */
  serverAddress?: string;
  /** Anthropic usage.inference_geo, when the span carries it. */
  inferenceGeo?: string;
}

const OPENAI_RESIDENCY_HOST = /^(?:us|eu|au|in|jp)\.api\.openai\.com$/;
const VERTEX_LOCATION_HOST = /^[a-z0-9-]+-aiplatform\.googleapis\.com$/;
const BEDROCK_GLOBAL = /^(?:arn:[^/]*\/)?global\./;
const BEDROCK_GEO = /^(?:arn:[^/]*\/)?(?:us|eu|apac|us-gov|jp|au|ca)\./;
const BEDROCK_IN_REGION = /^(?:arn:[^/]*\/)?(?:anthropic|openai|mistral|deepseek|google|meta|amazon|cohere|ai21|qwen|writer)\./;

export function processingScope(facts: ProcessingFacts): 'global' | 'regional' | undefined {
  const geo = facts.inferenceGeo?.trim().toLowerCase();
  if (geo) return geo === 'global' ? 'global' : 'regional';

  const model = facts.rawModel?.trim().toLowerCase() ?? '';
  const provider = facts.provider?.trim().toLowerCase();
  if (provider === 'aws.bedrock' || model.startsWith('arn:aws')) {
    if (BEDROCK_GLOBAL.test(model)) return 'global';
    if (BEDROCK_GEO.test(model) || BEDROCK_IN_REGION.test(model)) return 'regional';
  }

  const host = facts.serverAddress?.trim().toLowerCase();
  if (host) {
    if (host === 'api.openai.com' || host === 'aiplatform.googleapis.com') return 'global';
    if (OPENAI_RESIDENCY_HOST.test(host) && (provider === undefined || catalogProviderFor(provider) === 'openai')) return 'regional';
    if (VERTEX_LOCATION_HOST.test(host)) return 'regional';
  }
  return undefined;
}
