import { CHANGE_CHANNEL, HEARTBEAT_BATCH_CHANNEL, HEARTBEAT_CHANNEL, NOTIFY_PAYLOAD_MAX } from './statements.js';

/**
 * Schema versions, applied in order and recorded in registry_migrations. Append only:
 * a released migration is never edited.
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE vms (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    role          text NOT NULL,
    status        text NOT NULL,
    address       text NOT NULL,
    registered_by text NOT NULL,
    -- json, not jsonb: a client's metadata comes back with its keys in the order it sent them.
    services      json,
    metadata      json,
    registered_at timestamptz NOT NULL,
    last_seen     timestamptz NOT NULL,
    revision      bigint NOT NULL,
    -- The name of the token that registered the VM; kept out of the API document below.
    owner         text,
    -- true once the sweeper has announced the VM stale, so that it is announced once and its
    -- next heartbeat knows to announce the recovery.
    stale_announced boolean NOT NULL DEFAULT false
  );
  CREATE INDEX vms_by_registration ON vms (registered_at DESC, id);
  CREATE INDEX vms_by_role ON vms (role, registered_at DESC, id);
  -- The sweeper's two questions, each answered from a small partial index.
  CREATE INDEX vms_not_yet_stale ON vms (last_seen) WHERE status = 'running' AND NOT stale_announced;
  CREATE INDEX vms_announced_stale ON vms (last_seen) WHERE stale_announced;

  -- One row whose lock every change takes, in its own transaction, to get the next revision:
  -- revisions are then handed out in commit order, which a sequence does not promise.
  CREATE TABLE registry_state (
    key   text PRIMARY KEY,
    value bigint NOT NULL
  );
  INSERT INTO registry_state (key, value) VALUES ('revision', 0);

  CREATE TABLE events (
    revision bigint PRIMARY KEY,
    type     text NOT NULL,
    at       timestamptz NOT NULL,
    vm_id    text NOT NULL,
    vm       json NOT NULL
  );

  -- The time every statement uses: the database's, so that replicas with skewed clocks agree,
  -- unless the caller fixes it (tests that move time). Milliseconds are all the API shows.
  CREATE FUNCTION registry_now(fixed timestamptz) RETURNS timestamptz
    LANGUAGE sql STABLE
    AS $$ SELECT coalesce(fixed, date_trunc('milliseconds', statement_timestamp())) $$;

  CREATE FUNCTION registry_iso(t timestamptz) RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

  -- A VM as the API shows it, built as text so that absent services and metadata stay absent
  -- and metadata keeps its key order. Reads and the event log both use it: one mapping.
  CREATE FUNCTION registry_vm(v vms) RETURNS json
    LANGUAGE sql STABLE
    AS $$ SELECT (
      '{"id":' || to_json(v.id) || ',"name":' || to_json(v.name) || ',"role":' || to_json(v.role)
      || ',"status":' || to_json(v.status) || ',"address":' || to_json(v.address)
      || coalesce(',"services":' || v.services::text, '')
      || coalesce(',"metadata":' || v.metadata::text, '')
      || ',"registeredBy":' || to_json(v.registered_by)
      || ',"registeredAt":"' || registry_iso(v.registered_at) || '","lastSeen":"' || registry_iso(v.last_seen) || '"}'
    )::json $$;

  -- Takes the counter row's lock until the caller's transaction ends.
  CREATE FUNCTION registry_next_revision() RETURNS bigint
    LANGUAGE sql VOLATILE
    AS $$ UPDATE registry_state SET value = value + 1 WHERE key = 'revision' RETURNING value $$;

  -- Appends a change to the event log, trims it to the retention, and wakes every replica's
  -- LISTEN when the transaction commits. Answers {revision, vm, owner} for the caller.
  CREATE FUNCTION registry_log(v vms, kind text, rev bigint, at timestamptz, retention bigint) RETURNS json
    LANGUAGE plpgsql VOLATILE
    AS $$
    DECLARE
      document json := registry_vm(v);
    BEGIN
      INSERT INTO events (revision, type, at, vm_id, vm) VALUES (rev, kind, at, v.id, document);
      DELETE FROM events WHERE revision <= rev - retention;
      PERFORM pg_notify('${CHANGE_CHANNEL}', '');
      RETURN json_build_object('revision', rev, 'vm', document, 'owner', v.owner);
    END $$;

  -- The hot path in one round trip. A lost heartbeat costs nothing, so its commit does not
  -- wait for the disk; a heartbeat that recovers a stale VM is a change and stays durable.
  -- Answers lastSeen, or NULL for an unknown id or one the caller (a token name, when not NULL) does not own.
  CREATE FUNCTION registry_heartbeat(vm_id text, fixed timestamptz, retention bigint, caller text) RETURNS text
    LANGUAGE plpgsql VOLATILE
    AS $$
    DECLARE
      at timestamptz := registry_now(fixed);
      was_stale boolean;
      recovered json;
    BEGIN
      UPDATE vms SET last_seen = at WHERE id = vm_id AND (caller IS NULL OR owner = caller)
        RETURNING stale_announced INTO was_stale;
      IF NOT FOUND THEN
        RETURN NULL;
      END IF;
      IF was_stale THEN
        UPDATE vms SET stale_announced = false, revision = registry_next_revision() WHERE id = vm_id
          RETURNING registry_log(vms, 'recovered', vms.revision, at, retention) INTO STRICT recovered;
      ELSE
        PERFORM set_config('synchronous_commit', 'off', true);
      END IF;
      RETURN registry_iso(at);
    END $$;
  `,
  `
  -- The trim spares the events of the calling transaction: a watcher current before a commit
  -- larger than the retention (a large import) must be able to read all of it. The first
  -- revision the transaction logs is remembered in a transaction-local setting; the next
  -- transaction trims the log to the retention again.
  CREATE OR REPLACE FUNCTION registry_log(v vms, kind text, rev bigint, at timestamptz, retention bigint) RETURNS json
    LANGUAGE plpgsql VOLATILE
    AS $$
    DECLARE
      document json := registry_vm(v);
      first bigint := nullif(current_setting('registry.first_logged', true), '')::bigint;
    BEGIN
      IF first IS NULL THEN
        first := rev;
        PERFORM set_config('registry.first_logged', rev::text, true);
      END IF;
      INSERT INTO events (revision, type, at, vm_id, vm) VALUES (rev, kind, at, v.id, document);
      DELETE FROM events WHERE revision <= least(rev - retention, first - 1);
      PERFORM pg_notify('${CHANGE_CHANNEL}', '');
      RETURN json_build_object('revision', rev, 'vm', document, 'owner', v.owner);
    END $$;
  `,
  `
  -- Each replica keeps the registry in memory, following the event log: an event must say
  -- whose VM it is, as the row does.
  ALTER TABLE events ADD COLUMN owner text;

  CREATE OR REPLACE FUNCTION registry_log(v vms, kind text, rev bigint, at timestamptz, retention bigint) RETURNS json
    LANGUAGE plpgsql VOLATILE
    AS $$
    DECLARE
      document json := registry_vm(v);
      first bigint := nullif(current_setting('registry.first_logged', true), '')::bigint;
    BEGIN
      IF first IS NULL THEN
        first := rev;
        PERFORM set_config('registry.first_logged', rev::text, true);
      END IF;
      INSERT INTO events (revision, type, at, vm_id, vm, owner) VALUES (rev, kind, at, v.id, document, v.owner);
      DELETE FROM events WHERE revision <= least(rev - retention, first - 1);
      PERFORM pg_notify('${CHANGE_CHANNEL}', '');
      RETURN json_build_object('revision', rev, 'vm', document, 'owner', v.owner);
    END $$;

  -- registry_heartbeat, telling every replica's mirror of the new lastSeen: a heartbeat makes
  -- no event, so it is announced on a channel of its own as '<revision of the VM> <ms> <id>'.
  -- The revision lets a replica that has not yet applied the VM's last change hold the
  -- heartbeat until it has. Answers the VM's revision too (the new one when it recovered).
  -- A new name, so that replicas of the previous version keep calling the old function
  -- while a rolling upgrade replaces them.
  CREATE FUNCTION registry_heartbeat_v2(vm_id text, fixed timestamptz, retention bigint, caller text, OUT seen text, OUT rev bigint)
    LANGUAGE plpgsql VOLATILE
    AS $$
    DECLARE
      at timestamptz := registry_now(fixed);
      was_stale boolean;
      recovered json;
    BEGIN
      UPDATE vms SET last_seen = at WHERE id = vm_id AND (caller IS NULL OR owner = caller)
        RETURNING stale_announced, revision INTO was_stale, rev;
      IF NOT FOUND THEN
        RETURN;
      END IF;
      IF was_stale THEN
        UPDATE vms SET stale_announced = false, revision = registry_next_revision() WHERE id = vm_id
          RETURNING registry_log(vms, 'recovered', vms.revision, at, retention), vms.revision INTO STRICT recovered, rev;
      ELSE
        PERFORM set_config('synchronous_commit', 'off', true);
        PERFORM pg_notify('${HEARTBEAT_CHANNEL}', rev || ' ' || (extract(epoch FROM at) * 1000)::bigint || ' ' || vm_id);
      END IF;
      seen := registry_iso(at);
    END $$;
  `,
  `
  -- Each notification names the first revision its transaction logged (one per transaction:
  -- PostgreSQL folds equal notifications of a transaction into one), so that a replica that
  -- already applied it, its own write, skips reading the log. The answer names the event's type,
  -- so that the writing replica applies its write to its mirror from the answer alone.
  CREATE OR REPLACE FUNCTION registry_log(v vms, kind text, rev bigint, at timestamptz, retention bigint) RETURNS json
    LANGUAGE plpgsql VOLATILE
    AS $$
    DECLARE
      document json := registry_vm(v);
      first bigint := nullif(current_setting('registry.first_logged', true), '')::bigint;
    BEGIN
      IF first IS NULL THEN
        first := rev;
        PERFORM set_config('registry.first_logged', rev::text, true);
      END IF;
      INSERT INTO events (revision, type, at, vm_id, vm, owner) VALUES (rev, kind, at, v.id, document, v.owner);
      DELETE FROM events WHERE revision <= least(rev - retention, first - 1);
      PERFORM pg_notify('${CHANGE_CHANNEL}', first::text);
      RETURN json_build_object('revision', rev, 'type', kind, 'vm', document, 'owner', v.owner);
    END $$;
  `,
  `
  -- registry_heartbeat_v2 for a batch of heartbeats in one statement (see heartbeat-batch.ts):
  -- answers one row per input, in input order, with seen and rev NULL where v2 answers NULL.
  -- The rows are locked in id order before anything else, so that two replicas' batches never
  -- deadlock, and the revision counter is only ever taken after them, as every other write
  -- does. A recovery is logged with a revision of its own and makes the whole batch durable;
  -- every other heartbeat is announced as a line '<revision> <ms> <id>' on a channel of its own
  -- (see HEARTBEAT_BATCH_CHANNEL), in as few notifications as the payload limit allows.
  -- v2 stays for replicas of the previous version during a rolling upgrade.
  CREATE FUNCTION registry_heartbeats(ids text[], callers text[], fixed timestamptz, retention bigint)
    RETURNS TABLE (seen text, rev bigint)
    LANGUAGE plpgsql VOLATILE
    AS $$
    DECLARE
      at timestamptz := registry_now(fixed);
      ms text := (extract(epoch FROM at) * 1000)::bigint::text;
      locked text[];
      beat record;
      line text;
      chunk text := '';
      any_recovered boolean := false;
    BEGIN
      SELECT coalesce(array_agg(l.id), '{}') INTO locked
        FROM (SELECT v.id FROM vms v WHERE v.id = ANY (ids) ORDER BY v.id FOR UPDATE) l;
      -- Only the rows locked above: one registered since would be locked out of order.
      FOR beat IN
        WITH allowed AS (
          SELECT DISTINCT v.id, v.stale_announced AS was_stale
          FROM unnest(ids, callers) AS i(id, caller) JOIN vms v ON v.id = i.id
          WHERE v.id = ANY (locked) AND (i.caller IS NULL OR v.owner = i.caller)
        )
        UPDATE vms AS v SET last_seen = at, stale_announced = false,
          revision = CASE WHEN a.was_stale THEN registry_next_revision() ELSE v.revision END
        FROM allowed a WHERE v.id = a.id
        RETURNING v.id, v.revision, a.was_stale, CASE WHEN a.was_stale THEN registry_log(v, 'recovered', v.revision, at, retention) END
      LOOP
        IF beat.was_stale THEN
          any_recovered := true;
          CONTINUE;
        END IF;
        line := beat.revision || ' ' || ms || ' ' || beat.id;
        IF chunk <> '' AND octet_length(chunk) + 1 + octet_length(line) > ${NOTIFY_PAYLOAD_MAX} THEN
          PERFORM pg_notify('${HEARTBEAT_BATCH_CHANNEL}', chunk);
          chunk := '';
        END IF;
        chunk := CASE WHEN chunk = '' THEN line ELSE chunk || E'\n' || line END;
      END LOOP;
      IF chunk <> '' THEN
        PERFORM pg_notify('${HEARTBEAT_BATCH_CHANNEL}', chunk);
      END IF;
      IF NOT any_recovered THEN
        PERFORM set_config('synchronous_commit', 'off', true);
      END IF;
      RETURN QUERY
        SELECT CASE WHEN v.id IS NOT NULL THEN registry_iso(at) END, v.revision
        FROM unnest(ids, callers) WITH ORDINALITY AS i(id, caller, ord)
        LEFT JOIN vms v ON v.id = i.id AND v.id = ANY (locked) AND (i.caller IS NULL OR v.owner = i.caller)
        ORDER BY i.ord;
    END $$;
  `,
];
