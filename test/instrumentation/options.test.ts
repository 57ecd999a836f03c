import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../../src/instrumentation/options.js';

describe('instrumentation options', () => {
  it('defaults: no message content, estimates on (labelled), stream usage injected', () => {
    expect(resolveOptions(undefined, {})).toEqual({ captureMessageContent: false, estimateMissingUsage: true, injectStreamUsage: true });
  });

  it('OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true (any case, spaces) switches content capture on', () => {
    expect(resolveOptions(undefined, { OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'true' }).captureMessageContent).toBe(true);
    expect(resolveOptions(undefined, { OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: ' TRUE ' }).captureMessageContent).toBe(true);
    for (const v of ['false', '1', 'yes', '']) {
      expect(resolveOptions(undefined, { OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: v }).captureMessageContent, v).toBe(false);
    }
  });

  it('an explicit option wins over the environment', () => {
    expect(resolveOptions({ captureMessageContent: false }, { OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'true' }).captureMessageContent).toBe(false);
    expect(resolveOptions({ estimateMissingUsage: false, injectStreamUsage: false }, {})).toMatchObject({ estimateMissingUsage: false, injectStreamUsage: false });
  });
});
