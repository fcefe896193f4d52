import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

// `npm run test:browser`: the dashboard in a real Chromium, on the embedded SQLite default.
export default defineConfig({
  resolve: {
    // As in vitest.config.ts: one graphql for our sources and for yoga.
    alias: { graphql: require.resolve('graphql') },
  },
  test: {
    include: ['test-browser/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // One Chromium at a time: on two cores, several at once make every page slow.
    fileParallelism: false,
    env: { TASKPORT_TEST_STORE: 'sqlite' },
  },
});
