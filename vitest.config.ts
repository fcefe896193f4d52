import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Each file starts its own servers on port 0 and its own SQLite files; files run in parallel.
    pool: 'forks',
  },
});
