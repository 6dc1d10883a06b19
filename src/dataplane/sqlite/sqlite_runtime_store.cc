#include "dataplane/sqlite/sqlite_runtime_store.h"

#include <filesystem>

namespace regionmove {

using sqlite::Stmt;
using sqlite::Txn;

Result<std::unique_ptr<SqliteRuntimeStore>> SqliteRuntimeStore::Open(const std::string& dir,
                                                                     const SecretBox* secrets) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  ASSIGN_OR_RETURN(auto db, sqlite::Db::Open(dir + "/_runtime.sqlite3"));
  RETURN_IF_ERROR(db->Exec(R"sql(
CREATE TABLE IF NOT EXISTS functions (app_id TEXT NOT NULL, name TEXT NOT NULL,
  archived INTEGER NOT NULL, version INTEGER NOT NULL, entrypoint TEXT NOT NULL,
  runtime TEXT NOT NULL, bundle BLOB NOT NULL, PRIMARY KEY (app_id, archived, name));
CREATE TABLE IF NOT EXISTS env (app_id TEXT NOT NULL, key TEXT NOT NULL,
  archived INTEGER NOT NULL, value BLOB NOT NULL, secret INTEGER NOT NULL,
  PRIMARY KEY (app_id, archived, key));
CREATE TABLE IF NOT EXISTS cron (app_id TEXT NOT NULL, name TEXT NOT NULL,
  archived INTEGER NOT NULL, schedule TEXT NOT NULL, function TEXT NOT NULL,
  PRIMARY KEY (app_id, archived, name));
CREATE TABLE IF NOT EXISTS domains (app_id TEXT NOT NULL, host TEXT NOT NULL,
  archived INTEGER NOT NULL, PRIMARY KEY (app_id, archived, host));
)sql"));
  return std::unique_ptr<SqliteRuntimeStore>(new SqliteRuntimeStore(std::move(db), secrets));
}

Status SqliteRuntimeStore::PutFunctionLocked(const std::string& app_id, const FunctionDef& f) {
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare("INSERT OR REPLACE INTO functions(app_id, name, archived, "
                                        "version, entrypoint, runtime, bundle) "
                                        "VALUES (?, ?, 0, ?, ?, ?, ?)"));
  q.BindAll(app_id, f.name, f.version, f.entrypoint, f.runtime);
  q.BindBlob(6, f.bundle.data(), f.bundle.size());
  return q.Run();
}

Status SqliteRuntimeStore::PutEnvLocked(const std::string& app_id, const EnvVar& e) {
  std::string stored = e.value;
  if (e.secret) {
    ASSIGN_OR_RETURN(stored, SealSecretEnv(*secrets_, app_id, e));
  }
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare("INSERT OR REPLACE INTO env(app_id, key, archived, value, "
                                        "secret) VALUES (?, ?, 0, ?, ?)"));
  q.BindAll(app_id, e.key);
  q.BindBlob(3, stored.data(), stored.size()).Bind(4, e.secret);
  return q.Run();
}

Status SqliteRuntimeStore::PutCronLocked(const std::string& app_id, const CronTrigger& c) {
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare("INSERT OR REPLACE INTO cron(app_id, name, archived, "
                                        "schedule, function) VALUES (?, ?, 0, ?, ?)"));
  return q.BindAll(app_id, c.name, c.schedule, c.function).Run();
}

Status SqliteRuntimeStore::PutDomainLocked(const std::string& app_id, const std::string& host) {
  ASSIGN_OR_RETURN(Stmt q, db_->Prepare("INSERT OR REPLACE INTO domains(app_id, host, archived) "
                                        "VALUES (?, ?, 0)"));
  return q.BindAll(app_id, host).Run();
}

Status SqliteRuntimeStore::PutFunction(const std::string& app_id, const FunctionDef& f) {
  std::lock_guard<std::mutex> lock(mu_);
  return PutFunctionLocked(app_id, f);
}
Status SqliteRuntimeStore::PutEnv(const std::string& app_id, const EnvVar& e) {
  std::lock_guard<std::mutex> lock(mu_);
  return PutEnvLocked(app_id, e);
}
Status SqliteRuntimeStore::PutCron(const std::string& app_id, const CronTrigger& c) {
  RETURN_IF_ERROR(ValidateCron(c.schedule));
  std::lock_guard<std::mutex> lock(mu_);
  return PutCronLocked(app_id, c);
}
Status SqliteRuntimeStore::PutDomain(const std::string& app_id, const std::string& host) {
  std::lock_guard<std::mutex> lock(mu_);
  return PutDomainLocked(app_id, host);
}

Status SqliteRuntimeStore::Delete(const std::string& app_id, const std::string& kind,
                                  const std::string& name) {
  for (size_t i = 0; i < 4; ++i) {
    if (kind != kRuntimeKinds[i]) continue;
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(Stmt q, db_->Prepare(std::string("DELETE FROM ") + kRuntimeKinds[i] +
                                          " WHERE app_id = ? AND archived = 0 AND " +
                                          kRuntimeKeyColumns[i] + " = ?"));
    RETURN_IF_ERROR(q.BindAll(app_id, name).Run());
    if (db_->Changes() == 0) return NotFound(kind + " " + name + " not found");
    return Status::Ok();
  }
  return InvalidArgument("unknown runtime kind " + kind);
}

Result<RuntimeSnapshot> SqliteRuntimeStore::Snapshot(const std::string& app_id, bool archived) {
  std::lock_guard<std::mutex> lock(mu_);
  RuntimeSnapshot s;
  int a = archived ? 1 : 0;
  ASSIGN_OR_RETURN(Stmt f, db_->Prepare("SELECT name, version, entrypoint, runtime, bundle FROM "
                                        "functions WHERE app_id = ? AND archived = ? ORDER BY "
                                        "name"));
  f.BindAll(app_id, a);
  ASSIGN_OR_RETURN(s.functions, sqlite::Collect<FunctionDef>(f, [](const Stmt& q) {
                     return FunctionDef{q.Text(0), q.Int(1), q.Text(2), q.Text(3), q.Blob(4)};
                   }));
  ASSIGN_OR_RETURN(Stmt e, db_->Prepare("SELECT key, value, secret FROM env WHERE app_id = ? AND "
                                        "archived = ? ORDER BY key"));
  e.BindAll(app_id, a);
  ASSIGN_OR_RETURN(s.env, sqlite::Collect<EnvVar>(e, [](const Stmt& q) {
                     return EnvVar{q.Text(0), q.Blob(1), q.Int(2) != 0};
                   }));
  for (EnvVar& v : s.env) {
    if (v.secret) {
      ASSIGN_OR_RETURN(v.value, OpenSecretEnv(*secrets_, app_id, v));
    }
  }
  ASSIGN_OR_RETURN(Stmt c, db_->Prepare("SELECT name, schedule, function FROM cron WHERE app_id = "
                                        "? AND archived = ? ORDER BY name"));
  c.BindAll(app_id, a);
  ASSIGN_OR_RETURN(s.cron, sqlite::Collect<CronTrigger>(c, [](const Stmt& q) {
                     return CronTrigger{q.Text(0), q.Text(1), q.Text(2)};
                   }));
  ASSIGN_OR_RETURN(Stmt d, db_->Prepare("SELECT host FROM domains WHERE app_id = ? AND archived "
                                        "= ? ORDER BY host"));
  d.BindAll(app_id, a);
  ASSIGN_OR_RETURN(s.domains,
                   sqlite::Collect<std::string>(d, [](const Stmt& q) { return q.Text(0); }));
  return s;
}

Status SqliteRuntimeStore::DeleteLocked(const std::string& app_id, int archived) {
  for (const char* t : kRuntimeKinds) {
    ASSIGN_OR_RETURN(Stmt q, db_->Prepare(std::string("DELETE FROM ") + t +
                                          " WHERE app_id = ?1 AND (?2 < 0 OR archived = ?2)"));
    RETURN_IF_ERROR(q.BindAll(app_id, archived).Run());
  }
  return Status::Ok();
}

Status SqliteRuntimeStore::ReplaceLive(const std::string& app_id, const RuntimeSnapshot& s) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Txn txn, Txn::Begin(db_.get()));
  RETURN_IF_ERROR(DeleteLocked(app_id, 0));
  for (const auto& f : s.functions) RETURN_IF_ERROR(PutFunctionLocked(app_id, f));
  for (const auto& e : s.env) RETURN_IF_ERROR(PutEnvLocked(app_id, e));
  for (const auto& c : s.cron) RETURN_IF_ERROR(PutCronLocked(app_id, c));
  for (const auto& d : s.domains) RETURN_IF_ERROR(PutDomainLocked(app_id, d));
  return txn.Commit();
}

Status SqliteRuntimeStore::SetArchived(const std::string& app_id, bool archived) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Txn txn, Txn::Begin(db_.get()));
  int to = archived ? 1 : 0;
  // Whatever stood at the target state is replaced by the rows moving there.
  ASSIGN_OR_RETURN(auto count, [&]() -> Result<int64_t> {
    int64_t n = 0;
    for (const char* t : kRuntimeKinds) {
      ASSIGN_OR_RETURN(Stmt q, db_->Prepare(std::string("SELECT COUNT(*) FROM ") + t +
                                            " WHERE app_id = ? AND archived = ?"));
      ASSIGN_OR_RETURN(bool row, q.BindAll(app_id, 1 - to).Step());
      n += row ? q.Int(0) : 0;
    }
    return n;
  }());
  if (count == 0) return Status::Ok();  // nothing to move: keep what stands there (idempotent)
  RETURN_IF_ERROR(DeleteLocked(app_id, to));
  for (const char* t : kRuntimeKinds) {
    ASSIGN_OR_RETURN(Stmt q, db_->Prepare(std::string("UPDATE ") + t +
                                          " SET archived = ? WHERE app_id = ? AND archived = ?"));
    RETURN_IF_ERROR(q.BindAll(to, app_id, 1 - to).Run());
  }
  return txn.Commit();
}

Status SqliteRuntimeStore::DeleteAll(const std::string& app_id, Which which, int64_t token) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Txn txn, Txn::Begin(db_.get()));
  RETURN_IF_ERROR(sqlite::CheckFenceToken(db_.get(), app_id, token));
  RETURN_IF_ERROR(DeleteLocked(app_id, which == Which::kAll        ? -1
                                       : which == Which::kArchived ? 1
                                                                   : 0));
  return txn.Commit();
}

}  // namespace regionmove
