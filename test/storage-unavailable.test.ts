import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql, startServer, type TestServer } from './helpers.js';

const SUBMIT = `mutation ($message: String!) {
  submitTask(input: { service: "demo", action: "echo", params: { message: $message } }) {
    __typename ... on SubmitTaskSuccess { task { id } }
  }
}`;

// A small file system of its own that the test can fill: the disk of a server that runs out of space.
const mountPoint = mkdtempSync(join(tmpdir(), 'taskport-small-disk-'));
const filler = join(mountPoint, 'filler');

beforeAll(() => {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountPoint], { stdio: 'pipe' });
  } catch (error) {
    throw new Error(
      `this test mounts a 4 MiB tmpfs to fill its disk and needs root (as CI runs): ${(error as Error).message}`,
    );
  }
});

afterAll(() => {
  execFileSync('umount', [mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
});

function fillDisk(): void {
  try {
    writeFileSync(filler, Buffer.alloc(8 * 1024 * 1024));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  }
}

async function health(server: TestServer): Promise<{ status: number; body: { status: string; reason?: string } }> {
  const response = await fetch(new URL('/healthz', server.url));
  return { status: response.status, body: (await response.json()) as { status: string; reason?: string } };
}

/** Asks until `accept` holds, at most `tries` times a tenth of a second apart. */
async function eventually<T>(ask: () => Promise<T>, accept: (value: T) => boolean, tries = 50): Promise<T> {
  let value = await ask();
  for (let attempt = 1; attempt < tries && !accept(value); attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    value = await ask();
  }
  return value;
}

describe('a database that can no longer take writes', () => {
  it('answers STORAGE_UNAVAILABLE with HTTP 503, /healthz says so, and both recover with the disk', async () => {
    const server = await startServer({ database: join(mountPoint, 'taskport.db') });
    const accepted = await graphql(server, server.adminToken, SUBMIT, { message: 'before' });
    expect(accepted.body.data).toMatchObject({ submitTask: { __typename: 'SubmitTaskSuccess' } });

    fillDisk();
    const large = 'x'.repeat(64 * 1024);
    const refused = await eventually(
      () => graphql(server, server.adminToken, SUBMIT, { message: large }),
      (response) => response.body.errors !== undefined,
    );
    expect(refused.status).toBe(503);
    expect(refused.body.errors).toEqual([
      expect.objectContaining({
        message: 'the database is unavailable: the disk is full',
        extensions: expect.objectContaining({ code: 'STORAGE_UNAVAILABLE' }),
      }),
    ]);
    const unhealthy = await eventually(() => health(server), (answer) => answer.status === 503);
    expect(unhealthy).toEqual({
      status: 503,
      body: { status: 'unavailable', reason: 'the database is unavailable: the disk is full' },
    });

    unlinkSync(filler);
    const healthy = await eventually(() => health(server), (answer) => answer.status === 200);
    expect(healthy).toEqual({ status: 200, body: { status: 'ok' } });
    const after = await graphql(server, server.adminToken, SUBMIT, { message: 'after' });
    expect(after.body.data).toMatchObject({ submitTask: { __typename: 'SubmitTaskSuccess' } });
    await server.stop();
  });
});
