/** Options of tokenmeter's instrumentations (`tokenmeterInstrumentations(options)`, `tokenmeter/register`). */
export interface TokenmeterInstrumentationOptions {
  /**
   * Record prompts and completions on spans (`gen_ai.input.messages` / `gen_ai.output.messages`). Off unless
   * set here or `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`: message content is user data.
   */
  captureMessageContent?: boolean;
  /**
   * When the provider returned no usage (an OpenAI-compatible server that ignores `include_usage`, a stream
   * the caller broke off or aborted), count the tokens with a tokenizer and mark the span
   * `tokenmeter.usage.estimated=true`. Never applied when real usage exists. Default true.
   */
  estimateMissingUsage?: boolean;
  /**
   * For streamed chat completions that do not ask for `stream_options.include_usage`, ask for it and hide the
   * extra usage-only chunk from the caller, so that streamed usage is the provider's own. Default true.
   */
  injectStreamUsage?: boolean;
  /** Turns the instrumentation off without uninstalling it (the `InstrumentationConfig` flag). */
  enabled?: boolean;
}

export interface ResolvedOptions {
  captureMessageContent: boolean;
  estimateMissingUsage: boolean;
  injectStreamUsage: boolean;
}

export function resolveOptions(options: TokenmeterInstrumentationOptions | undefined, env = process.env): ResolvedOptions {
  const envCapture = (env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT ?? '').trim().toLowerCase() === 'true';
  return {
    captureMessageContent: options?.captureMessageContent ?? envCapture,
    estimateMissingUsage: options?.estimateMissingUsage ?? true,
    injectStreamUsage: options?.injectStreamUsage ?? true,
  };
}
