import { eq } from 'drizzle-orm';
import type { Organisation, OrganisationShareChanges } from '../../../domain/types.js';
import type { PgDatabase, PgDrizzle } from '../database.js';
import { toOrganisation } from '../../rows.js';
import { organisations } from '../schema.js';

/** What an operator sets of an organisation's share of the queues. */
export class ShareRecords {
  readonly #db: PgDrizzle;

  constructor(database: PgDatabase) {
    this.#db = database.db;
  }

  async setOrganisationShare(name: string, changes: OrganisationShareChanges): Promise<Organisation | null> {
    const [record] = await this.#db.update(organisations).set(changes).where(eq(organisations.name, name)).returning();
    return record ? toOrganisation(record) : null;
  }
}
