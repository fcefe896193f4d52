import { cpus, loadavg } from 'node:os';
import { aggregatesPgSection, aggregatesSection } from './aggregates.js';
import { bulkPgSection, bulkSection } from './bulk.js';
import { dashboardPgSection, dashboardSection } from './dashboard.js';
import { durabilitySection } from './durability.js';
import { engineSection } from './engine.js';
import { fanoutSection } from './fanout.js';
import { fairShareSection } from './fair-share.js';
import { peersSection } from './peers.js';
import { pgEngineSection } from './pg-engine.js';
import { pgLatencySection } from './pg-latency.js';
import { pgPeersSection } from './pg-peers.js';
import { pgWorkersSection } from './pg-workers.js';
import { withTimeout, type Section } from './lib.js';
import { limiterSection } from './limiter.js';
import { realtimePgSection, realtimeSection } from './realtime.js';
import { responsivenessSection } from './responsiveness.js';
import { schedulesSection } from './schedules.js';
import { schemaFloorSection } from './schema-floor.js';
import { scalePgSection, scaleSection } from './scale.js';
import { stallsPgSection, stallsSection } from './stalls.js';
import { submitHttpPgSection, submitHttpSection } from './submit-http.js';
import { taskStatusesPgSection, taskStatusesSection } from './task-statuses.js';
import { webhooksPgSection, webhooksSection } from './webhooks.js';

// `npm run bench` runs every figure in order; `npm run bench -- engine statuses` runs some.

const SECTIONS: Record<string, { section: Section; timeoutMs: number }> = {
  engine: { section: engineSection, timeoutMs: 180_000 },
  http: { section: submitHttpSection, timeoutMs: 120_000 },
  statuses: { section: taskStatusesSection, timeoutMs: 120_000 },
  responsiveness: { section: responsivenessSection, timeoutMs: 180_000 },
  realtime: { section: realtimeSection, timeoutMs: 150_000 },
  'pg-realtime': { section: realtimePgSection, timeoutMs: 180_000 },
  fanout: { section: fanoutSection, timeoutMs: 300_000 },
  'pg-engine': { section: pgEngineSection, timeoutMs: 480_000 },
  'pg-workers': { section: pgWorkersSection, timeoutMs: 600_000 },
  'pg-latency': { section: pgLatencySection, timeoutMs: 300_000 },
  'pg-http': { section: submitHttpPgSection, timeoutMs: 150_000 },
  'pg-statuses': { section: taskStatusesPgSection, timeoutMs: 150_000 },
  limiter: { section: limiterSection, timeoutMs: 300_000 },
  bulk: { section: bulkSection, timeoutMs: 180_000 },
  'pg-bulk': { section: bulkPgSection, timeoutMs: 300_000 },
  durability: { section: durabilitySection, timeoutMs: 300_000 },
  'fair-share': { section: fairShareSection, timeoutMs: 900_000 },
  stalls: { section: stallsSection, timeoutMs: 300_000 },
  'pg-stalls': { section: stallsPgSection, timeoutMs: 300_000 },
  scale: { section: scaleSection, timeoutMs: 900_000 },
  'pg-scale': { section: scalePgSection, timeoutMs: 900_000 },
  aggregates: { section: aggregatesSection, timeoutMs: 900_000 },
  'pg-aggregates': { section: aggregatesPgSection, timeoutMs: 900_000 },
  dashboard: { section: dashboardSection, timeoutMs: 900_000 },
  peers: { section: peersSection, timeoutMs: 900_000 },
  'pg-peers': { section: pgPeersSection, timeoutMs: 1_800_000 },
  'schema-floor': { section: schemaFloorSection, timeoutMs: 600_000 },
  'pg-dashboard': { section: dashboardPgSection, timeoutMs: 900_000 },
  schedules: { section: schedulesSection, timeoutMs: 600_000 },
  webhooks: { section: webhooksSection, timeoutMs: 300_000 },
  'pg-webhooks': { section: webhooksPgSection, timeoutMs: 300_000 },
};

const asked = process.argv.slice(2).filter((argument) => argument !== '--');
const unknown = asked.filter((name) => !(name in SECTIONS));
if (unknown.length > 0) {
  console.error(`unknown section ${unknown.join(', ')}; choose from: ${Object.keys(SECTIONS).join(', ')}`);
  process.exit(2);
}
const names = asked.length > 0 ? asked : Object.keys(SECTIONS);

const load = loadavg().map((value) => value.toFixed(2)).join(' ');
console.log(
  `Taskport bench: ${names.join(', ')} | node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model.trim()}), load average ${load}`,
);

const started = performance.now();
const summary: string[] = [];
let failures = 0;
for (const name of names) {
  const { section, timeoutMs } = SECTIONS[name]!;
  try {
    summary.push((await withTimeout(timeoutMs, `section ${name}`, section())).summary);
  } catch (error) {
    failures += 1;
    console.error(`\nsection ${name} failed:`, error);
    summary.push(`${name.padEnd(7)} FAILED: ${error instanceof Error ? error.message : String(error)}`);
  }
}

console.log(`\n== summary (${((performance.now() - started) / 1000).toFixed(0)} s)`);
for (const row of summary) console.log(`  ${row}`);
// Child processes and temporary folders are removed by bench/lib.ts on exit.
process.exit(failures > 0 ? 1 : 0);
