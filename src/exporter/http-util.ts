import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The body is larger than allowed; the caller answers 413 without reading the rest. */
export class BodyTooLargeError extends Error {
  constructor(
    readonly limitBytes: number,
    readonly declaredBytes?: number,
  ) {
    super(
      declaredBytes !== undefined
        ? `request body of ${declaredBytes} bytes exceeds the limit of ${limitBytes} bytes`
        : `request body exceeds the limit of ${limitBytes} bytes`,
    );
    this.name = 'BodyTooLargeError';
  }
}

/** The client went away or sent a broken stream. */
export class BodyReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BodyReadError';
  }
}

/**
 * Reads a request body of at most `maxBytes`. A Content-Length above the limit fails before reading anything; a
 * body that grows past it while streaming fails as soon as the limit is crossed (the rest is never buffered).
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    const n = Number(declared);
    if (Number.isFinite(n) && n > maxBytes) return Promise.reject(new BodyTooLargeError(maxBytes, n));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | undefined, body?: Buffer) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      if (err) {
        req.pause();
        reject(err);
      } else resolve(body!);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        chunks.length = 0;
        finish(new BodyTooLargeError(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish(undefined, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    const onError = (e: Error) => finish(new BodyReadError(e.message));
    const onAborted = () => finish(new BodyReadError('request aborted'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Checks `Authorization: Bearer <token>` against the configured token in constant time (both sides hashed to the
 * same length first, so neither the content nor the length leaks through timing).
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  // The scheme is case-insensitive (RFC 9110 section 11.1).
  const presented = header !== undefined && /^bearer /i.test(header) ? header.slice(7).trim() : '';
  const ok = timingSafeEqual(digest(presented), digest(token));
  return ok && presented.length > 0;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string | Buffer, contentType = 'text/plain; charset=utf-8', headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** The media type without parameters, lower-cased (`application/json; charset=utf-8` → `application/json`). */
export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}
