import { describe, expect, it } from 'vitest';
import { LedgerConnection, type LedgerConnectionOptions } from '../../src/exporter/ledger-connection.js';

class Down extends Error {}
class Unavailable extends Error {}

/** A ledger "server" that refuses `failures` opens, then opens; records what was opened and closed. */
function fakeServer(failures: number, fatal = false) {
  const state = { attempts: 0, opened: [] as number[], closed: [] as number[] };
  const options: LedgerConnectionOptions<number> = {
    open: () => {
      state.attempts++;
      if (state.attempts <= failures) return Promise.reject(fatal ? new Error('schema too new') : new Down(`refused #${state.attempts}`));
      state.opened.push(state.attempts);
      return Promise.resolve(state.attempts);
    },
    retryable: (err) => err instanceof Down,
    close: (n) => {
      state.closed.push(n);
      return Promise.resolve();
    },
    unavailable: (m) => new Unavailable(m),
    initialDelayMillis: 5,
    maxDelayMillis: 20,
  };
  return { state, options };
}

describe('LedgerConnection', () => {
  it('opens at once when it can', async () => {
    const { state, options } = fakeServer(0);
    const c = await LedgerConnection.start(options);
    expect(c.require()).toBe(1);
    await c.close();
    expect(state.closed).toEqual([1]);
  });

  it('starts without the ledger, refuses with the unavailable error, retries with backoff, then opens once', async () => {
    const { state, options } = fakeServer(4);
    let opens = 0;
    const c = await LedgerConnection.start({ ...options, onOpen: () => opens++ });
    expect(c.ledger).toBeUndefined();
    expect(() => c.require()).toThrow(Unavailable);
    expect(() => c.require()).toThrow(/not reachable yet: refused #1/);
    for (let i = 0; i < 200 && c.ledger === undefined; i++) await new Promise((r) => setTimeout(r, 5));
    expect(c.require()).toBe(5);
    expect(state.attempts).toBe(5);
    expect(opens).toBe(1);
    await c.close();
    expect(state.closed).toEqual([5]);
    expect(() => c.require()).toThrow(Unavailable);
  });

  it('fails the start for an error retrying cannot fix', async () => {
    const { options } = fakeServer(1, true);
    await expect(LedgerConnection.start(options)).rejects.toThrow('schema too new');
  });

  it('close stops the retries; a ledger opened during close is closed, never used', async () => {
    const { state, options } = fakeServer(Number.MAX_SAFE_INTEGER);
    const c = await LedgerConnection.start(options);
    await c.close();
    const attempts = state.attempts;
    await new Promise((r) => setTimeout(r, 60));
    expect(state.attempts).toBe(attempts);

    let release: (n: number) => void = () => {};
    const slow = fakeServer(1);
    let calls = 0;
    const c2 = await LedgerConnection.start({
      ...slow.options,
      open: () => (++calls === 1 ? Promise.reject(new Down('refused')) : new Promise<number>((r) => (release = r))),
    });
    for (let i = 0; i < 100 && calls < 2; i++) await new Promise((r) => setTimeout(r, 5));
    expect(calls).toBe(2);
    const closing = c2.close();
    release(42);
    await closing;
    expect(slow.state.closed).toEqual([42]);
    expect(c2.ledger).toBeUndefined();
  });
});
