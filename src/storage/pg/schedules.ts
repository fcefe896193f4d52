import type { ScheduleStore } from '../schedule-store.js';
import type { PgDatabase } from './database.js';

export class PgScheduleStore implements ScheduleStore {
  readonly #database: PgDatabase;

  constructor(database: PgDatabase) {
    this.#database = database;
  }
}
