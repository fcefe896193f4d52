import type { Logger } from 'pino';

/** What a client did wrong; each kind has its own budget of log lines. */
export type ClientFaultKind = 'bad-frame' | 'oversized-frame' | 'oversized-body' | 'aborted-body' | 'socket-error';

export const CLIENT_FAULT_LOG_LIMITS = Object.freeze({
  /** Lines per kind per window; past it, one line per window says how many were dropped. */
  lines: 20,
  windowMs: 60_000,
});

export interface ClientFaultLog {
  /** One INFO line without a stack trace, unless this kind has used its budget for the window. */
  report(kind: ClientFaultKind, fields: Record<string, unknown>, message: string): void;
}

/**
 * Client faults are the client's problem, not the operator's: they are logged at INFO, and a
 * client that repeats one (a flood of bad frames) cannot fill the log with them.
 */
export function clientFaultLog(logger: Logger): ClientFaultLog {
  const windows = new Map<ClientFaultKind, { startedAt: number; logged: number; dropped: number }>();
  const reportDropped = (kind: ClientFaultKind) => {
    const window = windows.get(kind);
    windows.delete(kind);
    if (window && window.dropped > 0) {
      logger.info({ clientFault: kind, dropped: window.dropped }, `${window.dropped} more client faults of this kind were not logged`);
    }
  };
  return {
    report(kind, fields, message) {
      const now = Date.now();
      let window = windows.get(kind);
      if (!window || now - window.startedAt >= CLIENT_FAULT_LOG_LIMITS.windowMs) {
        window = { startedAt: now, logged: 0, dropped: 0 };
        windows.set(kind, window);
      }
      if (window.logged < CLIENT_FAULT_LOG_LIMITS.lines) {
        window.logged += 1;
        logger.info({ clientFault: kind, ...fields }, message);
        return;
      }
      // The first drop of a window schedules the line that counts them, at the window's end.
      if (window.dropped++ === 0) {
        setTimeout(() => reportDropped(kind), window.startedAt + CLIENT_FAULT_LOG_LIMITS.windowMs - now).unref();
      }
    },
  };
}
