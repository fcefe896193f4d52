import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // Vite would load graphql's ESM build for our sources while yoga, loaded by Node, gets the
    // CommonJS one: two GraphQLError classes, and yoga would mask our own errors as unexpected.
    alias: { graphql: require.resolve('graphql') },
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Each file starts its own servers on port 0 and its own SQLite files; files run in parallel.
    pool: 'forks',
  },
});
