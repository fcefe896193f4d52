export const EXECUTION_MODES = Object.freeze(['ASYNCHRONOUS', 'REALTIME'] as const);
export type Execution = (typeof EXECUTION_MODES)[number];

export const PARAMETER_TYPES = Object.freeze([
  'STRING',
  'INTEGER',
  'NUMBER',
  'BOOLEAN',
  'DATE',
  'DATETIME',
  'LIST',
  'JSON',
] as const);
export type ParameterType = (typeof PARAMETER_TYPES)[number];

/** Task log levels, least severe first: a level's position is what the task_logs table stores. */
export const LOG_LEVELS = Object.freeze(['DEBUG', 'INFO', 'WARN', 'ERROR'] as const);
export type HandlerLogLevel = (typeof LOG_LEVELS)[number];

export interface ParameterDefinition {
  slug: string;
  name: string;
  type: ParameterType;
  optional?: boolean;
  description?: string;
  /** For STRING: the only values accepted; for LIST: the values its items may take. */
  allowedValues?: readonly string[];
  /** Values a key must be granted; listed under the action's `permissions`. */
  permissioned?: boolean;
  /** Bounds for INTEGER and NUMBER. */
  min?: number;
  max?: number;
  /** Applied when an optional parameter is absent. */
  default?: unknown;
}

export interface HandlerAccount {
  id: number;
  service: string;
  username: string;
}

/** The task a handler runs for, as it was submitted; a real-time call is a task of one attempt. */
export interface HandlerTask {
  /** The number inside the task's GraphQL ID, as Task.id and taskStatuses name it once decoded. */
  id: number;
  organisation: { id: number; name: string };
  /** The API key that submitted the task, or that created the allocation of a real-time call. */
  keyName: string;
  poll: string | null;
  session: string | null;
  user: string | null;
  target: string | null;
  /** The registered account the task runs against, as `account`; null for real-time calls. */
  source: HandlerAccount | null;
  priority: number;
  /** 1 for the first attempt; a real-time call has exactly one. */
  attempt: number;
  maxAttempts: number;
}

export interface HandlerContext<Params = Record<string, unknown>> {
  task: HandlerTask;
  /** @deprecated the same as `task.id` */
  taskId: number;
  /** @deprecated the same as `task.attempt` */
  attempt: number;
  params: Params;
  account: HandlerAccount | null;
  /**
   * Fires on cancellation, on timeout, on shutdown, and when the attempt failed on what the handler
   * put out (a result over a limit or not JSON); the run is over once it has fired.
   */
  signal: AbortSignal;
  /** A line longer than LIMITS.logLineBytes is cut; past LIMITS.attemptLogBytes, lines are dropped. */
  log(level: HandlerLogLevel, message: string): void;
  /** A fraction between 0 and 1; anything else is ignored. */
  progress(fraction: number): void;
  /**
   * Never throws: a result that breaks a limit of LIMITS, or that JSON cannot hold, fails the
   * attempt (RESULT_TOO_LARGE, TOO_MANY_RESULTS, RESULT_NOT_SERIALISABLE, INVALID_RESULT).
   */
  publish(name: string, data: unknown, contentType?: string): void;
  /** What the action's `prepare()` built, once per instance (real time) or per process (queued). */
  prepared: unknown;
}

/** What a handler returns, when not undefined, is published as the result named `result`. */
export type Handler<Params = Record<string, unknown>> = (context: HandlerContext<Params>) => unknown;

export interface ActionDefinition<Params = Record<string, unknown>> {
  slug: string;
  name: string;
  description?: string;
  execution: readonly Execution[];
  parameters: readonly ParameterDefinition[];
  requiresAccount?: boolean;
  /** Time limit of one attempt; a submit may override it. */
  timeoutSeconds?: number;
  /** Attempts when a submit does not say. */
  maxAttempts?: number;
  /**
   * The most of its queued tasks that run at once, over every worker process (a rate-limited API
   * behind it, a GPU); unset for as many as the workers' concurrency allows.
   */
  concurrency?: number;
  /**
   * Warms up what every call needs (a model, a table, a connection). Runs once per instance of an
   * allocation when it is created or the server starts, and once per process for queued tasks.
   */
  prepare?: () => unknown;
  handler: Handler<Params>;
}

export interface ServiceDefinition {
  slug: string;
  name: string;
  description?: string;
  actions: readonly ActionDefinition<any>[];
}

/**
 * What one API key may run. Per service: '*' for all of it, or per action the values the key may
 * request of its permissioned parameters (`{}` for whatever the catalog allows). Services and
 * actions that are not named are out of reach. A key without permissions may use everything.
 */
export type KeyPermissions = Record<string, '*' | Record<string, Record<string, string[]>>>;

export interface TaskFailureOptions {
  /** False when another attempt cannot help: the task fails now, whatever attempts it has left. */
  retryable?: boolean;
  cause?: unknown;
}

const TASK_FAILURE = Symbol.for('taskport.TaskFailure');

/** Thrown by a handler to fail its task with a code of its choosing. */
export class TaskFailure extends Error {
  /**
   * Recognised by a registered symbol rather than by class: a user's services may hold another
   * copy of this class (a CommonJS project compiled by tsx, a second install of Taskport).
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== TaskFailure) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as { [TASK_FAILURE]?: unknown })[TASK_FAILURE] === true;
  }

  readonly [TASK_FAILURE] = true;
  override name = 'TaskFailure';
  readonly retryable: boolean;
  /** `options` may also be the retryable flag alone, as in `new TaskFailure(code, message, false)`. */
  constructor(
    readonly code: string,
    message: string,
    options: TaskFailureOptions | boolean = {},
  ) {
    const given = typeof options === 'object' && options !== null ? options : { retryable: options };
    super(message, 'cause' in given ? { cause: given.cause } : undefined);
    this.retryable = given.retryable !== false;
  }
}

/**
 * The value a handler receives for a parameter once the catalog has checked it: checkParams
 * passes JSON values through as they came, so DATE and DATETIME stay ISO strings.
 */
type ValueOf<P extends ParameterDefinition> = P['type'] extends 'STRING'
  ? AllowedValue<P>
  : P['type'] extends 'INTEGER' | 'NUMBER'
    ? number
    : P['type'] extends 'BOOLEAN'
      ? boolean
      : P['type'] extends 'DATE' | 'DATETIME'
        ? string
        : P['type'] extends 'LIST'
          ? AllowedValue<P>[]
          : unknown;

type AllowedValue<P extends ParameterDefinition> = P extends { allowedValues: readonly (infer Value extends string)[] }
  ? Value
  : string;

/** Present after checkParams: required, or optional with a default that it fills in. */
type AlwaysPresent<P extends ParameterDefinition> = P extends { optional: false }
  ? true
  : P extends { optional: boolean }
    ? P extends { default: infer Default }
      ? undefined extends Default
        ? false
        : true
      : false
    : true;

type Flatten<T> = { [Key in keyof T]: T[Key] } & {};

/**
 * The `params` of a handler, typed from the action's parameter list: `defineAction` infers it, so
 * that a handler cannot read a parameter the action does not have or misuse its type.
 */
export type ParamsOf<Parameters extends readonly ParameterDefinition[]> = string extends Parameters[number]['slug']
  ? Record<string, unknown>
  : Flatten<
      { [P in Parameters[number] as AlwaysPresent<P> extends true ? P['slug'] : never]: ValueOf<P> } & {
        [P in Parameters[number] as AlwaysPresent<P> extends true ? never : P['slug']]?: ValueOf<P> | undefined;
      }
    >;

/** An action as written: its handler's `params` follow from `parameters`. */
export type ActionInput<Parameters extends readonly ParameterDefinition[]> = Omit<
  ActionDefinition<ParamsOf<Parameters>>,
  'parameters'
> & { parameters: Parameters };

export function defineAction<const Parameters extends readonly ParameterDefinition[]>(
  action: ActionInput<Parameters>,
): ActionDefinition<ParamsOf<Parameters>> {
  return action;
}

export function defineService(service: ServiceDefinition): ServiceDefinition {
  return service;
}
