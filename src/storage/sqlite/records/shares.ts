import { eq } from 'drizzle-orm';
import type { Organisation, OrganisationShareChanges } from '../../../domain/types.js';
import type { Drizzle, SqliteDatabase } from '../database.js';
import { toOrganisation } from '../../rows.js';
import { organisations } from '../schema.js';

/** What an operator sets of an organisation's share of the queues. */
export class ShareRecords {
  readonly #db: Drizzle;

  constructor(database: SqliteDatabase) {
    this.#db = database.db;
  }

  async setOrganisationShare(name: string, changes: OrganisationShareChanges): Promise<Organisation | null> {
    const record = this.#db.update(organisations).set(changes).where(eq(organisations.name, name)).returning().get();
    return record ? toOrganisation(record) : null;
  }
}
