import { encodeJson, LIMITS } from './limits.js';
import type { ActionDefinition, KeyPermissions, ServiceDefinition } from './types.js';
import { ServiceDefinitionError, validateService } from './definitions.js';
import { checkValue } from './values.js';

export { ServiceDefinitionError, validateService } from './definitions.js';
export * from './limits.js';
export * from './types.js';

export type ParameterIssueCode = 'MISSING_PARAM' | 'INVALID_PARAMETER_VALUE' | 'INVALID' | 'PARAMS_TOO_LARGE';

export interface ParameterIssue {
  code: ParameterIssueCode;
  field: string;
  message: string;
}

export type ParameterCheck =
  | { ok: true; params: Record<string, unknown> }
  | { ok: false; issue: ParameterIssue };

/** The single source of services, actions, their parameter schemas and what a key may request. */
export class Catalog {
  readonly #services = new Map<string, ServiceDefinition>();
  readonly #actions = new Map<string, ActionDefinition<any>>();

  /** Throws a ServiceDefinitionError for a definition that breaks a rule of validateService. */
  constructor(services: readonly ServiceDefinition[]) {
    for (const service of services) {
      validateService(service);
      if (this.#services.has(service.slug)) throw new ServiceDefinitionError(`service ${service.slug}: is defined twice`);
      this.#services.set(service.slug, service);
      for (const action of service.actions) this.#actions.set(`${service.slug}/${action.slug}`, action);
    }
  }

  /** The services a key may use, all of them when it has no permissions. */
  services(permissions: KeyPermissions | null = null): ServiceDefinition[] {
    const all = [...this.#services.values()];
    return permissions === null ? all : all.filter((service) => permissions[service.slug] !== undefined);
  }

  /** The actions of a service a key may use. */
  actions(service: ServiceDefinition, permissions: KeyPermissions | null = null): ActionDefinition<any>[] {
    return service.actions.filter((action) => this.allows(permissions, service.slug, action.slug));
  }

  allows(permissions: KeyPermissions | null, service: string, action?: string): boolean {
    if (permissions === null) return true;
    const granted = permissions[service];
    if (granted === undefined) return false;
    return action === undefined || granted === '*' || granted[action] !== undefined;
  }

  service(slug: string): ServiceDefinition | undefined {
    return this.#services.get(slug);
  }

  action(service: string, action: string): ActionDefinition<any> | undefined {
    return this.#actions.get(`${service}/${action}`);
  }

  /**
   * The values of permissioned parameters a key may request, keyed by parameter slug: what the
   * catalog allows, narrowed by the key's permissions.
   */
  permissions(
    service: string,
    action: ActionDefinition<any>,
    keyPermissions: KeyPermissions | null = null,
  ): Record<string, string[]> {
    const granted = keyPermissions?.[service];
    const narrowed = granted && granted !== '*' ? (granted[action.slug] ?? {}) : {};
    const permissions: Record<string, string[]> = {};
    for (const parameter of action.parameters) {
      if (!parameter.permissioned) continue;
      const allowed = [...(parameter.allowedValues ?? [])];
      const keyValues = narrowed[parameter.slug];
      permissions[parameter.slug] = keyValues ? allowed.filter((value) => keyValues.includes(value)) : allowed;
    }
    return permissions;
  }

  /** A problem with a key's permissions, or null when they name only what the catalog has. */
  checkKeyPermissions(value: unknown): string | null {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return 'permissions must be an object keyed by service slug';
    }
    for (const [serviceSlug, granted] of Object.entries(value)) {
      const service = this.#services.get(serviceSlug);
      if (!service) return `no service ${serviceSlug}`;
      if (granted === '*') continue;
      if (typeof granted !== 'object' || granted === null || Array.isArray(granted)) {
        return `permissions.${serviceSlug} must be "*" or an object keyed by action slug`;
      }
      for (const [actionSlug, values] of Object.entries(granted)) {
        const action = this.action(serviceSlug, actionSlug);
        if (!action) return `service ${serviceSlug} has no action ${actionSlug}`;
        if (typeof values !== 'object' || values === null || Array.isArray(values)) {
          return `permissions.${serviceSlug}.${actionSlug} must be an object keyed by parameter slug`;
        }
        for (const [parameterSlug, list] of Object.entries(values)) {
          const parameter = action.parameters.find((candidate) => candidate.slug === parameterSlug);
          if (!parameter?.permissioned) {
            return `${serviceSlug}.${actionSlug} has no permissioned parameter ${parameterSlug}`;
          }
          if (!Array.isArray(list) || list.some((item) => !parameter.allowedValues?.includes(item))) {
            return `permissions.${serviceSlug}.${actionSlug}.${parameterSlug} must list values of ${parameter.allowedValues?.join(', ')}`;
          }
        }
      }
    }
    return null;
  }

  /**
   * The first thing `requested` (valid permissions) grants that `granted` does not, as
   * `service`, `service.action` or `service.action.parameter: value`; null when it grants nothing more.
   */
  permissionsBeyond(requested: KeyPermissions, granted: KeyPermissions | null): string | null {
    if (granted === null) return null;
    for (const [serviceSlug, requestedActions] of Object.entries(requested)) {
      const service = this.#services.get(serviceSlug);
      // A stored key may name a service the catalog no longer has: it grants nothing now.
      if (!service) continue;
      if (granted[serviceSlug] === undefined) return serviceSlug;
      // "*" also grants the actions a later version of the service adds: only "*" is within "*".
      if (requestedActions === '*' && granted[serviceSlug] !== '*') return `${serviceSlug}: "*"`;
      for (const action of this.actions(service, requested)) {
        if (!this.allows(granted, serviceSlug, action.slug)) return `${serviceSlug}.${action.slug}`;
        const wanted = this.permissions(serviceSlug, action, requested);
        const allowed = this.permissions(serviceSlug, action, granted);
        for (const [parameterSlug, values] of Object.entries(wanted)) {
          const extra = values.find((value) => !allowed[parameterSlug]?.includes(value));
          if (extra !== undefined) return `${serviceSlug}.${action.slug}.${parameterSlug}: ${extra}`;
        }
      }
    }
    return null;
  }

  /**
   * Checks params against the action's schema and the values the key may request (`permitted`,
   * from `permissions()`), and returns them with defaults applied.
   */
  checkParams(action: ActionDefinition<any>, params: unknown, permitted: Record<string, string[]>): ParameterCheck {
    const given = params ?? {};
    if (typeof given !== 'object' || Array.isArray(given)) {
      return fail('INVALID', 'params', 'params must be a JSON object keyed by parameter slug');
    }
    const encoded = encodeJson(given, 'params');
    if (!encoded.ok) return fail('INVALID', 'params', encoded.failure.message);
    if (encoded.bytes > LIMITS.paramsBytes) {
      return fail('PARAMS_TOO_LARGE', 'params', `params are ${encoded.bytes} bytes of JSON; at most ${LIMITS.paramsBytes} are accepted`);
    }
    for (const slug in given) {
      if (!action.parameters.some((parameter) => parameter.slug === slug)) {
        return fail('INVALID', slug, `action ${action.slug} has no parameter ${slug}`);
      }
    }
    const checked: Record<string, unknown> = {};
    for (const parameter of action.parameters) {
      const value = (given as Record<string, unknown>)[parameter.slug];
      if (value === undefined || value === null) {
        if (!parameter.optional) {
          return fail('MISSING_PARAM', parameter.slug, `parameter ${parameter.slug} is required`);
        }
        if (parameter.default !== undefined) checked[parameter.slug] = parameter.default;
        continue;
      }
      const problem = checkValue(parameter, value, permitted[parameter.slug]);
      if (problem) return fail('INVALID_PARAMETER_VALUE', parameter.slug, problem);
      checked[parameter.slug] = value;
    }
    return { ok: true, params: checked };
  }
}

function fail(code: ParameterIssueCode, field: string, message: string): ParameterCheck {
  return { ok: false, issue: { code, field, message } };
}
