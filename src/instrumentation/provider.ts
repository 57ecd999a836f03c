/** Which provider an OpenAI-SDK client talks to, from its base URL (`gen_ai.provider.name`). */
export interface ServerInfo {
  provider: string;
  address: string | undefined;
  port: number | undefined;
}

/** Provider for OpenAI-compatible servers tokenmeter does not know; `server.address` says which one. */
export const GENERIC_OPENAI_COMPATIBLE = 'openai_compatible';

// Host suffix → provider name. Names follow the OTel GenAI `gen_ai.provider.name` well-known values where one
// exists (openai, azure.ai.openai, groq, deepseek, mistral_ai); the others are the provider's own name.
const OPENAI_COMPATIBLE_HOSTS: ReadonlyArray<readonly [string, string]> = [
  ['api.openai.com', 'openai'],
  ['.openai.azure.com', 'azure.ai.openai'],
  ['.cognitiveservices.azure.com', 'azure.ai.openai'],
  ['.services.ai.azure.com', 'azure.ai.openai'],
  ['openrouter.ai', 'openrouter'],
  ['api.groq.com', 'groq'],
  ['api.deepseek.com', 'deepseek'],
  ['api.together.xyz', 'together'],
  ['api.together.ai', 'together'],
  ['api.mistral.ai', 'mistral_ai'],
];

const cache = new Map<string, ServerInfo>();

function hostMatches(host: string, pattern: string): boolean {
  return pattern.startsWith('.') ? host.endsWith(pattern) : host === pattern || host.endsWith(`.${pattern}`);
}

/** `defaultProvider` is what an unknown host maps to (the generic name for OpenAI, `anthropic` for Anthropic). */
export function serverInfo(baseURL: unknown, defaultProvider: string, isAzureClient = false): ServerInfo {
  const key = `${defaultProvider}|${isAzureClient ? 1 : 0}|${String(baseURL)}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  let info: ServerInfo = { provider: isAzureClient ? 'azure.ai.openai' : defaultProvider, address: undefined, port: undefined };
  try {
    const url = new URL(String(baseURL));
    const host = url.hostname.toLowerCase();
    const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    let provider = info.provider;
    if (!isAzureClient && defaultProvider === GENERIC_OPENAI_COMPATIBLE) {
      for (const [pattern, name] of OPENAI_COMPATIBLE_HOSTS) {
        if (hostMatches(host, pattern)) {
          provider = name;
          break;
        }
      }
    }
    info = { provider, address: host, port };
  } catch {
    // An unparsable base URL leaves the provider as given and no server.address.
  }
  if (cache.size < 256) cache.set(key, info);
  return info;
}
