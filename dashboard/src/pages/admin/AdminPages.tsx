import { Link, Route, Switch, useRoute } from 'wouter';
import { useViewer } from '../../viewer.ts';
import './admin.css';
import { Allocations } from './Allocations.tsx';
import { Keys } from './Keys.tsx';
import { Retrieval } from './Retrieval.tsx';
import { ScheduleDetail } from './ScheduleDetail.tsx';
import { Schedules } from './Schedules.tsx';
import { WebhookDeliveries } from './WebhookDeliveries.tsx';
import { Webhooks } from './Webhooks.tsx';

const PAGES: ReadonlyArray<{ href: string; label: string; about: string }> = [
  { href: '/keys', label: 'API keys', about: 'Create keys with a role, permissions and rate limits; revoke them.' },
  {
    href: '/allocations',
    label: 'Allocations',
    about: 'Reserve warm instances of a real-time action, mint execution URLs and revoke their tokens.',
  },
  { href: '/retrieval', label: 'Retrieval protocol', about: 'How results of tasks submitted from now on are delivered.' },
  { href: '/schedules', label: 'Schedules', about: 'Tasks from cron expressions: create, pause, resume, trigger, delete.' },
  {
    href: '/webhooks',
    label: 'Webhook endpoints',
    about: 'URLs told of the events of every task, their signing secrets and their deliveries.',
  },
];

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
  return (
    <div className="admin">
      <nav aria-label="Admin pages" className="admin-nav">
        <SubLink href="/" exact>
          Admin
        </SubLink>
        {PAGES.map((page) => (
          <SubLink key={page.href} href={page.href}>
            {page.label}
          </SubLink>
        ))}
      </nav>
      <Switch>
        <Route path="/">
          <AdminIndex />
        </Route>
        <Route path="/keys" component={Keys} />
        <Route path="/allocations" component={Allocations} />
        <Route path="/retrieval" component={Retrieval} />
        <Route path="/schedules" component={Schedules} />
        <Route path="/schedules/:id">{(params) => <ScheduleDetail id={decodeParam(params.id)} />}</Route>
        <Route path="/webhooks" component={Webhooks} />
        <Route path="/webhooks/:id">{(params) => <WebhookDeliveries id={decodeParam(params.id)} />}</Route>
        <Route>
          <h1>Not found</h1>
          <p role="alert">The admin pages have no page at this address.</p>
          <Link href="/">Go to the admin pages</Link>
        </Route>
      </Switch>
    </div>
  );
}

function decodeParam(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function AdminIndex() {
  return (
    <>
      <h1>Admin</h1>
      <p className="hint">The organisation's keys, capacity, delivery of results, schedules and webhooks.</p>
      <ul className="admin-index">
        {PAGES.map((page) => (
          <li key={page.href}>
            <Link href={page.href}>{page.label}</Link>
            <span className="sub"> — {page.about}</span>
          </li>
        ))}
      </ul>
    </>
  );
}

function SubLink({ href, exact = false, children }: { href: string; exact?: boolean; children: string }) {
  const [active] = useRoute(exact ? href : `${href}/*?`);
  return (
    <Link href={href} aria-current={active ? 'page' : undefined}>
      {children}
    </Link>
  );
}
