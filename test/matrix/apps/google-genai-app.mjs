// An ESM app run with `node --import tokenmeter/register` against the matrix cell's @google/genai.
import { GoogleGenAI } from '@google/genai';
import { withUser } from 'tokenmeter';

const ai = new GoogleGenAI({ apiKey: 'k', httpOptions: { baseUrl: process.env.MOCK_URL } });
const model = 'gemini-2.5-flash';
const out = {};
await withUser({ id: 'matrix-user', plan: 'pro' }, async () => {
  out.responseId = (await ai.models.generateContent({ model, contents: 'Hello from the matrix app.' })).responseId;
  let last;
  for await (const chunk of await ai.models.generateContentStream({ model, contents: 'Hello again.' })) last = chunk;
  out.streamedId = last.responseId;
  out.streamedCandidates = last.usageMetadata.candidatesTokenCount;
});
process.stdout.write(JSON.stringify(out));
