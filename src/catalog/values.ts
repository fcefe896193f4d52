import type { ParameterDefinition } from './types.js';

const DATE_PATTERN = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

function isValidDate(value: string): boolean {
  const match = DATE_PATTERN.exec(value);
  if (!match) return false;
  const date = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])));
  return date.toISOString().startsWith(value);
}

/**
 * Why `value` is not a value of `parameter`, or null when it is; `permitted` narrows what a key may
 * request. Shared by submits and by the check of a definition's default.
 */
export function checkValue(parameter: ParameterDefinition, value: unknown, permitted: string[] | undefined): string | null {
  const label = `parameter ${parameter.slug}`;
  switch (parameter.type) {
    case 'STRING': {
      if (typeof value !== 'string') return `${label} must be a string`;
      if (parameter.allowedValues && !parameter.allowedValues.includes(value)) {
        return `${label} must be one of ${parameter.allowedValues.join(', ')}`;
      }
      if (permitted && !permitted.includes(value)) return `${label} may not be ${value} with this key`;
      return null;
    }
    case 'INTEGER':
    case 'NUMBER': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return `${label} must be a number`;
      if (parameter.type === 'INTEGER' && !Number.isSafeInteger(value)) return `${label} must be an integer`;
      if (parameter.min !== undefined && value < parameter.min) return `${label} must be at least ${parameter.min}`;
      if (parameter.max !== undefined && value > parameter.max) return `${label} must be at most ${parameter.max}`;
      return null;
    }
    case 'BOOLEAN':
      return typeof value === 'boolean' ? null : `${label} must be true or false`;
    case 'DATE':
      return typeof value === 'string' && isValidDate(value) ? null : `${label} must be a date (YYYY-MM-DD)`;
    case 'DATETIME':
      return typeof value === 'string' && DATETIME_PATTERN.test(value) && !Number.isNaN(Date.parse(value))
        ? null
        : `${label} must be an ISO-8601 date and time with a zone`;
    case 'LIST': {
      if (!Array.isArray(value)) return `${label} must be a list`;
      if (value.length === 0 && !parameter.optional) return `${label} must not be empty`;
      for (const item of value) {
        if (typeof item !== 'string') return `${label} must be a list of strings`;
        if (parameter.allowedValues && !parameter.allowedValues.includes(item)) {
          return `${label} may only hold ${parameter.allowedValues.join(', ')}; ${item} is not one of them`;
        }
        if (permitted && !permitted.includes(item)) return `${label} may not hold ${item} with this key`;
      }
      return null;
    }
    case 'JSON':
      return null;
  }
}
