import type Database from 'better-sqlite3';
import type { RetrievalProtocol, TaskState } from '../../../domain/types.js';
import type { StatusRow } from '../../contract.js';
import { preparedOnce } from './statements.js';

export const statusesStatements = preparedOnce((sqlite) => ({
  // Driven by the id list (CROSS JOIN fixes the order): one primary-key lookup per id.
  statuses: sqlite.prepare(
    `SELECT t.id, t.state, t.result_retrieved AS resultRetrieved, t.retrieval_protocol AS retrievalProtocol,
       t.error_code AS errorCode, t.error_message AS errorMessage
     FROM json_each(?) AS wanted CROSS JOIN tasks AS t ON t.id = wanted.value
     WHERE t.organisation_id = ?`,
  ),
}));

export function statuses(sqlite: Database.Database, organisationId: number, taskIds: readonly number[]): Map<number, StatusRow> {
  const rows = statusesStatements(sqlite).statuses.all(JSON.stringify(taskIds), organisationId) as {
    id: number;
    state: TaskState;
    resultRetrieved: number;
    retrievalProtocol: RetrievalProtocol;
    errorCode: string | null;
    errorMessage: string | null;
  }[];
  const statuses = new Map<number, StatusRow>();
  for (const row of rows) {
    statuses.set(row.id, {
      id: row.id,
      state: row.state,
      resultRetrieved: Boolean(row.resultRetrieved),
      retrievalProtocol: row.retrievalProtocol,
      error: row.errorCode === null ? null : { code: row.errorCode, message: row.errorMessage ?? '' },
    });
  }
  return statuses;
}
