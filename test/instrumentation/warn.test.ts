import { afterEach, describe, expect, it } from 'vitest';
import { captureWarnings, warnOnce } from '../../src/instrumentation/warn.js';

describe('warnOnce', () => {
  let restore: (() => void) | undefined;
  afterEach(() => restore?.());

  it('prints one line per key, prefixed, with newlines folded', () => {
    const lines: string[] = [];
    restore = captureWarnings(lines);
    expect(warnOnce('a', 'first\n  problem')).toBe(true);
    expect(warnOnce('a', 'first again')).toBe(false);
    expect(warnOnce('b', 'second')).toBe(true);
    expect(lines).toEqual(['tokenmeter: warning: first problem', 'tokenmeter: warning: second']);
  });
});
