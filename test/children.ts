import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

export const projectRoot = new URL('..', import.meta.url).pathname;

export interface SpawnedProcess {
  process: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();
const folders: string[] = [];

// A test that fails half-way must not leave a server running or a database behind.
afterEach(async () => {
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
  children.clear();
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** A new folder under the system's temporary folder, removed after the test. */
export function temporaryFolder(prefix: string): string {
  const folder = mkdtempSync(join(tmpdir(), prefix));
  folders.push(folder);
  return folder;
}

/**
 * This process's environment without its own Taskport settings, so that only `overrides`
 * configure the child; it listens on an ephemeral port and logs at info, where the ready line is.
 */
export function taskportEnvironment(overrides: Record<string, string>): NodeJS.ProcessEnv {
  const inherited: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('TASKPORT_') && name !== 'PORT' && name !== 'HOST') inherited[name] = value;
  }
  // Tests submit far faster than the default rate limits allow; a test of the limits sets its own.
  const generousRateLimits = { TASKPORT_RATE_SUBMIT: '1000000/s', TASKPORT_RATE_OTHER: '1000000/s', TASKPORT_RATE_EXECUTE: '1000000/s' };
  return { ...inherited, PORT: '0', HOST: '127.0.0.1', TASKPORT_LOG_LEVEL: 'info', ...generousRateLimits, ...overrides };
}

/** `node ...args` in the project root, with its output collected; killed after the test. */
export function spawnNode(args: string[], env: Record<string, string>): SpawnedProcess {
  return spawnCommand(process.execPath, args, env);
}

/** `command ...args` in `cwd` (the project root by default), with its output collected; killed after the test. */
export function spawnCommand(
  command: string,
  args: string[],
  env: Record<string, string>,
  { cwd = projectRoot }: { cwd?: string } = {},
): SpawnedProcess {
  const child = spawn(command, args, {
    cwd,
    env: taskportEnvironment(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { process: child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** `taskport ...args`, as the bin script runs it. */
export function spawnTaskport(args: string[], env: Record<string, string>): SpawnedProcess {
  return spawnNode(['bin/taskport.mjs', ...args], env);
}

/** The url `taskport serve` logs once it listens; rejects if the process exits before that. */
export function readyUrl(spawned: SpawnedProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    spawned.process.stdout!.on('data', () => {
      for (const line of spawned.stdout().split('\n')) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'Taskport is ready' && entry.url) {
          resolve(entry.url);
          return;
        }
      }
    });
    void spawned.exited.then(({ code, signal }) =>
      reject(
        new Error(`taskport serve exited (${code ?? signal}) before it was ready:\n${spawned.stdout()}\n${spawned.stderr()}`),
      ),
    );
  });
}
