import { lazy, Suspense, useCallback, useEffect, useState } from 'react';
import { Provider } from 'urql';
import { Link, Route, Router, Switch, useRoute } from 'wouter';
import { connect, type Connection } from './client.ts';
import { describeError } from './errors.ts';
import { graphql } from './gql/index.ts';
import { Tasks } from './pages/Tasks.tsx';
import { forgetSession, readSession, saveSession } from './session.ts';
import { SignIn } from './SignIn.tsx';
import { ViewerContext, type Viewer } from './viewer.ts';

// The task list is in the first file; every other page is a file of its own, fetched when first
// shown, so that what a page load parses is what the list needs.
const Overview = lazy(() => import('./pages/Overview.tsx').then((module) => ({ default: module.Overview })));
const TaskDetail = lazy(() => import('./pages/TaskDetail.tsx').then((module) => ({ default: module.TaskDetail })));
const AdminPages = lazy(() => import('./pages/admin/AdminPages.tsx').then((module) => ({ default: module.AdminPages })));

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
  const [state, setState] = useState<State>(() => {
    const stored = readSession();
    if (stored === null) return { kind: 'signedOut', error: null };
    if (stored.viewer === null) return { kind: 'checking' };
    return { kind: 'signedIn', connection: connect(stored.key), viewer: stored.viewer };
  });

  const refuse = useCallback((connection: Connection, error: string) => {
    connection.close();
    forgetSession();
    setState({ kind: 'signedOut', error });
  }, []);

  const signIn = useCallback(
    async (key: string) => {
      setState({ kind: 'checking' });
      const connection = connect(key);
      const checked = await checkKey(connection);
      if ('error' in checked) return refuse(connection, checked.error);
      saveSession(key, checked.viewer);
      setState({ kind: 'signedIn', connection, viewer: checked.viewer });
    },
    [refuse],
  );

  // A reload keeps the tab's key: the pages draw with the viewer it signed in as, while the key is
  // checked again; a key revoked since then signs out with the reason.
  useEffect(() => {
    const stored = readSession();
    if (stored === null) return;
    if (stored.viewer === null || state.kind !== 'signedIn') {
      void signIn(stored.key);
      return;
    }
    const { connection } = state;
    void checkKey(connection).then((checked) => {
      if ('error' in checked) return refuse(connection, checked.error);
      saveSession(stored.key, checked.viewer);
      setState((current) => (current.kind === 'signedIn' && current.connection === connection ? { ...current, viewer: checked.viewer } : current));
    });
    // Once, for the state the page was loaded in.
  }, []);

  const signOut = useCallback(() => {
    if (state.kind === 'signedIn') state.connection.close();
    forgetSession();
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
            <Suspense fallback={<p role="status">Loading…</p>}>
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
            </Suspense>
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
