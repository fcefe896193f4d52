import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { ApiKey, Organisation, RetrievalProtocol } from '../../../domain/types.js';
import type { ApiKeyChanges, NewApiKey } from '../../contract.js';
import type { Drizzle, SqliteDatabase } from '../database.js';
import { apiKeyColumns, toApiKey, toOrganisation } from '../../rows.js';
import { apiKeys, organisations } from '../schema.js';

/** Organisations and their API keys. */
export class TenantRecords {
  readonly #db: Drizzle;

  readonly #findActiveKeyStatement;
  readonly #getOrganisationStatement;

  constructor(database: SqliteDatabase) {
    this.#db = database.db;
    // Runs on every request: prepared once.
    this.#findActiveKeyStatement = this.#db
      .select()
      .from(apiKeys)
      .innerJoin(organisations, eq(organisations.id, apiKeys.organisationId))
      .where(and(eq(apiKeys.tokenHash, sql.placeholder('tokenHash')), eq(apiKeys.revoked, false)))
      .prepare();
    this.#getOrganisationStatement = this.#db
      .select()
      .from(organisations)
      .where(eq(organisations.id, sql.placeholder('id')))
      .prepare();
  }

  async findOrCreateOrganisation(name: string, now: number): Promise<Organisation> {
    this.#db.insert(organisations).values({ name, dateCreated: now }).onConflictDoNothing().run();
    const record = this.#db.select().from(organisations).where(eq(organisations.name, name)).get();
    return toOrganisation(record!);
  }

  async getOrganisation(id: number): Promise<Organisation | null> {
    const record = this.#getOrganisationStatement.get({ id });
    return record ? toOrganisation(record) : null;
  }

  async setRetrievalProtocol(id: number, protocol: RetrievalProtocol): Promise<Organisation | null> {
    const record = this.#db
      .update(organisations)
      .set({ retrievalProtocol: protocol })
      .where(eq(organisations.id, id))
      .returning()
      .get();
    return record ? toOrganisation(record) : null;
  }

  async countApiKeys(): Promise<number> {
    return this.#db.$count(apiKeys);
  }

  async createApiKey(input: NewApiKey, now: number): Promise<ApiKey> {
    const permissions = input.permissions ? JSON.stringify(input.permissions) : null;
    const rateLimits = input.rateLimits ? JSON.stringify(input.rateLimits) : null;
    const record = this.#db
      .insert(apiKeys)
      .values({ ...input, permissions, rateLimits, dateCreated: now })
      .returning()
      .get();
    return toApiKey(record);
  }

  async findActiveKey(tokenHash: string): Promise<{ key: ApiKey; organisation: Organisation } | null> {
    const row = this.#findActiveKeyStatement.get({ tokenHash });
    return row ? { key: toApiKey(row.api_keys), organisation: toOrganisation(row.organisations) } : null;
  }

  async revokeApiKey(organisationId: number, keyId: number, now: number): Promise<ApiKey | null> {
    const record = this.#db
      .update(apiKeys)
      .set({ revoked: true, dateRevoked: sql`coalesce(${apiKeys.dateRevoked}, ${now})` })
      .where(and(eq(apiKeys.id, keyId), eq(apiKeys.organisationId, organisationId)))
      .returning()
      .get();
    return record ? toApiKey(record) : null;
  }

  async updateApiKey(organisationId: number, keyId: number, changes: ApiKeyChanges): Promise<ApiKey | null> {
    const record = this.#db
      .update(apiKeys)
      .set(apiKeyColumns(changes))
      .where(and(eq(apiKeys.id, keyId), eq(apiKeys.organisationId, organisationId)))
      .returning()
      .get();
    return record ? toApiKey(record) : null;
  }

  async listApiKeys(organisationId: number): Promise<ApiKey[]> {
    return this.#db
      .select()
      .from(apiKeys)
      .where(eq(apiKeys.organisationId, organisationId))
      .orderBy(asc(apiKeys.id))
      .all()
      .map(toApiKey);
  }

  async getApiKeys(organisationId: number, ids: readonly number[]): Promise<ApiKey[]> {
    if (ids.length === 0) return [];
    return this.#db
      .select()
      .from(apiKeys)
      .where(and(eq(apiKeys.organisationId, organisationId), inArray(apiKeys.id, [...ids])))
      .all()
      .map(toApiKey);
  }
}
