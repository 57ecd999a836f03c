import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Gauge, type Registry } from 'prom-client';
import { METRIC } from '../contract/names.js';
import { bearerMatches } from './http-util.js';
import { BadReservation, reservationFromJson, type ReservationService } from './reservations.js';

/*
 * The reservations stream (issue 16): one long-lived connection per app process instead of one HTTP request per
 * reservation. The app asks `GET /api/v1/reservations/stream` with `Upgrade: tokenmeter-reservations/1` (bearer
 * token like the rest of the API); after `101 Switching Protocols` the connection carries newline-delimited JSON
 * both ways: `{"id":7,"reservation":{...}}` from the app, `{"id":7,"answer":{...}}` (or `{"id":7,"error":"...",
 * "status":400}`) back, matched by `id`, in any order. An HTTP request per reservation cost the app 120-280 µs of
 * CPU against 20-45 µs for a line on the stream (BENCHMARKS.md, issue 16, session 5). An Upgrade rather than a
 * never-ending request body: the server's request timeout does not apply to an upgraded socket, and there is no
 * chunked framing to pay for. Exporters without it answer 404 (or close), and the app keeps the HTTP form.
 */

export const RESERVATION_STREAM_PATH = '/api/v1/reservations/stream';
export const RESERVATION_STREAM_PROTOCOL = 'tokenmeter-reservations/1';
/**
 * Streams open at once. The operations port takes OPS_MAX_CONNECTIONS (64) sockets: half stays for the API, the
 * status page and scrapes. An app past the cap gets 503 and uses the HTTP form.
 */
export const MAX_RESERVATION_STREAMS = 32;
/** Longest line: one reservation (MAX_RESERVATION_BODY_BYTES) and its envelope. */
export const MAX_STREAM_LINE_BYTES = 4096 + 128;
/** Reservations being decided on one stream; past it the stream is not read until answers have gone out. */
export const MAX_STREAM_UNDECIDED = 1024;
/** Answers waiting to be written to a client that does not read them; past it the stream is not read either. */
const MAX_STREAM_UNSENT_BYTES = 1024 * 1024;
/** A stream with no traffic either way this long is closed (the app opens another when it needs one). */
export const STREAM_IDLE_TIMEOUT_MILLIS = 5 * 60_000;

export interface ReservationStreamOptions {
  /** Absent: admission control is off on this exporter, and the stream answers 404 like the HTTP form. */
  service: ReservationService | undefined;
  apiToken?: string;
  /** A line begun but not finished within this is a slow client: the stream is closed (server.headers_timeout). */
  partialLineTimeoutMillis: number;
  isShuttingDown: () => boolean;
  log: (message: string) => void;
  /** Ledger failures seen while deciding (the health gauge, as the HTTP form does). */
  ledgerFailed: () => void;
  registry?: Registry;
  maxStreams?: number;
  idleTimeoutMillis?: number;
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 405: 'Method Not Allowed', 503: 'Service Unavailable' };

/** Answers an upgrade request that is not taken with a plain HTTP response and closes the socket. */
function refuse(socket: Duplex, status: number, error: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ error });
  const head = [`HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}`, 'content-type: application/json', `content-length: ${Buffer.byteLength(body)}`, 'connection: close'];
  for (const [k, v] of Object.entries(headers)) head.push(`${k}: ${v}`);
  socket.on('error', () => {});
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
  // A client that never reads the refusal does not keep the socket.
  setTimeout(() => socket.destroy(), 2000).unref();
}

/** The reservation streams of one exporter: `handleUpgrade` is the operations server's 'upgrade' listener. */
export class ReservationStreams {
  private readonly open = new Set<StreamConnection>();
  private readonly max: number;

  constructor(private readonly o: ReservationStreamOptions) {
    this.max = o.maxStreams ?? MAX_RESERVATION_STREAMS;
    if (o.registry) {
      const open = this.open;
      new Gauge({
        name: METRIC.reservationStreams,
        help: 'Reservation streams open now (one per app process using admission control over the stream).',
        registers: [o.registry],
        collect() {
          this.set(open.size);
        },
      });
    }
  }

  get size(): number {
    return this.open.size;
  }

  handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    try {
      this.upgrade(req, socket, head);
    } catch (err) {
      // The exporter never crashes on input.
      this.o.log(`reservation stream failed: ${err instanceof Error ? err.message : String(err)}`);
      socket.destroy();
    }
  };

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (req.url !== RESERVATION_STREAM_PATH) return refuse(socket, 404, `no upgrade at ${String(req.url).slice(0, 100)}`);
    if (req.method !== 'GET') return refuse(socket, 405, `${String(req.method)} not allowed: use GET`, { allow: 'GET' });
    const wanted = String(req.headers.upgrade ?? '').toLowerCase();
    if (wanted !== RESERVATION_STREAM_PROTOCOL) return refuse(socket, 400, `upgrade to ${RESERVATION_STREAM_PROTOCOL}, got ${JSON.stringify(wanted.slice(0, 60))}`);
    const service = this.o.service;
    if (service === undefined) return refuse(socket, 404, 'admission control is not available on this exporter');
    if (this.o.apiToken !== undefined && !bearerMatches(req.headers.authorization, this.o.apiToken)) {
      return refuse(socket, 401, 'missing or wrong bearer token', { 'www-authenticate': 'Bearer realm="tokenmeter usage API"' });
    }
    if (this.o.isShuttingDown()) return refuse(socket, 503, 'shutting down', { 'retry-after': '1' });
    if (this.open.size >= this.max) {
      return refuse(socket, 503, `${this.max} reservation streams are open: use POST /api/v1/reservations`, { 'retry-after': '30' });
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${RESERVATION_STREAM_PROTOCOL}\r\n\r\n`);
    const conn = new StreamConnection(socket, service, this.o, () => this.open.delete(conn));
    this.open.add(conn);
    if (head.length > 0) conn.data(head);
  }

  /** Ends every stream (shutdown): answers being decided still go out, for at most `graceMillis`. */
  async close(graceMillis = 1000): Promise<void> {
    await Promise.all([...this.open].map((c) => c.close(graceMillis)));
  }
}

class StreamConnection {
  private partial: Buffer | undefined;
  private partialTimer: NodeJS.Timeout | undefined;
  private undecided = 0;
  private out: string[] = [];
  private flushScheduled = false;
  private paused = false;
  private closed = false;
  private ending = false;
  private readonly closedPromise: Promise<void>;

  constructor(
    private readonly socket: Duplex,
    private readonly service: ReservationService,
    private readonly o: ReservationStreamOptions,
    onClose: () => void,
  ) {
    (socket as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
    (socket as { setTimeout?: (ms: number, cb: () => void) => void }).setTimeout?.(o.idleTimeoutMillis ?? STREAM_IDLE_TIMEOUT_MILLIS, () => this.fatal('idle: closed', 408));
    this.closedPromise = new Promise<void>((resolve) => {
      socket.once('close', () => {
        this.closed = true;
        clearTimeout(this.partialTimer);
        onClose();
        resolve();
      });
    });
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      try {
        this.data(chunk);
      } catch (err) {
        // The exporter never crashes on input: the stream ends, saying so.
        o.log(`reservation stream failed: ${err instanceof Error ? err.message : String(err)}`);
        this.fatal('internal error', 500);
      }
    });
    socket.on('end', () => this.end());
    socket.on('drain', () => this.maybeResume());
  }

  data(chunk: Buffer): void {
    if (this.ending) return;
    const buf = this.partial === undefined ? chunk : Buffer.concat([this.partial, chunk]);
    this.partial = undefined;
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
      if (nl - start > MAX_STREAM_LINE_BYTES) return this.fatal(`a line of ${nl - start} bytes exceeds the limit of ${MAX_STREAM_LINE_BYTES}`, 413);
      const line = buf.toString('utf8', start, nl);
      start = nl + 1;
      this.line(line);
      if (this.ending) return;
    }
    if (start < buf.length) {
      if (buf.length - start > MAX_STREAM_LINE_BYTES) return this.fatal(`a line exceeds the limit of ${MAX_STREAM_LINE_BYTES} bytes`, 413);
      // Copied: a subarray would keep the whole chunk alive.
      this.partial = Buffer.from(buf.subarray(start));
      this.partialTimer ??= setTimeout(() => this.fatal(`a line was not finished within ${this.o.partialLineTimeoutMillis} ms`, 408), this.o.partialLineTimeoutMillis);
    } else if (this.partialTimer !== undefined) {
      clearTimeout(this.partialTimer);
      this.partialTimer = undefined;
    }
    if (this.undecided >= MAX_STREAM_UNDECIDED || this.unsent() > MAX_STREAM_UNSENT_BYTES) {
      this.paused = true;
      this.socket.pause();
    }
    if (this.undecided === 0) this.flush();
  }

  private unsent(): number {
    return (this.socket as { writableLength?: number }).writableLength ?? 0;
  }

  private line(text: string): void {
    const t = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (t.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(t);
    } catch {
      // A tokenmeter client never sends one: the stream is broken, not one reservation.
      return this.fatal('a line is not JSON', 400);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return this.fatal('a line must be a JSON object {"id":1,"reservation":{...}}', 400);
    const env = v as Record<string, unknown>;
    const id = env.id;
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) return this.fatal('id must be a whole number from 0 to 2^53 - 1', 400);
    const extra = Object.keys(env).find((k) => k !== 'id' && k !== 'reservation');
    if (extra !== undefined) return this.send({ id, error: `unknown field ${JSON.stringify(extra.slice(0, 40))}; a line has id and reservation`, status: 400 });
    let req;
    try {
      req = reservationFromJson(env.reservation);
    } catch (err) {
      if (err instanceof BadReservation) return this.send({ id, error: err.message, status: 400 });
      throw err;
    }
    this.undecided++;
    this.service.reserve(req).then(
      (answer) => this.decided({ id, answer }),
      (err: unknown) => {
        this.o.log(`ledger query failed: ${err instanceof Error ? err.message : String(err)}`);
        this.o.ledgerFailed();
        this.decided({ id, error: 'the ledger is unavailable; retry later', status: 503 });
      },
    );
  }

  private decided(msg: object): void {
    this.undecided--;
    this.send(msg);
    this.maybeResume();
  }

  private send(msg: object): void {
    if (this.closed) return;
    this.out.push(JSON.stringify(msg));
    // Answers decided together go out in one write: at once when nothing else is being decided, else after the
    // other decisions of this turn.
    if (this.undecided === 0) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.out.length === 0 || this.closed || !this.socket.writable) {
      this.out = [];
      return;
    }
    const text = `${this.out.join('\n')}\n`;
    this.out = [];
    this.socket.write(text);
    if (this.ending && this.undecided === 0) this.socket.end();
  }

  private maybeResume(): void {
    if (this.paused && !this.ending && this.undecided < MAX_STREAM_UNDECIDED / 2 && this.unsent() <= MAX_STREAM_UNSENT_BYTES) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /** The client ended its side: what is being decided is still answered, then the stream ends. */
  private end(): void {
    this.ending = true;
    clearTimeout(this.partialTimer);
    if (this.undecided === 0) {
      this.flush();
      if (!this.closed && this.socket.writable) this.socket.end();
    }
  }

  /** A broken stream: one last line saying why (id null), then closed. */
  private fatal(error: string, status: number): void {
    if (this.ending || this.closed) return;
    this.ending = true;
    clearTimeout(this.partialTimer);
    this.partial = undefined;
    this.out.push(JSON.stringify({ id: null, error, status }));
    this.flush();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  close(graceMillis: number): Promise<void> {
    if (!this.closed) {
      this.ending = true;
      this.socket.pause();
      if (this.undecided === 0) {
        this.flush();
        this.socket.end();
      }
      setTimeout(() => this.socket.destroy(), graceMillis).unref();
    }
    return this.closedPromise;
  }
}
