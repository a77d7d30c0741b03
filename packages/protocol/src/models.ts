import * as z from 'zod/mini';

/**
 * The five synced models of the contract (section 3). Records are snake_case with uuid ids;
 * every record belongs to exactly one scope, derived from the fields in `scopeOf`.
 */

const uuid = z.uuid();
const timestamp = z.string();

/**
 * Fields every record has. `created_sync_id` is the server's: the id, in the record's scope log,
 * of the event that inserted it (set in the same transaction), so lists can sort in commit order.
 * Optional and nullable because records older than the field, or read from an older server, lack it.
 */
const base = {
  id: uuid,
  created_at: timestamp,
  updated_at: timestamp,
  created_sync_id: z.optional(z.nullable(z.int())),
};

export const AgentStatus = z.enum(['idle', 'running', 'error', 'stopped']);
export const MessageRole = z.enum(['user', 'assistant', 'system', 'tool']);
export const PaymentStatus = z.enum(['pending', 'settled', 'failed']);
export const CodeChangeStatus = z.enum(['proposed', 'applied', 'rejected']);

/** Upper bound for free-text fields (message content, diffs); the HTTP body limit is the hard cap. */
export const MAX_TEXT_LENGTH = 256 * 1024;
const text = z.string().check(z.maxLength(MAX_TEXT_LENGTH));

export const Agent = z.object({
  ...base,
  org_id: uuid,
  name: z.string().check(z.minLength(1), z.maxLength(200)),
  status: AgentStatus,
});
export const Message = z.object({ ...base, agent_id: uuid, role: MessageRole, content: text });
export const Payment = z.object({
  ...base,
  org_id: uuid,
  agent_id: z.nullable(uuid),
  amount: z.int().check(z.gte(-(2 ** 53 - 1)), z.lte(2 ** 53 - 1)),
  currency: z.string().check(z.regex(/^[A-Z]{3}$/, 'ISO 4217 code, e.g. USD')),
  status: PaymentStatus,
});
export const CodeChange = z.object({
  ...base,
  agent_id: uuid,
  path: z.string().check(z.minLength(1), z.maxLength(1024)),
  diff: text,
  status: CodeChangeStatus,
});
export const ReasoningStep = z.object({
  ...base,
  agent_id: uuid,
  message_id: z.nullable(uuid),
  content: text,
});

export type Agent = z.infer<typeof Agent>;
export type Message = z.infer<typeof Message>;
export type Payment = z.infer<typeof Payment>;
export type CodeChange = z.infer<typeof CodeChange>;
export type ReasoningStep = z.infer<typeof ReasoningStep>;

export const MODEL_NAMES = ['Agent', 'Message', 'Payment', 'CodeChange', 'ReasoningStep'] as const;
export const ModelName = z.enum(MODEL_NAMES);
export type ModelName = z.infer<typeof ModelName>;

export interface ModelRecords {
  Agent: Agent;
  Message: Message;
  Payment: Payment;
  CodeChange: CodeChange;
  ReasoningStep: ReasoningStep;
}
export type AnyRecord = ModelRecords[ModelName];

export const recordSchemas = { Agent, Message, Payment, CodeChange, ReasoningStep } as const;

/** Fields only the server sets: never accepted in a create body. */
const timestamps = { created_at: true, updated_at: true, created_sync_id: true } as const;

/**
 * Create bodies: the client may supply the id; timestamps are the server's.
 * Defaults follow the contract (Agent.status idle, Payment.status pending, ...).
 */
export const createSchemas = {
  Agent: z.strictObject({
    ...z.omit(Agent, timestamps).shape,
    id: z.optional(uuid),
    status: z._default(AgentStatus, 'idle'),
  }),
  Message: z.strictObject({ ...z.omit(Message, timestamps).shape, id: z.optional(uuid) }),
  Payment: z.strictObject({
    ...z.omit(Payment, timestamps).shape,
    id: z.optional(uuid),
    agent_id: z._default(z.nullable(uuid), null),
    status: z._default(PaymentStatus, 'pending'),
  }),
  CodeChange: z.strictObject({
    ...z.omit(CodeChange, timestamps).shape,
    id: z.optional(uuid),
    status: z._default(CodeChangeStatus, 'proposed'),
  }),
  ReasoningStep: z.strictObject({
    ...z.omit(ReasoningStep, timestamps).shape,
    id: z.optional(uuid),
    message_id: z._default(z.nullable(uuid), null),
  }),
} as const;

/**
 * Update bodies: any subset of the mutable fields, at least one. Fields that decide the scope
 * (org_id, agent_id) and the id/timestamps are not accepted: `.strict()` names them in the error.
 */
export const updateSchemas = {
  Agent: z.strictObject(z.partial(z.pick(Agent, { name: true, status: true })).shape),
  Message: z.strictObject(z.partial(z.pick(Message, { role: true, content: true })).shape),
  Payment: z.strictObject(z.partial(z.pick(Payment, { amount: true, currency: true, status: true })).shape),
  CodeChange: z.strictObject(z.partial(z.pick(CodeChange, { path: true, diff: true, status: true })).shape),
  ReasoningStep: z.strictObject(z.partial(z.pick(ReasoningStep, { message_id: true, content: true })).shape),
} as const;

export type CreateInput<M extends ModelName> = z.input<(typeof createSchemas)[M]>;
export type UpdateInput<M extends ModelName> = z.input<(typeof updateSchemas)[M]>;

/** REST path segment for each model: `/api/<path>`. */
export const MODEL_PATHS = {
  Agent: 'agents',
  Message: 'messages',
  Payment: 'payments',
  CodeChange: 'code-changes',
  ReasoningStep: 'reasoning-steps',
} as const satisfies Record<ModelName, string>;

export function modelForPath(path: string): ModelName | undefined {
  return MODEL_NAMES.find((m) => MODEL_PATHS[m] === path);
}

/** The field whose value decides a record's scope, and the scope's prefix. */
export const SCOPE_KEYS = {
  Agent: { field: 'org_id', prefix: 'org' },
  Message: { field: 'agent_id', prefix: 'agent' },
  Payment: { field: 'org_id', prefix: 'org' },
  CodeChange: { field: 'agent_id', prefix: 'agent' },
  ReasoningStep: { field: 'agent_id', prefix: 'agent' },
} as const satisfies Record<ModelName, { field: string; prefix: string }>;

/** The scope a record belongs to, e.g. `org:<org_id>` for an Agent. */
export function scopeOf(model: ModelName, record: Record<string, unknown>): string {
  const { field, prefix } = SCOPE_KEYS[model];
  return `${prefix}:${String(record[field])}`;
}
