import type { SyncEvent } from '@openagents/sync-protocol';
import { describe, expect, it } from 'vitest';
import { RecordStore } from './record-store';
import type { PendingMutation } from './types';

const ORG = '00000000-0000-4000-8000-000000000001';
const ORG2 = '00000000-0000-4000-8000-000000000002';
const A1 = '10000000-0000-4000-8000-000000000001';
const A2 = '10000000-0000-4000-8000-000000000002';
const A3 = '10000000-0000-4000-8000-000000000003';

const agent = (id: string, name: string, org = ORG) => ({
  id,
  org_id: org,
  name,
  status: 'idle',
  created_at: 't0',
  updated_at: 't0',
});

let seq = 0;
function event(action: SyncEvent['action'], id: string, data: Record<string, unknown> | null): SyncEvent {
  return {
    id: ++seq,
    scope: `org:${ORG}`,
    model: 'Agent',
    model_id: id,
    action,
    data,
    mutationId: null,
    created_at: 't',
  };
}

function pending(p: Partial<PendingMutation> & Pick<PendingMutation, 'action' | 'id'>): PendingMutation {
  return {
    mutationId: `m-${Math.random()}`,
    model: 'Agent',
    data: null,
    status: 'sending',
    createdAt: 'tc',
    attempts: 0,
    ...p,
  };
}

describe('RecordStore', () => {
  it('applies insert, update and delete events', () => {
    const s = new RecordStore();
    s.applyEvent(event('insert', A1, agent(A1, 'one')));
    s.commit();
    expect(s.records.Agent[A1]?.name).toBe('one');
    s.applyEvent(event('update', A1, { name: 'uno', updated_at: 't1' }));
    s.commit();
    expect(s.records.Agent[A1]).toMatchObject({ name: 'uno', updated_at: 't1', org_id: ORG });
    s.applyEvent(event('delete', A1, null));
    s.commit();
    expect(s.records.Agent[A1]).toBeUndefined();
  });

  it('keeps identity of untouched records and untouched model maps', () => {
    const s = new RecordStore();
    s.replaceScope(`org:${ORG}`, { Agent: [agent(A1, 'one'), agent(A2, 'two')] });
    s.commit();
    const before = s.records;
    s.applyEvent(event('update', A2, { name: 'deux' }));
    expect(s.commit()).toBe(true);
    expect(s.records).not.toBe(before);
    expect(s.records.Agent).not.toBe(before.Agent);
    expect(s.records.Agent[A1]).toBe(before.Agent[A1]);
    expect(s.records.Message).toBe(before.Message);
    // An update that changes nothing visible keeps everything.
    const after = s.records;
    s.applyEvent(event('update', A1, { name: 'one' }));
    expect(s.commit()).toBe(false);
    expect(s.records).toBe(after);
  });

  it('replaceScope replaces only that scope', () => {
    const s = new RecordStore();
    s.replaceScope(`org:${ORG}`, { Agent: [agent(A1, 'one'), agent(A2, 'two')] });
    s.replaceScope(`org:${ORG2}`, { Agent: [agent(A3, 'other', ORG2)] });
    s.commit();
    const other = s.records.Agent[A3];
    s.replaceScope(`org:${ORG}`, { Agent: [agent(A2, 'two!')] });
    s.commit();
    expect(Object.keys(s.records.Agent).sort()).toEqual([A2, A3].sort());
    expect(s.records.Agent[A3]).toBe(other);
    expect(s.snapshotScope(`org:${ORG}`).Agent).toEqual([agent(A2, 'two!')]);
  });

  it('keeps hostile or misplaced bootstrap rows out', () => {
    const s = new RecordStore();
    s.replaceScope(`org:${ORG}`, {
      Agent: [
        agent(A1, 'ok'),
        { ...agent(A2, 'other org'), org_id: ORG2 },
        { ...agent(A3, 'proto'), id: '__proto__' },
        { name: 'no id', org_id: ORG },
      ],
      Message: [{ id: A3, agent_id: 'x', content: 'wrong scope kind' }],
    });
    s.commit();
    expect(Object.keys(s.records.Agent)).toEqual([A1]);
    expect(Object.getPrototypeOf(s.records.Agent)).toBe(Object.prototype);
    expect(s.records.Message).toEqual({});
  });

  it('overlays pending mutations in order, above every server change', () => {
    const s = new RecordStore();
    s.replaceScope(`org:${ORG}`, { Agent: [agent(A1, 'one')] });
    const ins = pending({ action: 'insert', id: A2, data: { org_id: ORG, name: 'new', status: 'idle' } });
    const upd = pending({ action: 'update', id: A1, data: { name: 'mine' } });
    const del = pending({ action: 'delete', id: A1 });
    s.addPending(ins);
    s.addPending(upd);
    s.commit();
    expect(s.records.Agent[A2]).toMatchObject({ id: A2, name: 'new', created_at: 'tc' });
    expect(s.records.Agent[A1]?.name).toBe('mine');
    // A server update to another field shows through; ours still wins on name.
    s.applyEvent(event('update', A1, { status: 'running' }));
    s.commit();
    expect(s.records.Agent[A1]).toMatchObject({ name: 'mine', status: 'running' });
    // A reset that forgets everything keeps the pending layer on top.
    s.replaceScope(`org:${ORG}`, { Agent: [agent(A1, 'reset')] });
    s.commit();
    expect(s.records.Agent[A1]?.name).toBe('mine');
    expect(s.records.Agent[A2]?.name).toBe('new');
    s.addPending(del);
    s.commit();
    expect(s.records.Agent[A1]).toBeUndefined();
    s.removePending(del.mutationId);
    s.removePending(upd.mutationId);
    s.removePending(ins.mutationId);
    s.commit();
    expect(s.records.Agent[A1]?.name).toBe('reset');
    expect(s.records.Agent[A2]).toBeUndefined();
    expect(s.pending).toEqual([]);
  });

  it('ignores an update for an unknown record, server or pending', () => {
    const s = new RecordStore();
    s.applyEvent(event('update', A3, { name: 'ghost' }));
    s.addPending(pending({ action: 'update', id: A3, data: { name: 'ghost' } }));
    s.commit();
    expect(s.records.Agent[A3]).toBeUndefined();
  });
});
