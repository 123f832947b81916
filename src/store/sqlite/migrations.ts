/**
 * Schema versions, applied in order and recorded in PRAGMA user_version. Append only:
 * a released migration is never edited.
 */
export const SQLITE_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE vms (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    status        TEXT NOT NULL,
    address       TEXT NOT NULL,
    registered_by TEXT NOT NULL,
    services      TEXT,
    metadata      TEXT,
    registered_at INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    revision      INTEGER NOT NULL,
    owner         TEXT,
    -- 1 once the sweeper has announced the VM stale, so that it is announced once and its
    -- next heartbeat knows to announce the recovery.
    stale_announced INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  CREATE INDEX vms_by_registration ON vms (registered_at DESC, id);
  CREATE INDEX vms_by_role ON vms (role, registered_at DESC, id);
  CREATE TABLE registry_state (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) WITHOUT ROWID;
  INSERT INTO registry_state (key, value) VALUES ('revision', 0);
  CREATE TABLE events (
    revision INTEGER PRIMARY KEY,
    type     TEXT NOT NULL,
    at       INTEGER NOT NULL,
    vm_id    TEXT NOT NULL,
    vm       TEXT NOT NULL
  );
  `,
  // Heartbeats are written apart from the wide VM rows: the heartbeats of a window then
  // rewrite pages of a narrow table (about 80 VMs a page) instead of one wide row's page each.
  // A VM's lastSeen is the later of its row's and this table's.
  // Reads are answered from memory, so no index by role: it only cost every write its upkeep.
  `
  DROP INDEX vms_by_role;
  CREATE TABLE heartbeats (
    id        TEXT PRIMARY KEY,
    last_seen INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TRIGGER heartbeats_follow_vms AFTER DELETE ON vms BEGIN
    DELETE FROM heartbeats WHERE id = old.id;
  END;
  `,
];
