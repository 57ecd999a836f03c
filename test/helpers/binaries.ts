import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Finds a system binary a stack test needs. Outside CI a missing binary skips the test; with CI=true it is a
 * failure (the project's rule: no stack test may skip in CI; .ci/run installs the binaries).
 */
export function findBinary(name: string, extraPaths: string[] = []): string | undefined {
  for (const p of extraPaths) if (existsSync(p)) return p;
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export const inCI = process.env.CI === 'true';

/** Returns the path, or throws in CI; outside CI returns undefined so the caller can `it.skipIf`. */
export function requireBinary(name: string, extraPaths: string[] = []): string | undefined {
  const found = findBinary(name, extraPaths);
  if (!found && inCI) throw new Error(`${name} is not installed; .ci/run installs it from Debian's packages`);
  return found;
}
