import { useCallback, useEffect, useState } from 'react';
import { Provider } from 'urql';
import { connect, type Connection } from './client.ts';
import { describeError } from './errors.ts';
import { graphql } from './gql/index.ts';
import type { ViewerQuery } from './gql/graphql.ts';
import { Overview } from './Overview.tsx';
import { forgetKey, readKey, saveKey } from './session.ts';
import { SignIn } from './SignIn.tsx';

const viewerQuery = graphql(`
  query Viewer {
    viewer {
      organisation
      key {
        name
        role
      }
    }
  }
`);

type Viewer = ViewerQuery['viewer'];

type State =
  | { kind: 'signedOut'; error: string | null }
  | { kind: 'checking' }
  | { kind: 'signedIn'; connection: Connection; viewer: Viewer };

/** Resolves to the viewer, or to the message that says why the key does not sign in. */
async function checkKey(connection: Connection): Promise<{ viewer: Viewer } | { error: string }> {
  const result = await connection.client.query(viewerQuery, {}, { requestPolicy: 'network-only' }).toPromise();
  if (result.error) return { error: describeError(result.error) };
  if (!result.data) return { error: 'The server answered without data.' };
  return { viewer: result.data.viewer };
}

export function App() {
  const [state, setState] = useState<State>(() =>
    readKey() === null ? { kind: 'signedOut', error: null } : { kind: 'checking' },
  );

  const signIn = useCallback(async (key: string) => {
    setState({ kind: 'checking' });
    const connection = connect(key);
    const checked = await checkKey(connection);
    if ('error' in checked) {
      connection.close();
      forgetKey();
      setState({ kind: 'signedOut', error: checked.error });
      return;
    }
    saveKey(key);
    setState({ kind: 'signedIn', connection, viewer: checked.viewer });
  }, []);

  // A reload keeps the tab's key: check it again rather than trust it.
  useEffect(() => {
    const stored = readKey();
    if (stored !== null) void signIn(stored);
  }, [signIn]);

  const signOut = useCallback(() => {
    if (state.kind === 'signedIn') state.connection.close();
    forgetKey();
    setState({ kind: 'signedOut', error: null });
  }, [state]);

  if (state.kind === 'checking') {
    return (
      <main className="page narrow">
        <p role="status">Checking the API key…</p>
      </main>
    );
  }
  if (state.kind === 'signedOut') return <SignIn error={state.error} onSubmit={signIn} />;

  return (
    <Provider value={state.connection.client}>
      <header className="bar">
        <span className="brand">Taskport</span>
        <nav aria-label="Pages">
          <a href="#overview" aria-current="page">
            Overview
          </a>
        </nav>
        <span className="who">
          {state.viewer.key.name} ({state.viewer.key.role}) · {state.viewer.organisation}
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main className="page" id="overview">
        <Overview />
      </main>
    </Provider>
  );
}
