-- Up Migration

-- Cheaper Postgres work per write, measured with backend CPU time (/proc/<pid>/schedstat) of
-- sync_commit calls, interleaved with the previous definitions (docs/benchmarks.md, "Write path:
-- where the time goes"). Nothing here changes what a write does or answers.

-- 1. The token scope check, as a loop instead of a SQL function. The SQL version (EXISTS over
--    unnest) is not inlined into the plpgsql expressions that call it, so every call ran it
--    through the SQL-function executor: about 80 microseconds of a member's ~400 in groups of 8.
--    Same rule as before and as scopeAllowed() in packages/protocol: a pattern matches when it is
--    '*', equals the scope, or ends in '*' and the scope starts with the rest. NULLs match nothing.
CREATE OR REPLACE FUNCTION sync_scope_allowed(patterns text[], scope text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  p text;
BEGIN
  IF patterns IS NULL OR scope IS NULL THEN
    RETURN false;
  END IF;
  FOREACH p IN ARRAY patterns LOOP
    IF p = '*' OR p = scope OR (right(p, 1) = '*' AND starts_with(scope, left(p, -1))) THEN
      RETURN true;
    END IF;
  END LOOP;
  RETURN false;
END
$$;

-- 2. Generic plans for the statements inside sync_commit. Under the default plan_cache_mode each
--    statement that takes one of the function's arrays (the head lock, the head update, the event
--    insert, the idempotency update) was planned again on every call: about 200 microseconds per
--    group. Their shape never depends on the values (primary-key lookups and joins with unnest),
--    so one plan per connection is the right one.
--    NOTE for later migrations: CREATE OR REPLACE FUNCTION sync_commit drops this setting unless
--    the new definition carries `SET plan_cache_mode = force_generic_plan` (or this ALTER is run
--    again after it).
ALTER FUNCTION sync_commit(jsonb, text[]) SET plan_cache_mode = force_generic_plan;

-- 3. No sequential scans inside sync_commit. Every table it touches is reached by its key, but
--    while a table is small or not yet analyzed (a new deployment, the bench's fresh database) the
--    planner joined the head and idempotency updates against unnest(...) with a hash join over a
--    sequential scan, whose cost grows with the table: 15 % of a member's CPU on a fresh database,
--    measured. With large analyzed tables the plans are index scans either way (same cost).
--    The same NOTE as above applies to a later CREATE OR REPLACE of sync_commit.
ALTER FUNCTION sync_commit(jsonb, text[]) SET enable_seqscan = off;

-- Down Migration
ALTER FUNCTION sync_commit(jsonb, text[]) RESET enable_seqscan;
ALTER FUNCTION sync_commit(jsonb, text[]) RESET plan_cache_mode;
CREATE OR REPLACE FUNCTION sync_scope_allowed(patterns text[], scope text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT EXISTS (
    SELECT 1 FROM unnest(patterns) AS p
    WHERE p = '*' OR p = scope OR (right(p, 1) = '*' AND starts_with(scope, left(p, -1)))
  )
$$;
