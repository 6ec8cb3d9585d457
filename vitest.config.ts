import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Brings the fleet lab (network namespaces with real services) up once per run.
    globalSetup: ['test/lab/global-setup.ts'],
    testTimeout: 60_000,
    // This machine and CI are shared and noisy (2 cores): a test that fails once on timing alone is run
    // again. A real failure fails every try; flaky passes are still printed by the reporter.
    retry: 2,
    hookTimeout: 120_000,
    // The lab is one shared fleet of namespaces: test files that touch it run one at a time.
    fileParallelism: false,
    reporters: ['default'],
  },
});
