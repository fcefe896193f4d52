import { demoService } from './demo.js';
import { Catalog } from './index.js';
import type { ServiceDefinition } from './types.js';

/** The services that ship with Taskport; a user's own are loaded by loadCatalog (load.ts). */
export const builtInServices: readonly ServiceDefinition[] = [demoService];

/** A catalog of the built-in services alone. */
export function builtInCatalog(): Catalog {
  return new Catalog(builtInServices);
}
