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
    expect(s.records.get('Agent', A1)?.name).toBe('one');
    s.applyEvent(event('update', A1, { name: 'uno', updated_at: 't1' }));
    s.commit();
    expect(s.records.get('Agent', A1)).toMatchObject({ name: 'uno', updated_at: 't1', org_id: ORG });
    s.applyEvent(event('delete', A1, null));
    s.commit();
    expect(s.records.get('Agent', A1)).toBeUndefined();
  });

  it('keeps identity of untouched records and lists, and reports what changed', () => {
    const s = new RecordStore();
    const scope = `org:${ORG}`;
    s.replaceScope(scope, { Agent: [agent(A1, 'one'), agent(A2, 'two')] });
    s.replaceScope(`org:${ORG2}`, { Agent: [agent(A3, 'other', ORG2)] });
    s.commit();
    const before = s.records;
    const one = before.get('Agent', A1);
    const list = before.list(scope, 'Agent');
    const otherList = before.list(`org:${ORG2}`, 'Agent');
    const payments = before.list(scope, 'Payment');
    s.applyEvent(event('update', A2, { name: 'deux' }));
    const changes = s.commit();
    expect([...(changes?.keys() ?? [])]).toEqual([scope]);
    expect([...(changes?.get(scope)?.get('Agent') ?? [])]).toEqual([A2]);
    expect(s.records).not.toBe(before);
    expect(s.records.list(scope, 'Agent')).not.toBe(list);
    expect(list.map((a) => a.name)).toEqual(['one', 'two']); // a handed-out list never changes
    expect(s.records.list(scope, 'Agent').map((a) => a.name)).toEqual(['one', 'deux']);
    expect(s.records.get('Agent', A1)).toBe(one);
    expect(s.records.list(`org:${ORG2}`, 'Agent')).toBe(otherList);
    expect(s.records.list(scope, 'Payment')).toBe(payments);
    // An update that changes nothing visible keeps everything.
    const after = s.records;
    s.applyEvent(event('update', A1, { name: 'one' }));
    expect(s.commit()).toBeUndefined();
    expect(s.records).toBe(after);
  });

  it('keeps lists in commit order: created_sync_id, then id; unconfirmed inserts last, as made', () => {
    const s = new RecordStore();
    const scope = `org:${ORG}`;
    const ids = Array.from(
      { length: 40 },
      (_, i) => `10000000-0000-4000-8000-${String(i + 100).padStart(12, '0')}`,
    );
    // Bootstrap rows arrive in no particular order; some share a created_sync_id (tie: id).
    const rows = ids.map((id, i) => ({ ...agent(id, `a${i}`), created_sync_id: Math.floor(i / 2) + 1 }));
    s.replaceScope(scope, { Agent: [...rows].reverse() });
    s.commit();
    expect(s.records.list(scope, 'Agent').map((a) => a.id)).toEqual(ids);
    // Optimistic inserts sort last, in the order they were made, whatever their ids.
    const late = ['1fffffff-0000-4000-8000-000000000001', '10000000-0000-4000-8000-000000000000'];
    for (const id of late) s.addPending(pending({ action: 'insert', id, data: { org_id: ORG, name: id } }));
    s.commit();
    expect(s.records.list(scope, 'Agent').map((a) => a.id)).toEqual([...ids, ...late]);
    // Confirmed: the insert event carries its created_sync_id, and the record moves into place.
    s.applyEvent({ ...event('insert', late[1]!, { ...agent(late[1]!, 'x'), created_sync_id: 5 }) });
    s.commit();
    const order = s.records.list(scope, 'Agent').map((a) => a.id);
    // After the rows of ids 1..4, and before the two other rows of id 5, whose ids sort after it.
    expect(order.indexOf(late[1]!)).toBe(8);
    expect(order.slice(9, 11)).toEqual([ids[8], ids[9]]);
    expect(order.at(-1)).toBe(late[0]);
    // Updates keep a record's place; deletes close the gap.
    s.applyEvent(event('update', ids[0]!, { name: 'first' }));
    s.applyEvent(event('delete', ids[1]!, null));
    s.commit();
    const next = s.records.list(scope, 'Agent');
    expect(next[0]?.name).toBe('first');
    expect(next.map((a) => a.id)).not.toContain(ids[1]);
    expect(next).toHaveLength(ids.length + 1);
  });

  it('applies append pieces by offset: covered pieces skipped, a gap refused', () => {
    const s = new RecordStore();
    const scope = `org:${ORG}`;
    s.replaceScope(scope, { Agent: [agent(A1, 'Sc')] });
    const piece = (offset: number, text: string) =>
      s.applyEvent(event('append', A1, { field: 'name', offset, text, updated_at: `t${offset}` }));
    expect(piece(2, 'out')).toBe('applied');
    expect(piece(0, 'Sco')).toBe('applied'); // covered: nothing changes
    expect(piece(3, 'ut ')).toBe('applied'); // overlaps: only the new part is added
    expect(piece(9, '!')).toBe('gap');
    expect(s.applyEvent(event('append', A1, { field: 'name', offset: -1, text: 'x' }))).toBe('invalid');
    s.commit();
    expect(s.records.get('Agent', A1)).toMatchObject({ name: 'Scout ', updated_at: 't3' });
  });

  it('replaceScope replaces only that scope', () => {
    const s = new RecordStore();
    s.replaceScope(`org:${ORG}`, { Agent: [agent(A1, 'one'), agent(A2, 'two')] });
    s.replaceScope(`org:${ORG2}`, { Agent: [agent(A3, 'other', ORG2)] });
    s.commit();
    const other = s.records.get('Agent', A3);
    s.replaceScope(`org:${ORG}`, { Agent: [agent(A2, 'two!')] });
    s.commit();
    expect(
      s.records
        .all('Agent')
        .map((r) => r.id)
        .sort(),
    ).toEqual([A2, A3].sort());
    expect(s.records.get('Agent', A3)).toBe(other);
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
    expect(s.records.all('Agent').map((r) => r.id)).toEqual([A1]);
    expect(s.records.get('Agent', '__proto__')).toBeUndefined();
    expect(s.records.all('Message')).toEqual([]);
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
    expect(s.records.get('Agent', A2)).toMatchObject({ id: A2, name: 'new', created_at: 'tc' });
    expect(s.records.get('Agent', A1)?.name).toBe('mine');
    // A server update to another field shows through; ours still wins on name.
    s.applyEvent(event('update', A1, { status: 'running' }));
    s.commit();
    expect(s.records.get('Agent', A1)).toMatchObject({ name: 'mine', status: 'running' });
    // A reset that forgets everything keeps the pending layer on top.
    s.replaceScope(`org:${ORG}`, { Agent: [agent(A1, 'reset')] });
    s.commit();
    expect(s.records.get('Agent', A1)?.name).toBe('mine');
    expect(s.records.get('Agent', A2)?.name).toBe('new');
    s.addPending(del);
    s.commit();
    expect(s.records.get('Agent', A1)).toBeUndefined();
    s.removePending(del.mutationId);
    s.removePending(upd.mutationId);
    s.removePending(ins.mutationId);
    s.commit();
    expect(s.records.get('Agent', A1)?.name).toBe('reset');
    expect(s.records.get('Agent', A2)).toBeUndefined();
    expect(s.pending).toEqual([]);
  });

  it('ignores an update for an unknown record, server or pending', () => {
    const s = new RecordStore();
    s.applyEvent(event('update', A3, { name: 'ghost' }));
    s.addPending(pending({ action: 'update', id: A3, data: { name: 'ghost' } }));
    s.commit();
    expect(s.records.get('Agent', A3)).toBeUndefined();
  });
});
