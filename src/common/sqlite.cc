#include "common/sqlite.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

namespace regionmove::sqlite {

Status FromCode(int rc, sqlite3* db, std::string_view what) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return Status::Ok();
  std::string msg(what);
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
      return Unavailable(msg);
    case SQLITE_CONSTRAINT:
      return Conflict(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Corruption(msg);
    default:
      return Permanent(msg);
  }
}

StmtCache::~StmtCache() {
  for (auto& [sql, list] : kept_) {
    for (sqlite3_stmt* s : list) sqlite3_finalize(s);
  }
}

sqlite3_stmt* StmtCache::Take(std::string_view sql) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = kept_.find(std::string(sql));
  if (it == kept_.end() || it->second.empty()) return nullptr;
  sqlite3_stmt* s = it->second.back();
  it->second.pop_back();
  return s;
}

void StmtCache::Return(sqlite3_stmt* stmt) {
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  std::lock_guard<std::mutex> lock(mu_);
  const char* sql = sqlite3_sql(stmt);
  auto it = sql ? kept_.find(sql) : kept_.end();
  if (it == kept_.end()) {
    if (!sql || kept_.size() >= kMaxTexts) {
      sqlite3_finalize(stmt);
      return;
    }
    it = kept_.emplace(sql, std::vector<sqlite3_stmt*>()).first;
  }
  if (it->second.size() >= 4) {  // copies of one text in use at once: keep a few
    sqlite3_finalize(stmt);
    return;
  }
  it->second.push_back(stmt);
}

void Stmt::Release() {
  if (!stmt_) return;
  if (cache_) {
    cache_->Return(stmt_);
  } else {
    sqlite3_finalize(stmt_);
  }
  stmt_ = nullptr;
}

Stmt& Stmt::operator=(Stmt&& o) noexcept {
  if (this != &o) {
    Release();
    db_ = o.db_;
    stmt_ = o.stmt_;
    cache_ = o.cache_;
    bind_rc_ = o.bind_rc_;
    o.stmt_ = nullptr;
  }
  return *this;
}

Stmt::~Stmt() { Release(); }

Stmt& Stmt::Bind(int i, int64_t v) {
  if (int rc = sqlite3_bind_int64(stmt_, i, v); rc != SQLITE_OK) bind_rc_ = rc;
  return *this;
}
Stmt& Stmt::Bind(int i, double v) {
  if (int rc = sqlite3_bind_double(stmt_, i, v); rc != SQLITE_OK) bind_rc_ = rc;
  return *this;
}
Stmt& Stmt::Bind(int i, std::string_view v) {
  int rc = sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) bind_rc_ = rc;
  return *this;
}
Stmt& Stmt::BindBlob(int i, const void* data, size_t n) {
  int rc = sqlite3_bind_blob64(stmt_, i, n ? data : "", n, SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) bind_rc_ = rc;
  return *this;
}
Stmt& Stmt::BindNull(int i) {
  if (int rc = sqlite3_bind_null(stmt_, i); rc != SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Result<bool> Stmt::Step() {
  if (bind_rc_ != SQLITE_OK) return FromCode(bind_rc_, db_, "bind");
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status s = FromCode(rc, db_, sqlite3_sql(stmt_));
  sqlite3_reset(stmt_);
  return s;
}

Status Stmt::Run() {
  while (true) {
    auto r = Step();
    if (!r.ok()) return r.status();
    if (!*r) return Status::Ok();
  }
}

void Stmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_rc_ = SQLITE_OK;
}

std::string Stmt::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  if (!p) return {};
  return std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, col));
}

std::string Stmt::Blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  if (!p) return {};
  return std::string(static_cast<const char*>(p), sqlite3_column_bytes(stmt_, col));
}

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, int busy_timeout_ms) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = FromCode(rc, raw, "open " + path);
    sqlite3_close(raw);
    return s;
  }
  std::unique_ptr<Db> db(new Db(raw, path));
  sqlite3_busy_timeout(raw, busy_timeout_ms);
  // The last connection to close keeps the -wal and -shm files (emptied) instead of deleting
  // them, so the next open does not create them again: a move opens and closes an app's
  // database a few times, and on ext4 creating files among many recently deleted ones is costly.
  int persist = 1;
  sqlite3_file_control(raw, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  // synchronous=FULL: WAL mode then fsyncs the log at every commit, so a commit that was
  // acknowledged survives a power cut (NORMAL may lose the last ones). Cost measured in
  // docs/reliability.md. Switching a new file to WAL while another process does the same can
  // answer SQLITE_BUSY without waiting for the busy handler: retried within the busy timeout.
  RETURN_IF_ERROR(
      db->ExecWhileBusy("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
                        busy_timeout_ms));
  return db;
}

Result<std::unique_ptr<Db>> Db::OpenImmutable(const std::string& path) {
  std::string uri = "file:";
  for (char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", static_cast<unsigned char>(c));
      uri += hex;
    } else {
      uri += c;
    }
  }
  uri += "?immutable=1";
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(uri.c_str(), &raw,
                           SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = FromCode(rc, raw, "open " + path);
    sqlite3_close(raw);
    return s;
  }
  return std::unique_ptr<Db>(new Db(raw, path));
}

Status Db::ExecWhileBusy(std::string_view sql, int budget_ms) {
  for (int waited_ms = 0, step_ms = 5;;
       waited_ms += step_ms, step_ms = std::min(step_ms * 2, 100)) {
    Status s = Exec(sql);
    if (s.ok() || s.code() != StatusCode::kUnavailable || waited_ms >= budget_ms) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
  }
}

Db::~Db() {
  cache_.reset();  // its statements are finalized before the connection closes
  sqlite3_close_v2(db_);
}

void Db::ResetBusyStatements() {
  for (sqlite3_stmt* s = sqlite3_next_stmt(db_, nullptr); s; s = sqlite3_next_stmt(db_, s)) {
    if (sqlite3_stmt_busy(s)) sqlite3_reset(s);
  }
}

Status Db::Exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  return FromCode(rc, db_, "exec " + (s.size() > 80 ? s.substr(0, 80) + "..." : s));
}

Result<Stmt> Db::Prepare(std::string_view sql) {
  if (sqlite3_stmt* kept = cache_->Take(sql)) return Stmt(db_, kept, cache_.get());
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return FromCode(rc, db_, std::string("prepare ") + std::string(sql));
  return Stmt(db_, stmt, cache_.get());
}

Result<Txn> Txn::Begin(Db* db) {
  RETURN_IF_ERROR(db->Exec("BEGIN IMMEDIATE"));
  return Txn(db);
}

Txn::~Txn() {
  if (db_) (void)db_->Exec("ROLLBACK");
}

Status Txn::Commit() {
  Status s = db_->Exec("COMMIT");
  if (s.ok()) db_ = nullptr;
  return s;
}

namespace {
// The token recorded for `app_id` in kFenceTokenTable (0 when none, or no table), and
// Conflict("fenced") when it is higher than `token`.
Result<int64_t> RecordedFenceToken(Db* db, const std::string& app_id, int64_t token) {
  ASSIGN_OR_RETURN(Stmt t, db->Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                       "name = ?"));
  ASSIGN_OR_RETURN(bool exists, t.Bind(1, kFenceTokenTable).Step());
  if (!exists) return int64_t{0};
  ASSIGN_OR_RETURN(Stmt q, db->Prepare(std::string("SELECT token FROM ") + kFenceTokenTable +
                                       " WHERE app_id = ?"));
  ASSIGN_OR_RETURN(bool row, q.Bind(1, app_id).Step());
  const int64_t recorded = row ? q.Int(0) : 0;
  if (recorded > token) {
    return Conflict("fenced: a later migration (token " + std::to_string(recorded) +
                        ") has acted on app " + app_id,
                    "fenced");
  }
  return recorded;
}
}  // namespace

Status CheckFenceToken(Db* db, const std::string& app_id, int64_t token) {
  if (token <= 0) return Status::Ok();
  ASSIGN_OR_RETURN(int64_t recorded, RecordedFenceToken(db, app_id, token));
  if (recorded == token) return Status::Ok();  // already ours: nothing to write
  const std::string table = kFenceTokenTable;
  RETURN_IF_ERROR(db->Exec("CREATE TABLE IF NOT EXISTS " + table +
                           " (app_id TEXT PRIMARY KEY, token INTEGER NOT NULL)"));
  ASSIGN_OR_RETURN(Stmt up,
                   db->Prepare("INSERT INTO " + table + "(app_id, token) VALUES (?, ?) " +
                               "ON CONFLICT(app_id) DO UPDATE SET token = excluded.token"));
  return up.Bind(1, app_id).Bind(2, token).Run();
}

Status CheckFenceTokenOnly(Db* db, const std::string& app_id, int64_t token) {
  if (token <= 0) return Status::Ok();
  return RecordedFenceToken(db, app_id, token).status();
}

}  // namespace regionmove::sqlite
