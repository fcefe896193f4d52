import {
  clipLogLine,
  clipUtf8,
  describe,
  encodeJson,
  LIMITS,
  TaskFailure,
  type OutputFailure,
} from '../catalog/index.js';
import { LOG_LEVELS, type LogLevel } from '../domain/types.js';

/**
 * What a handler may put out, for queued attempts and real-time calls alike: each call of its
 * context is checked here against LIMITS, so that nothing it passes can end the process.
 */

/** What one run has put out so far; a queued task's results count those of its earlier attempts. */
export interface OutputTally {
  resultCount: number;
  resultBytes: number;
  loggedBytes: number;
  logsDropped: boolean;
}

export type AcceptedLog =
  | { kind: 'line'; level: LogLevel; message: string }
  /** The run has logged its fill: this is the one note saying so, and later lines are dropped. */
  | { kind: 'limit'; level: 'WARN'; message: string }
  | null;

/** The log line to keep, cut to LIMITS.logLineBytes, or null once the run's lines are dropped. */
export function acceptLog(tally: OutputTally, level: unknown, message: unknown): AcceptedLog {
  if (tally.logsDropped) return null;
  const text = clipLogLine(typeof message === 'string' ? message : describe(message));
  const bytes = Buffer.byteLength(text);
  if (tally.loggedBytes + bytes > LIMITS.attemptLogBytes) {
    tally.logsDropped = true;
    return {
      kind: 'limit',
      level: 'WARN',
      message: `this run has logged ${tally.loggedBytes} bytes; lines past ${LIMITS.attemptLogBytes} are dropped`,
    };
  }
  tally.loggedBytes += bytes;
  const known = (LOG_LEVELS as readonly unknown[]).includes(level);
  return { kind: 'line', level: known ? (level as LogLevel) : 'INFO', message: text };
}

export type AcceptedResult =
  | { ok: true; name: string; contentType: string; json: string; bytes: number }
  | { ok: false; failure: OutputFailure };

/** The result as JSON within the limits, counted in the tally, or the limit it broke. */
export function acceptResult(tally: OutputTally, name: unknown, data: unknown, contentType: unknown): AcceptedResult {
  const refuse = (failure: OutputFailure): AcceptedResult => ({ ok: false, failure });
  const maxLength = LIMITS.resultNameLength;
  if (typeof name !== 'string' || name.length === 0 || name.length > maxLength) {
    return refuse({ code: 'INVALID_RESULT', message: `a result needs a name of 1 to ${maxLength} characters` });
  }
  if (typeof contentType !== 'string' || contentType.length === 0 || contentType.length > maxLength) {
    return refuse({ code: 'INVALID_RESULT', message: `result ${name} needs a content type of 1 to ${maxLength} characters` });
  }
  const encoded = encodeJson(data, `result ${name}`);
  if (!encoded.ok) return refuse(encoded.failure);
  if (encoded.bytes > LIMITS.resultBytes) {
    return refuse({
      code: 'RESULT_TOO_LARGE',
      message: `result ${name} is ${encoded.bytes} bytes of JSON; one result may have at most ${LIMITS.resultBytes}`,
    });
  }
  if (tally.resultCount >= LIMITS.taskResults) {
    return refuse({ code: 'TOO_MANY_RESULTS', message: `a task may publish at most ${LIMITS.taskResults} results` });
  }
  if (tally.resultBytes + encoded.bytes > LIMITS.taskResultBytes) {
    return refuse({
      code: 'RESULT_TOO_LARGE',
      message: `result ${name} would bring the task's results to ${tally.resultBytes + encoded.bytes} bytes of JSON; a task may have at most ${LIMITS.taskResultBytes}`,
    });
  }
  tally.resultCount += 1;
  tally.resultBytes += encoded.bytes;
  return { ok: true, name, contentType, json: encoded.text, bytes: encoded.bytes };
}

export interface HandlerFailure {
  code: string;
  message: string;
  retryable: boolean;
}

/** What a handler threw, as a code and a message within the limits; never throws itself. */
export function handlerFailure(error: unknown): HandlerFailure {
  try {
    return classify(error);
  } catch {
    // A revoked proxy, a throwing getter: the value cannot even be looked at.
    return { code: 'HANDLER_ERROR', message: 'The handler failed with a value that cannot be inspected.', retryable: true };
  }
}

function classify(error: unknown): HandlerFailure {
  const message = (text: string) => clipUtf8(text, LIMITS.errorMessageBytes).text;
  if (error instanceof TaskFailure) {
    const { code } = error;
    if (typeof code !== 'string' || code.length === 0 || code.length > LIMITS.errorCodeLength) {
      return {
        code: 'HANDLER_ERROR',
        message: message(`The handler failed with an invalid code (1 to ${LIMITS.errorCodeLength} characters): ${describe(error)}`),
        retryable: true,
      };
    }
    return { code, message: message(describe(error)), retryable: error.retryable !== false };
  }
  if (error instanceof Error) return { code: 'HANDLER_ERROR', message: message(describe(error)), retryable: true };
  const what = error === undefined || error === null ? String(error) : `${typeof error === 'object' ? 'an' : 'a'} ${typeof error}`;
  const shown = error === undefined || error === null ? '' : `: ${describe(error)}`;
  return { code: 'HANDLER_ERROR', message: message(`The handler threw ${what}, not an Error${shown}`), retryable: true };
}
