/**
 * The mock provider's record of the usage it sent, per demo user. The demo writes it next to the ledger when it
 * stops (`mock-sent-usage.json`) so that anyone can check the ledger against what the "provider" reported.
 *
 * The mock records requests (with their bodies) and the usage of each answer (numbered 1, 2, ... in the order the
 * requests were answered); a user is known from the request body (`user` for OpenAI, `metadata.user_id` for
 * Anthropic). The mock puts that user on each answer's record; an answer without one (an older record) is
 * matched to its request by order and checked by model and stream flag.
 */
import { TOKEN_TYPES } from '../contract/names.js';
import { userOf } from '../mock-provider/index.js';
import { addUsage, zeroUsage, type Usage } from '../usage/index.js';

interface RecordedRequestLike {
  method: string;
  path: string;
  body: any;
}

interface SentUsageLike {
  requestNumber: number;
  model: string;
  stream: boolean;
  user?: string;
  usage: Usage;
}

const ANSWERING_PATHS = new Set(['/v1/chat/completions', '/v1/responses', '/v1/embeddings', '/v1/messages']);

export interface UserSentUsage {
  /** Responses that carried usage. */
  calls: number;
  usage: Usage;
}

export interface MockSentRecord {
  /** Every answer the mock sent with usage, attributed. */
  calls: number;
  total: Usage;
  users: Record<string, UserSentUsage>;
}

/** Attributes each sent usage to the user named in its request; throws when they cannot be matched exactly. */
export function attributeSentUsage(requests: readonly RecordedRequestLike[], sent: readonly SentUsageLike[]): MockSentRecord {
  // The requests the mock answered (it numbers answers 1, 2, ... in this order).
  const answered = requests.filter(
    (r) => r.method === 'POST' && ANSWERING_PATHS.has(r.path) && r.body && typeof r.body === 'object' && typeof r.body.model === 'string',
  );
  const record: MockSentRecord = { calls: 0, total: zeroUsage(), users: {} };
  for (const s of sent) {
    if (s.user !== undefined) {
      add(record, s.user, s.usage);
      continue;
    }
    const req = answered[s.requestNumber - 1];
    if (!req || req.body.model !== s.model || (req.body.stream === true) !== s.stream) {
      throw new Error(`mock answer ${s.requestNumber} (${s.model}) does not match a recorded request`);
    }
    const user = userOf(req.body);
    if (user === undefined) throw new Error(`mock answer ${s.requestNumber} has no user in its request`);
    add(record, user, s.usage);
  }
  return record;
}

function add(record: MockSentRecord, user: string, usage: Usage): void {
  const u = (record.users[user] ??= { calls: 0, usage: zeroUsage() });
  u.calls++;
  u.usage = addUsage(u.usage, pick(usage));
  record.calls++;
  record.total = addUsage(record.total, pick(usage));
}

/** Only the five buckets (drops the optional cache_write_1h part, which is included in cache_write). */
function pick(u: Usage): Usage {
  const out = zeroUsage();
  for (const t of TOKEN_TYPES) out[t] = u[t];
  return out;
}
