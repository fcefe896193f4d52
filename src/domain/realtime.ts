import type { ValidationError } from './errors.js';
import type { Allocation, LogLevel } from './types.js';

/** Warm instances one allocation may hold in one serving process. */
export const MAX_INSTANCES = 64;
export const DEFAULT_EXECUTION_TIMEOUT_MS = 30_000;
export const DEFAULT_TOKEN_TTL_SECONDS = 3600;
export const MAX_TOKEN_TTL_SECONDS = 30 * 24 * 3600;

export interface ExecutionLog {
  level: LogLevel;
  message: string;
  timestamp: Date;
}

export interface ExecutionResult {
  name: string;
  contentType: string;
  data: unknown;
}

/** How a call to an execution URL ended; the HTTP layer turns each kind into a status code. */
export type ExecutionOutcome =
  | { kind: 'unauthorized' }
  | { kind: 'invalid'; code: ValidationError['code']; field: string | null; message: string }
  | { kind: 'busy'; retryAfterSeconds: number }
  | {
      kind: 'finished';
      taskId: number;
      state: 'SUCCEEDED' | 'FAILED';
      results: ExecutionResult[];
      logs: ExecutionLog[];
      error: { code: string; message: string } | null;
      durationMs: number;
      timedOut: boolean;
    };

export interface AllocationStatus extends Allocation {
  busy: number;
}
