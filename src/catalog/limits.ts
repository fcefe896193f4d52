const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * What a task may bring in and what its handler may put out. Each limit is declared here only,
 * enforced where the data enters (params at submit, a handler's output as it calls the context),
 * and listed in the README's Limits table. Nothing a handler does past them may end the process:
 * the attempt fails with a code, or the log line is cut.
 */
export const LIMITS = Object.freeze({
  /** The JSON of one task's params; more is a ValidationError at submit. */
  paramsBytes: 1 * MiB,
  /** The JSON of one result. */
  resultBytes: 16 * MiB,
  /** The JSON of all results of one task, over all its attempts. */
  taskResultBytes: 64 * MiB,
  /** Results of one task, over all its attempts. */
  taskResults: 1000,
  /** A result's name and content type. */
  resultNameLength: 200,
  /** One log line; a longer one is cut and says how much was cut. */
  logLineBytes: 16 * KiB,
  /** What one attempt may log; past it, its lines are dropped, with one note saying so. */
  attemptLogBytes: 8 * MiB,
  /** A failure's code as a handler gives it. */
  errorCodeLength: 100,
  /** A failure's message; a longer one is cut. */
  errorMessageBytes: 4 * KiB,
});

/** Why the output of a handler was refused; each fails the attempt with that code. */
export type OutputFailureCode = 'RESULT_TOO_LARGE' | 'TOO_MANY_RESULTS' | 'RESULT_NOT_SERIALISABLE' | 'INVALID_RESULT';

export interface OutputFailure {
  code: OutputFailureCode;
  message: string;
}

export type Encoded = { ok: true; text: string; bytes: number } | { ok: false; failure: OutputFailure };

/** JSON text of a handler's value, or why it has none; getters, toJSON and proxies may throw. */
export function encodeJson(value: unknown, what: string): Encoded {
  let text: string | undefined;
  try {
    text = JSON.stringify(value ?? null);
  } catch (error) {
    return {
      ok: false,
      failure: { code: 'RESULT_NOT_SERIALISABLE', message: `${what} cannot be written as JSON: ${describe(error)}` },
    };
  }
  if (text === undefined) {
    return {
      ok: false,
      failure: { code: 'RESULT_NOT_SERIALISABLE', message: `${what} is a ${typeof value}, which JSON cannot hold` },
    };
  }
  return { ok: true, text, bytes: Buffer.byteLength(text) };
}

/** The longest start of `text` that fits in `maxBytes` of UTF-8, never splitting a character. */
export function clipUtf8(text: string, maxBytes: number): { text: string; cutBytes: number } {
  // A UTF-16 code unit is at most 3 bytes of UTF-8: short strings need no count.
  if (text.length * 3 <= maxBytes) return { text, cutBytes: 0 };
  const bytes = Buffer.byteLength(text);
  if (bytes <= maxBytes) return { text, cutBytes: 0 };
  const room = new Uint8Array(maxBytes);
  const { read } = new TextEncoder().encodeInto(text, room);
  const kept = text.slice(0, read);
  return { text: kept, cutBytes: bytes - Buffer.byteLength(kept) };
}

/** A log line within LIMITS.logLineBytes, its cut said at its end. */
export function clipLogLine(message: string): string {
  const note = (cut: number) => ` … [${cut} bytes cut: a log line holds at most ${LIMITS.logLineBytes} bytes]`;
  const room = LIMITS.logLineBytes - Buffer.byteLength(note(Number.MAX_SAFE_INTEGER));
  const clipped = clipUtf8(message, LIMITS.logLineBytes);
  if (clipped.cutBytes === 0) return message;
  const kept = clipUtf8(message, room);
  return kept.text + note(kept.cutBytes);
}

/** Text for anything a handler passes or throws, when a String() of it may itself throw. */
export function describe(value: unknown): string {
  try {
    if (value instanceof Error) return value.message || value.name;
    return String(value);
  } catch {
    return `a ${typeof value} value that cannot be printed`;
  }
}

/** Bounds of an action's maxAttempts and timeoutSeconds (and of a submit's overrides of them), and of its concurrency. */
export const ATTEMPT_BOUNDS = Object.freeze({
  maxAttempts: 100,
  timeoutSeconds: 7 * 24 * 3600,
  concurrency: 100_000,
});
