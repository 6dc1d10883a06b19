#include "dataplane/postgres/pg_database.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <thread>

#include "common/hash.h"
#include "common/json_limits.h"
#include "common/subprocess.h"
#include "common/sync.h"

namespace regionmove {

using nlohmann::json;
using pg::QuoteIdent;
using pg::QuoteLiteral;

namespace {

// The _regionmove schema of an app database. Every statement is idempotent: it runs on every
// database the first time a process uses it, and again after a copy. The function `guard_ddl`
// is the newest object: a database that has it is up to date (EnsureInternalSchema).
constexpr const char* kPgInternalSchema = R"sql(
CREATE SCHEMA IF NOT EXISTS _regionmove;
CREATE TABLE IF NOT EXISTS _regionmove.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS _regionmove.fence_tokens (app_id text PRIMARY KEY, token bigint NOT NULL);
CREATE TABLE IF NOT EXISTS _regionmove.columns (
  table_name text NOT NULL, column_name text NOT NULL, type text NOT NULL, ord int NOT NULL,
  PRIMARY KEY (table_name, column_name));
-- DDL that travels with the data: a row inserted (and deleted) by the transaction that makes
-- the change on the primary; a replica's apply runs it (the trigger fires for replicas only).
CREATE TABLE IF NOT EXISTS _regionmove.ddl (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(), statement text NOT NULL);
-- DDL that did not travel (made by a client other than regionmove): region-local, read by the
-- replicator, which calls the replica diverged.
CREATE TABLE IF NOT EXISTS _regionmove.ddl_seen (
  at timestamptz NOT NULL DEFAULT clock_timestamp(), tag text NOT NULL, statement text NOT NULL);
INSERT INTO _regionmove.meta VALUES ('fenced', '0') ON CONFLICT DO NOTHING;
CREATE OR REPLACE FUNCTION _regionmove.refuse_writes() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'writes to this app are blocked while it moves'
     USING ERRCODE = '25006'; END $$;
-- Adds (true) or removes (false) the fence trigger on every table of the app's schemas.
CREATE OR REPLACE FUNCTION _regionmove.set_fence(fenced boolean) RETURNS void LANGUAGE plpgsql AS
$$
DECLARE t regclass;
BEGIN
  FOR t IN
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
      AND n.nspname NOT IN ('information_schema', '_regionmove') AND n.nspname NOT LIKE 'pg\_%'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
      AND EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid
                  AND g.tgname = '_regionmove_fence') <> fenced
  LOOP
    IF fenced THEN
      EXECUTE format('CREATE TRIGGER _regionmove_fence BEFORE INSERT OR UPDATE OR DELETE OR '
                     'TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION '
                     '_regionmove.refuse_writes()', t);
    ELSE
      EXECUTE format('DROP TRIGGER _regionmove_fence ON %s', t);
    END IF;
  END LOOP;
END $$;
CREATE OR REPLACE FUNCTION _regionmove.apply_ddl() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
  EXECUTE NEW.statement;
  IF (SELECT value FROM _regionmove.meta WHERE key = 'fenced') = '1' THEN
    PERFORM _regionmove.set_fence(true);
  END IF;
  RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER apply_ddl AFTER INSERT ON _regionmove.ddl
  FOR EACH ROW EXECUTE FUNCTION _regionmove.apply_ddl();
ALTER TABLE _regionmove.ddl ENABLE REPLICA TRIGGER apply_ddl;
-- Records the DDL of every client but regionmove's own connections (which set
-- regionmove.ddl = internal), except DDL on temporary objects only.
CREATE OR REPLACE FUNCTION _regionmove.watch_ddl() RETURNS event_trigger LANGUAGE plpgsql AS
$$
BEGIN
  IF current_setting('regionmove.ddl', true) = 'internal' THEN RETURN; END IF;
  IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands()) AND NOT EXISTS (
      SELECT 1 FROM pg_event_trigger_ddl_commands()
      WHERE schema_name IS NULL OR schema_name NOT LIKE 'pg\_temp%') THEN
    RETURN;
  END IF;
  INSERT INTO _regionmove.ddl_seen (tag, statement) VALUES (tg_tag, left(current_query(), 500));
EXCEPTION WHEN others THEN
  RAISE WARNING 'regionmove could not record this DDL: %', SQLERRM;
END $$;
-- While the database is fenced, DDL from other clients is refused too: a table's owner could
-- otherwise drop or disable the fence trigger (only a superuser can get past an event trigger).
CREATE OR REPLACE FUNCTION _regionmove.guard_ddl() RETURNS event_trigger LANGUAGE plpgsql AS
$$
BEGIN
  IF current_setting('regionmove.ddl', true) IS DISTINCT FROM 'internal' AND
     (SELECT value FROM _regionmove.meta WHERE key = 'fenced') = '1' THEN
    RAISE EXCEPTION 'schema changes to this app are blocked while it moves (%)', tg_tag
      USING ERRCODE = '25006';
  END IF;
END $$;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = '_regionmove_watch_ddl') THEN
    CREATE EVENT TRIGGER _regionmove_watch_ddl ON ddl_command_end
      EXECUTE FUNCTION _regionmove.watch_ddl();
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = '_regionmove_guard_ddl') THEN
    CREATE EVENT TRIGGER _regionmove_guard_ddl ON ddl_command_start
      EXECUTE FUNCTION _regionmove.guard_ddl();
  END IF;
END $$;
)sql";

// The tables of an app database that hold data to copy and compare: every ordinary table of
// the app's schemas and _regionmove.columns; not the region-local state, not what belongs to
// an extension. Materialized views are not among them: post-data refreshes them in the
// destination (as pg_dump | psql does), so their content there is their query's result now,
// which a stale view in the source need not equal.
constexpr const char* kDataTables = R"sql(
SELECT n.nspname, c.relname, pg_table_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence <> 't'
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
  AND NOT (n.nspname = '_regionmove' AND c.relname IN ('meta', 'fence_tokens', 'ddl_seen', 'touched', 'heartbeat'))
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
)sql";

// Whether every column of a table ($1) is of a built-in type (or a domain or array of one)
// whose hash function hashes the value alone, the same in every cluster.
constexpr const char* kHashedByValue = R"sql(
SELECT COALESCE(bool_and(b.typnamespace = 'pg_catalog'::regnamespace AND b.typname = ANY (
  '{bool,int2,int4,int8,float4,float8,numeric,text,varchar,bpchar,char,name,bytea,uuid,date,time,
    timetz,timestamp,timestamptz,interval,jsonb,inet,cidr,macaddr}'::name[])), true)
FROM pg_attribute a
JOIN pg_type t0 ON t0.oid = a.atttypid
JOIN pg_type t1 ON t1.oid = CASE WHEN t0.typtype = 'd' THEN t0.typbasetype ELSE t0.oid END
JOIN pg_type b ON b.oid = CASE WHEN t1.typcategory = 'A' THEN t1.typelem ELSE t1.oid END
WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
)sql";

// The primary key's columns of a table ($1) and their types, in the key's order.
constexpr const char* kPrimaryKey = R"sql(
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
WHERE i.indrelid = $1::regclass AND i.indisprimary
ORDER BY array_position(i.indkey::int2[], a.attnum)
)sql";

}  // namespace

const char* const kPgSequences = R"sql(
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
)sql";

namespace {

std::string Qualified(const std::string& schema, const std::string& name) {
  return QuoteIdent(schema) + "." + QuoteIdent(name);
}

std::string AppLockKey(const std::string& app_id) {
  return "hashtextextended(" + QuoteLiteral("regionmove:" + app_id) + ", 0)";
}

const char* PgType(const std::string& type) {
  if (type == "integer") return "bigint";
  if (type == "real") return "double precision";
  if (type == "boolean") return "boolean";
  if (type == "json") return "jsonb";
  if (type == "timestamp") return "timestamptz";
  if (type == "bytes") return "bytea";
  return "text";
}

// How a data API column is read, as text.
std::string ReadExpr(const ColumnSpec& c) {
  std::string q = QuoteIdent(c.name);
  if (c.type == "text") return q;
  if (c.type == "timestamp") {
    // RFC 3339 in UTC, with microseconds only when there are any.
    return "CASE WHEN " + q + " IS NULL THEN NULL WHEN extract(microseconds FROM " + q +
           ")::bigint % 1000000 = 0 THEN to_char(" + q +
           " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') ELSE to_char(" + q +
           " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') END";
  }
  if (c.type == "bytes") return "translate(encode(" + q + ", 'base64'), E'\\n', '')";
  return q + "::text";
}

// How a data API value is written, from a text parameter.
std::string WriteExpr(const ColumnSpec& c, int param) {
  std::string p = "$" + std::to_string(param);
  if (c.type == "text") return p;
  if (c.type == "bytes") return "decode(" + p + ", 'base64')";
  return p + "::" + PgType(c.type);
}

std::optional<std::string> ParamText(const ColumnSpec& c, const json& v) {
  if (v.is_null()) return std::nullopt;
  if (c.type == "integer") return std::to_string(v.get<int64_t>());
  if (c.type == "real") {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v.get<double>());
    return std::string(buf);
  }
  if (c.type == "boolean") return v.get<bool>() ? "true" : "false";
  if (c.type == "json") return DumpJson(v);
  return v.get<std::string>();
}

json ReadValue(const pg::Rows& r, int row, int col, const std::string& type) {
  if (r.IsNull(row, col)) return nullptr;
  std::string t = r.Text(row, col);
  if (type == "integer") return std::strtoll(t.c_str(), nullptr, 10);
  if (type == "real") return std::strtod(t.c_str(), nullptr);
  if (type == "boolean") return t == "true";
  if (type == "json") {
    json parsed = json::parse(t, nullptr, /*allow_exceptions=*/false);
    return parsed.is_discarded() ? json(t) : parsed;
  }
  return t;
}

std::string PgSelectList(const std::vector<ColumnSpec>& cols) {
  std::string sql = "id";
  for (const auto& c : cols) sql += ", " + ReadExpr(c);
  return sql;
}

json ReadRow(const pg::Rows& r, int row, const std::vector<ColumnSpec>& cols) {
  json out = json::object();
  out["id"] = r.Text(row, 0);
  for (size_t i = 0; i < cols.size(); ++i) {
    out[cols[i].name] = ReadValue(r, row, static_cast<int>(i + 1), cols[i].type);
  }
  return out;
}

// The data API's columns of `table` (public schema); NotFound for a table it did not create.
Result<std::vector<ColumnSpec>> Columns(pg::Conn* c, const std::string& table) {
  if (!IsValidIdentifier(table)) return NotFound("table " + table + " not found");
  ASSIGN_OR_RETURN(pg::Rows r, c->Query("SELECT column_name, type, ord FROM _regionmove.columns "
                                        "WHERE table_name = $1 ORDER BY ord",
                                        {table}));
  if (r.size() == 0) {
    ASSIGN_OR_RETURN(pg::Rows t, c->Query("SELECT to_regclass($1) IS NOT NULL",
                                          {"public." + QuoteIdent(table)}));
    if (t.size() == 1 && t.Text(0, 0) == "t") {
      return NotFound("table " + table +
                      " was not created through the data API; reach it through PostgreSQL");
    }
    return NotFound("table " + table + " not found");
  }
  std::vector<ColumnSpec> cols;
  for (int i = 0; i < r.size(); ++i) {
    if (r.Int(i, 2) >= 0) cols.push_back(ColumnSpec{r.Text(i, 0), r.Text(i, 1)});
  }
  return cols;
}

// Runs `ddl` (schema-qualified) in the caller's transaction, and logs it in _regionmove.ddl so
// that a replica of this database runs it too, at the same point of the change stream. The
// row is deleted at once: the table stays empty, its changes are what travels.
Status ExecCarried(pg::Conn* c, const std::string& ddl) {
  RETURN_IF_ERROR(c->Exec(ddl).status());
  ASSIGN_OR_RETURN(pg::Rows id, c->Query("INSERT INTO _regionmove.ddl (statement) VALUES ($1) "
                                         "RETURNING id",
                                         {ddl}));
  return c->Query("DELETE FROM _regionmove.ddl WHERE id = $1", {id.Text(0, 0)}).status();
}

// A table to copy, with its size on disk (for progress).
struct CopyItem {
  std::string schema, name;
  int64_t bytes = 0;
};

}  // namespace

Status CopySequenceValues(pg::Conn* from, pg::Conn* to) {
  ASSIGN_OR_RETURN(pg::Rows seqs, from->Exec(kPgSequences));
  for (int i = 0; i < seqs.size(); ++i) {
    std::string q = Qualified(seqs.Text(i, 0), seqs.Text(i, 1));
    ASSIGN_OR_RETURN(pg::Rows v, from->Exec("SELECT last_value, is_called FROM " + q));
    RETURN_IF_ERROR(to->Query("SELECT setval($1::regclass, $2::bigint, $3::boolean)",
                              {q, v.Text(0, 0), v.Text(0, 1) == "t" ? "true" : "false"})
                        .status());
  }
  return Status::Ok();
}

PgDatabase::PgDatabase(const PgEngine* engine, const RegionConfig& region, Rng* rng)
    : engine_(engine), region_(region), rng_(rng), pool_(engine, region.slug) {}

std::string PgDatabase::Where(const std::string& app_id) const {
  return "region " + region_.slug + ", database " + app_id;
}

Status PgDatabase::LockApp(pg::Conn* admin, const std::string& app_id) {
  return admin->Exec("SELECT pg_advisory_lock(" + AppLockKey(app_id) + ")").status();
}

Status PgDatabase::UnlockApp(pg::Conn* admin, const std::string& app_id) {
  return admin->Exec("SELECT pg_advisory_unlock(" + AppLockKey(app_id) + ")").status();
}

Status PgDatabase::Create(const std::string& app_id) {
  ASSIGN_OR_RETURN(auto admin, pool_.Get());
  ASSIGN_OR_RETURN(bool exists, Exists(app_id));
  if (!exists) {
    auto created = admin->Exec("CREATE DATABASE " + QuoteIdent(app_id));
    if (!created.ok() && created.status().message().find("already exists") == std::string::npos) {
      return created.status();
    }
  }
  ASSIGN_OR_RETURN(auto c, pool_.Get(app_id));
  return c->Exec(kPgInternalSchema).status();
}

Result<bool> PgDatabase::Exists(const std::string& app_id) {
  ASSIGN_OR_RETURN(auto admin, pool_.Get());
  ASSIGN_OR_RETURN(pg::Rows r,
                   admin->Query("SELECT 1 FROM pg_database WHERE datname = $1", {app_id}));
  return r.size() == 1;
}

Result<int64_t> PgDatabase::SizeBytes(const std::string& app_id) {
  ASSIGN_OR_RETURN(auto admin, pool_.Get());
  ASSIGN_OR_RETURN(pg::Rows r, admin->Query("SELECT pg_database_size(datname) FROM pg_database "
                                            "WHERE datname = $1",
                                            {app_id}));
  return r.size() == 1 ? r.Int(0, 0) : 0;
}

Result<std::map<std::string, int64_t>> PgDatabase::SizesBytes(
    const std::vector<std::string>& app_ids) {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  std::map<std::string, int64_t> out;
  std::vector<std::string> stale;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& id : app_ids) {
      auto it = sizes_.find(id);
      if (it != sizes_.end() && now - it->second.second < kSizesMaxAgeMs) {
        out[id] = it->second.first;
      } else {
        stale.push_back(id);
      }
    }
  }
  if (stale.empty()) return out;
  std::string list;  // app ids are [a-z0-9_]: a comma joins them without ambiguity
  for (const auto& id : stale) {
    out[id] = 0;
    list += (list.empty() ? "" : ",") + id;
  }
  ASSIGN_OR_RETURN(auto admin, pool_.Get());
  ASSIGN_OR_RETURN(pg::Rows r, admin->Query("SELECT datname, pg_database_size(datname) FROM "
                                            "pg_database WHERE datname = ANY(string_to_array("
                                            "$1, ','))",
                                            {list}));
  for (int i = 0; i < r.size(); ++i) out[r.Text(i, 0)] = r.Int(i, 1);
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& id : stale) sizes_[id] = {out[id], now};
  return out;
}

Status TakeFenceToken(pg::Conn* c, const std::string& table, const std::string& app_id,
                      int64_t token) {
  if (token <= 0) return Status::Ok();
  ASSIGN_OR_RETURN(
      pg::Rows r,
      c->Query("SELECT token FROM " + table + " WHERE app_id = $1 FOR UPDATE", {app_id}));
  if (r.size() == 1 && r.Int(0, 0) > token) {
    return Conflict(
        "fenced: a later migration (token " + r.Text(0, 0) + ") has acted on app " + app_id,
        "fenced");
  }
  return c
      ->Query("INSERT INTO " + table +
                  " VALUES ($1, $2) ON CONFLICT (app_id) DO UPDATE SET token = excluded.token",
              {app_id, std::to_string(token)})
      .status();
}

namespace {

Status TakeToken(pg::Conn* c, const std::string& app_id, int64_t token) {
  return TakeFenceToken(c, "_regionmove.fence_tokens", app_id, token);
}

}  // namespace

Status PgDatabase::CheckToken(const std::string& app_id, int64_t token) {
  if (token <= 0) return Status::Ok();
  auto c = pool_.Get(app_id);
  if (!c.ok()) {
    return c.status().code() == StatusCode::kNotFound ? Status::Ok() : c.status();
  }
  ASSIGN_OR_RETURN(pg::Txn txn, pg::Txn::Begin(c->get()));
  RETURN_IF_ERROR(TakeToken(c->get(), app_id, token));
  return txn.Commit();
}

Status PgDatabase::DropLocked(pg::Conn* admin, const std::string& app_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    sizes_.erase(app_id);  // dropped, or replaced by a copy
  }
  ASSIGN_OR_RETURN(bool exists, Exists(app_id));
  if (exists) {
    // Subscriptions first (a database that holds one cannot be dropped); their slots live on
    // the other cluster, which the replicator's Stop removes.
    ASSIGN_OR_RETURN(auto c, pool_.Get(app_id));
    ASSIGN_OR_RETURN(pg::Rows subs,
                     c->Exec("SELECT subname FROM pg_subscription WHERE subdbid = "
                             "(SELECT oid FROM pg_database WHERE datname = current_database())"));
    for (int i = 0; i < subs.size(); ++i) {
      std::string s = QuoteIdent(subs.Text(i, 0));
      RETURN_IF_ERROR(c->Exec("ALTER SUBSCRIPTION " + s + " DISABLE").status());
      RETURN_IF_ERROR(c->Exec("ALTER SUBSCRIPTION " + s + " SET (slot_name = NONE)").status());
      RETURN_IF_ERROR(c->Exec("DROP SUBSCRIPTION " + s).status());
    }
  }
  // Slots of this database on this cluster (a primary's): a slot left behind would keep WAL
  // forever and fill the disk.
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(pg::Rows slots,
                     admin->Query("SELECT slot_name, active_pid FROM pg_replication_slots "
                                  "WHERE database = $1",
                                  {app_id}));
    if (slots.size() == 0) break;
    Status last;
    for (int i = 0; i < slots.size(); ++i) {
      if (!slots.IsNull(i, 1)) {
        (void)admin->Query("SELECT pg_terminate_backend($1::int)", {slots.Text(i, 1)});
      }
      last = admin->Query("SELECT pg_drop_replication_slot($1)", {slots.Text(i, 0)}).status();
    }
    if (last.ok()) continue;
    if (attempt >= 50) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  pool_.Forget(app_id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    prepared_.erase(app_id);
  }
  return admin->Exec("DROP DATABASE IF EXISTS " + QuoteIdent(app_id) + " WITH (FORCE)").status();
}

Status PgDatabase::Drop(const std::string& app_id, int64_t token) {
  ASSIGN_OR_RETURN(auto admin, pool_.Get());
  RETURN_IF_ERROR(LockApp(admin.get(), app_id));
  Status s = CheckToken(app_id, token);
  if (s.ok()) s = DropLocked(admin.get(), app_id);
  Status u = UnlockApp(admin.get(), app_id);
  return s.ok() ? u : s;
}

Status PgDatabase::Fence(const std::string& app_id) {
  {
    ASSIGN_OR_RETURN(auto c, Live(app_id));
    ASSIGN_OR_RETURN(pg::Txn txn, pg::Txn::Begin(c.get()));
    // A session waiting longer than this for a table's lock fails the step, which retries.
    RETURN_IF_ERROR(c->Exec("SET LOCAL lock_timeout = '10s'").status());
    // An autovacuum of a table holds a lock that creating the trigger waits for; PostgreSQL
    // cancels it once the wait passes deadlock_timeout (1 s by default, a whole online pause).
    // 20 ms where the role may set it (a superuser); else the default applies. (The deadlock
    // check it also schedules is cheap: this transaction waits for few locks.)
    RETURN_IF_ERROR(c->Exec("SAVEPOINT deadlock_timeout").status());
    if (!c->Exec("SET LOCAL deadlock_timeout = '20ms'").ok()) {
      RETURN_IF_ERROR(c->Exec("ROLLBACK TO SAVEPOINT deadlock_timeout").status());
    }
    RETURN_IF_ERROR(c->Exec("RELEASE SAVEPOINT deadlock_timeout").status());
    // Waits for the data API's writes in flight: each holds this row FOR SHARE.
    RETURN_IF_ERROR(
        c->Exec("UPDATE _regionmove.meta SET value = '1' WHERE key = 'fenced'").status());
    // Every client's writes: a statement trigger on each table refuses them, whatever the
    // session's settings (only a table's owner or a superuser could remove it). Creating it
    // waits for the writes in flight on that table. Logical replication's apply does not fire
    // it, so a fenced replica still follows its primary.
    RETURN_IF_ERROR(c->Exec("SELECT _regionmove.set_fence(true)").status());
    RETURN_IF_ERROR(txn.Commit());
  }
  ASSIGN_OR_RETURN(auto admin, pool_.Get());
  RETURN_IF_ERROR(
      admin
          ->Exec("ALTER DATABASE " + QuoteIdent(app_id) + " SET default_transaction_read_only = on")
          .status());
  // Sessions that other clients opened before the fence may write: they end here, and
  // reconnect read-only. A transaction of theirs in flight is rolled back, never acknowledged.
  return admin
      ->Query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 "
          "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
          "AND application_name <> 'regionmove'",
          {app_id})
      .status();
}

Status PgDatabase::Unfence(const std::string& app_id, int64_t token) {
  {
    ASSIGN_OR_RETURN(auto c, Live(app_id));
    ASSIGN_OR_RETURN(pg::Txn txn, pg::Txn::Begin(c.get()));
    RETURN_IF_ERROR(TakeToken(c.get(), app_id, token));
    RETURN_IF_ERROR(
        c->Exec("UPDATE _regionmove.meta SET value = '0' WHERE key = 'fenced'").status());
    RETURN_IF_ERROR(c->Exec("SELECT _regionmove.set_fence(false)").status());
    RETURN_IF_ERROR(txn.Commit());
  }
  ASSIGN_OR_RETURN(auto admin, pool_.Get());
  return admin
      ->Exec("ALTER DATABASE " + QuoteIdent(app_id) + " RESET default_transaction_read_only")
      .status();
}

Result<bool> PgDatabase::IsFenced(const std::string& app_id) {
  ASSIGN_OR_RETURN(auto c, Live(app_id));
  ASSIGN_OR_RETURN(pg::Rows r, c->Exec("SELECT value FROM _regionmove.meta WHERE key = 'fenced'"));
  return r.size() == 1 && r.Text(0, 0) == "1";
}

Status EnsureInternalSchema(pg::Conn* c, const std::string& app_id) {
  ASSIGN_OR_RETURN(pg::Rows have,
                   c->Exec("SELECT to_regprocedure('_regionmove.guard_ddl()') IS NOT NULL"));
  if (have.Text(0, 0) == "t") return Status::Ok();
  // Serialised across processes: concurrent catalog updates of one function fail.
  ASSIGN_OR_RETURN(pg::Txn txn, pg::Txn::Begin(c));
  RETURN_IF_ERROR(
      c->Exec("SELECT pg_advisory_xact_lock(" + AppLockKey(app_id + "/schema") + ")").status());
  RETURN_IF_ERROR(c->Exec(kPgInternalSchema).status());
  return txn.Commit();
}

Status PgDatabase::EnsureInternal(pg::Conn* c, const std::string& app_id) {
  // A database that regionmove did not create (the app's own), or that an earlier build
  // created, gets the current _regionmove schema the first time this process uses it.
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (prepared_.count(app_id)) return Status::Ok();
  }
  RETURN_IF_ERROR(EnsureInternalSchema(c, app_id));
  std::lock_guard<std::mutex> lock(mu_);
  prepared_.insert(app_id);
  return Status::Ok();
}

Result<PgPool::Handle> PgDatabase::Live(const std::string& app_id) {
  // A pooled connection may have been ended by the server since its last use (the database
  // was replaced or dropped by another process, the server restarted): one ping tells.
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(auto c, pool_.Get(app_id));
    Status ping = c->Exec("").status();
    if (ping.ok() || c->healthy() || attempt >= 2) {
      RETURN_IF_ERROR(ping);
      RETURN_IF_ERROR(EnsureInternal(c.get(), app_id));
      return c;
    }
  }
}

Status PgDatabase::Write(const std::string& app_id, const std::function<Status(pg::Conn*)>& fn) {
  ASSIGN_OR_RETURN(auto c, Live(app_id));
  ASSIGN_OR_RETURN(pg::Txn txn, pg::Txn::Begin(c.get()));
  ASSIGN_OR_RETURN(pg::Rows r, c->Exec("SELECT value FROM _regionmove.meta "
                                       "WHERE key = 'fenced' FOR SHARE"));
  if (r.size() == 1 && r.Text(0, 0) == "1") {
    return Status(StatusCode::kUnavailable, "writes to app " + app_id + " are blocked",
                  "app_migrating");
  }
  RETURN_IF_ERROR(fn(c.get()));
  return txn.Commit();
}

Status PgDatabase::Read(const std::string& app_id, const std::function<Status(pg::Conn*)>& fn) {
  ASSIGN_OR_RETURN(auto c, Live(app_id));
  return fn(c.get());
}

Status PgDatabase::WithWriteFence(const std::string& app_id, const std::function<Status()>& fn) {
  return Write(app_id, [&](pg::Conn*) { return fn(); });
}

// ---------------------------------------------------------------- copy

namespace {

// The roles an app database names: owners of its schemas, relations, functions and types,
// grantees of their privileges, and the roles of its policies (PUBLIC is not a role).
constexpr const char* kNamedRoles = R"sql(
WITH app_ns AS (SELECT oid, nspowner, nspacl FROM pg_namespace
                WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema'),
ids AS (
  SELECT nspowner AS id FROM app_ns
  UNION SELECT (aclexplode(nspacl)).grantee FROM app_ns WHERE nspacl IS NOT NULL
  UNION SELECT relowner FROM pg_class WHERE relnamespace IN (SELECT oid FROM app_ns)
  UNION SELECT (aclexplode(relacl)).grantee FROM pg_class
        WHERE relnamespace IN (SELECT oid FROM app_ns) AND relacl IS NOT NULL
  UNION SELECT proowner FROM pg_proc WHERE pronamespace IN (SELECT oid FROM app_ns)
  UNION SELECT (aclexplode(proacl)).grantee FROM pg_proc
        WHERE pronamespace IN (SELECT oid FROM app_ns) AND proacl IS NOT NULL
  UNION SELECT typowner FROM pg_type WHERE typnamespace IN (SELECT oid FROM app_ns)
  UNION SELECT unnest(polroles) FROM pg_policy)
SELECT DISTINCT rolname FROM ids JOIN pg_roles ON pg_roles.oid = ids.id ORDER BY 1
)sql";

}  // namespace

Result<std::vector<std::string>> PgDatabase::MissingForCopy(const std::string& app_id,
                                                            const std::string& dest_region) {
  ASSIGN_OR_RETURN(auto src, Live(app_id));
  ASSIGN_OR_RETURN(pg::Rows roles, src->Exec(kNamedRoles));
  ASSIGN_OR_RETURN(pg::Rows exts,
                   src->Exec("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' "
                             "ORDER BY 1"));
  ASSIGN_OR_RETURN(std::string dest_info, engine_->ConninfoFor(dest_region, ""));
  ASSIGN_OR_RETURN(auto dest, pg::Conn::Open(dest_info, "region " + dest_region));
  std::vector<std::string> missing;
  for (int i = 0; i < roles.size(); ++i) {
    ASSIGN_OR_RETURN(pg::Rows r,
                     dest->Query("SELECT 1 FROM pg_roles WHERE rolname = $1", {roles.Text(i, 0)}));
    if (r.size() == 0) missing.push_back("role " + roles.Text(i, 0));
  }
  for (int i = 0; i < exts.size(); ++i) {
    ASSIGN_OR_RETURN(pg::Rows r, dest->Query("SELECT 1 FROM pg_available_extensions "
                                             "WHERE name = $1",
                                             {exts.Text(i, 0)}));
    if (r.size() == 0) missing.push_back("extension " + exts.Text(i, 0));
  }
  return missing;
}

Result<json> PgDatabase::ExportCopy(const std::string& app_id, const std::string& stage,
                                    const ProgressFn& progress, const json& at) {
  ASSIGN_OR_RETURN(bool exists, Exists(app_id));
  if (!exists) return NotFound("app " + app_id + " has no database in " + region_.slug);
  ASSIGN_OR_RETURN(std::string conninfo, engine_->ConninfoFor(region_.slug, app_id));
  // pre-data as SQL for psql; post-data as an archive, so that pg_restore -j builds the
  // indexes in parallel. Both dumps at once.
  json state = {{"pre", stage + ".pre.sql"}, {"post", stage + ".post.dump"}};
  // An unfenced source is read as of the exported snapshot the replicator holds open.
  std::vector<std::string> snapshot;
  if (at.is_object() && at.contains("snapshot")) {
    state["snapshot"] = at["snapshot"];
    snapshot.push_back("--snapshot=" + at["snapshot"].get<std::string>());
  }
  auto dump = [&](const char* section, const char* format, const std::string& path) {
    std::vector<std::string> argv = {"pg_dump",
                                     std::string("--section=") + section,
                                     format,
                                     "--no-publications",
                                     "--no-subscriptions",
                                     "--file=" + path,
                                     "--dbname=" + conninfo};
    argv.insert(argv.end(), snapshot.begin(), snapshot.end());
    return RunProgram(argv).status();
  };
  auto post = std::async(std::launch::async, dump, "post-data", "-Fc", state["post"]);
  // With a snapshot, the whole digest of what the copy reads, which the destination must equal.
  std::future<Result<std::vector<TableDigest>>> digest;
  if (!snapshot.empty()) {
    digest = std::async(std::launch::async, [&] {
      return DigestAt(app_id, at["snapshot"].get<std::string>(), DigestScope{});
    });
  }
  Status pre = dump("pre-data", "-Fp", state["pre"]);
  Status post_done = post.get();
  if (digest.valid()) {
    auto d = digest.get();
    RETURN_IF_ERROR(d.status());
    state["digest"] = DigestToJson(*d);
  }
  RETURN_IF_ERROR(pre);
  RETURN_IF_ERROR(post_done);
  for (const char* part : {"pre", "post"}) RETURN_IF_ERROR(SyncFile(state[part]));
  if (progress) RETURN_IF_ERROR(progress(1, 1));
  return state;
}

Status PgDatabase::ImportCopy(const std::string& app_id, const std::string& source_region,
                              const json& state, const ProgressFn& progress, int64_t token) {
  if (!state.is_object() || !state.contains("pre") || !state.contains("post")) {
    return Permanent("the copy state of " + app_id + " names no schema files");
  }
  ASSIGN_OR_RETURN(std::string src_info, engine_->ConninfoFor(source_region, app_id));
  ASSIGN_OR_RETURN(std::string dst_info, engine_->ConninfoFor(region_.slug, app_id));
  const std::string src_where = "region " + source_region + ", database " + app_id;
  // Every read of the source as of one snapshot when the copy has one (an unfenced source).
  const std::string snapshot = state.value("snapshot", "");
  auto at_snapshot = [&snapshot](pg::Conn* c) -> Status {
    if (snapshot.empty()) return Status::Ok();
    return c
        ->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT " +
               QuoteLiteral(snapshot))
        .status();
  };
  ASSIGN_OR_RETURN(auto src, pg::Conn::Open(src_info, src_where));
  RETURN_IF_ERROR(at_snapshot(src.get()));
  ASSIGN_OR_RETURN(pg::Rows db_info,
                   src->Exec("SELECT pg_encoding_to_char(encoding), datcollate, datctype "
                             "FROM pg_database WHERE datname = current_database()"));
  ASSIGN_OR_RETURN(pg::Rows tables, src->Exec(kDataTables));

  ASSIGN_OR_RETURN(auto admin, pool_.Get());
  RETURN_IF_ERROR(LockApp(admin.get(), app_id));
  struct Unlock {
    PgDatabase* self;
    pg::Conn* admin;
    const std::string& app;
    ~Unlock() { (void)self->UnlockApp(admin, app); }
  } unlock{this, admin.get(), app_id};
  // A later migration's worker may have copied (and unfenced) this database while this one was
  // paused: its token refuses our replacement.
  RETURN_IF_ERROR(CheckToken(app_id, token));
  RETURN_IF_ERROR(DropLocked(admin.get(), app_id));
  RETURN_IF_ERROR(admin
                      ->Exec("CREATE DATABASE " + QuoteIdent(app_id) +
                             " TEMPLATE template0 ENCODING " + QuoteLiteral(db_info.Text(0, 0)) +
                             " LC_COLLATE " + QuoteLiteral(db_info.Text(0, 1)) + " LC_CTYPE " +
                             QuoteLiteral(db_info.Text(0, 2)))
                      .status());
  // Runs a program that applies a staged schema file to the destination.
  auto apply = [&](std::vector<std::string> argv, const std::string& file) -> Status {
    argv.push_back(file);  // after "--file" for psql, the archive for pg_restore
    argv.push_back("--dbname=" + dst_info);
    Status s = RunProgram(argv).status();
    if (!s.ok()) return Permanent(Where(app_id) + ": applying " + file + ": " + s.message());
    return Status::Ok();
  };
  RETURN_IF_ERROR(
      apply({"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "--file"},
            state.value("pre", "")));

  // The data: binary COPY streams from the (fenced) source, two tables at a time, largest first.
  std::vector<CopyItem> items;
  int64_t total = 0;
  for (int i = 0; i < tables.size(); ++i) {
    items.push_back(CopyItem{tables.Text(i, 0), tables.Text(i, 1), tables.Int(i, 2)});
    total += tables.Int(i, 2);
  }
  std::sort(items.begin(), items.end(),
            [](const CopyItem& a, const CopyItem& b) { return a.bytes > b.bytes; });
  std::atomic<size_t> next{0};
  std::atomic<int64_t> done{0};
  std::atomic<bool> stop{false};
  std::mutex err_mu;
  Status first_error;
  auto fail = [&](Status s) {
    std::lock_guard<std::mutex> lock(err_mu);
    if (first_error.ok()) first_error = std::move(s);
    stop = true;
  };
  auto worker = [&] {
    Status s = CatchAll("copy worker", [&]() -> Status {
      ASSIGN_OR_RETURN(auto in, pg::Conn::Open(src_info, src_where));
      RETURN_IF_ERROR(at_snapshot(in.get()));
      ASSIGN_OR_RETURN(auto out, pg::Conn::Open(dst_info, Where(app_id)));
      std::string chunk, batch;
      for (size_t i = next++; i < items.size() && !stop; i = next++) {
        std::string t = Qualified(items[i].schema, items[i].name);
        RETURN_IF_ERROR(in->Exec("COPY " + t + " TO STDOUT (FORMAT binary)").status());
        RETURN_IF_ERROR(out->Exec("COPY " + t + " FROM STDIN (FORMAT binary)").status());
        for (;;) {
          ASSIGN_OR_RETURN(bool more, in->ReadCopy(&chunk));
          if (more) batch += chunk;
          if (batch.size() >= (1 << 18) || (!more && !batch.empty())) {
            RETURN_IF_ERROR(out->WriteCopy(batch));
            done += static_cast<int64_t>(batch.size());
            batch.clear();
          }
          if (!more) break;
          if (stop) return Cancelled("copy stopped");
        }
        RETURN_IF_ERROR(out->EndCopy());
      }
      return Status::Ok();
    });
    if (!s.ok()) fail(std::move(s));
  };
  std::vector<std::thread> workers;
  for (int i = 0; i < 2; ++i) workers.emplace_back(worker);
  // Progress from this thread only, a few times a second.
  auto all_done = [&] { return next.load() >= items.size() + workers.size(); };
  while (!all_done() && !stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (progress) {
      Status p = progress(std::min(done.load(), total), total);
      if (!p.ok()) fail(p);
    }
  }
  for (auto& w : workers) w.join();
  RETURN_IF_ERROR(first_error);

  // Sequences carry their current values; then indexes, constraints, triggers (post-data).
  ASSIGN_OR_RETURN(auto dst, pool_.Get(app_id));
  RETURN_IF_ERROR(CopySequenceValues(src.get(), dst.get()));
  RETURN_IF_ERROR(apply({"pg_restore", "--jobs=2", "--exit-on-error"}, state.value("post", "")));
  // The copy starts fenced and carries the copier's token.
  RETURN_IF_ERROR(dst->Exec(kPgInternalSchema).status());
  RETURN_IF_ERROR(dst->Exec("INSERT INTO _regionmove.meta VALUES ('fenced', '1') "
                            "ON CONFLICT (key) DO UPDATE SET value = '1'")
                      .status());
  if (token > 0) {
    RETURN_IF_ERROR(dst->Query("INSERT INTO _regionmove.fence_tokens VALUES ($1, $2)",
                               {app_id, std::to_string(token)})
                        .status());
  }
  RETURN_IF_ERROR(
      admin
          ->Exec("ALTER DATABASE " + QuoteIdent(app_id) + " SET default_transaction_read_only = on")
          .status());
  if (progress) RETURN_IF_ERROR(progress(total, total));
  return Status::Ok();
}

Result<std::vector<TableDigest>> PgDatabase::Digest(const std::string& app_id,
                                                    const DigestScope& scope) {
  return DigestAt(app_id, "", scope);
}

Result<std::vector<TableDigest>> PgDatabase::DigestAt(const std::string& app_id,
                                                      const std::string& snapshot,
                                                      const DigestScope& scope) {
  ASSIGN_OR_RETURN(std::string conninfo, engine_->ConninfoFor(region_.slug, app_id));
  // The schema in a second process while this one checksums the tables. A partial digest
  // leaves it out: it checks the rows an online move's stream changed since a whole check at
  // the copy's snapshot, and any DDL since then makes the scope whole (Replicator::Changed).
  Result<std::string> schema = Permanent("not run");
  std::thread dump;
  if (scope.whole)
    dump = std::thread([&] {
      // Not regionmove's own schema: the app's schema is what both sides must share.
      std::vector<std::string> argv = {"pg_dump",
                                       "--schema-only",
                                       "--no-publications",
                                       "--no-subscriptions",
                                       "--exclude-schema=_regionmove",
                                       "--dbname=" + conninfo};
      if (!snapshot.empty()) argv.push_back("--snapshot=" + snapshot);
      schema = RunProgram(argv);
    });
  std::vector<TableDigest> out;
  auto digest = [&](pg::Conn* c) -> Status {
    ASSIGN_OR_RETURN(pg::Rows tables, c->Exec(kDataTables));
    for (int i = 0; i < tables.size(); ++i) {
      std::string name = tables.Text(i, 0) + "." + tables.Text(i, 1);
      auto keys = scope.keys.find(name);
      const bool whole = scope.whole || scope.tables.count(name) > 0;
      if (!whole && keys == scope.keys.end()) continue;  // untouched: not in a partial digest
      // The columns' own hash functions, without the text form (3x faster), where every column
      // is of a built-in type hashed by value (an enum's hash is its OID, which differs between
      // clusters); else each row's text form. A sum: the order of rows does not matter.
      const std::string table = Qualified(tables.Text(i, 0), tables.Text(i, 1));
      ASSIGN_OR_RETURN(pg::Rows by_value, c->Query(kHashedByValue, {table}));
      const std::string row_hash = by_value.Text(0, 0) == "t" ? "hash_record_extended(t, 0)"
                                                              : "hashtextextended(t::text, 0)";
      const std::string sum =
          "SELECT count(*), COALESCE(sum(" + row_hash + "), 0) FROM ONLY " + table + " t";
      Result<pg::Rows> r = Permanent("not run");
      if (whole) {
        r = c->Exec(sum);
      } else {
        // The rows whose keys (JSON arrays of the key's values, as the replica recorded them)
        // are listed: each value back to its column's type, matched through the key's index.
        ASSIGN_OR_RETURN(pg::Rows pk, c->Query(kPrimaryKey, {table}));
        if (pk.size() == 0) return Corruption("table " + name + " has no key to look rows up by");
        std::string list = "[";
        for (const std::string& key : keys->second) list += (list.size() > 1 ? "," : "") + key;
        list += "]";
        if (pk.size() == 1) {
          // One key column: one index scan for the whole array of values, in index order.
          r = c->Query("SELECT count(*), COALESCE(sum(" + row_hash + "), 0) FROM ONLY " + table +
                           " t WHERE t." + QuoteIdent(pk.Text(0, 0)) +
                           " = ANY (ARRAY(SELECT (k ->> 0)::" + pk.Text(0, 1) +
                           " FROM jsonb_array_elements($1::jsonb) k))",
                       {list});
        } else {
          std::string columns, values;
          for (int k = 0; k < pk.size(); ++k) {
            columns += (k ? ", t." : "t.") + QuoteIdent(pk.Text(k, 0));
            values +=
                std::string(k ? ", " : "") + "(k ->> " + std::to_string(k) + ")::" + pk.Text(k, 1);
          }
          // One index lookup per key (OFFSET 0 keeps the planner from turning the lookups
          // into a join that scans the whole table).
          r = c->Query(
              "SELECT count(*), COALESCE(sum(h), 0) FROM jsonb_array_elements($1::jsonb) "
              "k, LATERAL (SELECT " +
                  row_hash + " AS h FROM ONLY " + table + " t WHERE (" + columns + ") = (" +
                  values + ") OFFSET 0) r",
              {list});
        }
      }
      RETURN_IF_ERROR(r.status());
      out.push_back(
          TableDigest{name, r->Int(0, 0), r->Text(0, 1), tables.Text(i, 0) != "_regionmove"});
    }
    ASSIGN_OR_RETURN(pg::Rows seqs, c->Exec(kPgSequences));
    for (int i = 0; i < seqs.size(); ++i) {
      ASSIGN_OR_RETURN(pg::Rows v, c->Exec("SELECT last_value, is_called FROM " +
                                           Qualified(seqs.Text(i, 0), seqs.Text(i, 1))));
      out.push_back(TableDigest{"sequence " + seqs.Text(i, 0) + "." + seqs.Text(i, 1), 0,
                                v.Text(0, 0) + "/" + v.Text(0, 1), false});
    }
    return Status::Ok();
  };
  Status s = Status::Ok();
  if (snapshot.empty()) {
    s = Read(app_id, digest);
  } else {
    // As of the snapshot that an online copy reads by (valid while its exporter is open).
    s = CatchAll("digest", [&]() -> Status {
      ASSIGN_OR_RETURN(auto c, pg::Conn::Open(conninfo, Where(app_id)));
      RETURN_IF_ERROR(c->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
                              "SET TRANSACTION SNAPSHOT " +
                              QuoteLiteral(snapshot))
                          .status());
      return digest(c.get());
    });
  }
  if (dump.joinable()) dump.join();
  RETURN_IF_ERROR(s);
  if (!scope.whole) return out;
  RETURN_IF_ERROR(schema.status());
  // Without comments, blank lines, psql's per-run keys and the fence, the dump is the schema.
  std::string normal;
  size_t pos = 0;
  const std::string& text = *schema;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    // \restrict and \unrestrict carry a random key that differs on every run; the fence's
    // triggers and a replica's change tracking are the region's state, not the app's schema.
    if (!line.empty() && line.rfind("--", 0) != 0 && line.rfind("\\restrict ", 0) != 0 &&
        line.rfind("\\unrestrict ", 0) != 0 &&
        line.rfind("CREATE TRIGGER _regionmove_fence ", 0) != 0 &&
        line.find("_regionmove_touched") == std::string_view::npos) {
      normal.append(line);
      normal += '\n';
    }
    pos = end + 1;
  }
  out.push_back(TableDigest{"schema", 0, Sha256Hex(normal), false});
  return out;
}

// ---------------------------------------------------------------- app data API

Status PgDatabase::CreateTable(const std::string& app_id, const TableSpec& spec) {
  RETURN_IF_ERROR(ValidateTableSpec(spec));
  std::string sql = "CREATE TABLE public." + QuoteIdent(spec.name) + " (id text PRIMARY KEY";
  for (const auto& c : spec.columns) sql += ", " + QuoteIdent(c.name) + " " + PgType(c.type);
  sql += ")";
  return Write(app_id, [&](pg::Conn* c) -> Status {
    ASSIGN_OR_RETURN(pg::Rows exists,
                     c->Query("SELECT 1 FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                              "AND lower(relname) = lower($1)",
                              {spec.name}));
    if (exists.size() > 0) return Conflict("table " + spec.name + " exists", "table_exists");
    RETURN_IF_ERROR(ExecCarried(c, sql));
    // The row of `id` (ord -1) marks a data API table even when it has no other column.
    RETURN_IF_ERROR(
        c->Query("INSERT INTO _regionmove.columns VALUES ($1, 'id', 'text', -1)", {spec.name})
            .status());
    for (size_t i = 0; i < spec.columns.size(); ++i) {
      RETURN_IF_ERROR(
          c->Query("INSERT INTO _regionmove.columns VALUES ($1, $2, $3, $4::int)",
                   {spec.name, spec.columns[i].name, spec.columns[i].type, std::to_string(i)})
              .status());
    }
    return Status::Ok();
  });
}

Result<std::vector<TableSpec>> PgDatabase::ListTables(const std::string& app_id) {
  std::vector<TableSpec> out;
  RETURN_IF_ERROR(Read(app_id, [&](pg::Conn* c) -> Status {
    ASSIGN_OR_RETURN(pg::Rows names,
                     c->Exec("SELECT DISTINCT k.table_name FROM _regionmove.columns k "
                             "JOIN pg_class r ON r.relname = k.table_name "
                             "AND r.relnamespace = 'public'::regnamespace "
                             "ORDER BY 1"));
    for (int i = 0; i < names.size(); ++i) {
      TableSpec t;
      t.name = names.Text(i, 0);
      ASSIGN_OR_RETURN(t.columns, Columns(c, t.name));
      ASSIGN_OR_RETURN(pg::Rows n, c->Exec("SELECT count(*) FROM public." + QuoteIdent(t.name)));
      t.row_count = n.Int(0, 0);
      out.push_back(std::move(t));
    }
    return Status::Ok();
  }));
  return out;
}

Result<json> PgDatabase::InsertRows(const std::string& app_id, const std::string& table,
                                    const json& rows_in) {
  json rows = rows_in.is_array() ? rows_in : json::array({rows_in});
  if (rows.empty()) return InvalidArgument("no rows given");
  json out = json::array();
  RETURN_IF_ERROR(Write(app_id, [&](pg::Conn* c) -> Status {
    ASSIGN_OR_RETURN(auto cols, Columns(c, table));
    std::string sql = "INSERT INTO public." + QuoteIdent(table) + " (id";
    for (const auto& col : cols) sql += ", " + QuoteIdent(col.name);
    sql += ") VALUES ($1";
    for (size_t i = 0; i < cols.size(); ++i) sql += ", " + WriteExpr(cols[i], int(i) + 2);
    sql += ")";
    for (auto& row : rows) {
      RETURN_IF_ERROR(NormalizeRow(table, cols, *rng_, &row));
      pg::Params params{row["id"].get<std::string>()};
      for (const auto& col : cols) params.push_back(ParamText(col, row[col.name]));
      Status s = c->Query(sql, params).status();
      if (s.reason() == "unique_violation") {
        return Conflict("row " + row["id"].get<std::string>() + " exists in " + table,
                        "row_exists");
      }
      RETURN_IF_ERROR(s);
      out.push_back(row);
    }
    return Status::Ok();
  }));
  return out;
}

Result<json> PgDatabase::GetRow(const std::string& app_id, const std::string& table,
                                const std::string& id) {
  json out;
  RETURN_IF_ERROR(Read(app_id, [&](pg::Conn* c) -> Status {
    ASSIGN_OR_RETURN(auto cols, Columns(c, table));
    ASSIGN_OR_RETURN(pg::Rows r, c->Query("SELECT " + PgSelectList(cols) + " FROM public." +
                                              QuoteIdent(table) + " WHERE id = $1",
                                          {id}));
    if (r.size() == 0) return NotFound("row " + id + " not found in " + table);
    out = ReadRow(r, 0, cols);
    return Status::Ok();
  }));
  return out;
}

Result<json> PgDatabase::UpdateRow(const std::string& app_id, const std::string& table,
                                   const std::string& id, const json& patch) {
  if (!patch.is_object()) return InvalidArgument("the body must be a JSON object");
  if (patch.contains("id")) return InvalidArgument("field 'id' cannot be changed");
  RETURN_IF_ERROR(Write(app_id, [&](pg::Conn* c) -> Status {
    ASSIGN_OR_RETURN(auto cols, Columns(c, table));
    std::string sql = "UPDATE public." + QuoteIdent(table) + " SET id = id";
    pg::Params params{id};
    for (auto it = patch.begin(); it != patch.end(); ++it) {
      const ColumnSpec* col = FindColumn(cols, it.key());
      if (!col) return InvalidArgument("table " + table + " has no column '" + it.key() + "'");
      RETURN_IF_ERROR(CheckValue(*col, *it));
      params.push_back(ParamText(*col, *it));
      sql += ", " + QuoteIdent(col->name) + " = " + WriteExpr(*col, int(params.size()));
    }
    sql += " WHERE id = $1";
    ASSIGN_OR_RETURN(pg::Rows r, c->Query(sql, params));
    if (r.Affected() == 0) return NotFound("row " + id + " not found in " + table);
    return Status::Ok();
  }));
  return GetRow(app_id, table, id);
}

Status PgDatabase::DeleteRow(const std::string& app_id, const std::string& table,
                             const std::string& id) {
  return Write(app_id, [&](pg::Conn* c) -> Status {
    RETURN_IF_ERROR(Columns(c, table).status());
    ASSIGN_OR_RETURN(pg::Rows r,
                     c->Query("DELETE FROM public." + QuoteIdent(table) + " WHERE id = $1", {id}));
    if (r.Affected() == 0) return NotFound("row " + id + " not found in " + table);
    return Status::Ok();
  });
}

Result<json> PgDatabase::ListRows(const std::string& app_id, const std::string& table,
                                  const std::string& after, int limit) {
  json rows = json::array();
  RETURN_IF_ERROR(Read(app_id, [&](pg::Conn* c) -> Status {
    ASSIGN_OR_RETURN(auto cols, Columns(c, table));
    // Byte order of ids, as on every engine.
    ASSIGN_OR_RETURN(pg::Rows r,
                     c->Query("SELECT " + PgSelectList(cols) + " FROM public." + QuoteIdent(table) +
                                  " WHERE id COLLATE \"C\" > $1 ORDER BY id "
                                  "COLLATE \"C\" LIMIT $2::int",
                              {after, std::to_string(limit)}));
    for (int i = 0; i < r.size(); ++i) rows.push_back(ReadRow(r, i, cols));
    return Status::Ok();
  }));
  return rows;
}

}  // namespace regionmove
