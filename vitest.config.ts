import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Brings the fleet lab (network namespaces with real services) up once per run.
    globalSetup: ['test/lab/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // The lab is one shared fleet of namespaces: test files that touch it run one at a time.
    fileParallelism: false,
    reporters: ['default'],
  },
});
