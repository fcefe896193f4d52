import { useEffect, useId, useState, type FormEvent } from 'react';
import { useMutation, useQuery } from 'urql';
import { Link } from 'wouter';
import { describeError } from '../../errors.ts';
import { formatDuration } from '../../format.ts';
import { graphql } from '../../gql/index.ts';
import type { WebhookAttemptOutcome, WebhookEvent } from '../../gql/graphql.ts';
import { Alert, DateCell, failureOf, Hidden, Pager, Status, usePager } from './shared.tsx';
import { endpointStatus, EventsFieldset } from './Webhooks.tsx';

const PAGE_SIZE = 20;
// New deliveries arrive while the page is open; the first page follows them.
const refreshMs = 3000;

const deliveriesQuery = graphql(`
  query AdminWebhookDeliveries($id: ID!, $after: String, $first: Int) {
    webhookEndpoint(id: $id) {
      id
      url
      description
      events
      enabled
      disabledReason
      failingSince
      deliveries(after: $after, first: $first) {
        edges {
          node {
            id
            attempt
            event
            outcome
            httpStatus
            durationMs
            error
            nextAttemptAt
            dateCreated
            webhookId
            task {
              id
            }
          }
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
    }
  }
`);

const redeliverMutation = graphql(`
  mutation AdminWebhookRedeliver($id: ID!) {
    redeliverWebhook(id: $id) {
      __typename
      ... on RedeliverWebhookSuccess {
        delivery {
          id
        }
      }
      ... on Error {
        message
      }
    }
  }
`);

const updateMutation = graphql(`
  mutation AdminWebhookEndpointUpdate($id: ID!, $input: UpdateWebhookEndpointInput!) {
    updateWebhookEndpoint(id: $id, input: $input) {
      __typename
      ... on UpdateWebhookEndpointSuccess {
        endpoint {
          id
          url
          description
          events
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

const OUTCOMES: Readonly<Record<WebhookAttemptOutcome, string>> = {
  SUCCEEDED: 'Succeeded',
  FAILED: 'Failed',
  REFUSED: 'Refused (never sent)',
};

const OUTCOME_STATES: Readonly<Record<WebhookAttemptOutcome, string>> = {
  SUCCEEDED: 'succeeded',
  FAILED: 'failed',
  REFUSED: 'cancelled',
};

export function WebhookDeliveries({ id }: { id: string }) {
  const pager = usePager();
  const [result, reexecute] = useQuery({
    query: deliveriesQuery,
    variables: { id, after: pager.after, first: PAGE_SIZE },
    requestPolicy: 'cache-and-network',
  });
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [, redeliver] = useMutation(redeliverMutation);
  const firstPage = pager.page === 1;

  useEffect(() => {
    if (!firstPage) return;
    const timer = setInterval(() => reexecute({ requestPolicy: 'network-only' }), refreshMs);
    return () => clearInterval(timer);
  }, [reexecute, firstPage]);

  const send = async (deliveryId: string, attempt: number) => {
    setError(null);
    setStatus(null);
    const answer = await redeliver({ id: deliveryId });
    const failure = failureOf(answer.error, answer.data?.redeliverWebhook, 'RedeliverWebhookSuccess');
    if (failure) setError(`Redelivering attempt ${attempt}: ${failure}`);
    else setStatus(`The message of attempt ${attempt} is sent again; the new attempt appears as a delivery of its own.`);
    reexecute({ requestPolicy: 'network-only' });
  };

  const endpoint = result.data?.webhookEndpoint;
  const deliveries = endpoint?.deliveries.edges.map((edge) => edge.node) ?? [];

  return (
    <>
      <p>
        <Link href="/webhooks">Back to the webhook endpoints</Link>
      </p>
      <h1>Deliveries{endpoint && <> to {endpoint.url}</>}</h1>
      {result.error && <Alert message={describeError(result.error)} />}
      {!result.data && !result.error && <p role="status">Loading…</p>}
      {result.data && !endpoint && (
        <p role="alert" className="error">
          There is no webhook endpoint {id} in this organisation (or it was deleted).
        </p>
      )}
      {endpoint && (
        <>
          <p>
            {endpointStatus(endpoint)} · events {endpoint.events.join(', ')}
            {endpoint.failingSince && (
              <>
                {' '}
                · every delivery failed since <DateCell iso={endpoint.failingSince} />
              </>
            )}
          </p>
          <EditEndpoint
            key={endpoint.id}
            endpoint={endpoint}
            onSaved={() => reexecute({ requestPolicy: 'network-only' })}
          />
          <h2>Deliveries</h2>
          <p className="hint" aria-live="off">
            Newest first{firstPage && <>; refreshed every {refreshMs / 1000} s</>}.
          </p>
          <Status message={status} />
          <Alert message={error} />
          {deliveries.length === 0 ? (
            <p>Nothing was delivered to this endpoint yet.</p>
          ) : (
            <div className="scroll" tabIndex={0} role="region" aria-label="Deliveries">
              <table className="admin-table">
                <thead>
                  <tr>
                    <th scope="col">Sent</th>
                    <th scope="col">Event</th>
                    <th scope="col" className="num">
                      Attempt
                    </th>
                    <th scope="col">Outcome</th>
                    <th scope="col" className="num">
                      HTTP status
                    </th>
                    <th scope="col" className="num">
                      Duration
                    </th>
                    <th scope="col">Error</th>
                    <th scope="col">Next attempt</th>
                    <th scope="col">Task</th>
                    <th scope="col">
                      <span className="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {deliveries.map((delivery) => (
                    <tr key={delivery.id}>
                      <th scope="row">
                        <DateCell iso={delivery.dateCreated} />
                      </th>
                      <td>{delivery.event}</td>
                      <td className="num">{delivery.attempt}</td>
                      <td data-state={OUTCOME_STATES[delivery.outcome]}>
                        <span className="dot" aria-hidden="true" />
                        {OUTCOMES[delivery.outcome]}
                      </td>
                      <td className="num">{delivery.httpStatus ?? 'No answer'}</td>
                      <td className="num">{formatDuration(delivery.durationMs)}</td>
                      <td className="wrap">{delivery.error ?? '—'}</td>
                      <td>{delivery.nextAttemptAt ? <DateCell iso={delivery.nextAttemptAt} /> : 'None'}</td>
                      <td>
                        {delivery.task ? (
                          <Link href={`~/dashboard/tasks/${encodeURIComponent(delivery.task.id)}`}>Its task</Link>
                        ) : (
                          '—'
                        )}
                      </td>
                      <td>
                        <button
                          type="button"
                          className="secondary"
                          onClick={() => void send(delivery.id, delivery.attempt)}
                        >
                          Redeliver<Hidden> attempt {delivery.attempt}</Hidden>
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <Pager
            pager={pager}
            label="Pages of deliveries"
            hasNextPage={endpoint.deliveries.pageInfo.hasNextPage}
            endCursor={endpoint.deliveries.pageInfo.endCursor}
          />
        </>
      )}
    </>
  );
}

function EditEndpoint({
  endpoint,
  onSaved,
}: {
  endpoint: { id: string; url: string; description?: string | null; events: WebhookEvent[] };
  onSaved: () => void;
}) {
  const ids = useId();
  const [url, setUrl] = useState(endpoint.url);
  const [description, setDescription] = useState(endpoint.description ?? '');
  const [events, setEvents] = useState<WebhookEvent[]>(endpoint.events);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [{ fetching }, update] = useMutation(updateMutation);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setStatus(null);
    if (events.length === 0) {
      setError('Choose at least one event.');
      return;
    }
    const answer = await update({ id: endpoint.id, input: { url: url.trim(), description: description.trim(), events } });
    const failure = failureOf(answer.error, answer.data?.updateWebhookEndpoint, 'UpdateWebhookEndpointSuccess');
    if (failure) {
      setError(failure);
      return;
    }
    setStatus('The endpoint is saved; messages from now on follow it.');
    onSaved();
  };

  return (
    <details className="edit-endpoint">
      <summary>Change the endpoint's URL, description or events</summary>
      <form className="admin-form" onSubmit={(event) => void submit(event)}>
        <div className="field">
          <label htmlFor={`${ids}-url`}>URL</label>
          <input id={`${ids}-url`} type="url" required spellCheck={false} value={url} onChange={(event) => setUrl(event.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={`${ids}-description`}>Description</label>
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
          {fetching ? 'Saving…' : 'Save the endpoint'}
        </button>
      </form>
      <Status message={status} />
    </details>
  );
}
