import type { IncomingMessage, ServerResponse } from 'node:http';
import { MAX_USER_ID_CHARS, userIdProblem } from '../usage/record-text.js';
import type { LedgerHealth } from './ledger-health.js';
import type { ExporterMetrics } from './metrics.js';
import { BodyReadError, BodyTooLargeError, bearerMatches, readBody, sendJson, sendText } from './http-util.js';
import { BadReservation, parseReservationBody, type ReservationAnswerJson, type ReservationItemError, type ReservationService } from './reservations.js';
import type { LedgerPort, PlanPort } from './ports.js';
import type { StaticFiles } from './static-files.js';
import { summaryJson, usageListJson, userUsageJson, type DisplayMoney } from './usage-api.js';
import { PeriodLabelError, REPORT_BREAKDOWNS, REPORT_FORMATS, ReportError, periodLabel, periodStatus, reportLines, resolvePeriod, writeReport } from '../report/index.js';
import type { ReportBy, ReportFormat } from '../report/index.js';
import type { BillingPeriod } from '../plans/types.js';
import { MAX_API_REPRICE_USERS, RepriceInputError, RepriceTooLargeError, repricePlanJson, repriceQuery, type RepricePlan, type RepriceQuery } from '../report/reprice.js';
import type { RepriceAudit } from '../ledger/adjustments.js';
import { LedgerError, isLedgerUnavailable } from '../ledger/errors.js';

/** POST /api/v1/reprice: plans a re-pricing and, when asked, applies it (exporter.ts binds it to the ledger and prices). */
export interface RepriceEndpoint {
  run(q: RepriceQuery, apply: { by: string; arguments: string[] } | undefined): Promise<{ plan: RepricePlan; audit?: RepriceAudit }>;
}

/** Largest re-pricing request body: a few short fields. */
export const MAX_REPRICE_BODY_BYTES = 4096;
const REPRICE_FIELDS = ['from', 'to', 'model', 'apply', 'by'];

export interface OpsHandlerOptions {
  metrics: ExporterMetrics;
  ledger: LedgerPort;
  plans: PlanPort;
  staticFiles: StaticFiles;
  apiToken?: string;
  display: DisplayMoney;
  retryAfterSeconds: number;
  now: () => Date;
  /** Called before a scrape so the period gauges are for the current period (rollover without traffic). */
  beforeScrape: () => void;
  log: (message: string) => void;
  isShuttingDown: () => boolean;
  /** Readiness from the last commits, not the ping alone (ledger-health.ts). */
  health?: LedgerHealth;
  /** `ingest.late_arrival_window`: a period is closed (reports final) this long after its end. Default 6 h. */
  lateArrivalMillis?: number;
  /** The display currency and its rate, for reports (absent: USD only). */
  displayRate?: { currency: string; rate: string };
  /** Admission control (POST /api/v1/reservations); absent: the endpoint answers 404. */
  reservations?: ReservationService;
  /** Re-pricing (POST /api/v1/reprice); absent: the endpoint answers 404. */
  reprice?: RepriceEndpoint;
}

/** Largest reservation request body: a few short fields. */
export const MAX_RESERVATION_BODY_BYTES = 4096;
/** Largest batch body (a JSON array of up to MAX_RESERVATION_BATCH_ITEMS reservations: 1 KiB each on average). */
export const MAX_RESERVATION_BATCH_BODY_BYTES = 256 * 1024;

/** Reports at once: a per-call report reads every call of a period; more would starve ingest of the event loop. */
export const MAX_CONCURRENT_REPORTS = 2;

const REPORT_CONTENT_TYPES: Record<ReportFormat, string> = {
  json: 'application/json; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  table: 'text/plain; charset=utf-8',
};

/**
 * With `auth.api_token` set the status page (static files, no data) is still served, and the page sends the token it
 * reads from its own address (`/#token=...`: a fragment never reaches the server, its logs or a Referer header).
 */
export const API_TOKEN_HINT = 'send "Authorization: Bearer <auth.api_token>"; the status page takes it from its address: open /#token=<auth.api_token>';

/** Longest user id the API accepts: the same as at ingest (src/usage/record-text.ts). */
export const MAX_USER_ID_LENGTH = MAX_USER_ID_CHARS;
const PLAN_RE = /^[A-Za-z0-9_.-]{1,64}$/;

class BadQuery extends Error {}

function parseQuery(search: URLSearchParams, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of search) {
    if (!allowed.includes(k)) throw new BadQuery(`unknown query parameter ${JSON.stringify(k.slice(0, 40))}; allowed: ${allowed.join(', ') || 'none'}`);
    if (out.has(k)) throw new BadQuery(`query parameter ${k} given twice`);
    out.set(k, v);
  }
  return out;
}

function parseNumberParam(v: string | undefined, name: string, min: number, max: number, integer: boolean): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,10}(\.\d{1,10})?$/.test(v)) throw new BadQuery(`${name} must be a number such as 0.8, got ${JSON.stringify(v.slice(0, 40))}`);
  const n = Number(v);
  if (!(n >= min && n <= max) || (integer && !Number.isInteger(n))) throw new BadQuery(`${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${v}`);
  return n;
}

/** The operations port: /metrics, /healthz, /readyz, the usage API and the status page. */
export function createOpsHandler(o: OpsHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const unavailable = (res: ServerResponse, err: unknown) => {
    o.log(`ledger query failed: ${err instanceof Error ? err.message : String(err)}`);
    o.metrics.setLedgerUp(false);
    sendJson(res, 503, { error: 'the ledger is unavailable; retry later' }, { 'retry-after': String(o.retryAfterSeconds) });
  };

  const sendReport = async (res: ServerResponse, period: BillingPeriod, by: ReportBy, format: ReportFormat, user: string | undefined, now: Date): Promise<void> => {
    const audits = o.ledger.repriceAudits ? await o.ledger.repriceAudits(period.start) : [];
    const lines = reportLines(o.ledger, { period, by, audits, ...(user !== undefined ? { user } : {}), ...(o.plans.timeZone ? { timeZone: o.plans.timeZone } : {}) });
    // The first line is read before the status is sent: a ledger that cannot answer is still a 503.
    const first = await lines.next();
    const replay = (async function* () {
      if (!first.done) yield first.value;
      yield* lines;
    })();
    res.writeHead(200, { 'content-type': REPORT_CONTENT_TYPES[format], 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    const header = {
      label: periodLabel(period, o.plans.timeZone ?? 'UTC'),
      period,
      ...periodStatus(period, now, o.lateArrivalMillis ?? 6 * 3_600_000),
      by,
      ...(user !== undefined ? { user } : {}),
      ...(o.displayRate ? { display: o.displayRate } : {}),
      repricings: audits,
    };
    try {
      await writeReport(replay, header, format, async (chunk) => {
        if (res.destroyed) throw new Error('the client went away');
        if (!res.write(chunk)) await new Promise<void>((r) => res.once('drain', r).once('close', r));
      });
      res.end();
    } catch (err) {
      // Headers are gone: a cut-off body (no total line) is the only honest signal left.
      o.log(`report stopped: ${err instanceof Error ? err.message : String(err)}`);
      res.destroy();
    }
  };

  let reportsRunning = 0;
  const authorized = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (o.apiToken !== undefined && !bearerMatches(req.headers.authorization, o.apiToken)) {
      sendJson(res, 401, { error: 'missing or wrong bearer token', hint: API_TOKEN_HINT }, { 'www-authenticate': 'Bearer realm="tokenmeter usage API"' });
      return false;
    }
    return true;
  };

  /**
   * The POST endpoints' common prologue: the bearer token, a JSON content type and a body of at most `maxBytes`.
   * Undefined when it has already answered (401, 415, 413) or dropped a broken upload.
   */
  const readJsonPost = async (req: IncomingMessage, res: ServerResponse, maxBytes: number, contentTypeHint: string): Promise<Buffer | undefined> => {
    if (!authorized(req, res)) {
      req.resume();
      return undefined;
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      req.resume();
      sendJson(res, 415, { error: contentTypeHint });
      return undefined;
    }
    try {
      return await readBody(req, maxBytes);
    } catch (err) {
      if (err instanceof BodyTooLargeError) sendJson(res, 413, { error: err.message }, { connection: 'close' });
      else if (err instanceof BodyReadError) res.destroy();
      else throw err;
      return undefined;
    }
  };

  const reserve = async (req: IncomingMessage, res: ServerResponse, service: ReservationService): Promise<void> => {
    const body = await readJsonPost(req, res, MAX_RESERVATION_BATCH_BODY_BYTES, 'send the reservation as Content-Type: application/json');
    if (body === undefined) return;
    // One reservation is a few short fields: a larger body that is not a batch (a JSON array) is not one.
    if (body.length > MAX_RESERVATION_BODY_BYTES && body.toString('latin1', 0, 64).trimStart()[0] !== '[') {
      sendJson(res, 413, { error: `request body of ${body.length} bytes exceeds the limit of ${MAX_RESERVATION_BODY_BYTES} bytes for one reservation (send more as a JSON array)` });
      return;
    }
    let parsed: ReturnType<typeof parseReservationBody>;
    try {
      parsed = parseReservationBody(body);
    } catch (err) {
      if (err instanceof BadReservation) sendJson(res, err.status, { error: err.message });
      else throw err;
      return;
    }
    if (!parsed.batch) {
      let answer;
      try {
        answer = await service.reserve(parsed.request);
      } catch (err) {
        unavailable(res, err);
        return;
      }
      sendJson(res, 200, answer);
      return;
    }
    // A batch: every item decided (in order, each atomic on its own), one answer per item in the same order. A
    // ledger failure fails the items it touched, not the whole batch.
    let failed: unknown;
    const answers = await Promise.all(
      parsed.items.map((item): Promise<ReservationAnswerJson | ReservationItemError> | ReservationItemError =>
        'error' in item
          ? item
          : service.reserve(item).catch((err: unknown) => {
              failed ??= err;
              return { error: 'the ledger is unavailable; retry later', status: 503 };
            }),
      ),
    );
    if (failed !== undefined) {
      o.log(`ledger query failed: ${failed instanceof Error ? failed.message : String(failed)}`);
      o.metrics.setLedgerUp(false);
    }
    sendJson(res, 200, answers);
  };

  let repricing = false;
  const reprice = async (req: IncomingMessage, res: ServerResponse, service: RepriceEndpoint): Promise<void> => {
    const body = await readJsonPost(req, res, MAX_REPRICE_BODY_BYTES, 'send the re-pricing as Content-Type: application/json, e.g. {"from":"2026-11-01","to":"2026-11-30","apply":false}');
    if (body === undefined) return;
    let q: RepriceQuery;
    let apply: { by: string; arguments: string[] } | undefined;
    try {
      let v: unknown;
      try {
        v = JSON.parse(body.toString('utf8'));
      } catch {
        throw new RepriceInputError('the body is not valid JSON');
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new RepriceInputError('the body must be a JSON object such as {"from":"2026-11-01"}');
      const fields = v as Record<string, unknown>;
      for (const k of Object.keys(fields)) {
        if (!REPRICE_FIELDS.includes(k)) throw new RepriceInputError(`unknown field ${JSON.stringify(k.slice(0, 40))}; allowed: ${REPRICE_FIELDS.join(', ')}`);
      }
      q = repriceQuery(fields, { from: 'from', to: 'to', model: 'model' });
      if (fields.apply !== undefined && typeof fields.apply !== 'boolean') throw new RepriceInputError('apply must be true or false (default false: a dry run)');
      const by = fields.by ?? 'api';
      // eslint-disable-next-line no-control-regex -- who applied it goes into the audit record and reports
      if (typeof by !== 'string' || by.length === 0 || by.length > 256 || /[\u0000-\u001f\u007f]/.test(by)) throw new RepriceInputError('by must be 1 to 256 printable characters');
      if (fields.apply === true) {
        if (o.apiToken === undefined) {
          sendJson(res, 403, { error: 'applying a re-pricing through the API needs auth.api_token (bearer) set on this exporter; a dry run does not' });
          return;
        }
        const args = Object.entries(fields).map(([k, x]) => `${k}=${typeof x === 'string' ? x : JSON.stringify(x)}`);
        apply = { by: `${by} (api)`, arguments: ['POST /api/v1/reprice', ...args] };
      }
    } catch (err) {
      if (err instanceof RepriceInputError) {
        sendJson(res, 400, { error: err.message });
        return;
      }
      throw err;
    }
    if (repricing) {
      sendJson(res, 429, { error: 'a re-pricing is running; retry when it is done' }, { 'retry-after': '5' });
      return;
    }
    repricing = true;
    try {
      const { plan, audit } = await service.run(q, apply);
      sendJson(res, 200, repricePlanJson(q, plan, audit, MAX_API_REPRICE_USERS));
    } catch (err) {
      if (err instanceof RepriceTooLargeError) sendJson(res, 400, { error: err.message });
      else if (err instanceof LedgerError && !isLedgerUnavailable(err)) sendJson(res, 409, { error: err.message });
      else unavailable(res, err);
    } finally {
      repricing = false;
    }
  };

  const api = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    if (!authorized(req, res)) return;
    const now = o.now();
    const current = o.plans.periodFor(now);
    const path = url.pathname;
    // `?period=YYYY-MM`: a past (or the current) period instead of the current one.
    const periodParam = (q: Map<string, string>): BillingPeriod => {
      const label = q.get('period');
      if (label === undefined) return current;
      try {
        return resolvePeriod(label, o.plans, now, 'period');
      } catch (err) {
        if (err instanceof PeriodLabelError) throw new BadQuery(err.message);
        throw err;
      }
    };
    try {
      if (path === '/api/v1/report') {
        const q = parseQuery(url.searchParams, ['period', 'by', 'user', 'format']);
        const period = periodParam(q);
        const by = q.get('by') ?? 'user';
        if (!(REPORT_BREAKDOWNS as readonly string[]).includes(by)) throw new BadQuery(`by must be one of ${REPORT_BREAKDOWNS.join(', ')}, got ${JSON.stringify(by.slice(0, 40))}`);
        const format = q.get('format') ?? 'json';
        if (!(REPORT_FORMATS as readonly string[]).includes(format)) throw new BadQuery(`format must be one of ${REPORT_FORMATS.join(', ')}, got ${JSON.stringify(format.slice(0, 40))}`);
        const user = q.get('user');
        if (user !== undefined) {
          const problem = userIdProblem(user);
          if (problem !== undefined) throw new BadQuery(`user: the user id ${problem}`);
        }
        if ((by === 'feature' || by === 'day') && !o.ledger.scanCalls) throw new BadQuery(`by=${by} needs the per-call record, and this ledger cannot scan its calls`);
        if (reportsRunning >= MAX_CONCURRENT_REPORTS) {
          sendJson(res, 429, { error: `${MAX_CONCURRENT_REPORTS} reports are being made; retry shortly` }, { 'retry-after': '5' });
          return;
        }
        reportsRunning++;
        try {
          await sendReport(res, period, by as ReportBy, format as ReportFormat, user, now);
        } finally {
          reportsRunning--;
        }
        return;
      }
      const period = current;
      if (path === '/api/v1/summary') {
        parseQuery(url.searchParams, []);
        const rows = await o.ledger.periodModelUsage(period.start);
        sendJson(res, 200, summaryJson(period, rows, o.display));
        return;
      }
      if (path === '/api/v1/usage' || path === '/api/v1/usage/') {
        const q = parseQuery(url.searchParams, ['plan', 'min_ratio', 'limit', 'period']);
        const period = periodParam(q);
        const plan = q.get('plan');
        if (plan !== undefined && !PLAN_RE.test(plan)) throw new BadQuery(`plan must be 1-64 letters, digits, "_", "-" or ".", got ${JSON.stringify(plan.slice(0, 40))}`);
        const minRatio = parseNumberParam(q.get('min_ratio'), 'min_ratio', 0, 1_000_000, false);
        const limit = parseNumberParam(q.get('limit'), 'limit', 1, 10_000, true) ?? 1000;
        const rollups = await o.ledger.loadPeriodRollups(period.start, { unpriced: true });
        sendJson(res, 200, usageListJson(period, rollups, o.plans, { ...(plan !== undefined ? { plan } : {}), ...(minRatio !== undefined ? { minRatio } : {}), limit, ...(o.reservations ? { refused: o.reservations.refusedCalls(period.start) } : {}) }));
        return;
      }
      if (path.startsWith('/api/v1/usage/')) {
        const period = periodParam(parseQuery(url.searchParams, ['period']));
        const raw = path.slice('/api/v1/usage/'.length);
        let user: string;
        try {
          user = decodeURIComponent(raw);
        } catch {
          throw new BadQuery('the user id is not valid percent-encoding');
        }
        // One rule for user ids, here and at ingest: an id a span could carry can be looked up, and no other.
        const problem = userIdProblem(user);
        if (problem !== undefined) throw new BadQuery(`the user id ${problem}`);
        const rows = await o.ledger.userModelUsage(user, period.start);
        const reserved = o.reservations ? await o.reservations.reserved(user, period.start) : undefined;
        sendJson(res, 200, userUsageJson(user, period, rows, o.plans, o.display, reserved));
        return;
      }
      sendJson(res, 404, { error: `no API endpoint at ${path.slice(0, 100)}` });
    } catch (err) {
      if (err instanceof BadQuery || err instanceof ReportError) sendJson(res, 400, { error: err.message });
      else unavailable(res, err);
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // The reservations endpoint is on every enforced LLM call's path: matched before any URL parsing.
    if (req.url === '/api/v1/reservations' && req.method === 'POST' && o.reservations !== undefined) {
      await reserve(req, res, o.reservations);
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      sendJson(res, 400, { error: 'malformed request target' });
      return;
    }
    const path = url.pathname;
    if (path === '/api/v1/reprice') {
      if (o.reprice === undefined) {
        req.resume();
        sendJson(res, 404, { error: 're-pricing is not available on this exporter' });
      } else if (req.method !== 'POST') {
        req.resume();
        sendJson(res, 405, { error: `${req.method} not allowed: use POST` }, { allow: 'POST' });
      } else await reprice(req, res, o.reprice);
      return;
    }
    if (path === '/api/v1/reservations/stream' && o.reservations !== undefined) {
      // The stream is an Upgrade (reservation-stream.ts); a plain request gets here.
      req.resume();
      sendJson(res, 426, { error: 'the reservations stream needs "Connection: Upgrade" and "Upgrade: tokenmeter-reservations/1" (docs/instrumentation.md)' }, { upgrade: 'tokenmeter-reservations/1', connection: 'upgrade' });
      return;
    }
    if (path === '/api/v1/reservations') {
      if (o.reservations === undefined) {
        req.resume();
        sendJson(res, 404, { error: 'admission control is not available on this exporter' });
      } else if (req.method !== 'POST') {
        req.resume();
        sendJson(res, 405, { error: `${req.method} not allowed: use POST` }, { allow: 'POST' });
      } else await reserve(req, res, o.reservations);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: `${req.method} not allowed: use GET` }, { allow: 'GET, HEAD' });
      return;
    }
    // Nothing here reads a request body; drain it so keep-alive connections stay usable.
    req.resume();
    if (path === '/metrics') {
      o.beforeScrape();
      sendText(res, 200, await o.metrics.renderBody(), o.metrics.contentType);
      return;
    }
    if (path === '/healthz') {
      sendJson(res, 200, { status: 'ok' });
      return;
    }
    if (path === '/readyz') {
      if (o.isShuttingDown()) {
        sendJson(res, 503, { status: 'shutting down' });
        return;
      }
      try {
        await withTimeout(o.ledger.ping(), 2000);
      } catch (err) {
        if (o.health) o.health.failed();
        else o.metrics.setLedgerUp(false);
        sendJson(res, 503, { status: 'ledger unavailable', error: err instanceof Error ? err.message.slice(0, 200) : String(err) });
        return;
      }
      // The ping answered, but commits may still be failing (a full disk): the last commits decide.
      if (o.health && !o.health.answered()) {
        const f = o.health.recentFailure();
        sendJson(res, 503, { status: 'ledger commits failing', error: f?.message.slice(0, 200), failed_seconds_ago: f ? Math.round(f.agoMillis / 1000) : undefined });
        return;
      }
      if (!o.health) o.metrics.setLedgerUp(true);
      sendJson(res, 200, { status: 'ready' });
      return;
    }
    if (path.startsWith('/api/')) {
      await api(req, res, url);
      return;
    }
    const file = await o.staticFiles.get(path);
    if (file) {
      res.writeHead(200, {
        'content-type': file.contentType,
        'content-length': file.body.length,
        'x-content-type-options': 'nosniff',
        'cache-control': 'no-cache',
        'referrer-policy': 'no-referrer',
      });
      res.end(req.method === 'HEAD' ? undefined : file.body);
      return;
    }
    sendJson(res, 404, { error: 'not found' });
  };

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      o.log(`operations request failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
