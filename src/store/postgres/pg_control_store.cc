#include "store/postgres/pg_control_store.h"

#include <sys/select.h>

#include <algorithm>
#include <chrono>

#include "common/clock.h"
#include "store/outbox.h"
#include "store/records.h"

namespace regionmove {

namespace {

using pg::Args;
using pg::Conn;
using pg::Row;
using pg::Rows;
using namespace store;

// The schema, one entry per version. The tables are those of the SQLite engine, in
// PostgreSQL's types; flags stay integers so that both engines decode rows alike.
std::string_view PgIntegrationSql() {
  static const std::string sql =
      IntegrationSchema("BIGINT", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY");
  return sql;
}

const std::vector<std::string_view>& SchemaSteps() {
  static const std::vector<std::string_view> kSteps = {
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
  created_at_ms BIGINT NOT NULL,
  routing_version BIGINT NOT NULL
);
CREATE INDEX apps_by_owner ON apps(owner, created_at_ms);
CREATE TABLE routes (
  host TEXT PRIMARY KEY,
  app_id TEXT NOT NULL REFERENCES apps(id),
  region TEXT NOT NULL,
  custom INTEGER NOT NULL
);
CREATE INDEX routes_by_app ON routes(app_id);
CREATE SEQUENCE migration_epochs;
CREATE TABLE migrations (
  seq BIGINT GENERATED ALWAYS AS IDENTITY,
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
  next_attempt_at_ms BIGINT NOT NULL,
  initiated_at_ms BIGINT NOT NULL,
  step_started_at_ms BIGINT NOT NULL,
  completed_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL,
  lease_owner TEXT NOT NULL,
  lease_expires_at_ms BIGINT NOT NULL,
  epoch BIGINT NOT NULL,
  bytes_done BIGINT NOT NULL,
  bytes_total BIGINT NOT NULL,
  items_done BIGINT NOT NULL,
  items_total BIGINT NOT NULL,
  resources TEXT NOT NULL
);
CREATE UNIQUE INDEX one_active_migration_per_app ON migrations(app_id) WHERE terminal = 0;
CREATE INDEX migrations_runnable ON migrations(next_attempt_at_ms, initiated_at_ms)
  WHERE terminal = 0;
CREATE INDEX migrations_by_app ON migrations(app_id, initiated_at_ms);
CREATE TABLE migration_events (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  migration_id TEXT NOT NULL REFERENCES migrations(id),
  type TEXT NOT NULL,
  step TEXT NOT NULL,
  from_step TEXT NOT NULL,
  to_step TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  started_at_ms BIGINT NOT NULL,
  ended_at_ms BIGINT NOT NULL,
  error TEXT NOT NULL,
  bytes BIGINT NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX events_by_migration ON migration_events(migration_id, seq);
CREATE TABLE reservations (
  migration_id TEXT NOT NULL,
  region TEXT NOT NULL,
  app_id TEXT NOT NULL,
  bytes BIGINT NOT NULL,
  created_at_ms BIGINT NOT NULL,
  PRIMARY KEY (migration_id, region)
);
CREATE TABLE app_operations (
  app_id TEXT PRIMARY KEY REFERENCES apps(id),
  kind TEXT NOT NULL,
  target TEXT NOT NULL,
  owner TEXT NOT NULL,
  lease_expires_at_ms BIGINT NOT NULL,
  started_at_ms BIGINT NOT NULL
);
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  expires_at_ms BIGINT NOT NULL
);
)sql",
      // v2: the routing feed's version and the webhook outbox (SPEC §7 "Integration").
      PgIntegrationSql(),
  };
  return kSteps;
}

// Advisory lock keys (pg_advisory_xact_lock's two-int form: class, object).
constexpr int kLockClass = 0x524d;  // "RM"
constexpr int kSchemaLock = 1;
constexpr int kAdmissionLock = 2;
constexpr int kCapacityLock = 3;  // object: hashtext(region)
// Held from a transaction's first outbox insert to its commit, so that outbox sequence numbers
// commit in order and a reader moving past seq N never misses one committed later below N.
constexpr int kOutboxLock = 4;

constexpr const char* kWorkChannel = "regionmove_work";
constexpr const char* kChangeChannel = "regionmove_changes";  // routing and outbox
const std::string kNotifyWork = std::string("SELECT pg_notify('") + kWorkChannel + "', '')";

// Takes lease $1 for owner $2 at time $3 until $4 unless another owner's lease is live; a row
// comes back when $2 holds it. (ON CONFLICT's update happens under the row's lock.)
const std::string kTakeLease =
    "INSERT INTO leases(name, owner, expires_at_ms) VALUES ($1, $2, $4) ON CONFLICT (name) DO "
    "UPDATE SET owner = excluded.owner, expires_at_ms = excluded.expires_at_ms WHERE "
    "leases.owner = excluded.owner OR leases.expires_at_ms <= $3 RETURNING owner";

bool IsUnique(const Status& s) { return s.reason() == "unique_violation"; }

const std::string kUpsertReservation =
    "INSERT INTO reservations(migration_id, region, app_id, bytes, created_at_ms) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (migration_id, region) DO UPDATE SET "
    "bytes = excluded.bytes";

pg::Params ReservationArgs(const Reservation& r) {
  return Args(r.migration_id, r.region, r.app_id, r.bytes, r.created_at_ms);
}

}  // namespace

int PgControlStore::SchemaVersion() { return static_cast<int>(SchemaSteps().size()); }

PgControlStore::PgControlStore(std::string conninfo, Options o)
    : conninfo_(std::move(conninfo)),
      pool_(conninfo_, "control store", std::max(1, o.max_connections)) {}

PgControlStore::~PgControlStore() {
  stop_ = true;
  if (listener_.joinable()) listener_.join();
}

Result<std::unique_ptr<PgControlStore>> PgControlStore::Open(const std::string& dsn,
                                                             Options options) {
  // The database the dsn names (default "regionmove"); created on first use when the role may.
  ASSIGN_OR_RETURN(std::string dbname, pg::DsnDatabase(dsn));
  if (dbname.empty()) dbname = "regionmove";
  // The store's own sessions: a transaction here is a few statements sent back to back, so a
  // session idle inside one for a second belongs to a stalled process (paused, swapping, stopped
  // by a debugger). The server ends it, releasing its locks, rather than let it hold up every
  // other process; the stalled process finds its connection gone and retries. A statement
  // waiting for a lock gives up after 10 s (and is retried).
  ASSIGN_OR_RETURN(
      std::string info,
      pg::Conninfo(dsn, dbname,
                   "-c idle_in_transaction_session_timeout=1000 -c lock_timeout=10000"));
  auto probe = Conn::Open(info, "control store");
  if (probe.status().code() == StatusCode::kNotFound) {
    ASSIGN_OR_RETURN(std::string admin, pg::Conninfo(dsn, "postgres"));
    ASSIGN_OR_RETURN(auto c, Conn::Open(admin, "control store"));
    Status s = c->Exec("CREATE DATABASE " + pg::QuoteIdent(dbname)).status();
    if (!s.ok() && !IsUnique(s) && s.detail() != "42P04") return s;  // raced: someone made it
  } else if (!probe.ok()) {
    return probe.status();
  }
  std::unique_ptr<PgControlStore> store(new PgControlStore(info, options));
  RETURN_IF_ERROR(store->ApplySchema());
  store->listener_ = std::thread([s = store.get()] { s->Listen(); });
  return store;
}

Status PgControlStore::ApplySchema() {
  return Write([&](Conn& c) {
    RETURN_IF_ERROR(
        c.Query("SELECT pg_advisory_xact_lock($1, $2)", Args(kLockClass, kSchemaLock)).status());
    RETURN_IF_ERROR(c.Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)").status());
    ASSIGN_OR_RETURN(Rows r, c.Exec("SELECT COALESCE(MAX(version), 0) FROM schema_version"));
    int64_t have = r.Int(0, 0);
    const auto& steps = SchemaSteps();
    if (have > static_cast<int64_t>(steps.size())) {
      return Permanent("control store schema version " + std::to_string(have) +
                       " is newer than this build (" + std::to_string(steps.size()) + ")");
    }
    for (size_t v = static_cast<size_t>(have); v < steps.size(); ++v) {
      RETURN_IF_ERROR(c.Exec(std::string(steps[v])).status());
      RETURN_IF_ERROR(c.Query("INSERT INTO schema_version(version) VALUES ($1)",
                              Args(static_cast<int64_t>(v + 1)))
                          .status());
    }
    return Status::Ok();
  });
}

// ---------------------------------------------------------------- transactions

Status PgControlStore::Write(const Body& body) { return Run(body, true); }
Status PgControlStore::Read(const Body& body) { return Run(body, false); }

Status PgControlStore::Run(const Body& body, bool txn) {
  constexpr int kAttempts = 5;
  for (int attempt = 1;; ++attempt) {
    Status s;
    bool committing = false;
    {
      auto conn = pool_.Acquire();
      if (!conn.ok()) {
        s = conn.status();
      } else {
        Conn& c = **conn;
        if (txn) s = c.Exec("BEGIN").status();
        if (s.ok()) s = body(c);
        if (txn && s.ok()) {
          committing = true;
          s = c.Exec("COMMIT").status();
        } else if (txn && c.healthy()) {
          (void)c.Exec("ROLLBACK");
        }
      }
    }
    if (s.ok() || s.code() != StatusCode::kUnavailable || attempt == kAttempts) return s;
    // The server rolled the transaction back (serialization failure, deadlock), or the
    // connection broke before COMMIT was sent: nothing was written, so running it again is
    // safe. A break during COMMIT leaves the outcome unknown: the caller decides.
    bool rolled_back = s.detail() == "40001" || s.detail() == "40P01" || s.detail() == "55P03";
    bool lost_before_commit = s.detail().empty() && !committing;
    if (!rolled_back && !lost_before_commit) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(5 << attempt));
  }
}

Result<int64_t> PgControlStore::DatabaseNowMs() {
  int64_t now = 0;
  RETURN_IF_ERROR(Read([&](Conn& c) {
    ASSIGN_OR_RETURN(Rows r,
                     c.Exec("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"));
    now = r.Int(0, 0);
    return Status::Ok();
  }));
  return now;
}

Status PgControlStore::Health() {
  return Read([](Conn& c) { return c.Exec("SELECT 1").status(); });
}

Result<bool> PgControlStore::TryLease(const std::string& name, const std::string& owner,
                                      int64_t now_ms, int64_t lease_ms) {
  bool held = false;
  RETURN_IF_ERROR(Write([&](Conn& c) {
    ASSIGN_OR_RETURN(Rows r, c.Query(kTakeLease, Args(name, owner, now_ms, now_ms + lease_ms)));
    held = r.size() > 0;
    return Status::Ok();
  }));
  return held;
}

// ---------------------------------------------------------------- wake-ups

void PgControlStore::Listen() {
  std::unique_ptr<Conn> conn;
  while (!stop_.load()) {
    if (!conn || !conn->healthy()) {
      conn.reset();
      auto c = Conn::Open(conninfo_, "control store listener");
      if (c.ok() && (*c)->Exec(std::string("LISTEN ") + kWorkChannel).ok() &&
          (*c)->Exec(std::string("LISTEN ") + kChangeChannel).ok()) {
        conn = std::move(c).value();
      } else {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        continue;
      }
    }
    int fd = PQsocket(conn->raw());
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    timeval tv{0, 200'000};  // wakes to check stop_
    if (select(fd + 1, &set, nullptr, nullptr, &tv) < 0) continue;
    if (!PQconsumeInput(conn->raw())) continue;  // broken: reconnect above
    bool work = false, changed = false;
    while (PGnotify* n = PQnotifies(conn->raw())) {
      (std::string(n->relname) == kChangeChannel ? changed : work) = true;
      PQfreemem(n);
    }
    if (work) work_.Notify();
    if (changed) change_listener_();
  }
}

void PgControlStore::WaitForWork(int64_t timeout_ms) { work_.Wait(timeout_ms); }

// ---------------------------------------------------------------- apps and routes

Status PgControlStore::CreateApp(const App& app) {
  Status s = Write([&](Conn& c) {
    ASSIGN_OR_RETURN(Rows taken, c.Query("SELECT 1 FROM routes WHERE host = $1", {app.subdomain}));
    if (taken.size() > 0) {
      return Conflict("subdomain " + app.subdomain + " is taken", "subdomain_taken");
    }
    RETURN_IF_ERROR(c.Query(std::string("INSERT INTO apps(") + kAppColumns +
                                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                            Args(app.id, app.name, app.owner, app.subdomain, app.region, app.status,
                                 app.created_at_ms, app.routing_version))
                        .status());
    RETURN_IF_ERROR(
        c.Query("INSERT INTO routes(host, app_id, region, custom) VALUES ($1, $2, $3, 0)",
                Args(app.subdomain, app.id, app.region))
            .status());
    return Announce(c, {}, true);
  });
  if (IsUnique(s)) {
    return Conflict("app " + app.id + " or subdomain " + app.subdomain + " exists",
                    "subdomain_taken");
  }
  return s;
}

Result<App> PgControlStore::GetApp(const std::string& app_id) {
  ASSIGN_OR_RETURN(auto apps,
                   Select<App>(std::string("SELECT ") + kAppColumns + " FROM apps WHERE id = $1",
                               {app_id}, ReadApp<Row>));
  if (apps.empty()) return NotFound("app " + app_id + " not found");
  return std::move(apps.front());
}

Result<std::vector<App>> PgControlStore::ListApps(const std::string& owner) {
  return Select<App>(std::string("SELECT ") + kAppColumns +
                         " FROM apps WHERE $1 = '' OR owner = $1 ORDER BY created_at_ms, id",
                     {owner}, ReadApp<Row>);
}

Status PgControlStore::AddRoute(const Route& route) {
  return Write([&](Conn& c) {
    ASSIGN_OR_RETURN(Rows app, c.Query("SELECT region FROM apps WHERE id = $1", {route.app_id}));
    if (app.size() == 0) return NotFound("app " + route.app_id + " not found");
    // Inserted unless present; the owner of the host decides (idempotent for the same app).
    RETURN_IF_ERROR(c.Query("INSERT INTO routes(host, app_id, region, custom) VALUES "
                            "($1, $2, $3, $4) ON CONFLICT (host) DO NOTHING",
                            Args(route.host, route.app_id, app.Text(0, 0), route.custom))
                        .status());
    ASSIGN_OR_RETURN(Rows owner,
                     c.Query("SELECT app_id FROM routes WHERE host = $1", {route.host}));
    if (owner.size() == 1 && owner.Text(0, 0) == route.app_id) return Announce(c, {}, true);
    return Conflict("domain " + route.host + " belongs to another app", "domain_taken");
  });
}

Status PgControlStore::RemoveRoute(const std::string& host) {
  return Write([&](Conn& c) {
    ASSIGN_OR_RETURN(Rows r, c.Query("DELETE FROM routes WHERE host = $1 AND custom = 1", {host}));
    if (r.Affected() == 0) return NotFound("domain " + host + " not found");
    return Announce(c, {}, true);
  });
}

Result<Route> PgControlStore::ResolveHost(const std::string& host) {
  ASSIGN_OR_RETURN(auto routes, Select<Route>("SELECT host, app_id, region, custom FROM routes "
                                              "WHERE host = $1",
                                              {host}, ReadRoute<Row>));
  if (routes.empty()) return NotFound("no app is routed at " + host);
  return std::move(routes.front());
}

Result<std::vector<Route>> PgControlStore::ListRoutes(const std::string& app_id) {
  return Select<Route>(
      "SELECT host, app_id, region, custom FROM routes WHERE app_id = $1 ORDER BY custom, host",
      {app_id}, ReadRoute<Row>);
}

// ---------------------------------------------------------------- migrations

Status PgControlStore::CreateMigration(const Migration& m) {
  Status s = Write([&](Conn& c) {
    // The app row is the lock that serialises an app's migrations with its teardowns.
    ASSIGN_OR_RETURN(Rows app, c.Query("SELECT 1 FROM apps WHERE id = $1 FOR UPDATE", {m.app_id}));
    if (app.size() == 0) return NotFound("app " + m.app_id + " not found");
    ASSIGN_OR_RETURN(Rows op,
                     c.Query("SELECT target FROM app_operations WHERE app_id = $1", {m.app_id}));
    if (op.size() > 0) return AppBusyTearingDown(m.app_id, op.Text(0, 0));
    std::string reverse_path = m.reverse_path;
    if (m.kind == "reverse" && reverse_path == "fast") {
      // FOR SHARE: the replica state cannot change until this migration is written.
      ASSIGN_OR_RETURN(Rows fwd, c.Query("SELECT source_replica_state FROM migrations "
                                         "WHERE id = $1 FOR SHARE",
                                         {m.reverse_of}));
      if (fwd.size() == 0 || fwd.Text(0, 0) != kReplicaReplicating) reverse_path = "slow";
    }
    std::string sql = std::string("INSERT INTO migrations(") + kMigrationColumns + ") VALUES (";
    for (int i = 1; i <= kMigrationColumnCount; ++i) {
      sql += "$" + std::to_string(i) + (i < kMigrationColumnCount ? ", " : ")");
    }
    RETURN_IF_ERROR(
        c.Query(sql, Args(m.id, m.app_id, m.owner, m.kind, m.reverse_of, reverse_path, m.strategy,
                          m.source_region, m.dest_region, StepName(m.current_step),
                          StepName(m.stopped_at), m.terminal(), m.admitted, m.abort_requested,
                          m.cutover_committed, m.needs_repair, static_cast<int>(m.compensation),
                          m.source_replica_state, m.attempt, m.retry_count, m.last_error,
                          m.next_attempt_at_ms, m.initiated_at_ms, m.step_started_at_ms,
                          m.completed_at_ms, m.updated_at_ms, m.lease_owner, m.lease_expires_at_ms,
                          m.epoch, m.progress.bytes_done, m.progress.bytes_total,
                          m.progress.items_done, m.progress.items_total, m.resources))
            .status());
    RETURN_IF_ERROR(
        c.Query("UPDATE apps SET status = $1 WHERE id = $2", Args(AppStatusFor(m), m.app_id))
            .status());
    RETURN_IF_ERROR(c.Exec(kNotifyWork).status());
    Migration written = m;
    written.reverse_path = reverse_path;
    return Announce(c, MigrationWriteEvents(written, std::nullopt, false), false);
  });
  if (IsUnique(s)) {
    return Conflict("app " + m.app_id + " already has a migration in flight",
                    "migration_in_flight");
  }
  return s;
}

Result<std::vector<Migration>> PgControlStore::QueryMigrations(const std::string& tail,
                                                               const pg::Params& p) {
  return Select<Migration>(std::string("SELECT ") + kMigrationColumns + " FROM migrations " + tail,
                           p, ReadMigration<Row>);
}

Result<Migration> PgControlStore::GetMigration(const std::string& id) {
  ASSIGN_OR_RETURN(auto rows, QueryMigrations("WHERE id = $1", {id}));
  if (rows.empty()) return NotFound("migration " + id + " not found");
  return std::move(rows.front());
}

Result<std::vector<Migration>> PgControlStore::ListMigrations(const std::string& app_id) {
  return QueryMigrations("WHERE app_id = $1 ORDER BY initiated_at_ms DESC, seq DESC", {app_id});
}

Result<std::optional<Migration>> PgControlStore::GetActiveMigration(const std::string& app_id) {
  ASSIGN_OR_RETURN(auto rows, QueryMigrations("WHERE app_id = $1 AND terminal = 0", {app_id}));
  if (rows.empty()) return std::optional<Migration>();
  return std::optional<Migration>(std::move(rows.front()));
}

Result<std::vector<Migration>> PgControlStore::ListActiveMigrations() {
  return QueryMigrations("WHERE terminal = 0 ORDER BY initiated_at_ms, seq", {});
}

Result<std::vector<Migration>> PgControlStore::ListMigrationsWithDebris() {
  return QueryMigrations(
      "WHERE terminal = 1 AND resources LIKE '%\"debris\"%' ORDER BY completed_at_ms, seq", {});
}

Result<std::vector<Migration>> PgControlStore::ListRetainedReplicas() {
  return QueryMigrations(
      "WHERE current_step = 'completed' AND source_replica_state IN ('replicating', "
      "'diverged', 'tearing_down') ORDER BY completed_at_ms DESC, seq DESC",
      {});
}

Result<std::vector<Migration>> PgControlStore::ListRecentCopies(const std::string& strategy,
                                                                int limit) {
  return QueryMigrations(
      "WHERE current_step = 'completed' AND reverse_path <> 'fast' AND strategy = $1 ORDER BY "
      "completed_at_ms DESC, seq DESC LIMIT " +
          std::to_string(std::max(0, limit)),
      {strategy});
}

Status PgControlStore::SetTerminalResources(const std::string& id, const std::string& expected,
                                            const std::string& next) {
  return Write([&](Conn& c) {
    ASSIGN_OR_RETURN(Rows r, c.Query("UPDATE migrations SET resources = $1 WHERE id = $2 AND "
                                     "terminal = 1 AND resources = $3",
                                     {next, id, expected}));
    if (r.Affected() == 0) {
      return Conflict("resources of migration " + id + " changed", "resources_changed");
    }
    return Status::Ok();
  });
}

Result<std::optional<Migration>> PgControlStore::ClaimNext(const std::string& owner, int64_t now_ms,
                                                           int64_t lease_ms) {
  std::optional<Migration> claimed;
  RETURN_IF_ERROR(Write([&](Conn& c) {
    claimed.reset();
    ASSIGN_OR_RETURN(
        Rows r, c.Query(std::string("UPDATE migrations SET lease_owner = $2, "
                                    "lease_expires_at_ms = $1 + $3, epoch = "
                                    "nextval('migration_epochs') WHERE id = (SELECT id FROM "
                                    "migrations WHERE terminal = 0 AND next_attempt_at_ms <= $1 "
                                    "AND (lease_owner = '' OR lease_expires_at_ms <= $1) ORDER BY "
                                    "next_attempt_at_ms, initiated_at_ms LIMIT 1 FOR UPDATE SKIP "
                                    "LOCKED) RETURNING ") +
                            kMigrationColumns,
                        Args(now_ms, owner, lease_ms)));
    if (r.size() > 0) claimed = ReadMigration(Row{&r, 0});
    return Status::Ok();
  }));
  return claimed;
}

Status PgControlStore::InsertEvent(Conn& c, const MigrationEvent& e) {
  return c
      .Query(
          "INSERT INTO migration_events(migration_id, type, step, from_step, to_step, "
          "attempt, started_at_ms, ended_at_ms, error, bytes, message) VALUES ($1, $2, $3, $4, "
          "$5, $6, $7, $8, $9, $10, $11)",
          Args(e.migration_id, e.type, StepName(e.step), StepName(e.from_step), StepName(e.to_step),
               e.attempt, e.started_at_ms, e.ended_at_ms, e.error, e.bytes, e.message))
      .status();
}

Status PgControlStore::Announce(Conn& c, const std::vector<WebhookEvent>& events,
                                bool routing_changed) {
  if (!events.empty()) {
    RETURN_IF_ERROR(
        c.Query("SELECT pg_advisory_xact_lock($1, $2)", Args(kLockClass, kOutboxLock)).status());
  }
  for (const auto& e : events) {
    RETURN_IF_ERROR(c.Query(kInsertOutbox,
                            Args(e.id, e.type, e.app_id, e.migration_id, e.created_at_ms, e.data))
                        .status());
  }
  if (routing_changed) RETURN_IF_ERROR(c.Exec(kBumpRouting).status());
  if (events.empty() && !routing_changed) return Status::Ok();
  // Delivered at commit, to every process's listener (a rollback sends nothing).
  return c.Exec(std::string("SELECT pg_notify('") + kChangeChannel + "', '')").status();
}

Status PgControlStore::WriteMigration(Conn& c, const Migration& m, int64_t expected_epoch,
                                      const std::vector<MigrationEvent>& events, bool flip) {
  ASSIGN_OR_RETURN(Rows old, c.Query("SELECT current_step FROM migrations WHERE id = $1 AND "
                                     "epoch = $2 FOR UPDATE",
                                     Args(m.id, expected_epoch)));
  if (old.size() == 0) return Fenced(m.id);
  Step from = StepOr(old.Text(0, 0));
  ASSIGN_OR_RETURN(
      Rows r,
      c.Query(
          "UPDATE migrations SET current_step = $1, stopped_at = $2, terminal = $3, "
          "admitted = $4, cutover_committed = $5, needs_repair = $6, compensation = $7, "
          "source_replica_state = $8, attempt = $9, retry_count = $10, last_error = $11, "
          // An abort that the writer has not seen yet keeps its wake-up time: a retry
          // scheduled meanwhile must not push the abort back by its backoff.
          "next_attempt_at_ms = CASE WHEN abort_requested = 1 AND $5 = 0 AND "
          "cutover_committed = 0 THEN LEAST($12, next_attempt_at_ms) ELSE $12 END, "
          "step_started_at_ms = $13, completed_at_ms = $14, updated_at_ms = $15, "
          "lease_owner = $16, lease_expires_at_ms = $17, bytes_done = $18, bytes_total = $19, "
          "items_done = $20, items_total = $21, resources = $22 "
          "WHERE id = $23 AND epoch = $24",
          Args(StepName(m.current_step), StepName(m.stopped_at), m.terminal(), m.admitted,
               m.cutover_committed, m.needs_repair, static_cast<int>(m.compensation),
               m.source_replica_state, m.attempt, m.retry_count, m.last_error, m.next_attempt_at_ms,
               m.step_started_at_ms, m.completed_at_ms, m.updated_at_ms, m.lease_owner,
               m.lease_expires_at_ms, m.progress.bytes_done, m.progress.bytes_total,
               m.progress.items_done, m.progress.items_total, m.resources, m.id, expected_epoch)));
  if (r.Affected() == 0) return Fenced(m.id);
  for (const auto& e : events) RETURN_IF_ERROR(InsertEvent(c, e));
  if (m.terminal() && m.admitted) {
    RETURN_IF_ERROR(
        c.Query(kWakeQueuedMigrations, Args(m.updated_at_ms, m.source_region, m.dest_region))
            .status());
  }
  RETURN_IF_ERROR(
      c.Query("UPDATE apps SET status = $1 WHERE id = $2", Args(AppStatusFor(m), m.app_id))
          .status());
  // A released lease, or a migration that ended (its admission slot is free): wake the workers.
  if (m.lease_owner.empty()) RETURN_IF_ERROR(c.Exec(kNotifyWork).status());
  return Announce(c, MigrationWriteEvents(m, from, flip), flip || BlocksOrUnblocks(m, from));
}

Status PgControlStore::UpdateMigration(const Migration& m, int64_t expected_epoch,
                                       const std::vector<MigrationEvent>& events) {
  return Write([&](Conn& c) { return WriteMigration(c, m, expected_epoch, events); });
}

Status PgControlStore::Heartbeat(const std::string& id, int64_t epoch,
                                 int64_t lease_expires_at_ms) {
  return Write([&](Conn& c) {
    ASSIGN_OR_RETURN(Rows r, c.Query("UPDATE migrations SET lease_expires_at_ms = $1 "
                                     "WHERE id = $2 AND epoch = $3 AND terminal = 0",
                                     Args(lease_expires_at_ms, id, epoch)));
    if (r.Affected() == 0) return Fenced(id);
    return Status::Ok();
  });
}

Result<bool> PgControlStore::TryAdmit(const std::string& id, int64_t expected_epoch, int global_cap,
                                      int region_cap) {
  bool admitted = false;
  RETURN_IF_ERROR(Write([&](Conn& c) {
    admitted = false;
    ASSIGN_OR_RETURN(Rows me, c.Query("SELECT source_region, dest_region, admitted FROM "
                                      "migrations WHERE id = $1 AND epoch = $2",
                                      Args(id, expected_epoch)));
    if (me.size() == 0) return Fenced(id);
    if (me.Int(0, 2) != 0) {
      admitted = true;  // admitted once, admitted until it ends: no lock needed
      return Status::Ok();
    }
    // One admission at a time, deployment-wide: the counts below stay true until commit.
    RETURN_IF_ERROR(
        c.Query("SELECT pg_advisory_xact_lock($1, $2)", Args(kLockClass, kAdmissionLock)).status());
    ASSIGN_OR_RETURN(Rows n,
                     c.Query("SELECT COUNT(*), "
                             "COUNT(*) FILTER (WHERE source_region = $1 OR dest_region = $1), "
                             "COUNT(*) FILTER (WHERE source_region = $2 OR dest_region = $2) "
                             "FROM migrations WHERE terminal = 0 AND admitted = 1",
                             {me.Text(0, 0), me.Text(0, 1)}));
    if (n.Int(0, 0) >= global_cap || n.Int(0, 1) >= region_cap || n.Int(0, 2) >= region_cap) {
      return Status::Ok();
    }
    RETURN_IF_ERROR(c.Query("UPDATE migrations SET admitted = 1 WHERE id = $1", {id}).status());
    admitted = true;
    return Status::Ok();
  }));
  return admitted;
}

Status PgControlStore::CommitFlip(const Migration& m, int64_t expected_epoch,
                                  const std::vector<MigrationEvent>& events) {
  return Write([&](Conn& c) {
    // Locks the row RequestAbort locks: whichever commits first, the other sees it.
    ASSIGN_OR_RETURN(Rows q, c.Query("SELECT abort_requested FROM migrations WHERE id = $1 AND "
                                     "epoch = $2 FOR UPDATE",
                                     Args(m.id, expected_epoch)));
    if (q.size() == 0) return Fenced(m.id);
    if (q.Int(0, 0) != 0) return Conflict("an abort was requested before the flip", "abort_won");
    RETURN_IF_ERROR(c.Query("UPDATE apps SET region = $1, routing_version = routing_version + 1 "
                            "WHERE id = $2",
                            {m.dest_region, m.app_id})
                        .status());
    RETURN_IF_ERROR(
        c.Query("UPDATE routes SET region = $1 WHERE app_id = $2", {m.dest_region, m.app_id})
            .status());
    return WriteMigration(c, m, expected_epoch, events, /*flip=*/true);
  });
}

Status PgControlStore::RequestAbort(const std::string& id, int64_t now_ms) {
  return Write([&](Conn& c) {
    ASSIGN_OR_RETURN(Rows q, c.Query("SELECT terminal, cutover_committed, abort_requested, "
                                     "current_step FROM migrations WHERE id = $1 FOR UPDATE",
                                     {id}));
    if (q.size() == 0) return NotFound("migration " + id + " not found");
    if (q.Int(0, 0) != 0) return Conflict("migration " + id + " is no longer active", "not_active");
    if (q.Int(0, 1) != 0) return CutoverPassed(id);
    if (q.Int(0, 2) != 0) return Status::Ok();
    RETURN_IF_ERROR(c.Query("UPDATE migrations SET abort_requested = 1, next_attempt_at_ms = "
                            "LEAST(next_attempt_at_ms, $1), updated_at_ms = $1 WHERE id = $2",
                            Args(now_ms, id))
                        .status());
    RETURN_IF_ERROR(InsertEvent(c, AbortRequestedEvent(id, StepOr(q.Text(0, 3)), now_ms)));
    return c.Exec(kNotifyWork).status();
  });
}

Status PgControlStore::RepairMigration(const std::string& id, int64_t now_ms) {
  Migration m;
  Status s = Write([&](Conn& c) {
    ASSIGN_OR_RETURN(Rows q, c.Query(std::string("SELECT ") + kMigrationColumns +
                                         " FROM migrations WHERE id = $1 FOR UPDATE",
                                     {id}));
    if (q.size() == 0) return NotFound("migration " + id + " not found");
    m = ReadMigration(Row{&q, 0});
    if (m.current_step != Step::kFailed || !m.needs_repair) {
      return Conflict("migration " + id + " does not need repair", "not_repairable");
    }
    RETURN_IF_ERROR(c.Query("SELECT 1 FROM apps WHERE id = $1 FOR UPDATE", {m.app_id}).status());
    RETURN_IF_ERROR(
        c.Query("UPDATE migrations SET current_step = stopped_at, terminal = 0, needs_repair = 0, "
                "attempt = 0, next_attempt_at_ms = $1, completed_at_ms = 0, "
                "step_started_at_ms = $1, updated_at_ms = $1, lease_owner = '', "
                "epoch = nextval('migration_epochs') WHERE id = $2",
                Args(now_ms, id))
            .status());
    RETURN_IF_ERROR(
        c.Query("UPDATE apps SET status = $1 WHERE id = $2", {kAppMigrating, m.app_id}).status());
    RETURN_IF_ERROR(InsertEvent(c, RepairEvent(m, now_ms)));
    RETURN_IF_ERROR(c.Exec(kNotifyWork).status());
    Migration redriven = Redriven(m, now_ms);
    return Announce(c, MigrationWriteEvents(redriven, Step::kFailed, false),
                    BlocksOrUnblocks(redriven, Step::kFailed));
  });
  if (IsUnique(s)) {
    return Conflict("app " + m.app_id + " has another active migration", "not_repairable");
  }
  return s;
}

Status PgControlStore::BeginTeardown(const std::string& id, const std::string& by_migration,
                                     const std::string& owner, int64_t now_ms, int64_t lease_ms) {
  return Write([&](Conn& c) {
    ASSIGN_OR_RETURN(Rows who, c.Query("SELECT app_id FROM migrations WHERE id = $1", {id}));
    if (who.size() == 0) return NotFound("migration " + id + " not found");
    std::string app_id = who.Text(0, 0);
    RETURN_IF_ERROR(c.Query("SELECT 1 FROM apps WHERE id = $1 FOR UPDATE", {app_id}).status());
    ASSIGN_OR_RETURN(Rows q, c.Query("SELECT current_step, source_replica_state FROM migrations "
                                     "WHERE id = $1",
                                     {id}));
    RETURN_IF_ERROR(CheckTeardownTarget(id, q.Text(0, 0), q.Text(0, 1)));
    ASSIGN_OR_RETURN(Rows a, c.Query("SELECT id FROM migrations WHERE app_id = $1 AND "
                                     "terminal = 0",
                                     {app_id}));
    RETURN_IF_ERROR(CheckTeardownActive(app_id, a.size() > 0 ? a.Text(0, 0) : "", by_migration));
    ASSIGN_OR_RETURN(Rows op, c.Query("SELECT target, owner, lease_expires_at_ms FROM "
                                      "app_operations WHERE app_id = $1",
                                      {app_id}));
    bool held = op.size() > 0;
    RETURN_IF_ERROR(CheckTeardownSlot(id, app_id, held, held ? op.Text(0, 0) : "",
                                      held ? op.Text(0, 1) : "", held ? op.Int(0, 2) : 0, owner,
                                      now_ms));
    RETURN_IF_ERROR(c.Query("INSERT INTO app_operations(app_id, kind, target, owner, "
                            "lease_expires_at_ms, started_at_ms) VALUES ($1, 'teardown', $2, $3, "
                            "$4, $5) ON CONFLICT (app_id) DO UPDATE SET owner = $3, "
                            "lease_expires_at_ms = $4",
                            Args(app_id, id, owner, now_ms + lease_ms, now_ms))
                        .status());
    return c
        .Query("UPDATE migrations SET source_replica_state = $1 WHERE id = $2",
               {kReplicaTearingDown, id})
        .status();
  });
}

Status PgControlStore::FinishTeardown(const std::string& id, const std::string& owner,
                                      const MigrationEvent& event) {
  return Write([&](Conn& c) {
    ASSIGN_OR_RETURN(Rows q,
                     c.Query("SELECT app_id, source_region FROM migrations WHERE id = $1", {id}));
    if (q.size() == 0) return NotFound("migration " + id + " not found");
    std::string app_id = q.Text(0, 0), region = q.Text(0, 1);
    ASSIGN_OR_RETURN(Rows del, c.Query("DELETE FROM app_operations WHERE app_id = $1 AND "
                                       "target = $2 AND owner = $3",
                                       {app_id, id, owner}));
    if (del.Affected() == 0) {
      return Conflict("the teardown of the replica of " + id + " was taken over", "fenced");
    }
    RETURN_IF_ERROR(c.Query("UPDATE migrations SET source_replica_state = $1 WHERE id = $2",
                            {kReplicaTornDown, id})
                        .status());
    RETURN_IF_ERROR(
        c.Query("DELETE FROM reservations WHERE migration_id = $1 AND region = $2", {id, region})
            .status());
    RETURN_IF_ERROR(InsertEvent(c, event));
    return Announce(c, {ReplicaEvent("replica.torn_down", app_id, id, region, event.ended_at_ms)},
                    false);
  });
}

Status PgControlStore::SetReplicaState(const std::string& id, const std::string& expected,
                                       const std::string& next, const MigrationEvent* event) {
  return Write([&](Conn& c) {
    ASSIGN_OR_RETURN(Rows r, c.Query("UPDATE migrations SET source_replica_state = $1 "
                                     "WHERE id = $2 AND source_replica_state = $3",
                                     {next, id, expected}));
    if (r.Affected() == 0) {
      return Conflict("replica of migration " + id + " is not " + expected, "replica_state");
    }
    if (event) RETURN_IF_ERROR(InsertEvent(c, *event));
    if (next != kReplicaDiverged) return Status::Ok();
    ASSIGN_OR_RETURN(Rows q,
                     c.Query("SELECT app_id, source_region FROM migrations WHERE id = $1", {id}));
    int64_t now = event ? event->ended_at_ms : SystemClock::Default()->NowMs();
    return Announce(c, {ReplicaEvent("replica.diverged", q.Text(0, 0), id, q.Text(0, 1), now)},
                    false);
  });
}

Status PgControlStore::AppendEvent(const MigrationEvent& event) {
  return Write([&](Conn& c) { return InsertEvent(c, event); });
}

Result<std::vector<MigrationEvent>> PgControlStore::ListEvents(const std::string& migration_id) {
  return Select<MigrationEvent>(std::string("SELECT ") + kEventColumns +
                                    " FROM migration_events WHERE migration_id = $1 ORDER BY seq",
                                {migration_id}, ReadEvent<Row>);
}

// ---------------------------------------------------------------- integration

Result<int64_t> PgControlStore::OutboxEnd() {
  int64_t end = 0;
  RETURN_IF_ERROR(Read([&](Conn& c) {
    ASSIGN_OR_RETURN(Rows r, c.Exec(kOutboxEnd));
    end = r.Int(0, 0);
    return Status::Ok();
  }));
  return end;
}

Result<std::vector<WebhookEvent>> PgControlStore::ListOutbox(int64_t after_seq, int limit) {
  return Select<WebhookEvent>(kOutboxAfter, Args(after_seq, limit),
                              [](const Row& r) { return ReadWebhookEvent(r); });
}

Result<int64_t> PgControlStore::RoutingVersion() {
  int64_t v = 0;
  RETURN_IF_ERROR(Read([&](Conn& c) {
    ASSIGN_OR_RETURN(Rows r, c.Exec("SELECT version FROM routing_state"));
    v = r.Int(0, 0);
    return Status::Ok();
  }));
  return v;
}

Result<RoutingTable> PgControlStore::GetRoutingTable() {
  RoutingTable t;
  RETURN_IF_ERROR(Write([&](Conn& c) {
    t = RoutingTable{};
    // One snapshot for the version and what it describes.
    RETURN_IF_ERROR(c.Exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").status());
    ASSIGN_OR_RETURN(Rows v, c.Exec("SELECT version FROM routing_state"));
    t.version = v.Int(0, 0);
    ASSIGN_OR_RETURN(Rows apps, c.Exec(std::string("SELECT ") + kAppColumns +
                                       " FROM apps ORDER BY created_at_ms, id"));
    for (int i = 0; i < apps.size(); ++i) t.apps.push_back(ReadApp(Row{&apps, i}));
    ASSIGN_OR_RETURN(Rows routes, c.Exec("SELECT host, app_id, region, custom FROM routes "
                                         "ORDER BY app_id, custom, host"));
    for (int i = 0; i < routes.size(); ++i) t.routes.push_back(ReadRoute(Row{&routes, i}));
    ASSIGN_OR_RETURN(Rows active, c.Exec(kActiveSteps));
    for (int i = 0; i < active.size(); ++i) {
      if (Plan::For(active.Text(i, 1)).WritesBlocked(StepOr(active.Text(i, 2)))) {
        t.writes_blocked.push_back(active.Text(i, 0));
      }
    }
    return Status::Ok();
  }));
  return t;
}

Status PgControlStore::StartWebhook(const std::string& name) {
  return Write([&](Conn& c) { return c.Query(kStartWebhook, {name}).status(); });
}

Result<int> PgControlStore::QueueWebhookDeliveries(const std::string& name,
                                                   const std::vector<std::string>& patterns,
                                                   int64_t now_ms, int limit) {
  int read = 0;
  RETURN_IF_ERROR(Write([&](Conn& c) {
    read = 0;
    ASSIGN_OR_RETURN(Rows cur, c.Query("SELECT seq FROM webhook_cursors WHERE webhook = $1 "
                                       "FOR UPDATE",
                                       {name}));
    if (cur.size() == 0) return NotFound("webhook " + name + " was not started");
    ASSIGN_OR_RETURN(Rows q, c.Query(kOutboxAfter, Args(cur.Int(0, 0), limit)));
    if (q.size() == 0) return Status::Ok();
    int64_t last = 0;
    for (int i = 0; i < q.size(); ++i) {
      WebhookEvent e = ReadWebhookEvent(Row{&q, i});
      last = e.seq;
      if (!TypeMatches(patterns, e.type)) continue;
      RETURN_IF_ERROR(c.Query(kQueueDelivery, Args(name, e.seq, e.app_id, now_ms)).status());
    }
    read = q.size();
    return c.Query("UPDATE webhook_cursors SET seq = $1 WHERE webhook = $2", Args(last, name))
        .status();
  }));
  return read;
}

Result<std::vector<WebhookDelivery>> PgControlStore::DueWebhookDeliveries(const std::string& name,
                                                                          int64_t now_ms,
                                                                          int limit) {
  return Select<WebhookDelivery>(std::string("SELECT ") + kDeliveryColumns + kDueDeliveries,
                                 Args(name, now_ms, limit), ReadDelivery<Row>);
}

Status PgControlStore::RecordWebhookAttempt(const WebhookDelivery& d) {
  return Write([&](Conn& c) {
    return c
        .Query(kRecordAttempt, Args(d.status, d.attempts, d.next_attempt_at_ms, d.last_error,
                                    d.last_code, d.updated_at_ms, d.webhook, d.event.seq))
        .status();
  });
}

Result<int> PgControlStore::PruneOutbox(int64_t before_ms, int limit) {
  int pruned = 0;
  RETURN_IF_ERROR(Write([&](Conn& c) {
    ASSIGN_OR_RETURN(Rows r, c.Query(kOldestOutbox, Args(limit)));
    std::vector<std::pair<int64_t, int64_t>> oldest;
    for (int i = 0; i < r.size(); ++i) oldest.emplace_back(r.Int(i, 0), r.Int(i, 1));
    auto [up_to, n] = PruneUpTo(oldest, before_ms);
    pruned = n;
    if (n == 0) return Status::Ok();
    for (const char* sql : {kPruneDeliveries, kPruneOutbox}) {
      RETURN_IF_ERROR(c.Query(sql, Args(up_to)).status());
    }
    return Status::Ok();
  }));
  return pruned;
}

Result<std::vector<WebhookDelivery>> PgControlStore::ListWebhookDeliveries(
    const std::string& status, int limit) {
  return Select<WebhookDelivery>(std::string("SELECT ") + kDeliveryColumns + kListDeliveries,
                                 Args(status, limit), ReadDelivery<Row>);
}

// ---------------------------------------------------------------- reservations

Status PgControlStore::Reserve(const Reservation& r) {
  return Write([&](Conn& c) { return c.Query(kUpsertReservation, ReservationArgs(r)).status(); });
}

Status PgControlStore::ReserveWithinCapacity(const Reservation& r, int64_t base_apps,
                                             int64_t base_bytes, int64_t max_apps,
                                             int64_t max_bytes) {
  return Write([&](Conn& c) {
    // One reservation at a time per region: the sum below stays true until commit.
    RETURN_IF_ERROR(c.Query("SELECT pg_advisory_xact_lock($1, hashtext($2))",
                            Args(kLockClass + kCapacityLock, r.region))
                        .status());
    ASSIGN_OR_RETURN(Rows q, c.Query("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM reservations "
                                     "WHERE region = $1 AND migration_id != $2 AND app_id != $3",
                                     {r.region, r.migration_id, r.app_id}));
    int64_t apps = base_apps + q.Int(0, 0) + 1;
    int64_t bytes = base_bytes + q.Int(0, 1) + r.bytes;
    if (apps > max_apps || bytes > max_bytes) {
      return NoCapacity(r, apps, max_apps, bytes, max_bytes);
    }
    return c.Query(kUpsertReservation, ReservationArgs(r)).status();
  });
}

Status PgControlStore::ReleaseReservation(const std::string& migration_id,
                                          const std::string& region) {
  return Write([&](Conn& c) {
    return c
        .Query("DELETE FROM reservations WHERE migration_id = $1 AND region = $2",
               {migration_id, region})
        .status();
  });
}

Result<std::vector<Reservation>> PgControlStore::ListReservations(const std::string& region) {
  return Select<Reservation>(
      "SELECT migration_id, region, app_id, bytes, created_at_ms FROM reservations "
      "WHERE region = $1 ORDER BY created_at_ms",
      {region}, ReadReservation<Row>);
}

// ---------------------------------------------------------------- users and tokens

Status PgControlStore::UpsertUser(const User& user) {
  return Write([&](Conn& c) {
    return c
        .Query(
            "INSERT INTO users(name, admin) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET "
            "admin = excluded.admin",
            Args(user.name, user.admin))
        .status();
  });
}

Status PgControlStore::AddTokenHash(const std::string& token_sha256_hex, const std::string& user) {
  return Write([&](Conn& c) {
    return c
        .Query(
            "INSERT INTO api_tokens(token_sha256, user_name) VALUES ($1, $2) ON CONFLICT "
            "(token_sha256) DO UPDATE SET user_name = excluded.user_name",
            {token_sha256_hex, user})
        .status();
  });
}

Result<User> PgControlStore::UserForTokenHash(const std::string& token_sha256_hex) {
  ASSIGN_OR_RETURN(auto users, Select<User>("SELECT u.name, u.admin FROM api_tokens t JOIN users u "
                                            "ON u.name = t.user_name WHERE t.token_sha256 = $1",
                                            {token_sha256_hex}, [](const Row& r) {
                                              return User{r.Text(0), r.Int(1) != 0};
                                            }));
  if (users.empty()) return NotFound("unknown token", "unauthorized");
  return std::move(users.front());
}

}  // namespace regionmove
