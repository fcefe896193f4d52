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
    "\n  query Tasks($filter: TaskFilter, $first: Int, $after: String) {\n    tasks(filter: $filter, first: $first, after: $after) {\n      edges {\n        node {\n          id\n          state\n        }\n      }\n    }\n  }\n": typeof types.TasksDocument,
};
const documents: Documents = {
    "\n  query Viewer {\n    viewer {\n      organisation\n      key {\n        name\n        role\n      }\n    }\n  }\n": types.ViewerDocument,
    "\n  query Overview($since: DateTime!, $bucketSeconds: Int!, $admin: Boolean!) {\n    taskThroughput(since: $since, bucketSeconds: $bucketSeconds) {\n      __typename\n      ... on TaskThroughputSuccess {\n        buckets {\n          start\n          succeeded\n          failed\n          cancelled\n        }\n      }\n      ... on ValidationError {\n        message\n      }\n    }\n    allocations @include(if: $admin) {\n      id\n      name\n      service\n      action\n      instances\n      busy\n      executions\n      dateCreated\n    }\n    taskCounts(filter: {}) {\n      pending\n      suspended\n      processing\n      succeeded\n      failed\n      cancelled\n      total\n    }\n    queueStats {\n      service\n      action\n      pending\n      processing\n      suspended\n      oldestPendingDate\n      finishedLastMinute {\n        ...FinishedCountsFields\n      }\n      finishedLast5Minutes {\n        ...FinishedCountsFields\n      }\n      finishedLast15Minutes {\n        ...FinishedCountsFields\n      }\n    }\n  }\n\n  fragment FinishedCountsFields on FinishedCounts {\n    succeeded\n    failed\n    cancelled\n    total\n  }\n": types.OverviewDocument,
    "\n  query Tasks($filter: TaskFilter, $first: Int, $after: String) {\n    tasks(filter: $filter, first: $first, after: $after) {\n      edges {\n        node {\n          id\n          state\n        }\n      }\n    }\n  }\n": types.TasksDocument,
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
export function graphql(source: "\n  query Tasks($filter: TaskFilter, $first: Int, $after: String) {\n    tasks(filter: $filter, first: $first, after: $after) {\n      edges {\n        node {\n          id\n          state\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query Tasks($filter: TaskFilter, $first: Int, $after: String) {\n    tasks(filter: $filter, first: $first, after: $after) {\n      edges {\n        node {\n          id\n          state\n        }\n      }\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;