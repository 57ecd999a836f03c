/**
 * The PostgreSQL ledger's schema: one numbered list of migrations (tokenmeter 0.1.0 also ran it on PGlite).
 * Applied at open under an advisory lock, each in its own transaction, recorded in `schema_migrations`.
 * Never edit a released migration; append a new one.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const TOKEN_COLUMNS = `
  input_tokens bigint NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
  cache_read_tokens bigint NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0),
  cache_write_tokens bigint NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0),
  cache_write_1h_tokens bigint NOT NULL DEFAULT 0 CHECK (cache_write_1h_tokens >= 0),
  output_tokens bigint NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
  reasoning_tokens bigint NOT NULL DEFAULT 0 CHECK (reasoning_tokens >= 0)`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'calls and rollups',
    sql: `
-- One row per LLM call. (trace_id, span_id) is the call's identity: the primary key is the dedup record.
CREATE TABLE calls (
  trace_id text NOT NULL,
  span_id text NOT NULL,
  period_start timestamptz NOT NULL,
  end_time timestamptz NOT NULL,
  received_at timestamptz NOT NULL,
  user_id text NOT NULL,
  plan text NOT NULL,
  feature text,
  provider text NOT NULL,
  raw_model text NOT NULL,
  model text NOT NULL,
  operation text NOT NULL,
  outcome text NOT NULL,
  source text NOT NULL,
  estimated boolean NOT NULL,
  service_tier text,
  priced boolean NOT NULL,
  price_id text,
  ${TOKEN_COLUMNS},
  -- Per-type costs are net of any volume discount; gross = net + discount.
  input_cost_usd numeric NOT NULL CHECK (input_cost_usd >= 0),
  cache_read_cost_usd numeric NOT NULL CHECK (cache_read_cost_usd >= 0),
  cache_write_cost_usd numeric NOT NULL CHECK (cache_write_cost_usd >= 0),
  output_cost_usd numeric NOT NULL CHECK (output_cost_usd >= 0),
  reasoning_cost_usd numeric NOT NULL CHECK (reasoning_cost_usd >= 0),
  gross_cost_usd numeric NOT NULL CHECK (gross_cost_usd >= 0),
  discount_usd numeric NOT NULL DEFAULT 0 CHECK (discount_usd >= 0),
  cost_usd numeric NOT NULL CHECK (cost_usd >= 0),
  PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX calls_received_at_idx ON calls (received_at);
CREATE INDEX calls_period_user_idx ON calls (period_start, user_id);

-- Exact totals per billing period, user and plan (the period gauges and limits).
CREATE TABLE period_user_usage (
  period_start timestamptz NOT NULL,
  user_id text NOT NULL,
  plan text NOT NULL,
  ${TOKEN_COLUMNS},
  requests bigint NOT NULL DEFAULT 0,
  cost_usd numeric NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (period_start, user_id, plan)
);

-- Per period, user, plan, provider and model: the usage API's breakdown without scanning calls.
CREATE TABLE period_user_model_usage (
  period_start timestamptz NOT NULL,
  user_id text NOT NULL,
  plan text NOT NULL,
  provider text NOT NULL,
  model text NOT NULL,
  ${TOKEN_COLUMNS},
  requests bigint NOT NULL DEFAULT 0,
  unpriced_requests bigint NOT NULL DEFAULT 0,
  estimated_requests bigint NOT NULL DEFAULT 0,
  cost_usd numeric NOT NULL DEFAULT 0,
  PRIMARY KEY (period_start, user_id, plan, provider, model)
);

-- Per period, provider and model for everyone (period summary).
CREATE TABLE period_model_usage (
  period_start timestamptz NOT NULL,
  provider text NOT NULL,
  model text NOT NULL,
  ${TOKEN_COLUMNS},
  requests bigint NOT NULL DEFAULT 0,
  unpriced_requests bigint NOT NULL DEFAULT 0,
  estimated_requests bigint NOT NULL DEFAULT 0,
  cost_usd numeric NOT NULL DEFAULT 0,
  PRIMARY KEY (period_start, provider, model)
);

-- Per period and provider: gross spend (volume discount tiers are on gross spend), discounts, net.
CREATE TABLE period_provider_spend (
  period_start timestamptz NOT NULL,
  provider text NOT NULL,
  gross_usd numeric NOT NULL DEFAULT 0,
  discount_usd numeric NOT NULL DEFAULT 0,
  net_usd numeric NOT NULL DEFAULT 0,
  requests bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (period_start, provider)
);
`,
  },
  {
    version: 2,
    name: 'per-call fees',
    sql: `
-- Per-call fees (web searches, search grounding queries): the fee part of cost_usd (NULL = the call had none) and
-- the provider's call counts. cost_usd = the five per-type costs + fee_cost_usd.
ALTER TABLE calls
  ADD COLUMN fee_cost_usd numeric,
  ADD COLUMN web_search_calls bigint NOT NULL DEFAULT 0 CHECK (web_search_calls >= 0),
  ADD COLUMN web_search_preview_calls bigint NOT NULL DEFAULT 0 CHECK (web_search_preview_calls >= 0),
  ADD COLUMN search_grounding_calls bigint NOT NULL DEFAULT 0 CHECK (search_grounding_calls >= 0);
`,
  },
  {
    version: 3,
    name: 're-pricing audit',
    sql: `
-- Re-pricing (tokenmeter reprice): one row per applied re-pricing (who, when, the command's arguments, the
-- totals), one row per call it changed (old and new price id and amounts). calls carry their current costs and
-- the audit that set them; the rollups are adjusted in the same transaction.
CREATE TABLE reprice_audits (
  id text PRIMARY KEY,
  applied_at timestamptz NOT NULL,
  applied_by text NOT NULL,
  arguments jsonb NOT NULL,
  calls bigint NOT NULL,
  newly_priced bigint NOT NULL,
  delta_usd numeric NOT NULL,
  periods timestamptz[] NOT NULL,
  price_ids jsonb NOT NULL,
  users jsonb NOT NULL
);
CREATE TABLE call_adjustments (
  audit_id text NOT NULL REFERENCES reprice_audits (id),
  trace_id text NOT NULL,
  span_id text NOT NULL,
  period_start timestamptz NOT NULL,
  user_id text NOT NULL,
  plan text NOT NULL,
  old_priced boolean NOT NULL,
  old_price_id text,
  new_price_id text NOT NULL,
  old_cost_usd numeric NOT NULL,
  new_cost_usd numeric NOT NULL,
  delta_usd numeric NOT NULL,
  PRIMARY KEY (audit_id, trace_id, span_id)
);
CREATE INDEX call_adjustments_call_idx ON call_adjustments (trace_id, span_id);
ALTER TABLE calls ADD COLUMN repriced_by text;
`,
  },
];

/** Key of the advisory lock that serialises migrations between processes opening one database. */
export const MIGRATION_LOCK_KEY = 7_260_417_113;
