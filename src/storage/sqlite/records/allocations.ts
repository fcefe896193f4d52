import { and, asc, eq, gt, isNull } from 'drizzle-orm';
import type { Allocation, ExecutionToken } from '../../../domain/types.js';
import type { NewAllocation } from '../../contract.js';
import type { Drizzle, SqliteDatabase } from '../database.js';
import { toAllocation, toExecutionToken } from '../../rows.js';
import { allocations, executionTokens } from '../schema.js';

/** Allocations of real-time capacity and the execution tokens that spend them. */
export class AllocationRecords {
  readonly #db: Drizzle;
  readonly #database: SqliteDatabase;

  constructor(database: SqliteDatabase) {
    this.#database = database;
    this.#db = database.db;
  }

  async createAllocation(input: NewAllocation, now: number): Promise<Allocation> {
    const record = this.#db
      .insert(allocations)
      .values({ ...input, dateCreated: now })
      .returning()
      .get();
    return toAllocation(record);
  }

  async listAllocations(organisationId: number | null): Promise<Allocation[]> {
    return this.#db
      .select()
      .from(allocations)
      .where(
        and(
          isNull(allocations.dateDeleted),
          organisationId === null ? undefined : eq(allocations.organisationId, organisationId),
        ),
      )
      .orderBy(asc(allocations.id))
      .all()
      .map(toAllocation);
  }

  async deleteAllocation(organisationId: number, allocationId: number, now: number): Promise<Allocation | null> {
    const db = this.#db;
    return this.#database.sqlite.transaction((): Allocation | null => {
      const record = db
        .update(allocations)
        .set({ dateDeleted: now })
        .where(
          and(
            eq(allocations.id, allocationId),
            eq(allocations.organisationId, organisationId),
            isNull(allocations.dateDeleted),
          ),
        )
        .returning()
        .get();
      if (!record) return null;
      db.update(executionTokens).set({ revoked: true }).where(eq(executionTokens.allocationId, allocationId)).run();
      return toAllocation(record);
    }).immediate();
  }

  async createExecutionToken(
    input: { allocationId: number; tokenHash: string; expiresAt: number },
    now: number,
  ): Promise<ExecutionToken> {
    const record = this.#db
      .insert(executionTokens)
      .values({ ...input, dateCreated: now })
      .returning()
      .get();
    return toExecutionToken(record);
  }

  async revokeExecutionToken(organisationId: number, tokenId: number): Promise<ExecutionToken | null> {
    const owned = this.#db
      .select({ id: executionTokens.id })
      .from(executionTokens)
      .innerJoin(allocations, eq(allocations.id, executionTokens.allocationId))
      .where(and(eq(executionTokens.id, tokenId), eq(allocations.organisationId, organisationId)))
      .get();
    if (!owned) return null;
    const record = this.#db
      .update(executionTokens)
      .set({ revoked: true })
      .where(eq(executionTokens.id, tokenId))
      .returning()
      .get();
    return record ? toExecutionToken(record) : null;
  }

  async liveExecutionTokens(now: number): Promise<(ExecutionToken & { tokenHash: string })[]> {
    return this.#db
      .select({ token: executionTokens })
      .from(executionTokens)
      .innerJoin(allocations, eq(allocations.id, executionTokens.allocationId))
      .where(and(eq(executionTokens.revoked, false), gt(executionTokens.expiresAt, now), isNull(allocations.dateDeleted)))
      .all()
      .map(({ token }) => ({ ...toExecutionToken(token), tokenHash: token.tokenHash }));
  }

  async findLiveExecutionToken(tokenHash: string, now: number): Promise<ExecutionToken | null> {
    const row = this.#db
      .select({ token: executionTokens })
      .from(executionTokens)
      .innerJoin(allocations, eq(allocations.id, executionTokens.allocationId))
      .where(
        and(
          eq(executionTokens.tokenHash, tokenHash),
          eq(executionTokens.revoked, false),
          gt(executionTokens.expiresAt, now),
          isNull(allocations.dateDeleted),
        ),
      )
      .get();
    return row ? toExecutionToken(row.token) : null;
  }
}
