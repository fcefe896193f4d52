import { useEffect, useId, useState, type FormEvent } from 'react';
import { useMutation, useQuery } from 'urql';
import { describeError } from '../../errors.ts';
import { number } from '../../format.ts';
import { graphql } from '../../gql/index.ts';
import type { AdminKeysQuery, RateLimitsInput, Role } from '../../gql/graphql.ts';
import { Alert, ConfirmButton, DateCell, failureOf, parseJson, ShownOnce, Status } from './shared.tsx';

const keysQuery = graphql(`
  query AdminKeys {
    viewer {
      key {
        id
      }
    }
    apiKeys {
      id
      name
      role
      dateCreated
      revoked
      permissions
      rateLimits {
        submit {
          ...AdminKeysTier
        }
        other {
          ...AdminKeysTier
        }
      }
    }
  }

  fragment AdminKeysTier on RateLimitTier {
    isDefault
    windows {
      points
      perSeconds
    }
  }
`);

const createKeyMutation = graphql(`
  mutation AdminKeysCreate($input: CreateApiKeyInput!) {
    createApiKey(input: $input) {
      __typename
      ... on CreateApiKeySuccess {
        token
        apiKey {
          id
          name
          role
        }
      }
      ... on ValidationError {
        message
        field
      }
    }
  }
`);

const updateKeyMutation = graphql(`
  mutation AdminKeysUpdate($id: ID!, $input: UpdateApiKeyInput!) {
    updateApiKey(id: $id, input: $input) {
      __typename
      ... on UpdateApiKeySuccess {
        apiKey {
          id
          name
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

const revokeKeyMutation = graphql(`
  mutation AdminKeysRevoke($id: ID!) {
    revokeApiKey(id: $id) {
      __typename
      ... on RevokeApiKeySuccess {
        apiKey {
          id
          name
          revoked
        }
      }
      ... on NotFoundError {
        message
      }
    }
  }
`);

type Key = AdminKeysQuery['apiKeys'][number];
type Tier = Key['rateLimits']['submit'];

const ROLES: ReadonlyArray<{ value: Role; about: string }> = [
  { value: 'MEMBER', about: 'submits and reads tasks within its permissions' },
  { value: 'ADMIN', about: 'also manages keys, allocations, schedules and webhooks' },
];

/** "Whole catalog", or per service "every action" or the actions it names. */
export function permissionsSummary(permissions: unknown): string {
  if (permissions === null || permissions === undefined) return 'Whole catalog';
  if (typeof permissions !== 'object' || Array.isArray(permissions)) return JSON.stringify(permissions);
  const services = Object.entries(permissions as Record<string, unknown>);
  if (services.length === 0) return 'Nothing';
  return services
    .map(([service, actions]) => {
      if (actions === '*') return `${service}: every action`;
      if (actions && typeof actions === 'object') {
        const names = Object.entries(actions as Record<string, unknown>).map(([action, values]) => {
          const limited =
            values && typeof values === 'object'
              ? Object.entries(values as Record<string, unknown>).map(
                  ([slug, allowed]) => `${slug}: ${Array.isArray(allowed) ? allowed.join(', ') : JSON.stringify(allowed)}`,
                )
              : [];
          return limited.length === 0 ? action : `${action} (${limited.join('; ')})`;
        });
        return `${service}: ${names.length === 0 ? 'no action' : names.join(', ')}`;
      }
      return `${service}: ${JSON.stringify(actions)}`;
    })
    .join('; ');
}

function tierSummary(tier: Tier): string {
  const windows = tier.windows.map((window) => `${number.format(window.points)} per ${number.format(window.perSeconds)} s`);
  const text = windows.length === 0 ? 'none' : windows.join(', ');
  return tier.isDefault ? `${text} (default)` : text;
}

export function Keys() {
  const [result, reexecute] = useQuery({ query: keysQuery, requestPolicy: 'cache-and-network' });
  const [created, setCreated] = useState<{ name: string; role: Role; token: string } | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [revokeError, setRevokeError] = useState<string | null>(null);
  const [, revoke] = useMutation(revokeKeyMutation);
  const refresh = () => reexecute({ requestPolicy: 'network-only' });
  const ownId = result.data?.viewer.key.id;

  const revokeKey = async (key: Key) => {
    setRevokeError(null);
    setStatus(null);
    const answer = await revoke({ id: key.id });
    const failure = failureOf(answer.error, answer.data?.revokeApiKey, 'RevokeApiKeySuccess');
    if (failure) setRevokeError(`Revoking ${key.name}: ${failure}`);
    else setStatus(`${key.name} is revoked: it no longer works.`);
    refresh();
  };

  return (
    <>
      <h1>API keys</h1>
      <p className="hint">Every key of the organisation. A revoked key stops working at once, its open subscriptions included.</p>
      {created && (
        <ShownOnce
          title={`Token of the new key ${created.name} (${created.role})`}
          values={[{ label: 'Token', value: created.token }]}
          onDismiss={() => setCreated(null)}
        >
          <p className="hint">Send it as "Authorization: Bearer &lt;token&gt;", or paste it into the dashboard's sign-in.</p>
        </ShownOnce>
      )}
      <Status message={status} />
      <Alert message={revokeError} />
      <section aria-labelledby="keys-heading">
        <h2 id="keys-heading">Keys</h2>
        {result.error && <Alert message={describeError(result.error)} />}
        {!result.data && !result.error && <p role="status">Loading…</p>}
        {result.data && (
          <div className="scroll" tabIndex={0} role="region" aria-labelledby="keys-heading">
            <table className="admin-table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Role</th>
                  <th scope="col">Created</th>
                  <th scope="col">Permissions</th>
                  <th scope="col">Rate limits</th>
                  <th scope="col">Status</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {result.data.apiKeys.map((key) => (
                  <tr key={key.id}>
                    <th scope="row">
                      {key.name}
                      {key.id === ownId && <span className="sub"> (this key)</span>}
                    </th>
                    <td>{key.role}</td>
                    <td>
                      <DateCell iso={key.dateCreated} />
                    </td>
                    <td className="wrap" title={key.permissions == null ? undefined : JSON.stringify(key.permissions)}>
                      {permissionsSummary(key.permissions)}
                    </td>
                    <td className="wrap">
                      Submit: {tierSummary(key.rateLimits.submit)}
                      <br />
                      Other: {tierSummary(key.rateLimits.other)}
                    </td>
                    <td>{key.revoked ? 'Revoked' : 'Active'}</td>
                    <td>
                      {!key.revoked && (
                        <ConfirmButton
                          label="Revoke"
                          target={key.name}
                          question={
                            key.id === ownId
                              ? `Revoke ${key.name}, the key this page is signed in with? The dashboard stops working at once.`
                              : `Revoke ${key.name}? It stops working at once.`
                          }
                          confirmLabel="Yes, revoke"
                          onConfirm={() => revokeKey(key)}
                        />
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <CreateKeyForm
        onCreated={(key) => {
          setStatus(null);
          setCreated(key);
          refresh();
        }}
      />
      {result.data && (
        <EditKeyForm
          keys={result.data.apiKeys.filter((key) => !key.revoked)}
          onSaved={(message) => {
            setRevokeError(null);
            setStatus(message);
            refresh();
          }}
        />
      )}
    </>
  );
}

interface WindowFields {
  points: string;
  perSeconds: string;
}

function windowOf(fields: WindowFields, tier: string): { value: RateLimitsInput['submit'] } | { error: string } {
  const points = fields.points.trim();
  const perSeconds = fields.perSeconds.trim();
  if (points === '' && perSeconds === '') return { value: undefined };
  if (points === '' || perSeconds === '') return { error: `The ${tier} limit needs both a number of operations and seconds.` };
  return { value: [{ points: Number(points), perSeconds: Number(perSeconds) }] };
}

function CreateKeyForm({ onCreated }: { onCreated: (key: { name: string; role: Role; token: string }) => void }) {
  const ids = useId();
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('MEMBER');
  const [permissions, setPermissions] = useState('');
  const [submitLimit, setSubmitLimit] = useState<WindowFields>({ points: '', perSeconds: '' });
  const [otherLimit, setOtherLimit] = useState<WindowFields>({ points: '', perSeconds: '' });
  const [jsonError, setJsonError] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [{ fetching }, create] = useMutation(createKeyMutation);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    const parsed = parseJson(permissions, undefined);
    if ('error' in parsed) {
      setJsonError(parsed.error);
      return;
    }
    setJsonError(null);
    const submitWindow = windowOf(submitLimit, 'submit');
    const otherWindow = windowOf(otherLimit, 'other');
    if ('error' in submitWindow || 'error' in otherWindow) {
      setError('error' in submitWindow ? submitWindow.error : 'error' in otherWindow ? otherWindow.error : null);
      return;
    }
    const rateLimits: RateLimitsInput | undefined =
      submitWindow.value || otherWindow.value ? { submit: submitWindow.value, other: otherWindow.value } : undefined;
    const answer = await create({ input: { name: name.trim(), role, permissions: parsed.value, rateLimits } });
    const result = answer.data?.createApiKey;
    const failure = failureOf(answer.error, result, 'CreateApiKeySuccess');
    if (failure || result?.__typename !== 'CreateApiKeySuccess') {
      setError(failure);
      return;
    }
    onCreated({ name: result.apiKey.name, role: result.apiKey.role, token: result.token });
    setName('');
    setPermissions('');
    setSubmitLimit({ points: '', perSeconds: '' });
    setOtherLimit({ points: '', perSeconds: '' });
  };

  return (
    <section aria-labelledby={`${ids}-heading`}>
      <h2 id={`${ids}-heading`}>Create a key</h2>
      <form className="admin-form" onSubmit={(event) => void submit(event)}>
        <div className="field">
          <label htmlFor={`${ids}-name`}>Name</label>
          <input id={`${ids}-name`} value={name} onChange={(event) => setName(event.target.value)} required />
        </div>
        <div className="field">
          <label htmlFor={`${ids}-role`}>Role</label>
          <select id={`${ids}-role`} value={role} onChange={(event) => setRole(event.target.value as Role)}>
            {ROLES.map((option) => (
              <option key={option.value} value={option.value}>
                {option.value} — {option.about}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${ids}-permissions`}>Permissions (JSON, optional)</label>
          <textarea
            id={`${ids}-permissions`}
            rows={4}
            value={permissions}
            spellCheck={false}
            placeholder='{ "demo": { "echo": {} } }'
            aria-invalid={jsonError ? true : undefined}
            aria-describedby={`${ids}-permissions-hint${jsonError ? ` ${ids}-permissions-error` : ''}`}
            onChange={(event) => {
              setPermissions(event.target.value);
              setJsonError(null);
            }}
          />
          <span id={`${ids}-permissions-hint`} className="hint">
            Per service "*" or, per action, the values it may request of permissioned parameters, e.g.{' '}
            <code>{'{ "demo": "*" }'}</code>. Empty: this key's own permissions.
          </span>
          {jsonError && (
            <span id={`${ids}-permissions-error`} role="alert" className="error">
              {jsonError}
            </span>
          )}
        </div>
        <fieldset>
          <legend>Rate limits (optional; empty: the server's defaults)</legend>
          <LimitFields id={`${ids}-submit`} tier="Submit operations" fields={submitLimit} onChange={setSubmitLimit} />
          <LimitFields id={`${ids}-other`} tier="Other operations" fields={otherLimit} onChange={setOtherLimit} />
        </fieldset>
        <Alert message={error} />
        <button type="submit" disabled={fetching}>
          {fetching ? 'Creating the key…' : 'Create key'}
        </button>
      </form>
    </section>
  );
}

function LimitFields({
  id,
  tier,
  fields,
  onChange,
}: {
  id: string;
  tier: string;
  fields: WindowFields;
  onChange: (fields: WindowFields) => void;
}) {
  return (
    <div className="limit-row" role="group" aria-label={tier}>
      <span className="limit-tier">{tier}:</span>
      <label htmlFor={`${id}-points`}>Operations</label>
      <input
        id={`${id}-points`}
        type="number"
        min={1}
        max={1_000_000}
        inputMode="numeric"
        value={fields.points}
        onChange={(event) => onChange({ ...fields, points: event.target.value })}
      />
      <label htmlFor={`${id}-seconds`}>per seconds</label>
      <input
        id={`${id}-seconds`}
        type="number"
        min={1}
        max={86_400}
        inputMode="numeric"
        value={fields.perSeconds}
        onChange={(event) => onChange({ ...fields, perSeconds: event.target.value })}
      />
    </div>
  );
}

type LimitsChoice = 'keep' | 'own' | 'defaults';

/** The first window of a tier as form fields, empty when the tier is the server's default. */
function fieldsOf(tier: Tier): WindowFields {
  const first = tier.windows[0];
  if (tier.isDefault || !first) return { points: '', perSeconds: '' };
  return { points: String(first.points), perSeconds: String(first.perSeconds) };
}

function EditKeyForm({ keys, onSaved }: { keys: Key[]; onSaved: (message: string) => void }) {
  const ids = useId();
  const [keyId, setKeyId] = useState(keys[0]?.id ?? '');
  const chosen = keys.find((key) => key.id === keyId) ?? keys[0];
  const [name, setName] = useState(chosen?.name ?? '');
  const [limits, setLimits] = useState<LimitsChoice>('keep');
  const [submitLimit, setSubmitLimit] = useState<WindowFields>(chosen ? fieldsOf(chosen.rateLimits.submit) : { points: '', perSeconds: '' });
  const [otherLimit, setOtherLimit] = useState<WindowFields>(chosen ? fieldsOf(chosen.rateLimits.other) : { points: '', perSeconds: '' });
  const [error, setError] = useState<string | null>(null);
  const [{ fetching }, update] = useMutation(updateKeyMutation);

  const choose = (id: string) => {
    const key = keys.find((candidate) => candidate.id === id);
    setKeyId(id);
    setError(null);
    if (!key) return;
    setName(key.name);
    setLimits('keep');
    setSubmitLimit(fieldsOf(key.rateLimits.submit));
    setOtherLimit(fieldsOf(key.rateLimits.other));
  };

  // The chosen key was revoked (or the list first arrived): follow the one now shown.
  useEffect(() => {
    if (chosen && chosen.id !== keyId) choose(chosen.id);
  });

  if (!chosen) return null;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    let rateLimits: RateLimitsInput | null | undefined;
    if (limits === 'defaults') rateLimits = null;
    if (limits === 'own') {
      const submitWindow = windowOf(submitLimit, 'submit');
      const otherWindow = windowOf(otherLimit, 'other');
      if ('error' in submitWindow || 'error' in otherWindow) {
        setError('error' in submitWindow ? submitWindow.error : 'error' in otherWindow ? otherWindow.error : null);
        return;
      }
      rateLimits = { submit: submitWindow.value, other: otherWindow.value };
    }
    const input = limits === 'keep' ? { name: name.trim() } : { name: name.trim(), rateLimits };
    const answer = await update({ id: chosen.id, input });
    const failure = failureOf(answer.error, answer.data?.updateApiKey, 'UpdateApiKeySuccess');
    if (failure) {
      setError(failure);
      return;
    }
    onSaved(`${name.trim()} is saved.`);
  };

  const choices: ReadonlyArray<{ value: LimitsChoice; label: string }> = [
    { value: 'keep', label: 'Keep its rate limits' },
    { value: 'own', label: 'Set its own (a tier left empty takes the default)' },
    { value: 'defaults', label: "Back to the server's defaults" },
  ];

  return (
    <section aria-labelledby={`${ids}-heading`}>
      <h2 id={`${ids}-heading`}>Change a key</h2>
      <form className="admin-form" onSubmit={(event) => void submit(event)}>
        <div className="field">
          <label htmlFor={`${ids}-key`}>Key</label>
          <select id={`${ids}-key`} value={chosen.id} onChange={(event) => choose(event.target.value)}>
            {keys.map((key) => (
              <option key={key.id} value={key.id}>
                {key.name} ({key.role})
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${ids}-name`}>New name</label>
          <input id={`${ids}-name`} value={name} required onChange={(event) => setName(event.target.value)} />
        </div>
        <fieldset>
          <legend>Rate limits</legend>
          {choices.map((choice) => (
            <div className="radio" key={choice.value}>
              <input
                type="radio"
                id={`${ids}-${choice.value}`}
                name={`${ids}-limits`}
                checked={limits === choice.value}
                onChange={() => setLimits(choice.value)}
              />
              <label htmlFor={`${ids}-${choice.value}`}>{choice.label}</label>
            </div>
          ))}
          {limits === 'own' && (
            <>
              <LimitFields id={`${ids}-submit`} tier="Submit operations" fields={submitLimit} onChange={setSubmitLimit} />
              <LimitFields id={`${ids}-other`} tier="Other operations" fields={otherLimit} onChange={setOtherLimit} />
            </>
          )}
        </fieldset>
        <Alert message={error} />
        <button type="submit" disabled={fetching}>
          {fetching ? 'Saving…' : 'Save the key'}
        </button>
      </form>
    </section>
  );
}
