import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { guarded, listenOnLoopback, readBody, sendJson as json } from './mock-http.js';

/*
 * A local server speaking the Gemini REST wire format the @google/genai SDK uses, for the Gemini API
 * (`/v1beta/models/{model}:{method}`) and Vertex AI (`/{version}/publishers/google/models/{model}:{method}` or
 * `/projects/.../models/{model}:{method}`): generateContent (JSON), streamGenerateContent?alt=sse (server-sent
 * events, one GenerateContentResponse per `data:` line), embedContent / batchEmbedContents / predict, countTokens.
 * The usage it reports is the test's (`setUsage`), so prices can be worked out by hand.
 */

export interface GeminiRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: any;
}

export interface GeminiServer {
  url: string;
  requests: GeminiRequest[];
  /** The usageMetadata of the next responses (the final chunk of a stream). Undefined: no usageMetadata at all. */
  setUsage(usage: Record<string, number> | undefined): void;
  /** Text of the answer; a stream sends one word per chunk. */
  setText(text: string): void;
  /** The next request fails with this HTTP status (once). */
  failNext(status: number): void;
  /** Streams stop after this many chunks without a finish reason, closing the connection abruptly. */
  breakStreamAfter(chunks: number | undefined): void;
  reset(): void;
  close(): Promise<void>;
}

const DEFAULT_USAGE = { promptTokenCount: 12, candidatesTokenCount: 5, totalTokenCount: 17 };
const DEFAULT_TEXT = 'The meter counts every token once.';

export async function startGeminiServer(): Promise<GeminiServer> {
  let usage: Record<string, number> | undefined = DEFAULT_USAGE;
  let text = DEFAULT_TEXT;
  let fail: number | undefined;
  let breakAfter: number | undefined;
  const requests: GeminiRequest[] = [];
  let counter = 0;

  function candidate(t: string, finish: boolean): Record<string, unknown> {
    const c: Record<string, unknown> = { content: { role: 'model', parts: [{ text: t }] }, index: 0 };
    if (finish) c.finishReason = 'STOP';
    return c;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const raw = await readBody(req);
    let body: any;
    try {
      body = raw.length > 0 ? JSON.parse(raw) : undefined;
    } catch {
      json(res, 400, { error: { code: 400, message: 'Invalid JSON payload received.', status: 'INVALID_ARGUMENT' } });
      return;
    }
    requests.push({ method: req.method ?? '', path: url.pathname, query: url.searchParams, headers: req.headers, body });
    if (fail !== undefined) {
      const status = fail;
      fail = undefined;
      json(res, status, { error: { code: status, message: 'mock failure', status: status === 429 ? 'RESOURCE_EXHAUSTED' : 'INTERNAL' } });
      return;
    }
    const m = /\/models\/([^/:]+):(\w+)$/.exec(url.pathname);
    if (m === null) {
      json(res, 404, { error: { code: 404, message: `no route ${url.pathname}`, status: 'NOT_FOUND' } });
      return;
    }
    const [, model, method] = m;
    const responseId = `resp-${++counter}`;
    switch (method) {
      case 'generateContent': {
        const r: Record<string, unknown> = { candidates: [candidate(text, true)], modelVersion: model, responseId };
        if (usage !== undefined) r.usageMetadata = usage;
        json(res, 200, r);
        return;
      }
      case 'streamGenerateContent': {
        if (url.searchParams.get('alt') !== 'sse') {
          json(res, 400, { error: { code: 400, message: 'expected alt=sse', status: 'INVALID_ARGUMENT' } });
          return;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const words = text.split(' ');
        for (let i = 0; i < words.length; i++) {
          if (breakAfter !== undefined && i >= breakAfter) {
            res.socket?.destroy();
            return;
          }
          const last = i === words.length - 1;
          const chunk: Record<string, unknown> = { candidates: [candidate((i === 0 ? '' : ' ') + words[i], last)], modelVersion: model, responseId };
          if (usage !== undefined) {
            // As Gemini does: the prompt in full on every chunk, the candidates so far; the final chunk exact.
            chunk.usageMetadata = last
              ? usage
              : { promptTokenCount: usage.promptTokenCount, candidatesTokenCount: i + 1, totalTokenCount: (usage.promptTokenCount ?? 0) + i + 1 };
          }
          res.write(`data: ${JSON.stringify(chunk)}\r\n\r\n`);
          await new Promise((r) => setImmediate(r));
        }
        res.end();
        return;
      }
      case 'batchEmbedContents':
      case 'embedContent': {
        const n = Array.isArray(body?.requests) ? body.requests.length : 1;
        const r: Record<string, unknown> =
          method === 'embedContent' && !Array.isArray(body?.requests)
            ? { embedding: { values: [0.1, 0.2, 0.3] } }
            : { embeddings: Array.from({ length: n }, () => ({ values: [0.1, 0.2, 0.3] })) };
        if (usage !== undefined) r.usageMetadata = { promptTokenCount: usage.promptTokenCount, totalTokenCount: usage.promptTokenCount };
        json(res, 200, r);
        return;
      }
      case 'predict': {
        const n = Array.isArray(body?.instances) ? body.instances.length : 1;
        const each = usage?.promptTokenCount ?? 0;
        json(res, 200, { predictions: Array.from({ length: n }, () => ({ embeddings: { values: [0.1, 0.2], statistics: { token_count: each, truncated: false } } })) });
        return;
      }
      case 'countTokens':
        json(res, 200, { totalTokens: usage?.promptTokenCount ?? 0 });
        return;
      default:
        json(res, 404, { error: { code: 404, message: `no method ${method}`, status: 'NOT_FOUND' } });
    }
  }

  const server: Server = createServer(guarded(handle, (err) => ({ error: { code: 500, message: String(err), status: 'INTERNAL' } })));
  // A client reusing a kept-alive socket just as the server times it out sees "fetch failed" (a test that loads the
  // tokenizer can idle that long): keep sockets open for the whole test file.
  server.keepAliveTimeout = 120_000;
  const url = await listenOnLoopback(server);
  return {
    url,
    requests,
    setUsage(u) {
      usage = u;
    },
    setText(t) {
      text = t;
    },
    failNext(status) {
      fail = status;
    },
    breakStreamAfter(n) {
      breakAfter = n;
    },
    reset() {
      usage = DEFAULT_USAGE;
      text = DEFAULT_TEXT;
      fail = undefined;
      breakAfter = undefined;
      requests.length = 0;
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
