import type { RetentionCursor } from './contract.js';

/**
 * The most rows of each kind one retention transaction deletes: a task may have written 8 MiB of
 * logs per attempt and 64 MiB of results, and a batch of them must still be a short transaction.
 */
export const RETENTION_CHUNKS = Object.freeze({ logs: 5000, results: 100, retries: 1000, webhookDeliveries: 2000, webhookMessages: 1000 });

/**
 * The tasks of a retention batch that may go: none that a task staying depends on, so that no
 * task's dependsOn loses an entry while the task is still listed. Transitively: a task held back
 * holds back its own dependencies. A dependent ends no earlier than its dependency (it waits for
 * it, or fails with it), so it is in the same batch or a later one; a dependency whose dependent is
 * in a later batch, not yet expired or still running waits for a later sweep.
 */
export function deletableOfBatch(
  candidates: readonly Pick<RetentionCursor, 'id'>[],
  dependents: readonly { taskId: number; dependsOnId: number }[],
): number[] {
  const deletable = new Set(candidates.map((task) => task.id));
  let heldBack = true;
  while (heldBack) {
    heldBack = false;
    for (const edge of dependents) {
      if (deletable.has(edge.dependsOnId) && !deletable.has(edge.taskId)) {
        deletable.delete(edge.dependsOnId);
        heldBack = true;
      }
    }
  }
  return [...deletable];
}
