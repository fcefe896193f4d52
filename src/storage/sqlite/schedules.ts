import type { ScheduleStore } from '../schedule-store.js';
import type { SqliteDatabase } from './database.js';

export class SqliteScheduleStore implements ScheduleStore {
  readonly #database: SqliteDatabase;

  constructor(database: SqliteDatabase) {
    this.#database = database;
  }
}
