import { z } from 'zod';
import { DEFAULT_HTTP_PORT, DEFAULT_OTLP_PORT } from '../contract/names.js';
import { periodConfigSchema, plansConfigSchema, usersConfigSchema } from '../plans/index.js';
import { currencyRatesSchema, priceOverridesSchema, volumeDiscountsSchema } from '../pricing/index.js';
import { byteSizeSchema, durationSchema } from './units.js';

/** Where the ledger lives when nothing says otherwise (relative to the working directory). */
export const DEFAULT_STORAGE = './.tokenmeter/ledger';

const port = z.number().int().min(0).max(65535);

const serverSchema = z
  .strictObject({
    host: z.string().min(1).default('0.0.0.0').describe('Address both servers listen on. Use 127.0.0.1 to accept local connections only.'),
    otlp_port: port.default(DEFAULT_OTLP_PORT).describe('OTLP/HTTP receiver port (POST /v1/traces, /v1/metrics). 0 picks a free port.'),
    http_port: port
      .default(DEFAULT_HTTP_PORT)
      .describe('Operations port: /metrics, /healthz, /readyz, the usage API and the status page. 0 picks a free port.'),
    shutdown_timeout: durationSchema
      .prefault('10s')
      .describe('On SIGTERM/SIGINT: how long to wait for requests and commits in flight before closing connections.'),
    max_connections: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .optional()
      .describe(
        "Most concurrent connections to the OTLP port; more are closed on arrival (counted as rejected_requests_total{reason=\"too_many_connections\"}). Default: the process's open-file limit minus 128 (kept for the operations port, the ledger and logs), at most 16384. Must leave those 128 free: checked at start.",
      ),
    headers_timeout: durationSchema
      .prefault('10s')
      .refine((ms) => ms >= 1000 && ms <= 300_000, { error: 'between 1s and 5m' })
      .describe('How long a client may take to send a request line and headers, also on a new connection that stays silent; then the connection is closed.'),
    keep_alive_timeout: durationSchema
      .prefault('5s')
      .refine((ms) => ms >= 100 && ms <= 300_000, { error: 'between 100ms and 5m' })
      .describe('How long an idle keep-alive connection is kept open between requests.'),
  })
  .prefault({})
  .describe('Listening addresses.');

const token = z.string().min(16, { error: 'expected a token of at least 16 characters' });

const authSchema = z
  .strictObject({
    ingest_token: token
      .optional()
      .describe('When set, OTLP requests must carry `Authorization: Bearer <token>` (otherwise 401). Secret: redacted in output.'),
    api_token: token
      .optional()
      .describe('When set, the usage API (/api/v1/...) requires `Authorization: Bearer <token>`. Secret: redacted in output.'),
  })
  .prefault({})
  .describe('Bearer tokens. Unset = no authentication (bind to a private network).');

const limitsSchema = z
  .strictObject({
    max_request_bytes: byteSizeSchema
      .prefault('8MiB')
      .describe('Largest OTLP request body as sent (before decompression); larger bodies get 413 without being read.'),
    max_decompressed_bytes: byteSizeSchema
      .prefault('32MiB')
      .describe('Largest OTLP body after gzip decompression (guards against gzip bombs); larger ones get 413.'),
    max_users: z
      .number()
      .int()
      .positive()
      .default(10_000)
      .describe(
        'Most (user, plan) pairs with their own per-user counters per period, and most users with their own period and limit gauges (users at 80% of a limit or more always have theirs); the rest are summed under user="__overflow__".',
      ),
    max_features: z.number().int().positive().default(100).describe('Most distinct `feature` label values; the rest go to "__overflow__".'),
  })
  .prefault({})
  .describe('Payload and cardinality limits.');

const ledgerSchema = z
  .strictObject({
    dedup_window: durationSchema
      .prefault('7d')
      .describe('How long a span id is remembered: a replay of the same trace id + span id within this window is counted once.'),
    retention: durationSchema
      .prefault('400d')
      .describe('How long per-call records are kept in the ledger (period totals are kept regardless).'),
    refresh_interval: durationSchema
      .prefault('15s')
      .describe('How often the period gauges are re-read from the ledger, so replicas sharing one ledger converge. "0s" disables.'),
    retry_after: durationSchema
      .prefault('5s')
      .describe('Retry-After sent with 503 when the ledger is unavailable (rounded up to whole seconds).'),
  })
  .prefault({})
  .describe('Ledger behaviour.');

const HOUR_MILLIS = 3_600_000;

const ingestSchema = z
  .strictObject({
    late_arrival_window: durationSchema
      .prefault('6h')
      .refine((ms) => ms <= 31 * 24 * HOUR_MILLIS, { error: 'at most 31d' })
      .describe(
        'A call whose span ended up to this long before it arrived is charged to the period and price of its end time (a collector retrying after an outage); one that ended earlier is charged to the period and price of its arrival.',
      ),
    clock_skew: durationSchema
      .prefault('5m')
      .refine((ms) => ms <= HOUR_MILLIS, { error: 'at most 1h' })
      .describe(
        "How far in the future a span's end time may be (the sender's clock ahead of this one) and still count as now; a later end time is charged to the period and price of its arrival.",
      ),
    framework_spans: z
      .enum(['auto', 'always', 'never'])
      .prefault('auto')
      .describe(
        'LLM spans of framework instrumentations (LangChain, LlamaIndex, agent frameworks) that wrap a provider SDK call: auto = billed only when no provider-level instrumentation (OTel contrib, OpenLLMetry or OpenInference openai / anthropic, tokenmeter) was seen for the same provider from the same process within framework_spans_window, else counted as superseded and not billed; always = always billed; never = never billed.',
      ),
    framework_spans_window: durationSchema
      .prefault('24h')
      .refine((ms) => ms >= 60_000 && ms <= 31 * 24 * HOUR_MILLIS, { error: 'between 1m and 31d' })
      .describe('How long a provider-level instrumentation seen from a process counts as active there (framework_spans: auto).'),
    worker_threads: z
      .number()
      .int()
      .min(0)
      .max(16)
      .default(1)
      .describe(
        "Worker threads that decompress, decode, extract and price OTLP trace requests, so the main thread only serves HTTP, commits to the ledger and moves the metrics; 0 = all on the main thread. A worker that crashes is restarted and its requests in flight get 503 with Retry-After (nothing of them was acknowledged).",
      ),
  })
  .prefault({})
  .describe(
    'Which billing period and price a call is charged to (event times are kept for reporting either way), and which of two instrumentations of one call is billed.',
  );

const reservationsSchema = z
  .strictObject({
    ttl: durationSchema
      .prefault('5m')
      .refine((ms) => ms >= 1000 && ms <= 24 * HOUR_MILLIS, { error: 'from 1s to 24h' })
      .describe(
        "How long a reservation (admission control) holds its estimate when its call's span never arrives; longer than the slowest call plus the span export delay.",
      ),
    default_output_tokens: z
      .number()
      .int()
      .min(0)
      .max(10_000_000)
      .default(1024)
      .describe('Output tokens a reservation assumes for a request that sets no max_tokens (its estimate = input tokens counted in the app + this).'),
    sync_each_grant: z
      .boolean()
      .default(false)
      .describe(
        "Embedded ledger: fdatasync reservations.log before answering each group of granted reservations, so holds survive a machine crash too (adds one disk sync to every reservation's answer). false: a grant is written to the file before it is answered (it survives the exporter crashing or being killed) and synced right after, in the background.",
      ),
  })
  .prefault({})
  .describe('Admission control: reservations asked for by apps with withUser({ enforce: "block" }) (POST /api/v1/reservations).');

const pricingSchema = z
  .strictObject({
    overrides: priceOverridesSchema.optional().describe('Prices that add to or replace the shipped catalog (negotiated rates, fine-tunes, self-hosted models).'),
    volume_discounts: volumeDiscountsSchema
      .optional()
      .describe('Marginal discount tiers by monthly spend, per provider: `openai: [{above_usd: "10000", percent_off: "10"}]`.'),
    catalog_file: z
      .string()
      .min(1)
      .max(4096)
      .optional()
      .describe(
        'A price catalog file (the format of data/price-catalog.yaml) used instead of the shipped catalog; a relative path is relative to the working directory. Re-read with the overrides on SIGHUP.',
      ),
    reload_interval: durationSchema
      .prefault('0s')
      .refine((ms) => ms === 0 || (ms >= 10_000 && ms <= 7 * 24 * HOUR_MILLIS), { error: '"0s" (off) or between 10s and 7d' })
      .describe(
        'How often `serve` re-reads the configuration file\'s prices (pricing.overrides, pricing.catalog_file), as on SIGHUP: a file that does not validate is refused and the prices in use stay. "0s": only on SIGHUP.',
      ),
  })
  .prefault({})
  .describe('Price configuration on top of the shipped catalog.');

const displaySchema = z
  .strictObject({
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/)
      .meta({ expected: 'a three-letter ISO 4217 currency code such as "EUR"' })
      .default('USD')
      .describe('Currency the usage API and status page show next to USD (the base currency).'),
    rates: currencyRatesSchema.optional().describe('Conversion rates from USD, e.g. `EUR: "0.92"` (exact decimals).'),
  })
  .prefault({})
  .describe('Display currency.');

export const configSchema = z
  .strictObject({
    storage: z
      .string()
      .min(1)
      .default(DEFAULT_STORAGE)
      .describe(
        'Ledger location: a directory (the embedded journal ledger) or a `postgres://` URL (shared by replicas). Secret parts of URLs are redacted in output. (`pglite:<directory>`, the embedded store of tokenmeter 0.1.0, is no longer read: see docs/ledger-tools.md.)',
      ),
    server: serverSchema,
    auth: authSchema,
    limits: limitsSchema,
    ledger: ledgerSchema,
    ingest: ingestSchema,
    reservations: reservationsSchema,
    plans: plansConfigSchema.optional().describe('Plans and their per-period limits (absent limit = unlimited). Defaults: free, pro, team.'),
    users: usersConfigSchema.optional().describe('Per-user plan assignment and limit overrides.'),
    period: periodConfigSchema.prefault({}).describe('Billing period (calendar month in UTC unless configured).'),
    pricing: pricingSchema,
    display: displaySchema,
  })
  .describe('tokenmeter configuration (tokenmeter.yaml).');

/** The configuration as written (YAML/JSON input). */
export type TokenmeterConfigInput = z.input<typeof configSchema>;
/** The validated configuration with defaults applied, durations in milliseconds and sizes in bytes. */
export type TokenmeterConfig = z.output<typeof configSchema>;

/** Secret paths, redacted whenever the effective configuration is printed. */
export const SECRET_PATHS: readonly (readonly string[])[] = [['auth', 'ingest_token'], ['auth', 'api_token']];
