import { and, asc, eq, gt, inArray, isNull, sql } from 'drizzle-orm';
import type { Allocation, ExecutionToken } from '../../../domain/types.js';
import type { NewAllocation } from '../../contract.js';
import type { PgDatabase, PgDrizzle } from '../database.js';
import { toAllocation, toExecutionToken } from '../../rows.js';
import { allocations, executionTokens } from '../schema.js';

/** Allocations of real-time capacity and the execution tokens that spend them. */
export class AllocationRecords {
  readonly #db: PgDrizzle;

  readonly #findLiveExecutionTokenStatement;

  constructor(database: PgDatabase) {
    this.#db = database.db;
    // Run on every request, or for every batch of a loader: named, so each connection plans them once.
    this.#findLiveExecutionTokenStatement = this.#db
      .select({ token: executionTokens })
      .from(executionTokens)
      .innerJoin(allocations, eq(allocations.id, executionTokens.allocationId))
      .where(
        and(
          eq(executionTokens.tokenHash, sql.placeholder('tokenHash')),
          eq(executionTokens.revoked, false),
          gt(executionTokens.expiresAt, sql.placeholder('now')),
          isNull(allocations.dateDeleted),
        ),
      )
      .prepare('records_find_live_execution_token');
  }

  async createAllocation(input: NewAllocation, now: number): Promise<Allocation> {
    const [record] = await this.#db
      .insert(allocations)
      .values({ ...input, dateCreated: now })
      .returning();
    return toAllocation(record!);
  }

  async listAllocations(organisationId: number | null): Promise<Allocation[]> {
    const records = await this.#db
      .select()
      .from(allocations)
      .where(
        and(
          isNull(allocations.dateDeleted),
          organisationId === null ? undefined : eq(allocations.organisationId, organisationId),
        ),
      )
      .orderBy(asc(allocations.id));
    return records.map(toAllocation);
  }

  async deleteAllocation(organisationId: number, allocationId: number, now: number): Promise<Allocation | null> {
    return this.#db.transaction(async (tx): Promise<Allocation | null> => {
      const [record] = await tx
        .update(allocations)
        .set({ dateDeleted: now })
        .where(
          and(
            eq(allocations.id, allocationId),
            eq(allocations.organisationId, organisationId),
            isNull(allocations.dateDeleted),
          ),
        )
        .returning();
      if (!record) return null;
      await tx.update(executionTokens).set({ revoked: true }).where(eq(executionTokens.allocationId, allocationId));
      return toAllocation(record);
    });
  }

  async createExecutionToken(
    input: { allocationId: number; tokenHash: string; expiresAt: number },
    now: number,
  ): Promise<ExecutionToken> {
    const [record] = await this.#db
      .insert(executionTokens)
      .values({ ...input, dateCreated: now })
      .returning();
    return toExecutionToken(record!);
  }

  async revokeExecutionToken(organisationId: number, tokenId: number): Promise<ExecutionToken | null> {
    // One statement: the ownership check is the update's own condition.
    const [record] = await this.#db
      .update(executionTokens)
      .set({ revoked: true })
      .where(
        and(
          eq(executionTokens.id, tokenId),
          inArray(
            executionTokens.allocationId,
            this.#db.select({ id: allocations.id }).from(allocations).where(eq(allocations.organisationId, organisationId)),
          ),
        ),
      )
      .returning();
    return record ? toExecutionToken(record) : null;
  }

  async liveExecutionTokens(now: number): Promise<(ExecutionToken & { tokenHash: string })[]> {
    const rows = await this.#db
      .select({ token: executionTokens })
      .from(executionTokens)
      .innerJoin(allocations, eq(allocations.id, executionTokens.allocationId))
      .where(and(eq(executionTokens.revoked, false), gt(executionTokens.expiresAt, now), isNull(allocations.dateDeleted)));
    return rows.map(({ token }) => ({ ...toExecutionToken(token), tokenHash: token.tokenHash }));
  }

  async findLiveExecutionToken(tokenHash: string, now: number): Promise<ExecutionToken | null> {
    const [row] = await this.#findLiveExecutionTokenStatement.execute({ tokenHash, now });
    return row ? toExecutionToken(row.token) : null;
  }
}
