#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { register as registerHooks } from 'node:module';

// A checkout runs its sources, so that `npm start` and the tests see the code as it is now; an
// installed package has no src/ and runs what `prepare` compiled.
const sources = new URL('../src/cli.ts', import.meta.url);
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  // A services module of a project that depends on this checkout (`file:`) imports 'taskport',
  // which its exports map to dist/: a second copy, whose TaskFailure the engine of the sources
  // would not recognise. Here 'taskport' is the sources too.
  const entry = new URL('../src/index.ts', import.meta.url).href;
  const hooks = `export function resolve(specifier, context, next) {
    return next(specifier === 'taskport' ? ${JSON.stringify(entry)} : specifier, context);
  }`;
  registerHooks(`data:text/javascript,${encodeURIComponent(hooks)}`);
  await import(sources.href);
} else {
  await import('../dist/cli.js');
}
