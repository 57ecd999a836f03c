// A CommonJS app with its OWN NodeSDK of the current line (the matrix cell's @opentelemetry/sdk-node), configured
// from the standard OTEL_* variables, that adds tokenmeter's instrumentations and nothing else from tokenmeter.
const { NodeSDK } = require('@opentelemetry/sdk-node');
const { tokenmeterInstrumentations, withUser } = require('tokenmeter');

const sdk = new NodeSDK({ serviceName: 'own-sdk-301', instrumentations: [tokenmeterInstrumentations()] });
sdk.start();

// Required after sdk.start(): tokenmeter's require hook patches them on the way in.
const OpenAI = require('openai');
const Anthropic = require('@anthropic-ai/sdk');

async function main() {
  const base = process.env.MOCK_URL;
  const openai = new OpenAI({ apiKey: 'k', baseURL: `${base}/v1` });
  const anthropic = new Anthropic({ apiKey: 'k', baseURL: base });
  const messages = [{ role: 'user', content: 'Hello from an app with its own SDK.' }];
  const out = { chunks: 0 };
  await withUser({ id: 'own-user', plan: 'team' }, async () => {
    out.chatId = (await openai.chat.completions.create({ model: 'gpt-4o-mini', messages })).id;
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    for await (const chunk of stream) {
      out.chunks++;
      if ('usage' in chunk) out.sawUsage = true;
    }
    out.messageId = (await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 32, messages })).id;
  });
  await sdk.shutdown();
  process.stdout.write(JSON.stringify(out));
}
main();
