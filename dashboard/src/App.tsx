import { useCallback, useEffect, useState } from 'react';
import { Provider } from 'urql';
import { Link, Route, Router, Switch, useRoute } from 'wouter';
import { connect, type Connection } from './client.ts';
import { describeError } from './errors.ts';
import { graphql } from './gql/index.ts';
import { AdminPages } from './pages/admin/AdminPages.tsx';
import { Overview } from './pages/Overview.tsx';
import { TaskDetail } from './pages/TaskDetail.tsx';
import { Tasks } from './pages/Tasks.tsx';
import { forgetKey, readKey, saveKey } from './session.ts';
import { SignIn } from './SignIn.tsx';
import { ViewerContext, type Viewer } from './viewer.ts';

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
      <ViewerContext.Provider value={state.viewer}>
        <Router base="/dashboard">
          <header className="bar">
            <span className="brand">Taskport</span>
            <nav aria-label="Pages">
              <NavLink href="/" exact>
                Overview
              </NavLink>
              <NavLink href="/tasks">Tasks</NavLink>
              {state.viewer.key.role === 'ADMIN' && <NavLink href="/admin">Admin</NavLink>}
            </nav>
            <span className="who">
              {state.viewer.key.name} ({state.viewer.key.role}) · {state.viewer.organisation}
            </span>
            <button type="button" onClick={signOut}>
              Sign out
            </button>
          </header>
          <main className="page">
            <Switch>
              <Route path="/" component={Overview} />
              <Route path="/tasks" component={Tasks} />
              <Route path="/tasks/:id">{(params) => <TaskDetail id={params.id} />}</Route>
              <Route path="/admin" nest component={AdminPages} />
              <Route>
                <h1>Not found</h1>
                <p role="alert">The dashboard has no page at this address.</p>
                <Link href="/">Go to the overview</Link>
              </Route>
            </Switch>
          </main>
        </Router>
      </ViewerContext.Provider>
    </Provider>
  );
}

/** A link that says, to the eye and to a screen reader, when it is the page shown. */
function NavLink({ href, exact = false, children }: { href: string; exact?: boolean; children: string }) {
  const [active] = useRoute(exact ? href : `${href}/*?`);
  return (
    <Link href={href} aria-current={active ? 'page' : undefined}>
      {children}
    </Link>
  );
}
