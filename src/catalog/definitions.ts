import { ATTEMPT_BOUNDS } from './limits.js';
import { EXECUTION_MODES, PARAMETER_TYPES, type ParameterDefinition, type ParameterType, type ServiceDefinition } from './types.js';
import { checkValue } from './values.js';

/**
 * A service definition the catalog cannot hold. Its message names the module (when there is
 * one), the service, the action, the parameter and the field, e.g.
 * `./services.ts: service images, action resize: parameter width: type "INT" does not exist (...)`.
 */
export class ServiceDefinitionError extends Error {
  override name = 'ServiceDefinitionError';
}

/** What each parameter type may carry besides its value; exhaustive, so a new type must say. */
const PARAMETER_TYPE_CAPABILITIES: Record<ParameterType, { allowedValues: boolean; bounds: boolean }> = {
  STRING: { allowedValues: true, bounds: false },
  INTEGER: { allowedValues: false, bounds: true },
  NUMBER: { allowedValues: false, bounds: true },
  BOOLEAN: { allowedValues: false, bounds: false },
  DATE: { allowedValues: false, bounds: false },
  DATETIME: { allowedValues: false, bounds: false },
  LIST: { allowedValues: true, bounds: false },
  JSON: { allowedValues: false, bounds: false },
};

/** Service and action slugs appear in permissions, URLs and GraphQL ids: kept to one spelling. */
export const SLUG_PATTERN = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
/** Parameter slugs are keys of a task's params, where camelCase is at home. */
export const PARAMETER_SLUG_PATTERN = /^[A-Za-z][A-Za-z0-9_-]*$/;
const SLUG_MAX_LENGTH = 64;

const list = (names: readonly string[]) => names.join(', ');

function kindOf(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks one service definition, as written by hand or loaded from a module, and throws the
 * ServiceDefinitionError of its first fault. `where` prefixes the message (the module's path).
 */
export function validateService(definition: unknown, where?: string): asserts definition is ServiceDefinition {
  const fault = (context: string[], message: string) =>
    new ServiceDefinitionError([where, ...context, message].filter(Boolean).join(': '));

  if (!isRecord(definition)) {
    throw fault([], `a service must be an object (see defineService), not ${kindOf(definition)}`);
  }
  const service = typeof definition.slug === 'string' && definition.slug ? `service ${definition.slug}` : 'service';
  checkSlug(definition.slug, SLUG_PATTERN, (message) => fault([service], message));
  checkName(definition.name, (message) => fault([service], message));
  checkDescription(definition.description, (message) => fault([service], message));
  if (!Array.isArray(definition.actions) || definition.actions.length === 0) {
    throw fault([service], 'actions: must be a non-empty array of actions (see defineAction)');
  }

  const actionSlugs = new Set<string>();
  for (const [index, action] of (definition.actions as unknown[]).entries()) {
    const label =
      isRecord(action) && typeof action.slug === 'string' && action.slug ? `action ${action.slug}` : `actions[${index}]`;
    const actionFault = (message: string) => fault([`${service}, ${label}`], message);
    if (!isRecord(action)) throw actionFault(`an action must be an object (see defineAction), not ${kindOf(action)}`);
    checkSlug(action.slug, SLUG_PATTERN, actionFault);
    if (actionSlugs.has(action.slug as string)) throw actionFault(`slug: another action of ${service} has slug ${action.slug}`);
    actionSlugs.add(action.slug as string);
    checkName(action.name, actionFault);
    checkDescription(action.description, actionFault);
    checkExecution(action.execution, actionFault);
    if (action.handler === undefined) throw actionFault('handler: is missing; an action needs a handler function');
    if (typeof action.handler !== 'function') {
      throw actionFault(`handler: must be a function, not ${kindOf(action.handler)}`);
    }
    if (action.prepare !== undefined && typeof action.prepare !== 'function') {
      throw actionFault(`prepare: must be a function, not ${kindOf(action.prepare)}`);
    }
    if (action.requiresAccount !== undefined && typeof action.requiresAccount !== 'boolean') {
      throw actionFault(`requiresAccount: must be true or false, not ${kindOf(action.requiresAccount)}`);
    }
    checkWholeNumber(action.timeoutSeconds, 'timeoutSeconds', ATTEMPT_BOUNDS.timeoutSeconds, actionFault);
    checkWholeNumber(action.maxAttempts, 'maxAttempts', ATTEMPT_BOUNDS.maxAttempts, actionFault);
    checkWholeNumber(action.concurrency, 'concurrency', ATTEMPT_BOUNDS.concurrency, actionFault);
    if (!Array.isArray(action.parameters)) {
      throw actionFault(`parameters: must be an array (an empty one for none), not ${kindOf(action.parameters)}`);
    }

    const parameterSlugs = new Set<string>();
    for (const [position, parameter] of (action.parameters as unknown[]).entries()) {
      const parameterLabel =
        isRecord(parameter) && typeof parameter.slug === 'string' && parameter.slug
          ? `parameter ${parameter.slug}`
          : `parameters[${position}]`;
      const parameterFault = (message: string) => fault([`${service}, ${label}`, parameterLabel], message);
      if (!isRecord(parameter)) throw parameterFault(`a parameter must be an object, not ${kindOf(parameter)}`);
      checkSlug(parameter.slug, PARAMETER_SLUG_PATTERN, parameterFault);
      if (parameterSlugs.has(parameter.slug as string)) {
        throw parameterFault(`slug: another parameter of ${label} has slug ${parameter.slug}`);
      }
      parameterSlugs.add(parameter.slug as string);
      checkName(parameter.name, parameterFault);
      checkDescription(parameter.description, parameterFault);
      checkParameter(parameter, parameterFault);
    }
  }
}

type Fault = (message: string) => ServiceDefinitionError;

function checkSlug(slug: unknown, pattern: RegExp, fault: Fault): void {
  if (slug === undefined || slug === '') throw fault('slug: is missing');
  if (typeof slug !== 'string') throw fault(`slug: must be a string, not ${kindOf(slug)}`);
  if (slug.length > SLUG_MAX_LENGTH) throw fault(`slug: is longer than ${SLUG_MAX_LENGTH} characters`);
  if (!pattern.test(slug)) {
    throw fault(
      pattern === SLUG_PATTERN
        ? `slug: "${slug}" is not a slug (lowercase letters and digits, in words joined by single hyphens, starting with a letter)`
        : `slug: "${slug}" is not a parameter slug (letters, digits, _ and -, starting with a letter)`,
    );
  }
}

function checkName(name: unknown, fault: Fault): void {
  if (name === undefined || (typeof name === 'string' && name.trim() === '')) throw fault('name: is missing');
  if (typeof name !== 'string') throw fault(`name: must be a string, not ${kindOf(name)}`);
}

function checkDescription(description: unknown, fault: Fault): void {
  if (description !== undefined && typeof description !== 'string') {
    throw fault(`description: must be a string, not ${kindOf(description)}`);
  }
}

function checkExecution(execution: unknown, fault: Fault): void {
  const known = list(EXECUTION_MODES);
  if (!Array.isArray(execution) || execution.length === 0) {
    throw fault(`execution: must list how the action runs, one or more of ${known}`);
  }
  for (const mode of execution) {
    if (!(EXECUTION_MODES as readonly unknown[]).includes(mode)) {
      throw fault(`execution: ${JSON.stringify(mode)} is not a way to run (${known})`);
    }
  }
  if (new Set(execution).size !== execution.length) throw fault('execution: lists a value twice');
}

function checkWholeNumber(value: unknown, field: string, max: number, fault: Fault): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw fault(`${field}: must be a whole number from 1 to ${max}, not ${JSON.stringify(value) ?? kindOf(value)}`);
  }
}

function checkParameter(parameter: Record<string, unknown>, fault: Fault): void {
  const { type } = parameter;
  if (!(PARAMETER_TYPES as readonly unknown[]).includes(type)) {
    const named = type === undefined ? 'is missing' : `${JSON.stringify(type) ?? kindOf(type)} does not exist`;
    throw fault(`type ${named} (${list(PARAMETER_TYPES)})`);
  }
  const capabilities = PARAMETER_TYPE_CAPABILITIES[type as ParameterType];
  const typesWith = (capability: 'allowedValues' | 'bounds') =>
    list(PARAMETER_TYPES.filter((name) => PARAMETER_TYPE_CAPABILITIES[name][capability]));
  if (parameter.optional !== undefined && typeof parameter.optional !== 'boolean') {
    throw fault(`optional: must be true or false, not ${kindOf(parameter.optional)}`);
  }

  const { allowedValues } = parameter;
  if (allowedValues !== undefined) {
    if (!capabilities.allowedValues) {
      throw fault(`allowedValues: type ${type} cannot have allowedValues (only ${typesWith('allowedValues')} can)`);
    }
    if (!Array.isArray(allowedValues) || allowedValues.length === 0 || allowedValues.some((value) => typeof value !== 'string')) {
      throw fault('allowedValues: must be a non-empty array of strings');
    }
    if (new Set(allowedValues).size !== allowedValues.length) throw fault('allowedValues: lists a value twice');
  }
  if (parameter.permissioned !== undefined && typeof parameter.permissioned !== 'boolean') {
    throw fault(`permissioned: must be true or false, not ${kindOf(parameter.permissioned)}`);
  }
  if (parameter.permissioned && allowedValues === undefined) {
    throw fault('permissioned: needs allowedValues, the values a key can be granted');
  }

  for (const bound of ['min', 'max'] as const) {
    const value = parameter[bound];
    if (value === undefined) continue;
    if (!capabilities.bounds) throw fault(`${bound}: type ${type} cannot have ${bound} (only ${typesWith('bounds')} can)`);
    if (typeof value !== 'number' || !Number.isFinite(value)) throw fault(`${bound}: must be a finite number`);
  }
  if (typeof parameter.min === 'number' && typeof parameter.max === 'number' && parameter.min > parameter.max) {
    throw fault(`min: ${parameter.min} is greater than max ${parameter.max}`);
  }

  if (parameter.default !== undefined) {
    if (parameter.optional !== true) {
      throw fault('default: only an optional parameter can have a default (add optional: true)');
    }
    const problem = checkValue(parameter as unknown as ParameterDefinition, parameter.default, undefined);
    if (problem) throw fault(`default: ${JSON.stringify(parameter.default) ?? kindOf(parameter.default)} does not fit: ${problem}`);
  }
}
