import { mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import * as schema from './schema.js';
import type { SynchronousMode } from '../durability.js';

export type Drizzle = BetterSQLite3Database<typeof schema>;

export interface SqliteDatabase {
  sqlite: Database.Database;
  db: Drizzle;
  /** Throws the driver's error when the database cannot take a write (read-only, disk full, locked). */
  probeWrite(): void;
  close(): Promise<void>;
}

export const migrationsFolder = fileURLToPath(new URL('../../../drizzle/sqlite', import.meta.url));

/**
 * Creates `folder` and its missing parents one at a time: Node's recursive mkdir loops for ever
 * under /proc, and an operator's typo must end in a message, not a hang.
 */
function ensureFolder(folder: string): void {
  const stat = statSync(folder, { throwIfNoEntry: false });
  if (stat?.isDirectory()) return;
  if (stat) throw Object.assign(new Error(`${folder} is not a folder`), { code: 'ENOTDIR' });
  const parent = dirname(folder);
  if (parent !== folder) ensureFolder(parent);
  mkdirSync(folder);
}


export interface SqliteOptions {
  synchronous?: SynchronousMode;
}

export function openDatabase(path: string, options: SqliteOptions = {}): SqliteDatabase {
  if (path !== ':memory:') {
    ensureFolder(dirname(path));
    if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
      throw Object.assign(new Error(`${path} is a folder`), { code: 'EISDIR' });
    }
  }
  const sqlite = new Database(path);
  try {
    setPragmas(sqlite, options.synchronous ?? 'NORMAL');
  } catch (error) {
    sqlite.close();
    throw error;
  }
  const checkpointer = path === ':memory:' ? null : startCheckpointer(path);
  // A backstop (about 400 MB of WAL) in case the checkpointer thread fails or falls behind.
  sqlite.pragma(`wal_autocheckpoint = ${checkpointer ? 100_000 : 1000}`);
  const db = drizzle(sqlite, { schema });
  return {
    sqlite,
    db,
    // Rewriting the header's user_version with its own value is the smallest write that must
    // reach the disk; a read or a rolled-back transaction would succeed on a full or read-only disk.
    probeWrite: () => {
      const version = sqlite.pragma('user_version', { simple: true }) as number;
      sqlite.pragma(`user_version = ${version}`);
    },
    close: async () => {
      await checkpointer?.stop();
      if (sqlite.open) {
        sqlite.pragma('optimize');
        sqlite.close();
      }
    },
  };
}

function setPragmas(sqlite: Database.Database, synchronous: SynchronousMode): void {
  // The first statement reads the file: a file that is no database fails here.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`synchronous = ${synchronous}`);
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('cache_size = -65536');
  sqlite.pragma('temp_store = MEMORY');
}

const CHECKPOINT_INTERVAL_MS = 500;
const CHECKPOINTER_STOP_MS = 2000;

const checkpointerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = 5000');
const checkpoint = (mode) => { try { db.pragma('wal_checkpoint(' + mode + ')'); } catch {} };
const timer = setInterval(() => checkpoint('PASSIVE'), workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  checkpoint('PASSIVE');
  db.close();
  parentPort.close();
});
`;

/**
 * Copies the WAL back into the database from a thread of its own. Left to SQLite, a checkpoint
 * runs inside whichever commit crosses the threshold, fsync included, and stalls the event loop
 * that serves requests and runs the worker.
 */
function startCheckpointer(path: string): { stop(): Promise<void> } {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(checkpointerSource, {
    eval: true,
    workerData: { path, driver, intervalMs: CHECKPOINT_INTERVAL_MS },
  });
  worker.unref();
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  // If the thread fails, the connection's own autocheckpoint backstop takes over.
  worker.on('error', () => {});
  return {
    stop: async () => {
      worker.postMessage('stop');
      const timer = setTimeout(() => void worker.terminate(), CHECKPOINTER_STOP_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

export function runMigrations(database: SqliteDatabase): void {
  migrate(database.db, { migrationsFolder });
}
