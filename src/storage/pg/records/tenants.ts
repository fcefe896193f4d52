import { and, asc, eq, sql } from 'drizzle-orm';
import type { ApiKey, Organisation, RetrievalProtocol } from '../../../domain/types.js';
import type { ApiKeyChanges, NewApiKey } from '../../contract.js';
import type { PgDatabase, PgDrizzle } from '../database.js';
import { apiKeyColumns, toApiKey, toOrganisation } from '../../rows.js';
import { apiKeys, organisations } from '../schema.js';
import { anyOf } from './any-of.js';

/** Organisations and their API keys. */
export class TenantRecords {
  readonly #db: PgDrizzle;

  readonly #findActiveKeyStatement;
  readonly #getOrganisationStatement;

  constructor(database: PgDatabase) {
    this.#db = database.db;
    // Run on every request, or for every batch of a loader: named, so each connection plans them once.
    this.#findActiveKeyStatement = this.#db
      .select()
      .from(apiKeys)
      .innerJoin(organisations, eq(organisations.id, apiKeys.organisationId))
      .where(and(eq(apiKeys.tokenHash, sql.placeholder('tokenHash')), eq(apiKeys.revoked, false)))
      .prepare('records_find_active_key');
    this.#getOrganisationStatement = this.#db
      .select()
      .from(organisations)
      .where(eq(organisations.id, sql.placeholder('id')))
      .prepare('records_get_organisation');
  }

  async findOrCreateOrganisation(name: string, now: number): Promise<Organisation> {
    // A concurrent insert of the same name makes this one wait for its commit, then do nothing:
    // the select that follows, a statement of its own, sees the row either way.
    await this.#db.insert(organisations).values({ name, dateCreated: now }).onConflictDoNothing({ target: organisations.name });
    const [record] = await this.#db.select().from(organisations).where(eq(organisations.name, name));
    return toOrganisation(record!);
  }

  async getOrganisation(id: number): Promise<Organisation | null> {
    const [record] = await this.#getOrganisationStatement.execute({ id });
    return record ? toOrganisation(record) : null;
  }

  async setRetrievalProtocol(id: number, protocol: RetrievalProtocol): Promise<Organisation | null> {
    const [record] = await this.#db
      .update(organisations)
      .set({ retrievalProtocol: protocol })
      .where(eq(organisations.id, id))
      .returning();
    return record ? toOrganisation(record) : null;
  }

  async countApiKeys(): Promise<number> {
    return this.#db.$count(apiKeys);
  }

  async createApiKey(input: NewApiKey, now: number): Promise<ApiKey> {
    const permissions = input.permissions ? JSON.stringify(input.permissions) : null;
    const rateLimits = input.rateLimits ? JSON.stringify(input.rateLimits) : null;
    const [record] = await this.#db
      .insert(apiKeys)
      .values({ ...input, permissions, rateLimits, dateCreated: now })
      .returning();
    return toApiKey(record!);
  }

  async findActiveKey(tokenHash: string): Promise<{ key: ApiKey; organisation: Organisation } | null> {
    const [row] = await this.#findActiveKeyStatement.execute({ tokenHash });
    return row ? { key: toApiKey(row.api_keys), organisation: toOrganisation(row.organisations) } : null;
  }

  async revokeApiKey(organisationId: number, keyId: number, now: number): Promise<ApiKey | null> {
    const [record] = await this.#db
      .update(apiKeys)
      .set({ revoked: true, dateRevoked: sql`coalesce(${apiKeys.dateRevoked}, ${now})` })
      .where(and(eq(apiKeys.id, keyId), eq(apiKeys.organisationId, organisationId)))
      .returning();
    return record ? toApiKey(record) : null;
  }

  async updateApiKey(organisationId: number, keyId: number, changes: ApiKeyChanges): Promise<ApiKey | null> {
    const [record] = await this.#db
      .update(apiKeys)
      .set(apiKeyColumns(changes))
      .where(and(eq(apiKeys.id, keyId), eq(apiKeys.organisationId, organisationId)))
      .returning();
    return record ? toApiKey(record) : null;
  }

  async listApiKeys(organisationId: number): Promise<ApiKey[]> {
    const records = await this.#db
      .select()
      .from(apiKeys)
      .where(eq(apiKeys.organisationId, organisationId))
      .orderBy(asc(apiKeys.id));
    return records.map(toApiKey);
  }

  async getApiKeys(organisationId: number, ids: readonly number[]): Promise<ApiKey[]> {
    if (ids.length === 0) return [];
    const records = await this.#db
      .select()
      .from(apiKeys)
      .where(and(eq(apiKeys.organisationId, organisationId), anyOf(apiKeys.id, ids)));
    return records.map(toApiKey);
  }
}
