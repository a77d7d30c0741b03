-- Up Migration

-- Domain tables (contract section 3). Scope-deciding columns (org_id, agent_id) are never updated
-- by the API. Foreign keys RESTRICT: a cascade would change rows without writing their events.
CREATE TABLE agents (
  id          uuid PRIMARY KEY,
  org_id      uuid NOT NULL,
  name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  status      text NOT NULL DEFAULT 'idle' CHECK (status IN ('idle', 'running', 'error', 'stopped')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agents_org_id_idx ON agents (org_id, created_at);

CREATE TABLE messages (
  id          uuid PRIMARY KEY,
  agent_id    uuid NOT NULL REFERENCES agents (id) ON DELETE RESTRICT,
  role        text NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')),
  content     text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_agent_id_idx ON messages (agent_id, created_at);

CREATE TABLE payments (
  id          uuid PRIMARY KEY,
  org_id      uuid NOT NULL,
  agent_id    uuid REFERENCES agents (id) ON DELETE RESTRICT,
  amount      bigint NOT NULL,
  currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'settled', 'failed')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_org_id_idx ON payments (org_id, created_at);
CREATE INDEX payments_agent_id_idx ON payments (agent_id) WHERE agent_id IS NOT NULL;

CREATE TABLE code_changes (
  id          uuid PRIMARY KEY,
  agent_id    uuid NOT NULL REFERENCES agents (id) ON DELETE RESTRICT,
  path        text NOT NULL,
  diff        text NOT NULL,
  status      text NOT NULL DEFAULT 'proposed' CHECK (status IN ('proposed', 'applied', 'rejected')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX code_changes_agent_id_idx ON code_changes (agent_id, created_at);

CREATE TABLE reasoning_steps (
  id          uuid PRIMARY KEY,
  agent_id    uuid NOT NULL REFERENCES agents (id) ON DELETE RESTRICT,
  message_id  uuid REFERENCES messages (id) ON DELETE RESTRICT,
  content     text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reasoning_steps_agent_id_idx ON reasoning_steps (agent_id, created_at);
CREATE INDEX reasoning_steps_message_id_idx ON reasoning_steps (message_id) WHERE message_id IS NOT NULL;

-- The head of each scope's log. A writer increments last_id with an UPDATE (or the first INSERT),
-- which row-locks the scope until its transaction ends: the next writer of the same scope waits,
-- then reads the committed value. So id N+1 is only ever assigned after N has committed (or
-- rolled back, in which case N is assigned again): ids are gap-free and in commit order, and no
-- reader can see N+1 before N. A bigserial would hand out ids before commit and let N+1 commit
-- (and be read) while N is still in flight — a reader at cursor N+1 would then skip N forever.
-- pruned_through: every event with id <= pruned_through has been deleted by retention.
CREATE TABLE sync_scopes (
  scope           text PRIMARY KEY,
  last_id         bigint NOT NULL,
  pruned_through  bigint NOT NULL DEFAULT 0,
  updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The log. Keyed by (scope, id) so a replay is one index range scan; hash-partitioned by scope so
-- the index and vacuum work stay per partition as volume grows. created_at is clock_timestamp()
-- taken after the scope lock, so within a scope it rises with id; pruning uses its index.
CREATE TABLE sync_events (
  scope        text NOT NULL,
  id           bigint NOT NULL,
  model        text NOT NULL,
  model_id     uuid NOT NULL,
  action       text NOT NULL CHECK (action IN ('insert', 'update', 'delete')),
  data         jsonb,
  mutation_id  text,
  created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (scope, id)
) PARTITION BY HASH (scope);

DO $$
BEGIN
  FOR i IN 0..15 LOOP
    EXECUTE format(
      'CREATE TABLE sync_events_p%s PARTITION OF sync_events FOR VALUES WITH (MODULUS 16, REMAINDER %s)',
      lpad(i::text, 2, '0'), i);
  END LOOP;
END $$;
CREATE INDEX sync_events_created_at_idx ON sync_events (created_at);

-- Idempotency: the first result of a keyed write, answered again to a retry. Keys are namespaced
-- by the token's subject so one user cannot read another's results by guessing keys.
CREATE TABLE idempotency_keys (
  principal     text NOT NULL,
  key           text NOT NULL,
  request_hash  text NOT NULL,
  response      jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (principal, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- Down Migration
DROP TABLE idempotency_keys;
DROP TABLE sync_events;
DROP TABLE sync_scopes;
DROP TABLE reasoning_steps;
DROP TABLE code_changes;
DROP TABLE payments;
DROP TABLE messages;
DROP TABLE agents;
