import { type FormEvent, useState } from 'react';
import { isTokenLike } from '../config';

/** Asks for a token when the page was opened without one (no injected config, no `?token=`). */
export function TokenGate({ onToken }: { onToken: (token: string) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const value = token.trim();
    if (!isTokenLike(value)) {
      setError('That does not look like a JWT (three base64url parts separated by dots).');
      return;
    }
    onToken(value);
  };
  return (
    <div className="gate">
      <form onSubmit={submit}>
        <div className="brand">
          <span className="brand-mark" />
          <h1>OpenAgents Sync console</h1>
        </div>
        <p>
          Paste a token to connect. <code>npm start</code> prints a ready-made dev token, and serves this page
          with it already filled in.
        </p>
        <textarea
          value={token}
          onChange={(e) => setToken(e.target.value)}
          rows={4}
          placeholder="eyJhbGciOiJIUzI1NiJ9…"
          aria-label="Token"
          className="mono"
        />
        {error && <span className="error-line">{error}</span>}
        <button type="submit" className="primary">
          Connect
        </button>
      </form>
    </div>
  );
}
