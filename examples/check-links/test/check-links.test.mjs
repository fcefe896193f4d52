// Runs the service as a user would: Taskport started from this project, web pages served on
// 127.0.0.1, a task submitted and watched over the GraphQL API, its report collected.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startTaskport } from 'taskport';

const token = `tp_example_${randomBytes(12).toString('hex')}`;
const folder = mkdtempSync(join(tmpdir(), 'check-links-'));
let taskport;
let pages;
let site;

before(async () => {
  pages = createServer((request, response) => {
    if (request.url === '/ok') return response.writeHead(200).end('fine');
    if (request.url === '/moved') return response.writeHead(301, { location: '/ok' }).end();
    if (request.url === '/slow') return; // never answers: the per-URL time limit ends it
    response.writeHead(404).end('no such page');
  });
  await new Promise((resolve) => pages.listen(0, '127.0.0.1', resolve));
  site = `http://127.0.0.1:${pages.address().port}`;
  taskport = await startTaskport({
    port: 0,
    database: join(folder, 'taskport.db'),
    services: [new URL('../services.ts', import.meta.url).pathname],
    demo: false,
    bootstrapToken: token,
    logLevel: 'silent',
  });
});

after(async () => {
  await taskport?.stop();
  pages?.closeAllConnections();
  await new Promise((resolve) => pages?.close(resolve) ?? resolve());
  rmSync(folder, { recursive: true, force: true });
});

async function graphql(query, variables) {
  const response = await fetch(taskport.url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data;
}

/** The task's updates over server-sent events, until the stream completes after its last state. */
async function watch(id) {
  const response = await fetch(taskport.url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({
      query: 'subscription ($id: ID!) { taskUpdated(id: $id) { state progress error { code message } } }',
      variables: { id },
    }),
  });
  const updates = [];
  let text = '';
  for await (const chunk of response.body) text += Buffer.from(chunk).toString();
  for (const line of text.split('\n')) {
    if (line.startsWith('data: ') && line.length > 6) updates.push(JSON.parse(line.slice(6)).data?.taskUpdated);
  }
  return updates.filter(Boolean);
}

async function submit(params) {
  const data = await graphql(
    `mutation ($input: SubmitTaskInput!) {
      submitTask(input: $input) { __typename ... on SubmitTaskSuccess { task { id } } ... on Error { code message } }
    }`,
    { input: { service: 'web', action: 'check-links', params } },
  );
  return data.submitTask;
}

test('checks each link and reports what answered', async () => {
  const submitted = await submit({ urls: [`${site}/ok`, `${site}/missing`, `${site}/moved`, `${site}/slow`], timeoutMs: 300 });
  assert.equal(submitted.__typename, 'SubmitTaskSuccess');
  const updates = await watch(submitted.task.id);
  assert.equal(updates.at(-1).state, 'SUCCEEDED');
  assert.ok(updates.some((update) => update.progress > 0 && update.progress < 1), 'progress is reported on the way');

  const retrieved = await graphql(
    'mutation ($id: ID!) { retrieveResults(taskId: $id) { ... on RetrieveResultsSuccess { results { data } } } }',
    { id: submitted.task.id },
  );
  const report = retrieved.retrieveResults.results[0].data;
  assert.equal(report.checked, 4);
  assert.equal(report.broken, 2);
  assert.deepEqual(
    report.links.map(({ ok, status, error }) => ({ ok, status, error })),
    [
      { ok: true, status: 200, error: undefined },
      { ok: false, status: 404, error: undefined },
      { ok: true, status: 200, error: undefined },
      { ok: false, status: null, error: 'timed out' },
    ],
  );

  const logs = await graphql('query ($id: ID!) { task(id: $id) { logs(first: 10) { edges { node { level message } } } } }', {
    id: submitted.task.id,
  });
  assert.equal(logs.task.logs.edges.filter((edge) => edge.node.level === 'WARN').length, 2);
});

test('a URL that is not http(s) fails at once, without a second attempt', async () => {
  const submitted = await submit({ urls: ['ftp://example.com/file'] });
  const updates = await watch(submitted.task.id);
  assert.deepEqual(updates.at(-1), {
    state: 'FAILED',
    progress: null,
    error: { code: 'INVALID_URL', message: 'not an http(s) URL: ftp://example.com/file' },
  });
  const task = await graphql('query ($id: ID!) { task(id: $id) { attempts maxAttempts } }', { id: submitted.task.id });
  assert.deepEqual(task.task, { attempts: 1, maxAttempts: 2 });
});
