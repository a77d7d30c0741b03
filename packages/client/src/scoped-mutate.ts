import {
  type CreateInput,
  MODEL_NAMES,
  type ModelName,
  SCOPE_KEYS,
  type UpdateInput,
  type WriteResult,
} from '@openagents/sync-protocol';
import type { MutationInput, SyncClient } from './sync-client';

type ScopeKeys = typeof SCOPE_KEYS;

/**
 * The models whose records live in scopes like `S`: `agent:…` → Message, CodeChange,
 * ReasoningStep; `org:…` → Agent, Payment; every model when `S` is just `string`.
 */
export type ScopeModel<S extends string> = S extends `${infer P}:${string}`
  ? string extends P
    ? ModelName
    : { [M in ModelName]: ScopeKeys[M]['prefix'] extends P ? M : never }[ModelName]
  : ModelName;

/** The field that ties a model's records to their scope (`agent_id`, `org_id`). */
export type ScopeField<M extends ModelName> = ScopeKeys[M]['field'];

/**
 * An insert's body inside a scope: the model's create input, where the scope's own field may be
 * left out (it is filled from the scope). Any other unknown field is a compile-time error.
 */
export type ScopedInsertInput<M extends ModelName> = Omit<CreateInput<M>, ScopeField<M>> &
  Partial<Pick<CreateInput<M>, ScopeField<M> & keyof CreateInput<M>>>;

/**
 * Writes bound to one scope and typed per model (from the protocol's schemas): a wrong field or
 * a model of another kind of scope does not compile, and at run time a write that would land in
 * another scope is refused before anything is applied.
 */
export interface ScopedMutate<S extends string = string> {
  /** A raw write (as `client.mutate`), checked to stay in this scope. */
  (input: MutationInput): Promise<WriteResult>;
  insert<M extends ScopeModel<S>>(
    model: M,
    data: ScopedInsertInput<M>,
    options?: { mutationId?: string },
  ): Promise<WriteResult>;
  update<M extends ScopeModel<S>>(
    model: M,
    id: string,
    data: UpdateInput<M>,
    options?: { mutationId?: string },
  ): Promise<WriteResult>;
  remove(model: ScopeModel<S>, id: string, options?: { mutationId?: string }): Promise<WriteResult>;
  readonly scope: S;
}

/**
 * Binds writes to a scope.
 *
 * @example
 * const mutate = createScopedMutate(client, `agent:${agentId}` as const);
 * await mutate.insert('Message', { role: 'user', content: 'hi' }); // agent_id filled in
 * // mutate.insert('Message', { role: 'user', body: 'hi' }) — does not compile
 */
export function createScopedMutate<S extends string>(client: SyncClient, scope: S): ScopedMutate<S> {
  const colon = scope.indexOf(':');
  const prefix = scope.slice(0, colon);
  const key = scope.slice(colon + 1);
  const check = (model: string): ModelName => {
    if (!(MODEL_NAMES as readonly string[]).includes(model)) throw new TypeError(`unknown model ${model}`);
    const m = model as ModelName;
    if (SCOPE_KEYS[m].prefix !== prefix) throw new TypeError(`${m} records do not live in ${scope}`);
    return m;
  };
  const bind = (model: ModelName, data: Record<string, unknown> | undefined) => {
    const field = SCOPE_KEYS[model].field;
    const given = data?.[field];
    if (given !== undefined && String(given).toLowerCase() !== key.toLowerCase()) {
      throw new TypeError(`${field} ${String(given)} is not the scope's (${scope})`);
    }
    return { ...data, [field]: key };
  };
  const guarded = (write: () => Promise<WriteResult>): Promise<WriteResult> => {
    try {
      return write();
    } catch (error) {
      return Promise.reject(error);
    }
  };
  const mutate = ((input: MutationInput) =>
    guarded(() => {
      const model = check(input.model);
      return client.mutate(
        input.action === 'insert' ? { ...input, model, data: bind(model, input.data) } : input,
      );
    })) as ScopedMutate<S>;
  return Object.assign(mutate, {
    scope,
    insert: (model: string, data: object, options: { mutationId?: string } = {}) =>
      guarded(() => {
        const m = check(model);
        return client.mutate({
          model: m,
          action: 'insert',
          data: bind(m, data as Record<string, unknown>),
          ...options,
        });
      }),
    update: (model: string, id: string, data: object, options: { mutationId?: string } = {}) =>
      guarded(() =>
        client.mutate({
          model: check(model),
          action: 'update',
          id,
          data: data as Record<string, unknown>,
          ...options,
        }),
      ),
    remove: (model: string, id: string, options: { mutationId?: string } = {}) =>
      guarded(() => client.mutate({ model: check(model), action: 'delete', id, ...options })),
  }) as ScopedMutate<S>;
}
