/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  query Viewer {\n    viewer {\n      organisation\n      key {\n        name\n        role\n      }\n    }\n  }\n": typeof types.ViewerDocument,
    "\n  query Overview($since: DateTime!, $bucketSeconds: Int!, $admin: Boolean!) {\n    taskThroughput(since: $since, bucketSeconds: $bucketSeconds) {\n      __typename\n      ... on TaskThroughputSuccess {\n        buckets {\n          start\n          succeeded\n          failed\n          cancelled\n        }\n      }\n      ... on ValidationError {\n        message\n      }\n    }\n    allocations @include(if: $admin) {\n      id\n      name\n      service\n      action\n      instances\n      busy\n      executions\n      dateCreated\n    }\n    taskCounts(filter: {}) {\n      pending\n      suspended\n      processing\n      succeeded\n      failed\n      cancelled\n      total\n    }\n    queueStats {\n      service\n      action\n      pending\n      processing\n      suspended\n      oldestPendingDate\n      finishedLastMinute {\n        ...FinishedCountsFields\n      }\n      finishedLast5Minutes {\n        ...FinishedCountsFields\n      }\n      finishedLast15Minutes {\n        ...FinishedCountsFields\n      }\n    }\n  }\n\n  fragment FinishedCountsFields on FinishedCounts {\n    succeeded\n    failed\n    cancelled\n    total\n  }\n": typeof types.OverviewDocument,
    "\n  fragment TaskDetailFields on Task {\n    id\n    service\n    type\n    state\n    status\n    attempts\n    maxAttempts\n    retries\n    priority\n    queuePosition\n    waitingFor\n    runAt\n    progress\n    dateCreated\n    dateStarted\n    dateCompleted\n    params\n    poll\n    session\n    user\n    target\n    execution\n    retrievalProtocol\n    resultRetrieved\n    scheduledFor\n    schedule {\n      id\n      name\n    }\n    key {\n      id\n      name\n    }\n    error {\n      code\n      message\n    }\n    results {\n      id\n      name\n      contentType\n      size\n      dateCreated\n      retrieved\n    }\n    retryHistory {\n      attempts\n      state\n      dateStarted\n      dateCompleted\n      dateRetried\n      error {\n        code\n        message\n      }\n      retriedBy {\n        id\n        name\n      }\n    }\n    dependsOn {\n      id\n      service\n      type\n      state\n    }\n    dependents {\n      id\n      service\n      type\n      state\n    }\n  }\n": typeof types.TaskDetailFieldsFragmentDoc,
    "\n  query TaskDetail($id: ID!) {\n    task(id: $id) {\n      ...TaskDetailFields\n    }\n  }\n": typeof types.TaskDetailDocument,
    "\n  subscription TaskDetailUpdated($id: ID!) {\n    taskUpdated(id: $id) {\n      ...TaskDetailFields\n    }\n  }\n": typeof types.TaskDetailUpdatedDocument,
    "\n  query Tasks($filter: TaskFilter, $first: Int, $after: String) {\n    tasks(filter: $filter, first: $first, after: $after) {\n      edges {\n        node {\n          id\n          state\n        }\n      }\n    }\n  }\n": typeof types.TasksDocument,
    "\n  mutation TaskDetailCancel($id: ID!) {\n    cancelTask(id: $id) {\n      __typename\n      ... on CancelTaskSuccess {\n        task {\n          ...TaskDetailFields\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": typeof types.TaskDetailCancelDocument,
    "\n  mutation TaskDetailRetry($id: ID!) {\n    retryTask(id: $id) {\n      __typename\n      ... on RetryTaskSuccess {\n        task {\n          ...TaskDetailFields\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": typeof types.TaskDetailRetryDocument,
    "\n  query TaskDetailLogs($id: ID!, $minLevel: LogLevel, $first: Int, $after: String) {\n    task(id: $id) {\n      id\n      logs(minLevel: $minLevel, first: $first, after: $after) {\n        edges {\n          cursor\n          node {\n            timestamp\n            level\n            source\n            message\n          }\n        }\n        pageInfo {\n          endCursor\n          hasNextPage\n        }\n      }\n    }\n  }\n": typeof types.TaskDetailLogsDocument,
};
const documents: Documents = {
    "\n  query Viewer {\n    viewer {\n      organisation\n      key {\n        name\n        role\n      }\n    }\n  }\n": types.ViewerDocument,
    "\n  query Overview($since: DateTime!, $bucketSeconds: Int!, $admin: Boolean!) {\n    taskThroughput(since: $since, bucketSeconds: $bucketSeconds) {\n      __typename\n      ... on TaskThroughputSuccess {\n        buckets {\n          start\n          succeeded\n          failed\n          cancelled\n        }\n      }\n      ... on ValidationError {\n        message\n      }\n    }\n    allocations @include(if: $admin) {\n      id\n      name\n      service\n      action\n      instances\n      busy\n      executions\n      dateCreated\n    }\n    taskCounts(filter: {}) {\n      pending\n      suspended\n      processing\n      succeeded\n      failed\n      cancelled\n      total\n    }\n    queueStats {\n      service\n      action\n      pending\n      processing\n      suspended\n      oldestPendingDate\n      finishedLastMinute {\n        ...FinishedCountsFields\n      }\n      finishedLast5Minutes {\n        ...FinishedCountsFields\n      }\n      finishedLast15Minutes {\n        ...FinishedCountsFields\n      }\n    }\n  }\n\n  fragment FinishedCountsFields on FinishedCounts {\n    succeeded\n    failed\n    cancelled\n    total\n  }\n": types.OverviewDocument,
    "\n  fragment TaskDetailFields on Task {\n    id\n    service\n    type\n    state\n    status\n    attempts\n    maxAttempts\n    retries\n    priority\n    queuePosition\n    waitingFor\n    runAt\n    progress\n    dateCreated\n    dateStarted\n    dateCompleted\n    params\n    poll\n    session\n    user\n    target\n    execution\n    retrievalProtocol\n    resultRetrieved\n    scheduledFor\n    schedule {\n      id\n      name\n    }\n    key {\n      id\n      name\n    }\n    error {\n      code\n      message\n    }\n    results {\n      id\n      name\n      contentType\n      size\n      dateCreated\n      retrieved\n    }\n    retryHistory {\n      attempts\n      state\n      dateStarted\n      dateCompleted\n      dateRetried\n      error {\n        code\n        message\n      }\n      retriedBy {\n        id\n        name\n      }\n    }\n    dependsOn {\n      id\n      service\n      type\n      state\n    }\n    dependents {\n      id\n      service\n      type\n      state\n    }\n  }\n": types.TaskDetailFieldsFragmentDoc,
    "\n  query TaskDetail($id: ID!) {\n    task(id: $id) {\n      ...TaskDetailFields\n    }\n  }\n": types.TaskDetailDocument,
    "\n  subscription TaskDetailUpdated($id: ID!) {\n    taskUpdated(id: $id) {\n      ...TaskDetailFields\n    }\n  }\n": types.TaskDetailUpdatedDocument,
    "\n  query Tasks($filter: TaskFilter, $first: Int, $after: String) {\n    tasks(filter: $filter, first: $first, after: $after) {\n      edges {\n        node {\n          id\n          state\n        }\n      }\n    }\n  }\n": types.TasksDocument,
    "\n  mutation TaskDetailCancel($id: ID!) {\n    cancelTask(id: $id) {\n      __typename\n      ... on CancelTaskSuccess {\n        task {\n          ...TaskDetailFields\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": types.TaskDetailCancelDocument,
    "\n  mutation TaskDetailRetry($id: ID!) {\n    retryTask(id: $id) {\n      __typename\n      ... on RetryTaskSuccess {\n        task {\n          ...TaskDetailFields\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n": types.TaskDetailRetryDocument,
    "\n  query TaskDetailLogs($id: ID!, $minLevel: LogLevel, $first: Int, $after: String) {\n    task(id: $id) {\n      id\n      logs(minLevel: $minLevel, first: $first, after: $after) {\n        edges {\n          cursor\n          node {\n            timestamp\n            level\n            source\n            message\n          }\n        }\n        pageInfo {\n          endCursor\n          hasNextPage\n        }\n      }\n    }\n  }\n": types.TaskDetailLogsDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Viewer {\n    viewer {\n      organisation\n      key {\n        name\n        role\n      }\n    }\n  }\n"): (typeof documents)["\n  query Viewer {\n    viewer {\n      organisation\n      key {\n        name\n        role\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Overview($since: DateTime!, $bucketSeconds: Int!, $admin: Boolean!) {\n    taskThroughput(since: $since, bucketSeconds: $bucketSeconds) {\n      __typename\n      ... on TaskThroughputSuccess {\n        buckets {\n          start\n          succeeded\n          failed\n          cancelled\n        }\n      }\n      ... on ValidationError {\n        message\n      }\n    }\n    allocations @include(if: $admin) {\n      id\n      name\n      service\n      action\n      instances\n      busy\n      executions\n      dateCreated\n    }\n    taskCounts(filter: {}) {\n      pending\n      suspended\n      processing\n      succeeded\n      failed\n      cancelled\n      total\n    }\n    queueStats {\n      service\n      action\n      pending\n      processing\n      suspended\n      oldestPendingDate\n      finishedLastMinute {\n        ...FinishedCountsFields\n      }\n      finishedLast5Minutes {\n        ...FinishedCountsFields\n      }\n      finishedLast15Minutes {\n        ...FinishedCountsFields\n      }\n    }\n  }\n\n  fragment FinishedCountsFields on FinishedCounts {\n    succeeded\n    failed\n    cancelled\n    total\n  }\n"): (typeof documents)["\n  query Overview($since: DateTime!, $bucketSeconds: Int!, $admin: Boolean!) {\n    taskThroughput(since: $since, bucketSeconds: $bucketSeconds) {\n      __typename\n      ... on TaskThroughputSuccess {\n        buckets {\n          start\n          succeeded\n          failed\n          cancelled\n        }\n      }\n      ... on ValidationError {\n        message\n      }\n    }\n    allocations @include(if: $admin) {\n      id\n      name\n      service\n      action\n      instances\n      busy\n      executions\n      dateCreated\n    }\n    taskCounts(filter: {}) {\n      pending\n      suspended\n      processing\n      succeeded\n      failed\n      cancelled\n      total\n    }\n    queueStats {\n      service\n      action\n      pending\n      processing\n      suspended\n      oldestPendingDate\n      finishedLastMinute {\n        ...FinishedCountsFields\n      }\n      finishedLast5Minutes {\n        ...FinishedCountsFields\n      }\n      finishedLast15Minutes {\n        ...FinishedCountsFields\n      }\n    }\n  }\n\n  fragment FinishedCountsFields on FinishedCounts {\n    succeeded\n    failed\n    cancelled\n    total\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment TaskDetailFields on Task {\n    id\n    service\n    type\n    state\n    status\n    attempts\n    maxAttempts\n    retries\n    priority\n    queuePosition\n    waitingFor\n    runAt\n    progress\n    dateCreated\n    dateStarted\n    dateCompleted\n    params\n    poll\n    session\n    user\n    target\n    execution\n    retrievalProtocol\n    resultRetrieved\n    scheduledFor\n    schedule {\n      id\n      name\n    }\n    key {\n      id\n      name\n    }\n    error {\n      code\n      message\n    }\n    results {\n      id\n      name\n      contentType\n      size\n      dateCreated\n      retrieved\n    }\n    retryHistory {\n      attempts\n      state\n      dateStarted\n      dateCompleted\n      dateRetried\n      error {\n        code\n        message\n      }\n      retriedBy {\n        id\n        name\n      }\n    }\n    dependsOn {\n      id\n      service\n      type\n      state\n    }\n    dependents {\n      id\n      service\n      type\n      state\n    }\n  }\n"): (typeof documents)["\n  fragment TaskDetailFields on Task {\n    id\n    service\n    type\n    state\n    status\n    attempts\n    maxAttempts\n    retries\n    priority\n    queuePosition\n    waitingFor\n    runAt\n    progress\n    dateCreated\n    dateStarted\n    dateCompleted\n    params\n    poll\n    session\n    user\n    target\n    execution\n    retrievalProtocol\n    resultRetrieved\n    scheduledFor\n    schedule {\n      id\n      name\n    }\n    key {\n      id\n      name\n    }\n    error {\n      code\n      message\n    }\n    results {\n      id\n      name\n      contentType\n      size\n      dateCreated\n      retrieved\n    }\n    retryHistory {\n      attempts\n      state\n      dateStarted\n      dateCompleted\n      dateRetried\n      error {\n        code\n        message\n      }\n      retriedBy {\n        id\n        name\n      }\n    }\n    dependsOn {\n      id\n      service\n      type\n      state\n    }\n    dependents {\n      id\n      service\n      type\n      state\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query TaskDetail($id: ID!) {\n    task(id: $id) {\n      ...TaskDetailFields\n    }\n  }\n"): (typeof documents)["\n  query TaskDetail($id: ID!) {\n    task(id: $id) {\n      ...TaskDetailFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription TaskDetailUpdated($id: ID!) {\n    taskUpdated(id: $id) {\n      ...TaskDetailFields\n    }\n  }\n"): (typeof documents)["\n  subscription TaskDetailUpdated($id: ID!) {\n    taskUpdated(id: $id) {\n      ...TaskDetailFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Tasks($filter: TaskFilter, $first: Int, $after: String) {\n    tasks(filter: $filter, first: $first, after: $after) {\n      edges {\n        node {\n          id\n          state\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query Tasks($filter: TaskFilter, $first: Int, $after: String) {\n    tasks(filter: $filter, first: $first, after: $after) {\n      edges {\n        node {\n          id\n          state\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation TaskDetailCancel($id: ID!) {\n    cancelTask(id: $id) {\n      __typename\n      ... on CancelTaskSuccess {\n        task {\n          ...TaskDetailFields\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation TaskDetailCancel($id: ID!) {\n    cancelTask(id: $id) {\n      __typename\n      ... on CancelTaskSuccess {\n        task {\n          ...TaskDetailFields\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation TaskDetailRetry($id: ID!) {\n    retryTask(id: $id) {\n      __typename\n      ... on RetryTaskSuccess {\n        task {\n          ...TaskDetailFields\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation TaskDetailRetry($id: ID!) {\n    retryTask(id: $id) {\n      __typename\n      ... on RetryTaskSuccess {\n        task {\n          ...TaskDetailFields\n        }\n      }\n      ... on Error {\n        code\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query TaskDetailLogs($id: ID!, $minLevel: LogLevel, $first: Int, $after: String) {\n    task(id: $id) {\n      id\n      logs(minLevel: $minLevel, first: $first, after: $after) {\n        edges {\n          cursor\n          node {\n            timestamp\n            level\n            source\n            message\n          }\n        }\n        pageInfo {\n          endCursor\n          hasNextPage\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query TaskDetailLogs($id: ID!, $minLevel: LogLevel, $first: Int, $after: String) {\n    task(id: $id) {\n      id\n      logs(minLevel: $minLevel, first: $first, after: $after) {\n        edges {\n          cursor\n          node {\n            timestamp\n            level\n            source\n            message\n          }\n        }\n        pageInfo {\n          endCursor\n          hasNextPage\n        }\n      }\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;