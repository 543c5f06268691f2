import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // DynamoDB Local and fauxqs, once per run (see test/setup/global-setup.ts).
    globalSetup: ['test/setup/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // These machines have 2 cores; the emulators need some of them too.
    pool: 'forks',
    maxWorkers: 2,
    // CI counts passed and failed tests from the JSON report.
    reporters: ['default', 'json'],
    outputFile: { json: 'test-report.json' },
  },
});
