// An ESM app run with `node --import tokenmeter/register` against the matrix cell's openai: chat, a streamed chat,
// a streamed response and embeddings. It prints what it saw, so the test can check nothing was added.
import OpenAI from 'openai';
import { withUser } from 'tokenmeter';

const client = new OpenAI({ apiKey: 'k', baseURL: `${process.env.MOCK_URL}/v1` });
const model = 'gpt-4o-mini';
const messages = [{ role: 'user', content: 'Hello from the matrix app.' }];
const out = { chunks: [] };
await withUser({ id: 'matrix-user', plan: 'pro' }, async () => {
  out.chatId = (await client.chat.completions.create({ model, messages })).id;
  const stream = await client.chat.completions.create({ model, messages, stream: true });
  for await (const chunk of stream) out.chunks.push(chunk);
  const events = await client.responses.create({ model, input: 'Say something.', stream: true });
  for await (const ev of events) if (ev.type === 'response.completed') out.responseId = ev.response.id;
  out.embeddingTokens = (await client.embeddings.create({ model: 'text-embedding-3-small', input: 'alpha beta' })).usage.prompt_tokens;
});
process.stdout.write(JSON.stringify(out));
