#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"

namespace regionmove::sqlite {

// Converts an SQLite result code into our Status: busy/locked are retryable (kUnavailable),
// constraint violations are kConflict, corruption is kCorruption, the rest kPermanent.
// The one place SQLite errors become Status.
Status FromCode(int rc, sqlite3* db, std::string_view what);

// Prepared statements a Db keeps for reuse, by SQL text: preparing is the largest cost of a
// short statement. Bounded (statements of SQL beyond `kMaxTexts` distinct texts are not kept).
// Thread-safe (a statement may end after its Db's caller released its own lock).
class StmtCache {
 public:
  static constexpr size_t kMaxTexts = 256;
  ~StmtCache();
  // A kept statement of exactly `sql`, reset and unbound, or nullptr.
  sqlite3_stmt* Take(std::string_view sql);
  // Keeps `stmt` (resets it first), or finalizes it when the cache is full.
  void Return(sqlite3_stmt* stmt);

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::vector<sqlite3_stmt*>> kept_;
};

// A prepared statement. Bind indexes are 1-based, column indexes 0-based.
// Not thread-safe; lives no longer than its Db.
class Stmt {
 public:
  Stmt() = default;
  Stmt(sqlite3* db, sqlite3_stmt* stmt, StmtCache* cache = nullptr)
      : db_(db), stmt_(stmt), cache_(cache) {}
  Stmt(Stmt&& o) noexcept : db_(o.db_), stmt_(o.stmt_), cache_(o.cache_), bind_rc_(o.bind_rc_) {
    o.stmt_ = nullptr;
  }
  Stmt& operator=(Stmt&& o) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, int v) { return Bind(i, static_cast<int64_t>(v)); }
  Stmt& Bind(int i, bool v) { return Bind(i, static_cast<int64_t>(v ? 1 : 0)); }
  Stmt& Bind(int i, double v);
  Stmt& Bind(int i, std::string_view v);
  Stmt& Bind(int i, const char* v) { return Bind(i, std::string_view(v)); }
  Stmt& Bind(int i, const std::string& v) { return Bind(i, std::string_view(v)); }
  Stmt& BindBlob(int i, const void* data, size_t n);
  Stmt& BindNull(int i);
  // Binds every argument in order, starting at index 1.
  template <typename... Args>
  Stmt& BindAll(const Args&... args) {
    int i = 0;
    (Bind(++i, args), ...);
    return *this;
  }

  // Steps once: true when a row is available, false when done.
  Result<bool> Step();
  // Steps to completion (for statements without rows).
  Status Run();
  void Reset();

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Real(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string Text(int col) const;
  std::string Blob(int col) const;
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int ColumnType(int col) const { return sqlite3_column_type(stmt_, col); }
  int ColumnCount() const { return sqlite3_column_count(stmt_); }
  std::string ColumnName(int col) const { return sqlite3_column_name(stmt_, col); }
  sqlite3_stmt* raw() const { return stmt_; }

 private:
  void Release();
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  StmtCache* cache_ = nullptr;  // where the statement goes back to, if anywhere
  int bind_rc_ = SQLITE_OK;
};

// Steps `q` to the end, calling `fn(q)` on every row (fn returns void).
template <typename Fn>
Status ForEachRow(Stmt& q, Fn&& fn) {
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return Status::Ok();
    fn(static_cast<const Stmt&>(q));
  }
}

// Every row of `q`, each read by `read(q)` into a T.
template <typename T, typename Fn>
Result<std::vector<T>> Collect(Stmt& q, Fn&& read) {
  std::vector<T> out;
  RETURN_IF_ERROR(ForEachRow(q, [&](const Stmt& row) { out.push_back(read(row)); }));
  return out;
}

// An open database connection. Not thread-safe: callers serialise access.
class Db {
 public:
  // Opens (creating if needed) with WAL journaling, foreign keys and a busy timeout.
  static Result<std::unique_ptr<Db>> Open(const std::string& path, int busy_timeout_ms = 5000);
  // Opens read-only, as the file is on disk (SQLite's immutable=1: no locks, no -wal or -shm
  // file made, a WAL never read). Right only for a database no connection has open, whose
  // -wal file does not exist; otherwise committed changes in the WAL are missed.
  static Result<std::unique_ptr<Db>> OpenImmutable(const std::string& path);
  ~Db();

  Status Exec(std::string_view sql);
  // Resets every statement of this connection that is part way through its rows. A statement
  // left so keeps the connection's read snapshot after its transaction ends, and a later BEGIN
  // IMMEDIATE on the same connection then fails as busy until it is reset.
  void ResetBusyStatements();
  // Exec, tried again for up to `budget_ms` while it fails as unavailable (another connection
  // holds the lock): SQLite's busy handler covers most such waits, but not every path that
  // answers SQLITE_BUSY (switching a file to WAL, some lock upgrades).
  Status ExecWhileBusy(std::string_view sql, int budget_ms);
  Result<Stmt> Prepare(std::string_view sql);
  int64_t Changes() const { return sqlite3_changes64(db_); }
  int64_t LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }
  sqlite3* raw() const { return db_; }
  const std::string& path() const { return path_; }

 private:
  Db(sqlite3* db, std::string path)
      : db_(db), path_(std::move(path)), cache_(std::make_unique<StmtCache>()) {}
  sqlite3* db_;
  std::string path_;
  std::unique_ptr<StmtCache> cache_;
};

// A write transaction (BEGIN IMMEDIATE): rolls back unless Commit() succeeded.
class Txn {
 public:
  static Result<Txn> Begin(Db* db);
  Txn(Txn&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
  Txn(const Txn&) = delete;
  ~Txn();
  Status Commit();

 private:
  explicit Txn(Db* db) : db_(db) {}
  Db* db_;
};

// The table CheckFenceToken keeps its tokens in (local to the database holding it: never
// replicated nor digested).
inline constexpr const char* kFenceTokenTable = "_rm_fence_tokens";

// The fencing token check of the data plane's destructive actions (see Database): in `db`'s
// table kFenceTokenTable, refuses `token` for `app_id` with Conflict("fenced") when a higher one
// has acted, and records it otherwise. Run it in the transaction of the action. Token 0 passes.
Status CheckFenceToken(Db* db, const std::string& app_id, int64_t token);
// The same check, recording nothing: for a database about to be removed or replaced (writing
// the token into it would cost a commit for a file that goes away).
Status CheckFenceTokenOnly(Db* db, const std::string& app_id, int64_t token);

}  // namespace regionmove::sqlite
