import { useId, useState, type FormEvent } from 'react';
import { useMutation, useQuery } from 'urql';
import { describeError } from '../../errors.ts';
import { number } from '../../format.ts';
import { graphql } from '../../gql/index.ts';
import type { AdminAllocationsQuery } from '../../gql/graphql.ts';
import { Alert, ConfirmButton, DateCell, failureOf, Hidden, ShownOnce, Status } from './shared.tsx';

const allocationsQuery = graphql(`
  query AdminAllocations {
    allocations {
      id
      name
      service
      action
      instances
      busy
      executions
      timeoutMs
      dateCreated
    }
    services {
      slug
      name
      actions {
        slug
        name
        execution
      }
    }
  }
`);

const createAllocationMutation = graphql(`
  mutation AdminAllocationsCreate($input: CreateAllocationInput!) {
    createAllocation(input: $input) {
      __typename
      ... on CreateAllocationSuccess {
        allocation {
          id
          name
        }
      }
      ... on ValidationError {
        message
        field
      }
    }
  }
`);

const deleteAllocationMutation = graphql(`
  mutation AdminAllocationsDelete($id: ID!) {
    deleteAllocation(id: $id) {
      __typename
      ... on DeleteAllocationSuccess {
        allocation {
          id
          name
        }
      }
      ... on NotFoundError {
        message
      }
    }
  }
`);

const generateUrlMutation = graphql(`
  mutation AdminAllocationsGenerateUrl($allocationId: ID!, $ttlSeconds: Int) {
    generateExecutionUrl(allocationId: $allocationId, ttlSeconds: $ttlSeconds) {
      __typename
      ... on GenerateExecutionUrlSuccess {
        executionUrl {
          url
          token
          tokenId
          expiresAt
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

const revokeTokenMutation = graphql(`
  mutation AdminAllocationsRevokeToken($id: ID!) {
    revokeExecutionToken(id: $id) {
      __typename
      ... on RevokeExecutionTokenSuccess {
        tokenId
      }
      ... on NotFoundError {
        message
      }
    }
  }
`);

type Allocation = AdminAllocationsQuery['allocations'][number];

interface Minted {
  allocation: string;
  url: string;
  token: string;
  tokenId: string;
  expiresAt: string;
}

/** A token minted on this page; the API lists no tokens, so the page remembers the ones it made. */
interface MintedToken {
  tokenId: string;
  allocation: string;
  expiresAt: string;
  revoked: boolean;
}

export function Allocations() {
  const [result, reexecute] = useQuery({ query: allocationsQuery, requestPolicy: 'cache-and-network' });
  const [minted, setMinted] = useState<Minted | null>(null);
  const [tokens, setTokens] = useState<MintedToken[]>([]);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [ttl, setTtl] = useState('3600');
  const ttlId = useId();
  const [, remove] = useMutation(deleteAllocationMutation);
  const [{ fetching: minting }, generate] = useMutation(generateUrlMutation);
  const refresh = () => reexecute({ requestPolicy: 'network-only' });

  const deleteAllocation = async (allocation: Allocation) => {
    setError(null);
    setStatus(null);
    const answer = await remove({ id: allocation.id });
    const failure = failureOf(answer.error, answer.data?.deleteAllocation, 'DeleteAllocationSuccess');
    if (failure) setError(`Deleting ${allocation.name}: ${failure}`);
    else setStatus(`${allocation.name} is deleted; its execution URLs no longer work.`);
    refresh();
  };

  const mint = async (allocation: Allocation) => {
    setError(null);
    setStatus(null);
    const ttlSeconds = ttl.trim() === '' ? null : Number(ttl);
    const answer = await generate({ allocationId: allocation.id, ttlSeconds });
    const answered = answer.data?.generateExecutionUrl;
    const failure = failureOf(answer.error, answered, 'GenerateExecutionUrlSuccess');
    if (failure || answered?.__typename !== 'GenerateExecutionUrlSuccess') {
      setError(`Minting an execution URL of ${allocation.name}: ${failure}`);
      return;
    }
    const { executionUrl } = answered;
    setMinted({ allocation: allocation.name, ...executionUrl });
    setTokens((current) => [
      { tokenId: executionUrl.tokenId, allocation: allocation.name, expiresAt: executionUrl.expiresAt, revoked: false },
      ...current,
    ]);
  };

  return (
    <>
      <h1>Allocations</h1>
      <p className="hint">
        Warm instances reserved for a real-time action. Calls go to an execution URL with its token; deleting an allocation
        stops its URLs at once.
      </p>
      {minted && (
        <ShownOnce
          title={`Execution URL of ${minted.allocation}`}
          values={[
            { label: 'Execution URL', value: minted.url },
            { label: 'Execution token', value: minted.token },
          ]}
          onDismiss={() => setMinted(null)}
        >
          <p className="hint">
            Valid until <DateCell iso={minted.expiresAt} />. POST a JSON object of parameters to the URL with "Authorization:
            Bearer &lt;token&gt;". Token id (to revoke it): <code>{minted.tokenId}</code>
          </p>
        </ShownOnce>
      )}
      <Status message={status} />
      <Alert message={error} />
      <section aria-labelledby="allocations-heading">
        <h2 id="allocations-heading">Allocations</h2>
        <div className="field inline-field">
          <label htmlFor={ttlId}>Execution URLs valid for (seconds)</label>
          <input
            id={ttlId}
            type="number"
            min={1}
            max={2_592_000}
            value={ttl}
            onChange={(event) => setTtl(event.target.value)}
          />
        </div>
        {result.error && <Alert message={describeError(result.error)} />}
        {!result.data && !result.error && <p role="status">Loading…</p>}
        {result.data && result.data.allocations.length === 0 && <p>The organisation has no allocation.</p>}
        {result.data && result.data.allocations.length > 0 && (
          <div className="scroll" tabIndex={0} role="region" aria-labelledby="allocations-heading">
            <table className="admin-table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Service / action</th>
                  <th scope="col" className="num">
                    Instances
                  </th>
                  <th scope="col" className="num">
                    Busy
                  </th>
                  <th scope="col" className="num">
                    Executions
                  </th>
                  <th scope="col" className="num">
                    Timeout
                  </th>
                  <th scope="col">Created</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {result.data.allocations.map((allocation) => (
                  <tr key={allocation.id}>
                    <th scope="row">{allocation.name}</th>
                    <td>
                      {allocation.service}.{allocation.action}
                    </td>
                    <td className="num">{number.format(allocation.instances)}</td>
                    <td className="num">{number.format(allocation.busy)}</td>
                    <td className="num">{number.format(allocation.executions)}</td>
                    <td className="num">{number.format(allocation.timeoutMs)} ms</td>
                    <td>
                      <DateCell iso={allocation.dateCreated} />
                    </td>
                    <td>
<div className="actions">
                      <button type="button" disabled={minting} onClick={() => void mint(allocation)}>
                        Mint an execution URL<Hidden> for {allocation.name}</Hidden>
                      </button>
                      <ConfirmButton
                        label="Delete"
                        target={allocation.name}
                        question={`Delete ${allocation.name}? Its execution URLs stop working.`}
                        confirmLabel="Yes, delete"
                        onConfirm={() => deleteAllocation(allocation)}
                      />
                    </div>
</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <Tokens
        tokens={tokens}
        onRevoked={(tokenId) =>
          setTokens((current) => current.map((token) => (token.tokenId === tokenId ? { ...token, revoked: true } : token)))
        }
      />
      {result.data && (
        <CreateAllocationForm
          services={result.data.services}
          onCreated={(name) => {
            setStatus(`${name} is created.`);
            refresh();
          }}
        />
      )}
    </>
  );
}

function Tokens({ tokens, onRevoked }: { tokens: MintedToken[]; onRevoked: (tokenId: string) => void }) {
  const ids = useId();
  const [tokenId, setTokenId] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [, revoke] = useMutation(revokeTokenMutation);

  const revokeToken = async (id: string) => {
    setError(null);
    setStatus(null);
    const answer = await revoke({ id });
    const failure = failureOf(answer.error, answer.data?.revokeExecutionToken, 'RevokeExecutionTokenSuccess');
    if (failure) {
      setError(`Revoking token ${id}: ${failure}`);
      return false;
    }
    setStatus(`Token ${id} is revoked: it no longer opens its execution URL.`);
    onRevoked(id);
    return true;
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (await revokeToken(tokenId.trim())) setTokenId('');
  };

  return (
    <section aria-labelledby={`${ids}-heading`}>
      <h2 id={`${ids}-heading`}>Execution tokens</h2>
      <Status message={status} />
      <Alert message={error} />
      {tokens.length > 0 && (
        <div className="scroll" tabIndex={0} role="region" aria-label="Tokens minted on this page">
          <table className="admin-table">
            <caption className="hint">Minted on this page since it opened</caption>
            <thead>
              <tr>
                <th scope="col">Token id</th>
                <th scope="col">Allocation</th>
                <th scope="col">Expires</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {tokens.map((token) => (
                <tr key={token.tokenId}>
                  <th scope="row">
                    <code>{token.tokenId}</code>
                  </th>
                  <td>{token.allocation}</td>
                  <td>
                    <DateCell iso={token.expiresAt} />
                  </td>
                  <td>
                    {token.revoked ? (
                      'Revoked'
                    ) : (
                      <ConfirmButton
                        label="Revoke"
                        target={`token ${token.tokenId}`}
                        question="Revoke this token? Its execution URL stops opening for it."
                        confirmLabel="Yes, revoke the token"
                        onConfirm={() => void revokeToken(token.tokenId)}
                      />
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <form className="admin-form inline" onSubmit={(event) => void submit(event)}>
        <div className="field">
          <label htmlFor={`${ids}-token`}>Token id to revoke</label>
          <input
            id={`${ids}-token`}
            value={tokenId}
            required
            spellCheck={false}
            aria-describedby={`${ids}-token-hint`}
            onChange={(event) => setTokenId(event.target.value)}
          />
          <span id={`${ids}-token-hint`} className="hint">
            The tokenId shown when its URL was minted.
          </span>
        </div>
        <button type="submit">Revoke token</button>
      </form>
    </section>
  );
}

function CreateAllocationForm({
  services,
  onCreated,
}: {
  services: AdminAllocationsQuery['services'];
  onCreated: (name: string) => void;
}) {
  const ids = useId();
  const realtime = services.flatMap((service) =>
    service.actions
      .filter((action) => action.execution.includes('REALTIME'))
      .map((action) => ({ value: `${service.slug}.${action.slug}`, label: `${service.name}: ${action.name}`, service, action })),
  );
  const [name, setName] = useState('');
  const [target, setTarget] = useState(realtime[0]?.value ?? '');
  const [instances, setInstances] = useState('1');
  const [timeoutMs, setTimeoutMs] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [{ fetching }, create] = useMutation(createAllocationMutation);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    const chosen = realtime.find((option) => option.value === target);
    if (!chosen) {
      setError('Choose a real-time action.');
      return;
    }
    const answer = await create({
      input: {
        name: name.trim(),
        service: chosen.service.slug,
        action: chosen.action.slug,
        instances: Number(instances),
        timeoutMs: timeoutMs.trim() === '' ? null : Number(timeoutMs),
      },
    });
    const created = answer.data?.createAllocation;
    const failure = failureOf(answer.error, created, 'CreateAllocationSuccess');
    if (failure || created?.__typename !== 'CreateAllocationSuccess') {
      setError(failure);
      return;
    }
    setName('');
    setInstances('1');
    setTimeoutMs('');
    onCreated(created.allocation.name);
  };

  return (
    <section aria-labelledby={`${ids}-heading`}>
      <h2 id={`${ids}-heading`}>Create an allocation</h2>
      {realtime.length === 0 ? (
        <p>This key may use no action that runs in real time.</p>
      ) : (
        <form className="admin-form" onSubmit={(event) => void submit(event)}>
          <div className="field">
            <label htmlFor={`${ids}-name`}>Name</label>
            <input id={`${ids}-name`} value={name} required onChange={(event) => setName(event.target.value)} />
          </div>
          <div className="field">
            <label htmlFor={`${ids}-action`}>Real-time action</label>
            <select id={`${ids}-action`} value={target} onChange={(event) => setTarget(event.target.value)}>
              {realtime.map((option) => (
                <option key={option.value} value={option.value}>
                  {option.value} ({option.label})
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor={`${ids}-instances`}>Instances (1 to 64)</label>
            <input
              id={`${ids}-instances`}
              type="number"
              min={1}
              max={64}
              required
              value={instances}
              onChange={(event) => setInstances(event.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor={`${ids}-timeout`}>Time limit of one call in ms (optional; 30,000 by default)</label>
            <input
              id={`${ids}-timeout`}
              type="number"
              min={1}
              value={timeoutMs}
              onChange={(event) => setTimeoutMs(event.target.value)}
            />
          </div>
          <Alert message={error} />
          <button type="submit" disabled={fetching}>
            {fetching ? 'Creating the allocation…' : 'Create allocation'}
          </button>
        </form>
      )}
    </section>
  );
}
