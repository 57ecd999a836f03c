import { createServer as createHttp1Server } from 'node:http';
import { createServer, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import { createServer as createNetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { guarded, listenOnLoopback, readBody, sendJson as json } from './mock-http.js';

type IncomingMessage = Pick<Http2ServerRequest, 'headers' | 'url' | 'on'>;
type ServerResponse = Pick<Http2ServerResponse, 'writeHead' | 'write' | 'end' | 'headersSent' | 'destroy'>;
import { EventStreamCodec } from '@smithy/core/event-streams';

/*
 * A local server speaking Amazon Bedrock Runtime's wire format as @aws-sdk/client-bedrock-runtime sends and parses
 * it: POST /model/{modelId}/converse and /invoke (JSON), /converse-stream and /invoke-with-response-stream
 * (application/vnd.amazon.eventstream, binary frames encoded with the AWS SDK's own event-stream codec, so the
 * mock sends exactly what the SDK parses). Every request must be SigV4-signed (the dummy credentials' key id).
 * HTTP/2 without TLS (prior knowledge), which current clients speak, and HTTP/1.1, which older 3.x releases speak,
 * on one port: the first bytes of a connection say which.
 */

export interface BedrockRequest {
  path: string;
  modelId: string;
  headers: IncomingMessage['headers'];
  body: any;
}

export interface BedrockServer {
  url: string;
  requests: BedrockRequest[];
  /** Converse TokenUsage of the next responses. */
  setConverseUsage(usage: Record<string, number>): void;
  /** Anthropic usage of the next InvokeModel responses. */
  setAnthropicUsage(usage: Record<string, number>): void;
  failNext(status: number): void;
  reset(): void;
  close(): Promise<void>;
}

export const ACCESS_KEY_ID = 'AKIDTOKENMETERTEST';
const TEXT = 'The meter counts every token once.';
const DEFAULT_CONVERSE = { inputTokens: 20, outputTokens: 7, totalTokens: 27 };
const DEFAULT_ANTHROPIC = { input_tokens: 20, output_tokens: 7 };

const codec = new EventStreamCodec(
  (b: Uint8Array) => new TextDecoder().decode(b),
  (s: string) => new TextEncoder().encode(s),
);

function frame(eventType: string, body: unknown): Uint8Array {
  return codec.encode({
    headers: {
      ':event-type': { type: 'string', value: eventType },
      ':content-type': { type: 'string', value: 'application/json' },
      ':message-type': { type: 'string', value: 'event' },
    },
    body: new TextEncoder().encode(JSON.stringify(body)),
  });
}

export async function startBedrockServer(): Promise<BedrockServer> {
  let converseUsage: Record<string, number> = DEFAULT_CONVERSE;
  let anthropicUsage: Record<string, number> = DEFAULT_ANTHROPIC;
  let fail: number | undefined;
  const requests: BedrockRequest[] = [];
  let counter = 0;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const auth = String(req.headers.authorization ?? '');
    if (!auth.startsWith(`AWS4-HMAC-SHA256 Credential=${ACCESS_KEY_ID}/`) || !/SignedHeaders=.*Signature=[0-9a-f]{64}$/.test(auth)) {
      json(res, 403, { message: 'The request signature we calculated does not match the signature you provided.' }, { 'x-amzn-errortype': 'UnrecognizedClientException' });
      return;
    }
    const m = /^\/model\/([^/]+)\/(converse|converse-stream|invoke|invoke-with-response-stream)$/.exec(url.pathname);
    if (m === null) {
      json(res, 404, { message: `no route ${url.pathname}` }, { 'x-amzn-errortype': 'ResourceNotFoundException' });
      return;
    }
    const modelId = decodeURIComponent(m[1]);
    let body: any;
    try {
      body = raw.length > 0 ? JSON.parse(raw) : undefined;
    } catch {
      json(res, 400, { message: 'Malformed input request' }, { 'x-amzn-errortype': 'ValidationException' });
      return;
    }
    requests.push({ path: url.pathname, modelId, headers: req.headers, body });
    if (fail !== undefined) {
      const status = fail;
      fail = undefined;
      json(res, status, { message: 'mock validation failure' }, { 'x-amzn-errortype': 'ValidationException' });
      return;
    }
    const id = `msg_${++counter}`;
    const words = TEXT.split(' ');
    switch (m[2]) {
      case 'converse':
        json(res, 200, {
          output: { message: { role: 'assistant', content: [{ text: TEXT }] } },
          stopReason: 'end_turn',
          usage: converseUsage,
          metrics: { latencyMs: 12 },
        });
        return;
      case 'invoke':
        if (body?.anthropic_version === undefined) {
          // Another model family's body (Llama's shape), which carries no Anthropic usage; `raw` asks for non-JSON.
          if (body?.raw === true) {
            res.writeHead(200, { 'content-type': 'application/octet-stream' });
            res.end('not json');
          } else json(res, 200, { generation: TEXT, stop_reason: 'stop' });
          return;
        }
        json(res, 200, { id, type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [{ type: 'text', text: TEXT }], stop_reason: 'end_turn', usage: anthropicUsage });
        return;
      case 'converse-stream': {
        res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
        res.write(frame('messageStart', { role: 'assistant' }));
        words.forEach((w, i) => res.write(frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: (i === 0 ? '' : ' ') + w } })));
        res.write(frame('contentBlockStop', { contentBlockIndex: 0 }));
        res.write(frame('messageStop', { stopReason: 'end_turn' }));
        res.end(frame('metadata', { usage: converseUsage, metrics: { latencyMs: 12 } }));
        return;
      }
      case 'invoke-with-response-stream': {
        res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
        const { output_tokens: out, ...start } = anthropicUsage;
        const events: unknown[] = [
          { type: 'message_start', message: { id, type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [], usage: { ...start, output_tokens: 1 } } },
          { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
          ...words.map((w, i) => ({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: (i === 0 ? '' : ' ') + w } })),
          { type: 'content_block_stop', index: 0 },
          { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: out } },
          { type: 'message_stop' },
        ];
        for (const ev of events) res.write(frame('chunk', { bytes: Buffer.from(JSON.stringify(ev)).toString('base64') }));
        res.end();
        return;
      }
    }
  }

  const sessions = new Set<Http2Session>();
  const sockets = new Set<Socket>();
  const onRequest = guarded(handle, (err) => ({ message: String(err) }));
  const h2 = createServer(onRequest);
  h2.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  const h1 = createHttp1Server(onRequest as never);
  h1.keepAliveTimeout = 120_000;
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', (first: Buffer) => {
      if (first.subarray(0, 3).toString('latin1') !== 'PRI') {
        socket.pause();
        socket.unshift(first);
        h1.emit('connection', socket);
        socket.resume();
        return;
      }
      // The HTTP/2 session reads the socket's handle directly, past anything unshifted: hand it a plain duplex that
      // replays the first bytes and relays the rest.
      const relay = new Duplex({
        read() {},
        write(chunk: Buffer, _enc, cb) {
          socket.write(chunk, cb);
        },
        final(cb) {
          socket.end(cb);
        },
        destroy(err, cb) {
          socket.destroy();
          cb(err);
        },
      });
      relay.push(first);
      socket.on('data', (d: Buffer) => relay.push(d));
      socket.on('end', () => relay.push(null));
      socket.on('error', (err) => relay.destroy(err));
      h2.emit('connection', relay);
    });
  });
  const url = await listenOnLoopback(server);
  return {
    url,
    requests,
    setConverseUsage(u) {
      converseUsage = u;
    },
    setAnthropicUsage(u) {
      anthropicUsage = u;
    },
    failNext(status) {
      fail = status;
    },
    reset() {
      converseUsage = DEFAULT_CONVERSE;
      anthropicUsage = DEFAULT_ANTHROPIC;
      fail = undefined;
      requests.length = 0;
    },
    close() {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
