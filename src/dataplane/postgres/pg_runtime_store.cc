#include "dataplane/postgres/pg_runtime_store.h"

#include "common/hash.h"
#include "dataplane/postgres/pg_database.h"

namespace regionmove {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS functions (app_id text NOT NULL, name text NOT NULL,
  archived boolean NOT NULL, version bigint NOT NULL, entrypoint text NOT NULL,
  runtime text NOT NULL, bundle bytea NOT NULL, PRIMARY KEY (app_id, archived, name));
CREATE TABLE IF NOT EXISTS env (app_id text NOT NULL, key text NOT NULL,
  archived boolean NOT NULL, value bytea NOT NULL, secret boolean NOT NULL,
  PRIMARY KEY (app_id, archived, key));
CREATE TABLE IF NOT EXISTS cron (app_id text NOT NULL, name text NOT NULL,
  archived boolean NOT NULL, schedule text NOT NULL, function text NOT NULL,
  PRIMARY KEY (app_id, archived, name));
CREATE TABLE IF NOT EXISTS domains (app_id text NOT NULL, host text NOT NULL,
  archived boolean NOT NULL, PRIMARY KEY (app_id, archived, host));
CREATE TABLE IF NOT EXISTS fence_tokens (app_id text PRIMARY KEY, token bigint NOT NULL);
)sql";

// bytea through text parameters and results: base64 both ways.
std::string Bytes(const std::string& column) {
  return "translate(encode(" + column + ", 'base64'), E'\\n', '')";
}
Result<std::string> Unbase64(const std::string& text) {
  std::string out;
  if (!Base64Decode(text, &out)) return Corruption("a runtime row holds bytes that do not decode");
  return out;
}

// Deletes the app's rows: live (0), archived (1) or all (-1).
Status DeleteRows(pg::Conn* c, const std::string& app_id, int archived) {
  for (const char* t : kRuntimeKinds) {
    RETURN_IF_ERROR(c->Query(std::string("DELETE FROM ") + t +
                                 " WHERE app_id = $1 AND ($2::int < 0 OR archived = ($2::int = 1))",
                             {app_id, std::to_string(archived)})
                        .status());
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<PgRuntimeStore>> PgRuntimeStore::Open(const std::string& admin,
                                                             const std::string& conninfo,
                                                             const std::string& where,
                                                             const SecretBox* secrets) {
  {
    ASSIGN_OR_RETURN(auto a, pg::Conn::Open(admin, where));
    ASSIGN_OR_RETURN(pg::Rows have,
                     a->Query("SELECT 1 FROM pg_database WHERE datname = $1", {kDatabase}));
    if (have.size() == 0) {
      auto made = a->Exec("CREATE DATABASE " + pg::QuoteIdent(kDatabase));
      // Another process may have created it meanwhile.
      if (!made.ok() && made.status().message().find("already exists") == std::string::npos) {
        return made.status();
      }
    }
  }
  std::unique_ptr<PgRuntimeStore> store(
      new PgRuntimeStore(conninfo, where + ", database " + kDatabase, secrets));
  RETURN_IF_ERROR(store->With([](pg::Conn* c) -> Status {
    // Serialised across processes: concurrent CREATE TABLE IF NOT EXISTS can collide.
    ASSIGN_OR_RETURN(pg::Txn txn, pg::Txn::Begin(c));
    RETURN_IF_ERROR(
        c->Exec("SELECT pg_advisory_xact_lock(hashtextextended('regionmove:runtime', 0))")
            .status());
    RETURN_IF_ERROR(c->Exec(kSchema).status());
    return txn.Commit();
  }));
  return store;
}

Status PgRuntimeStore::With(const std::function<Status(pg::Conn*)>& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!conn_ || !conn_->healthy()) {
    conn_.reset();
    ASSIGN_OR_RETURN(conn_, pg::Conn::Open(conninfo_, where_));
  }
  return fn(conn_.get());
}

Status PgRuntimeStore::PutFunctionOn(pg::Conn* c, const std::string& app_id, const FunctionDef& f) {
  return c
      ->Query(
          "INSERT INTO functions VALUES ($1, $2, false, $3::bigint, $4, $5, decode($6, 'base64')) "
          "ON CONFLICT (app_id, archived, name) DO UPDATE SET version = excluded.version, "
          "entrypoint = excluded.entrypoint, runtime = excluded.runtime, bundle = excluded.bundle",
          {app_id, f.name, std::to_string(f.version), f.entrypoint, f.runtime,
           Base64Encode(f.bundle)})
      .status();
}

Status PgRuntimeStore::PutEnvOn(pg::Conn* c, const std::string& app_id, const EnvVar& e) {
  std::string stored = e.value;
  if (e.secret) {
    ASSIGN_OR_RETURN(stored, SealSecretEnv(*secrets_, app_id, e));
  }
  return c
      ->Query(
          "INSERT INTO env VALUES ($1, $2, false, decode($3, 'base64'), $4::boolean) "
          "ON CONFLICT (app_id, archived, key) DO UPDATE SET value = excluded.value, "
          "secret = excluded.secret",
          {app_id, e.key, Base64Encode(stored), e.secret ? "true" : "false"})
      .status();
}

Status PgRuntimeStore::PutCronOn(pg::Conn* c, const std::string& app_id, const CronTrigger& t) {
  return c
      ->Query(
          "INSERT INTO cron VALUES ($1, $2, false, $3, $4) ON CONFLICT (app_id, archived, name) "
          "DO UPDATE SET schedule = excluded.schedule, function = excluded.function",
          {app_id, t.name, t.schedule, t.function})
      .status();
}

Status PgRuntimeStore::PutDomainOn(pg::Conn* c, const std::string& app_id,
                                   const std::string& host) {
  return c
      ->Query("INSERT INTO domains VALUES ($1, $2, false) ON CONFLICT DO NOTHING", {app_id, host})
      .status();
}

Status PgRuntimeStore::PutFunction(const std::string& app_id, const FunctionDef& f) {
  return With([&](pg::Conn* c) { return PutFunctionOn(c, app_id, f); });
}
Status PgRuntimeStore::PutEnv(const std::string& app_id, const EnvVar& e) {
  return With([&](pg::Conn* c) { return PutEnvOn(c, app_id, e); });
}
Status PgRuntimeStore::PutCron(const std::string& app_id, const CronTrigger& t) {
  RETURN_IF_ERROR(ValidateCron(t.schedule));
  return With([&](pg::Conn* c) { return PutCronOn(c, app_id, t); });
}
Status PgRuntimeStore::PutDomain(const std::string& app_id, const std::string& host) {
  return With([&](pg::Conn* c) { return PutDomainOn(c, app_id, host); });
}

Status PgRuntimeStore::Delete(const std::string& app_id, const std::string& kind,
                              const std::string& name) {
  for (size_t i = 0; i < std::size(kRuntimeKinds); ++i) {
    if (kind != kRuntimeKinds[i]) continue;
    return With([&](pg::Conn* c) -> Status {
      ASSIGN_OR_RETURN(pg::Rows r, c->Query(std::string("DELETE FROM ") + kRuntimeKinds[i] +
                                                " WHERE app_id = $1 AND NOT archived AND " +
                                                kRuntimeKeyColumns[i] + " = $2",
                                            {app_id, name}));
      if (r.Affected() == 0) return NotFound(kind + " " + name + " not found");
      return Status::Ok();
    });
  }
  return InvalidArgument("unknown runtime kind " + kind);
}

Result<RuntimeSnapshot> PgRuntimeStore::Snapshot(const std::string& app_id, bool archived) {
  RuntimeSnapshot s;
  const pg::Params key = {app_id, archived ? "true" : "false"};
  RETURN_IF_ERROR(With([&](pg::Conn* c) -> Status {
    // One snapshot of all four tables.
    ASSIGN_OR_RETURN(pg::Txn txn, pg::Txn::Begin(c, "BEGIN ISOLATION LEVEL REPEATABLE READ"));
    ASSIGN_OR_RETURN(pg::Rows f,
                     c->Query("SELECT name, version, entrypoint, runtime, " + Bytes("bundle") +
                                  " FROM functions WHERE app_id = $1 AND "
                                  "archived = $2::boolean ORDER BY name",
                              key));
    for (int i = 0; i < f.size(); ++i) {
      ASSIGN_OR_RETURN(std::string bundle, Unbase64(f.Text(i, 4)));
      s.functions.push_back(
          FunctionDef{f.Text(i, 0), f.Int(i, 1), f.Text(i, 2), f.Text(i, 3), std::move(bundle)});
    }
    ASSIGN_OR_RETURN(pg::Rows e, c->Query("SELECT key, " + Bytes("value") +
                                              ", secret FROM env WHERE app_id = $1 AND "
                                              "archived = $2::boolean ORDER BY key",
                                          key));
    for (int i = 0; i < e.size(); ++i) {
      ASSIGN_OR_RETURN(std::string value, Unbase64(e.Text(i, 1)));
      EnvVar v{e.Text(i, 0), std::move(value), e.Text(i, 2) == "t"};
      if (v.secret) {
        ASSIGN_OR_RETURN(v.value, OpenSecretEnv(*secrets_, app_id, v));
      }
      s.env.push_back(std::move(v));
    }
    ASSIGN_OR_RETURN(pg::Rows t, c->Query("SELECT name, schedule, function FROM cron WHERE "
                                          "app_id = $1 AND archived = $2::boolean ORDER BY name",
                                          key));
    for (int i = 0; i < t.size(); ++i) {
      s.cron.push_back(CronTrigger{t.Text(i, 0), t.Text(i, 1), t.Text(i, 2)});
    }
    ASSIGN_OR_RETURN(pg::Rows d, c->Query("SELECT host FROM domains WHERE app_id = $1 AND "
                                          "archived = $2::boolean ORDER BY host COLLATE \"C\"",
                                          key));
    for (int i = 0; i < d.size(); ++i) s.domains.push_back(d.Text(i, 0));
    return txn.Commit();
  }));
  return s;
}

Status PgRuntimeStore::ReplaceLive(const std::string& app_id, const RuntimeSnapshot& s) {
  return With([&](pg::Conn* c) -> Status {
    ASSIGN_OR_RETURN(pg::Txn txn, pg::Txn::Begin(c));
    RETURN_IF_ERROR(DeleteRows(c, app_id, 0));
    for (const auto& f : s.functions) RETURN_IF_ERROR(PutFunctionOn(c, app_id, f));
    for (const auto& e : s.env) RETURN_IF_ERROR(PutEnvOn(c, app_id, e));
    for (const auto& t : s.cron) RETURN_IF_ERROR(PutCronOn(c, app_id, t));
    for (const auto& d : s.domains) RETURN_IF_ERROR(PutDomainOn(c, app_id, d));
    return txn.Commit();
  });
}

Status PgRuntimeStore::SetArchived(const std::string& app_id, bool archived) {
  const std::string from = archived ? "false" : "true";
  return With([&](pg::Conn* c) -> Status {
    ASSIGN_OR_RETURN(pg::Txn txn, pg::Txn::Begin(c));
    int64_t moving = 0;
    for (const char* t : kRuntimeKinds) {
      ASSIGN_OR_RETURN(pg::Rows n, c->Query(std::string("SELECT count(*) FROM ") + t +
                                                " WHERE app_id = $1 AND archived = $2::boolean",
                                            {app_id, from}));
      moving += n.Int(0, 0);
    }
    if (moving == 0) return Status::Ok();  // nothing to move: keep what stands there
    // Whatever stood at the target state is replaced by the rows moving there.
    RETURN_IF_ERROR(DeleteRows(c, app_id, archived ? 1 : 0));
    for (const char* t : kRuntimeKinds) {
      RETURN_IF_ERROR(c->Query(std::string("UPDATE ") + t +
                                   " SET archived = NOT archived WHERE app_id = $1 AND "
                                   "archived = $2::boolean",
                               {app_id, from})
                          .status());
    }
    return txn.Commit();
  });
}

Status PgRuntimeStore::DeleteAll(const std::string& app_id, Which which, int64_t token) {
  return With([&](pg::Conn* c) -> Status {
    ASSIGN_OR_RETURN(pg::Txn txn, pg::Txn::Begin(c));
    RETURN_IF_ERROR(TakeFenceToken(c, "fence_tokens", app_id, token));
    RETURN_IF_ERROR(DeleteRows(c, app_id,
                               which == Which::kAll        ? -1
                               : which == Which::kArchived ? 1
                                                           : 0));
    return txn.Commit();
  });
}

}  // namespace regionmove
