import { and, asc, eq, gt, inArray, isNull, sql, type Placeholder, type SQL } from 'drizzle-orm';
import type { Account, Page, PageRequest } from '../../../domain/types.js';
import type { Drizzle, SqliteDatabase } from '../database.js';
import { toAccount } from '../../rows.js';
import { accounts } from '../schema.js';
import { page } from './page.js';

/** The accounts an organisation registers with its services. */
export class AccountRecords {
  readonly #db: Drizzle;

  readonly #findActiveAccountStatement;

  constructor(database: SqliteDatabase) {
    this.#db = database.db;
    // Runs on every request: prepared once.
    this.#findActiveAccountStatement = this.#db
      .select()
      .from(accounts)
      .where(
        this.#activeAccount(sql.placeholder('organisationId'), sql.placeholder('service'), sql.placeholder('username')),
      )
      .prepare();
  }

  async registerAccount(organisationId: number, service: string, username: string, now: number): Promise<Account | null> {
    const record = this.#db
      .insert(accounts)
      .values({ organisationId, service, username, dateCreated: now })
      .onConflictDoNothing()
      .returning()
      .get();
    return record ? toAccount(record) : null;
  }

  async deregisterAccount(organisationId: number, service: string, username: string, now: number): Promise<Account | null> {
    const record = this.#db
      .update(accounts)
      .set({ dateDeregistered: now })
      .where(and(this.#activeAccount(organisationId, service, username)))
      .returning()
      .get();
    return record ? toAccount(record) : null;
  }

  async findActiveAccount(organisationId: number, service: string, username: string): Promise<Account | null> {
    const record = this.#findActiveAccountStatement.get({ organisationId, service, username });
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
    const rows = this.#db
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
      .limit(request.first + 1)
      .all();
    return page(rows.map(toAccount), request.first);
  }

  async getAccounts(organisationId: number, ids: readonly number[]): Promise<Account[]> {
    if (ids.length === 0) return [];
    return this.#db
      .select()
      .from(accounts)
      .where(and(eq(accounts.organisationId, organisationId), inArray(accounts.id, [...ids])))
      .all()
      .map(toAccount);
  }
}
