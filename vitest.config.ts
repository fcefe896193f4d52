import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

/** Files that test SQLite itself (its files, its disk, the package's embedded default): one project only. */
const SQLITE_ONLY = ['test/storage-unavailable.test.ts', 'test/package.test.ts'];
/** Files that need several processes on one shared database. */
const POSTGRES_ONLY = ['test/cluster.test.ts', 'test/bus.test.ts'];

const shared = {
  include: ['test/**/*.test.ts'],
  testTimeout: 20_000,
  hookTimeout: 20_000,
  // Each file starts its own servers on port 0 and its own databases; files run in parallel.
  pool: 'forks' as const,
};

export default defineConfig({
  resolve: {
    // Vite would load graphql's ESM build for our sources while yoga, loaded by Node, gets the
    // CommonJS one: two GraphQLError classes, and yoga would mask our own errors as unexpected.
    alias: { graphql: require.resolve('graphql') },
  },
  test: {
    // The same test files, once per store: `npm test -- --project sqlite` runs one of them.
    projects: [
      {
        extends: true,
        test: { ...shared, name: 'sqlite', exclude: POSTGRES_ONLY, env: { TASKPORT_TEST_STORE: 'sqlite' } },
      },
      {
        extends: true,
        test: {
          ...shared,
          name: 'postgres',
          exclude: SQLITE_ONLY,
          env: { TASKPORT_TEST_STORE: 'postgres' },
          globalSetup: ['test/postgres-setup.ts'],
        },
      },
    ],
  },
});
