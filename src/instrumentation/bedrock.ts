import { diag } from '@opentelemetry/api';
import { GENAI } from '../contract/names.js';
import { estimateTokens, normalizeAnthropicUsage, normalizeBedrockConverseUsage } from '../usage/index.js';
import { insideMeteredCall } from './scope.js';
import { activeTelemetry, GenAiCall, type CallAdapter } from './call.js';
import { admissionGate, tokenCount } from './enforce.js';
import { captureInput, wrapOnce } from './patch.js';
import { serverInfo } from './provider.js';

/** `gen_ai.provider.name` of the GenAI conventions for Amazon Bedrock. */
export const BEDROCK_PROVIDER = 'aws.bedrock';

/*
 * @aws-sdk/client-bedrock-runtime is hooked through the AWS SDK's own middleware stack, its public extension point:
 * the first `send` of each BedrockRuntimeClient adds one initialize-step middleware to that client's stack. It sees
 * every command's input and output once per command (retries happen further down the stack), and never touches the
 * SDK's internals. Converse / ConverseStream report Bedrock's TokenUsage; InvokeModel / InvokeModelWithResponseStream
 * with an Anthropic body report Anthropic's own usage (cache reads and writes included).
 */

const MIDDLEWARE_NAME = 'tokenmeterBedrockMiddleware';
const withMiddleware = new WeakSet<object>();
const decoder = new TextDecoder();

function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(textOf).join('');
  if (value !== null && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (typeof v.text === 'string') return v.text;
    if (v.content !== undefined) return textOf(v.content);
  }
  return '';
}

const converseAdapter: CallAdapter = {
  normalizeUsage: normalizeBedrockConverseUsage,
  estimateInput(call) {
    return estimateTokens(textOf(call.params.system) + textOf(call.params.messages));
  },
  estimateOutput(call) {
    return estimateTokens(call.outputText);
  },
  maxOutputTokens(call) {
    return tokenCount(call.params.inferenceConfig?.maxTokens);
  },
};

function invokeBody(params: Record<string, any>): any {
  const body = params.body;
  try {
    if (typeof body === 'string') return JSON.parse(body);
    if (body instanceof Uint8Array) return JSON.parse(decoder.decode(body));
  } catch {
    // Not JSON: nothing to read for the estimate.
  }
  return undefined;
}

const invokeAdapter: CallAdapter = {
  normalizeUsage: normalizeAnthropicUsage,
  estimateInput(call) {
    const b = invokeBody(call.params);
    return estimateTokens(textOf(b?.system) + textOf(b?.messages) + (typeof b?.prompt === 'string' ? b.prompt : ''));
  },
  estimateOutput(call) {
    return estimateTokens(call.outputText);
  },
  maxOutputTokens(call) {
    // The model family's own body: Anthropic Messages (max_tokens), Llama (max_gen_len), Titan, Nova.
    const b = invokeBody(call.params);
    return tokenCount(b?.max_tokens) ?? tokenCount(b?.max_gen_len) ?? tokenCount(b?.textGenerationConfig?.maxTokenCount) ?? tokenCount(b?.inferenceConfig?.maxTokens) ?? tokenCount(b?.inferenceConfig?.max_new_tokens);
  },
};

type Command = 'ConverseCommand' | 'ConverseStreamCommand' | 'InvokeModelCommand' | 'InvokeModelWithResponseStreamCommand';
const COMMANDS = new Set<string>(['ConverseCommand', 'ConverseStreamCommand', 'InvokeModelCommand', 'InvokeModelWithResponseStreamCommand']);

const converseCommand = (command: string): boolean => command === 'ConverseCommand' || command === 'ConverseStreamCommand';

function startCall(command: Command, input: any): GenAiCall | undefined {
  const telemetry = activeTelemetry();
  if (telemetry === undefined || input === null || typeof input !== 'object' || insideMeteredCall()) return undefined;
  try {
    const converse = converseCommand(command);
    const stream = command === 'ConverseStreamCommand' || command === 'InvokeModelWithResponseStreamCommand';
    const attrs: Record<string, any> = {};
    const ic = input.inferenceConfig;
    if (converse && ic !== null && typeof ic === 'object') {
      if (typeof ic.maxTokens === 'number') attrs['gen_ai.request.max_tokens'] = ic.maxTokens;
      if (typeof ic.temperature === 'number') attrs['gen_ai.request.temperature'] = ic.temperature;
      if (typeof ic.topP === 'number') attrs['gen_ai.request.top_p'] = ic.topP;
    }
    if (stream) attrs[GENAI.requestStream] = true;
    if (converse) captureInput(attrs, telemetry.options, input.messages);
    const model = typeof input.modelId === 'string' ? input.modelId : 'unknown';
    const call = new GenAiCall(telemetry, converse ? converseAdapter : invokeAdapter, 'chat', serverInfo(undefined, BEDROCK_PROVIDER), model, input, attrs);
    if (stream) call.streaming = true;
    return call;
  } catch (err) {
    diag.error('tokenmeter: failed to start recording a Bedrock call', err);
    return undefined;
  }
}

/** One Anthropic event of an InvokeModel stream (or the whole body of InvokeModel). */
function readAnthropicEvent(call: GenAiCall, ev: any): void {
  if (ev === null || typeof ev !== 'object') return;
  switch (ev.type) {
    case 'message_start':
      if (ev.message?.usage) {
        call.rawUsage = { ...ev.message.usage };
        call.usagePartial = true;
      }
      if (typeof ev.message?.id === 'string') call.responseId = ev.message.id;
      if (typeof ev.message?.model === 'string') call.responseModel = ev.message.model;
      break;
    case 'message_delta':
      if (typeof ev.delta?.stop_reason === 'string') call.finishReasons = [ev.delta.stop_reason];
      if (ev.usage) {
        // Cumulative totals for the message: overwrite, never add.
        const base = (call.rawUsage ?? {}) as Record<string, unknown>;
        for (const k in ev.usage) if (ev.usage[k] !== null && ev.usage[k] !== undefined) base[k] = ev.usage[k];
        call.rawUsage = base;
        call.usagePartial = false;
      }
      break;
    case 'content_block_delta':
      if (typeof ev.delta?.text === 'string') call.outputText += ev.delta.text;
      else if (typeof ev.delta?.partial_json === 'string') call.outputText += ev.delta.partial_json;
      else if (typeof ev.delta?.thinking === 'string') call.outputText += ev.delta.thinking;
      break;
    case 'message':
      // A whole (non-streamed) Anthropic Messages body.
      if (typeof ev.id === 'string') call.responseId = ev.id;
      if (typeof ev.model === 'string') call.responseModel = ev.model;
      if (typeof ev.stop_reason === 'string') call.finishReasons = [ev.stop_reason];
      if (ev.usage) call.rawUsage = ev.usage;
      call.outputText += textOf(ev.content);
      break;
  }
}

function readConverseEvent(call: GenAiCall, ev: any): void {
  if (ev === null || typeof ev !== 'object') return;
  if (ev.contentBlockDelta?.delta?.text !== undefined) call.outputText += String(ev.contentBlockDelta.delta.text);
  else if (ev.messageStop?.stopReason !== undefined) call.finishReasons = [String(ev.messageStop.stopReason)];
  else if (ev.metadata?.usage !== undefined) call.rawUsage = ev.metadata.usage;
}

function readInvokeChunk(call: GenAiCall, ev: any): void {
  const bytes = ev?.chunk?.bytes;
  if (!(bytes instanceof Uint8Array)) return;
  readAnthropicEvent(call, JSON.parse(decoder.decode(bytes)));
}

/** Observes the SDK's event stream in place: its own async iterator, wrapped; the object stays the SDK's. */
function observeStream(stream: any, call: GenAiCall, read: (call: GenAiCall, ev: unknown) => void): void {
  if (stream === null || typeof stream !== 'object' || typeof stream[Symbol.asyncIterator] !== 'function') {
    call.end();
    return;
  }
  const original = stream[Symbol.asyncIterator];
  let claimed = false;
  stream[Symbol.asyncIterator] = function tokenmeterIterator(this: unknown): AsyncIterator<unknown> {
    const inner: AsyncIterator<unknown> = original.call(this);
    if (claimed) return inner;
    claimed = true;
    return {
      next(): Promise<IteratorResult<unknown>> {
        return inner.next().then(
          (r) => {
            if (r.done === true) {
              call.end();
              return r;
            }
            if (!call.ended) {
              call.firstChunk();
              try {
                read(call, r.value);
              } catch (err) {
                diag.error('tokenmeter: failed to read a Bedrock stream event', err);
              }
            }
            return r;
          },
          (err: unknown) => {
            call.end(err);
            throw err;
          },
        );
      },
      return(value?: unknown): Promise<IteratorResult<unknown>> {
        call.end(undefined, 'break');
        return typeof inner.return === 'function' ? inner.return(value) : Promise.resolve({ done: true, value });
      },
      throw(err?: unknown): Promise<IteratorResult<unknown>> {
        call.end(err);
        return typeof inner.throw === 'function' ? inner.throw(err) : Promise.reject(err);
      },
    };
  };
}

function onOutput(command: Command, call: GenAiCall, output: any): void {
  switch (command) {
    case 'ConverseCommand':
      if (typeof output?.stopReason === 'string') call.finishReasons = [output.stopReason];
      call.rawUsage = output?.usage;
      if (output?.usage == null || call.options.captureMessageContent) call.outputText = textOf(output?.output?.message?.content);
      call.end();
      return;
    case 'ConverseStreamCommand':
      observeStream(output?.stream, call, readConverseEvent);
      return;
    case 'InvokeModelCommand': {
      const body = output?.body;
      if (body instanceof Uint8Array) readAnthropicEvent(call, JSON.parse(decoder.decode(body)));
      call.end();
      return;
    }
    case 'InvokeModelWithResponseStreamCommand':
      observeStream(output?.body, call, readInvokeChunk);
      return;
  }
}

function tokenmeterMiddleware(next: (args: any) => Promise<any>, context: any): (args: any) => Promise<any> {
  return async function tokenmeterBedrock(args: any): Promise<any> {
    const command = context?.commandName;
    if (typeof command !== 'string' || !COMMANDS.has(command)) return next(args);
    const call = startCall(command as Command, args?.input);
    if (call === undefined) return next(args);
    let result: any;
    try {
      // Admission control (enforce.ts): this initialize step runs before the request is built, signed and sent
      // (retries are further down the stack), so a refusal rejects the SDK's own send() and nothing goes out.
      let gate: Promise<void> | undefined;
      try {
        gate = admissionGate(call, converseCommand(command) ? converseAdapter : invokeAdapter);
      } catch (err) {
        diag.error('tokenmeter: the usage limit check failed; sending the call unchecked', err);
      }
      if (gate !== undefined) await gate;
      result = await next(args);
    } catch (err) {
      call.end(err);
      throw err;
    }
    try {
      onOutput(command as Command, call, result?.output);
    } catch (err) {
      diag.error('tokenmeter: failed to read a Bedrock response', err);
      call.end();
    }
    return result;
  };
}

function addMiddleware(client: any): void {
  if (withMiddleware.has(client)) return;
  withMiddleware.add(client);
  try {
    const stack = client.middlewareStack;
    if (typeof stack?.add !== 'function') return;
    stack.add(tokenmeterMiddleware, { step: 'initialize', name: MIDDLEWARE_NAME, override: true });
  } catch (err) {
    diag.error('tokenmeter: could not add the Bedrock middleware; this client is not metered', err);
  }
}

export function findBedrockClient(mod: any): any {
  for (const m of [mod, mod?.default]) {
    const C = m?.BedrockRuntimeClient;
    if (typeof C === 'function' && typeof C.prototype?.send === 'function') return C;
  }
  return undefined;
}

/** Wraps `BedrockRuntimeClient.prototype.send` to add the middleware to each client on its first command. */
export function patchBedrock(mod: unknown): string[] {
  const C = findBedrockClient(mod);
  if (C === undefined) return [];
  const ok = wrapOnce(C.prototype, 'send', (original) =>
    function tokenmeterSend(this: any): any {
      if (this !== null && typeof this === 'object') addMiddleware(this);
      // eslint-disable-next-line prefer-rest-params
      return original.apply(this, arguments as unknown as unknown[]);
    },
  );
  return ok ? ['BedrockRuntimeClient.send (Converse, ConverseStream, InvokeModel, InvokeModelWithResponseStream)'] : [];
}
