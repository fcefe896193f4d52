import type { FormattedExecutionResult } from 'graphql-ws';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  nextListen,
  startServer,
  submit,
  subscribeOverSse,
  subscribeOverWebSocket,
  wsClient,
  type TestServer,
} from './helpers.js';
import { gated, misbehavingCatalog, resetGated } from './misbehaving.js';

type Result = FormattedExecutionResult<Record<string, any>, unknown>;

const TASK_UPDATED = `subscription ($id: ID!) {
  taskUpdated(id: $id) { state progress logs(first: 20) { edges { node { message } } } }
}`;

const TASK_EVENTS = `subscription { taskEvents(filter: { service: "misbehave" }) { kind log { message } task { state } } }`;

const GRACE_LOG = 'working during the grace period';

beforeEach(() => resetGated());

/**
 * Starts the `gated` task and watches it on taskUpdated over graphql-ws and on taskEvents over
 * server-sent events; `sawGraceWork` resolves once both have seen what the handler did after the
 * release gate.
 */
async function watchGatedTask(server: TestServer) {
  const token = server.adminToken;
  const submitted = await submit(server, token, { service: 'misbehave', action: 'gated', params: {} });
  expect(submitted.__typename).toBe('SubmitTaskSuccess');
  await gated.reached.opened;

  let taskUpdatedSaw!: () => void;
  let taskEventsSaw!: () => void;
  const seen = [
    new Promise<void>((resolve) => (taskUpdatedSaw = resolve)),
    new Promise<void>((resolve) => (taskEventsSaw = resolve)),
  ];
  const listeningForTask = nextListen(server, 'task');
  const updates = subscribeOverWebSocket(wsClient(server, token), TASK_UPDATED, { id: submitted.task.id }, (result) => {
    if (result.data?.taskUpdated.progress === 0.5) taskUpdatedSaw();
  });
  await listeningForTask;
  const listeningForOrganisation = nextListen(server, 'organisation');
  const events = subscribeOverSse(server, token, TASK_EVENTS, undefined, (result) => {
    if (result.data?.taskEvents.log?.message === GRACE_LOG) taskEventsSaw();
  });
  await listeningForOrganisation;
  return { updates, events, sawGraceWork: Promise.all(seen) };
}

function lastError(results: Result[]): string[] | undefined {
  return results.at(-1)?.errors?.map((error) => error.extensions?.code as string);
}

describe('subscribers during shutdown', () => {
  it('see the progress and logs of a running task during the grace period, then its terminal state', async () => {
    const server = await startServer({ shutdownGraceMs: 60_000 }, { catalog: misbehavingCatalog() });
    const { updates, events, sawGraceWork } = await watchGatedTask(server);

    let stopped = false;
    const stopping = server.stop().then(() => (stopped = true));
    gated.release.open();
    await sawGraceWork;
    expect(stopped, 'the events arrived while the server waited for the task').toBe(false);
    gated.finish.open();

    const taskUpdates = await updates;
    expect(taskUpdates.every((result) => result.errors === undefined)).toBe(true);
    const final = taskUpdates.at(-1)!.data!.taskUpdated;
    expect(final).toMatchObject({ state: 'SUCCEEDED', progress: 1 });
    expect(final.logs.edges.map((edge: { node: { message: string } }) => edge.node.message)).toContain(GRACE_LOG);

    // taskEvents follows the organisation, not one task: the server ends it, and says so.
    const taskEvents = await events;
    const kinds = taskEvents.filter((result) => result.data).map((result) => result.data!.taskEvents);
    expect(kinds).toContainEqual(expect.objectContaining({ kind: 'PROGRESS' }));
    expect(kinds.at(-1)).toMatchObject({ kind: 'STATE_CHANGED', task: { state: 'SUCCEEDED' } });
    expect(lastError(taskEvents)).toEqual(['SHUTTING_DOWN']);
    await stopping;
  });

  it('of a task handed back to the queue see its PENDING state, then a SHUTTING_DOWN error, then the end', async () => {
    const server = await startServer({ shutdownGraceMs: 200 }, { catalog: misbehavingCatalog() });
    const { updates, events } = await watchGatedTask(server);

    const stopping = server.stop();
    gated.release.open();

    const taskUpdates = await updates;
    expect(lastError(taskUpdates)).toEqual(['SHUTTING_DOWN']);
    expect(taskUpdates.slice(0, -1).every((result) => result.errors === undefined)).toBe(true);
    const handedBack = taskUpdates.at(-2)!.data!.taskUpdated;
    expect(handedBack.state).toBe('PENDING');
    expect(handedBack.logs.edges.map((edge: { node: { message: string } }) => edge.node.message)).toContain(GRACE_LOG);

    const taskEvents = await events;
    expect(lastError(taskEvents)).toEqual(['SHUTTING_DOWN']);
    const seen = taskEvents.filter((result) => result.data).map((result) => result.data!.taskEvents);
    expect(seen).toContainEqual(expect.objectContaining({ kind: 'LOG', log: { message: GRACE_LOG } }));
    expect(seen.at(-1)).toMatchObject({ kind: 'STATE_CHANGED', task: { state: 'PENDING' } });
    await stopping;
  });
});
