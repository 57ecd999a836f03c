/**
 * A request the exporter refuses. `status` is the HTTP status the OTLP/HTTP receiver answers with:
 * 400 malformed payload, 413 too large (after decompression), 415 unsupported content type or encoding.
 */
export class IngestError extends Error {
  readonly status: 400 | 413 | 415;

  constructor(status: 400 | 413 | 415, message: string) {
    super(message);
    this.name = 'IngestError';
    this.status = status;
  }
}
