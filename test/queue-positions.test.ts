import { describe, expect, it } from 'vitest';
import { nextListen, query, startServer, submit, subscribeOverWebSocket, wsClient } from './helpers.js';

describe('queue positions pushed to subscribers', () => {
  it('sends QUEUE_POSITION events on taskEvents and new positions on taskUpdated as the queue drains', async () => {
    const server = await startServer({ concurrency: 1 });
    const token = server.adminToken;
    // Holds the only slot until the subscriptions below are in place; then it is cancelled.
    const blocker = await submit(server, token, { service: 'demo', action: 'sleep', params: { ms: 600_000, steps: 1 } });
    // Positions count from the slot being taken: until the worker claims the blocker, it is ahead of them.
    for (let state = blocker.task.state; state !== 'PROCESSING'; ) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      state = (await query(server, token, `query ($id: ID!) { task(id: $id) { state } }`, { id: blocker.task.id })).task.state;
    }
    const waiting = [];
    for (let index = 0; index < 3; index++) {
      waiting.push(await submit(server, token, { service: 'demo', action: 'sleep', params: { ms: 150, steps: 1 } }, 'id state queuePosition'));
    }
    const last = waiting[2]!.task;
    expect(waiting.map((submitted) => submitted.task.queuePosition)).toEqual([0, 1, 2]);
    expect(blocker.__typename).toBe('SubmitTaskSuccess');

    const client = wsClient(server, token);
    const positionsOfLast: number[] = [];
    let firstUpdate!: () => void;
    const firstUpdateArrived = new Promise<void>((resolve) => (firstUpdate = resolve));
    const updates = subscribeOverWebSocket(
      client,
      `subscription ($id: ID!) { taskUpdated(id: $id) { state queuePosition } }`,
      { id: last.id },
      () => firstUpdate(),
    );
    await firstUpdateArrived;
    const eventsListening = nextListen(server, 'organisation');
    const events: { kind: string; task: { id: string; queuePosition: number | null } }[] = [];
    const eventsUntilLastStarts = new Promise<void>((resolve, reject) => {
      const unsubscribe = client.subscribe<{ taskEvents: (typeof events)[number] & { task: { state: string } } }>(
        { query: `subscription { taskEvents(filter: { service: "demo" }) { kind task { id state queuePosition } } }` },
        {
          next: (result) => {
            const event = result.data!.taskEvents;
            events.push(event);
            if (event.task.id === last.id && event.task.state !== 'PENDING') {
              unsubscribe();
              resolve();
            }
          },
          error: reject,
          complete: () => resolve(),
        },
      );
    });
    await eventsListening;
    const cancelled = await query(server, token, 'mutation ($id: ID!) { cancelTask(id: $id) { __typename } }', {
      id: blocker.task.id,
    });
    expect(cancelled.cancelTask.__typename).toBe('CancelTaskSuccess');
    await eventsUntilLastStarts;
    const results = await updates;
    for (const result of results) {
      const position = (result.data as { taskUpdated: { queuePosition: number | null } }).taskUpdated.queuePosition;
      if (position !== null) positionsOfLast.push(position);
    }

    expect(positionsOfLast[0]).toBe(2);
    expect(positionsOfLast.at(-1)).toBe(0);
    const queueEventsOfLast = events.filter((event) => event.kind === 'QUEUE_POSITION' && event.task.id === last.id);
    expect(queueEventsOfLast.length).toBeGreaterThan(0);
    expect(queueEventsOfLast.at(-1)!.task.queuePosition).toBe(0);
    await server.stop();
  });
});
