import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup/fast-check.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // Real-peer tests each start their own daemon; two cores, so keep parallelism modest.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
