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
    super(`cannot open the database ${redactedLocation(path)}: ${reason}`);
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
  const reason = error instanceof Database.SqliteError ? sqliteUnavailableReason(error) : postgresUnavailableReason(error);
  return reason === null ? null : new StorageUnavailableError(`the database is unavailable: ${reason}`, { cause: error });
}

function sqliteUnavailableReason(error: InstanceType<typeof Database.SqliteError>): string | null {
  if (!UNAVAILABLE_CODES.test(error.code)) return null;
  const primary = /^SQLITE_[A-Z]+/.exec(error.code)![0];
  return REASONS[primary] ?? error.message;
}

// SQLSTATE classes and codes of PostgreSQL that describe the server, not the statement.
const POSTGRES_REASONS: Record<string, string> = {
  '08': 'the connection to PostgreSQL failed',
  '53100': 'the PostgreSQL server is out of disk space',
  '53200': 'the PostgreSQL server is out of memory',
  '53300': 'the PostgreSQL server has no connection left',
  '57P01': 'the PostgreSQL server is shutting down',
  '57P02': 'the PostgreSQL server is restarting after a crash',
  '57P03': 'the PostgreSQL server is starting up',
  '25006': 'the PostgreSQL server is read-only (a standby?)',
  '58': 'the PostgreSQL server failed a system call',
};

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'nothing accepts connections at the PostgreSQL address',
  ECONNRESET: 'the PostgreSQL server closed the connection',
  ETIMEDOUT: 'the PostgreSQL server does not answer',
  ENOTFOUND: 'the PostgreSQL host name does not resolve',
  EHOSTUNREACH: 'the PostgreSQL host is unreachable',
  EPIPE: 'the PostgreSQL server closed the connection',
};

/** node-postgres reports a lost or timed-out connection with these messages and no code. */
const LOST_CONNECTION = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/;

function postgresUnavailableReason(error: unknown): string | null {
  const code = primaryCode(error);
  if (code !== undefined) {
    if (NETWORK_REASONS[code]) return NETWORK_REASONS[code];
    if (/^[0-9A-Z]{5}$/.test(code)) return POSTGRES_REASONS[code] ?? POSTGRES_REASONS[code.slice(0, 2)] ?? null;
  }
  if (error instanceof Error && LOST_CONNECTION.test(error.message)) return 'the connection to PostgreSQL was lost';
  return null;
}

/** A database URL as it may be logged and shown: without its password. */
export function redactedLocation(location: string): string {
  try {
    const url = new URL(location);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return location;
  }
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
  if (code === '28P01' || code === '28000') return 'PostgreSQL refused the user name or password';
  if (code === '3D000') return 'the PostgreSQL database does not exist (create it first)';
  if (code === '42501') return 'the PostgreSQL user may not create the tables (grant it CREATE on the database)';
  const unavailable = postgresUnavailableReason(error);
  if (unavailable) return unavailable;
  return error instanceof Error ? error.message : String(error);
}
