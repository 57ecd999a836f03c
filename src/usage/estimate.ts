import { createRequire } from 'node:module';
import type { Tiktoken as TiktokenType } from 'js-tiktoken/lite';
import { Buffer } from 'node:buffer';
import { readFile } from 'node:fs/promises';

/*
 * Token ESTIMATES with OpenAI's BPE tokenizers (js-tiktoken, pure JS, ranks shipped in the package: nothing is
 * downloaded). Only a labelled fallback for calls whose provider reported no usage, and for the demo's mock
 * provider: an estimate is never presented as a provider count (spans carry tokenmeter.usage.estimated).
 * The rank tables are megabytes: js-tiktoken's constructor builds its maps in one go, 0.6-2.4 s with the event
 * loop blocked (and about 100 MB of heap for o200k). So nothing is loaded at import, and an app-side caller that
 * must not block (the instrumentation, e.g. right after a stream was aborted) loads an encoder with
 * `loadEstimator()`: the maps are built in slices of a few milliseconds between event-loop turns, and
 * `estimatorReady()` says when the synchronous `estimateTokens` is cheap. `estimateTokens` on an encoder that is
 * not (fully) built builds the rest synchronously (the mock provider, the CLI, and the exit flush rely on that).
 */

type EncodingName = 'o200k_base' | 'cl100k_base';

/**
 * js-tiktoken is an optional peer dependency of the app-side package (its rank tables are 22 MB, two thirds of an
 * app's install for a fallback most apps never need): without it, no estimate can be made. Thrown by the
 * estimate functions; the instrumentation reports it once and leaves the call without usage.
 */
export class EstimateUnavailableError extends Error {
  constructor() {
    super('token estimates need the js-tiktoken package, which is not installed (npm install js-tiktoken)');
    this.name = 'EstimateUnavailableError';
  }
}
type Ranks = ConstructorParameters<typeof TiktokenType>[0];

const requireCjs = createRequire(import.meta.url);

/** One encoder being built: its rank table is filled from `lines`, a slice of tokens at a time. */
interface Loading {
  enc: TiktokenType;
  lines: string[];
  line: number;
  /** Where the next token of the current line starts (-1: the line's "! offset" header is not read yet). */
  pos: number;
  rank: number;
}

const encoders = new Map<EncodingName, TiktokenType>();
const loading = new Map<EncodingName, Loading>();
const pendingLoads = new Map<EncodingName, Promise<void>>();

/** How long one slice of the table build may hold the event loop. */
const SLICE_MILLIS = 4;
/** Tokens added between two looks at the clock. */
const TOKENS_PER_CHECK = 256;

function ranksModule(name: EncodingName): string {
  return `js-tiktoken/ranks/${name}`;
}

/** require() of a js-tiktoken module; EstimateUnavailableError when the optional package is not installed. */
function requireTiktoken<T>(id: string): T {
  try {
    return requireCjs(id) as T;
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') throw new EstimateUnavailableError();
    throw err;
  }
}

function requireRanks(name: EncodingName): Ranks {
  const required = requireTiktoken<Ranks & { default?: Ranks }>(ranksModule(name));
  return required.default ?? required;
}

/**
 * The rank module's data without a synchronous read: the file is `module.exports = {JSON}` (megabytes), read
 * asynchronously and parsed as JSON (a few milliseconds). Anything unexpected falls back to require().
 */
async function readRanks(name: EncodingName): Promise<Ranks> {
  try {
    const text = await readFile(requireCjs.resolve(ranksModule(name)), 'utf8');
    const ranks = JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as Ranks;
    if (typeof ranks?.bpe_ranks === 'string' && typeof ranks.pat_str === 'string') return ranks;
  } catch {
    // Below.
  }
  return requireRanks(name);
}

function startLoading(name: EncodingName, ranks: Ranks = requireRanks(name)): Loading {
  let l = loading.get(name);
  if (l === undefined) {
    const { Tiktoken } = requireTiktoken<typeof import('js-tiktoken/lite')>('js-tiktoken/lite');
    // An encoder with an empty table (instant), whose rankMap / textMap are then filled exactly as its own
    // constructor would fill them (same keys, same ranks; js-tiktoken is pinned).
    const enc = new Tiktoken({ ...ranks, bpe_ranks: '' });
    l = { enc, lines: ranks.bpe_ranks.split('\n'), line: 0, pos: -1, rank: 0 };
    loading.set(name, l);
  }
  return l;
}

/**
 * Adds tokens of the rank table until `deadline` (performance.now()); true when the table is complete. A line is
 * "! <first rank> <base64 token> <base64 token> ...": walked with indexOf (splitting the 2 MB line into 200k
 * strings at once would hold the event loop for tens of milliseconds).
 */
function buildSome(name: EncodingName, l: Loading, deadline: number): boolean {
  const internals = l.enc as unknown as { rankMap: Map<string, number>; textMap: Map<number, Uint8Array> };
  let sinceCheck = 0;
  while (l.line < l.lines.length) {
    const line = l.lines[l.line];
    if (l.pos < 0) {
      const afterMark = line.indexOf(' ') + 1;
      let afterOffset = line.indexOf(' ', afterMark);
      if (afterOffset < 0) afterOffset = line.length;
      l.rank = Number.parseInt(line.slice(afterMark, afterOffset), 10);
      l.pos = afterOffset + 1;
    }
    while (l.pos < line.length) {
      let next = line.indexOf(' ', l.pos);
      if (next < 0) next = line.length;
      if (next > l.pos) {
        const rank = l.rank++;
        const bytes = Buffer.from(line.slice(l.pos, next), 'base64');
        internals.rankMap.set(bytes.join(','), rank);
        internals.textMap.set(rank, bytes);
      }
      l.pos = next + 1;
      if (++sinceCheck === TOKENS_PER_CHECK) {
        sinceCheck = 0;
        if (performance.now() >= deadline) return false;
      }
    }
    l.pos = -1;
    l.line++;
  }
  encoders.set(name, l.enc);
  loading.delete(name);
  return true;
}

function encoder(name: EncodingName): TiktokenType {
  const enc = encoders.get(name);
  if (enc !== undefined) return enc;
  const l = startLoading(name);
  buildSome(name, l, Number.POSITIVE_INFINITY);
  return l.enc;
}

/** True when estimates with the encoding `model` uses are cheap (its table is built). */
export function estimatorReady(model?: string): boolean {
  return encoders.has(estimateEncodingForModel(model));
}

/**
 * Builds the encoding `model` uses without holding the event loop for more than a few milliseconds at a time
 * (the rank module is read asynchronously and parsed as JSON, about 3 ms). Resolves when `estimateTokens` is cheap.
 */
export function loadEstimator(model?: string): Promise<void> {
  const name = estimateEncodingForModel(model);
  if (encoders.has(name)) return Promise.resolve();
  const existing = pendingLoads.get(name);
  if (existing !== undefined) return existing;
  const done = readRanks(name).then(
    (ranks) =>
      new Promise<void>((resolve, reject) => {
        const step = (): void => {
          try {
            // A synchronous estimate may have finished the build in between.
            if (encoders.has(name) || buildSome(name, startLoading(name, ranks), performance.now() + SLICE_MILLIS)) resolve();
            else setImmediate(step);
          } catch (err) {
            reject(err);
          }
        };
        step();
      }),
  );
  pendingLoads.set(name, done);
  const forget = (): void => {
    pendingLoads.delete(name);
  };
  done.then(forget, forget);
  return done;
}

/**
 * cl100k_base for the older OpenAI families (gpt-4 / gpt-4-turbo / gpt-3.5, Azure's gpt-35, ada-002 and
 * text-embedding-3); o200k_base for gpt-4o, gpt-4.1, gpt-4.5, gpt-5, the o-series and everything else.
 * For non-OpenAI models no public tokenizer ships with us, so o200k is the (labelled) approximation.
 */
export function estimateEncodingForModel(model?: string): EncodingName {
  if (model === undefined) return 'o200k_base';
  const m = model.toLowerCase().replace(/^.*\//, '');
  if (/^(gpt-4(?![o.])|gpt-3\.5|gpt-35|text-embedding-(ada|3))/.test(m)) return 'cl100k_base';
  return 'o200k_base';
}

/** Estimated token count of a text. Special-token text such as "<|endoftext|>" is counted as plain text. */
export function estimateTokens(text: string, model?: string): number {
  if (text.length === 0) return 0;
  return encoder(estimateEncodingForModel(model)).encode(text, [], []).length;
}

/**
 * OpenAI's documented chat overhead ("How to count tokens with tiktoken", OpenAI cookbook, for gpt-3.5-turbo-0613,
 * gpt-4 and later): every message is wrapped as <|start|>{role}<|message|>{content}<|end|>, i.e. 3 tokens
 * beyond its role and content; a `name` costs 1 token more; and every reply is primed with
 * <|start|>assistant<|message|>, 3 tokens.
 */
export const ESTIMATE_TOKENS_PER_MESSAGE = 3;
export const ESTIMATE_TOKENS_PER_NAME = 1;
export const ESTIMATE_REPLY_PRIMING_TOKENS = 3;

/** Part types whose tokens a text tokenizer cannot estimate (billed by the provider per image / per second). */
const NON_TEXT_PARTS = new Set(['image_url', 'input_image', 'image', 'input_audio', 'audio', 'file', 'input_file', 'document']);

function contentText(content: unknown): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map(contentText).join('');
  if (typeof content === 'object') {
    const part = content as Record<string, unknown>;
    if (typeof part.type === 'string' && NON_TEXT_PARTS.has(part.type)) return '';
    if (typeof part.text === 'string') return part.text;
    // Tool results, function arguments and other structured parts reach the model serialised.
    return JSON.stringify(content) ?? '';
  }
  return String(content);
}

export interface EstimateChatMessage {
  role: string;
  content: unknown;
  name?: string;
}

/**
 * Estimated prompt tokens of a chat request: each message's role, text content and name, plus OpenAI's
 * per-message overhead and the reply priming. Image, audio and file parts are not estimated (0).
 */
export function estimateChatTokens(messages: EstimateChatMessage[], model?: string): number {
  let tokens = ESTIMATE_REPLY_PRIMING_TOKENS;
  for (const message of messages) {
    tokens += ESTIMATE_TOKENS_PER_MESSAGE + estimateTokens(message.role, model) + estimateTokens(contentText(message.content), model);
    if (typeof message.name === 'string' && message.name.length > 0) {
      tokens += ESTIMATE_TOKENS_PER_NAME + estimateTokens(message.name, model);
    }
  }
  return tokens;
}
