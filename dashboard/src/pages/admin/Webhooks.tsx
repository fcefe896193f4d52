import { useId, useState, type FormEvent } from 'react';
import { useMutation, useQuery } from 'urql';
import { Link } from 'wouter';
import { describeError } from '../../errors.ts';
import { graphql } from '../../gql/index.ts';
import type { AdminWebhooksQuery, WebhookDisabledReason, WebhookEvent } from '../../gql/graphql.ts';
import { SigningSecret } from './SigningSecret.tsx';
import { Alert, ConfirmButton, DateCell, failureOf, Hidden, Pager, ShownOnce, Status, usePager } from './shared.tsx';

const PAGE_SIZE = 25;

const webhooksQuery = graphql(`
  query AdminWebhooks($after: String, $first: Int) {
    webhookEndpoints(after: $after, first: $first) {
      edges {
        node {
          ...AdminWebhookEndpointFields
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }

  fragment AdminWebhookEndpointFields on WebhookEndpoint {
    id
    url
    description
    events
    enabled
    disabledReason
    failingSince
    dateCreated
  }
`);

const createEndpointMutation = graphql(`
  mutation AdminWebhooksCreate($input: CreateWebhookEndpointInput!) {
    createWebhookEndpoint(input: $input) {
      __typename
      ... on CreateWebhookEndpointSuccess {
        secret
        endpoint {
          ...AdminWebhookEndpointFields
        }
      }
      ... on Error {
        message
      }
      ... on ValidationError {
        field
      }
    }
  }
`);

const updateEndpointMutation = graphql(`
  mutation AdminWebhooksUpdate($id: ID!, $input: UpdateWebhookEndpointInput!) {
    updateWebhookEndpoint(id: $id, input: $input) {
      __typename
      ... on UpdateWebhookEndpointSuccess {
        endpoint {
          ...AdminWebhookEndpointFields
        }
      }
      ... on NotFoundError {
        message
      }
      ... on ValidationError {
        message
        field
      }
    }
  }
`);

const rotateSecretMutation = graphql(`
  mutation AdminWebhooksRotate($id: ID!) {
    rotateWebhookSecret(id: $id) {
      __typename
      ... on RotateWebhookSecretSuccess {
        secret
        endpoint {
          id
          url
        }
      }
      ... on NotFoundError {
        message
      }
    }
  }
`);

const deleteEndpointMutation = graphql(`
  mutation AdminWebhooksDelete($id: ID!) {
    deleteWebhookEndpoint(id: $id) {
      __typename
      ... on DeleteWebhookEndpointSuccess {
        endpoint {
          id
          url
        }
      }
      ... on NotFoundError {
        message
      }
    }
  }
`);

type Endpoint = AdminWebhooksQuery['webhookEndpoints']['edges'][number]['node'];

/** The checkboxes of an endpoint's events, for its creation and its edit form. */
export function EventsFieldset({
  idPrefix,
  events,
  onChange,
}: {
  idPrefix: string;
  events: readonly WebhookEvent[];
  onChange: (update: (current: WebhookEvent[]) => WebhookEvent[]) => void;
}) {
  return (
    <fieldset>
      <legend>Events</legend>
      {(Object.keys(EVENTS) as WebhookEvent[]).map((value) => (
        <div className="check" key={value}>
          <input
            type="checkbox"
            id={`${idPrefix}-${value}`}
            checked={events.includes(value)}
            onChange={(event) =>
              onChange((current) => (event.target.checked ? [...current, value] : current.filter((chosen) => chosen !== value)))
            }
          />
          <label htmlFor={`${idPrefix}-${value}`}>{EVENTS[value]}</label>
        </div>
      ))}
    </fieldset>
  );
}

export const EVENTS: Readonly<Record<WebhookEvent, string>> = {
  COMPLETED: 'Completed: the task reached a terminal state',
  STARTED: 'Started: a worker started an attempt',
  PROGRESS: 'Progress: the handler reported progress',
  RESULT: 'Result: the handler stored a result (its metadata, never the payload)',
};

const REASONS: Readonly<Record<WebhookDisabledReason, string>> = {
  FAILING: 'every delivery to it failed for 5 days',
  GONE: 'the receiver answered 410 Gone',
};

export function endpointStatus(endpoint: Pick<Endpoint, 'enabled' | 'disabledReason'>): string {
  if (endpoint.enabled) return 'Enabled';
  if (endpoint.disabledReason) return `Disabled by the server: ${REASONS[endpoint.disabledReason]}`;
  return 'Disabled by an admin';
}

export function Webhooks() {
  const pager = usePager();
  const [result, reexecute] = useQuery({
    query: webhooksQuery,
    variables: { after: pager.after, first: PAGE_SIZE },
    requestPolicy: 'cache-and-network',
  });
  const [secret, setSecret] = useState<{ title: string; secret: string } | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [, update] = useMutation(updateEndpointMutation);
  const [, rotate] = useMutation(rotateSecretMutation);
  const [, remove] = useMutation(deleteEndpointMutation);
  const refresh = () => reexecute({ requestPolicy: 'network-only' });

  const begin = () => {
    setError(null);
    setStatus(null);
  };

  const setEnabled = async (endpoint: Endpoint, enabled: boolean) => {
    begin();
    const answer = await update({ id: endpoint.id, input: { enabled } });
    const failure = failureOf(answer.error, answer.data?.updateWebhookEndpoint, 'UpdateWebhookEndpointSuccess');
    if (failure) setError(`${enabled ? 'Enabling' : 'Disabling'} ${endpoint.url}: ${failure}`);
    else setStatus(`${endpoint.url} is ${enabled ? 'enabled' : 'disabled: it is sent nothing'}.`);
    refresh();
  };

  const rotateSecret = async (endpoint: Endpoint) => {
    begin();
    const answer = await rotate({ id: endpoint.id });
    const rotated = answer.data?.rotateWebhookSecret;
    const failure = failureOf(answer.error, rotated, 'RotateWebhookSecretSuccess');
    if (failure || rotated?.__typename !== 'RotateWebhookSecretSuccess') {
      setError(`Rotating the secret of ${endpoint.url}: ${failure}`);
      return;
    }
    setSecret({ title: `New signing secret of ${endpoint.url}`, secret: rotated.secret });
  };

  const deleteEndpoint = async (endpoint: Endpoint) => {
    begin();
    const answer = await remove({ id: endpoint.id });
    const failure = failureOf(answer.error, answer.data?.deleteWebhookEndpoint, 'DeleteWebhookEndpointSuccess');
    if (failure) setError(`Deleting ${endpoint.url}: ${failure}`);
    else setStatus(`${endpoint.url} is deleted: nothing more is sent to it.`);
    refresh();
  };

  const endpoints = result.data?.webhookEndpoints.edges.map((edge) => edge.node) ?? [];

  return (
    <>
      <h1>Webhook endpoints</h1>
      <p className="hint">
        URLs told of the events of every task of the organisation (at most 50), each message signed with the endpoint's secret.
      </p>
      {secret && (
        <ShownOnce title={secret.title} values={[{ label: 'Signing secret', value: secret.secret }]} onDismiss={() => setSecret(null)}>
          <p className="hint">The receiver checks each message's webhook-signature with it. A rotated secret signs beside the new one for 24 hours.</p>
        </ShownOnce>
      )}
      <Status message={status} />
      <Alert message={error} />
      <section aria-labelledby="endpoints-heading">
        <h2 id="endpoints-heading">Endpoints</h2>
        {result.error && <Alert message={describeError(result.error)} />}
        {!result.data && !result.error && <p role="status">Loading…</p>}
        {result.data && endpoints.length === 0 && <p>The organisation has no webhook endpoint.</p>}
        {endpoints.length > 0 && (
          <div className="scroll" tabIndex={0} role="region" aria-labelledby="endpoints-heading">
            <table className="admin-table">
              <thead>
                <tr>
                  <th scope="col">URL</th>
                  <th scope="col">Events</th>
                  <th scope="col">Status</th>
                  <th scope="col">Created</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {endpoints.map((endpoint) => (
                  <tr key={endpoint.id}>
                    <th scope="row" className="wrap">
                      <Link href={`/webhooks/${encodeURIComponent(endpoint.id)}`}>{endpoint.url}</Link>
                      {endpoint.description && (
                        <>
                          <br />
                          <span className="sub">{endpoint.description}</span>
                        </>
                      )}
                    </th>
                    <td>{endpoint.events.join(', ')}</td>
                    <td className="wrap">
                      {endpointStatus(endpoint)}
                      {endpoint.failingSince && (
                        <>
                          <br />
                          <span className="sub">
                            Failing since <DateCell iso={endpoint.failingSince} />
                          </span>
                        </>
                      )}
                    </td>
                    <td>
                      <DateCell iso={endpoint.dateCreated} />
                    </td>
                    <td>
<div className="actions">
                      <Link href={`/webhooks/${encodeURIComponent(endpoint.id)}`}>
                        Deliveries<Hidden> to {endpoint.url}</Hidden>
                      </Link>
                      {endpoint.enabled ? (
                        <button type="button" className="secondary" onClick={() => void setEnabled(endpoint, false)}>
                          Disable<Hidden> {endpoint.url}</Hidden>
                        </button>
                      ) : (
                        <button type="button" onClick={() => void setEnabled(endpoint, true)}>
                          Enable<Hidden> {endpoint.url}</Hidden>
                        </button>
                      )}
                      <ConfirmButton
                        label="Rotate secret"
                        target={`of ${endpoint.url}`}
                        question="Make a new signing secret? The old one signs beside it for 24 hours."
                        confirmLabel="Yes, rotate the secret"
                        onConfirm={() => rotateSecret(endpoint)}
                      />
                      <ConfirmButton
                        label="Delete"
                        target={endpoint.url}
                        question={`Delete ${endpoint.url}? Its waiting messages fail.`}
                        confirmLabel="Yes, delete"
                        onConfirm={() => deleteEndpoint(endpoint)}
                      />
                    </div>
</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {result.data && (
          <Pager
            pager={pager}
            label="Pages of endpoints"
            hasNextPage={result.data.webhookEndpoints.pageInfo.hasNextPage}
            endCursor={result.data.webhookEndpoints.pageInfo.endCursor}
          />
        )}
      </section>
      <CreateEndpointForm
        onCreated={(url, created) => {
          setStatus(null);
          setError(null);
          setSecret({ title: `Signing secret of ${url}`, secret: created });
          refresh();
        }}
      />
      <SigningSecret />
    </>
  );
}

function CreateEndpointForm({ onCreated }: { onCreated: (url: string, secret: string) => void }) {
  const ids = useId();
  const [url, setUrl] = useState('');
  const [description, setDescription] = useState('');
  const [events, setEvents] = useState<WebhookEvent[]>(['COMPLETED']);
  const [error, setError] = useState<string | null>(null);
  const [{ fetching }, create] = useMutation(createEndpointMutation);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    if (events.length === 0) {
      setError('Choose at least one event.');
      return;
    }
    const answer = await create({
      input: { url: url.trim(), events, description: description.trim() === '' ? null : description.trim() },
    });
    const created = answer.data?.createWebhookEndpoint;
    const failure = failureOf(answer.error, created, 'CreateWebhookEndpointSuccess');
    if (failure || created?.__typename !== 'CreateWebhookEndpointSuccess') {
      setError(failure);
      return;
    }
    setUrl('');
    setDescription('');
    onCreated(created.endpoint.url, created.secret);
  };

  return (
    <section aria-labelledby={`${ids}-heading`}>
      <h2 id={`${ids}-heading`}>Add an endpoint</h2>
      <form className="admin-form" onSubmit={(event) => void submit(event)}>
        <div className="field">
          <label htmlFor={`${ids}-url`}>URL</label>
          <input
            id={`${ids}-url`}
            type="url"
            required
            spellCheck={false}
            placeholder="https://example.com/taskport-webhooks"
            value={url}
            onChange={(event) => setUrl(event.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor={`${ids}-description`}>Description (optional)</label>
          <input
            id={`${ids}-description`}
            maxLength={500}
            value={description}
            onChange={(event) => setDescription(event.target.value)}
          />
        </div>
        <EventsFieldset idPrefix={ids} events={events} onChange={setEvents} />
        <Alert message={error} />
        <button type="submit" disabled={fetching}>
          {fetching ? 'Adding the endpoint…' : 'Add endpoint'}
        </button>
      </form>
    </section>
  );
}
