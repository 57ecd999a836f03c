// An ESM app run with `node --import tokenmeter/register` against the matrix cell's @anthropic-ai/sdk.
import Anthropic from '@anthropic-ai/sdk';
import { withUser } from 'tokenmeter';

const client = new Anthropic({ apiKey: 'k', baseURL: process.env.MOCK_URL });
const model = 'claude-haiku-4-5';
const messages = [{ role: 'user', content: 'Hello from the matrix app.' }];
const out = {};
await withUser({ id: 'matrix-user', plan: 'pro' }, async () => {
  out.messageId = (await client.messages.create({ model, max_tokens: 64, messages })).id;
  const final = await client.messages.stream({ model, max_tokens: 64, messages }).finalMessage();
  out.streamedId = final.id;
  out.streamedOutputTokens = final.usage.output_tokens;
});
process.stdout.write(JSON.stringify(out));
