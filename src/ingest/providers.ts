/**
 * Provider names normalised to the OTel `gen_ai.provider.name` vocabulary. Instrumentations spell them in
 * many ways: the deprecated `gen_ai.system` values (`az.ai.openai`, `gemini`, `vertex_ai`, `xai`), older
 * OpenLLMetry (`OpenAI`, `Anthropic`, `AWS`), OpenInference `llm.provider` / `llm.system` (`azure`, `google`,
 * `mistralai`, `vertexai`), the Vercel AI SDK's `ai.model.provider` (`openai.chat`, `anthropic.messages`,
 * `google.generative-ai`, `google.vertex.chat`, `amazon-bedrock`, `azure.chat`).
 */
const ALIASES: Record<string, string> = {
  openai: 'openai',
  anthropic: 'anthropic',
  'aws.bedrock': 'aws.bedrock',
  bedrock: 'aws.bedrock',
  'amazon-bedrock': 'aws.bedrock',
  amazon_bedrock: 'aws.bedrock',
  aws: 'aws.bedrock',
  'azure.ai.openai': 'azure.ai.openai',
  'az.ai.openai': 'azure.ai.openai',
  'azure-openai': 'azure.ai.openai',
  azure_openai: 'azure.ai.openai',
  'azure openai': 'azure.ai.openai',
  azure: 'azure.ai.openai',
  'azure.ai.inference': 'azure.ai.inference',
  'az.ai.inference': 'azure.ai.inference',
  'gcp.gemini': 'gcp.gemini',
  gemini: 'gcp.gemini',
  google: 'gcp.gemini',
  'google.generative-ai': 'gcp.gemini',
  google_genai: 'gcp.gemini',
  'google-genai': 'gcp.gemini',
  'google.genai': 'gcp.gemini',
  'gcp.vertex_ai': 'gcp.vertex_ai',
  vertex_ai: 'gcp.vertex_ai',
  vertexai: 'gcp.vertex_ai',
  'vertex ai': 'gcp.vertex_ai',
  vertex: 'gcp.vertex_ai',
  'google.vertex': 'gcp.vertex_ai',
  'gcp.gen_ai': 'gcp.gen_ai',
  mistral_ai: 'mistral_ai',
  mistralai: 'mistral_ai',
  mistral: 'mistral_ai',
  deepseek: 'deepseek',
  x_ai: 'x_ai',
  xai: 'x_ai',
  'x-ai': 'x_ai',
  groq: 'groq',
  cohere: 'cohere',
  perplexity: 'perplexity',
  'ibm.watsonx.ai': 'ibm.watsonx.ai',
  watsonx: 'ibm.watsonx.ai',
};

function alias(p: string): string | undefined {
  // hasOwn: a hostile "constructor" or "__proto__" must not reach Object.prototype.
  return Object.hasOwn(ALIASES, p) ? ALIASES[p] : undefined;
}

/** Normalises one provider spelling; an unknown one is kept, lower-cased. */
export function normalizeProvider(raw: string): string {
  const p = raw.trim().toLowerCase();
  const direct = alias(p);
  if (direct !== undefined) return direct;
  // Vercel AI SDK provider ids: "<provider>.<api>" ("openai.chat", "google.vertex.chat", "vertex.anthropic.messages").
  if (p.startsWith('google.vertex') || p.startsWith('vertex.')) return 'gcp.vertex_ai';
  if (p.startsWith('google.generative-ai')) return 'gcp.gemini';
  if (p.startsWith('azure')) return 'azure.ai.openai';
  const dot = p.indexOf('.');
  if (dot > 0) {
    const head = alias(p.slice(0, dot));
    if (head !== undefined) return head;
  }
  return p;
}
