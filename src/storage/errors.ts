import Database from 'better-sqlite3';
import { StorageUnavailableError } from '../domain/errors.js';

export { StorageUnavailableError };

/** The database named in the configuration cannot be opened or brought up to date. */
export class DatabaseOpenError extends Error {
  override name = 'DatabaseOpenError';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`cannot open the database ${path}: ${reason}`);
  }
}

// The primary result codes that describe the file or the disk rather than the statement.
const UNAVAILABLE_CODES = /^SQLITE_(READONLY|IOERR|FULL|CANTOPEN|CORRUPT|NOTADB|BUSY|LOCKED|PERM|NOLFS|PROTOCOL)(_|$)/;

const REASONS: Record<string, string> = {
  SQLITE_CANTOPEN: 'SQLite cannot open a file there (is the folder writable?)',
  SQLITE_NOTADB: 'the file is not a SQLite database',
  SQLITE_CORRUPT: 'the database file is corrupt',
  SQLITE_READONLY: 'the database or its folder is read-only',
  SQLITE_FULL: 'the disk is full',
  SQLITE_IOERR: 'the disk failed a read or a write',
  SQLITE_BUSY: 'another process holds the database locked',
  SQLITE_PERM: 'permission denied',
};

const FILE_REASONS: Record<string, string> = {
  EEXIST: 'a part of the path is a file, not a folder',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOENT: 'a folder on the path cannot be created',
  ENOSPC: 'the disk is full',
  EISDIR: 'the path is a folder; name a file inside it',
};

function primaryCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The driver's failure as StorageUnavailableError when it is about the database itself, else null. */
export function storageUnavailable(error: unknown): StorageUnavailableError | null {
  if (error instanceof StorageUnavailableError) return error;
  if (!(error instanceof Database.SqliteError) || !UNAVAILABLE_CODES.test(error.code)) return null;
  const primary = /^SQLITE_[A-Z]+/.exec(error.code)![0];
  return new StorageUnavailableError(`the database is unavailable: ${REASONS[primary] ?? error.message}`, {
    cause: error,
  });
}

/** Why opening the database at `path` failed, in words an operator can act on. */
export function openFailureReason(error: unknown): string {
  const code = primaryCode(error);
  if (error instanceof Database.SqliteError) {
    const primary = /^SQLITE_[A-Z]+/.exec(error.code)?.[0] ?? error.code;
    if (error.code === 'SQLITE_READONLY_DIRECTORY') return 'its folder is read-only';
    return REASONS[primary] ?? error.message;
  }
  if (code && FILE_REASONS[code]) return FILE_REASONS[code];
  return error instanceof Error ? error.message : String(error);
}
