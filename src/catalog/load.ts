import { statSync } from 'node:fs';
import { extname, isAbsolute, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ServiceDefinitionError, validateService } from './definitions.js';
import { Catalog, describe } from './index.js';
import { builtInServices } from './services.js';
import type { ServiceDefinition } from './types.js';

export { ServiceDefinitionError } from './definitions.js';

export type ServiceSource = string | ServiceDefinition | readonly ServiceDefinition[];

export interface LoadCatalogOptions {
  /** Module paths, resolved against `cwd`, or definitions given directly. */
  services: readonly ServiceSource[];
  /** Whether the built-in demo service is offered too. */
  demo: boolean;
  /** Where relative module paths start; the process's working directory when absent. */
  cwd?: string;
}

const TYPESCRIPT_EXTENSIONS = ['.ts', '.mts', '.cts'];
const JAVASCRIPT_EXTENSIONS = ['.js', '.mjs', '.cjs'];

/**
 * The catalog of the built-in services (the demo, when asked for) and of every module and
 * definition given. Every definition is validated before anything listens: a bad one, a module
 * that cannot be loaded or one that exports no services throws a ServiceDefinitionError that
 * names the module.
 */
export async function loadCatalog(options: LoadCatalogOptions): Promise<Catalog> {
  const cwd = options.cwd ?? process.cwd();
  const origins = new Map<string, string>();
  const services: ServiceDefinition[] = [];
  const add = (definitions: readonly unknown[], origin: string, where: string | undefined) => {
    for (const definition of definitions) {
      validateService(definition, where);
      const earlier = origins.get(definition.slug);
      if (earlier !== undefined) {
        throw new ServiceDefinitionError(
          `service ${definition.slug}: is defined ${earlier} and again ${origin}; service slugs must be unique` +
            (earlier === BUILT_IN_DEMO ? ' (or switch the demo off: --no-demo, TASKPORT_DEMO=false)' : ''),
        );
      }
      origins.set(definition.slug, origin);
      services.push(definition);
    }
  };

  if (options.demo) add(builtInServices, BUILT_IN_DEMO, undefined);
  const seen = new Set<string>();
  for (const [index, source] of options.services.entries()) {
    if (typeof source === 'string') {
      const path = resolve(cwd, source);
      // The same file named twice (a flag and a variable, a relative and an absolute path) is one module.
      if (seen.has(path)) continue;
      seen.add(path);
      const label = moduleLabel(path, cwd);
      add(await importServices(path, label), `in ${label}`, label);
    } else {
      const where = `services[${index}]`;
      add(Array.isArray(source) ? source : [source], `by ${where}`, where);
    }
  }
  return new Catalog(services);
}

const BUILT_IN_DEMO = 'by the built-in demo';

/** `./services.ts` for a module under `cwd`, the absolute path otherwise. */
function moduleLabel(path: string, cwd: string): string {
  const fromCwd = relative(cwd, path);
  return fromCwd.startsWith('..') || isAbsolute(fromCwd) ? path : `./${fromCwd}`;
}

async function importServices(path: string, label: string): Promise<readonly unknown[]> {
  const refuse = (message: string) => new ServiceDefinitionError(`${label}: ${message}`);
  const extension = extname(path);
  const typeScript = TYPESCRIPT_EXTENSIONS.includes(extension);
  if (!typeScript && !JAVASCRIPT_EXTENSIONS.includes(extension)) {
    const extensions = [...TYPESCRIPT_EXTENSIONS, ...JAVASCRIPT_EXTENSIONS].join(', ');
    throw refuse(`cannot load a "${extension || 'extensionless'}" file; a services module ends in ${extensions}`);
  }
  const stats = statSync(path, { throwIfNoEntry: false });
  if (!stats?.isFile()) throw refuse(label === path ? 'no such file' : `no such file (${path})`);

  let namespace: Record<string, unknown>;
  try {
    if (typeScript) await registerTypeScript();
    namespace = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    throw refuse(`failed to load: ${describe(error)}`);
  }
  const exported = exportedServices(namespace);
  if (exported === undefined) {
    throw refuse('exports no services: export default a service (defineService) or an array of them, or export `services`');
  }
  if (Array.isArray(exported)) return exported;
  if (typeof exported === 'object' && exported !== null) return [exported];
  throw refuse(`exports ${exported === null ? 'null' : `a ${typeof exported}`}, not a service or an array of services`);
}

/** The default export, else the `services` export; a CommonJS module's arrive inside its exports object. */
function exportedServices(namespace: Record<string, unknown>): unknown {
  let exported = namespace.default ?? namespace.services;
  if (
    typeof exported === 'object' &&
    exported !== null &&
    !Array.isArray(exported) &&
    !('slug' in exported) &&
    ('default' in exported || 'services' in exported)
  ) {
    const commonJs = exported as Record<string, unknown>;
    exported = commonJs.default ?? commonJs.services;
  }
  return exported;
}

let typeScriptHooks: Promise<void> | null = null;

/**
 * Lets `import()` load TypeScript, once per process. tsx's hooks are registered for the whole
 * process rather than through tsImport, whose namespace gives the module's own imports private
 * copies: `taskport` imported by a services file would be a second copy, and a TaskFailure it
 * throws would not be the engine's TaskFailure. A checkout's bin script has registered the ES
 * module hooks already; registering them again is harmless. The CommonJS hooks are for .ts files
 * of a project without "type": "module".
 */
function registerTypeScript(): Promise<void> {
  typeScriptHooks ??= (async () => {
    const [esm, commonJs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
    esm.register();
    commonJs.register();
  })();
  return typeScriptHooks;
}
