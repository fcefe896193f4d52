import { useId, useState } from 'react';
import { useClient, useMutation } from 'urql';
import { describeError } from '../../errors.ts';
import { graphql } from '../../gql/index.ts';
import { Alert, ConfirmButton, CopyField, Status } from './shared.tsx';

const secretQuery = graphql(`
  query AdminSigningSecret {
    webhookSigningSecret
  }
`);

const rotateMutation = graphql(`
  mutation AdminSigningSecretRotate {
    rotateWebhookSigningSecret {
      secret
    }
  }
`);

/**
 * The organisation's own signing secret, for the webhooks named at submission. Unlike an
 * endpoint's, it can be read again, so it is fetched only when asked for and hidden on request.
 */
export function SigningSecret() {
  const ids = useId();
  const client = useClient();
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [reading, setReading] = useState(false);
  const [, rotate] = useMutation(rotateMutation);

  const show = async () => {
    setError(null);
    setStatus(null);
    setReading(true);
    const answer = await client.query(secretQuery, {}, { requestPolicy: 'network-only' }).toPromise();
    setReading(false);
    if (answer.error) setError(describeError(answer.error));
    else setSecret(answer.data?.webhookSigningSecret ?? null);
  };

  const rotateSecret = async () => {
    setError(null);
    setStatus(null);
    const answer = await rotate({});
    if (answer.error) {
      setError(describeError(answer.error));
      return;
    }
    setSecret(answer.data?.rotateWebhookSigningSecret.secret ?? null);
    setStatus('A new signing secret signs from now on; the one it replaces signs beside it for 24 hours.');
  };

  return (
    <section aria-labelledby={`${ids}-heading`}>
      <h2 id={`${ids}-heading`}>The organisation's signing secret</h2>
      <p className="hint">
        It signs the webhooks named at submission (a task's own webhook URL), not those of the endpoints above, which have
        their own.
      </p>
      {secret === null ? (
        <button type="button" className="secondary" disabled={reading} onClick={() => void show()}>
          {reading ? 'Reading…' : 'Show the signing secret'}
        </button>
      ) : (
        <div className="signing-secret">
          <CopyField label="Organisation signing secret" value={secret} />
          <button type="button" className="secondary" onClick={() => setSecret(null)}>
            Hide the signing secret
          </button>
        </div>
      )}
      <div className="signing-rotate">
        <ConfirmButton
          label="Rotate the signing secret"
          question="Make a new signing secret for the organisation? The old one signs beside it for 24 hours."
          confirmLabel="Yes, rotate it"
          onConfirm={rotateSecret}
        />
      </div>
      <Status message={status} />
      <Alert message={error} />
    </section>
  );
}
