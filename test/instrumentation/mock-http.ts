import type { AddressInfo, Server } from 'node:net';

/*
 * The HTTP plumbing the provider mock servers of these tests share (Gemini's, Bedrock's): reading a request body,
 * answering JSON, turning a handler's failure into a 500, listening on a free loopback port.
 */

/** A request as both node:http and node:http2 (compatibility API) hand it over. */
export interface MockRequest {
  headers: Record<string, string | string[] | undefined>;
  url?: string;
  on(event: string, listener: (...args: any[]) => void): unknown;
}

/** A response as both node:http and node:http2 (compatibility API) hand it over. */
export interface MockResponse {
  headersSent: boolean;
  writeHead(status: number, headers?: Record<string, string>): unknown;
  end(body?: string | Uint8Array): unknown;
  destroy(err?: Error): unknown;
}

/** The whole request body as UTF-8. */
export function readBody(req: MockRequest): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Answers `status` with a JSON body (and any extra headers, e.g. AWS's x-amzn-errortype). */
export function sendJson(res: MockResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/**
 * A request listener running an async handler: a handler that throws answers 500 with `errorBody(err)` when nothing
 * was sent yet, and otherwise cuts the connection (a half-sent response must not look complete).
 */
export function guarded<Req extends MockRequest, Res extends MockResponse>(
  handle: (req: Req, res: Res) => Promise<void>,
  errorBody: (err: unknown) => unknown,
): (req: Req, res: Res) => void {
  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, errorBody(err));
      else res.destroy();
    });
  };
}

/** Listens on a free port of 127.0.0.1 and returns the server's base URL. */
export async function listenOnLoopback(server: Server | { listen: Server['listen']; address: Server['address'] }): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}
