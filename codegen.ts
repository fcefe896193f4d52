import type { CodegenConfig } from '@graphql-codegen/cli';

// The dashboard's operations are typed from the checked-in schema, not a running server, so that
// `npm run codegen` works offline and CI can compare its output with the committed files.
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['dashboard/src/**/*.{ts,tsx}', '!dashboard/src/gql/**'],
  ignoreNoDocuments: false,
  generates: {
    'dashboard/src/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: 'string', JSON: 'unknown' },
      },
    },
  },
};

export default config;
