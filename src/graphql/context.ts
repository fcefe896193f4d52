import DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import { MAX_DEPENDENTS_LISTED, type TaskEngine, type Viewer } from '../domain/api.js';
import type { AllocationStatus } from '../domain/realtime.js';
import type { Account, Actor, ApiKey, LogLevel, Page, PageRequest, Task, TaskLog, TaskResult } from '../domain/types.js';

export interface Loaders {
  tasks: DataLoader<number, Task | null>;
  apiKeys: DataLoader<number, ApiKey | null>;
  accounts: DataLoader<number, Account | null>;
  results: DataLoader<number, TaskResult | null>;
  /** Null for other organisations' allocations, deleted ones, and for keys that are not ADMIN. */
  allocations: DataLoader<number, AllocationStatus | null>;
  /** Null for tasks that are not PENDING. */
  queuePositions: DataLoader<number, number | null>;
  taskResults: DataLoader<number, TaskResult[]>;
  dependencies: DataLoader<number, number[]>;
  dependents: DataLoader<number, number[]>;
  /** Pages of logs: the logs field of every task in a list is one read per distinct page request. */
  taskLogs: DataLoader<TaskLogsKey, Page<TaskLog>, string>;
}

export interface TaskLogsKey {
  taskId: number;
  minLevel: LogLevel | null;
  page: PageRequest;
}

const pageRequestKey = ({ minLevel, page }: TaskLogsKey) => `${minLevel}/${page.first}/${page.afterId}`;

async function loadTaskLogs(engine: TaskEngine, keys: readonly TaskLogsKey[]): Promise<Page<TaskLog>[]> {
  const byRequest = new Map<string, TaskLogsKey[]>();
  for (const key of keys) {
    const sameRequest = byRequest.get(pageRequestKey(key));
    if (sameRequest) sameRequest.push(key);
    else byRequest.set(pageRequestKey(key), [key]);
  }
  const pages = new Map<string, Map<number, Page<TaskLog>>>();
  await Promise.all(
    [...byRequest].map(async ([request, [first, ...rest]]) => {
      const taskIds = [first!, ...rest].map((key) => key.taskId);
      pages.set(request, await engine.taskLogs(taskIds, first!.minLevel, first!.page));
    }),
  );
  return keys.map((key) => pages.get(pageRequestKey(key))!.get(key.taskId)!);
}

export interface GraphQLContext {
  engine: TaskEngine;
  viewer: Viewer | null;
  actor: Actor | null;
  loaders: Loaders;
  /** A subscription lives for many events and must not answer from what it loaded for an earlier one. */
  refreshLoaders(this: GraphQLContext): void;
  /** Aborted when the server shuts down, so that open subscriptions complete instead of being cut. */
  shutdownSignal: AbortSignal;
  /** Where clients reach this server (scheme, host, port): execution URLs start with it. */
  origin: string;
  /**
   * Resolves true once what the transport has taken so far has been written to the connection
   * (handed to the operating system), false when the connection is gone.
   */
  connectionFlushed(): Promise<boolean>;
}

function actorOf(viewer: Viewer): Actor {
  return {
    organisationId: viewer.organisation.id,
    keyId: viewer.key.id,
    role: viewer.key.role,
    permissions: viewer.key.permissions,
    organisation: viewer.organisation,
  };
}

// Only introspection runs without a key, and it never reaches a resolver that needs one.
function keyRequired(): GraphQLError {
  return new GraphQLError('An API key is required', {
    extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } },
  });
}

export function requireActor(context: Pick<GraphQLContext, 'actor'>): Actor {
  if (!context.actor) throw keyRequired();
  return context.actor;
}

export function requireViewer(context: Pick<GraphQLContext, 'viewer'>): Viewer {
  if (!context.viewer) throw keyRequired();
  return context.viewer;
}

function fromMap<V>(map: Map<number, V>, ids: readonly number[], missing: V): V[] {
  return ids.map((id) => map.get(id) ?? missing);
}

function createLoaders(engine: TaskEngine, actor: Actor | null): Loaders {
  const asActor = () => requireActor({ actor });
  return {
    tasks: new DataLoader((ids) => engine.getTasks(asActor(), ids)),
    apiKeys: new DataLoader((ids) => engine.getApiKeys(asActor(), ids)),
    accounts: new DataLoader((ids) => engine.getAccounts(asActor(), ids)),
    results: new DataLoader((ids) => engine.getResults(asActor(), ids)),
    allocations: new DataLoader(async (ids) =>
      asActor().role === 'ADMIN' ? engine.getAllocations(asActor(), ids) : ids.map(() => null),
    ),
    queuePositions: new DataLoader(async (ids) => fromMap(await engine.queuePositions(ids), ids, null)),
    taskResults: new DataLoader(async (ids) => fromMap(await engine.taskResults(ids), ids, [])),
    dependencies: new DataLoader(async (ids) => fromMap(await engine.dependencies(ids), ids, [])),
    dependents: new DataLoader((ids) => Promise.all(ids.map((id) => engine.dependents(id, MAX_DEPENDENTS_LISTED)))),
    taskLogs: new DataLoader((keys) => loadTaskLogs(engine, keys), {
      cacheKeyFn: (key) => `${key.taskId}/${pageRequestKey(key)}`,
    }),
  };
}

/** What the transport knows of one operation's connection. */
export type ConnectionContext = Pick<GraphQLContext, 'shutdownSignal' | 'origin' | 'connectionFlushed'>;

export function createContext(engine: TaskEngine, viewer: Viewer | null, connection: ConnectionContext): GraphQLContext {
  const actor = viewer ? actorOf(viewer) : null;
  return {
    engine,
    viewer,
    actor,
    ...connection,
    loaders: createLoaders(engine, actor),
    // Through `this`: yoga copies these properties into the context that resolvers see.
    refreshLoaders(this: GraphQLContext) {
      this.loaders = createLoaders(engine, actor);
    },
  };
}
