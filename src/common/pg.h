#pragma once

#include <libpq-fe.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

// A thin layer over libpq: connections, statements, COPY, and the one function that maps
// libpq's errors to Status (DESIGN rule 2). Used by the PostgreSQL engines.
namespace regionmove::pg {

// `dsn` (a URI or key=value conninfo) with the database replaced by `dbname` and the settings
// every regionmove session uses: application_name=regionmove, writes allowed even where the
// database defaults to read-only (a fenced app database), UTC, ISO dates, exact floats, and
// regionmove.ddl=internal (its DDL is not the app's: an app database's DDL watch skips it).
// `settings` adds more ("-c name=value ...").
Result<std::string> Conninfo(const std::string& dsn, const std::string& dbname,
                             const std::string& settings = "");
// The database `dsn` names, or "" when it names none.
Result<std::string> DsnDatabase(const std::string& dsn);
// The same as command-line arguments for pg_dump and psql (`--dbname=<conninfo>`).
std::string QuoteIdent(std::string_view ident);   // "a""b"
std::string QuoteLiteral(std::string_view text);  // 'it''s'

// The one place where libpq errors become Status. By SQLSTATE class: connection failures,
// serialization failures, deadlocks, too many connections, shutdowns and lock timeouts are
// Unavailable (retryable); unique violations Conflict; other data exceptions and constraint
// violations (classes 22, 23) InvalidArgument; a missing database NotFound; a
// read-only transaction Unavailable("app_migrating"); everything else Permanent, with the
// SQLSTATE as its detail(). The message names `where` (the region and the database).
Status FromResult(PGconn* conn, const PGresult* res, const std::string& where);

class Rows {
 public:
  explicit Rows(PGresult* r) : r_(r, PQclear) {}
  int size() const { return PQntuples(r_.get()); }
  int columns() const { return PQnfields(r_.get()); }
  bool IsNull(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string Text(int row, int col) const {
    return std::string(PQgetvalue(r_.get(), row, col), PQgetlength(r_.get(), row, col));
  }
  int64_t Int(int row, int col) const;
  // Rows changed by an INSERT, UPDATE or DELETE.
  int64_t Affected() const;

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> r_;
};

using Params = std::vector<std::optional<std::string>>;

class Conn {
 public:
  // `where` names the connection in every error ("region us-east-1, database app_x").
  static Result<std::unique_ptr<Conn>> Open(const std::string& conninfo, std::string where);
  ~Conn();

  // One or more statements (simple query protocol); the last one's rows.
  Result<Rows> Exec(const std::string& sql);
  // One statement with text parameters ($1, $2, ...; nullopt is NULL).
  Result<Rows> Query(const std::string& sql, const Params& params = {});

  // COPY: start with Exec("COPY ... TO STDOUT") / Exec("COPY ... FROM STDIN"), then
  // ReadCopy() until it answers false, or WriteCopy() then EndCopy().
  Result<bool> ReadCopy(std::string* chunk);
  Status WriteCopy(std::string_view data);
  Status EndCopy();

  bool healthy() const { return PQstatus(conn_) == CONNECTION_OK; }
  PGconn* raw() { return conn_; }
  const std::string& where() const { return where_; }

 private:
  Conn(PGconn* c, std::string where) : conn_(c), where_(std::move(where)) {}
  Result<Rows> Check(PGresult* r);
  PGconn* conn_;
  std::string where_;
};

// Text parameters from values: strings as they are, integers in decimal, bools as 1/0 (flags are
// integer columns).
inline std::optional<std::string> Param(const std::string& v) { return v; }
inline std::optional<std::string> Param(const char* v) { return std::string(v); }
inline std::optional<std::string> Param(std::string_view v) { return std::string(v); }
inline std::optional<std::string> Param(bool v) { return std::string(v ? "1" : "0"); }
inline std::optional<std::string> Param(int v) { return std::to_string(v); }
inline std::optional<std::string> Param(int64_t v) { return std::to_string(v); }
template <class... A>
Params Args(const A&... a) {
  return Params{Param(a)...};
}

// One row of Rows, as the shared record decoders of the stores read it.
struct Row {
  const Rows* rows;
  int row;
  std::string Text(int col) const { return rows->Text(row, col); }
  int64_t Int(int col) const { return rows->Int(row, col); }
};

// A bounded pool of connections to one database, opened on demand. Thread-safe. A connection
// that is broken when it comes back is closed, and the next Acquire opens a new one.
class Pool {
 public:
  Pool(std::string conninfo, std::string where, int max_connections)
      : conninfo_(std::move(conninfo)), where_(std::move(where)), max_(max_connections) {}
  ~Pool() = default;

  class Handle {
   public:
    Handle(Pool* p, std::unique_ptr<Conn> c) : pool_(p), conn_(std::move(c)) {}
    Handle(Handle&&) noexcept = default;
    ~Handle();
    Conn* operator->() { return conn_.get(); }
    Conn& operator*() { return *conn_; }

   private:
    Pool* pool_;
    std::unique_ptr<Conn> conn_;
  };

  // A connection; waits while `max_connections` are lent out. Unavailable when the database
  // cannot be reached.
  Result<Handle> Acquire();
  int open() const;

 private:
  void Return(std::unique_ptr<Conn> c);

  const std::string conninfo_;
  const std::string where_;
  const int max_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;
  int open_ = 0;  // lent out + idle
};

// A transaction rolled back unless committed.
class Txn {
 public:
  static Result<Txn> Begin(Conn* c, const char* begin = "BEGIN");
  Txn(Txn&& o) noexcept : c_(o.c_) { o.c_ = nullptr; }
  ~Txn();
  Status Commit();

 private:
  explicit Txn(Conn* c) : c_(c) {}
  Conn* c_;
};

}  // namespace regionmove::pg
