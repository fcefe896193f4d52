/**
 * SQLite's `synchronous` setting. NORMAL in WAL mode survives a crash of the process: a commit is
 * in the WAL when it returns, and only a crash of the operating system or a power loss can lose
 * the last ones. FULL syncs the WAL on every commit, and survives those too. A leaf module: the
 * configuration reads it without the storage's dependencies.
 */
export const SYNCHRONOUS_MODES = Object.freeze(['NORMAL', 'FULL'] as const);
export type SynchronousMode = (typeof SYNCHRONOUS_MODES)[number];
