import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { vi } from 'vitest';
import { main } from '../../src/cli/main.js';

/** The built bin (`npm test` builds before the tests run). */
export const BIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
export const hasBin = existsSync(BIN);
// Outside CI the bin tests skip without a build; in CI a missing build is an error, not a skip.
if (!hasBin && process.env.CI === 'true') throw new Error('dist/cli/main.js missing: run `npm run build` before the tests');

/** Runs the CLI in-process, capturing stdout and stderr. */
export async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((err += String(chunk)), true));
  try {
    return { code: await main(argv), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}
