import { useEffect, useId, useRef, useState, type ReactNode } from 'react';
import type { CombinedError } from 'urql';
import { describeError } from '../../errors.ts';
import { formatDate } from '../../format.ts';

/** A mutation's typed failure (a union member implementing Error), as the server words it. */
export interface TypedError {
  __typename?: string;
  message?: string;
  field?: string | null;
}

/**
 * The message to show for a mutation's answer: the transport's or GraphQL's error, else the
 * union member's own message when it is not the success type; null when it succeeded.
 */
export function failureOf(
  error: CombinedError | undefined,
  result: TypedError | null | undefined,
  success: string,
): string | null {
  if (error) return describeError(error);
  if (!result) return 'The server answered without data.';
  if (result.__typename === success) return null;
  const field = result.field ? ` (${result.field})` : '';
  return `${result.message ?? 'The server refused the request.'}${field}`;
}

/** Parses a JSON text box: empty is `empty`; otherwise the value, or the parser's complaint. */
export function parseJson(text: string, empty: unknown = undefined): { value: unknown } | { error: string } {
  if (text.trim() === '') return { value: empty };
  try {
    return { value: JSON.parse(text) };
  } catch (reason) {
    return { error: `Not valid JSON: ${reason instanceof Error ? reason.message : String(reason)}` };
  }
}

export function Alert({ message }: { message: string | null }) {
  if (message === null) return null;
  return (
    <p role="alert" className="error">
      {message}
    </p>
  );
}

export function Status({ message }: { message: string | null }) {
  return (
    <p role="status" className="admin-status">
      {message}
    </p>
  );
}

/**
 * A secret the server shows only in this answer: marked as such, with a Copy button, until the
 * person dismisses it. It takes the focus so that a screen reader announces it.
 */
export function ShownOnce({
  title,
  values,
  onDismiss,
  children,
}: {
  title: string;
  values: ReadonlyArray<{ label: string; value: string; secret?: boolean }>;
  onDismiss: () => void;
  children?: ReactNode;
}) {
  const headingId = useId();
  const box = useRef<HTMLElement>(null);
  useEffect(() => box.current?.focus(), []);
  return (
    <section className="shown-once" aria-labelledby={headingId} tabIndex={-1} ref={box}>
      <h2 id={headingId}>{title}</h2>
      <p className="shown-once-warning">
        <strong>Copy it now: it will not be shown again.</strong> Only a hash of it is kept.
      </p>
      {values.map(({ label, value }) => (
        <CopyField key={label} label={label} value={value} />
      ))}
      {children}
      <button type="button" onClick={onDismiss}>
        I have copied it; hide it
      </button>
    </section>
  );
}

export function CopyField({ label, value }: { label: string; value: string }) {
  const id = useId();
  const [copied, setCopied] = useState<string | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied(`${label} copied.`);
    } catch {
      setCopied(`The browser refused to copy: select the text and copy it yourself.`);
    }
  };
  return (
    <div className="copy-field">
      <label htmlFor={id}>{label}</label>
      <div className="copy-row">
        <input id={id} readOnly value={value} onFocus={(event) => event.currentTarget.select()} spellCheck={false} />
        <button type="button" onClick={() => void copy()} aria-label={`Copy ${label.toLowerCase()}`}>
          Copy
        </button>
      </div>
      <span role="status" className="sub">
        {copied}
      </span>
    </div>
  );
}

/**
 * A destructive action in two steps: the first button asks, the second (which takes the focus)
 * does it; "Keep" or Escape goes back.
 */
export function ConfirmButton({
  label,
  target,
  question,
  confirmLabel,
  onConfirm,
  disabled = false,
}: {
  label: string;
  /** What it acts on: part of the buttons' names, written out only to screen readers (the row shows it). */
  target?: string;
  question: string;
  confirmLabel: string;
  onConfirm: () => void | Promise<void>;
  disabled?: boolean;
}) {
  const named = (text: string) => (target ? <>{text}<Hidden> {target}</Hidden></> : text);
  const [asking, setAsking] = useState(false);
  const confirm = useRef<HTMLButtonElement>(null);
  const ask = useRef<HTMLButtonElement>(null);
  // Focus follows the question, and goes back to the first button when it is withdrawn.
  const asked = useRef(false);
  useEffect(() => {
    if (asking) confirm.current?.focus();
    else if (asked.current) ask.current?.focus();
    asked.current = asking;
  }, [asking]);
  if (!asking) {
    return (
      <button type="button" className="danger" ref={ask} disabled={disabled} onClick={() => setAsking(true)}>
        {named(label)}
      </button>
    );
  }
  return (
    <span
      className="confirm"
      role="group"
      aria-label={question}
      onKeyDown={(event) => {
        if (event.key === 'Escape') setAsking(false);
      }}
    >
      <span>{question}</span>
      <button
        type="button"
        className="danger solid"
        ref={confirm}
        onClick={() => {
          setAsking(false);
          void onConfirm();
        }}
      >
        {named(confirmLabel)}
      </button>
      <button type="button" className="secondary" onClick={() => setAsking(false)}>
        Keep
      </button>
    </span>
  );
}

export function Hidden({ children }: { children: ReactNode }) {
  return <span className="visually-hidden">{children}</span>;
}

export function DateCell({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <>—</>;
  return <time dateTime={iso}>{formatDate(iso)}</time>;
}

/** Cursor paging over a connection, newest page first: the cursors of the pages before this one. */
export function usePager() {
  const [stack, setStack] = useState<Array<string | null>>([null]);
  const after = stack[stack.length - 1] ?? null;
  return {
    after,
    page: stack.length,
    next: (cursor: string | null | undefined) => {
      if (cursor) setStack((current) => [...current, cursor]);
    },
    previous: () => setStack((current) => (current.length > 1 ? current.slice(0, -1) : current)),
    first: () => setStack([null]),
  };
}

export function Pager({
  pager,
  hasNextPage,
  endCursor,
  label,
}: {
  pager: ReturnType<typeof usePager>;
  hasNextPage: boolean;
  endCursor: string | null | undefined;
  label: string;
}) {
  if (pager.page === 1 && !hasNextPage) return null;
  return (
    <nav className="pager" aria-label={label}>
      <button type="button" className="secondary" disabled={pager.page === 1} onClick={pager.previous}>
        Previous page
      </button>
      <span>Page {pager.page}</span>
      <button type="button" className="secondary" disabled={!hasNextPage} onClick={() => pager.next(endCursor)}>
        Next page
      </button>
    </nav>
  );
}
