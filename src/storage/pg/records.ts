import type { RecordStore } from '../contract.js';
import { composeStore } from '../compose.js';
import type { PgDatabase } from './database.js';
import { AccountRecords } from './records/accounts.js';
import { AllocationRecords } from './records/allocations.js';
import { ResultRecords } from './records/results.js';
import { ShareRecords } from './records/shares.js';
import { RetentionRecords } from './records/retention.js';
import { RetryRecords } from './records/retries.js';
import { TaskRecords } from './records/tasks.js';
import { TenantRecords } from './records/tenants.js';

/** The records' statements, one module per family under records/. */
export function openPgRecordStore(database: PgDatabase): RecordStore {
  return composeStore(
    new TenantRecords(database),
    new ShareRecords(database),
    new AccountRecords(database),
    new TaskRecords(database),
    new ResultRecords(database),
    new AllocationRecords(database),
    new RetryRecords(database),
    new RetentionRecords(database),
  );
}
