import { and, asc, eq, gt, isNull, sql, type Placeholder, type SQL } from 'drizzle-orm';
import type { Account, Page, PageRequest } from '../../../domain/types.js';
import type { PgDatabase, PgDrizzle } from '../database.js';
import { toAccount } from '../../rows.js';
import { accounts } from '../schema.js';
import { anyOf } from './any-of.js';
import { page } from './page.js';

/** The accounts an organisation registers with its services. */
export class AccountRecords {
  readonly #db: PgDrizzle;

  readonly #findActiveAccountStatement;

  constructor(database: PgDatabase) {
    this.#db = database.db;
    // Run on every request, or for every batch of a loader: named, so each connection plans them once.
    this.#findActiveAccountStatement = this.#db
      .select()
      .from(accounts)
      .where(
        this.#activeAccount(sql.placeholder('organisationId'), sql.placeholder('service'), sql.placeholder('username')),
      )
      .prepare('records_find_active_account');
  }

  async registerAccount(organisationId: number, service: string, username: string, now: number): Promise<Account | null> {
    // The conflict is with the active account only (accounts_active_unique): a deregistered one may be registered again.
    const [record] = await this.#db
      .insert(accounts)
      .values({ organisationId, service, username, dateCreated: now })
      .onConflictDoNothing({
        target: [accounts.organisationId, accounts.service, accounts.username],
        where: sql`date_deregistered IS NULL`,
      })
      .returning();
    return record ? toAccount(record) : null;
  }

  async deregisterAccount(organisationId: number, service: string, username: string, now: number): Promise<Account | null> {
    const [record] = await this.#db
      .update(accounts)
      .set({ dateDeregistered: now })
      .where(this.#activeAccount(organisationId, service, username))
      .returning();
    return record ? toAccount(record) : null;
  }

  async findActiveAccount(organisationId: number, service: string, username: string): Promise<Account | null> {
    const [record] = await this.#findActiveAccountStatement.execute({ organisationId, service, username });
    return record ? toAccount(record) : null;
  }

  #activeAccount(
    organisationId: number | Placeholder,
    service: string | Placeholder,
    username: string | Placeholder,
  ): SQL | undefined {
    return and(
      eq(accounts.organisationId, organisationId),
      eq(accounts.service, service),
      eq(accounts.username, username),
      isNull(accounts.dateDeregistered),
    );
  }

  async listAccounts(organisationId: number, service: string | null, request: PageRequest): Promise<Page<Account>> {
    const rows = await this.#db
      .select()
      .from(accounts)
      .where(
        and(
          eq(accounts.organisationId, organisationId),
          isNull(accounts.dateDeregistered),
          service === null ? undefined : eq(accounts.service, service),
          request.afterId ? gt(accounts.id, request.afterId) : undefined,
        ),
      )
      .orderBy(asc(accounts.id))
      .limit(request.first + 1);
    return page(rows.map(toAccount), request.first);
  }

  async getAccounts(organisationId: number, ids: readonly number[]): Promise<Account[]> {
    if (ids.length === 0) return [];
    const records = await this.#db
      .select()
      .from(accounts)
      .where(and(eq(accounts.organisationId, organisationId), anyOf(accounts.id, ids)));
    return records.map(toAccount);
  }
}
