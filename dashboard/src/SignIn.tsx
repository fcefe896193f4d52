import { useId, useState, type FormEvent } from 'react';

interface Props {
  error: string | null;
  onSubmit(key: string): void;
}

export function SignIn({ error, onSubmit }: Props) {
  const [key, setKey] = useState('');
  const inputId = useId();
  const errorId = useId();

  function submit(event: FormEvent) {
    event.preventDefault();
    const trimmed = key.trim();
    if (trimmed !== '') onSubmit(trimmed);
  }

  return (
    <main className="page narrow">
      <h1>Sign in to Taskport</h1>
      <form onSubmit={submit} className="signin">
        <label htmlFor={inputId}>API key</label>
        <input
          id={inputId}
          autoFocus
          type="password"
          autoComplete="off"
          spellCheck={false}
          required
          value={key}
          onChange={(event) => setKey(event.target.value)}
          aria-invalid={error !== null}
          aria-describedby={error !== null ? errorId : undefined}
        />
        <p className="hint">The key stays in this tab only (sessionStorage) and is sent with every request.</p>
        {error !== null && (
          <p id={errorId} role="alert" className="error">
            {error}
          </p>
        )}
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}
