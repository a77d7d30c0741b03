import { MAX_BATCH_MUTATIONS, MODEL_REGISTRY } from '@openagents/sync-protocol';
import { AppError } from '@openagents/sync-server-kit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type FieldIssue,
  parsePathId,
  planAppend,
  planBatch,
  planCreate,
  planDelete,
  planUpdate,
} from './mutation-plan';
import { requestHash } from './request-hash';

const ORG = '0000000a-0000-4000-8000-0000000000aa';
const AGENT = '2000000b-0000-4000-8000-0000000000bb';
const MSG = '3000000c-0000-4000-8000-0000000000cc';
const upper = (id: string) => id.toUpperCase();
const single = (method: string, path: string, key: string | null = null) => ({ key, method, path });

/** The error a plan throws: its code, status and field issues. */
function refusal(plan: () => unknown): { code: string; status: number; details: FieldIssue[] } {
  try {
    plan();
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    return { code: error.code, status: error.status, details: error.details as FieldIssue[] };
  }
  throw new Error('the plan was accepted');
}

describe('single-record plans', () => {
  it('plans a create with defaults, the given key, its scope and a hash of the request', () => {
    const body = { org_id: ORG, name: 'scout', id: AGENT };
    const plan = planCreate('Agent', body, single('POST', '/api/agents', 'k1'));
    expect(plan).toEqual({
      action: 'insert',
      model: 'Agent',
      def: MODEL_REGISTRY.get('Agent'),
      id: AGENT,
      values: { org_id: ORG, name: 'scout', id: AGENT, status: 'idle' },
      scope: `org:${ORG}`,
      mutationId: 'k1',
      requestHash: requestHash('POST', '/api/agents', body),
      at: { data: '', id: 'id', key: 'Idempotency-Key' },
    });
  });

  it('gives a create without an id a fresh lowercase uuid', () => {
    const a = planCreate('Message', { agent_id: AGENT, role: 'user', content: 'hi' }, single('POST', '/p'));
    const b = planCreate('Message', { agent_id: AGENT, role: 'user', content: 'hi' }, single('POST', '/p'));
    expect(a.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a.values.id).toBe(a.id);
    expect(b.id).not.toBe(a.id);
    expect(a.scope).toBe(`agent:${AGENT}`);
    expect(a.mutationId).toBeNull();
  });

  it('lowercases every uuid before the scope and the id are taken from it', () => {
    const plan = planCreate(
      'ReasoningStep',
      { id: upper(MSG), agent_id: upper(AGENT), message_id: upper(MSG), content: 'x' },
      single('POST', '/api/reasoning-steps'),
    );
    expect(plan.id).toBe(MSG);
    expect(plan.values).toMatchObject({ id: MSG, agent_id: AGENT, message_id: MSG });
    expect(plan.scope).toBe(`agent:${AGENT}`);
    expect(planCreate('Payment', validPayment(upper(ORG)), single('POST', '/p')).scope).toBe(`org:${ORG}`);
  });

  it('plans update, append and delete by a canonical id, with no scope until the row is read', () => {
    const update = planUpdate('Agent', upper(AGENT), { status: 'running' }, single('PATCH', '/u', 'k'));
    expect(update).toMatchObject({ action: 'update', id: AGENT, fields: { status: 'running' }, scope: null });
    expect(update.requestHash).toBe(requestHash('PATCH', '/u', { status: 'running' }));
    const append = planAppend(
      'Message',
      upper(MSG),
      { field: 'content', offset: 3, text: 'lo' },
      single('POST', '/a'),
    );
    expect(append).toMatchObject({
      action: 'append',
      id: MSG,
      append: { field: 'content', offset: 3, text: 'lo' },
      scope: null,
    });
    const remove = planDelete('CodeChange', upper(AGENT), single('DELETE', '/d', 'k2'));
    expect(remove).toMatchObject({ action: 'delete', id: AGENT, scope: null, mutationId: 'k2' });
    expect(remove.requestHash).toBe(requestHash('DELETE', '/d', undefined));
  });

  it('drops undefined fields of an update and lowercases a uuid field it sets', () => {
    const plan = planUpdate(
      'ReasoningStep',
      AGENT,
      { message_id: upper(MSG), content: undefined },
      single('PATCH', '/u'),
    );
    expect(plan.fields).toEqual({ message_id: MSG });
  });

  it('parsePathId accepts a uuid in either case, canonical, and refuses anything else', () => {
    expect(parsePathId(upper(AGENT))).toBe(AGENT);
    for (const bad of ['', 'nope', `${AGENT}x`, '../agents']) {
      expect(refusal(() => parsePathId(bad))).toEqual({
        code: 'bad_request',
        status: 400,
        details: [{ path: 'id', message: 'must be a uuid' }],
      });
    }
  });
});

function validPayment(org = ORG) {
  return { org_id: org, amount: 100, currency: 'USD' };
}

describe('single-record errors', () => {
  it('names every problem of a create body by its field', () => {
    const { code, status, details } = refusal(() =>
      planCreate('Agent', { org_id: 'x', name: '', colour: 'red' }, single('POST', '/p')),
    );
    expect([code, status]).toEqual(['invalid_body', 400]);
    expect(details.map((d) => d.path).sort()).toEqual(['colour', 'name', 'org_id']);
    expect(details.find((d) => d.path === 'colour')?.message).toBe('unknown field colour');
  });

  it('says why the server-owned and scope fields cannot be written', () => {
    const create = refusal(() =>
      planCreate('Agent', { org_id: ORG, name: 'a', created_at: 't' }, single('POST', '/p')),
    );
    expect(create.details).toEqual([{ path: 'created_at', message: 'created_at cannot be set' }]);
    const update = refusal(() => planUpdate('Message', MSG, { agent_id: AGENT }, single('PATCH', '/p')));
    expect(update.details).toEqual([
      { path: 'agent_id', message: "agent_id decides the record's scope and cannot be changed" },
    ]);
  });

  it('refuses an empty update, a body that is not an object, NUL and lone surrogates', () => {
    expect(refusal(() => planUpdate('Agent', AGENT, {}, single('PATCH', '/p'))).details).toEqual([
      { path: '(body)', message: 'an update needs at least one field' },
    ]);
    expect(refusal(() => planUpdate('Agent', AGENT, { name: undefined }, single('PATCH', '/p'))).code).toBe(
      'invalid_body',
    );
    expect(refusal(() => planCreate('Agent', [1, 2], single('POST', '/p'))).details[0]!.path).toBe('(body)');
    expect(refusal(() => planCreate('Agent', null, single('POST', '/p'))).code).toBe('invalid_body');
    const nul = refusal(() => planUpdate('Message', MSG, { content: 'a\u0000b' }, single('PATCH', '/p')));
    expect(nul.details).toEqual([{ path: 'content', message: 'must not contain NUL characters' }]);
    const surrogate = refusal(() =>
      planCreate('Message', { agent_id: AGENT, role: 'user', content: 'x\uD800' }, single('POST', '/p')),
    );
    expect(surrogate.details).toEqual([
      { path: 'content', message: 'must be well-formed Unicode (no lone surrogates)' },
    ]);
    // A well-formed pair is fine.
    expect(
      planCreate('Message', { agent_id: AGENT, role: 'user', content: '😀' }, single('POST', '/p')).values
        .content,
    ).toBe('😀');
  });

  it('appends only to the appendable fields of a model, with clean text', () => {
    expect(
      refusal(() => planAppend('Message', MSG, { field: 'role', offset: 0, text: 'x' }, single('POST', '/p')))
        .details,
    ).toEqual([{ path: 'field', message: 'must be one of: content' }]);
    expect(
      refusal(() => planAppend('Agent', AGENT, { field: 'name', offset: 0, text: 'x' }, single('POST', '/p')))
        .details,
    ).toEqual([{ path: 'field', message: 'Agent has no field to append to' }]);
    expect(
      refusal(() =>
        planAppend('Message', MSG, { field: 'content', offset: 0, text: '\u0000' }, single('POST', '/p')),
      ).details,
    ).toEqual([{ path: 'text', message: 'must not contain NUL characters' }]);
    const paths = refusal(() =>
      planAppend('Message', MSG, { field: 'content', offset: -1, text: 5, extra: 1 }, single('POST', '/p')),
    ).details.map((d) => d.path);
    expect(paths.sort()).toEqual(['extra', 'offset', 'text']);
  });
});

describe('batch plans', () => {
  it('plans every action in order, with per-entry keys, paths and hashes', () => {
    const plans = planBatch({
      mutations: [
        {
          mutationId: 'a',
          model: 'Agent',
          action: 'insert',
          id: upper(AGENT),
          data: { org_id: ORG, name: 'n' },
        },
        { mutationId: 'b', model: 'Agent', action: 'update', id: upper(AGENT), data: { name: 'm' } },
        { model: 'Message', action: 'append', id: MSG, data: { field: 'content', offset: 0, text: 't' } },
        { mutationId: 'd', model: 'Message', action: 'delete', id: upper(MSG) },
      ],
    });
    expect(plans.map((p) => [p.action, p.id, p.mutationId, p.scope, p.at.data])).toEqual([
      ['insert', AGENT, 'a', `org:${ORG}`, 'mutations.0.data.'],
      ['update', AGENT, 'b', null, 'mutations.1.data.'],
      ['append', MSG, null, null, 'mutations.2.data.'],
      ['delete', MSG, 'd', null, 'mutations.3.data.'],
    ]);
    expect(plans[0]).toMatchObject({ values: { id: AGENT, org_id: ORG, name: 'n', status: 'idle' } });
    expect(plans[1]).toMatchObject({ fields: { name: 'm' } });
    expect(plans[2]).toMatchObject({ append: { field: 'content', offset: 0, text: 't' } });
    expect(plans[3]!.at).toEqual({
      data: 'mutations.3.data.',
      id: 'mutations.3.id',
      key: 'mutations.3.mutationId',
    });
    // The hash covers what the entry does, not where it sits: a retry in another batch matches.
    expect(plans[1]!.requestHash).toBe(
      requestHash('MUTATION', `Agent/update/${upper(AGENT)}`, { name: 'm' }),
    );
    expect(plans[3]!.requestHash).toBe(requestHash('MUTATION', `Message/delete/${upper(MSG)}`, null));
  });

  it('takes an insert id from the entry or its data, in any case, and refuses two different ones', () => {
    const [fromEntry, fromData, both] = planBatch({
      mutations: [
        { model: 'Agent', action: 'insert', id: upper(AGENT), data: { org_id: ORG, name: 'n' } },
        { model: 'Agent', action: 'insert', data: { id: upper(MSG), org_id: upper(ORG), name: 'n' } },
        { model: 'Agent', action: 'insert', id: ORG, data: { id: upper(ORG), org_id: ORG, name: 'n' } },
      ],
    });
    expect([fromEntry!.id, fromData!.id, both!.id]).toEqual([AGENT, MSG, ORG]);
    expect(fromData!.scope).toBe(`org:${ORG}`);
    const { details } = refusal(() =>
      planBatch({
        mutations: [
          { model: 'Agent', action: 'insert', id: AGENT, data: { id: MSG, org_id: ORG, name: 'n' } },
        ],
      }),
    );
    expect(details).toEqual([{ path: 'mutations.0.data.id', message: 'differs from mutations.0.id' }]);
  });

  it('collects the problems of every entry, each at its own path, and plans nothing', () => {
    const { code, details } = refusal(() =>
      planBatch({
        mutations: [
          { mutationId: 'k', model: 'Agent', action: 'insert', data: { org_id: ORG, name: 'ok' } },
          { mutationId: 'k', model: 'Agent', action: 'delete', id: AGENT },
          { model: 'Agent', action: 'insert' },
          { model: 'Agent', action: 'update', data: { name: 'x' } },
          { model: 'Agent', action: 'update', id: AGENT },
          { model: 'Agent', action: 'delete' },
          { model: 'Agent', action: 'delete', id: AGENT, data: {} },
          { model: 'Message', action: 'append', data: { field: 'content', offset: 0, text: 'x' } },
          { model: 'Agent', action: 'update', id: AGENT, data: { org_id: ORG } },
          { model: 'Message', action: 'append', id: MSG, data: { field: 'role', offset: 0, text: 'x' } },
          { model: 'Message', action: 'insert', data: { agent_id: AGENT, role: 'user', content: '\u0000' } },
        ],
      }),
    );
    expect(code).toBe('invalid_body');
    expect(details).toEqual([
      { path: 'mutations.1.mutationId', message: 'duplicate of mutations.0.mutationId' },
      { path: 'mutations.2.data', message: 'insert needs data' },
      { path: 'mutations.3.id', message: 'update needs an id' },
      { path: 'mutations.4.data', message: 'update needs data' },
      { path: 'mutations.5.id', message: 'delete needs an id' },
      { path: 'mutations.6.data', message: 'delete takes no data' },
      { path: 'mutations.7.id', message: 'append needs an id' },
      { path: 'mutations.8.data.org_id', message: "org_id decides the record's scope and cannot be changed" },
      { path: 'mutations.9.data.field', message: 'must be one of: content' },
      { path: 'mutations.10.data.content', message: 'must not contain NUL characters' },
    ]);
  });

  it('refuses a malformed batch as a whole: not an object, empty, too long, unknown model or action', () => {
    const paths = (body: unknown) => refusal(() => planBatch(body)).details.map((d) => d.path);
    expect(paths(null)).toEqual(['(body)']);
    expect(paths({ mutations: [] })).toEqual(['mutations']);
    const entry = { model: 'Agent', action: 'delete', id: AGENT };
    expect(paths({ mutations: Array(MAX_BATCH_MUTATIONS + 1).fill(entry) })).toEqual(['mutations']);
    expect(paths({ mutations: [{ ...entry, model: 'User' }] })).toEqual(['mutations.0.model']);
    expect(paths({ mutations: [{ ...entry, action: 'upsert' }] })).toEqual(['mutations.0.action']);
    expect(paths({ mutations: [entry], extra: 1 })).toEqual(['extra']);
  });

  it('never throws anything but an invalid_body AppError, whatever the entries hold', () => {
    const entry = fc.record(
      {
        mutationId: fc.oneof(fc.constantFrom('k1', 'k2'), fc.string({ maxLength: 3 })),
        model: fc.constantFrom('Agent', 'Message', 'Payment', 'CodeChange', 'ReasoningStep', 'Nope'),
        action: fc.constantFrom('insert', 'update', 'delete', 'append', 'upsert'),
        id: fc.oneof(fc.constantFrom(AGENT, upper(MSG)), fc.string({ maxLength: 4 })),
        data: fc.oneof(
          fc.dictionary(
            fc.constantFrom('id', 'org_id', 'agent_id', 'name', 'content', 'field', 'offset', 'text', 'role'),
            fc.oneof(
              fc.constantFrom(ORG, upper(AGENT), 'content', 'user', '\u0000', '\uDC00'),
              fc.jsonValue(),
            ),
          ),
          fc.jsonValue(),
        ),
      },
      { requiredKeys: ['model', 'action'] },
    );
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 6 }), (mutations) => {
        let plans: ReturnType<typeof planBatch>;
        try {
          plans = planBatch({ mutations });
        } catch (error) {
          expect(error).toBeInstanceOf(AppError);
          expect((error as AppError).code).toBe('invalid_body');
          expect((error as AppError).details).not.toEqual([]);
          return;
        }
        // Whatever was accepted is canonical.
        for (const plan of plans) {
          expect(plan.id).toBe(plan.id.toLowerCase());
          if (plan.scope !== null) expect(plan.scope).toBe(plan.scope.toLowerCase());
        }
      }),
      { numRuns: 300 },
    );
  });
});
