import { useEffect, useId, useState, type FormEvent } from 'react';
import { useMutation, useQuery } from 'urql';
import { describeError } from '../../errors.ts';
import { graphql } from '../../gql/index.ts';
import type { RetrievalProtocol } from '../../gql/graphql.ts';
import { Alert, Status } from './shared.tsx';

const retrievalQuery = graphql(`
  query AdminRetrieval {
    viewer {
      organisation
      retrievalProtocol
    }
  }
`);

const setRetrievalMutation = graphql(`
  mutation AdminRetrievalSet($protocol: RetrievalProtocol!) {
    setRetrievalProtocol(protocol: $protocol) {
      organisation
      retrievalProtocol
    }
  }
`);

// The enum's descriptions in schema.graphql; the Record makes a new value a type error here.
const PROTOCOLS: Readonly<Record<RetrievalProtocol, { label: string; about: string }>> = {
  STORE: { label: 'Store', about: 'Results are kept until retrieved once with retrieveResults.' },
  CHANNEL: {
    label: 'Channel',
    about: 'Results are pushed to subscribers of taskEvents and consumed on delivery.',
  },
};

export function Retrieval() {
  const ids = useId();
  const [result, reexecute] = useQuery({ query: retrievalQuery, requestPolicy: 'network-only' });
  const current = result.data?.viewer.retrievalProtocol;
  const [chosen, setChosen] = useState<RetrievalProtocol | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [{ fetching }, setProtocol] = useMutation(setRetrievalMutation);

  useEffect(() => {
    if (current && chosen === null) setChosen(current);
  }, [current, chosen]);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!chosen) return;
    setError(null);
    setStatus(null);
    const answer = await setProtocol({ protocol: chosen });
    if (answer.error) {
      setError(describeError(answer.error));
      return;
    }
    const now = answer.data?.setRetrievalProtocol.retrievalProtocol;
    setStatus(now ? `The retrieval protocol is now ${PROTOCOLS[now].label} (${now}) for tasks submitted from now on.` : null);
    reexecute({ requestPolicy: 'network-only' });
  };

  return (
    <>
      <h1>Retrieval protocol</h1>
      <p className="hint">How results of tasks submitted from now on are delivered; tasks already submitted keep theirs.</p>
      {result.error && <Alert message={describeError(result.error)} />}
      {!result.data && !result.error && <p role="status">Loading…</p>}
      {result.data && current && (
        <>
          <p>
            The organisation <strong>{result.data.viewer.organisation}</strong> uses{' '}
            <strong data-testid="current-protocol">
              {PROTOCOLS[current].label} ({current})
            </strong>
            .
          </p>
          <form className="admin-form" onSubmit={(event) => void submit(event)}>
            <fieldset>
              <legend>Protocol</legend>
              {(Object.keys(PROTOCOLS) as RetrievalProtocol[]).map((value) => (
                <div className="radio" key={value}>
                  <input
                    type="radio"
                    id={`${ids}-${value}`}
                    name="protocol"
                    value={value}
                    checked={chosen === value}
                    aria-describedby={`${ids}-${value}-about`}
                    onChange={() => setChosen(value)}
                  />
                  <label htmlFor={`${ids}-${value}`}>
                    {PROTOCOLS[value].label} ({value}){value === current && ' — current'}
                  </label>
                  <span id={`${ids}-${value}-about`} className="hint">
                    {PROTOCOLS[value].about}
                  </span>
                </div>
              ))}
            </fieldset>
            <Alert message={error} />
            <button type="submit" disabled={fetching || chosen === null || chosen === current}>
              {fetching ? 'Saving…' : 'Set the retrieval protocol'}
            </button>
          </form>
        </>
      )}
      <Status message={status} />
    </>
  );
}
