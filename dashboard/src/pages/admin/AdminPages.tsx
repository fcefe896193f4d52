import { useViewer } from '../../viewer.ts';

/** Every admin page sits behind this: a MEMBER key sees a refusal, never the page. */
export function AdminPages() {
  const viewer = useViewer();
  if (viewer.key.role !== 'ADMIN') {
    return (
      <>
        <h1>Admin</h1>
        <p role="alert" className="error">
          This page needs an ADMIN key; {viewer.key.name} is a {viewer.key.role} key.
        </p>
      </>
    );
  }
  return <h1>Admin</h1>;
}
