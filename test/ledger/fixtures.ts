import { randomBytes } from 'node:crypto';
import { TOKEN_TYPES, type TokenType } from '../../src/contract/names.js';
import type { LedgerRecord } from '../../src/ledger/index.js';

export const hex = (bytes: number) => randomBytes(bytes).toString('hex');

export interface RecordInput {
  userId?: string;
  plan?: string;
  periodStart?: string;
  provider?: string;
  model?: string;
  tokens?: Partial<Record<TokenType | 'cache_write_1h', number>>;
  /** Per-type cost strings; the total is their exact sum (computed by hand-written digit-safe addition below). */
  costs?: Partial<Record<TokenType, string>>;
  priced?: boolean;
  estimated?: boolean;
  traceId?: string;
  spanId?: string;
  endTimeMillis?: number;
  feature?: string;
}

/** Adds non-negative decimal strings exactly (independent of the code under test). */
export function addDecimalStrings(values: string[]): string {
  const scale = Math.max(0, ...values.map((v) => (v.split('.')[1] ?? '').length));
  let sum = 0n;
  for (const v of values) {
    const [i, f = ''] = v.split('.');
    sum += BigInt(i + f.padEnd(scale, '0'));
  }
  const s = sum.toString().padStart(scale + 1, '0');
  if (scale === 0) return s;
  const out = `${s.slice(0, -scale)}.${s.slice(-scale)}`.replace(/0+$/, '').replace(/\.$/, '');
  return out;
}

export function makeRecord(input: RecordInput = {}): LedgerRecord {
  const usage = { input: 0, cache_read: 0, cache_write: 0, output: 0, reasoning: 0, ...input.tokens };
  const costUsd = {} as Record<TokenType, string>;
  for (const t of TOKEN_TYPES) costUsd[t] = input.costs?.[t] ?? '0';
  const priced = input.priced ?? true;
  return {
    traceId: input.traceId ?? hex(16),
    spanId: input.spanId ?? hex(8),
    endTimeMillis: input.endTimeMillis ?? Date.parse(input.periodStart ?? '2030-01-01T00:00:00.000Z') + 1000,
    provider: input.provider ?? 'openai',
    rawModel: `${input.model ?? 'gpt-4o'}-2024-08-06`,
    model: input.model ?? 'gpt-4o',
    operation: 'chat',
    usage,
    estimated: input.estimated ?? false,
    userId: input.userId ?? 'alice',
    feature: input.feature,
    outcome: 'success',
    source: 'tokenmeter',
    plan: input.plan ?? 'free',
    periodStart: input.periodStart ?? '2030-01-01T00:00:00.000Z',
    priced,
    priceId: priced ? 'openai/gpt-4o@2024-08-06' : undefined,
    costUsd,
    totalCostUsd: addDecimalStrings(Object.values(costUsd)),
  };
}
