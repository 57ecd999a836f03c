/**
 * The demo's simulated workload: which users exist, on which plan, and the sequence of LLM calls they make.
 * Pure and seeded — the same seed and user count give the same users and the same calls in the same order —
 * so a demo run can be reproduced and its results compared.
 */
import { createRng } from '../mock-provider/text.js';

export { createRng };

export type DemoProvider = 'openai' | 'anthropic';
export type DemoPlan = 'free' | 'pro' | 'team';

export interface DemoUser {
  id: string;
  plan: DemoPlan;
  /** Relative share of the calls this user makes. Some users are heavy so that they run into their limits. */
  weight: number;
}

export interface PlannedCall {
  /** 0-based position in the workload. */
  seq: number;
  user: DemoUser;
  provider: DemoProvider;
  model: string;
  stream: boolean;
  /** A product feature name, sent as `tokenmeter.feature`. */
  feature: string;
  /** A long, shared system prompt: repeated calls with the same one hit the provider's prompt cache. */
  system: string;
  /** Anthropic only: mark the system prompt with `cache_control` so it is written to / read from the cache. */
  cacheSystem: boolean;
  prompt: string;
  maxTokens: number;
  /** OpenAI reasoning models only. */
  reasoningEffort?: 'low' | 'medium' | 'high';
}

export interface WorkloadOptions {
  seed: number;
  users: number;
}

const NAMES = [
  'alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'mallory', 'niaj',
  'olivia', 'peggy', 'rupert', 'sybil', 'trent', 'victor', 'walter', 'yvonne',
];
const PLANS: DemoPlan[] = ['free', 'pro', 'team'];

/** Models the demo calls, all in the shipped price catalog. `reasoning` models report reasoning tokens. */
export const DEMO_MODELS: { provider: DemoProvider; model: string; reasoning: boolean; weight: number }[] = [
  { provider: 'openai', model: 'gpt-4o-mini', reasoning: false, weight: 4 },
  { provider: 'openai', model: 'gpt-4o', reasoning: false, weight: 1 },
  { provider: 'openai', model: 'o4-mini', reasoning: true, weight: 2 },
  { provider: 'anthropic', model: 'claude-3-5-haiku-20241022', reasoning: false, weight: 3 },
  { provider: 'anthropic', model: 'claude-sonnet-4-20250514', reasoning: false, weight: 2 },
];

const FEATURES = ['chat', 'summarise', 'code-review'] as const;

const TOPICS = [
  'the billing export', 'a failed deployment', 'the quarterly report', 'a customer complaint', 'the onboarding flow',
  'a slow database query', 'the mobile release', 'our pricing page', 'a security review', 'the team offsite',
  'the search ranking', 'an outage post-mortem', 'the data retention policy', 'a flaky integration test',
];
const ASKS = [
  'Summarise the main points of', 'Write three bullet points about', 'Explain to a new colleague', 'List the risks in',
  'Draft a short reply about', 'Suggest next steps for', 'What questions should we ask about', 'Review the plan for',
];
const WORDS = (
  'account usage limit plan invoice customer request response latency token model cache prompt stream error retry ' +
  'budget quota period report dashboard alert metric service region cluster replica ledger commit schema migration ' +
  'release feature flag rollout experiment cohort retention churn support ticket escalation owner review approval'
).split(' ');

function pick<T>(rng: () => number, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)];
}

function pickWeighted<T extends { weight: number }>(rng: () => number, items: readonly T[]): T {
  const total = items.reduce((s, i) => s + i.weight, 0);
  let r = rng() * total;
  for (const item of items) {
    r -= item.weight;
    if (r < 0) return item;
  }
  return items[items.length - 1];
}

function paragraph(rng: () => number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(pick(rng, WORDS));
  out[0] = out[0][0].toUpperCase() + out[0].slice(1);
  return out.join(' ') + '.';
}

/** A long reference document per feature, shared by every call of that feature (a cacheable prefix). */
function systemPrompt(rng: () => number, feature: string): string {
  const parts = [`You are the ${feature} assistant of Acme Cloud. Answer briefly and precisely. Reference manual follows.`];
  for (let i = 0; i < 40; i++) parts.push(paragraph(rng, 30));
  return parts.join('\n');
}

export function demoUsers(options: WorkloadOptions): DemoUser[] {
  const rng = createRng(options.seed ^ 0x5eed);
  const users: DemoUser[] = [];
  for (let i = 0; i < options.users; i++) {
    const name = i < NAMES.length ? NAMES[i] : `user-${String(i + 1).padStart(3, '0')}`;
    const plan = PLANS[i % PLANS.length];
    // The first user of each plan is a heavy user; the others make 1 to 3 shares of the calls.
    const heavy = i < PLANS.length;
    users.push({ id: name, plan, weight: heavy ? 8 : 1 + Math.floor(rng() * 3) });
  }
  return users;
}

export interface Workload {
  users: DemoUser[];
  next(): PlannedCall;
}

export function createWorkload(options: WorkloadOptions): Workload {
  if (!Number.isInteger(options.users) || options.users < 1) throw new Error('users must be a positive integer');
  const users = demoUsers(options);
  const rng = createRng(options.seed);
  const systems = new Map<string, string>(FEATURES.map((f) => [f, systemPrompt(createRng(options.seed + f.length), f)]));
  let seq = 0;
  return {
    users,
    next(): PlannedCall {
      // Everyone makes one call first, so every user shows up at once; then calls follow the users' weights.
      const user = seq < users.length ? users[seq] : pickWeighted(rng, users);
      const m = pickWeighted(rng, DEMO_MODELS);
      const feature = pick(rng, FEATURES);
      const prompt = `${pick(rng, ASKS)} ${pick(rng, TOPICS)}. Context: ${paragraph(rng, 10 + Math.floor(rng() * 60))}`;
      const call: PlannedCall = {
        seq: seq++,
        user,
        provider: m.provider,
        model: m.model,
        stream: rng() < 0.45,
        feature,
        system: systems.get(feature)!,
        cacheSystem: m.provider === 'anthropic' && rng() < 0.8,
        prompt,
        maxTokens: 64 + Math.floor(rng() * 400),
      };
      if (m.reasoning) call.reasoningEffort = pick(rng, ['low', 'medium', 'high'] as const);
      return call;
    },
  };
}
