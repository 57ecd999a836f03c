import { afterEach, describe, expect, it } from 'vitest';
import { instrumentSdk } from '../../src/instrumentation/instrumentation.js';
import { checkSdkVersion, isSupportedVersion, parseVersion, rangeText } from '../../src/instrumentation/supported.js';
import { captureWarnings } from '../../src/instrumentation/warn.js';

describe('supported SDK versions', () => {
  let restore: (() => void) | undefined;
  afterEach(() => restore?.());

  it('states the ranges as npm writes them', () => {
    expect(rangeText('openai')).toBe('>=5.0.0 <8');
    expect(rangeText('@anthropic-ai/sdk')).toBe('>=0.50.1 <2');
  });

  it.each([
    ['openai', '5.0.0', true],
    ['openai', '5.23.2', true],
    ['openai', '7.59.0', true],
    ['openai', '7.0.0-beta.1', true],
    ['openai', '4.104.0', false],
    ['openai', '8.0.0', false],
    ['openai', '99.0.0', false],
    ['@anthropic-ai/sdk', '0.50.1', true],
    ['@anthropic-ai/sdk', '0.137.0', true],
    ['@anthropic-ai/sdk', '1.16.0', true],
    ['@anthropic-ai/sdk', '0.41.0', false],
    ['@anthropic-ai/sdk', '2.0.0', false],
  ] as const)('%s %s supported: %s', (pkg, version, expected) => {
    expect(isSupportedVersion(pkg, version)).toBe(expected);
  });

  it('treats malformed, hostile and missing versions as unsupported, without throwing', () => {
    for (const v of [undefined, null, '', '7', '7.1', 'latest', 'v', '1.2.3.4', '9'.repeat(300), '1.2.x', { toString: () => '6.0.0' }, 6]) {
      expect(parseVersion(v)).toBeUndefined();
      expect(isSupportedVersion('openai', v)).toBe(false);
    }
    expect(parseVersion('v6.1.2')).toEqual([6, 1, 2]);
  });

  it('warns once per package and version, naming the package, the version, the range and the fix', () => {
    const lines: string[] = [];
    restore = captureWarnings(lines);
    expect(checkSdkVersion('openai', '6.49.0')).toBe(true);
    expect(lines).toEqual([]);
    expect(checkSdkVersion('openai', '99.0.0')).toBe(false);
    expect(checkSdkVersion('openai', '99.0.0')).toBe(false);
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatch(/^tokenmeter: warning: openai 99\.0\.0 is outside the versions tokenmeter is tested with \(openai >=5\.0\.0 <8\)/);
    expect(lines[0]).toContain('Install openai >=5.0.0 <8');
    checkSdkVersion('@anthropic-ai/sdk', undefined);
    expect(lines[1]).toContain('@anthropic-ai/sdk of unknown version is outside');
  });

  it('says so when nothing in a loaded SDK could be instrumented, and never throws into the app', () => {
    const lines: string[] = [];
    restore = captureWarnings(lines);
    expect(instrumentSdk('openai', { default: class NotOpenAI {} }, '6.1.0')).toEqual([]);
    expect(instrumentSdk('openai', { default: class NotOpenAI {} }, '6.1.0')).toEqual([]);
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('hostile module');
        },
      },
    );
    expect(instrumentSdk('@anthropic-ai/sdk', hostile, '1.2.0')).toEqual([]);
    expect(lines).toEqual([
      'tokenmeter: warning: could not instrument openai 6.1.0 (its client class or create() methods were not found); its calls are NOT metered. tokenmeter supports openai >=5.0.0 <8: install a version in that range, or report this with the version.',
      'tokenmeter: warning: could not instrument @anthropic-ai/sdk 1.2.0 (instrumenting it failed: hostile module); its calls are NOT metered. tokenmeter supports @anthropic-ai/sdk >=0.50.1 <2: install a version in that range, or report this with the version.',
    ]);
  });
});
