import { spawn } from 'node:child_process';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
  }
}

/**
 * One server for the whole run (it takes seconds to start); each test makes databases of its own
 * on it. It runs in a child process: see test/postgres-server-process.ts for why.
 */
export default async function setup(project: TestProject) {
  const given = process.env.TASKPORT_TEST_DATABASE_URL;
  if (given) {
    project.provide('postgresUrl', given);
    return;
  }
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./postgres-server-process.ts', import.meta.url).pathname], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n').find((candidate) => candidate.startsWith('{'));
      if (line) resolve((JSON.parse(line) as { url: string }).url);
    });
    void exited.then((code) => reject(new Error(`PostgreSQL for the tests did not start (exit ${code}):\n${stderr}`)));
  });
  project.provide('postgresUrl', url);
  return async () => {
    child.kill('SIGTERM');
    await exited;
  };
}
