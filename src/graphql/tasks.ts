import { GraphQLError } from 'graphql';
import { MAX_DEPENDENTS_LISTED, MAX_FILTER_IDS, MAX_RETRIEVAL_KEY_LENGTH, MAX_STATUS_IDS, RESULT_RETRY_WINDOW_MS } from '../domain/api.js';
import { ConflictError, LimitExceededError, NotFoundError, ValidationError } from '../domain/errors.js';
import {
  LOG_LEVELS,
  QUEUE_STATUSES,
  queueStatusOf,
  TASK_STATES,
  TASK_WAITING_FOR,
  type SubmitTaskInput,
  type Task,
  type TaskFilter,
  type TaskLog,
  type TaskResult,
  type TaskStatus,
} from '../domain/types.js';
import { AccountRef } from './accounts.js';
import { AllocationRef } from './allocations.js';
import { ExecutionEnum } from './catalog.js';
import { builder, describedValues } from './builder.js';
import { requireActor } from './context.js';
import { decodeId, emptyConnection, pageRequest, toConnection } from './ids.js';
import { ApiKeyRef, RetrievalProtocolEnum } from './keys.js';
import { inTurns } from './turns.js';
import { TaskWebhookInputRef } from './webhook-inputs.js';

export const TaskStateEnum = builder.enumType('TaskState', {
  values: describedValues(TASK_STATES, {
    PENDING: 'Created, waiting in the queue.',
    SUSPENDED: 'Waiting for the tasks it depends on.',
    PROCESSING: 'A worker is running it.',
  }),
});

const QueueStatusEnum = builder.enumType('QueueStatus', {
  description: 'The queue view of a task state: IN_QUEUE is PENDING or SUSPENDED, IN_PROGRESS is PROCESSING, COMPLETED is any terminal state.',
  values: QUEUE_STATUSES,
});

const TaskWaitingForEnum = builder.enumType('TaskWaitingFor', {
  description: 'Why a PENDING task is not claimed, besides waiting for its turn.',
  values: describedValues(TASK_WAITING_FOR, {
    NO_WORKER:
      "No worker has the task's action: a start without its module. It stays PENDING, unclaimed, and runs once a server that has the action starts.",
  }),
});

const LogLevelEnum = builder.enumType('LogLevel', { values: LOG_LEVELS });

export const TaskErrorRef = builder.simpleObject('TaskError', {
  fields: (t) => ({
    code: t.string(),
    message: t.string(),
  }),
});

export const TaskResultRef = builder.objectRef<TaskResult>('TaskResult');

builder.node(TaskResultRef, {
  description: 'Metadata of a result; the payload comes from retrieveResults or, on the CHANNEL protocol, taskEvents.',
  id: { resolve: (result) => result.id },
  fields: (t) => ({
    name: t.exposeString('name'),
    contentType: t.exposeString('contentType'),
    size: t.exposeInt('size'),
    retrieved: t.exposeBoolean('retrieved'),
    dateCreated: t.expose('dateCreated', { type: 'DateTime' }),
  }),
});

export const TaskResultPayloadRef = builder.simpleObject('TaskResultPayload', {
  fields: (t) => ({
    result: t.field({ type: TaskResultRef }),
    data: t.field({ type: 'JSON' }),
  }),
});

export const TaskLogRef = builder.objectRef<TaskLog>('TaskLog').implement({
  fields: (t) => ({
    message: t.exposeString('message'),
    level: t.expose('level', { type: LogLevelEnum }),
    source: t.exposeString('source'),
    timestamp: t.expose('timestamp', { type: 'DateTime' }),
  }),
});

const TaskLogConnection = builder.connectionObject({ type: TaskLogRef, name: 'TaskLogConnection' }, { name: 'TaskLogEdge' });

export const TaskRef = builder.objectRef<Task>('Task');

builder.node(TaskRef, {
  id: { resolve: (task) => task.id },
  fields: (t) => ({
    key: t.field({
      type: ApiKeyRef,
      description: 'The key that submitted it; of another key, a MEMBER key may read only id and name.',
      resolve: (task, _args, context) => loadExisting(context.loaders.apiKeys.load(task.keyId), 'ApiKey', task.keyId),
    }),
    user: t.exposeString('user', { nullable: true, description: 'The end-user tag given at submit.' }),
    source: t.field({
      type: AccountRef,
      nullable: true,
      description: 'The registered account the task runs against.',
      resolve: (task, _args, context) => (task.sourceId === null ? null : context.loaders.accounts.load(task.sourceId)),
    }),
    sourceType: t.exposeString('sourceType', { nullable: true, description: 'The service of the source account.' }),
    session: t.exposeString('session', { nullable: true }),
    poll: t.exposeString('poll', { nullable: true, description: 'The batch this task was submitted in.' }),
    service: t.exposeString('service'),
    type: t.exposeString('type', { description: 'The action slug.' }),
    target: t.exposeString('target', { nullable: true }),
    params: t.field({ type: 'JSON', resolve: (task) => task.params }),
    state: t.expose('state', { type: TaskStateEnum }),
    status: t.field({ type: QueueStatusEnum, resolve: (task) => queueStatusOf(task.state) }),
    queuePosition: t.int({
      nullable: true,
      description:
        '0-based place among the PENDING tasks of its queue (the tasks of its action); null when not PENDING. ' +
        'A task waiting for NO_WORKER keeps its place, and its queue moves once a worker has the action again.',
      resolve: (task, _args, context) => (task.state === 'PENDING' ? context.loaders.queuePositions.load(task.id) : null),
    }),
    waitingFor: t.field({
      type: TaskWaitingForEnum,
      nullable: true,
      description:
        'NO_WORKER when the task is PENDING and its action is not in the catalog of this server, the only workers it knows of today; ' +
        'null otherwise, and for a task that only waits for its turn or its runAt.',
      resolve: (task, _args, context) => context.engine.waitingFor(task),
    }),
    priority: t.exposeInt('priority'),
    attempts: t.exposeInt('attempts'),
    maxAttempts: t.exposeInt('maxAttempts'),
    progress: t.exposeFloat('progress', { nullable: true, description: 'Between 0 and 1, as reported by the handler.' }),
    error: t.field({
      type: TaskErrorRef,
      nullable: true,
      description: 'Set when FAILED, or CANCELLED with a reason.',
      resolve: (task) => task.error,
    }),
    results: t.field({
      type: [TaskResultRef],
      description: 'Metadata only; payloads come from retrieveResults or the CHANNEL protocol.',
      resolve: (task, _args, context) => context.loaders.taskResults.load(task.id),
    }),
    resultRetrieved: t.exposeBoolean('resultRetrieved'),
    retrievalProtocol: t.expose('retrievalProtocol', { type: RetrievalProtocolEnum }),
    logs: t.field({
      type: TaskLogConnection,
      description: 'Oldest first.',
      args: {
        first: t.arg.int(),
        after: t.arg.string(),
        minLevel: t.arg({ type: LogLevelEnum }),
      },
      resolve: async (task, { minLevel, ...page }, context) => {
        const request = pageRequest(page);
        const logs = await context.loaders.taskLogs.load({ taskId: task.id, minLevel: minLevel ?? null, page: request });
        return toConnection(logs, request);
      },
    }),
    dependsOn: t.field({
      type: [TaskRef],
      resolve: async (task, _args, context) => {
        const ids = await context.loaders.dependencies.load(task.id);
        const tasks = await Promise.all(ids.map((id) => context.loaders.tasks.load(id)));
        return tasks.filter((dependency) => dependency !== null);
      },
    }),
    dependents: t.field({
      type: [TaskRef],
      description: `The tasks that wait for it (that name it in dependsOn), oldest first; the first ${MAX_DEPENDENTS_LISTED}.`,
      resolve: async (task, _args, context) => {
        const ids = await context.loaders.dependents.load(task.id);
        const tasks = await Promise.all(ids.map((id) => context.loaders.tasks.load(id)));
        return tasks.filter((dependent) => dependent !== null);
      },
    }),
    execution: t.expose('execution', {
      type: ExecutionEnum,
      description: 'REALTIME for a call to an execution URL, recorded once it was answered.',
    }),
    allocation: t.field({
      type: AllocationRef,
      nullable: true,
      description: 'For REALTIME tasks: the allocation that ran it (null for keys that are not ADMIN).',
      resolve: (task, _args, context) =>
        task.allocationId === null ? null : context.loaders.allocations.load(task.allocationId),
    }),
    runAt: t.expose('runAt', { type: 'DateTime', nullable: true, description: 'Not before this time.' }),
    dateCreated: t.expose('dateCreated', { type: 'DateTime' }),
    dateStarted: t.expose('dateStarted', { type: 'DateTime', nullable: true }),
    dateCompleted: t.expose('dateCompleted', { type: 'DateTime', nullable: true }),
  }),
});

/** For references that cannot dangle (keys are revoked, never deleted): a miss is a bug, not a null. */
export async function loadExisting<T>(loading: Promise<T | null>, typename: string, id: number): Promise<T> {
  const value = await loading;
  if (value === null) throw new Error(`${typename} ${id} is missing`);
  return value;
}

const TaskConnection = builder.connectionObject({ type: TaskRef, name: 'TaskConnection' }, { name: 'TaskEdge' });

/** A task's status, keyed by the id exactly as it was asked for. */
type TaskStatusEntry = Omit<TaskStatus, 'id'> & { id: string };

// Up to 10,000 of these resolve per request: every field reads a property and nothing more.
const TaskStatusRef = builder.objectRef<TaskStatusEntry>('TaskStatus').implement({
  description: 'One entry per requested id, in the order asked.',
  fields: (t) => ({
    id: t.exposeID('id'),
    found: t.exposeBoolean('found', { description: "False for unknown ids and for other organisations' ids." }),
    state: t.expose('state', { type: TaskStateEnum, nullable: true }),
    status: t.field({
      type: QueueStatusEnum,
      nullable: true,
      resolve: (status) => (status.state === null ? null : queueStatusOf(status.state)),
    }),
    queuePosition: t.exposeInt('queuePosition', { nullable: true }),
    resultRetrieved: t.exposeBoolean('resultRetrieved', { nullable: true }),
    retrievalProtocol: t.expose('retrievalProtocol', { type: RetrievalProtocolEnum, nullable: true }),
    error: t.expose('error', { type: TaskErrorRef, nullable: true }),
  }),
});

const DateTimeFilter = builder.inputType('DateTimeFilter', {
  fields: (t) => ({
    gt: t.field({ type: 'DateTime' }),
    gte: t.field({ type: 'DateTime' }),
    lt: t.field({ type: 'DateTime' }),
    lte: t.field({ type: 'DateTime' }),
  }),
});

export const TaskFilterInput = builder.inputType('TaskFilter', {
  description: 'All given conditions must hold.',
  fields: (t) => ({
    ids: t.idList({
      description: `Any of these tasks, up to ${MAX_FILTER_IDS.toLocaleString('en')}. Unlike an empty state list, an empty list selects nothing.`,
    }),
    key: t.id({ description: 'The submitting API key.' }),
    user: t.string(),
    source: t.id({ description: 'The account the task runs against.' }),
    session: t.string(),
    poll: t.string(),
    idempotencyKey: t.string({ description: 'The idempotencyKey given at submission.' }),
    sourceType: t.string(),
    service: t.string(),
    type: t.string(),
    state: t.field({ type: [TaskStateEnum], description: 'Any of these states.' }),
    dateCreated: t.field({ type: DateTimeFilter }),
    dateStarted: t.field({ type: DateTimeFilter }),
    dateCompleted: t.field({ type: DateTimeFilter }),
  }),
});

/**
 * The engine's filter, or null when it names a key or account by an id that cannot exist, which
 * nothing matches.
 */
export function toEngineFilter(input: typeof TaskFilterInput.$inferInput | null | undefined): TaskFilter | null {
  if (!input) return {};
  const { key, source, ids, ...conditions } = input;
  const keyId = key == null ? null : decodeId(String(key), 'ApiKey');
  const sourceId = source == null ? null : decodeId(String(source), 'Account');
  if ((key != null && keyId === null) || (source != null && sourceId === null)) return null;
  if (ids == null) return { ...conditions, keyId, sourceId };
  // Ids that cannot be a task match no task; a list of none of them matches nothing.
  const id = ids.map((taskId) => decodeId(String(taskId), 'Task')).filter((taskId) => taskId !== null);
  return id.length === 0 ? null : { ...conditions, keyId, sourceId, id };
}

const SubmitTaskInputRef = builder.inputType('SubmitTaskInput', {
  fields: (t) => ({
    service: t.string({ required: true }),
    action: t.string({ required: true }),
    account: t.string({ description: 'Username of a registered account, when the action requires one.' }),
    params: t.field({ type: 'JSON', description: 'Values keyed by parameter slug.' }),
    priority: t.int({ description: 'Higher runs first; default 0.' }),
    runAt: t.field({ type: 'DateTime', description: 'Not before this time.' }),
    dependsOn: t.idList({ description: 'The task stays SUSPENDED until these succeed.' }),
    idempotencyKey: t.string({ description: 'A repeat with the same key returns the first task.' }),
    maxAttempts: t.int(),
    timeoutSeconds: t.int({ description: "Time limit of one attempt; defaults to the action's." }),
    user: t.string(),
    session: t.string(),
    poll: t.string(),
    target: t.string(),
    webhook: t.field({
      type: TaskWebhookInputRef,
      description: "A URL told of the task's events, signed with the organisation's webhookSigningSecret.",
    }),
  }),
});

function toSubmitInput(
  { dependsOn, ...input }: typeof SubmitTaskInputRef.$inferInput,
  index: number | null,
): SubmitTaskInput {
  const dependencyIds = dependsOn?.map((id) => {
    const taskId = decodeId(String(id), 'Task');
    if (taskId === null) throw new ValidationError('INVALID', `dependsOn: ${id} is not a task id`, 'dependsOn', index);
    return taskId;
  });
  return { ...input, dependsOn: dependencyIds ?? null };
}

const SubmitTaskSuccess = builder.simpleObject('SubmitTaskSuccess', {
  fields: (t) => ({ task: t.field({ type: TaskRef }) }),
});

const SubmitTasksSuccess = builder.simpleObject('SubmitTasksSuccess', {
  fields: (t) => ({
    tasks: t.field({ type: [TaskRef] }),
    poll: t.string({ description: 'Shared by every task of the batch.' }),
  }),
});

const CancelTaskSuccess = builder.simpleObject('CancelTaskSuccess', {
  fields: (t) => ({ task: t.field({ type: TaskRef }) }),
});

const RetrieveResultsSuccess = builder.simpleObject('RetrieveResultsSuccess', {
  fields: (t) => ({ results: t.field({ type: [TaskResultPayloadRef] }) }),
});

builder.queryFields((t) => ({
  task: t.field({
    type: TaskRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, context) => {
      const taskId = decodeId(String(id), 'Task');
      return taskId === null ? null : context.loaders.tasks.load(taskId);
    },
  }),
  tasks: t.field({
    type: TaskConnection,
    description: 'Newest first.',
    args: {
      filter: t.arg({ type: TaskFilterInput }),
      first: t.arg.int(),
      after: t.arg.string(),
    },
    resolve: async (_root, { filter, ...page }, context) => {
      const request = pageRequest(page);
      const engineFilter = toEngineFilter(filter);
      if (engineFilter === null) return emptyConnection<Task>();
      return toConnection(await context.engine.listTasks(requireActor(context), engineFilter, request), request);
    },
  }),
  taskStatuses: t.field({
    type: [TaskStatusRef],
    description:
      `One entry per id, in order; up to ${MAX_STATUS_IDS.toLocaleString('en')} ids. Each entry is read whole at one moment, ` +
      'and a queuePosition only beside the state PENDING; on SQLite the ids are read 1,000 at a time, so entries of ' +
      'different thousands may reflect moments a few milliseconds apart.',
    args: { ids: t.arg.idList({ required: true }) },
    resolve: async (_root, { ids }, context) => {
      if (ids.length > MAX_STATUS_IDS) {
        throw new GraphQLError(`taskStatuses takes at most ${MAX_STATUS_IDS} ids; ${ids.length} were given`, {
          extensions: { code: 'LIMIT_EXCEEDED', limit: MAX_STATUS_IDS },
        });
      }
      const requested = ids.map(String);
      const taskIds = requested.map((id) => decodeId(id, 'Task'));
      const statuses = await context.engine.taskStatuses(requireActor(context), taskIds);
      // Literals rather than spreads: for 10,000 entries the spreads took longer than decoding the ids.
      const entries = statuses.map(
        (status, index): TaskStatusEntry => ({
          id: requested[index]!,
          found: status.found,
          state: status.state,
          queuePosition: status.queuePosition,
          resultRetrieved: status.resultRetrieved,
          retrievalProtocol: status.retrievalProtocol,
          error: status.error,
        }),
      );
      return inTurns(entries, COMPLETION_CHUNK);
    },
  }),
}));

/** Entries of a list that graphql-js completes in one turn of the event loop. */
const COMPLETION_CHUNK = 1_000;

builder.mutationFields((t) => ({
  submitTask: t.field({
    type: SubmitTaskSuccess,
    args: { input: t.arg({ type: SubmitTaskInputRef, required: true }) },
    errors: { types: [ValidationError, NotFoundError], directResult: true, union: { name: 'SubmitTaskResult' } },
    resolve: async (_root, { input }, context) => ({
      task: await context.engine.submitTask(requireActor(context), toSubmitInput(input, null)),
    }),
  }),
  submitTasks: t.field({
    type: SubmitTasksSuccess,
    description: 'Up to 1,000 inputs, all or nothing; the tasks share one poll.',
    args: { inputs: t.arg({ type: [SubmitTaskInputRef], required: true }) },
    errors: {
      types: [ValidationError, NotFoundError, LimitExceededError],
      directResult: true,
      union: { name: 'SubmitTasksResult' },
    },
    resolve: (_root, { inputs }, context) =>
      context.engine.submitTasks(
        requireActor(context),
        inputs.map((input, index) => toSubmitInput(input, index)),
      ),
  }),
  cancelTask: t.field({
    type: CancelTaskSuccess,
    description: "PENDING and SUSPENDED tasks end at once; a PROCESSING task's handler is told to stop.",
    args: { id: t.arg.id({ required: true }) },
    errors: { types: [NotFoundError, ConflictError], directResult: true, union: { name: 'CancelTaskResult' } },
    resolve: async (_root, { id }, context) => {
      const taskId = decodeId(String(id), 'Task');
      if (taskId === null) throw new NotFoundError(`No task ${id}`);
      return { task: await context.engine.cancelTask(requireActor(context), taskId) };
    },
  }),
  retrieveResults: t.field({
    type: RetrieveResultsSuccess,
    description:
      'The payloads of a finished task, once; afterwards resultRetrieved is true and any other retrieval gets ALREADY_RETRIEVED. ' +
      `With a retrievalKey, a retry that repeats the key within ${RESULT_RETRY_WINDOW_MS / 60_000} minutes of the first retrieval ` +
      'gets the same payloads again (for when the answer was lost with the connection); they are deleted when that window ends. ' +
      'Without a key the payloads are deleted as the answer is made: an answer that never arrives loses them. ' +
      'On the CHANNEL protocol it returns what no taskEvents subscriber had been sent.',
    args: {
      taskId: t.arg.id({ required: true }),
      retrievalKey: t.arg.string({
        description: `Chosen by the client (e.g. a UUID), 1 to ${MAX_RETRIEVAL_KEY_LENGTH} characters; send the same one when retrying.`,
      }),
    },
    errors: {
      types: [NotFoundError, ConflictError, ValidationError],
      directResult: true,
      union: { name: 'RetrieveResultsResult' },
    },
    resolve: async (_root, { taskId, retrievalKey }, context) => {
      const id = decodeId(String(taskId), 'Task');
      if (id === null) throw new NotFoundError(`No task ${taskId}`);
      return { results: await context.engine.retrieveResults(requireActor(context), id, retrievalKey ?? null) };
    },
  }),
}));
