import type {
  Account,
  Allocation,
  ApiKey,
  ExecutionToken,
  LogLevel,
  Organisation,
  Page,
  PageRequest,
  RetrievalProtocol,
  Task,
  TaskFilter,
  TaskLog,
  TaskResult,
  TaskResultPayload,
} from '../../domain/types.js';
import type { NewAllocation, NewApiKey, RecordStore, RetrievalRequest, RetrieveOutcome } from '../contract.js';
import type { PgDatabase } from './database.js';
import { AccountRecords } from './records/accounts.js';
import { AllocationRecords } from './records/allocations.js';
import { ResultRecords } from './records/results.js';
import { TaskRecords } from './records/tasks.js';
import { TenantRecords } from './records/tenants.js';

/** The records' statements, one module per family under records/; this class only hands each call on. */
export class PgRecordStore implements RecordStore {
  readonly #tenants: TenantRecords;
  readonly #accounts: AccountRecords;
  readonly #tasks: TaskRecords;
  readonly #results: ResultRecords;
  readonly #allocations: AllocationRecords;

  constructor(database: PgDatabase) {
    this.#tenants = new TenantRecords(database);
    this.#accounts = new AccountRecords(database);
    this.#tasks = new TaskRecords(database);
    this.#results = new ResultRecords(database);
    this.#allocations = new AllocationRecords(database);
  }

  async findOrCreateOrganisation(name: string, now: number): Promise<Organisation> {
    return this.#tenants.findOrCreateOrganisation(name, now);
  }

  async getOrganisation(id: number): Promise<Organisation | null> {
    return this.#tenants.getOrganisation(id);
  }

  async setRetrievalProtocol(id: number, protocol: RetrievalProtocol): Promise<Organisation | null> {
    return this.#tenants.setRetrievalProtocol(id, protocol);
  }

  async countApiKeys(): Promise<number> {
    return this.#tenants.countApiKeys();
  }

  async createApiKey(input: NewApiKey, now: number): Promise<ApiKey> {
    return this.#tenants.createApiKey(input, now);
  }

  async findActiveKey(tokenHash: string): Promise<{ key: ApiKey; organisation: Organisation } | null> {
    return this.#tenants.findActiveKey(tokenHash);
  }

  async revokeApiKey(organisationId: number, keyId: number, now: number): Promise<ApiKey | null> {
    return this.#tenants.revokeApiKey(organisationId, keyId, now);
  }

  async listApiKeys(organisationId: number): Promise<ApiKey[]> {
    return this.#tenants.listApiKeys(organisationId);
  }

  async getApiKeys(organisationId: number, ids: readonly number[]): Promise<ApiKey[]> {
    return this.#tenants.getApiKeys(organisationId, ids);
  }

  async registerAccount(organisationId: number, service: string, username: string, now: number): Promise<Account | null> {
    return this.#accounts.registerAccount(organisationId, service, username, now);
  }

  async deregisterAccount(organisationId: number, service: string, username: string, now: number): Promise<Account | null> {
    return this.#accounts.deregisterAccount(organisationId, service, username, now);
  }

  async findActiveAccount(organisationId: number, service: string, username: string): Promise<Account | null> {
    return this.#accounts.findActiveAccount(organisationId, service, username);
  }

  async listAccounts(organisationId: number, service: string | null, request: PageRequest): Promise<Page<Account>> {
    return this.#accounts.listAccounts(organisationId, service, request);
  }

  async getAccounts(organisationId: number, ids: readonly number[]): Promise<Account[]> {
    return this.#accounts.getAccounts(organisationId, ids);
  }

  async getTasks(organisationId: number, ids: readonly number[]): Promise<Task[]> {
    return this.#tasks.getTasks(organisationId, ids);
  }

  async listTasks(organisationId: number, filter: TaskFilter, request: PageRequest): Promise<Page<Task>> {
    return this.#tasks.listTasks(organisationId, filter, request);
  }

  async getLogs(ids: readonly number[]): Promise<TaskLog[]> {
    return this.#tasks.getLogs(ids);
  }

  async taskLogs(
    taskIds: readonly number[],
    minLevel: LogLevel | null,
    request: PageRequest,
  ): Promise<Map<number, Page<TaskLog>>> {
    return this.#tasks.taskLogs(taskIds, minLevel, request);
  }

  async taskResults(taskIds: readonly number[]): Promise<TaskResult[]> {
    return this.#tasks.taskResults(taskIds);
  }

  async getResults(organisationId: number, ids: readonly number[]): Promise<TaskResult[]> {
    return this.#tasks.getResults(organisationId, ids);
  }

  async dependencies(taskIds: readonly number[]): Promise<{ taskId: number; dependsOnId: number }[]> {
    return this.#tasks.dependencies(taskIds);
  }

  async retrieveResults(
    organisationId: number,
    taskId: number,
    request: RetrievalRequest,
    now: number,
  ): Promise<RetrieveOutcome> {
    return this.#results.retrieveResults(organisationId, taskId, request, now);
  }

  async deleteExpiredPayloads(now: number, limit: number): Promise<number> {
    return this.#results.deleteExpiredPayloads(now, limit);
  }

  async claimResultDelivery(resultId: number, claim: string): Promise<TaskResultPayload | null> {
    return this.#results.claimResultDelivery(resultId, claim);
  }

  async confirmResultDelivery(resultId: number, claim: string, now: number): Promise<boolean> {
    return this.#results.confirmResultDelivery(resultId, claim, now);
  }

  async releaseResultDelivery(resultId: number, claim: string): Promise<void> {
    return this.#results.releaseResultDelivery(resultId, claim);
  }

  async createAllocation(input: NewAllocation, now: number): Promise<Allocation> {
    return this.#allocations.createAllocation(input, now);
  }

  async listAllocations(organisationId: number | null): Promise<Allocation[]> {
    return this.#allocations.listAllocations(organisationId);
  }

  async deleteAllocation(organisationId: number, allocationId: number, now: number): Promise<Allocation | null> {
    return this.#allocations.deleteAllocation(organisationId, allocationId, now);
  }

  async createExecutionToken(
    input: { allocationId: number; tokenHash: string; expiresAt: number },
    now: number,
  ): Promise<ExecutionToken> {
    return this.#allocations.createExecutionToken(input, now);
  }

  async revokeExecutionToken(organisationId: number, tokenId: number): Promise<ExecutionToken | null> {
    return this.#allocations.revokeExecutionToken(organisationId, tokenId);
  }

  async liveExecutionTokens(now: number): Promise<(ExecutionToken & { tokenHash: string })[]> {
    return this.#allocations.liveExecutionTokens(now);
  }

  async findLiveExecutionToken(tokenHash: string, now: number): Promise<ExecutionToken | null> {
    return this.#allocations.findLiveExecutionToken(tokenHash, now);
  }
}
