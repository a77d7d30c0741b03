import * as z from 'zod/mini';
import { defineModel, defineRegistry, field, MAX_TEXT_LENGTH, type ModelDef } from './registry';

/**
 * The synced models (contract section 3), each declared ONCE here. Records are snake_case with
 * uuid ids; every record belongs to exactly one scope, `<scope.prefix>:<scope.field>`. Everything
 * else is derived: zod schemas and types (below), the API's validation and routes, the delta
 * service's snapshot queries, the tables' SQL and the commit function
 * (`@openagents/sync-server-kit` model-sql). Every record also has `id`, `created_at`,
 * `updated_at` and `created_sync_id` (the id, in the record's scope log, of the event that
 * inserted it, so lists sort in commit order; optional because older records lack it).
 * docs/models.md: how to add a field or a model.
 */

export { MAX_TEXT_LENGTH };

const AGENT_STATUSES = ['idle', 'running', 'error', 'stopped'] as const;
const MESSAGE_ROLES = ['user', 'assistant', 'system', 'tool'] as const;
const PAYMENT_STATUSES = ['pending', 'settled', 'failed'] as const;
const CODE_CHANGE_STATUSES = ['proposed', 'applied', 'rejected'] as const;
const TOOL_CALL_STATUSES = ['pending', 'running', 'succeeded', 'failed'] as const;
export const AgentStatus = z.enum(AGENT_STATUSES);
export const MessageRole = z.enum(MESSAGE_ROLES);
export const PaymentStatus = z.enum(PAYMENT_STATUSES);
export const CodeChangeStatus = z.enum(CODE_CHANGE_STATUSES);
export const ToolCallStatus = z.enum(TOOL_CALL_STATUSES);

const AgentModel = defineModel({
  name: 'Agent',
  table: 'agents',
  scope: { prefix: 'org', field: 'org_id' },
  fields: {
    org_id: field.uuid(),
    name: field.text({ min: 1, max: 200, check: true }),
    status: field.enum(AGENT_STATUSES).default('idle'),
  },
});

const MessageModel = defineModel({
  name: 'Message',
  table: 'messages',
  scope: { prefix: 'agent', field: 'agent_id' },
  fields: {
    agent_id: field.uuid().references('Agent'),
    role: field.enum(MESSAGE_ROLES),
    content: field.text().appendable(),
  },
});

const PaymentModel = defineModel({
  name: 'Payment',
  table: 'payments',
  scope: { prefix: 'org', field: 'org_id' },
  fields: {
    org_id: field.uuid(),
    agent_id: field.uuid().nullable().immutable().references('Agent', { sameScope: true }),
    amount: field.bigint(),
    currency: field.text({ pattern: /^[A-Z]{3}$/, patternMessage: 'ISO 4217 code, e.g. USD', check: true }),
    status: field.enum(PAYMENT_STATUSES).default('pending'),
  },
  indexes: [{ name: 'payments_agent_id_idx', columns: ['agent_id'], where: 'agent_id IS NOT NULL' }],
});

const CodeChangeModel = defineModel({
  name: 'CodeChange',
  table: 'code_changes',
  scope: { prefix: 'agent', field: 'agent_id' },
  fields: {
    agent_id: field.uuid().references('Agent'),
    path: field.text({ min: 1, max: 1024 }),
    diff: field.text(),
    status: field.enum(CODE_CHANGE_STATUSES).default('proposed'),
  },
});

const ReasoningStepModel = defineModel({
  name: 'ReasoningStep',
  table: 'reasoning_steps',
  scope: { prefix: 'agent', field: 'agent_id' },
  fields: {
    agent_id: field.uuid().references('Agent'),
    message_id: field.uuid().nullable().references('Message', { sameScope: true }),
    content: field.text().appendable(),
  },
  indexes: [
    { name: 'reasoning_steps_message_id_idx', columns: ['message_id'], where: 'message_id IS NOT NULL' },
  ],
});

/** A tool the agent called: its arguments, its result once it has one, and where it stands. */
const ToolCallModel = defineModel({
  name: 'ToolCall',
  table: 'tool_calls',
  scope: { prefix: 'agent', field: 'agent_id' },
  fields: {
    agent_id: field.uuid().references('Agent'),
    message_id: field.uuid().nullable().immutable().references('Message', { sameScope: true }),
    name: field.text({ min: 1, max: 200, check: true }),
    arguments: field.json().default({}),
    result: field.json().nullable(),
    status: field.enum(TOOL_CALL_STATUSES).default('pending'),
  },
  indexes: [{ name: 'tool_calls_message_id_idx', columns: ['message_id'], where: 'message_id IS NOT NULL' }],
});

/** The built-in registry: the models the services sync unless a deployment passes its own. */
export const MODEL_REGISTRY = defineRegistry([
  AgentModel,
  MessageModel,
  PaymentModel,
  CodeChangeModel,
  ReasoningStepModel,
  ToolCallModel,
]);

type Models = (typeof MODEL_REGISTRY.models)[number];
type ModelOf<M extends ModelName> = Extract<Models, { name: M }>;

export const MODEL_NAMES = MODEL_REGISTRY.names;
export const ModelName = z.enum(MODEL_NAMES);
export type ModelName = z.infer<typeof ModelName>;

/** The declaration of each built-in model, by name. */
export const MODELS = Object.fromEntries(MODEL_REGISTRY.models.map((m) => [m.name, m])) as {
  readonly [M in ModelName]: ModelOf<M>;
};

export const Agent = AgentModel.record;
export const Message = MessageModel.record;
export const Payment = PaymentModel.record;
export const CodeChange = CodeChangeModel.record;
export const ReasoningStep = ReasoningStepModel.record;
export const ToolCall = ToolCallModel.record;

export type ModelRecords = { [M in ModelName]: ModelOf<M>['$types']['record'] };
export type Agent = ModelRecords['Agent'];
export type Message = ModelRecords['Message'];
export type Payment = ModelRecords['Payment'];
export type CodeChange = ModelRecords['CodeChange'];
export type ReasoningStep = ModelRecords['ReasoningStep'];
export type ToolCall = ModelRecords['ToolCall'];
export type AnyRecord = ModelRecords[ModelName];

/** Typed per model: a create body as a client writes it (id optional, defaults optional). */
export type CreateInput<M extends ModelName> = ModelOf<M>['$types']['insert'];
/** Typed per model: an update body, any subset of the fields that are not immutable. */
export type UpdateInput<M extends ModelName> = ModelOf<M>['$types']['update'];
/** The text fields of a model that appends may extend (never for a model without one). */
export type AppendField<M extends ModelName> = ModelOf<M>['$types']['appendField'];

function byModel<T>(pick: (m: Models) => T): { readonly [M in ModelName]: T } {
  return Object.fromEntries(MODEL_REGISTRY.models.map((m) => [m.name, pick(m)])) as never;
}

export const recordSchemas = byModel((m) => m.record) as { readonly [M in ModelName]: ModelOf<M>['record'] };

/**
 * Create bodies: the client may supply the id; timestamps are the server's. Defaults follow the
 * declarations (Agent.status idle, Payment.status pending, nullable fields null, ...).
 */
export const createSchemas = byModel((m) => m.create) as { readonly [M in ModelName]: ModelOf<M>['create'] };

/**
 * Update bodies: any subset of the mutable fields. Fields that decide the scope (org_id,
 * agent_id), immutable ones and the id/timestamps are not accepted: strict, the error names them.
 */
export const updateSchemas = byModel((m) => m.update) as { readonly [M in ModelName]: ModelOf<M>['update'] };

/** REST path segment for each model: `/api/<path>`. */
export const MODEL_PATHS = byModel((m) => m.path) as { readonly [M in ModelName]: string };

export function modelForPath(path: string): ModelName | undefined {
  return MODEL_REGISTRY.forPath(path)?.name as ModelName | undefined;
}

/** The field whose value decides a record's scope, and the scope's prefix. */
export const SCOPE_KEYS = byModel((m) => m.scope) as {
  readonly [M in ModelName]: ModelOf<M>['scope'];
};

/** The fields of each model that can be appended to (an empty tuple for a model without one). */
export const APPENDABLE_FIELDS = byModel((m) => m.appendableFields) as {
  readonly [M in ModelName]: [AppendField<M>] extends [never] ? readonly [] : readonly AppendField<M>[];
};

/** The scope a record belongs to, e.g. `org:<org_id>` for an Agent. */
export function scopeOf(model: ModelName | ModelDef, record: Record<string, unknown>): string {
  const { field: scopeField, prefix } = typeof model === 'string' ? SCOPE_KEYS[model] : model.scope;
  return `${prefix}:${String(record[scopeField])}`;
}
