import { defineConfig } from 'vitest/config';

// The SDK matrix (scripts/sdk-matrix.mjs runs it with the prepared cells in SDK_MATRIX_CELLS); `npm test` does not
// include these files, whose SDKs live in .cache/sdk-matrix.
export default defineConfig({
  test: {
    include: ['test/matrix/*.cell.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    maxWorkers: 2,
    pool: 'forks',
  },
});
