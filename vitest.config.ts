import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The runtime in every test's report line: CI runs the end-to-end tests on several Node lines.
    name: `node ${process.versions.node}`,
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Stack and e2e tests start real processes on a 2-core machine; keep parallelism modest.
    maxWorkers: 2,
    pool: 'forks',
  },
});
