/** The source of "now" for period rollover; injected so tests can move time without waiting. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock that only moves when told to (tests, replays). */
export class ManualClock implements Clock {
  #millis: number;

  constructor(start: Date | string | number) {
    this.#millis = new Date(start).getTime();
    if (!Number.isFinite(this.#millis)) throw new RangeError(`ManualClock: invalid start ${String(start)}`);
  }

  now(): Date {
    return new Date(this.#millis);
  }

  set(at: Date | string | number): void {
    const millis = new Date(at).getTime();
    if (!Number.isFinite(millis)) throw new RangeError(`ManualClock: invalid instant ${String(at)}`);
    this.#millis = millis;
  }

  advance(millis: number): void {
    this.#millis += millis;
  }
}
