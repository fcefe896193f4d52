import { demoService } from './demo.js';
import { Catalog } from './index.js';

/** The services this server offers. Add a service here to make it available. */
export function builtInCatalog(): Catalog {
  return new Catalog([demoService]);
}
