import { WORKER_ALIVE_MS, WORKER_HEARTBEAT_MS, type WorkerProcess } from '../domain/workers.js';
import { builder } from './builder.js';
import { requireActor } from './context.js';

const WorkerProcessRef = builder.objectRef<WorkerProcess>('WorkerProcess').implement({
  description: `A process that runs a worker on this database, as its last heartbeat (every ${WORKER_HEARTBEAT_MS / 1000} s) described it. It serves every organisation.`,
  fields: (t) => ({
    id: t.exposeString('owner', { description: 'The name its leases carry: host/pid/random.' }),
    hostname: t.exposeString('hostname'),
    pid: t.exposeInt('pid'),
    concurrency: t.exposeInt('concurrency', { description: 'The most tasks it runs at once.' }),
    actions: t.exposeStringList('actions', { description: '"service.action" of each action it claims.' }),
    running: t.exposeInt('running', { description: 'Tasks it ran at its last heartbeat.' }),
    startedAt: t.expose('startedAt', { type: 'DateTime' }),
    heartbeatAt: t.expose('heartbeatAt', { type: 'DateTime' }),
  }),
});

builder.queryField('workerProcesses', (t) =>
  t.field({
    type: [WorkerProcessRef],
    description: `The processes whose worker was heard from in the last ${WORKER_ALIVE_MS / 1000} s, oldest first; a process that stops leaves the list at once. ADMIN only.`,
    authScopes: { admin: true },
    resolve: (_root, _args, context) => context.engine.workerProcesses(requireActor(context)),
  }),
);
