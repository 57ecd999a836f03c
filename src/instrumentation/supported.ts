import { warnOnce } from './warn.js';

/*
 * The provider SDK versions tokenmeter supports are exactly the ones its version matrix tests
 * (test/matrix/sdk-matrix.json: the oldest and newest release of every major in these ranges). package.json's
 * peerDependencies and docs/instrumentation.md state the same ranges; a test keeps the four in agreement.
 */

export type SdkPackage = 'openai' | '@anthropic-ai/sdk' | '@google/genai' | '@aws-sdk/client-bedrock-runtime' | 'ai';

export interface SupportedRange {
  /** The oldest supported release. */
  min: string;
  /** The first major that is not supported. */
  belowMajor: number;
}

export const SUPPORTED_SDKS: Readonly<Record<SdkPackage, SupportedRange>> = {
  openai: { min: '5.0.0', belowMajor: 8 },
  // 0.50.0 was never published: 0.50.1 is the first release of the range the peer dependency always named.
  '@anthropic-ai/sdk': { min: '0.50.1', belowMajor: 2 },
  // 1.0.0's CommonJS entry is broken in the package itself and 1.0.1 has none: 1.1.0 is the oldest that loads both ways.
  '@google/genai': { min: '1.1.0', belowMajor: 4 },
  // 3.704.0 (December 2024) is the oldest release the matrix proves; older 3.x releases are instrumented best-effort.
  '@aws-sdk/client-bedrock-runtime': { min: '3.704.0', belowMajor: 4 },
  // The Vercel AI SDK: 6.0.0 (LanguageModelV3) to 7.x (V4; Node 22+), with their provider packages.
  ai: { min: '6.0.0', belowMajor: 8 },
};

/** The range as npm writes it, e.g. `>=5.0.0 <8`. */
export function rangeText(pkg: SdkPackage): string {
  const r = SUPPORTED_SDKS[pkg];
  return `>=${r.min} <${r.belowMajor}`;
}

/** `major.minor.patch` of a semver string (pre-release and build ignored), or undefined when it is not one. */
export function parseVersion(version: unknown): [number, number, number] | undefined {
  if (typeof version !== 'string' || version.length > 256) return undefined;
  const m = /^v?(\d{1,9})\.(\d{1,9})\.(\d{1,9})(?:[-+].*)?$/.exec(version.trim());
  if (m === null) return undefined;
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function compare(a: [number, number, number], b: [number, number, number]): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/** Whether `version` is inside the supported range of `pkg`. An unreadable version is not. */
export function isSupportedVersion(pkg: SdkPackage, version: unknown): boolean {
  const v = parseVersion(version);
  const r = SUPPORTED_SDKS[pkg];
  const min = parseVersion(r.min);
  if (v === undefined || min === undefined) return false;
  return compare(v, min) >= 0 && v[0] < r.belowMajor;
}

function shown(version: unknown): string {
  return typeof version === 'string' && parseVersion(version) !== undefined ? version : 'of unknown version';
}

/**
 * Says once (stderr + diag) that an SDK version outside the tested ranges was loaded. tokenmeter still tries to
 * instrument it: the SDKs' shapes rarely change, and a best-effort span beats a silent zero.
 * Returns whether the version is supported.
 */
export function checkSdkVersion(pkg: SdkPackage, version: unknown): boolean {
  if (isSupportedVersion(pkg, version)) return true;
  const range = rangeText(pkg);
  warnOnce(
    `sdk-version:${pkg}@${String(version)}`,
    `${pkg} ${shown(version)} is outside the versions tokenmeter is tested with (${pkg} ${range}); its calls are ` +
      `instrumented best-effort and may be metered wrongly or not at all. Install ${pkg} ${range}, or a tokenmeter ` +
      'release that supports this version.',
  );
  return false;
}

/** Says once that an SDK was loaded but nothing in it could be instrumented: its calls are not metered. */
export function reportNotInstrumented(pkg: SdkPackage, version: unknown, reason: string): void {
  const range = rangeText(pkg);
  warnOnce(
    `sdk-unpatched:${pkg}@${String(version)}`,
    `could not instrument ${pkg} ${shown(version)} (${reason}); its calls are NOT metered. tokenmeter supports ` +
      `${pkg} ${range}: install a version in that range, or report this with the version.`,
  );
}
