-- Up Migration

-- Generated from the model registry (packages/protocol/src/models.ts) by
-- packages/server-kit/src/model-sql-cli.ts; model-sql.pg.test.ts fails when the newest sync_commit
-- differs from what the registry generates, or the tables from what it declares.

-- Appendable fields are rewritten whole on every append: lz4 compresses them several times
-- faster than the default pglz (whose compression was ~14 % of Postgres's CPU per append on an
-- 8,000-character reply). A server built without lz4 keeps pglz.
DO $$
BEGIN
  ALTER TABLE messages ALTER COLUMN content SET COMPRESSION lz4;
  ALTER TABLE reasoning_steps ALTER COLUMN content SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  RAISE NOTICE 'lz4 is not supported by this server: appendable fields stay on pglz';
END
$$;

CREATE OR REPLACE FUNCTION sync_commit(p_members jsonb, p_lock text[]) RETURNS jsonb
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
  h_scope text[] := '{}';
  h_last bigint[] := '{}';
  saved_scope text[];
  saved_last bigint[];
  e_scope text[] := '{}';
  e_id bigint[] := '{}';
  e_model text[] := '{}';
  e_model_id uuid[] := '{}';
  e_action text[] := '{}';
  e_data jsonb[] := '{}';
  e_mid text[] := '{}';
  e_actor text[] := '{}';
  n_events int;
  k_sub text[] := '{}';
  k_key text[] := '{}';
  k_resp jsonb[] := '{}';
  n_keys int;
  results jsonb[] := '{}';
  outs jsonb[];
  member jsonb;
  mut jsonb;
  sub text;
  patterns text[];
  i int;
  _model text;
  _action text;
  rid uuid;
  v jsonb;
  k text;
  rec jsonb;
  sc text;
  pos int;
  sid bigint;
  ts timestamptz;
  ref text;
  prior_hash text;
  prior_resp jsonb;
  _status int;
  _data jsonb;
  edata jsonb;
  resp jsonb;
  events jsonb;
  st text;
  cur text;
  cur_len int;
  a_off int;
  a_text text;
  a_len int;
  chars int;
  last int;
  saved_tail jsonb;
  msg text;
  det text;
  con text;
  fast boolean;
  a_field text;
  f_id uuid[];
  f_sc text[];
  f_off int[];
  f_txt text[];
  f_ts timestamptz[];
  f_sid bigint[];
  f_data jsonb[];
  f_out jsonb[];
BEGIN
  -- Lock the expected heads in sorted order; create the missing ones (a scope's first write).
  SELECT coalesce(array_agg(s.scope ORDER BY s.scope), '{}'), coalesce(array_agg(s.last_id ORDER BY s.scope), '{}')
    INTO h_scope, h_last
    FROM (SELECT scope, last_id FROM sync_scopes WHERE scope = ANY (p_lock) ORDER BY scope FOR UPDATE) s;
  FOR sc IN SELECT x FROM unnest(p_lock) AS x WHERE NOT (x = ANY (h_scope)) ORDER BY x LOOP
    INSERT INTO sync_scopes AS s (scope, last_id) VALUES (sc, 0)
      ON CONFLICT (scope) DO UPDATE SET last_id = s.last_id RETURNING s.last_id INTO sid;
    h_scope := h_scope || sc;
    h_last := h_last || sid;
  END LOOP;

  FOR member IN SELECT jsonb_array_elements(p_members) LOOP
    sub := member->>'sub';
    patterns := ARRAY(SELECT jsonb_array_elements_text(member->'scopes'));
    saved_scope := h_scope;
    saved_last := h_last;
    n_events := cardinality(e_id);
    n_keys := cardinality(k_key);
    saved_tail := e_data[n_events];
    outs := '{}';
    i := 0;
    BEGIN
      -- Appends only, without idempotency keys, to distinct records of one model (the append
      -- batcher's joined member: one piece of each of many replies): read, checked, written and
      -- logged by a few set-based statements instead of a dozen statements per append. A member
      -- whose appends would not all simply land (a record missing or not granted, an offset that
      -- is not the length, an empty piece or an exact retry, a scope head not locked yet, a piece
      -- that would merge into the event before) goes through the loop below, which answers each
      -- append exactly; the rows locked here stay locked for it.
      SELECT count(*) > 1 AND bool_and(x->>'a' = 'append' AND x->>'k' IS NULL)
             AND count(DISTINCT x->>'m') = 1 AND count(DISTINCT (x->>'id')::uuid) = count(*),
             min(x->>'m')
        INTO fast, _model
        FROM jsonb_array_elements(member->'muts') AS x;
      IF fast THEN
        CASE _model
          WHEN 'Message' THEN
            a_field := 'content';
            SELECT array_agg(u.id ORDER BY u.n), array_agg(r.sc ORDER BY u.n), array_agg(u.off ORDER BY u.n),
                   array_agg(u.txt ORDER BY u.n),
                   bool_and(coalesce(r.id IS NOT NULL AND u.field = 'content' AND u.txt <> '' AND sync_scope_allowed(patterns, r.sc)
                                     AND u.off = r.cl + CASE WHEN r.ol - r.cl < 3 THEN 0 ELSE regexp_count(r.cur, '[\U00010000-\U0010FFFF]') END,
                                     false))
              INTO f_id, f_sc, f_off, f_txt, fast
              FROM (SELECT t.n, (t.x->>'id')::uuid AS id, t.x->'v'->>'field' AS field, (t.x->'v'->>'offset')::int AS off,
                           t.x->'v'->>'text' AS txt
                      FROM jsonb_array_elements(member->'muts') WITH ORDINALITY AS t(x, n)) AS u
              LEFT JOIN (SELECT r.id, 'agent:' || r.agent_id AS sc, r.content AS cur,
                                char_length(r.content) AS cl, octet_length(r.content) AS ol
                           FROM messages AS r
                          WHERE r.id = ANY (ARRAY(SELECT (x->>'id')::uuid FROM jsonb_array_elements(member->'muts') AS x))
                            FOR UPDATE) AS r ON r.id = u.id;
          WHEN 'ReasoningStep' THEN
            a_field := 'content';
            SELECT array_agg(u.id ORDER BY u.n), array_agg(r.sc ORDER BY u.n), array_agg(u.off ORDER BY u.n),
                   array_agg(u.txt ORDER BY u.n),
                   bool_and(coalesce(r.id IS NOT NULL AND u.field = 'content' AND u.txt <> '' AND sync_scope_allowed(patterns, r.sc)
                                     AND u.off = r.cl + CASE WHEN r.ol - r.cl < 3 THEN 0 ELSE regexp_count(r.cur, '[\U00010000-\U0010FFFF]') END,
                                     false))
              INTO f_id, f_sc, f_off, f_txt, fast
              FROM (SELECT t.n, (t.x->>'id')::uuid AS id, t.x->'v'->>'field' AS field, (t.x->'v'->>'offset')::int AS off,
                           t.x->'v'->>'text' AS txt
                      FROM jsonb_array_elements(member->'muts') WITH ORDINALITY AS t(x, n)) AS u
              LEFT JOIN (SELECT r.id, 'agent:' || r.agent_id AS sc, r.content AS cur,
                                char_length(r.content) AS cl, octet_length(r.content) AS ol
                           FROM reasoning_steps AS r
                          WHERE r.id = ANY (ARRAY(SELECT (x->>'id')::uuid FROM jsonb_array_elements(member->'muts') AS x))
                            FOR UPDATE) AS r ON r.id = u.id;
          ELSE
            fast := false;
        END CASE;
        fast := coalesce(fast, false) AND f_sc <@ h_scope
                AND NOT (cardinality(e_id) > 0 AND e_model_id[cardinality(e_id)] = ANY (f_id));
        IF fast THEN
          f_ts := ARRAY(SELECT clock_timestamp() FROM generate_series(1, cardinality(f_id)));
          CASE _model
            WHEN 'Message' THEN
              UPDATE messages AS r SET content = r.content || u.txt, updated_at = u.ts
                FROM unnest(f_id, f_txt, f_ts) AS u(id, txt, ts) WHERE r.id = u.id;
            WHEN 'ReasoningStep' THEN
              UPDATE reasoning_steps AS r SET content = r.content || u.txt, updated_at = u.ts
                FROM unnest(f_id, f_txt, f_ts) AS u(id, txt, ts) WHERE r.id = u.id;
          END CASE;
          -- Each append's event id: its scope's head plus its rank among this member's appends there.
          SELECT array_agg(a.sid ORDER BY a.n),
                 array_agg(jsonb_build_object('field', a_field, 'offset', a.off, 'text', a.txt,
                                              'updated_at', sync_wire_time(a.ts)) ORDER BY a.n),
                 array_agg(jsonb_build_object('status', 200, 'body', jsonb_build_object(
                             'data', jsonb_build_object('id', a.id, 'length', a.off + sync_utf16_length(a.txt)),
                             'scope', a.sc, 'syncId', a.sid), 'replayed', false) ORDER BY a.n)
            INTO f_sid, f_data, f_out
            FROM (SELECT u.*, h.l + row_number() OVER (PARTITION BY u.sc ORDER BY u.n) AS sid
                    FROM unnest(f_id, f_sc, f_off, f_txt, f_ts) WITH ORDINALITY AS u(id, sc, off, txt, ts, n)
                    JOIN unnest(h_scope, h_last) AS h(s, l) ON h.s = u.sc) AS a;
          h_last := ARRAY(SELECT h.l + coalesce(c.k, 0)
                            FROM unnest(h_scope, h_last) WITH ORDINALITY AS h(s, l, n)
                            LEFT JOIN (SELECT s, count(*) AS k FROM unnest(f_sc) AS s GROUP BY s) AS c ON c.s = h.s
                           ORDER BY h.n);
          e_scope := e_scope || f_sc;
          e_id := e_id || f_sid;
          e_model := e_model || array_fill(_model, ARRAY[cardinality(f_id)]);
          e_model_id := e_model_id || f_id;
          e_action := e_action || array_fill('append'::text, ARRAY[cardinality(f_id)]);
          e_data := e_data || f_data;
          e_mid := e_mid || array_fill(NULL::text, ARRAY[cardinality(f_id)]);
          e_actor := e_actor || array_fill(sub, ARRAY[cardinality(f_id)]);
          outs := f_out;
          i := cardinality(f_id);
        END IF;
      END IF;
      FOR mut IN SELECT jsonb_array_elements(member->'muts') LOOP
        EXIT WHEN fast;
        _model := mut->>'m';
        _action := mut->>'a';
        rid := (mut->>'id')::uuid;
        v := mut->'v';
        k := mut->>'k';

        -- Idempotency: claim the key, or answer from what it stored (same request, scope still
        -- granted). A concurrent uncommitted claim of the same key makes the INSERT wait for it.
        IF k IS NOT NULL THEN
          INSERT INTO idempotency_keys (principal, key, request_hash, response)
            VALUES (sub, k, mut->>'h', 'null') ON CONFLICT DO NOTHING;
          IF NOT FOUND THEN
            SELECT request_hash, response INTO prior_hash, prior_resp
              FROM idempotency_keys WHERE principal = sub AND key = k;
            IF prior_hash IS DISTINCT FROM mut->>'h' THEN
              RAISE EXCEPTION 'idempotency_conflict' USING ERRCODE = 'SY409';
            END IF;
            IF NOT sync_scope_allowed(patterns, prior_resp->'body'->>'scope') THEN
              RAISE EXCEPTION 'replay_forbidden' USING ERRCODE = 'SY403', DETAIL = prior_resp->'body'->>'scope';
            END IF;
            outs := outs || jsonb_build_object('status', prior_resp->'status', 'body', prior_resp->'body', 'replayed', true);
            i := i + 1;
            CONTINUE;
          END IF;
        END IF;

        ts := clock_timestamp();
        rec := NULL;
        IF _action = 'insert' THEN
          sc := CASE WHEN _model IN ('Agent', 'Payment') THEN 'org:' || (v->>'org_id')::uuid WHEN _model IN ('Message', 'CodeChange', 'ReasoningStep', 'ToolCall') THEN 'agent:' || (v->>'agent_id')::uuid END;
          IF NOT sync_scope_allowed(patterns, sc) THEN
            RAISE EXCEPTION 'forbidden' USING ERRCODE = 'SY403', DETAIL = sc;
          END IF;
          IF _model = 'Payment' AND v->>'agent_id' IS NOT NULL THEN
            SELECT org_id::text INTO ref FROM agents WHERE id = (v->>'agent_id')::uuid;
            IF NOT FOUND THEN RAISE EXCEPTION 'agent_missing' USING ERRCODE = 'SY404'; END IF;
            IF ref <> (v->>'org_id')::uuid::text THEN RAISE EXCEPTION 'agent_other_org' USING ERRCODE = 'SY400'; END IF;
          ELSIF _model = 'ReasoningStep' AND v->>'message_id' IS NOT NULL THEN
            SELECT agent_id::text INTO ref FROM messages WHERE id = (v->>'message_id')::uuid;
            IF NOT FOUND THEN RAISE EXCEPTION 'message_missing' USING ERRCODE = 'SY404'; END IF;
            IF ref <> (v->>'agent_id')::uuid::text THEN RAISE EXCEPTION 'message_other_agent' USING ERRCODE = 'SY400'; END IF;
          ELSIF _model = 'ToolCall' AND v->>'message_id' IS NOT NULL THEN
            SELECT agent_id::text INTO ref FROM messages WHERE id = (v->>'message_id')::uuid;
            IF NOT FOUND THEN RAISE EXCEPTION 'message_missing' USING ERRCODE = 'SY404'; END IF;
            IF ref <> (v->>'agent_id')::uuid::text THEN RAISE EXCEPTION 'message_other_agent' USING ERRCODE = 'SY400'; END IF;
          END IF;
        ELSIF _action = 'update' THEN
          CASE _model
            WHEN 'Agent' THEN
              UPDATE agents SET
                name = CASE WHEN v ? 'name' THEN v->>'name' ELSE name END,
                status = CASE WHEN v ? 'status' THEN v->>'status' ELSE status END,
                updated_at = ts
              WHERE id = rid RETURNING to_jsonb(agents.*) INTO rec;
            WHEN 'Message' THEN
              UPDATE messages SET
                role = CASE WHEN v ? 'role' THEN v->>'role' ELSE role END,
                content = CASE WHEN v ? 'content' THEN v->>'content' ELSE content END,
                updated_at = ts
              WHERE id = rid RETURNING to_jsonb(messages.*) INTO rec;
            WHEN 'Payment' THEN
              UPDATE payments SET
                amount = CASE WHEN v ? 'amount' THEN (v->>'amount')::bigint ELSE amount END,
                currency = CASE WHEN v ? 'currency' THEN v->>'currency' ELSE currency END,
                status = CASE WHEN v ? 'status' THEN v->>'status' ELSE status END,
                updated_at = ts
              WHERE id = rid RETURNING to_jsonb(payments.*) INTO rec;
            WHEN 'CodeChange' THEN
              UPDATE code_changes SET
                path = CASE WHEN v ? 'path' THEN v->>'path' ELSE path END,
                diff = CASE WHEN v ? 'diff' THEN v->>'diff' ELSE diff END,
                status = CASE WHEN v ? 'status' THEN v->>'status' ELSE status END,
                updated_at = ts
              WHERE id = rid RETURNING to_jsonb(code_changes.*) INTO rec;
            WHEN 'ReasoningStep' THEN
              UPDATE reasoning_steps SET
                message_id = CASE WHEN v ? 'message_id' THEN (v->>'message_id')::uuid ELSE message_id END,
                content = CASE WHEN v ? 'content' THEN v->>'content' ELSE content END,
                updated_at = ts
              WHERE id = rid RETURNING to_jsonb(reasoning_steps.*) INTO rec;
            WHEN 'ToolCall' THEN
              UPDATE tool_calls SET
                name = CASE WHEN v ? 'name' THEN v->>'name' ELSE name END,
                arguments = CASE WHEN v ? 'arguments' THEN v->'arguments' ELSE arguments END,
                result = CASE WHEN v ? 'result' THEN nullif(v->'result', 'null'::jsonb) ELSE result END,
                status = CASE WHEN v ? 'status' THEN v->>'status' ELSE status END,
                updated_at = ts
              WHERE id = rid RETURNING to_jsonb(tool_calls.*) INTO rec;
          END CASE;
          IF rec IS NULL THEN RAISE EXCEPTION 'not_found' USING ERRCODE = 'SY404'; END IF;
        ELSIF _action = 'delete' THEN
          CASE _model
            WHEN 'Agent' THEN DELETE FROM agents WHERE id = rid RETURNING to_jsonb(agents.*) INTO rec;
            WHEN 'Message' THEN DELETE FROM messages WHERE id = rid RETURNING to_jsonb(messages.*) INTO rec;
            WHEN 'Payment' THEN DELETE FROM payments WHERE id = rid RETURNING to_jsonb(payments.*) INTO rec;
            WHEN 'CodeChange' THEN DELETE FROM code_changes WHERE id = rid RETURNING to_jsonb(code_changes.*) INTO rec;
            WHEN 'ReasoningStep' THEN DELETE FROM reasoning_steps WHERE id = rid RETURNING to_jsonb(reasoning_steps.*) INTO rec;
            WHEN 'ToolCall' THEN DELETE FROM tool_calls WHERE id = rid RETURNING to_jsonb(tool_calls.*) INTO rec;
          END CASE;
          IF rec IS NULL THEN RAISE EXCEPTION 'not_found' USING ERRCODE = 'SY404'; END IF;
        ELSIF _action = 'append' THEN
          CASE _model
            WHEN 'Message' THEN
              SELECT 'agent:' || r.agent_id, r.content INTO sc, cur
                FROM messages AS r WHERE id = rid FOR UPDATE;
            WHEN 'ReasoningStep' THEN
              SELECT 'agent:' || r.agent_id, r.content INTO sc, cur
                FROM reasoning_steps AS r WHERE id = rid FOR UPDATE;
            ELSE
              RAISE EXCEPTION '% has no field to append to', _model USING ERRCODE = 'SY500';
          END CASE;
          IF NOT FOUND THEN RAISE EXCEPTION 'not_found' USING ERRCODE = 'SY404'; END IF;
          IF NOT sync_scope_allowed(patterns, sc) THEN
            RAISE EXCEPTION 'forbidden' USING ERRCODE = 'SY403', DETAIL = sc;
          END IF;
        ELSE
          RAISE EXCEPTION 'unknown action %', _action USING ERRCODE = 'SY500';
        END IF;

        IF _action IN ('update', 'delete') THEN
          -- The scope of an existing record comes from the row itself (scope fields never change).
          sc := CASE WHEN _model IN ('Agent', 'Payment') THEN 'org:' || (rec->>'org_id') WHEN _model IN ('Message', 'CodeChange', 'ReasoningStep', 'ToolCall') THEN 'agent:' || (rec->>'agent_id') END;
          IF NOT sync_scope_allowed(patterns, sc) THEN
            RAISE EXCEPTION 'forbidden' USING ERRCODE = 'SY403', DETAIL = sc;
          END IF;
          IF _action = 'update' AND _model = 'ReasoningStep' AND v ? 'message_id' AND rec->>'message_id' IS NOT NULL THEN
            SELECT agent_id::text INTO ref FROM messages WHERE id = (rec->>'message_id')::uuid;
            IF NOT FOUND THEN RAISE EXCEPTION 'message_missing' USING ERRCODE = 'SY404'; END IF;
            IF ref <> rec->>'agent_id' THEN RAISE EXCEPTION 'message_other_agent' USING ERRCODE = 'SY400'; END IF;
          END IF;
        END IF;

        IF _action = 'append' THEN
          -- Contract v1.1: the piece lands only at the field's current length (UTF-16 units). An
          -- exact retry of a piece already there (same offset, same text) and an empty piece at a
          -- valid offset answer 200 and write nothing; any other offset is offset_mismatch.
          -- The length is sync_utf16_length(cur); the astral code points (UTF-16 pairs, 4 bytes
          -- in UTF-8) are counted only when the bytes leave room for one: the regular expression
          -- is the dearest pass over a long field.
          chars := char_length(cur);
          cur_len := chars + CASE WHEN octet_length(cur) - chars < 3 THEN 0
                                  ELSE regexp_count(cur, '[\U00010000-\U0010FFFF]') END;
          a_off := (v->>'offset')::int;
          a_text := v->>'text';
          a_len := sync_utf16_length(a_text);
          IF a_off <> cur_len OR a_len = 0 THEN
            chars := sync_utf16_chars(cur, a_off);
            IF chars IS NULL OR substr(cur, chars + 1, char_length(a_text)) <> a_text THEN
              RAISE EXCEPTION 'offset_mismatch' USING ERRCODE = 'SY409', DETAIL = cur_len::text;
            END IF;
            pos := array_position(h_scope, sc);
            IF pos IS NULL THEN
              SELECT last_id INTO sid FROM sync_scopes WHERE scope = sc;
            ELSE
              sid := h_last[pos];
            END IF;
            resp := jsonb_build_object('status', 200, 'body', jsonb_build_object(
                      'data', jsonb_build_object('id', rid, 'length', cur_len), 'scope', sc, 'syncId', sid));
          ELSE
            CASE _model
              WHEN 'Message' THEN
                UPDATE messages SET content = cur || a_text, updated_at = ts WHERE id = rid;
              WHEN 'ReasoningStep' THEN
                UPDATE reasoning_steps SET content = cur || a_text, updated_at = ts WHERE id = rid;
              ELSE
                RAISE EXCEPTION '% has no field to append to', _model USING ERRCODE = 'SY500';
            END CASE;
            last := cardinality(e_id);
            IF last > 0 AND e_action[last] = 'append' AND e_model_id[last] = rid AND e_model[last] = _model
               AND e_data[last]->>'field' = v->>'field'
               AND (e_data[last]->>'offset')::int + sync_utf16_length(e_data[last]->>'text') = a_off THEN
              -- Consecutive pieces of one record in one group travel as one event.
              sid := e_id[last];
              e_data[last] := e_data[last] || jsonb_build_object(
                'text', (e_data[last]->>'text') || a_text, 'updated_at', sync_wire_time(ts));
            ELSE
              pos := array_position(h_scope, sc);
              IF pos IS NULL THEN
                INSERT INTO sync_scopes AS s (scope, last_id) VALUES (sc, 0)
                  ON CONFLICT (scope) DO UPDATE SET last_id = s.last_id RETURNING s.last_id INTO sid;
                h_scope := h_scope || sc;
                h_last := h_last || sid;
                pos := cardinality(h_scope);
              END IF;
              h_last[pos] := h_last[pos] + 1;
              sid := h_last[pos];
              e_scope := e_scope || sc;
              e_id := e_id || sid;
              e_model := e_model || _model;
              e_model_id := e_model_id || rid;
              e_action := e_action || _action;
              e_data := e_data || jsonb_build_object('field', v->>'field', 'offset', a_off, 'text', a_text,
                                                     'updated_at', sync_wire_time(ts));
              e_mid := e_mid || k;
              e_actor := e_actor || sub;
            END IF;
            resp := jsonb_build_object('status', 200, 'body', jsonb_build_object(
                      'data', jsonb_build_object('id', rid, 'length', cur_len + a_len), 'scope', sc, 'syncId', sid));
          END IF;
          IF k IS NOT NULL THEN
            k_sub := k_sub || sub;
            k_key := k_key || k;
            k_resp := k_resp || resp;
          END IF;
          outs := outs || (resp || jsonb_build_object('replayed', false));
          i := i + 1;
          CONTINUE;
        END IF;

        -- The next id of the scope's log; a head the caller did not foresee is locked now.
        pos := array_position(h_scope, sc);
        IF pos IS NULL THEN
          INSERT INTO sync_scopes AS s (scope, last_id) VALUES (sc, 0)
            ON CONFLICT (scope) DO UPDATE SET last_id = s.last_id RETURNING s.last_id INTO sid;
          h_scope := h_scope || sc;
          h_last := h_last || sid;
          pos := cardinality(h_scope);
        END IF;
        h_last[pos] := h_last[pos] + 1;
        sid := h_last[pos];

        IF _action = 'insert' THEN
          CASE _model
            WHEN 'Agent' THEN
              INSERT INTO agents (id, org_id, name, status, created_at, updated_at, created_sync_id)
                VALUES (rid, (v->>'org_id')::uuid, v->>'name', v->>'status', ts, ts, sid)
                ON CONFLICT (id) DO NOTHING RETURNING to_jsonb(agents.*) INTO rec;
            WHEN 'Message' THEN
              INSERT INTO messages (id, agent_id, role, content, created_at, updated_at, created_sync_id)
                VALUES (rid, (v->>'agent_id')::uuid, v->>'role', v->>'content', ts, ts, sid)
                ON CONFLICT (id) DO NOTHING RETURNING to_jsonb(messages.*) INTO rec;
            WHEN 'Payment' THEN
              INSERT INTO payments (id, org_id, agent_id, amount, currency, status, created_at, updated_at, created_sync_id)
                VALUES (rid, (v->>'org_id')::uuid, (v->>'agent_id')::uuid, (v->>'amount')::bigint, v->>'currency', v->>'status', ts, ts, sid)
                ON CONFLICT (id) DO NOTHING RETURNING to_jsonb(payments.*) INTO rec;
            WHEN 'CodeChange' THEN
              INSERT INTO code_changes (id, agent_id, path, diff, status, created_at, updated_at, created_sync_id)
                VALUES (rid, (v->>'agent_id')::uuid, v->>'path', v->>'diff', v->>'status', ts, ts, sid)
                ON CONFLICT (id) DO NOTHING RETURNING to_jsonb(code_changes.*) INTO rec;
            WHEN 'ReasoningStep' THEN
              INSERT INTO reasoning_steps (id, agent_id, message_id, content, created_at, updated_at, created_sync_id)
                VALUES (rid, (v->>'agent_id')::uuid, (v->>'message_id')::uuid, v->>'content', ts, ts, sid)
                ON CONFLICT (id) DO NOTHING RETURNING to_jsonb(reasoning_steps.*) INTO rec;
            WHEN 'ToolCall' THEN
              INSERT INTO tool_calls (id, agent_id, message_id, name, arguments, result, status, created_at, updated_at, created_sync_id)
                VALUES (rid, (v->>'agent_id')::uuid, (v->>'message_id')::uuid, v->>'name', v->'arguments', nullif(v->'result', 'null'::jsonb), v->>'status', ts, ts, sid)
                ON CONFLICT (id) DO NOTHING RETURNING to_jsonb(tool_calls.*) INTO rec;
          END CASE;
          IF rec IS NULL THEN RAISE EXCEPTION 'conflict' USING ERRCODE = 'SY409'; END IF;
          IF sc <> (CASE WHEN _model IN ('Agent', 'Payment') THEN 'org:' || (rec->>'org_id') WHEN _model IN ('Message', 'CodeChange', 'ReasoningStep', 'ToolCall') THEN 'agent:' || (rec->>'agent_id') END) THEN
            RAISE EXCEPTION 'scope of the stored % differs from %', _model, sc USING ERRCODE = 'SY500';
          END IF;
        END IF;

        rec := sync_wire_record(rec);
        IF _action = 'insert' THEN
          _status := 201; _data := rec; edata := rec;
        ELSIF _action = 'update' THEN
          _status := 200; _data := rec;
          edata := (SELECT jsonb_object_agg(f, rec->f) FROM jsonb_object_keys(v) AS f)
                   || jsonb_build_object('updated_at', rec->'updated_at');
        ELSE
          _status := 200; _data := jsonb_build_object('id', rid); edata := NULL;
        END IF;

        e_scope := e_scope || sc;
        e_id := e_id || sid;
        e_model := e_model || _model;
        e_model_id := e_model_id || rid;
        e_action := e_action || _action;
        e_data := e_data || edata;
        e_mid := e_mid || k;
        e_actor := e_actor || sub;
        resp := jsonb_build_object('status', _status,
                  'body', jsonb_build_object('data', _data, 'scope', sc, 'syncId', sid));
        IF k IS NOT NULL THEN
          k_sub := k_sub || sub;
          k_key := k_key || k;
          k_resp := k_resp || resp;
        END IF;
        outs := outs || (resp || jsonb_build_object('replayed', false));
        i := i + 1;
      END LOOP;
      results := results || jsonb_build_object('ok', to_jsonb(outs));
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                              con = CONSTRAINT_NAME;
      IF left(st, 2) IN ('40', '53', '54', '55', '57', '58', 'XX', '08') THEN
        RAISE;
      END IF;
      h_scope := saved_scope;
      h_last := saved_last;
      e_scope := e_scope[1:n_events];
      e_id := e_id[1:n_events];
      e_model := e_model[1:n_events];
      e_model_id := e_model_id[1:n_events];
      e_action := e_action[1:n_events];
      e_data := e_data[1:n_events];
      IF n_events > 0 THEN
        e_data[n_events] := saved_tail;  -- an append of this member may have merged into it
      END IF;
      e_mid := e_mid[1:n_events];
      e_actor := e_actor[1:n_events];
      k_sub := k_sub[1:n_keys];
      k_key := k_key[1:n_keys];
      k_resp := k_resp[1:n_keys];
      results := results || jsonb_build_object('at', i,
        'err', jsonb_build_object('state', st, 'message', msg, 'detail', det, 'constraint', con));
    END;
  END LOOP;

  events := '[]';
  IF cardinality(e_id) > 0 THEN
    UPDATE sync_scopes AS s SET last_id = u.last_id, updated_at = now()
      FROM unnest(h_scope, h_last) AS u(scope, last_id)
      WHERE s.scope = u.scope AND s.last_id <> u.last_id;
    WITH appended AS (
      INSERT INTO sync_events (scope, id, model, model_id, action, data, mutation_id, actor)
      SELECT * FROM unnest(e_scope, e_id, e_model, e_model_id, e_action, e_data, e_mid, e_actor) ORDER BY 1, 2
      RETURNING scope, id, model, model_id, action, data, mutation_id, created_at
    )
    SELECT jsonb_agg(jsonb_build_object('id', a.id, 'scope', a.scope, 'model', a.model, 'model_id', a.model_id,
             'action', a.action, 'data', a.data, 'mutationId', a.mutation_id,
             'created_at', sync_wire_time(a.created_at)) ORDER BY a.scope, a.id)
      INTO events FROM appended AS a;
  END IF;
  IF cardinality(k_key) > 0 THEN
    UPDATE idempotency_keys AS t SET response = u.resp
      FROM unnest(k_sub, k_key, k_resp) AS u(sub, key, resp)
      WHERE t.principal = u.sub AND t.key = u.key;
  END IF;
  RETURN jsonb_build_object('results', to_jsonb(results), 'events', events);
END
$$;

-- Down Migration
CREATE OR REPLACE FUNCTION sync_commit(p_members jsonb, p_lock text[]) RETURNS jsonb
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
  h_scope text[] := '{}';
  h_last bigint[] := '{}';
  saved_scope text[];
  saved_last bigint[];
  e_scope text[] := '{}';
  e_id bigint[] := '{}';
  e_model text[] := '{}';
  e_model_id uuid[] := '{}';
  e_action text[] := '{}';
  e_data jsonb[] := '{}';
  e_mid text[] := '{}';
  e_actor text[] := '{}';
  n_events int;
  k_sub text[] := '{}';
  k_key text[] := '{}';
  k_resp jsonb[] := '{}';
  n_keys int;
  results jsonb[] := '{}';
  outs jsonb[];
  member jsonb;
  mut jsonb;
  sub text;
  patterns text[];
  i int;
  _model text;
  _action text;
  rid uuid;
  v jsonb;
  k text;
  rec jsonb;
  sc text;
  pos int;
  sid bigint;
  ts timestamptz;
  ref text;
  prior_hash text;
  prior_resp jsonb;
  _status int;
  _data jsonb;
  edata jsonb;
  resp jsonb;
  events jsonb;
  st text;
  cur text;
  cur_len int;
  a_off int;
  a_text text;
  a_len int;
  chars int;
  last int;
  saved_tail jsonb;
  msg text;
  det text;
  con text;
BEGIN
  -- Lock the expected heads in sorted order; create the missing ones (a scope's first write).
  SELECT coalesce(array_agg(s.scope ORDER BY s.scope), '{}'), coalesce(array_agg(s.last_id ORDER BY s.scope), '{}')
    INTO h_scope, h_last
    FROM (SELECT scope, last_id FROM sync_scopes WHERE scope = ANY (p_lock) ORDER BY scope FOR UPDATE) s;
  FOR sc IN SELECT x FROM unnest(p_lock) AS x WHERE NOT (x = ANY (h_scope)) ORDER BY x LOOP
    INSERT INTO sync_scopes AS s (scope, last_id) VALUES (sc, 0)
      ON CONFLICT (scope) DO UPDATE SET last_id = s.last_id RETURNING s.last_id INTO sid;
    h_scope := h_scope || sc;
    h_last := h_last || sid;
  END LOOP;

  FOR member IN SELECT jsonb_array_elements(p_members) LOOP
    sub := member->>'sub';
    patterns := ARRAY(SELECT jsonb_array_elements_text(member->'scopes'));
    saved_scope := h_scope;
    saved_last := h_last;
    n_events := cardinality(e_id);
    n_keys := cardinality(k_key);
    saved_tail := e_data[n_events];
    outs := '{}';
    i := 0;
    BEGIN
      FOR mut IN SELECT jsonb_array_elements(member->'muts') LOOP
        _model := mut->>'m';
        _action := mut->>'a';
        rid := (mut->>'id')::uuid;
        v := mut->'v';
        k := mut->>'k';

        -- Idempotency: claim the key, or answer from what it stored (same request, scope still
        -- granted). A concurrent uncommitted claim of the same key makes the INSERT wait for it.
        IF k IS NOT NULL THEN
          INSERT INTO idempotency_keys (principal, key, request_hash, response)
            VALUES (sub, k, mut->>'h', 'null') ON CONFLICT DO NOTHING;
          IF NOT FOUND THEN
            SELECT request_hash, response INTO prior_hash, prior_resp
              FROM idempotency_keys WHERE principal = sub AND key = k;
            IF prior_hash IS DISTINCT FROM mut->>'h' THEN
              RAISE EXCEPTION 'idempotency_conflict' USING ERRCODE = 'SY409';
            END IF;
            IF NOT sync_scope_allowed(patterns, prior_resp->'body'->>'scope') THEN
              RAISE EXCEPTION 'replay_forbidden' USING ERRCODE = 'SY403', DETAIL = prior_resp->'body'->>'scope';
            END IF;
            outs := outs || jsonb_build_object('status', prior_resp->'status', 'body', prior_resp->'body', 'replayed', true);
            i := i + 1;
            CONTINUE;
          END IF;
        END IF;

        ts := clock_timestamp();
        rec := NULL;
        IF _action = 'insert' THEN
          sc := CASE WHEN _model IN ('Agent', 'Payment') THEN 'org:' || (v->>'org_id')::uuid WHEN _model IN ('Message', 'CodeChange', 'ReasoningStep', 'ToolCall') THEN 'agent:' || (v->>'agent_id')::uuid END;
          IF NOT sync_scope_allowed(patterns, sc) THEN
            RAISE EXCEPTION 'forbidden' USING ERRCODE = 'SY403', DETAIL = sc;
          END IF;
          IF _model = 'Payment' AND v->>'agent_id' IS NOT NULL THEN
            SELECT org_id::text INTO ref FROM agents WHERE id = (v->>'agent_id')::uuid;
            IF NOT FOUND THEN RAISE EXCEPTION 'agent_missing' USING ERRCODE = 'SY404'; END IF;
            IF ref <> (v->>'org_id')::uuid::text THEN RAISE EXCEPTION 'agent_other_org' USING ERRCODE = 'SY400'; END IF;
          ELSIF _model = 'ReasoningStep' AND v->>'message_id' IS NOT NULL THEN
            SELECT agent_id::text INTO ref FROM messages WHERE id = (v->>'message_id')::uuid;
            IF NOT FOUND THEN RAISE EXCEPTION 'message_missing' USING ERRCODE = 'SY404'; END IF;
            IF ref <> (v->>'agent_id')::uuid::text THEN RAISE EXCEPTION 'message_other_agent' USING ERRCODE = 'SY400'; END IF;
          ELSIF _model = 'ToolCall' AND v->>'message_id' IS NOT NULL THEN
            SELECT agent_id::text INTO ref FROM messages WHERE id = (v->>'message_id')::uuid;
            IF NOT FOUND THEN RAISE EXCEPTION 'message_missing' USING ERRCODE = 'SY404'; END IF;
            IF ref <> (v->>'agent_id')::uuid::text THEN RAISE EXCEPTION 'message_other_agent' USING ERRCODE = 'SY400'; END IF;
          END IF;
        ELSIF _action = 'update' THEN
          CASE _model
            WHEN 'Agent' THEN
              UPDATE agents SET
                name = CASE WHEN v ? 'name' THEN v->>'name' ELSE name END,
                status = CASE WHEN v ? 'status' THEN v->>'status' ELSE status END,
                updated_at = ts
              WHERE id = rid RETURNING to_jsonb(agents.*) INTO rec;
            WHEN 'Message' THEN
              UPDATE messages SET
                role = CASE WHEN v ? 'role' THEN v->>'role' ELSE role END,
                content = CASE WHEN v ? 'content' THEN v->>'content' ELSE content END,
                updated_at = ts
              WHERE id = rid RETURNING to_jsonb(messages.*) INTO rec;
            WHEN 'Payment' THEN
              UPDATE payments SET
                amount = CASE WHEN v ? 'amount' THEN (v->>'amount')::bigint ELSE amount END,
                currency = CASE WHEN v ? 'currency' THEN v->>'currency' ELSE currency END,
                status = CASE WHEN v ? 'status' THEN v->>'status' ELSE status END,
                updated_at = ts
              WHERE id = rid RETURNING to_jsonb(payments.*) INTO rec;
            WHEN 'CodeChange' THEN
              UPDATE code_changes SET
                path = CASE WHEN v ? 'path' THEN v->>'path' ELSE path END,
                diff = CASE WHEN v ? 'diff' THEN v->>'diff' ELSE diff END,
                status = CASE WHEN v ? 'status' THEN v->>'status' ELSE status END,
                updated_at = ts
              WHERE id = rid RETURNING to_jsonb(code_changes.*) INTO rec;
            WHEN 'ReasoningStep' THEN
              UPDATE reasoning_steps SET
                message_id = CASE WHEN v ? 'message_id' THEN (v->>'message_id')::uuid ELSE message_id END,
                content = CASE WHEN v ? 'content' THEN v->>'content' ELSE content END,
                updated_at = ts
              WHERE id = rid RETURNING to_jsonb(reasoning_steps.*) INTO rec;
            WHEN 'ToolCall' THEN
              UPDATE tool_calls SET
                name = CASE WHEN v ? 'name' THEN v->>'name' ELSE name END,
                arguments = CASE WHEN v ? 'arguments' THEN v->'arguments' ELSE arguments END,
                result = CASE WHEN v ? 'result' THEN nullif(v->'result', 'null'::jsonb) ELSE result END,
                status = CASE WHEN v ? 'status' THEN v->>'status' ELSE status END,
                updated_at = ts
              WHERE id = rid RETURNING to_jsonb(tool_calls.*) INTO rec;
          END CASE;
          IF rec IS NULL THEN RAISE EXCEPTION 'not_found' USING ERRCODE = 'SY404'; END IF;
        ELSIF _action = 'delete' THEN
          CASE _model
            WHEN 'Agent' THEN DELETE FROM agents WHERE id = rid RETURNING to_jsonb(agents.*) INTO rec;
            WHEN 'Message' THEN DELETE FROM messages WHERE id = rid RETURNING to_jsonb(messages.*) INTO rec;
            WHEN 'Payment' THEN DELETE FROM payments WHERE id = rid RETURNING to_jsonb(payments.*) INTO rec;
            WHEN 'CodeChange' THEN DELETE FROM code_changes WHERE id = rid RETURNING to_jsonb(code_changes.*) INTO rec;
            WHEN 'ReasoningStep' THEN DELETE FROM reasoning_steps WHERE id = rid RETURNING to_jsonb(reasoning_steps.*) INTO rec;
            WHEN 'ToolCall' THEN DELETE FROM tool_calls WHERE id = rid RETURNING to_jsonb(tool_calls.*) INTO rec;
          END CASE;
          IF rec IS NULL THEN RAISE EXCEPTION 'not_found' USING ERRCODE = 'SY404'; END IF;
        ELSIF _action = 'append' THEN
          CASE _model
            WHEN 'Message' THEN
              SELECT to_jsonb(r.*) INTO rec FROM messages AS r WHERE id = rid FOR UPDATE;
            WHEN 'ReasoningStep' THEN
              SELECT to_jsonb(r.*) INTO rec FROM reasoning_steps AS r WHERE id = rid FOR UPDATE;
            ELSE
              RAISE EXCEPTION '% has no field to append to', _model USING ERRCODE = 'SY500';
          END CASE;
          IF rec IS NULL THEN RAISE EXCEPTION 'not_found' USING ERRCODE = 'SY404'; END IF;
        ELSE
          RAISE EXCEPTION 'unknown action %', _action USING ERRCODE = 'SY500';
        END IF;

        IF _action <> 'insert' THEN
          -- The scope of an existing record comes from the row itself (scope fields never change).
          sc := CASE WHEN _model IN ('Agent', 'Payment') THEN 'org:' || (rec->>'org_id') WHEN _model IN ('Message', 'CodeChange', 'ReasoningStep', 'ToolCall') THEN 'agent:' || (rec->>'agent_id') END;
          IF NOT sync_scope_allowed(patterns, sc) THEN
            RAISE EXCEPTION 'forbidden' USING ERRCODE = 'SY403', DETAIL = sc;
          END IF;
          IF _action = 'update' AND _model = 'ReasoningStep' AND v ? 'message_id' AND rec->>'message_id' IS NOT NULL THEN
            SELECT agent_id::text INTO ref FROM messages WHERE id = (rec->>'message_id')::uuid;
            IF NOT FOUND THEN RAISE EXCEPTION 'message_missing' USING ERRCODE = 'SY404'; END IF;
            IF ref <> rec->>'agent_id' THEN RAISE EXCEPTION 'message_other_agent' USING ERRCODE = 'SY400'; END IF;
          END IF;
        END IF;

        IF _action = 'append' THEN
          -- Contract v1.1: the piece lands only at the field's current length (UTF-16 units). An
          -- exact retry of a piece already there (same offset, same text) and an empty piece at a
          -- valid offset answer 200 and write nothing; any other offset is offset_mismatch.
          cur := rec->>(v->>'field');
          cur_len := sync_utf16_length(cur);
          a_off := (v->>'offset')::int;
          a_text := v->>'text';
          a_len := sync_utf16_length(a_text);
          IF a_off <> cur_len OR a_len = 0 THEN
            chars := sync_utf16_chars(cur, a_off);
            IF chars IS NULL OR substr(cur, chars + 1, char_length(a_text)) <> a_text THEN
              RAISE EXCEPTION 'offset_mismatch' USING ERRCODE = 'SY409', DETAIL = cur_len::text;
            END IF;
            pos := array_position(h_scope, sc);
            IF pos IS NULL THEN
              SELECT last_id INTO sid FROM sync_scopes WHERE scope = sc;
            ELSE
              sid := h_last[pos];
            END IF;
            resp := jsonb_build_object('status', 200, 'body', jsonb_build_object(
                      'data', jsonb_build_object('id', rid, 'length', cur_len), 'scope', sc, 'syncId', sid));
          ELSE
            CASE _model
              WHEN 'Message' THEN
                UPDATE messages SET content = content || a_text, updated_at = ts WHERE id = rid;
              WHEN 'ReasoningStep' THEN
                UPDATE reasoning_steps SET content = content || a_text, updated_at = ts WHERE id = rid;
              ELSE
                RAISE EXCEPTION '% has no field to append to', _model USING ERRCODE = 'SY500';
            END CASE;
            last := cardinality(e_id);
            IF last > 0 AND e_action[last] = 'append' AND e_model_id[last] = rid AND e_model[last] = _model
               AND e_data[last]->>'field' = v->>'field'
               AND (e_data[last]->>'offset')::int + sync_utf16_length(e_data[last]->>'text') = a_off THEN
              -- Consecutive pieces of one record in one group travel as one event.
              sid := e_id[last];
              e_data[last] := e_data[last] || jsonb_build_object(
                'text', (e_data[last]->>'text') || a_text, 'updated_at', sync_wire_time(ts));
            ELSE
              pos := array_position(h_scope, sc);
              IF pos IS NULL THEN
                INSERT INTO sync_scopes AS s (scope, last_id) VALUES (sc, 0)
                  ON CONFLICT (scope) DO UPDATE SET last_id = s.last_id RETURNING s.last_id INTO sid;
                h_scope := h_scope || sc;
                h_last := h_last || sid;
                pos := cardinality(h_scope);
              END IF;
              h_last[pos] := h_last[pos] + 1;
              sid := h_last[pos];
              e_scope := e_scope || sc;
              e_id := e_id || sid;
              e_model := e_model || _model;
              e_model_id := e_model_id || rid;
              e_action := e_action || _action;
              e_data := e_data || jsonb_build_object('field', v->>'field', 'offset', a_off, 'text', a_text,
                                                     'updated_at', sync_wire_time(ts));
              e_mid := e_mid || k;
              e_actor := e_actor || sub;
            END IF;
            resp := jsonb_build_object('status', 200, 'body', jsonb_build_object(
                      'data', jsonb_build_object('id', rid, 'length', cur_len + a_len), 'scope', sc, 'syncId', sid));
          END IF;
          IF k IS NOT NULL THEN
            k_sub := k_sub || sub;
            k_key := k_key || k;
            k_resp := k_resp || resp;
          END IF;
          outs := outs || (resp || jsonb_build_object('replayed', false));
          i := i + 1;
          CONTINUE;
        END IF;

        -- The next id of the scope's log; a head the caller did not foresee is locked now.
        pos := array_position(h_scope, sc);
        IF pos IS NULL THEN
          INSERT INTO sync_scopes AS s (scope, last_id) VALUES (sc, 0)
            ON CONFLICT (scope) DO UPDATE SET last_id = s.last_id RETURNING s.last_id INTO sid;
          h_scope := h_scope || sc;
          h_last := h_last || sid;
          pos := cardinality(h_scope);
        END IF;
        h_last[pos] := h_last[pos] + 1;
        sid := h_last[pos];

        IF _action = 'insert' THEN
          CASE _model
            WHEN 'Agent' THEN
              INSERT INTO agents (id, org_id, name, status, created_at, updated_at, created_sync_id)
                VALUES (rid, (v->>'org_id')::uuid, v->>'name', v->>'status', ts, ts, sid)
                ON CONFLICT (id) DO NOTHING RETURNING to_jsonb(agents.*) INTO rec;
            WHEN 'Message' THEN
              INSERT INTO messages (id, agent_id, role, content, created_at, updated_at, created_sync_id)
                VALUES (rid, (v->>'agent_id')::uuid, v->>'role', v->>'content', ts, ts, sid)
                ON CONFLICT (id) DO NOTHING RETURNING to_jsonb(messages.*) INTO rec;
            WHEN 'Payment' THEN
              INSERT INTO payments (id, org_id, agent_id, amount, currency, status, created_at, updated_at, created_sync_id)
                VALUES (rid, (v->>'org_id')::uuid, (v->>'agent_id')::uuid, (v->>'amount')::bigint, v->>'currency', v->>'status', ts, ts, sid)
                ON CONFLICT (id) DO NOTHING RETURNING to_jsonb(payments.*) INTO rec;
            WHEN 'CodeChange' THEN
              INSERT INTO code_changes (id, agent_id, path, diff, status, created_at, updated_at, created_sync_id)
                VALUES (rid, (v->>'agent_id')::uuid, v->>'path', v->>'diff', v->>'status', ts, ts, sid)
                ON CONFLICT (id) DO NOTHING RETURNING to_jsonb(code_changes.*) INTO rec;
            WHEN 'ReasoningStep' THEN
              INSERT INTO reasoning_steps (id, agent_id, message_id, content, created_at, updated_at, created_sync_id)
                VALUES (rid, (v->>'agent_id')::uuid, (v->>'message_id')::uuid, v->>'content', ts, ts, sid)
                ON CONFLICT (id) DO NOTHING RETURNING to_jsonb(reasoning_steps.*) INTO rec;
            WHEN 'ToolCall' THEN
              INSERT INTO tool_calls (id, agent_id, message_id, name, arguments, result, status, created_at, updated_at, created_sync_id)
                VALUES (rid, (v->>'agent_id')::uuid, (v->>'message_id')::uuid, v->>'name', v->'arguments', nullif(v->'result', 'null'::jsonb), v->>'status', ts, ts, sid)
                ON CONFLICT (id) DO NOTHING RETURNING to_jsonb(tool_calls.*) INTO rec;
          END CASE;
          IF rec IS NULL THEN RAISE EXCEPTION 'conflict' USING ERRCODE = 'SY409'; END IF;
          IF sc <> (CASE WHEN _model IN ('Agent', 'Payment') THEN 'org:' || (rec->>'org_id') WHEN _model IN ('Message', 'CodeChange', 'ReasoningStep', 'ToolCall') THEN 'agent:' || (rec->>'agent_id') END) THEN
            RAISE EXCEPTION 'scope of the stored % differs from %', _model, sc USING ERRCODE = 'SY500';
          END IF;
        END IF;

        rec := sync_wire_record(rec);
        IF _action = 'insert' THEN
          _status := 201; _data := rec; edata := rec;
        ELSIF _action = 'update' THEN
          _status := 200; _data := rec;
          edata := (SELECT jsonb_object_agg(f, rec->f) FROM jsonb_object_keys(v) AS f)
                   || jsonb_build_object('updated_at', rec->'updated_at');
        ELSE
          _status := 200; _data := jsonb_build_object('id', rid); edata := NULL;
        END IF;

        e_scope := e_scope || sc;
        e_id := e_id || sid;
        e_model := e_model || _model;
        e_model_id := e_model_id || rid;
        e_action := e_action || _action;
        e_data := e_data || edata;
        e_mid := e_mid || k;
        e_actor := e_actor || sub;
        resp := jsonb_build_object('status', _status,
                  'body', jsonb_build_object('data', _data, 'scope', sc, 'syncId', sid));
        IF k IS NOT NULL THEN
          k_sub := k_sub || sub;
          k_key := k_key || k;
          k_resp := k_resp || resp;
        END IF;
        outs := outs || (resp || jsonb_build_object('replayed', false));
        i := i + 1;
      END LOOP;
      results := results || jsonb_build_object('ok', to_jsonb(outs));
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                              con = CONSTRAINT_NAME;
      IF left(st, 2) IN ('40', '53', '54', '55', '57', '58', 'XX', '08') THEN
        RAISE;
      END IF;
      h_scope := saved_scope;
      h_last := saved_last;
      e_scope := e_scope[1:n_events];
      e_id := e_id[1:n_events];
      e_model := e_model[1:n_events];
      e_model_id := e_model_id[1:n_events];
      e_action := e_action[1:n_events];
      e_data := e_data[1:n_events];
      IF n_events > 0 THEN
        e_data[n_events] := saved_tail;  -- an append of this member may have merged into it
      END IF;
      e_mid := e_mid[1:n_events];
      e_actor := e_actor[1:n_events];
      k_sub := k_sub[1:n_keys];
      k_key := k_key[1:n_keys];
      k_resp := k_resp[1:n_keys];
      results := results || jsonb_build_object('at', i,
        'err', jsonb_build_object('state', st, 'message', msg, 'detail', det, 'constraint', con));
    END;
  END LOOP;

  events := '[]';
  IF cardinality(e_id) > 0 THEN
    UPDATE sync_scopes AS s SET last_id = u.last_id, updated_at = now()
      FROM unnest(h_scope, h_last) AS u(scope, last_id)
      WHERE s.scope = u.scope AND s.last_id <> u.last_id;
    WITH appended AS (
      INSERT INTO sync_events (scope, id, model, model_id, action, data, mutation_id, actor)
      SELECT * FROM unnest(e_scope, e_id, e_model, e_model_id, e_action, e_data, e_mid, e_actor) ORDER BY 1, 2
      RETURNING scope, id, model, model_id, action, data, mutation_id, created_at
    )
    SELECT jsonb_agg(jsonb_build_object('id', a.id, 'scope', a.scope, 'model', a.model, 'model_id', a.model_id,
             'action', a.action, 'data', a.data, 'mutationId', a.mutation_id,
             'created_at', sync_wire_time(a.created_at)) ORDER BY a.scope, a.id)
      INTO events FROM appended AS a;
  END IF;
  IF cardinality(k_key) > 0 THEN
    UPDATE idempotency_keys AS t SET response = u.resp
      FROM unnest(k_sub, k_key, k_resp) AS u(sub, key, resp)
      WHERE t.principal = u.sub AND t.key = u.key;
  END IF;
  RETURN jsonb_build_object('results', to_jsonb(results), 'events', events);
END
$$;
-- The settings of 1764600000000_commit-fast-path.sql, which CREATE OR REPLACE drops.
ALTER FUNCTION sync_commit(jsonb, text[]) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION sync_commit(jsonb, text[]) SET enable_seqscan = off;
ALTER TABLE messages ALTER COLUMN content SET COMPRESSION default;
ALTER TABLE reasoning_steps ALTER COLUMN content SET COMPRESSION default;
