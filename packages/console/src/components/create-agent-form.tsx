import { type FormEvent, useState } from 'react';

/** A one-field form that names a new agent (1..200 characters, as the API requires). */
export function CreateAgentForm({ onCreate }: { onCreate: (name: string) => void }) {
  const [name, setName] = useState('');
  const trimmed = name.trim();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!trimmed) return;
    onCreate(trimmed.slice(0, 200));
    setName('');
  };
  return (
    <form className="create-agent" onSubmit={submit}>
      <input
        value={name}
        onChange={(e) => setName(e.target.value)}
        placeholder="New agent name"
        maxLength={200}
        aria-label="New agent name"
        data-testid="new-agent-name"
      />
      <button type="submit" className="primary" disabled={!trimmed} data-testid="create-agent">
        Create
      </button>
    </form>
  );
}
