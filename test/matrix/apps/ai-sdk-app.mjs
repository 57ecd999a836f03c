// An ESM app on the Vercel AI SDK run with `node --import tokenmeter/register` against the matrix cell's `ai` and
// `@ai-sdk/openai`: no call site knows about tokenmeter.
import { createOpenAI } from '@ai-sdk/openai';
import { embed, generateText, streamText } from 'ai';
import { withUser } from 'tokenmeter';

const openai = createOpenAI({ apiKey: 'k', baseURL: `${process.env.MOCK_URL}/v1` });
const out = {};
await withUser({ id: 'matrix-user', plan: 'pro' }, async () => {
  out.generateText = (await generateText({ model: openai.chat('gpt-4o-mini'), prompt: 'Hello from the matrix app.' })).usage;
  const stream = streamText({ model: openai.chat('gpt-4o-mini'), prompt: 'Hello again.' });
  for await (const _ of stream.textStream) void _;
  out.streamText = await stream.usage;
  out.embed = (await embed({ model: openai.embedding('text-embedding-3-small'), value: 'Hello' })).usage;
});
process.stdout.write(JSON.stringify(out));
