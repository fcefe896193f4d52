import { describe, expect, it } from 'vitest';
import { readyUrl, spawnNode, temporaryFolder } from './children.js';
import { query, submit, waitForTask, type TestServer } from './helpers.js';

const TOKEN = 'tp_process_faults_admin_token';

describe('a handler whose own callbacks throw outside its attempt', () => {
  it('does not end the server: the errors are logged and the next task runs', async () => {
    const served = spawnNode(['--import', 'tsx', 'test/fixtures/serve-misbehaving.ts'], {
      TASKPORT_DB: `${temporaryFolder('taskport-faults-')}/taskport.db`,
      TASKPORT_BOOTSTRAP_TOKEN: TOKEN,
    });
    const url = await readyUrl(served);
    // The parts of a TestServer that the clients use.
    const server = { url, wsUrl: url.replace(/^http/, 'ws') } as TestServer;

    const faulty = await submit(server, TOKEN, { service: 'misbehave', action: 'throw-outside', params: {} });
    expect((await waitForTask(server, TOKEN, faulty.task.id)).state).toBe('SUCCEEDED');
    const echo = await submit(server, TOKEN, { service: 'demo', action: 'echo', params: { message: 'after' } });
    expect((await waitForTask(server, TOKEN, echo.task.id)).state).toBe('SUCCEEDED');
    expect(await query(server, TOKEN, '{ viewer { organisation } }')).toEqual({ viewer: { organisation: 'default' } });

    expect(served.process.exitCode).toBeNull();
    const logged = served.stdout();
    expect(logged).toContain('thrown from a timer of the handler');
    expect(logged).toContain('rejected and never awaited');
    served.process.kill('SIGTERM');
    expect((await served.exited).code).toBe(0);
  });
});
