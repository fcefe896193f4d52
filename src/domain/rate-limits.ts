import { z } from 'zod';

/**
 * Per-key request budgets. An operation with a submit field (SUBMIT_FIELDS) is counted in the
 * `submit` tier, every other operation in `other`; one operation is one point of its tier.
 */
export const RATE_LIMIT_TIERS = Object.freeze(['submit', 'other'] as const);
export type RateLimitTier = (typeof RATE_LIMIT_TIERS)[number];

/** The root mutation fields whose operations count in the submit tier. */
export const SUBMIT_FIELDS: ReadonlySet<string> = new Set(['submitTask', 'submitTasks']);

/** At most `points` operations in each fixed window of `perSeconds` seconds. */
export interface RateLimitWindow {
  points: number;
  perSeconds: number;
}

/** A tier's limits: every window must admit an operation for it to run. */
export type RateLimitWindows = readonly RateLimitWindow[];

/** A key's own limits; a tier it does not name takes the server's default. Null on a key: the defaults for both. */
export type KeyRateLimits = Partial<Record<RateLimitTier, RateLimitWindows>>;

/** What the server applies when a key has no limits of its own (TASKPORT_RATE_SUBMIT, TASKPORT_RATE_OTHER). */
export type RateLimitDefaults = Record<RateLimitTier, RateLimitWindows>;

/** The limits that hold for a key, per tier, and whether they are the server's default. */
export type EffectiveRateLimits = Record<RateLimitTier, { windows: RateLimitWindows; isDefault: boolean }>;

/** The defaults, in the form of the environment variables that override them. */
export const DEFAULT_RATE_LISTS = Object.freeze({
  submit: '10/s,100/m',
  other: '100/s,1800/m',
  /** Per execution token of an allocation, on /execute/... */
  execute: '1000/s',
});

export const RATE_LIMIT_BOUNDS = Object.freeze({
  /** Windows per tier. */
  windows: 4,
  points: 1_000_000,
  /** A day: the longest window a limiter row lives for. */
  perSeconds: 86_400,
});

const UNIT_SECONDS = { s: 1, m: 60, h: 3600 } as const;

const windowSchema = z.object({
  points: z.int().min(1).max(RATE_LIMIT_BOUNDS.points),
  perSeconds: z.int().min(1).max(RATE_LIMIT_BOUNDS.perSeconds),
});

const windowsSchema = z
  .array(windowSchema)
  .min(1, 'give at least one window, or null for the server default')
  .max(RATE_LIMIT_BOUNDS.windows)
  .refine((windows) => new Set(windows.map((window) => window.perSeconds)).size === windows.length, {
    message: 'each window needs its own perSeconds',
  });

const keyRateLimitsSchema = z.strictObject({
  submit: windowsSchema.nullish(),
  other: windowsSchema.nullish(),
});

function sorted(windows: RateLimitWindows): RateLimitWindow[] {
  return [...windows]
    .map(({ points, perSeconds }) => ({ points, perSeconds }))
    .sort((a, b) => a.perSeconds - b.perSeconds);
}

/**
 * A key's own limits from client input, or the problem with them: `{ field, message }` with the
 * path of the value at fault (`submit.0.points`). A tier given as null or omitted takes the default.
 */
export function checkKeyRateLimits(
  input: unknown,
): { ok: true; limits: KeyRateLimits | null } | { ok: false; field: string; message: string } {
  if (input === null || input === undefined) return { ok: true, limits: null };
  const parsed = keyRateLimitsSchema.safeParse(input);
  if (!parsed.success) {
    const [issue] = parsed.error.issues;
    return { ok: false, field: issue!.path.join('.'), message: issue!.message };
  }
  const limits: KeyRateLimits = {};
  for (const tier of RATE_LIMIT_TIERS) {
    const windows = parsed.data[tier];
    if (windows) limits[tier] = sorted(windows);
  }
  return { ok: true, limits: Object.keys(limits).length === 0 ? null : limits };
}

/**
 * "10/s,100/m" (also "5/10s", "1000/h"): a point count per window, comma-separated, or the
 * problem with the text.
 */
export function parseRateList(text: string): RateLimitWindow[] | string {
  const windows: RateLimitWindow[] = [];
  for (const part of text.split(',').map((item) => item.trim())) {
    const match = /^(\d+)\/(\d*)([smh])$/.exec(part);
    if (!match) return `"${part.slice(0, 40)}" is not of the form <points>/<s|m|h>, e.g. 10/s,100/m`;
    const perSeconds = Number(match[2] || 1) * UNIT_SECONDS[match[3] as keyof typeof UNIT_SECONDS];
    windows.push({ points: Number(match[1]), perSeconds });
  }
  const checked = windowsSchema.safeParse(windows);
  if (!checked.success) {
    const [issue] = checked.error.issues;
    return `${issue!.path.length > 0 ? `window ${Number(issue!.path[0]) + 1}: ${issue!.path.slice(1).join('.')} ` : ''}${issue!.message}`;
  }
  return sorted(windows);
}

/** The form parseRateList reads: "10/s,100/m". */
export function formatRateList(windows: RateLimitWindows): string {
  return windows
    .map(({ points, perSeconds }) => {
      if (perSeconds % 3600 === 0) return `${points}/${perSeconds === 3600 ? '' : perSeconds / 3600}h`;
      if (perSeconds % 60 === 0) return `${points}/${perSeconds === 60 ? '' : perSeconds / 60}m`;
      return `${points}/${perSeconds === 1 ? '' : perSeconds}s`;
    })
    .join(',');
}

export function effectiveRateLimits(own: KeyRateLimits | null, defaults: RateLimitDefaults): EffectiveRateLimits {
  const tier = (name: RateLimitTier) => {
    const windows = own?.[name];
    return windows ? { windows, isDefault: false } : { windows: defaults[name], isDefault: true };
  };
  return { submit: tier('submit'), other: tier('other') };
}

function parsedDefault(list: string): RateLimitWindows {
  const windows = parseRateList(list);
  if (typeof windows === 'string') throw new Error(`the default rate limit ${list} does not parse: ${windows}`);
  return windows;
}

/** DEFAULT_RATE_LISTS as windows. */
export const DEFAULT_RATE_LIMITS: Readonly<RateLimitDefaults & { execute: RateLimitWindows }> = Object.freeze({
  submit: parsedDefault(DEFAULT_RATE_LISTS.submit),
  other: parsedDefault(DEFAULT_RATE_LISTS.other),
  execute: parsedDefault(DEFAULT_RATE_LISTS.execute),
});
