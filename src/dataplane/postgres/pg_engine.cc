#include "dataplane/postgres/pg_engine.h"

#include <chrono>
#include <thread>

#include "common/hash.h"
#include "dataplane/postgres/pg_database.h"
#include "dataplane/sqlite/sqlite_runtime_store.h"

namespace regionmove {

using pg::QuoteIdent;
using pg::QuoteLiteral;

namespace {

// The user schemas of an app database (what a publication covers).
constexpr const char* kUserSchemas =
    "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
    "AND nspname NOT IN ('information_schema', '_regionmove') ORDER BY 1";

// Tables that logical replication could not update or delete rows of: no primary key and the
// default replica identity.
constexpr const char* kNoIdentity = R"sql(
SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relreplident = 'd'
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
)sql";

// Replication between PostgreSQL regions: a publication of the app's schemas (and of
// _regionmove.columns) on the primary, a subscription with copy_data = false on the replica
// (the two are equal when it starts), both named after the app and the region pair.
class PgReplicator final : public Replicator {
 public:
  explicit PgReplicator(const PgEngine* engine) : engine_(engine) {}

  Status Start(const std::string& app, const std::string& primary,
               const std::string& replica) override {
    const std::string name = Name(app, primary, replica);
    ASSIGN_OR_RETURN(auto p, Connect(primary, app));
    ASSIGN_OR_RETURN(auto r, Connect(replica, app));
    // Updates and deletes of a table without a primary key need the whole old row.
    for (auto* c : {p.get(), r.get()}) {
      ASSIGN_OR_RETURN(pg::Rows t, c->Exec(kNoIdentity));
      for (int i = 0; i < t.size(); ++i) {
        RETURN_IF_ERROR(c->Exec("ALTER TABLE " + t.Text(i, 0) + " REPLICA IDENTITY FULL").status());
      }
    }
    ASSIGN_OR_RETURN(pg::Rows pub,
                     p->Query("SELECT 1 FROM pg_publication WHERE pubname = $1", {name}));
    if (pub.size() == 0) {
      ASSIGN_OR_RETURN(pg::Rows schemas, p->Exec(kUserSchemas));
      std::string what;
      for (int i = 0; i < schemas.size(); ++i) {
        what += (what.empty() ? "TABLES IN SCHEMA " : ", ") + QuoteIdent(schemas.Text(i, 0));
      }
      what += (what.empty() ? "" : ", ") + std::string("TABLE _regionmove.columns");
      RETURN_IF_ERROR(p->Exec("CREATE PUBLICATION " + QuoteIdent(name) + " FOR " + what).status());
    }
    ASSIGN_OR_RETURN(pg::Rows sub,
                     r->Query("SELECT 1 FROM pg_subscription WHERE subname = $1", {name}));
    if (sub.size() > 0) return Status::Ok();
    // A slot left by an attempt that crashed is reused: nothing was written since (the primary
    // stays fenced until this step is done).
    ASSIGN_OR_RETURN(pg::Rows slot, p->Query("SELECT 1 FROM pg_replication_slots "
                                             "WHERE slot_name = $1",
                                             {name}));
    ASSIGN_OR_RETURN(std::string conninfo, engine_->ConninfoFor(primary, app));
    conninfo += " application_name=" + name;  // the last value wins: names the walsender
    return r
        ->Exec("CREATE SUBSCRIPTION " + QuoteIdent(name) + " CONNECTION " + QuoteLiteral(conninfo) +
               " PUBLICATION " + QuoteIdent(name) + " WITH (copy_data = false, slot_name = " +
               QuoteLiteral(name) + ", create_slot = " + (slot.size() > 0 ? "false" : "true") + ")")
        .status();
  }

  Result<ReplicationLag> Pump(const std::string& app, const std::string& primary,
                              const std::string& replica) override {
    const std::string name = Name(app, primary, replica);
    ASSIGN_OR_RETURN(auto p, Connect(primary, app));
    // A mark in the primary's WAL: once the subscription confirms it, everything committed
    // before this call has been applied (the apply worker confirms only what it committed).
    ASSIGN_OR_RETURN(pg::Rows mark,
                     p->Exec("SELECT (pg_logical_emit_message(false, 'regionmove', 'mark') - "
                             "'0/0')::bigint"));
    const int64_t target = mark.Int(0, 0);
    // The replica's apply errors, before and after the wait: a count that grows while the
    // replica stays behind is an apply that fails again at each retry (a table the replica
    // lacks after DDL on the primary, a conflicting row), which waiting will not cure.
    ASSIGN_OR_RETURN(auto r, Connect(replica, app));
    ASSIGN_OR_RETURN(int64_t errors_before, ApplyErrors(r.get(), name));
    ReplicationLag lag;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
      ASSIGN_OR_RETURN(lag, Read(p.get(), name));
      lag.primary_position = target;
      lag.bytes = std::max<int64_t>(0, target - lag.replica_position);
      if (lag.caught_up()) {
        lag.seconds = 0;
        return lag;
      }
      if (std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSIGN_OR_RETURN(int64_t errors_after, ApplyErrors(r.get(), name));
    lag.apply_errors = errors_after;
    if (errors_after > errors_before) {
      return Permanent("the replica of " + app + " in " + replica +
                       " fails to apply the changes of " + primary + " (" +
                       std::to_string(errors_after - errors_before) +
                       " apply errors in 5 s; its server log says why, often DDL made on the "
                       "primary after the move): tear the replica down and reverse the slow way");
    }
    return lag;
  }

  // The subscription applies by itself: nothing to do, and no mark to write every few seconds.
  Status Tick(const std::string&, const std::string&, const std::string&) override {
    return Status::Ok();
  }

  Result<ReplicationLag> Lag(const std::string& app, const std::string& primary,
                             const std::string& replica) override {
    const std::string name = Name(app, primary, replica);
    ASSIGN_OR_RETURN(auto p, Connect(primary, app));
    ASSIGN_OR_RETURN(ReplicationLag lag, Read(p.get(), name));
    ASSIGN_OR_RETURN(auto r, Connect(replica, app));
    ASSIGN_OR_RETURN(lag.apply_errors, ApplyErrors(r.get(), name));
    return lag;
  }

  Status SyncRest(const std::string& app, const std::string& primary,
                  const std::string& replica) override {
    ASSIGN_OR_RETURN(auto p, Connect(primary, app));
    ASSIGN_OR_RETURN(auto r, Connect(replica, app));
    return CopySequenceValues(p.get(), r.get());
  }

  Status Stop(const std::string& app, const std::string& primary,
              const std::string& replica) override {
    const std::string name = Name(app, primary, replica);
    auto r = Connect(replica, app);
    if (r.ok()) {
      ASSIGN_OR_RETURN(pg::Rows sub, (*r)->Query("SELECT 1 FROM pg_subscription "
                                                 "WHERE subname = $1",
                                                 {name}));
      if (sub.size() > 0) {
        // Detached from its slot first, so that dropping it needs nothing from the primary.
        std::string s = QuoteIdent(name);
        RETURN_IF_ERROR((*r)->Exec("ALTER SUBSCRIPTION " + s + " DISABLE").status());
        RETURN_IF_ERROR((*r)->Exec("ALTER SUBSCRIPTION " + s + " SET (slot_name = NONE)").status());
        RETURN_IF_ERROR((*r)->Exec("DROP SUBSCRIPTION " + s).status());
      }
    } else if (r.status().code() != StatusCode::kNotFound) {
      return r.status();
    }
    // The slot on the primary's cluster: never left behind (it would keep WAL forever).
    ASSIGN_OR_RETURN(std::string admin_info, engine_->ConninfoFor(primary, ""));
    ASSIGN_OR_RETURN(auto admin, pg::Conn::Open(admin_info, "region " + primary));
    for (int attempt = 0;; ++attempt) {
      ASSIGN_OR_RETURN(pg::Rows slot, admin->Query("SELECT active_pid FROM pg_replication_slots "
                                                   "WHERE slot_name = $1",
                                                   {name}));
      if (slot.size() == 0) break;
      if (!slot.IsNull(0, 0)) {
        (void)admin->Query("SELECT pg_terminate_backend($1::int)", {slot.Text(0, 0)});
      }
      Status d = admin->Query("SELECT pg_drop_replication_slot($1)", {name}).status();
      if (d.ok()) break;
      if (attempt >= 50) return d;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    auto p = Connect(primary, app);
    if (!p.ok()) return p.status().code() == StatusCode::kNotFound ? Status::Ok() : p.status();
    return (*p)->Exec("DROP PUBLICATION IF EXISTS " + QuoteIdent(name)).status();
  }

 private:
  // rm_<app>_<8 hex of the region pair>: unique per pair, well within 63 bytes.
  static std::string Name(const std::string& app, const std::string& primary,
                          const std::string& replica) {
    return "rm_" + app.substr(0, 40) + "_" + Sha256Hex(primary + "\n" + replica).substr(0, 8);
  }

  Result<std::unique_ptr<pg::Conn>> Connect(const std::string& region, const std::string& app) {
    ASSIGN_OR_RETURN(std::string info, engine_->ConninfoFor(region, app));
    return pg::Conn::Open(info, "region " + region + ", database " + app);
  }

  // The subscription's apply errors so far, from the replica's statistics.
  static Result<int64_t> ApplyErrors(pg::Conn* replica, const std::string& name) {
    ASSIGN_OR_RETURN(pg::Rows e, replica->Query("SELECT COALESCE(sum(apply_error_count), 0) "
                                                "FROM pg_stat_subscription_stats "
                                                "WHERE subname = $1",
                                                {name}));
    return e.Int(0, 0);
  }

  // Positions from the primary: its WAL end, and what the subscription has confirmed.
  static Result<ReplicationLag> Read(pg::Conn* p, const std::string& name) {
    ASSIGN_OR_RETURN(pg::Rows r,
                     p->Query("SELECT (pg_current_wal_lsn() - '0/0')::bigint, "
                              "(COALESCE(confirmed_flush_lsn, '0/0') - '0/0')::bigint, "
                              "(SELECT COALESCE(EXTRACT(epoch FROM replay_lag), 0) "
                              " FROM pg_stat_replication WHERE application_name = $1 LIMIT 1) "
                              "FROM pg_replication_slots WHERE slot_name = $1",
                              {name}));
    if (r.size() == 0) return NotFound("no replication " + name + " (its slot is gone)");
    ReplicationLag lag;
    lag.primary_position = r.Int(0, 0);
    lag.replica_position = r.Int(0, 1);
    lag.bytes = std::max<int64_t>(0, lag.primary_position - lag.replica_position);
    lag.seconds = r.IsNull(0, 2) ? 0 : std::strtod(r.Text(0, 2).c_str(), nullptr);
    return lag;
  }

  const PgEngine* engine_;
};

}  // namespace

PgEngine::PgEngine(const EngineEnv& env)
    : env_(env), replicator_(std::make_unique<PgReplicator>(this)) {}

PgEngine::~PgEngine() = default;

Result<std::unique_ptr<DatabaseEngine>> PgEngine::Make(const EngineEnv& env) {
  return std::unique_ptr<DatabaseEngine>(new PgEngine(env));
}

Result<std::unique_ptr<Database>> PgEngine::OpenDatabase(const RegionConfig& region) {
  RETURN_IF_ERROR(pg::Conninfo(region.database.dsn, "").status());
  return std::unique_ptr<Database>(new PgDatabase(this, region, env_.rng));
}

Result<std::unique_ptr<RuntimeStore>> PgEngine::OpenRuntime(const RegionConfig& region) {
  std::string dir = region.database.dir;
  if (dir.empty()) dir = env_.config->data_dir + "/regions/" + region.slug + "/runtime";
  ASSIGN_OR_RETURN(auto rs, SqliteRuntimeStore::Open(dir, env_.secrets));
  return std::unique_ptr<RuntimeStore>(std::move(rs));
}

Result<std::string> PgEngine::ConninfoFor(const std::string& region,
                                          const std::string& dbname) const {
  for (const auto& r : env_.config->regions) {
    if (r.slug != region) continue;
    if (r.database.engine != "postgres") break;
    if (dbname.empty()) {
      // The maintenance database: the one the dsn names.
      PQconninfoOption* opts = PQconninfoParse(r.database.dsn.c_str(), nullptr);
      std::string db = "postgres";
      if (opts) {
        for (auto* o = opts; o->keyword; ++o) {
          if (std::string_view(o->keyword) == "dbname" && o->val && *o->val) db = o->val;
        }
        PQconninfoFree(opts);
      }
      return pg::Conninfo(r.database.dsn, db);
    }
    return pg::Conninfo(r.database.dsn, dbname);
  }
  return NotFound("region " + region + " has no PostgreSQL database engine");
}

Result<PgPool::Handle> PgPool::Get(const std::string& db) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = idle_.find(db);
    if (it != idle_.end() && !it->second.empty()) {
      auto c = std::move(it->second.back());
      it->second.pop_back();
      --idle_count_;
      return Handle(this, db, std::move(c));
    }
  }
  ASSIGN_OR_RETURN(std::string info, engine_->ConninfoFor(region_, db));
  ASSIGN_OR_RETURN(
      auto c, pg::Conn::Open(info, "region " + region_ + (db.empty() ? "" : ", database " + db)));
  return Handle(this, db, std::move(c));
}

void PgPool::Return(const std::string& db, std::unique_ptr<pg::Conn> c) {
  // Only a healthy connection outside any transaction goes back.
  if (!c->healthy() || PQtransactionStatus(c->raw()) != PQTRANS_IDLE) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto& v = idle_[db];
  if (v.size() >= kIdlePerDb || idle_count_ >= kIdleTotal) return;
  v.push_back(std::move(c));
  ++idle_count_;
}

void PgPool::Forget(const std::string& db) {
  std::vector<std::unique_ptr<pg::Conn>> closing;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = idle_.find(db);
  if (it == idle_.end()) return;
  idle_count_ -= it->second.size();
  closing = std::move(it->second);
  idle_.erase(it);
}

}  // namespace regionmove
