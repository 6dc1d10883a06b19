#include "store/sqlite/sqlite_control_store.h"

#include <algorithm>
#include <chrono>

#include "common/clock.h"
#include "store/outbox.h"
#include "store/records.h"
#include "store/sqlite/schema.h"

namespace regionmove {

namespace {

using sqlite::Stmt;
using namespace store;

}  // namespace

// How long a batch waits for another connection's lock (BEGIN IMMEDIATE, COMMIT).
constexpr int kBusyBudgetMs = 5000;

// ---------------------------------------------------------------- group commit

Result<SqliteControlStore::Batch> SqliteControlStore::JoinBatch() {
  arriving_.fetch_add(1);
  std::unique_lock<std::mutex> lock(mu_);
  arriving_.fetch_sub(1);
  if (batch_open_ && sqlite3_get_autocommit(db_->raw())) {
    // SQLite rolled the open batch back on an error of one of its calls: it failed (the calls
    // waiting for it are told), and this call starts the next.
    failed_batches_[batch_id_] =
        Unavailable("control store: the batch was rolled back by an error");
    batch_open_ = false;
    durable_id_ = batch_id_;
    batch_done_.notify_all();
  }
  if (!batch_open_) {
    RETURN_IF_ERROR(db_->ExecWhileBusy("BEGIN IMMEDIATE", kBusyBudgetMs));
    batch_open_ = true;
    ++batch_id_;
  }
  Batch batch(this, std::move(lock), batch_id_);
  RETURN_IF_ERROR(db_->Exec("SAVEPOINT call"));  // on error the batch is left as it was
  return batch;
}

SqliteControlStore::Batch::~Batch() {
  if (!store_) return;
  store_->db_->ResetBusyStatements();
  (void)store_->db_->Exec("ROLLBACK TO call; RELEASE call");
  (void)Leave();
}

Status SqliteControlStore::Batch::Commit() {
  // The call has read what it needs. A statement it left part way would keep this connection's
  // snapshot while the call waits below for the batch to commit (with the store's mutex free):
  // the next batch's BEGIN IMMEDIATE, holding that mutex, would then be refused as busy until
  // the budget ran out, and the waiter could not come back to reset it.
  store_->db_->ResetBusyStatements();
  Status released = store_->db_->Exec("RELEASE call");
  if (!released.ok()) return released;  // the destructor rolls the call back
  Status s = Leave();
  store_ = nullptr;
  return s;
}

Status SqliteControlStore::Batch::Leave() {
  SqliteControlStore* s = store_;
  if (s->arriving_.load() > 0) {
    // A call is about to run in this batch: the last one commits it.
    s->batch_done_.wait(lock_, [&] { return s->durable_id_ >= id_; });
    auto failed = s->failed_batches_.find(id_);
    return failed == s->failed_batches_.end() ? Status::Ok() : failed->second;
  }
  Status committed = sqlite3_get_autocommit(s->db_->raw())
                         ? Unavailable("control store: the batch was rolled back by an error")
                         : s->db_->ExecWhileBusy("COMMIT", kBusyBudgetMs);
  if (!committed.ok()) {
    (void)s->db_->Exec("ROLLBACK");
    s->failed_batches_[id_] = committed;
    while (s->failed_batches_.size() > 64) s->failed_batches_.erase(s->failed_batches_.begin());
  }
  s->batch_open_ = false;
  s->durable_id_ = id_;
  s->batch_done_.notify_all();
  if (std::exchange(s->announced_, false) && committed.ok()) s->change_listener_();
  return committed;
}

int SqliteControlStore::SchemaVersion() {
  return static_cast<int>(ControlStoreSchemaSteps().size());
}

Result<std::unique_ptr<SqliteControlStore>> SqliteControlStore::Open(const std::string& path) {
  ASSIGN_OR_RETURN(auto db, sqlite::Db::Open(path));
  std::unique_ptr<SqliteControlStore> store(new SqliteControlStore(std::move(db)));
  RETURN_IF_ERROR(store->ApplySchema());
  ASSIGN_OR_RETURN(store->read_db_, sqlite::Db::Open(path));
  return store;
}

Status SqliteControlStore::ApplySchema() {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  RETURN_IF_ERROR(db_->Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)"));
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version"));
  ASSIGN_OR_RETURN(bool row, q.Step());
  int64_t have = row ? q.Int(0) : 0;
  const auto& steps = ControlStoreSchemaSteps();
  if (have > static_cast<int64_t>(steps.size())) {
    return Permanent("control store schema version " + std::to_string(have) +
                     " is newer than this build (" + std::to_string(steps.size()) + ")");
  }
  for (size_t v = static_cast<size_t>(have); v < steps.size(); ++v) {
    RETURN_IF_ERROR(db_->Exec(steps[v]));
    ASSIGN_OR_RETURN(Stmt ins, db_->Prepare("INSERT INTO schema_version(version) VALUES (?)"));
    RETURN_IF_ERROR(ins.Bind(1, static_cast<int64_t>(v + 1)).Run());
  }
  return batch.Commit();
}

// ---------------------------------------------------------------- apps and routes

Status SqliteControlStore::CreateApp(const App& app) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  {
    ASSIGN_OR_RETURN(Stmt q, db_->Prepare("SELECT 1 FROM routes WHERE host = ?"));
    ASSIGN_OR_RETURN(bool taken, q.Bind(1, app.subdomain).Step());
    if (taken) return Conflict("subdomain " + app.subdomain + " is taken", "subdomain_taken");
  }
  ASSIGN_OR_RETURN(Stmt ins, db_->Prepare(std::string("INSERT INTO apps(") + kAppColumns +
                                          ") VALUES (?,?,?,?,?,?,?,?)"));
  ins.Bind(1, app.id).Bind(2, app.name).Bind(3, app.owner).Bind(4, app.subdomain);
  ins.Bind(5, app.region).Bind(6, app.status).Bind(7, app.created_at_ms);
  ins.Bind(8, app.routing_version);
  Status s = ins.Run();
  if (s.code() == StatusCode::kConflict) {
    return Conflict("app " + app.id + " or subdomain " + app.subdomain + " exists",
                    "subdomain_taken");
  }
  RETURN_IF_ERROR(s);
  ASSIGN_OR_RETURN(
      Stmt route,
      db_->Prepare("INSERT INTO routes(host, app_id, region, custom) VALUES (?,?,?,0)"));
  RETURN_IF_ERROR(route.Bind(1, app.subdomain).Bind(2, app.id).Bind(3, app.region).Run());
  RETURN_IF_ERROR(AnnounceLocked({}, true));
  return batch.Commit();
}

Result<App> SqliteControlStore::GetApp(const std::string& app_id) {
  std::lock_guard<std::mutex> lock(read_mu_);
  ASSIGN_OR_RETURN(
      Stmt q, read_db_->Prepare(std::string("SELECT ") + kAppColumns + " FROM apps WHERE id = ?"));
  ASSIGN_OR_RETURN(bool row, q.Bind(1, app_id).Step());
  if (!row) return NotFound("app " + app_id + " not found");
  return ReadApp(q);
}

Result<std::vector<App>> SqliteControlStore::ListApps(const std::string& owner) {
  std::lock_guard<std::mutex> lock(read_mu_);
  ASSIGN_OR_RETURN(Stmt q, read_db_->Prepare(std::string("SELECT ") + kAppColumns +
                                             " FROM apps WHERE ?1 = '' OR owner = ?1"
                                             " ORDER BY created_at_ms, id"));
  q.Bind(1, owner);
  return sqlite::Collect<App>(q, ReadApp<Stmt>);
}

Status SqliteControlStore::AddRoute(const Route& route) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare("SELECT app_id FROM routes WHERE host = ?"));
  ASSIGN_OR_RETURN(bool row, q.Bind(1, route.host).Step());
  if (row) {
    if (q.Text(0) == route.app_id) return Status::Ok();  // idempotent
    return Conflict("domain " + route.host + " belongs to another app", "domain_taken");
  }
  ASSIGN_OR_RETURN(Stmt app, db_->Prepare("SELECT region FROM apps WHERE id = ?"));
  ASSIGN_OR_RETURN(bool found, app.Bind(1, route.app_id).Step());
  if (!found) return NotFound("app " + route.app_id + " not found");
  std::string region = app.Text(0);
  ASSIGN_OR_RETURN(
      Stmt ins, db_->Prepare("INSERT INTO routes(host, app_id, region, custom) VALUES (?,?,?,?)"));
  RETURN_IF_ERROR(
      ins.Bind(1, route.host).Bind(2, route.app_id).Bind(3, region).Bind(4, route.custom).Run());
  RETURN_IF_ERROR(AnnounceLocked({}, true));
  return batch.Commit();
}

Status SqliteControlStore::RemoveRoute(const std::string& host) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare("DELETE FROM routes WHERE host = ? AND custom = 1"));
  RETURN_IF_ERROR(q.Bind(1, host).Run());
  if (db_->Changes() == 0) return NotFound("domain " + host + " not found");
  RETURN_IF_ERROR(AnnounceLocked({}, true));
  return batch.Commit();
}

Result<Route> SqliteControlStore::ResolveHost(const std::string& host) {
  std::lock_guard<std::mutex> lock(read_mu_);
  ASSIGN_OR_RETURN(
      Stmt q, read_db_->Prepare("SELECT host, app_id, region, custom FROM routes WHERE host = ?"));
  ASSIGN_OR_RETURN(bool row, q.Bind(1, host).Step());
  if (!row) return NotFound("no app is routed at " + host);
  return ReadRoute(q);
}

Result<std::vector<Route>> SqliteControlStore::ListRoutes(const std::string& app_id) {
  std::lock_guard<std::mutex> lock(read_mu_);
  ASSIGN_OR_RETURN(Stmt q, read_db_->Prepare("SELECT host, app_id, region, custom FROM routes "
                                             "WHERE app_id = ? ORDER BY custom, host"));
  q.Bind(1, app_id);
  return sqlite::Collect<Route>(q, ReadRoute<Stmt>);
}

// ---------------------------------------------------------------- migrations

Status SqliteControlStore::CreateMigration(const Migration& m) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  {
    ASSIGN_OR_RETURN(Stmt q, db_->Prepare("SELECT 1 FROM apps WHERE id = ?"));
    ASSIGN_OR_RETURN(bool found, q.Bind(1, m.app_id).Step());
    if (!found) return NotFound("app " + m.app_id + " not found");
  }
  {
    ASSIGN_OR_RETURN(Stmt q, db_->Prepare("SELECT target FROM app_operations WHERE app_id = ?"));
    ASSIGN_OR_RETURN(bool busy, q.Bind(1, m.app_id).Step());
    if (busy) return AppBusyTearingDown(m.app_id, q.Text(0));
  }
  std::string reverse_path = m.reverse_path;
  if (m.kind == "reverse" && reverse_path == "fast") {
    ASSIGN_OR_RETURN(Stmt q,
                     db_->Prepare("SELECT source_replica_state FROM migrations WHERE id = ?"));
    ASSIGN_OR_RETURN(bool found, q.Bind(1, m.reverse_of).Step());
    if (!found || q.Text(0) != kReplicaReplicating) reverse_path = "slow";
  }
  ASSIGN_OR_RETURN(Stmt ins,
                   db_->Prepare(std::string("INSERT INTO migrations(") + kMigrationColumns +
                                ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
                                "?,?,?,?,?,?,?,?,?,?,?,?)"));
  ins.BindAll(m.id, m.app_id, m.owner, m.kind, m.reverse_of, reverse_path, m.strategy,
              m.source_region, m.dest_region, StepName(m.current_step), StepName(m.stopped_at),
              m.terminal(), m.admitted, m.abort_requested, m.cutover_committed, m.needs_repair,
              static_cast<int>(m.compensation), m.source_replica_state, m.attempt, m.retry_count,
              m.last_error, m.next_attempt_at_ms, m.initiated_at_ms, m.step_started_at_ms,
              m.completed_at_ms, m.updated_at_ms, m.lease_owner, m.lease_expires_at_ms, m.epoch,
              m.progress.bytes_done, m.progress.bytes_total, m.progress.items_done,
              m.progress.items_total, m.resources);
  Status s = ins.Run();
  if (s.code() == StatusCode::kConflict) {
    return Conflict("app " + m.app_id + " already has a migration in flight",
                    "migration_in_flight");
  }
  RETURN_IF_ERROR(s);
  ASSIGN_OR_RETURN(Stmt app, db_->Prepare("UPDATE apps SET status = ? WHERE id = ?"));
  RETURN_IF_ERROR(app.Bind(1, AppStatusFor(m)).Bind(2, m.app_id).Run());
  Migration written = m;
  written.reverse_path = reverse_path;
  RETURN_IF_ERROR(AnnounceLocked(MigrationWriteEvents(written, std::nullopt, false), false));
  RETURN_IF_ERROR(batch.Commit());
  work_.Notify();
  return Status::Ok();
}

Result<std::vector<Migration>> SqliteControlStore::QueryMigrations(const std::string& tail,
                                                                   const std::string& bind) {
  std::lock_guard<std::mutex> lock(read_mu_);
  ASSIGN_OR_RETURN(Stmt q, read_db_->Prepare(std::string("SELECT ") + kMigrationColumns +
                                             " FROM migrations " + tail));
  if (!bind.empty()) q.Bind(1, bind);
  return sqlite::Collect<Migration>(q, ReadMigration<Stmt>);
}

Result<Migration> SqliteControlStore::GetMigration(const std::string& id) {
  ASSIGN_OR_RETURN(auto rows, QueryMigrations("WHERE id = ?", id));
  if (rows.empty()) return NotFound("migration " + id + " not found");
  return std::move(rows.front());
}

Result<std::vector<Migration>> SqliteControlStore::ListMigrations(const std::string& app_id) {
  return QueryMigrations("WHERE app_id = ? ORDER BY initiated_at_ms DESC, rowid DESC", app_id);
}

Result<std::optional<Migration>> SqliteControlStore::GetActiveMigration(const std::string& app_id) {
  ASSIGN_OR_RETURN(auto rows, QueryMigrations("WHERE app_id = ? AND terminal = 0", app_id));
  if (rows.empty()) return std::optional<Migration>();
  return std::optional<Migration>(std::move(rows.front()));
}

Result<std::vector<Migration>> SqliteControlStore::ListActiveMigrations() {
  return QueryMigrations("WHERE terminal = 0 ORDER BY initiated_at_ms, rowid", "");
}

Result<std::vector<Migration>> SqliteControlStore::ListMigrationsWithDebris() {
  return QueryMigrations(
      "WHERE terminal = 1 AND resources LIKE '%\"debris\"%' ORDER BY completed_at_ms, rowid", "");
}

Status SqliteControlStore::SetTerminalResources(const std::string& id, const std::string& expected,
                                                const std::string& next) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt upd, db_->Prepare("UPDATE migrations SET resources = ? WHERE id = ? AND "
                                          "terminal = 1 AND resources = ?"));
  RETURN_IF_ERROR(upd.BindAll(next, id, expected).Run());
  if (db_->Changes() == 0) {
    return Conflict("resources of migration " + id + " changed", "resources_changed");
  }
  return batch.Commit();
}

Result<std::vector<Migration>> SqliteControlStore::ListRetainedReplicas() {
  return QueryMigrations(
      "WHERE current_step = 'completed' AND source_replica_state IN ('replicating', "
      "'diverged', 'tearing_down') ORDER BY completed_at_ms DESC, rowid DESC",
      "");
}

Result<std::vector<Migration>> SqliteControlStore::ListRecentCopies(const std::string& strategy,
                                                                    int limit) {
  return QueryMigrations(
      "WHERE current_step = 'completed' AND reverse_path <> 'fast' AND strategy = ? ORDER BY "
      "completed_at_ms DESC, rowid DESC LIMIT " +
          std::to_string(std::max(0, limit)),
      strategy);
}

Result<std::optional<Migration>> SqliteControlStore::ClaimNext(const std::string& owner,
                                                               int64_t now_ms, int64_t lease_ms) {
  static constexpr const char* kClaimable =
      "SELECT id FROM migrations WHERE terminal = 0 AND next_attempt_at_ms <= ?1 AND "
      "(lease_owner = '' OR lease_expires_at_ms <= ?1) ORDER BY next_attempt_at_ms, "
      "initiated_at_ms LIMIT 1";
  {
    // Idle workers ask often: a look on the read connection first, so that finding nothing
    // takes no write lock and joins no batch. (It sees every commit made before the call.)
    std::lock_guard<std::mutex> lock(read_mu_);
    ASSIGN_OR_RETURN(Stmt look, read_db_->Prepare(kClaimable));
    ASSIGN_OR_RETURN(bool any, look.Bind(1, now_ms).Step());
    if (!any) return std::optional<Migration>();
  }
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare(kClaimable));
  ASSIGN_OR_RETURN(bool row, q.Bind(1, now_ms).Step());
  if (!row) return std::optional<Migration>();
  std::string id = q.Text(0);
  ASSIGN_OR_RETURN(
      Stmt upd,
      db_->Prepare("UPDATE migrations SET lease_owner = ?, "
                   "lease_expires_at_ms = ?, epoch = (SELECT MAX(epoch) FROM migrations) + 1 "
                   "WHERE id = ?"));
  RETURN_IF_ERROR(upd.Bind(1, owner).Bind(2, now_ms + lease_ms).Bind(3, id).Run());
  ASSIGN_OR_RETURN(Stmt get, db_->Prepare(std::string("SELECT ") + kMigrationColumns +
                                          " FROM migrations WHERE id = ?"));
  ASSIGN_OR_RETURN(bool found, get.Bind(1, id).Step());
  if (!found) return Permanent("claimed migration vanished");
  Migration m = ReadMigration(get);
  RETURN_IF_ERROR(batch.Commit());
  return std::optional<Migration>(std::move(m));
}

Status SqliteControlStore::InsertEventLocked(const MigrationEvent& e) {
  ASSIGN_OR_RETURN(Stmt ins,
                   db_->Prepare("INSERT INTO migration_events(migration_id, type, step, "
                                "from_step, to_step, attempt, started_at_ms, ended_at_ms, error, "
                                "bytes, message) VALUES (?,?,?,?,?,?,?,?,?,?,?)"));
  ins.Bind(1, e.migration_id).Bind(2, e.type).Bind(3, StepName(e.step));
  ins.Bind(4, StepName(e.from_step)).Bind(5, StepName(e.to_step)).Bind(6, e.attempt);
  ins.Bind(7, e.started_at_ms).Bind(8, e.ended_at_ms).Bind(9, e.error).Bind(10, e.bytes);
  ins.Bind(11, e.message);
  return ins.Run();
}

Status SqliteControlStore::AnnounceLocked(const std::vector<WebhookEvent>& events,
                                          bool routing_changed) {
  for (const auto& e : events) {
    ASSIGN_OR_RETURN(Stmt ins, db_->Prepare(kInsertOutbox));
    RETURN_IF_ERROR(
        ins.BindAll(e.id, e.type, e.app_id, e.migration_id, e.created_at_ms, e.data).Run());
    announced_ = true;
  }
  if (!routing_changed) return Status::Ok();
  ASSIGN_OR_RETURN(Stmt bump, db_->Prepare(kBumpRouting));
  announced_ = true;
  return bump.Run();
}

Status SqliteControlStore::WriteMigrationLocked(const Migration& m, int64_t expected_epoch,
                                                const std::vector<MigrationEvent>& events,
                                                bool flip) {
  ASSIGN_OR_RETURN(Stmt old,
                   db_->Prepare("SELECT current_step FROM migrations WHERE id = ? AND epoch = ?"));
  ASSIGN_OR_RETURN(bool found, old.Bind(1, m.id).Bind(2, expected_epoch).Step());
  if (!found) return Fenced(m.id);
  Step from = StepOr(old.Text(0));
  ASSIGN_OR_RETURN(
      Stmt upd,
      db_->Prepare("UPDATE migrations SET current_step = ?, stopped_at = ?, terminal = ?, "
                   "admitted = ?, cutover_committed = ?, needs_repair = ?, compensation = ?, "
                   "source_replica_state = ?, attempt = ?, retry_count = ?, last_error = ?, "
                   // An abort that the writer has not seen yet keeps its wake-up time: a retry
                   // scheduled meanwhile must not push the abort back by its backoff.
                   "next_attempt_at_ms = CASE WHEN abort_requested = 1 AND ?7 = 0 AND "
                   "cutover_committed = 0 THEN MIN(?12, next_attempt_at_ms) ELSE ?12 END, "
                   "step_started_at_ms = ?, completed_at_ms = ?, "
                   "updated_at_ms = ?, lease_owner = ?, lease_expires_at_ms = ?, bytes_done = ?, "
                   "bytes_total = ?, items_done = ?, items_total = ?, resources = ? "
                   "WHERE id = ? AND epoch = ?"));
  upd.BindAll(StepName(m.current_step), StepName(m.stopped_at), m.terminal(), m.admitted,
              m.cutover_committed, m.needs_repair, static_cast<int>(m.compensation),
              m.source_replica_state, m.attempt, m.retry_count, m.last_error, m.next_attempt_at_ms,
              m.step_started_at_ms, m.completed_at_ms, m.updated_at_ms, m.lease_owner,
              m.lease_expires_at_ms, m.progress.bytes_done, m.progress.bytes_total,
              m.progress.items_done, m.progress.items_total, m.resources, m.id, expected_epoch);
  RETURN_IF_ERROR(upd.Run());
  if (db_->Changes() == 0) return Fenced(m.id);
  for (const auto& e : events) RETURN_IF_ERROR(InsertEventLocked(e));
  if (m.terminal() && m.admitted) {
    ASSIGN_OR_RETURN(Stmt wake, db_->Prepare(kWakeQueuedMigrations));
    RETURN_IF_ERROR(wake.BindAll(m.updated_at_ms, m.source_region, m.dest_region).Run());
  }
  ASSIGN_OR_RETURN(Stmt app, db_->Prepare("UPDATE apps SET status = ? WHERE id = ?"));
  RETURN_IF_ERROR(app.Bind(1, AppStatusFor(m)).Bind(2, m.app_id).Run());
  return AnnounceLocked(MigrationWriteEvents(m, from, flip), flip || BlocksOrUnblocks(m, from));
}

Status SqliteControlStore::UpdateMigration(const Migration& m, int64_t expected_epoch,
                                           const std::vector<MigrationEvent>& events) {
  {
    ASSIGN_OR_RETURN(Batch batch, JoinBatch());
    RETURN_IF_ERROR(WriteMigrationLocked(m, expected_epoch, events));
    RETURN_IF_ERROR(batch.Commit());
  }
  // A released lease, or a migration that ended (its admission slot is free): wake the workers.
  if (m.lease_owner.empty()) work_.Notify();
  return Status::Ok();
}

Status SqliteControlStore::Heartbeat(const std::string& id, int64_t epoch,
                                     int64_t lease_expires_at_ms) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt upd, db_->Prepare("UPDATE migrations SET lease_expires_at_ms = ? "
                                          "WHERE id = ? AND epoch = ? AND terminal = 0"));
  RETURN_IF_ERROR(upd.Bind(1, lease_expires_at_ms).Bind(2, id).Bind(3, epoch).Run());
  if (db_->Changes() == 0) return Fenced(id);
  return batch.Commit();
}

Result<bool> SqliteControlStore::TryAdmit(const std::string& id, int64_t expected_epoch,
                                          int global_cap, int region_cap) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt me, db_->Prepare("SELECT source_region, dest_region, admitted FROM "
                                         "migrations WHERE id = ? AND epoch = ?"));
  ASSIGN_OR_RETURN(bool found, me.Bind(1, id).Bind(2, expected_epoch).Step());
  if (!found) return Fenced(id);
  if (me.Int(2) != 0) return true;
  std::string src = me.Text(0), dst = me.Text(1);
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare("SELECT COUNT(*), "
                                        "COALESCE(SUM(source_region = ?1 OR dest_region = ?1), 0), "
                                        "COALESCE(SUM(source_region = ?2 OR dest_region = ?2), 0) "
                                        "FROM migrations WHERE terminal = 0 AND admitted = 1"));
  ASSIGN_OR_RETURN(bool row, q.Bind(1, src).Bind(2, dst).Step());
  if (!row) return Permanent("count query returned nothing");
  if (q.Int(0) >= global_cap || q.Int(1) >= region_cap || q.Int(2) >= region_cap) return false;
  ASSIGN_OR_RETURN(Stmt upd, db_->Prepare("UPDATE migrations SET admitted = 1 WHERE id = ?"));
  RETURN_IF_ERROR(upd.Bind(1, id).Run());
  RETURN_IF_ERROR(batch.Commit());
  return true;
}

Status SqliteControlStore::CommitFlip(const Migration& m, int64_t expected_epoch,
                                      const std::vector<MigrationEvent>& events) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare("SELECT abort_requested FROM migrations "
                                        "WHERE id = ? AND epoch = ?"));
  ASSIGN_OR_RETURN(bool found, q.Bind(1, m.id).Bind(2, expected_epoch).Step());
  if (!found) return Fenced(m.id);
  if (q.Int(0) != 0) return Conflict("an abort was requested before the flip", "abort_won");
  ASSIGN_OR_RETURN(Stmt app, db_->Prepare("UPDATE apps SET region = ?, routing_version = "
                                          "routing_version + 1 WHERE id = ?"));
  RETURN_IF_ERROR(app.Bind(1, m.dest_region).Bind(2, m.app_id).Run());
  ASSIGN_OR_RETURN(Stmt routes, db_->Prepare("UPDATE routes SET region = ? WHERE app_id = ?"));
  RETURN_IF_ERROR(routes.Bind(1, m.dest_region).Bind(2, m.app_id).Run());
  RETURN_IF_ERROR(WriteMigrationLocked(m, expected_epoch, events, /*flip=*/true));
  return batch.Commit();
}

Status SqliteControlStore::RequestAbort(const std::string& id, int64_t now_ms) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare("SELECT terminal, cutover_committed, abort_requested, "
                                        "current_step FROM migrations WHERE id = ?"));
  ASSIGN_OR_RETURN(bool found, q.Bind(1, id).Step());
  if (!found) return NotFound("migration " + id + " not found");
  if (q.Int(0) != 0) return Conflict("migration " + id + " is no longer active", "not_active");
  if (q.Int(1) != 0) return CutoverPassed(id);
  if (q.Int(2) != 0) return Status::Ok();
  std::string step = q.Text(3);
  ASSIGN_OR_RETURN(Stmt upd, db_->Prepare("UPDATE migrations SET abort_requested = 1, "
                                          "next_attempt_at_ms = MIN(next_attempt_at_ms, ?), "
                                          "updated_at_ms = ? WHERE id = ?"));
  RETURN_IF_ERROR(upd.Bind(1, now_ms).Bind(2, now_ms).Bind(3, id).Run());
  RETURN_IF_ERROR(InsertEventLocked(AbortRequestedEvent(id, StepOr(step), now_ms)));
  RETURN_IF_ERROR(batch.Commit());
  work_.Notify();
  return Status::Ok();
}

Status SqliteControlStore::RepairMigration(const std::string& id, int64_t now_ms) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare(std::string("SELECT ") + kMigrationColumns +
                                        " FROM migrations WHERE id = ?"));
  ASSIGN_OR_RETURN(bool found, q.Bind(1, id).Step());
  if (!found) return NotFound("migration " + id + " not found");
  Migration m = ReadMigration(q);
  if (m.current_step != Step::kFailed || !m.needs_repair) {
    return Conflict("migration " + id + " does not need repair", "not_repairable");
  }
  ASSIGN_OR_RETURN(
      Stmt upd,
      db_->Prepare(
          "UPDATE migrations SET current_step = stopped_at, terminal = 0, "
          "needs_repair = 0, attempt = 0, next_attempt_at_ms = ?1, "
          "completed_at_ms = 0, step_started_at_ms = ?1, updated_at_ms = ?1, "
          "lease_owner = '', epoch = (SELECT MAX(epoch) FROM migrations) + 1 WHERE id = ?2"));
  Status s = upd.Bind(1, now_ms).Bind(2, id).Run();
  if (s.code() == StatusCode::kConflict) {
    return Conflict("app " + m.app_id + " has another active migration", "not_repairable");
  }
  RETURN_IF_ERROR(s);
  ASSIGN_OR_RETURN(Stmt app, db_->Prepare("UPDATE apps SET status = ? WHERE id = ?"));
  RETURN_IF_ERROR(app.Bind(1, kAppMigrating).Bind(2, m.app_id).Run());
  RETURN_IF_ERROR(InsertEventLocked(RepairEvent(m, now_ms)));
  Migration redriven = Redriven(m, now_ms);
  RETURN_IF_ERROR(AnnounceLocked(MigrationWriteEvents(redriven, Step::kFailed, false),
                                 BlocksOrUnblocks(redriven, Step::kFailed)));
  RETURN_IF_ERROR(batch.Commit());
  work_.Notify();
  return Status::Ok();
}

Status SqliteControlStore::BeginTeardown(const std::string& id, const std::string& by_migration,
                                         const std::string& owner, int64_t now_ms,
                                         int64_t lease_ms) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare("SELECT app_id, current_step, source_replica_state "
                                        "FROM migrations WHERE id = ?"));
  ASSIGN_OR_RETURN(bool found, q.Bind(1, id).Step());
  if (!found) return NotFound("migration " + id + " not found");
  std::string app_id = q.Text(0), step = q.Text(1), state = q.Text(2);
  RETURN_IF_ERROR(CheckTeardownTarget(id, step, state));
  {
    ASSIGN_OR_RETURN(Stmt a, db_->Prepare("SELECT id FROM migrations WHERE app_id = ? AND "
                                          "terminal = 0"));
    ASSIGN_OR_RETURN(bool active, a.Bind(1, app_id).Step());
    RETURN_IF_ERROR(CheckTeardownActive(app_id, active ? a.Text(0) : "", by_migration));
  }
  {
    ASSIGN_OR_RETURN(Stmt op, db_->Prepare("SELECT target, owner, lease_expires_at_ms FROM "
                                           "app_operations WHERE app_id = ?"));
    ASSIGN_OR_RETURN(bool held, op.Bind(1, app_id).Step());
    RETURN_IF_ERROR(CheckTeardownSlot(id, app_id, held, held ? op.Text(0) : "",
                                      held ? op.Text(1) : "", held ? op.Int(2) : 0, owner, now_ms));
  }
  ASSIGN_OR_RETURN(Stmt up,
                   db_->Prepare("INSERT INTO app_operations(app_id, kind, target, owner, "
                                "lease_expires_at_ms, started_at_ms) VALUES (?1, 'teardown', ?2, "
                                "?3, ?4, ?5) ON CONFLICT(app_id) DO UPDATE SET owner = ?3, "
                                "lease_expires_at_ms = ?4"));
  RETURN_IF_ERROR(up.BindAll(app_id, id, owner, now_ms + lease_ms, now_ms).Run());
  ASSIGN_OR_RETURN(Stmt st, db_->Prepare("UPDATE migrations SET source_replica_state = ? "
                                         "WHERE id = ?"));
  RETURN_IF_ERROR(st.BindAll(kReplicaTearingDown, id).Run());
  return batch.Commit();
}

Status SqliteControlStore::FinishTeardown(const std::string& id, const std::string& owner,
                                          const MigrationEvent& event) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt q,
                   db_->Prepare("SELECT app_id, source_region FROM migrations WHERE id = ?"));
  ASSIGN_OR_RETURN(bool found, q.Bind(1, id).Step());
  if (!found) return NotFound("migration " + id + " not found");
  std::string app_id = q.Text(0), region = q.Text(1);
  ASSIGN_OR_RETURN(Stmt del, db_->Prepare("DELETE FROM app_operations WHERE app_id = ? AND "
                                          "target = ? AND owner = ?"));
  RETURN_IF_ERROR(del.BindAll(app_id, id, owner).Run());
  if (db_->Changes() == 0) {
    return Conflict("the teardown of the replica of " + id + " was taken over", "fenced");
  }
  ASSIGN_OR_RETURN(Stmt st, db_->Prepare("UPDATE migrations SET source_replica_state = ? "
                                         "WHERE id = ?"));
  RETURN_IF_ERROR(st.BindAll(kReplicaTornDown, id).Run());
  ASSIGN_OR_RETURN(Stmt rel, db_->Prepare("DELETE FROM reservations WHERE migration_id = ? AND "
                                          "region = ?"));
  RETURN_IF_ERROR(rel.BindAll(id, region).Run());
  RETURN_IF_ERROR(InsertEventLocked(event));
  RETURN_IF_ERROR(AnnounceLocked(
      {ReplicaEvent("replica.torn_down", app_id, id, region, event.ended_at_ms)}, false));
  return batch.Commit();
}

Status SqliteControlStore::SetReplicaState(const std::string& id, const std::string& expected,
                                           const std::string& next, const MigrationEvent* event) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt upd, db_->Prepare("UPDATE migrations SET source_replica_state = ? "
                                          "WHERE id = ? AND source_replica_state = ?"));
  RETURN_IF_ERROR(upd.Bind(1, next).Bind(2, id).Bind(3, expected).Run());
  if (db_->Changes() == 0) {
    return Conflict("replica of migration " + id + " is not " + expected, "replica_state");
  }
  if (event) RETURN_IF_ERROR(InsertEventLocked(*event));
  if (next == kReplicaDiverged) {
    ASSIGN_OR_RETURN(Stmt q,
                     db_->Prepare("SELECT app_id, source_region FROM migrations WHERE id = ?"));
    RETURN_IF_ERROR(q.Bind(1, id).Step().status());
    int64_t now = event ? event->ended_at_ms : SystemClock::Default()->NowMs();
    RETURN_IF_ERROR(
        AnnounceLocked({ReplicaEvent("replica.diverged", q.Text(0), id, q.Text(1), now)}, false));
  }
  return batch.Commit();
}

Status SqliteControlStore::AppendEvent(const MigrationEvent& event) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  RETURN_IF_ERROR(InsertEventLocked(event));
  return batch.Commit();
}

Result<std::vector<MigrationEvent>> SqliteControlStore::ListEvents(
    const std::string& migration_id) {
  std::lock_guard<std::mutex> lock(read_mu_);
  ASSIGN_OR_RETURN(Stmt q, read_db_->Prepare(std::string("SELECT ") + kEventColumns +
                                             " FROM migration_events WHERE migration_id = ? "
                                             "ORDER BY seq"));
  q.Bind(1, migration_id);
  return sqlite::Collect<MigrationEvent>(q, ReadEvent<Stmt>);
}

// ---------------------------------------------------------------- reservations

Status SqliteControlStore::Reserve(const Reservation& r) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt ins, db_->Prepare("INSERT INTO reservations(migration_id, region, app_id, "
                                          "bytes, created_at_ms) VALUES (?,?,?,?,?) "
                                          "ON CONFLICT(migration_id, region) DO UPDATE SET "
                                          "bytes = excluded.bytes"));
  ins.Bind(1, r.migration_id).Bind(2, r.region).Bind(3, r.app_id).Bind(4, r.bytes);
  RETURN_IF_ERROR(ins.Bind(5, r.created_at_ms).Run());
  return batch.Commit();
}

Status SqliteControlStore::ReserveWithinCapacity(const Reservation& r, int64_t base_apps,
                                                 int64_t base_bytes, int64_t max_apps,
                                                 int64_t max_bytes) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM "
                                        "reservations WHERE region = ? AND migration_id != ? "
                                        "AND app_id != ?"));
  ASSIGN_OR_RETURN(bool row, q.BindAll(r.region, r.migration_id, r.app_id).Step());
  int64_t apps = base_apps + (row ? q.Int(0) : 0) + 1;
  int64_t bytes = base_bytes + (row ? q.Int(1) : 0) + r.bytes;
  if (apps > max_apps || bytes > max_bytes) {
    return NoCapacity(r, apps, max_apps, bytes, max_bytes);
  }
  ASSIGN_OR_RETURN(Stmt ins, db_->Prepare("INSERT INTO reservations(migration_id, region, app_id, "
                                          "bytes, created_at_ms) VALUES (?,?,?,?,?) "
                                          "ON CONFLICT(migration_id, region) DO UPDATE SET "
                                          "bytes = excluded.bytes"));
  RETURN_IF_ERROR(ins.BindAll(r.migration_id, r.region, r.app_id, r.bytes, r.created_at_ms).Run());
  return batch.Commit();
}

Status SqliteControlStore::ReleaseReservation(const std::string& migration_id,
                                              const std::string& region) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt del,
                   db_->Prepare("DELETE FROM reservations WHERE migration_id = ? AND region = ?"));
  RETURN_IF_ERROR(del.Bind(1, migration_id).Bind(2, region).Run());
  return batch.Commit();
}

Result<std::vector<Reservation>> SqliteControlStore::ListReservations(const std::string& region) {
  std::lock_guard<std::mutex> lock(read_mu_);
  ASSIGN_OR_RETURN(Stmt q, read_db_->Prepare("SELECT migration_id, region, app_id, bytes, "
                                             "created_at_ms FROM reservations WHERE region = ? "
                                             "ORDER BY created_at_ms"));
  q.Bind(1, region);
  return sqlite::Collect<Reservation>(q, ReadReservation<Stmt>);
}

// ---------------------------------------------------------------- integration

Result<int64_t> SqliteControlStore::RoutingVersion() {
  std::lock_guard<std::mutex> lock(read_mu_);
  ASSIGN_OR_RETURN(Stmt q, read_db_->Prepare("SELECT version FROM routing_state"));
  ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return Permanent("routing_state has no row");
  return q.Int(0);
}

Result<int64_t> SqliteControlStore::OutboxEnd() {
  std::lock_guard<std::mutex> lock(read_mu_);
  ASSIGN_OR_RETURN(Stmt q, read_db_->Prepare(kOutboxEnd));
  ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.Int(0) : 0;
}

Result<std::vector<WebhookEvent>> SqliteControlStore::ListOutbox(int64_t after_seq, int limit) {
  std::lock_guard<std::mutex> lock(read_mu_);
  ASSIGN_OR_RETURN(Stmt q, read_db_->Prepare(kOutboxAfter));
  q.BindAll(after_seq, limit);
  return sqlite::Collect<WebhookEvent>(q, [](const Stmt& r) { return ReadWebhookEvent(r); });
}

Result<RoutingTable> SqliteControlStore::GetRoutingTable() {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  RoutingTable t;
  {
    ASSIGN_OR_RETURN(Stmt q, db_->Prepare("SELECT version FROM routing_state"));
    RETURN_IF_ERROR(q.Step().status());
    t.version = q.Int(0);
  }
  {
    ASSIGN_OR_RETURN(Stmt q, db_->Prepare(std::string("SELECT ") + kAppColumns +
                                          " FROM apps ORDER BY created_at_ms, id"));
    ASSIGN_OR_RETURN(t.apps, sqlite::Collect<App>(q, ReadApp<Stmt>));
  }
  {
    ASSIGN_OR_RETURN(
        Stmt q, db_->Prepare("SELECT host, app_id, region, custom FROM routes ORDER BY app_id, "
                             "custom, host"));
    ASSIGN_OR_RETURN(t.routes, sqlite::Collect<Route>(q, ReadRoute<Stmt>));
  }
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare(kActiveSteps));
  RETURN_IF_ERROR(sqlite::ForEachRow(q, [&](const Stmt& r) {
    if (Plan::For(r.Text(1)).WritesBlocked(StepOr(r.Text(2))))
      t.writes_blocked.push_back(r.Text(0));
  }));
  RETURN_IF_ERROR(batch.Commit());
  return t;
}

Status SqliteControlStore::StartWebhook(const std::string& name) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare(kStartWebhook));
  RETURN_IF_ERROR(q.Bind(1, name).Run());
  return batch.Commit();
}

Result<int> SqliteControlStore::QueueWebhookDeliveries(const std::string& name,
                                                       const std::vector<std::string>& patterns,
                                                       int64_t now_ms, int limit) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt cur, db_->Prepare("SELECT seq FROM webhook_cursors WHERE webhook = ?"));
  ASSIGN_OR_RETURN(bool found, cur.Bind(1, name).Step());
  if (!found) return NotFound("webhook " + name + " was not started");
  int64_t after = cur.Int(0);
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare(kOutboxAfter));
  q.Bind(1, after).Bind(2, limit);
  ASSIGN_OR_RETURN(auto events, sqlite::Collect<WebhookEvent>(
                                    q, [](const Stmt& r) { return ReadWebhookEvent(r); }));
  if (events.empty()) return 0;
  for (const auto& e : events) {
    if (!TypeMatches(patterns, e.type)) continue;
    ASSIGN_OR_RETURN(Stmt ins, db_->Prepare(kQueueDelivery));
    RETURN_IF_ERROR(ins.BindAll(name, e.seq, e.app_id, now_ms).Run());
  }
  ASSIGN_OR_RETURN(Stmt mv, db_->Prepare("UPDATE webhook_cursors SET seq = ? WHERE webhook = ?"));
  RETURN_IF_ERROR(mv.BindAll(events.back().seq, name).Run());
  RETURN_IF_ERROR(batch.Commit());
  return static_cast<int>(events.size());
}

Result<std::vector<WebhookDelivery>> SqliteControlStore::DueWebhookDeliveries(
    const std::string& name, int64_t now_ms, int limit) {
  std::lock_guard<std::mutex> lock(read_mu_);
  ASSIGN_OR_RETURN(Stmt q,
                   read_db_->Prepare(std::string("SELECT ") + kDeliveryColumns + kDueDeliveries));
  q.BindAll(name, now_ms, limit);
  return sqlite::Collect<WebhookDelivery>(q, ReadDelivery<Stmt>);
}

Status SqliteControlStore::RecordWebhookAttempt(const WebhookDelivery& d) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare(kRecordAttempt));
  RETURN_IF_ERROR(q.BindAll(d.status, d.attempts, d.next_attempt_at_ms, d.last_error, d.last_code,
                            d.updated_at_ms, d.webhook, d.event.seq)
                      .Run());
  return batch.Commit();
}

Result<int> SqliteControlStore::PruneOutbox(int64_t before_ms, int limit) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  std::vector<std::pair<int64_t, int64_t>> oldest;
  {
    ASSIGN_OR_RETURN(Stmt q, db_->Prepare(kOldestOutbox));
    q.Bind(1, limit);
    RETURN_IF_ERROR(
        sqlite::ForEachRow(q, [&](const Stmt& r) { oldest.emplace_back(r.Int(0), r.Int(1)); }));
  }
  auto [up_to, n] = PruneUpTo(oldest, before_ms);
  if (n == 0) return 0;
  for (const char* sql : {kPruneDeliveries, kPruneOutbox}) {
    ASSIGN_OR_RETURN(Stmt del, db_->Prepare(sql));
    RETURN_IF_ERROR(del.Bind(1, up_to).Run());
  }
  RETURN_IF_ERROR(batch.Commit());
  return n;
}

Result<std::vector<WebhookDelivery>> SqliteControlStore::ListWebhookDeliveries(
    const std::string& status, int limit) {
  std::lock_guard<std::mutex> lock(read_mu_);
  ASSIGN_OR_RETURN(Stmt q,
                   read_db_->Prepare(std::string("SELECT ") + kDeliveryColumns + kListDeliveries));
  q.BindAll(status, limit);
  return sqlite::Collect<WebhookDelivery>(q, ReadDelivery<Stmt>);
}

// ---------------------------------------------------------------- users and tokens

Status SqliteControlStore::UpsertUser(const User& user) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt ins,
                   db_->Prepare("INSERT INTO users(name, admin) VALUES (?, ?) "
                                "ON CONFLICT(name) DO UPDATE SET admin = excluded.admin"));
  RETURN_IF_ERROR(ins.Bind(1, user.name).Bind(2, user.admin).Run());
  return batch.Commit();
}

Status SqliteControlStore::AddTokenHash(const std::string& token_sha256_hex,
                                        const std::string& user) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt ins,
                   db_->Prepare("INSERT INTO api_tokens(token_sha256, user_name) VALUES (?, ?) "
                                "ON CONFLICT(token_sha256) DO UPDATE SET user_name = "
                                "excluded.user_name"));
  RETURN_IF_ERROR(ins.Bind(1, token_sha256_hex).Bind(2, user).Run());
  return batch.Commit();
}

Result<User> SqliteControlStore::UserForTokenHash(const std::string& token_sha256_hex) {
  std::lock_guard<std::mutex> lock(read_mu_);
  ASSIGN_OR_RETURN(Stmt q,
                   read_db_->Prepare("SELECT u.name, u.admin FROM api_tokens t JOIN users u "
                                     "ON u.name = t.user_name WHERE t.token_sha256 = ?"));
  ASSIGN_OR_RETURN(bool row, q.Bind(1, token_sha256_hex).Step());
  if (!row) return NotFound("unknown token", "unauthorized");
  return User{q.Text(0), q.Int(1) != 0};
}

// ---------------------------------------------------------------- coordination

Result<bool> SqliteControlStore::TryLease(const std::string& name, const std::string& owner,
                                          int64_t now_ms, int64_t lease_ms) {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(
      Stmt q, db_->Prepare("INSERT INTO leases(name, owner, expires_at_ms) VALUES (?1, ?2, ?4) "
                           "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                           "expires_at_ms = excluded.expires_at_ms WHERE leases.owner = "
                           "excluded.owner OR leases.expires_at_ms <= ?3 RETURNING owner"));
  q.BindAll(name, owner, now_ms, now_ms + lease_ms);
  ASSIGN_OR_RETURN(bool row, q.Step());
  if (row) RETURN_IF_ERROR(q.Step().status());  // run the statement to its end
  RETURN_IF_ERROR(batch.Commit());
  return row;
}

void SqliteControlStore::WaitForWork(int64_t timeout_ms) { work_.Wait(timeout_ms); }

Status SqliteControlStore::Health() {
  ASSIGN_OR_RETURN(Batch batch, JoinBatch());
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare("SELECT 1"));
  return q.Step().status();
}

}  // namespace regionmove
