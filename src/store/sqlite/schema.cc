#include "store/sqlite/schema.h"

#include "store/records.h"

namespace regionmove {

namespace {
std::string_view SqliteIntegrationSql() {
  static const std::string sql =
      store::IntegrationSchema("INTEGER", "INTEGER PRIMARY KEY AUTOINCREMENT");
  return sql;
}
}  // namespace

const std::vector<std::string_view>& ControlStoreSchemaSteps() {
  static const std::vector<std::string_view> kSteps = {
      // v1: the whole control plane.
      R"sql(
CREATE TABLE users (
  name TEXT PRIMARY KEY,
  admin INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE api_tokens (
  token_sha256 TEXT PRIMARY KEY,
  user_name TEXT NOT NULL REFERENCES users(name)
);
CREATE TABLE apps (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  owner TEXT NOT NULL,
  subdomain TEXT NOT NULL UNIQUE,
  region TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  routing_version INTEGER NOT NULL
);
CREATE INDEX apps_by_owner ON apps(owner, created_at_ms);
CREATE TABLE routes (
  host TEXT PRIMARY KEY,
  app_id TEXT NOT NULL REFERENCES apps(id),
  region TEXT NOT NULL,
  custom INTEGER NOT NULL
);
CREATE INDEX routes_by_app ON routes(app_id);
CREATE TABLE migrations (
  id TEXT PRIMARY KEY,
  app_id TEXT NOT NULL REFERENCES apps(id),
  owner TEXT NOT NULL,
  kind TEXT NOT NULL,
  reverse_of TEXT NOT NULL,
  reverse_path TEXT NOT NULL,
  strategy TEXT NOT NULL,
  source_region TEXT NOT NULL,
  dest_region TEXT NOT NULL,
  current_step TEXT NOT NULL,
  stopped_at TEXT NOT NULL,
  terminal INTEGER NOT NULL,
  admitted INTEGER NOT NULL,
  abort_requested INTEGER NOT NULL,
  cutover_committed INTEGER NOT NULL,
  needs_repair INTEGER NOT NULL,
  compensation INTEGER NOT NULL,
  source_replica_state TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  retry_count INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  next_attempt_at_ms INTEGER NOT NULL,
  initiated_at_ms INTEGER NOT NULL,
  step_started_at_ms INTEGER NOT NULL,
  completed_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  lease_owner TEXT NOT NULL,
  lease_expires_at_ms INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  bytes_done INTEGER NOT NULL,
  bytes_total INTEGER NOT NULL,
  items_done INTEGER NOT NULL,
  items_total INTEGER NOT NULL,
  resources TEXT NOT NULL
);
-- At most one active migration per app, enforced by the store itself.
CREATE UNIQUE INDEX one_active_migration_per_app ON migrations(app_id) WHERE terminal = 0;
CREATE INDEX migrations_runnable ON migrations(terminal, next_attempt_at_ms);
CREATE INDEX migrations_by_app ON migrations(app_id, initiated_at_ms);
CREATE TABLE migration_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  migration_id TEXT NOT NULL REFERENCES migrations(id),
  type TEXT NOT NULL,
  step TEXT NOT NULL,
  from_step TEXT NOT NULL,
  to_step TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  started_at_ms INTEGER NOT NULL,
  ended_at_ms INTEGER NOT NULL,
  error TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX events_by_migration ON migration_events(migration_id, seq);
CREATE TABLE reservations (
  migration_id TEXT NOT NULL,
  region TEXT NOT NULL,
  app_id TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (migration_id, region)
);
)sql",
      // v2: operations on an app other than migrations (teardown of its retained replica),
      // serialised with its migrations: at most one row per app, and none while a migration of
      // the app is active (checked in the same transactions that create either).
      R"sql(
CREATE TABLE app_operations (
  app_id TEXT PRIMARY KEY REFERENCES apps(id),
  kind TEXT NOT NULL,
  target TEXT NOT NULL,
  owner TEXT NOT NULL,
  lease_expires_at_ms INTEGER NOT NULL,
  started_at_ms INTEGER NOT NULL
);
)sql",
      // v3: named leases for work one process does at a time (ControlStore::TryLease).
      R"sql(
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  expires_at_ms INTEGER NOT NULL
);
)sql",
      // v4: the routing feed's version and the webhook outbox (SPEC §7 "Integration").
      SqliteIntegrationSql(),
  };
  return kSteps;
}

}  // namespace regionmove
