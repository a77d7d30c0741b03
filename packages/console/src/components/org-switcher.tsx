import { type FormEvent, useState } from 'react';
import { shortId } from '../format';
import { newId } from '../new-id';
import { isUuid } from '../route';

/** The current org, and a small form to open another one (or a brand-new, empty one). */
export function OrgSwitcher({ orgId, onOpen }: { orgId: string; onOpen: (orgId: string) => void }) {
  const [editing, setEditing] = useState(false);
  const [value, setValue] = useState('');
  const valid = isUuid(value.trim());
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!valid) return;
    onOpen(value.trim().toLowerCase());
    setEditing(false);
    setValue('');
  };
  if (!editing) {
    return (
      <button
        type="button"
        className="org-chip"
        title={`${orgId} (click to switch)`}
        onClick={() => setEditing(true)}
      >
        org <strong className="mono">{shortId(orgId)}</strong>
      </button>
    );
  }
  return (
    <form className="org-switcher" onSubmit={submit}>
      <input
        // biome-ignore lint/a11y/noAutofocus: the form opens on an explicit click
        autoFocus
        value={value}
        onChange={(e) => setValue(e.target.value)}
        onKeyDown={(e) => e.key === 'Escape' && setEditing(false)}
        placeholder="org uuid"
        aria-label="Org id"
        className="mono"
      />
      <button type="submit" disabled={!valid}>
        Open
      </button>
      <button
        type="button"
        onClick={() => {
          onOpen(newId());
          setEditing(false);
        }}
      >
        New org
      </button>
      <button type="button" className="ghost" onClick={() => setEditing(false)}>
        Cancel
      </button>
    </form>
  );
}
