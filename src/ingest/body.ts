import { gunzipSync, constants as zlibConstants } from 'node:zlib';
import { IngestError } from './errors.js';

export type BodyFormat = 'protobuf' | 'json';

/** Maps a Content-Type header to the OTLP encoding; anything else is 415. Parameters (charset) are allowed. */
export function bodyFormat(contentType: string | undefined): BodyFormat {
  if (contentType === undefined) throw new IngestError(415, 'missing Content-Type: use application/x-protobuf or application/json');
  const semi = contentType.indexOf(';');
  const mediaType = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (mediaType === 'application/x-protobuf') return 'protobuf';
  if (mediaType === 'application/json') return 'json';
  throw new IngestError(
    415,
    `unsupported Content-Type ${JSON.stringify(contentType.slice(0, 100))}: use application/x-protobuf or application/json`,
  );
}

/**
 * Undoes Content-Encoding (gzip or identity). The decompressed size is capped: zlib stops as soon as the
 * output passes `maxDecompressedBytes`, so a gzip bomb fails fast with 413 without allocating its output.
 */
export function decodeBody(body: Buffer, contentEncoding: string | undefined, maxDecompressedBytes: number): Buffer {
  const encoding = contentEncoding === undefined ? 'identity' : contentEncoding.trim().toLowerCase();
  if (encoding === 'identity' || encoding === '') {
    if (body.length > maxDecompressedBytes) {
      throw new IngestError(413, `body of ${body.length} bytes exceeds the limit of ${maxDecompressedBytes} bytes`);
    }
    return body;
  }
  if (encoding !== 'gzip' && encoding !== 'x-gzip') {
    throw new IngestError(415, `unsupported Content-Encoding ${JSON.stringify(encoding.slice(0, 100))}: use gzip or identity`);
  }
  try {
    return gunzipSync(body, { maxOutputLength: Math.max(1, maxDecompressedBytes) });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE' || (err instanceof RangeError && /buffer|output/i.test(err.message))) {
      throw new IngestError(413, `gzip body decompresses to more than the limit of ${maxDecompressedBytes} bytes`);
    }
    const message = err instanceof Error ? err.message : String(err);
    const errno = (err as { errno?: unknown }).errno;
    const hint = errno === zlibConstants.Z_BUF_ERROR ? ' (truncated gzip stream)' : '';
    throw new IngestError(400, `invalid gzip body: ${message}${hint}`);
  }
}
