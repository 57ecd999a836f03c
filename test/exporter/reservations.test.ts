/**
 * Admission control in the exporter (issue 16): POST /api/v1/reservations grants or refuses against the user's
 * committed usage plus the holds in flight; a hold is settled when the ledger commits the call's span (once, also
 * when the span is replayed), expires after its TTL, and a refusal writes nothing to the ledger.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock, SimplePlans } from './fakes.js';
import { getJson, httpRequest, otlpJson, postOtlp, scrape, startTestExporter, type TestExporter } from './harness.js';

const running: TestExporter[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.close()));
});
async function start(...args: Parameters<typeof startTestExporter>): Promise<TestExporter> {
  const e = await startTestExporter(...args);
  running.push(e);
  return e;
}

const NOW = new Date('2026-06-15T12:00:00Z');
const TRACE = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const span = (n: number) => n.toString(16).padStart(16, '0');

function reserve(e: TestExporter, body: unknown, headers: Record<string, string> = {}) {
  return httpRequest(`${e.httpUrl}/api/v1/reservations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  }).then((r) => ({ status: r.status, json: JSON.parse(r.body.toString('utf8')) }));
}

/** A user with `used` requests committed this period. */
async function seed(e: TestExporter, user: string, used: number, at = NOW): Promise<void> {
  const spans = Array.from({ length: used }, (_, i) => ({ traceId: 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', spanId: span(1000 + i), user, model: 'gpt-4o-mini', input: 10, output: 5 }));
  if (spans.length > 0) expect((await postOtlp(e.otlpUrl, otlpJson(spans, BigInt(at.getTime()) * 1_000_000n))).status).toBe(200);
}

const call = (user: string, n: number, extra: Record<string, unknown> = {}) => ({
  user,
  provider: 'openai',
  model: 'gpt-4o-mini',
  input_tokens: 100,
  max_output_tokens: 50,
  trace_id: TRACE,
  span_id: span(n),
  ...extra,
});

describe('reservations', () => {
  it('50 concurrent requests for a user with 3 requests left: exactly 3 granted, 47 refused with the limit', async () => {
    const e = await start({ clock: new FakeClock(NOW) });
    await seed(e, 'u1', 7);
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => reserve(e, call('u1', i + 1))));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const granted = answers.filter((a) => a.json.granted);
    const refused = answers.filter((a) => !a.json.granted);
    expect(granted).toHaveLength(3);
    expect(refused).toHaveLength(47);
    expect(refused[0]!.json).toEqual({ granted: false, user: 'u1', plan: 'free', limit: 'requests', used: 10, limit_value: 10, retry_after: '2026-07-01T00:00:00.000Z' });
    // Refusals wrote nothing: the ledger still holds the 7 seeded calls.
    expect([...e.ledger.records.values()].filter((r) => r.userId === 'u1')).toHaveLength(7);
    const usage = await getJson(`${e.httpUrl}/api/v1/usage/u1`);
    expect(usage.json.requests).toBe(7);
    expect(usage.json.reserved).toEqual({ tokens: 450, requests: 3, cost_usd: granted[0]!.json.estimate.cost_usd === '0' ? '0' : expect.any(String) });
    expect(usage.json.available.requests).toBe(0);
    // The list (the status page's source) counts each user's refused calls this period.
    const list = await getJson(`${e.httpUrl}/api/v1/usage`);
    expect(list.json.users.find((u: { user: string }) => u.user === 'u1')).toMatchObject({ requests: 7, refused_calls: 47 });
    const m = (await scrape(e.httpUrl)).join('\n');
    expect(m).toContain('tokenmeter_reservations_total{plan="free",outcome="granted",limit="none"} 3');
    expect(m).toContain('tokenmeter_reservations_total{plan="free",outcome="refused",limit="requests"} 47');
    expect(m).toContain('tokenmeter_user_refused_calls_total{user="u1",plan="free"} 47');
    expect(m).toContain('tokenmeter_reservations_active 3');
  });

  it('the committed span settles its hold, a replay settles nothing twice, and the freed request can be granted', async () => {
    const e = await start({ clock: new FakeClock(NOW) });
    await seed(e, 'u2', 9);
    const first = await reserve(e, call('u2', 1));
    expect(first.json.granted).toBe(true);
    expect((await reserve(e, call('u2', 2))).json).toMatchObject({ granted: false, limit: 'requests', used: 10 });
    // The granted call's span arrives: the hold becomes real usage (10 used, 0 reserved).
    const body = otlpJson([{ traceId: TRACE, spanId: span(1), user: 'u2', model: 'gpt-4o-mini', input: 90, output: 30 }], BigInt(NOW.getTime()) * 1_000_000n);
    expect((await postOtlp(e.otlpUrl, body)).status).toBe(200);
    expect((await postOtlp(e.otlpUrl, body)).status).toBe(200);
    const usage = await getJson(`${e.httpUrl}/api/v1/usage/u2`);
    expect(usage.json.requests).toBe(10);
    expect(usage.json.reserved).toEqual({ tokens: 0, requests: 0, cost_usd: '0' });
    const m = (await scrape(e.httpUrl)).join('\n');
    expect(m).toContain('tokenmeter_reservations_active 0');
    expect(m).toMatch(/tokenmeter_reservation_actual_to_estimate_ratio_count 1\n/);
    // 120 actual of 150 held = 0.8
    expect(m).toMatch(/tokenmeter_reservation_actual_to_estimate_ratio_sum 0.8\n/);
  });

  it('a hold that is never settled expires after the TTL and counts as expired', async () => {
    const clock = new FakeClock(NOW);
    const e = await start({ clock, config: { reservations: { ttl: '2s' } } });
    await seed(e, 'u3', 9);
    expect((await reserve(e, call('u3', 1))).json.granted).toBe(true);
    expect((await reserve(e, call('u3', 2))).json.granted).toBe(false);
    clock.t = new Date(NOW.getTime() + 2001);
    // Expired holds stop counting at once; the sweep (every 500 ms here) removes and counts them.
    expect((await reserve(e, call('u3', 3))).json.granted).toBe(true);
    let m = '';
    for (let i = 0; i < 100 && !m.includes('tokenmeter_reservations_expired_total 1'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      m = (await scrape(e.httpUrl)).join('\n');
    }
    expect(m).toContain('tokenmeter_reservations_expired_total 1');
  });

  it('tokens and budget: refused when usage + holds + this estimate would pass the limit; the estimate uses the default output', async () => {
    const plans = new SimplePlans({ free: { tokens: 1000 } });
    const e = await start({ clock: new FakeClock(NOW), plans, config: { reservations: { default_output_tokens: 200 } } });
    const a = await reserve(e, call('t1', 1, { input_tokens: 500, max_output_tokens: undefined }));
    expect(a.json).toMatchObject({ granted: true, estimate: { tokens: 700 } });
    const b = await reserve(e, call('t1', 2, { input_tokens: 200, max_output_tokens: undefined }));
    expect(b.json).toMatchObject({ granted: false, limit: 'tokens', used: 700, limit_value: 1000 });
    expect((await reserve(e, call('t1', 3, { input_tokens: 250, max_output_tokens: 50 }))).json.granted).toBe(true);
  });

  it('token overshoot is bounded by what concurrent calls use beyond their estimates, and checked', async () => {
    const plans = new SimplePlans({ free: { tokens: 1000 } });
    const e = await start({ clock: new FakeClock(NOW), plans });
    // 10 concurrent calls, each estimated at 150 tokens (100 in + max 50 out): 6 fit under 1000, 4 are refused.
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => reserve(e, call('o1', i + 1))));
    const granted = answers.map((a, i) => ({ a, i })).filter(({ a }) => a.json.granted);
    expect(granted).toHaveLength(6);
    // Each granted call uses more than its estimate (a longer prompt than counted, say): 230 tokens instead of 150.
    const actual = 230;
    const body = otlpJson(
      granted.map(({ i }) => ({ traceId: TRACE, spanId: span(i + 1), user: 'o1', model: 'gpt-4o-mini', input: 180, output: 50 })),
      BigInt(NOW.getTime()) * 1_000_000n,
    );
    expect((await postOtlp(e.otlpUrl, body)).status).toBe(200);
    const used = (await getJson(`${e.httpUrl}/api/v1/usage/o1`)).json.tokens.total;
    // The bound: limit + Σ over the concurrently granted calls of (actual − estimate) = 1000 + 6 × 80.
    const bound = 1000 + granted.length * (actual - 150);
    expect(used).toBe(6 * actual);
    expect(used).toBeGreaterThan(1000);
    expect(used).toBeLessThanOrEqual(bound);
    // Over the limit now: the next call is refused.
    expect((await reserve(e, call('o1', 99))).json).toMatchObject({ granted: false, limit: 'tokens', used: 1380 });
  });

  it('warn grants over the limit and says which limit it would have refused', async () => {
    const e = await start({ clock: new FakeClock(NOW) });
    await seed(e, 'w1', 10);
    const a = await reserve(e, call('w1', 1, { enforce: 'warn' }));
    expect(a.json).toMatchObject({ granted: true, warned: { limit: 'requests', used: 10, limit_value: 10 } });
    expect((await scrape(e.httpUrl)).join('\n')).toContain('tokenmeter_reservations_total{plan="free",outcome="warned",limit="requests"} 1');
  });

  it('a reservation in the last second of a period: the call that ends in the next period is charged there, and the hold is settled', async () => {
    const clock = new FakeClock(new Date('2026-06-30T23:59:59.500Z'));
    const e = await start({ clock });
    await seed(e, 'r1', 9, clock.t);
    expect((await reserve(e, call('r1', 1))).json).toMatchObject({ granted: true, period: { end: '2026-07-01T00:00:00.000Z' } });
    clock.t = new Date('2026-07-01T00:00:00.400Z');
    const end = BigInt(clock.t.getTime()) * 1_000_000n;
    expect((await postOtlp(e.otlpUrl, otlpJson([{ traceId: TRACE, spanId: span(1), user: 'r1', model: 'gpt-4o-mini', input: 10, output: 1 }], end))).status).toBe(200);
    const july = [...e.ledger.records.values()].filter((r) => r.userId === 'r1' && r.periodStart === '2026-07-01T00:00:00.000Z');
    expect(july).toHaveLength(1);
    expect((await getJson(`${e.httpUrl}/api/v1/usage/r1`)).json).toMatchObject({ requests: 1, reserved: { requests: 0 } });
    const m = (await scrape(e.httpUrl)).join('\n');
    expect(m).toContain('tokenmeter_reservations_active 0');
  });
});

describe('POST /api/v1/reservations input boundary', () => {
  it('malformed, hostile and oversized bodies get a clear 4xx; the exporter keeps answering', async () => {
    const e = await start({ clock: new FakeClock(NOW) });
    const bad: [unknown, RegExp][] = [
      ['{', /not JSON/],
      ['[]', /body/],
      ['null', /body/],
      [{ ...call('x', 1), input_tokens: -1 }, /input_tokens/],
      [{ ...call('x', 1), input_tokens: 1e12 }, /input_tokens/],
      [{ ...call('x', 1), input_tokens: 1.5 }, /input_tokens/],
      [{ ...call('x', 1), input_tokens: '100' }, /input_tokens/],
      [{ ...call('x', 1), user: '' }, /user/],
      [{ ...call('x', 1), user: 'a\u0000b' }, /user/],
      [{ ...call('x', 1), user: 'x'.repeat(300) }, /user/],
      [{ ...call('x', 1), plan: '../etc' }, /plan/],
      [{ ...call('x', 1), provider: 'open ai' }, /provider/],
      [{ ...call('x', 1), trace_id: 'ZZ' }, /trace_id/],
      [{ ...call('x', 1), span_id: undefined }, /trace_id and span_id/],
      [{ ...call('x', 1), enforce: 'off' }, /enforce/],
      [{ ...call('x', 1), __proto__: { granted: true }, extra: 1 }, /extra|Unrecognized/i],
      ['{"user":"x","provider":"openai","model":"m","input_tokens":1,"constructor":{"prototype":{"granted":true}}}', /constructor|Unrecognized/i],
    ];
    for (const [body, msg] of bad) {
      const r = await reserve(e, body);
      expect(r.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(r.json.error).toMatch(msg);
    }
    const big = await httpRequest(`${e.httpUrl}/api/v1/reservations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...call('x', 1), model: 'm'.repeat(10_000) }) });
    expect(big.status).toBe(413);
    const type = await httpRequest(`${e.httpUrl}/api/v1/reservations`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
    expect(type.status).toBe(415);
    expect((await httpRequest(`${e.httpUrl}/api/v1/reservations`)).status).toBe(405);
    expect((await reserve(e, call('x', 1))).json.granted).toBe(true);
    expect(e.ledger.records.size).toBe(0);
  });

  it('needs the API bearer token when one is configured', async () => {
    const e = await start({ clock: new FakeClock(NOW), config: { auth: { api_token: 's3cret-token-0123456789' } } });
    expect((await reserve(e, call('x', 1))).status).toBe(401);
    expect((await reserve(e, call('x', 1), { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await reserve(e, call('x', 1), { authorization: 'Bearer s3cret-token-0123456789' })).json.granted).toBe(true);
  });
});

describe('POST /api/v1/reservations batch form (a JSON array)', () => {
  it('decides every item in order, each against the holds of the items before it: 3 of 50 granted, one answer per item', async () => {
    const e = await start({ clock: new FakeClock(NOW) });
    await seed(e, 'u1', 7);
    const r = await reserve(e, Array.from({ length: 50 }, (_, i) => call('u1', i + 1)));
    expect(r.status).toBe(200);
    expect(r.json).toHaveLength(50);
    expect(r.json.map((a: { granted: boolean }) => a.granted)).toEqual([true, true, true, ...Array(47).fill(false)]);
    expect(r.json[3]).toEqual({ granted: false, user: 'u1', plan: 'free', limit: 'requests', used: 10, limit_value: 10, retry_after: '2026-07-01T00:00:00.000Z' });
    expect(new Set(r.json.slice(0, 3).map((a: { id: string }) => a.id)).size).toBe(3);
    // The batch shares the limit with single requests: nothing is left.
    expect((await reserve(e, call('u1', 99))).json).toMatchObject({ granted: false, limit: 'requests' });
    const m = (await scrape(e.httpUrl)).join('\n');
    expect(m).toContain('tokenmeter_reservations_total{plan="free",outcome="granted",limit="none"} 3');
    expect(m).toContain('tokenmeter_reservations_total{plan="free",outcome="refused",limit="requests"} 48');
    // A granted item's span settles its hold like a single reservation's.
    expect((await postOtlp(e.otlpUrl, otlpJson([{ traceId: TRACE, spanId: span(1), user: 'u1', model: 'gpt-4o-mini', input: 10, output: 5 }], BigInt(NOW.getTime()) * 1_000_000n))).status).toBe(200);
    const usage = await getJson(`${e.httpUrl}/api/v1/usage/u1`);
    expect([usage.json.requests, usage.json.reserved.requests]).toEqual([8, 2]);
  });

  it('mixed valid and invalid items: each bad item gets its own 400 naming its index and field, the others are decided', async () => {
    const e = await start({ clock: new FakeClock(NOW) });
    const items: unknown[] = [
      call('m1', 1),
      { ...call('m1', 2), input_tokens: -5 },
      null,
      'a string',
      42,
      [call('m1', 3)],
      { ...call('m1', 4), __proto__: { granted: true }, extra: 1 },
      JSON.parse('{"user":"m1","provider":"openai","model":"m","input_tokens":1,"constructor":{"prototype":{"granted":true}}}'),
      { ...call('m1', 5), user: 'a\u0000b' },
      { ...call('m1', 6), span_id: undefined },
      call('m2', 7),
    ];
    const r = await reserve(e, items);
    expect(r.status).toBe(200);
    expect(r.json).toHaveLength(items.length);
    expect(r.json[0]).toMatchObject({ granted: true });
    expect(r.json[10]).toMatchObject({ granted: true });
    const errors = r.json.slice(1, 10);
    for (const [i, a] of errors.entries()) {
      expect(a.status, JSON.stringify(a)).toBe(400);
      expect(a.error).toMatch(new RegExp(`^\\[${i + 1}\\] `));
      expect(a).not.toHaveProperty('granted');
    }
    expect(r.json[1].error).toMatch(/input_tokens/);
    expect(r.json[6].error).toMatch(/extra|Unrecognized/i);
    expect(r.json[7].error).toMatch(/constructor|Unrecognized/i);
    expect(r.json[8].error).toMatch(/user/);
    expect(r.json[9].error).toMatch(/trace_id and span_id/);
    // Only the two valid items hold anything; nothing was written to the ledger.
    expect((await getJson(`${e.httpUrl}/api/v1/usage/m1`)).json.reserved.requests).toBe(1);
    expect(e.ledger.records.size).toBe(0);
  });

  it('malformed, oversized and hostile batches as a whole get a clear 4xx; the exporter keeps answering', async () => {
    const e = await start({ clock: new FakeClock(NOW) });
    const empty = await reserve(e, []);
    expect(empty.status).toBe(400);
    expect(empty.json.error).toMatch(/empty batch/);
    const tooMany = await reserve(e, Array.from({ length: 257 }, (_, i) => call('x', i + 1)));
    expect(tooMany.status).toBe(413);
    expect(tooMany.json.error).toMatch(/257 reservations; at most 256/);
    const broken = await reserve(e, `[${JSON.stringify(call('x', 1))},`);
    expect(broken.status).toBe(400);
    expect(broken.json.error).toMatch(/not JSON/);
    // Larger than the batch body limit (256 KiB): refused before it is all read.
    const huge = await httpRequest(`${e.httpUrl}/api/v1/reservations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `[${'0,'.repeat(140_000)}0]` });
    expect(huge.status).toBe(413);
    // Deeply nested items are an item error, not a crash.
    const deep = await reserve(e, `[${'['.repeat(5000)}${']'.repeat(5000)}]`);
    expect(deep.status).toBe(200);
    expect(deep.json[0]).toMatchObject({ status: 400 });
    // A batch of 256 items of the longest fields fits the body limit.
    const longest = Array.from({ length: 256 }, (_, i) => ({ ...call(`u${'x'.repeat(200)}${i}`, i + 1), model: 'm'.repeat(256), plan: 'p'.repeat(64) }));
    const full = await reserve(e, longest);
    expect(full.status).toBe(200);
    expect(full.json.every((a: { granted: boolean }) => a.granted)).toBe(true);
    expect((await reserve(e, [call('x', 1)])).json).toMatchObject([{ granted: true }]);
  });

  it('needs the API bearer token like the single form', async () => {
    const e = await start({ clock: new FakeClock(NOW), config: { auth: { api_token: 's3cret-token-0123456789' } } });
    expect((await reserve(e, [call('x', 1), call('x', 2)])).status).toBe(401);
    expect((await reserve(e, [call('x', 1), call('x', 2)], { authorization: 'Bearer s3cret-token-0123456789' })).json).toMatchObject([{ granted: true }, { granted: true }]);
  });
});
