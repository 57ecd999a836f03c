import { diag, type TracerProvider } from '@opentelemetry/api';
import { InstrumentationBase, InstrumentationNodeModuleDefinition, type InstrumentationConfig } from '@opentelemetry/instrumentation';
import { findAiSdk, patchAiSdk, unpatchAiSdk } from './ai-sdk.js';
import { findAnthropicClass, patchAnthropic } from './anthropic.js';
import { activeTelemetry, setActiveTelemetry, type Telemetry } from './call.js';
import { findBedrockClient, patchBedrock } from './bedrock.js';
import { findGoogleGenAiModels, patchGoogleGenAi } from './google-genai.js';
import { GENAI_HISTOGRAMS, INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION } from './genai-metrics.js';
import { findOpenAIClass, patchOpenAI } from './openai.js';
import { resolveOptions, type TokenmeterInstrumentationOptions } from './options.js';
import { unpatchAll } from './patch.js';
import { checkSdkVersion, reportNotInstrumented, type SdkPackage } from './supported.js';

export { INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION };

/*
 * Every version is hooked: OTel's own version filter would skip an unsupported SDK without a word, so tokenmeter
 * checks the version itself (supported.ts), says so once when it is outside the tested ranges, and still tries.
 */
const ALL_VERSIONS = ['*'];

const instances = new Set<TokenmeterInstrumentation>();

type Config = InstrumentationConfig & TokenmeterInstrumentationOptions;

function classPrototypes(C: any, paths: string[][]): Set<unknown> {
  const out = new Set<unknown>();
  for (const path of paths) {
    let v = C;
    for (const key of path) v = v?.[key];
    if (v?.prototype) out.add(v.prototype);
  }
  return out;
}

/**
 * tokenmeter's OpenTelemetry instrumentation of the OpenAI and Anthropic SDKs. Hooks `require` and (with the
 * import-in-the-middle loader registered) `import` of `openai` and `@anthropic-ai/sdk`.
 */
export class TokenmeterInstrumentation extends InstrumentationBase<Config> {
  // `declare`: the base constructor calls enable() before subclass fields would be initialised.
  declare private telemetryState: Telemetry | undefined;

  constructor(options: TokenmeterInstrumentationOptions = {}) {
    super(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION, { ...options });
    instances.add(this);
  }

  protected init(): InstrumentationNodeModuleDefinition[] {
    return [
      new InstrumentationNodeModuleDefinition(
        'openai',
        ALL_VERSIONS,
        (exports, version) => {
          instrumentSdk('openai', exports, version);
          return exports;
        },
        (exports) => {
          const C = findOpenAIClass(exports);
          if (C !== undefined) {
            const protos = classPrototypes(C, [['Chat', 'Completions'], ['Responses'], ['Embeddings']]);
            unpatchAll((t) => protos.has(t));
          }
        },
      ),
      new InstrumentationNodeModuleDefinition(
        '@anthropic-ai/sdk',
        ALL_VERSIONS,
        (exports, version) => {
          instrumentSdk('@anthropic-ai/sdk', exports, version);
          return exports;
        },
        (exports) => {
          const C = findAnthropicClass(exports);
          if (C !== undefined) {
            const protos = classPrototypes(C, [['Messages'], ['Beta', 'Messages']]);
            unpatchAll((t) => protos.has(t));
          }
        },
      ),
      new InstrumentationNodeModuleDefinition(
        '@google/genai',
        ALL_VERSIONS,
        (exports, version) => {
          instrumentSdk('@google/genai', exports, version);
          return exports;
        },
        (exports) => {
          const proto = findGoogleGenAiModels(exports)?.prototype;
          if (proto !== undefined) unpatchAll((t) => t === proto);
        },
      ),
      new InstrumentationNodeModuleDefinition(
        '@aws-sdk/client-bedrock-runtime',
        ALL_VERSIONS,
        (exports, version) => {
          instrumentSdk('@aws-sdk/client-bedrock-runtime', exports, version);
          return exports;
        },
        (exports) => {
          const proto = findBedrockClient(exports)?.prototype;
          if (proto !== undefined) unpatchAll((t) => t === proto);
        },
      ),
      new InstrumentationNodeModuleDefinition(
        'ai',
        ALL_VERSIONS,
        // Its entry points are exports: require gets a metered copy when they are read-only getters.
        (exports, version) => instrumentAiSdk(exports, version, true),
        (exports) => unpatchAiSdk(findAiSdk(exports)),
      ),
    ];
  }

  /** The tracer, instruments and options the patched methods report to. */
  telemetry(): Telemetry {
    let t = this.telemetryState;
    if (t === undefined) {
      const meter = this.meter;
      t = {
        tracer: this.tracer,
        options: resolveOptions(this.getConfig()),
        // Used only while no tokenmeter MetricProducer is active (genai-metrics.ts): the same data either way.
        tokenUsage: meter.createHistogram(GENAI_HISTOGRAMS.tokenUsage.name, GENAI_HISTOGRAMS.tokenUsage.options),
        operationDuration: meter.createHistogram(GENAI_HISTOGRAMS.operationDuration.name, GENAI_HISTOGRAMS.operationDuration.options),
        timeToFirstChunk: meter.createHistogram(GENAI_HISTOGRAMS.timeToFirstChunk.name, GENAI_HISTOGRAMS.timeToFirstChunk.options),
      };
      this.telemetryState = t;
    }
    return t;
  }

  protected override _updateMetricInstruments(): void {
    // Called by the base constructor and on setMeterProvider: rebuild the instruments on the new meter.
    const wasActive = this.telemetryState !== undefined && activeTelemetry() === this.telemetryState;
    this.telemetryState = undefined;
    if (wasActive) setActiveTelemetry(this.telemetry());
  }

  override setTracerProvider(tracerProvider: TracerProvider): void {
    super.setTracerProvider(tracerProvider);
    if (this.telemetryState !== undefined) this.telemetryState.tracer = this.tracer;
  }

  override setConfig(config: Config = {}): void {
    super.setConfig(config);
    if (this.telemetryState !== undefined) this.telemetryState.options = resolveOptions(config);
  }

  override enable(): void {
    super.enable();
    // The Anthropic SDK records its own GenAI spans through the global tracer provider; with tokenmeter's
    // spans as well every call would be counted twice. An explicit setting by the app wins.
    process.env.ANTHROPIC_OPEN_TELEMETRY ??= 'false';
    setActiveTelemetry(this.telemetry());
  }

  override disable(): void {
    super.disable();
    if (this.telemetryState !== undefined && activeTelemetry() === this.telemetryState) setActiveTelemetry(undefined);
  }
}

const PATCHERS: Record<Exclude<SdkPackage, 'ai'>, (mod: unknown) => string[]> = {
  openai: patchOpenAI,
  '@anthropic-ai/sdk': patchAnthropic,
  '@google/genai': patchGoogleGenAi,
  '@aws-sdk/client-bedrock-runtime': patchBedrock,
};

/**
 * Instruments a provider SDK module the app loaded, whose version is known (from the loader hooks or from the
 * installed package.json). Never silent: a version outside the tested ranges, or a module in which nothing could
 * be instrumented, is reported once on stderr and through diag. Returns the methods it patched.
 */
export function instrumentSdk(pkg: Exclude<SdkPackage, 'ai'>, mod: unknown, version: string | undefined): string[] {
  try {
    checkSdkVersion(pkg, version);
    const done = PATCHERS[pkg](mod);
    if (done.length === 0) reportNotInstrumented(pkg, version, 'its client class or create() methods were not found');
    else diag.debug(`tokenmeter: instrumented ${pkg} ${version ?? ''}: ${done.join(', ')}`);
    return done;
  } catch (err) {
    diag.error(`tokenmeter: failed to instrument ${pkg}; it runs uninstrumented`, err);
    reportNotInstrumented(pkg, version, `instrumenting it failed: ${err instanceof Error ? err.message : String(err)}`);
    return [];
  }
}

/**
 * Meters the Vercel AI SDK module `ai` (see ai-sdk.ts). Returns the exports to hand out: the module itself, or a
 * metered copy when `allowCopy` and its exports are read-only. Never silent when nothing could be metered.
 */
export function instrumentAiSdk(mod: unknown, version: string | undefined, allowCopy: boolean): unknown {
  try {
    checkSdkVersion('ai', version);
    const { exports, done } = patchAiSdk(mod, allowCopy);
    if (done.length === 0) {
      reportNotInstrumented(
        'ai',
        version,
        findAiSdk(mod) === undefined
          ? 'its generateText / streamText exports were not found'
          : 'it was imported as an ES module before tokenmeter, whose exports cannot be changed: start the app with `node --import tokenmeter/register`',
      );
    } else diag.debug(`tokenmeter: instrumented ai ${version ?? ''}: ${done.join(', ')}`);
    return exports;
  } catch (err) {
    diag.error('tokenmeter: failed to instrument ai; it runs uninstrumented', err);
    reportNotInstrumented('ai', version, `instrumenting it failed: ${err instanceof Error ? err.message : String(err)}`);
    return mod;
  }
}

/**
 * The instrumentations to pass to your own `NodeSDK` / `registerInstrumentations` (instead of
 * `tokenmeter/register`).
 */
export function tokenmeterInstrumentations(options?: TokenmeterInstrumentationOptions): TokenmeterInstrumentation[] {
  return [new TokenmeterInstrumentation(options)];
}

/**
 * Instruments an SDK module you hand over: for bundled apps (Next.js, esbuild) where the loader hooks never see
 * `openai` / `@anthropic-ai/sdk` being loaded, and for packages installed under another name. Accepts the
 * module namespace, its CommonJS exports or the client class. Returns the methods it patched.
 */
export function instrument(mod: unknown): string[] {
  try {
    if (activeTelemetry() === undefined && instances.size === 0) {
      // Reports through the global tracer and meter providers, whenever they are registered.
      new TokenmeterInstrumentation();
    }
    return [...patchOpenAI(mod), ...patchAnthropic(mod), ...patchGoogleGenAi(mod), ...patchBedrock(mod), ...patchAiSdk(mod, false).done];
  } catch (err) {
    diag.error('tokenmeter: instrument() failed; the module runs uninstrumented', err);
    return [];
  }
}

/** Disables every tokenmeter instrumentation and restores every SDK method it wrapped. */
export function disable(): void {
  try {
    for (const i of instances) i.disable();
    instances.clear();
    unpatchAll();
    unpatchAiSdk();
    setActiveTelemetry(undefined);
  } catch (err) {
    diag.error('tokenmeter: disable() failed', err);
  }
}
