import type { RetrievalProtocol, TaskState } from '../../../domain/types.js';
import type { StatusRow } from '../../contract.js';
import type { PgDatabase } from '../database.js';
import { statement } from './statements.js';

const statements = {
  statuses: statement(
    'statuses',
    `SELECT id, state, result_retrieved AS "resultRetrieved", retrieval_protocol AS "retrievalProtocol",
       error_code AS "errorCode", error_message AS "errorMessage"
     FROM tasks WHERE id = ANY($1::bigint[]) AND organisation_id = $2`,
  ),
};

export async function statuses(database: PgDatabase, organisationId: number, taskIds: readonly number[]): Promise<Map<number, StatusRow>> {
  const statuses = new Map<number, StatusRow>();
  if (taskIds.length === 0) return statuses;
  const { rows } = await database.pool.query(statements.statuses([taskIds, organisationId]));
  for (const row of rows as {
    id: number;
    state: TaskState;
    resultRetrieved: boolean;
    retrievalProtocol: RetrievalProtocol;
    errorCode: string | null;
    errorMessage: string | null;
  }[]) {
    statuses.set(row.id, {
      id: row.id,
      state: row.state,
      resultRetrieved: row.resultRetrieved,
      retrievalProtocol: row.retrievalProtocol,
      error: row.errorCode === null ? null : { code: row.errorCode, message: row.errorMessage ?? '' },
    });
  }
  return statuses;
}
