import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { readyUrl, spawnTaskport } from './children.js';
import { createPostgresDatabase, query, testStore, type TestServer } from './helpers.js';

// Three real Taskport processes on one PostgreSQL database, each running its scheduler: the
// database's unique (schedule, fire time) key, not any process, decides which one fires.

async function serve(database: string, token: string): Promise<TestServer> {
  const spawned = spawnTaskport(['serve'], { TASKPORT_DB: database, TASKPORT_BOOTSTRAP_TOKEN: token, TASKPORT_DB_POOL_SIZE: '4' });
  const url = await readyUrl(spawned);
  return { url, wsUrl: url.replace(/^http/, 'ws'), adminToken: token } as TestServer;
}

describe.runIf(testStore === 'postgres')('schedules across processes', () => {
  it('three processes firing one 1-second schedule create exactly one task per fire time', { timeout: 60_000 }, async () => {
    const database = await createPostgresDatabase();
    const token = `tp_sched_${randomBytes(12).toString('hex')}`;
    const first = await serve(database, token);
    const others = await Promise.all([serve(database, token), serve(database, token)]);

    const created = await query(
      first,
      token,
      `mutation { createSchedule(input: { name: "tick", cron: "* * * * * *", service: "demo", action: "echo", params: { message: "t" } }) {
        ... on ScheduleSuccess { schedule { id } } } }`,
    );
    const id = created.createSchedule.schedule.id as string;

    const client = new pg.Client({ connectionString: database });
    await client.connect();
    try {
      const deadline = Date.now() + 30_000;
      let count = 0;
      while (count < 8) {
        if (Date.now() > deadline) throw new Error(`only ${count} scheduled tasks were created`);
        await new Promise((resolve) => setTimeout(resolve, 200));
        count = (await client.query<{ count: number }>(`SELECT count(*)::int AS count FROM tasks WHERE schedule_id IS NOT NULL`)).rows[0]!.count;
      }
      // Paused from another process than the one that created it: the bus tells the rest.
      await query(others[1]!, token, `mutation ($id: ID!) { pauseSchedule(id: $id) { __typename } }`, { id });

      const tasks = await client.query<{ scheduled_for: number; count: number }>(
        `SELECT scheduled_for, count(*)::int AS count FROM tasks WHERE schedule_id IS NOT NULL GROUP BY scheduled_for ORDER BY scheduled_for`,
      );
      expect(tasks.rows.filter((row) => row.count !== 1)).toEqual([]);
      const times = tasks.rows.map((row) => Number(row.scheduled_for));
      for (let index = 1; index < times.length; index++) expect(times[index]! - times[index - 1]!).toBe(1000);
      const runs = await client.query<{ count: number }>(`SELECT count(*)::int AS count FROM schedule_runs WHERE outcome = 'CREATED'`);
      expect(runs.rows[0]!.count).toBe(times.length);
    } finally {
      await client.end();
    }
  });
});
