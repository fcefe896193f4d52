#!/usr/bin/env node
import { existsSync } from 'node:fs';

// A checkout runs its sources, so that `npm start` and the tests see the code as it is now; an
// installed package has no src/ and runs what `prepare` compiled.
const sources = new URL('../src/cli.ts', import.meta.url);
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import('../dist/cli.js');
}
