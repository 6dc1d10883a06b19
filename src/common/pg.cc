#include "common/pg.h"

#include <cstring>

namespace regionmove::pg {

namespace {

bool StartsWith(const char* s, const char* prefix) {
  return s && std::strncmp(s, prefix, std::strlen(prefix)) == 0;
}

std::string ConninfoValue(std::string_view v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace

namespace {

// The keywords `dsn` sets, in libpq's order.
Result<std::vector<std::pair<std::string, std::string>>> ParseDsn(const std::string& dsn) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(dsn.c_str(), &err);
  if (!opts) {
    std::string msg = err ? err : "out of memory";
    if (err) PQfreemem(err);
    return InvalidArgument("invalid PostgreSQL dsn: " + msg, "invalid_config");
  }
  std::vector<std::pair<std::string, std::string>> set;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (o->val) set.emplace_back(o->keyword, o->val);
  }
  PQconninfoFree(opts);
  return set;
}

}  // namespace

Result<std::string> DsnDatabase(const std::string& dsn) {
  ASSIGN_OR_RETURN(auto set, ParseDsn(dsn));
  for (const auto& [k, v] : set) {
    if (k == "dbname") return v;
  }
  return std::string();
}

Result<std::string> Conninfo(const std::string& dsn, const std::string& dbname,
                             const std::string& settings) {
  ASSIGN_OR_RETURN(auto set, ParseDsn(dsn));
  std::string out;
  for (const auto& [k, v] : set) {
    if (k == "dbname" || k == "application_name" || k == "options") continue;
    out += k + "=" + ConninfoValue(v) + " ";
  }
  out += "dbname=" + ConninfoValue(dbname) + " application_name=regionmove ";
  out += "connect_timeout=10 ";
  out += "options=" + ConninfoValue(
                          "-c default_transaction_read_only=off -c TimeZone=UTC -c DateStyle=ISO "
                          "-c extra_float_digits=3 -c bytea_output=hex -c statement_timeout=0 "
                          "-c regionmove.ddl=internal" +
                          (settings.empty() ? "" : " " + settings));
  return out;
}

namespace {

// `text` between two `q`, with every `q` inside doubled (SQL's quoting of names and strings).
std::string Quoted(std::string_view text, char q) {
  std::string out(1, q);
  for (char c : text) {
    if (c == q) out += q;
    out += c;
  }
  return out + q;
}

}  // namespace

std::string QuoteIdent(std::string_view ident) { return Quoted(ident, '"'); }

std::string QuoteLiteral(std::string_view text) { return Quoted(text, '\''); }

Status FromResult(PGconn* conn, const PGresult* res, const std::string& where) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = res ? PQresultErrorMessage(res) : "";
  if (msg.empty() && conn) msg = PQerrorMessage(conn);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (const char* detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : nullptr) {
    msg += " (" + std::string(detail) + ")";
  }
  msg = where + ": " + msg;
  if (!state || (conn && PQstatus(conn) != CONNECTION_OK)) {
    return Unavailable(msg);  // no SQLSTATE: the connection itself failed
  }
  std::string_view s = state;
  if (StartsWith(state, "08") || StartsWith(state, "57P") || StartsWith(state, "53") ||
      s == "40001" || s == "40P01" || s == "55P03" || s == "55006" || s == "57014") {
    return Status(StatusCode::kUnavailable, msg, "", std::string(s));
  }
  if (s == "25006") return Status(StatusCode::kUnavailable, msg, "app_migrating");
  if (s == "23505") return Conflict(msg, "unique_violation");
  // A value the column's type or constraints refuse: the caller's input.
  if (StartsWith(state, "22") || StartsWith(state, "23")) return InvalidArgument(msg);
  if (s == "3D000") return NotFound(msg);
  return Status(StatusCode::kPermanent, msg + " [SQLSTATE " + std::string(s) + "]", "",
                std::string(s));
}

int64_t Rows::Int(int row, int col) const {
  const char* v = PQgetvalue(r_.get(), row, col);
  return v ? std::strtoll(v, nullptr, 10) : 0;
}

int64_t Rows::Affected() const {
  const char* v = PQcmdTuples(r_.get());
  return v && *v ? std::strtoll(v, nullptr, 10) : 0;
}

Result<std::unique_ptr<Conn>> Conn::Open(const std::string& conninfo, std::string where) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (!c) return Unavailable(where + ": out of memory connecting");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    PQfinish(c);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    // A database that does not exist is NotFound; every other connection failure is retryable.
    if (msg.find("does not exist") != std::string::npos &&
        msg.find("database") != std::string::npos) {
      return NotFound(where + ": " + msg);
    }
    return Unavailable(where + ": " + msg);
  }
  // The server's notices ("... does not exist, skipping") are not errors: not printed.
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<Conn>(new Conn(c, std::move(where)));
}

Conn::~Conn() { PQfinish(conn_); }

Result<Rows> Conn::Check(PGresult* r) {
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_OUT ||
      st == PGRES_COPY_IN || st == PGRES_EMPTY_QUERY) {
    return Rows(r);
  }
  Status s = FromResult(conn_, r, where_);
  PQclear(r);
  return s;
}

Result<Rows> Conn::Exec(const std::string& sql) {
  // PQexec keeps only the last result; an error in any statement is that result.
  return Check(PQexec(conn_, sql.c_str()));
}

Result<Rows> Conn::Query(const std::string& sql, const Params& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  return Check(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                            values.data(), nullptr, nullptr, 0));
}

Result<bool> Conn::ReadCopy(std::string* chunk) {
  char* buf = nullptr;
  int n = PQgetCopyData(conn_, &buf, 0);
  if (n > 0) {
    chunk->assign(buf, static_cast<size_t>(n));
    PQfreemem(buf);
    return true;
  }
  if (n == -1) {
    // The end: the COPY's own result says whether it succeeded.
    PGresult* r = PQgetResult(conn_);
    auto checked = Check(r);
    while (PGresult* more = PQgetResult(conn_)) PQclear(more);
    RETURN_IF_ERROR(checked.status());
    return false;
  }
  return FromResult(conn_, nullptr, where_);
}

Status Conn::WriteCopy(std::string_view data) {
  if (PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) != 1) {
    return FromResult(conn_, nullptr, where_);
  }
  return Status::Ok();
}

Status Conn::EndCopy() {
  if (PQputCopyEnd(conn_, nullptr) != 1) return FromResult(conn_, nullptr, where_);
  PGresult* r = PQgetResult(conn_);
  auto checked = Check(r);
  while (PGresult* more = PQgetResult(conn_)) PQclear(more);
  return checked.status();
}

Result<Txn> Txn::Begin(Conn* c, const char* begin) {
  RETURN_IF_ERROR(c->Exec(begin).status());
  return Txn(c);
}

Txn::~Txn() {
  if (c_ && c_->healthy()) (void)c_->Exec("ROLLBACK");
}

Status Txn::Commit() {
  Conn* c = c_;
  c_ = nullptr;
  return c->Exec("COMMIT").status();
}

Pool::Handle::~Handle() {
  if (pool_ && conn_) pool_->Return(std::move(conn_));
}

Result<Pool::Handle> Pool::Acquire() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !idle_.empty() || open_ < max_; });
    if (!idle_.empty()) {
      std::unique_ptr<Conn> c = std::move(idle_.back());
      idle_.pop_back();
      return Handle(this, std::move(c));
    }
    ++open_;  // a slot for the connection opened below, outside the lock
  }
  auto c = Conn::Open(conninfo_, where_);
  if (!c.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    --open_;
    cv_.notify_one();
    return c.status();
  }
  return Handle(this, std::move(c).value());
}

void Pool::Return(std::unique_ptr<Conn> c) {
  std::lock_guard<std::mutex> lock(mu_);
  if (c->healthy() && PQtransactionStatus(c->raw()) == PQTRANS_IDLE) {
    idle_.push_back(std::move(c));
  } else {
    --open_;  // broken or left inside a transaction: closed, replaced on demand
  }
  cv_.notify_one();
}

int Pool::open() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_;
}

}  // namespace regionmove::pg
