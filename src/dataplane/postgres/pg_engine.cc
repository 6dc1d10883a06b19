#include "dataplane/postgres/pg_engine.h"

#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "common/hash.h"
#include "dataplane/postgres/pg_database.h"
#include "dataplane/postgres/pg_runtime_store.h"

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

// Has a replica record which rows the apply worker changes (Replicator::Changed): a row
// trigger on every replicated table, enabled ALWAYS so that it fires in the apply worker,
// writes each changed row's key (a JSON array of the primary key's values) to
// _regionmove.touched in the applying transaction; TRUNCATE, or a table without a primary key,
// records the key '*' (the whole table).
constexpr const char* kTrackChanges = R"sql(
CREATE TABLE IF NOT EXISTS _regionmove.touched (
  tbl text NOT NULL, key text NOT NULL, PRIMARY KEY (tbl, key));
TRUNCATE _regionmove.touched;
CREATE OR REPLACE FUNCTION _regionmove.record_touched() RETURNS trigger LANGUAGE plpgsql AS
$$
DECLARE
  t text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
BEGIN
  IF TG_OP = 'TRUNCATE' OR TG_NARGS = 0 THEN
    INSERT INTO _regionmove.touched VALUES (t, '*') ON CONFLICT DO NOTHING;
    RETURN NULL;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO _regionmove.touched SELECT t, jsonb_agg(to_jsonb(NEW) -> c ORDER BY o)::text
      FROM unnest(TG_ARGV) WITH ORDINALITY AS u(c, o) ON CONFLICT DO NOTHING;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    INSERT INTO _regionmove.touched SELECT t, jsonb_agg(to_jsonb(OLD) -> c ORDER BY o)::text
      FROM unnest(TG_ARGV) WITH ORDINALITY AS u(c, o) ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $$;
DO $$
DECLARE
  r record;
  args text;
BEGIN
  FOR r IN
    SELECT c.oid, c.oid::regclass::text AS t FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND c.relpersistence = 'p'
      AND ((n.nspname NOT IN ('information_schema', '_regionmove') AND n.nspname NOT LIKE 'pg\_%'
            AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                            AND d.objid = c.oid AND d.deptype = 'e'))
           OR (n.nspname = '_regionmove' AND c.relname IN ('columns', 'ddl')))
  LOOP
    SELECT string_agg(quote_literal(a.attname), ', '
                      ORDER BY array_position(i.indkey::int2[], a.attnum)) INTO args
    FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
    WHERE i.indrelid = r.oid AND i.indisprimary;
    EXECUTE format('CREATE OR REPLACE TRIGGER _regionmove_touched AFTER INSERT OR UPDATE OR '
                   'DELETE ON %s FOR EACH ROW EXECUTE FUNCTION _regionmove.record_touched(%s)',
                   r.t, COALESCE(args, ''));
    EXECUTE format('CREATE OR REPLACE TRIGGER _regionmove_touched_all AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION _regionmove.record_touched()', r.t);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER _regionmove_touched', r.t);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER _regionmove_touched_all', r.t);
  END LOOP;
END $$;
)sql";

// A row that Pump updates on the primary and reads back on the replica: its value there says
// the apply worker has committed everything that committed before the update, without waiting
// for the worker's next status report (wal_receiver_status_interval, 10 s by default). Part of
// the publication; the replica's row is made here too (a replica whose copy predates it).
constexpr const char* kHeartbeat = R"sql(
CREATE TABLE IF NOT EXISTS _regionmove.heartbeat (id int PRIMARY KEY, n bigint NOT NULL);
INSERT INTO _regionmove.heartbeat VALUES (1, 0) ON CONFLICT DO NOTHING;
)sql";

// Removes what kTrackChanges made.
constexpr const char* kUntrackChanges = R"sql(
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT DISTINCT tgrelid::regclass::text AS t FROM pg_trigger
           WHERE tgname IN ('_regionmove_touched', '_regionmove_touched_all')
  LOOP
    EXECUTE format('DROP TRIGGER IF EXISTS _regionmove_touched ON %s', r.t);
    EXECUTE format('DROP TRIGGER IF EXISTS _regionmove_touched_all ON %s', r.t);
  END LOOP;
END $$;
DROP FUNCTION IF EXISTS _regionmove.record_touched();
DROP TABLE IF EXISTS _regionmove.touched;
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
    RETURN_IF_ERROR(FullIdentityWithoutKey(r.get()));
    RETURN_IF_ERROR(Publish(p.get(), name));
    ASSIGN_OR_RETURN(pg::Rows sub,
                     r->Query("SELECT 1 FROM pg_subscription WHERE subname = $1", {name}));
    if (sub.size() > 0) return Status::Ok();
    // A slot left by an attempt that crashed is reused: nothing was written since (the primary
    // stays fenced until this step is done). The slot is made here, with no transaction open on
    // the replica's cluster, not by CREATE SUBSCRIPTION: a slot's creation waits for every
    // transaction running on its cluster, and a subscription that makes its slot holds one open
    // on the other; two set-ups in opposite directions at once would wait on each other forever.
    ASSIGN_OR_RETURN(pg::Rows slot, p->Query("SELECT 1 FROM pg_replication_slots "
                                             "WHERE slot_name = $1",
                                             {name}));
    if (slot.size() == 0) {
      RETURN_IF_ERROR(
          p->Query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", {name}).status());
    }
    return Subscribe(r.get(), app, primary, name);
  }

  // The slot is made on a replication connection with an exported snapshot (as a subscription's
  // own table copy does): the copy imports it (SET TRANSACTION SNAPSHOT, pg_dump --snapshot),
  // and the subscription, made afterwards on that slot, streams what committed after it.
  Status StartFromSnapshot(const std::string& app, const std::string& primary,
                           const std::string& replica,
                           const std::function<Status(const nlohmann::json&)>& copy) override {
    const std::string name = Name(app, primary, replica);
    {
      ASSIGN_OR_RETURN(auto p, Connect(primary, app));
      RETURN_IF_ERROR(Publish(p.get(), name));  // before the slot: its decoding needs it
    }
    RETURN_IF_ERROR(Stop(app, primary, replica, /*keep_publication=*/true));  // an earlier try
    ASSIGN_OR_RETURN(std::string info, engine_->ConninfoFor(primary, app));
    ASSIGN_OR_RETURN(auto walsender, pg::Conn::Open(info + " replication=database",
                                                    "region " + primary + ", database " + app));
    ASSIGN_OR_RETURN(pg::Rows slot, walsender->Exec("CREATE_REPLICATION_SLOT " + QuoteIdent(name) +
                                                    " LOGICAL pgoutput (SNAPSHOT 'export')"));
    // slot_name, consistent_point, snapshot_name, output_plugin
    RETURN_IF_ERROR(
        copy(nlohmann::json{{"snapshot", slot.Text(0, 2)}, {"position", slot.Text(0, 1)}}));
    walsender.reset();  // the snapshot ends; the slot stays
    ASSIGN_OR_RETURN(auto r, Connect(replica, app));
    RETURN_IF_ERROR(FullIdentityWithoutKey(r.get()));
    RETURN_IF_ERROR(r->Exec(kTrackChanges).status());  // before the first change applies
    return Subscribe(r.get(), app, primary, name);
  }

  Result<DigestScope> Changed(const std::string& app, const std::string& primary,
                              const std::string& replica) override {
    (void)primary;
    ASSIGN_OR_RETURN(auto r, Connect(replica, app));
    ASSIGN_OR_RETURN(pg::Rows tracked,
                     r->Exec("SELECT to_regclass('_regionmove.touched') IS NOT NULL"));
    DigestScope scope;
    if (tracked.Text(0, 0) != "t") return scope;  // not started from a snapshot: whole
    // In no particular order: the digest of a table's rows is a sum.
    ASSIGN_OR_RETURN(pg::Rows rows, r->Exec("SELECT tbl, key FROM _regionmove.touched"));
    scope.whole = false;
    for (int i = 0; i < rows.size(); ++i) {
      // DDL travelled (a row of _regionmove.ddl): the tables it made are not tracked.
      if (rows.Text(i, 0) == "_regionmove.ddl") return DigestScope{};
      if (rows.Text(i, 1) == "*") {
        scope.tables.insert(rows.Text(i, 0));
      } else {
        scope.keys[rows.Text(i, 0)].push_back(rows.Text(i, 1));
      }
    }
    return scope;
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
    // Sooner than the confirmation: the heartbeat committed after the mark, once the replica
    // shows it (a publication made before the heartbeat existed has none: -1).
    ASSIGN_OR_RETURN(int64_t beat, Beat(p.get(), name));
    // The replica's apply errors, before and after the wait: a count that grows while the
    // replica stays behind is an apply that fails again at each retry (a table the replica
    // lacks after DDL on the primary, a conflicting row), which waiting will not cure.
    ASSIGN_OR_RETURN(auto r, Connect(replica, app));
    ASSIGN_OR_RETURN(int64_t errors_before, ApplyErrors(r.get(), name));
    // Once per call: DDL after this point is the next call's (or the background's) to find.
    ASSIGN_OR_RETURN(std::string diverged, Divergence(app, primary, p.get(), replica, r.get()));
    if (!diverged.empty()) return Diverged(diverged);
    ReplicationLag lag;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
      ASSIGN_OR_RETURN(lag, Read(p.get(), name));
      ASSIGN_OR_RETURN(int syncing, SyncTables(p.get(), r.get(), name));
      lag.primary_position = target;
      if (beat >= 0) {
        ASSIGN_OR_RETURN(pg::Rows seen,
                         r->Exec("SELECT n FROM _regionmove.heartbeat WHERE id = 1"));
        if (seen.size() == 1 && seen.Int(0, 0) >= beat) {
          lag.replica_position = std::max(lag.replica_position, target);
        }
      }
      lag.bytes = std::max<int64_t>(0, target - lag.replica_position);
      if (lag.caught_up() && syncing == 0) {
        lag.seconds = 0;
        return lag;
      }
      if (std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(beat >= 0 ? 10 : 50));
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

  // The subscription applies by itself. What the background does: notice divergence, and
  // have the subscription pick up the tables that DDL carried to the replica.
  Status Tick(const std::string& app, const std::string& primary,
              const std::string& replica) override {
    {
      // The background loop calls this several times a second: once every 2 s is enough.
      std::lock_guard<std::mutex> lock(mu_);
      auto now = std::chrono::steady_clock::now();
      auto& last = last_tick_[Name(app, primary, replica)];
      if (now - last < std::chrono::seconds(2)) return Status::Ok();
      last = now;
    }
    ASSIGN_OR_RETURN(auto p, Connect(primary, app));
    ASSIGN_OR_RETURN(auto r, Connect(replica, app));
    ASSIGN_OR_RETURN(std::string diverged, Divergence(app, primary, p.get(), replica, r.get()));
    if (!diverged.empty()) return Diverged(diverged);
    return SyncTables(p.get(), r.get(), Name(app, primary, replica)).status();
  }

  Result<ReplicationLag> Lag(const std::string& app, const std::string& primary,
                             const std::string& replica) override {
    const std::string name = Name(app, primary, replica);
    ASSIGN_OR_RETURN(auto p, Connect(primary, app));
    ASSIGN_OR_RETURN(ReplicationLag lag, Read(p.get(), name));
    ASSIGN_OR_RETURN(auto r, Connect(replica, app));
    ASSIGN_OR_RETURN(lag.apply_errors, ApplyErrors(r.get(), name));
    ASSIGN_OR_RETURN(lag.diverged, Divergence(app, primary, p.get(), replica, r.get()));
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
    return Stop(app, primary, replica, /*keep_publication=*/false);
  }

 private:
  Status Stop(const std::string& app, const std::string& primary, const std::string& replica,
              bool keep_publication) {
    const std::string name = Name(app, primary, replica);
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_tick_.erase(name);
    }
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
      // Unconditionally: a crash may have come between the drop and this.
      RETURN_IF_ERROR((*r)->Exec(kUntrackChanges).status());
      RETURN_IF_ERROR((*r)->Exec("ALTER ROLE CURRENT_USER IN DATABASE " + QuoteIdent(app) +
                                 " RESET default_transaction_read_only")
                          .status());
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
        // Waits (up to a second) for the slot's sender to end, so that the drop can succeed.
        (void)admin->Query("SELECT pg_terminate_backend($1::int, 1000)", {slot.Text(0, 0)});
      }
      Status d = admin->Query("SELECT pg_drop_replication_slot($1)", {name}).status();
      if (d.ok()) break;
      if (attempt >= 250) return d;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (keep_publication) return Status::Ok();
    auto p = Connect(primary, app);
    if (!p.ok()) return p.status().code() == StatusCode::kNotFound ? Status::Ok() : p.status();
    return (*p)->Exec("DROP PUBLICATION IF EXISTS " + QuoteIdent(name)).status();
  }

  // REPLICA IDENTITY FULL for the tables of `c` that have no primary key (updates and deletes
  // of such a table need the whole old row).
  static Status FullIdentityWithoutKey(pg::Conn* c) {
    ASSIGN_OR_RETURN(pg::Rows t, c->Exec(kNoIdentity));
    for (int i = 0; i < t.size(); ++i) {
      RETURN_IF_ERROR(c->Exec("ALTER TABLE " + t.Text(i, 0) + " REPLICA IDENTITY FULL").status());
    }
    return Status::Ok();
  }

  // The publication `name` on the primary (made once): the app's schemas, the data API's
  // columns and the DDL that travels; DDL recorded before it is in the replica's copy.
  static Status Publish(pg::Conn* p, const std::string& name) {
    RETURN_IF_ERROR(FullIdentityWithoutKey(p));
    RETURN_IF_ERROR(p->Exec(kHeartbeat).status());
    ASSIGN_OR_RETURN(pg::Rows pub,
                     p->Query("SELECT 1 FROM pg_publication WHERE pubname = $1", {name}));
    if (pub.size() > 0) return Status::Ok();
    ASSIGN_OR_RETURN(pg::Rows schemas, p->Exec(kUserSchemas));
    std::string what;
    for (int i = 0; i < schemas.size(); ++i) {
      what += (what.empty() ? "TABLES IN SCHEMA " : ", ") + QuoteIdent(schemas.Text(i, 0));
    }
    what += (what.empty() ? "" : ", ") +
            std::string("TABLE _regionmove.columns, _regionmove.ddl, _regionmove.heartbeat");
    ASSIGN_OR_RETURN(pg::Txn txn, pg::Txn::Begin(p));
    RETURN_IF_ERROR(p->Exec("TRUNCATE _regionmove.ddl_seen").status());
    RETURN_IF_ERROR(p->Exec("CREATE PUBLICATION " + QuoteIdent(name) + " FOR " + what).status());
    return txn.Commit();
  }

  // The subscription `name` on the replica, from the primary's slot of that name (made before).
  Status Subscribe(pg::Conn* r, const std::string& app, const std::string& primary,
                   const std::string& name) {
    RETURN_IF_ERROR(r->Exec(kHeartbeat).status());
    RETURN_IF_ERROR(r->Exec("TRUNCATE _regionmove.ddl_seen").status());
    // The apply worker runs the DDL that travels (_regionmove.ddl) in a database that defaults
    // to read-only while fenced: its role (the subscription's owner) is exempt in this database.
    RETURN_IF_ERROR(r->Exec("ALTER ROLE CURRENT_USER IN DATABASE " + QuoteIdent(app) +
                            " SET default_transaction_read_only = off")
                        .status());
    ASSIGN_OR_RETURN(std::string conninfo, engine_->ConninfoFor(primary, app));
    conninfo += " application_name=" + name;  // the last value wins: names the walsender
    return r
        ->Exec("CREATE SUBSCRIPTION " + QuoteIdent(name) + " CONNECTION " + QuoteLiteral(conninfo) +
               " PUBLICATION " + QuoteIdent(name) + " WITH (copy_data = false, slot_name = " +
               QuoteLiteral(name) + ", create_slot = false)")
        .status();
  }

  // Advances the heartbeat on the primary and returns its new value; -1 when the publication
  // `name` does not carry it (made before the heartbeat existed).
  static Result<int64_t> Beat(pg::Conn* p, const std::string& name) {
    ASSIGN_OR_RETURN(pg::Rows published,
                     p->Query("SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND "
                              "schemaname = '_regionmove' AND tablename = 'heartbeat'",
                              {name}));
    if (published.size() == 0) return int64_t{-1};
    // A fenced database defaults to read-only transactions, but not for regionmove's sessions
    // (pg::Conninfo); the fence's triggers are on the app's tables only. Committed durably even
    // where synchronous_commit is off: the commit flushes the WAL before it, which the sender
    // streams only once flushed (else up to three wal_writer_delay later: 0.4 s of each pause).
    ASSIGN_OR_RETURN(pg::Rows n, p->Exec("SET LOCAL synchronous_commit = on; "
                                         "UPDATE _regionmove.heartbeat SET n = n + 1 "
                                         "WHERE id = 1 RETURNING n"));
    return n.size() == 1 ? n.Int(0, 0) : int64_t{-1};
  }

  // rm_<app>_<8 hex of the region pair>: unique per pair, well within 63 bytes.
  static std::string Name(const std::string& app, const std::string& primary,
                          const std::string& replica) {
    return "rm_" + app.substr(0, 40) + "_" + Sha256Hex(primary + "\n" + replica).substr(0, 8);
  }

  Result<std::unique_ptr<pg::Conn>> Connect(const std::string& region, const std::string& app) {
    ASSIGN_OR_RETURN(std::string info, engine_->ConninfoFor(region, app));
    ASSIGN_OR_RETURN(auto c, pg::Conn::Open(info, "region " + region + ", database " + app));
    RETURN_IF_ERROR(EnsureInternalSchema(c.get(), app));  // made by an earlier build
    return c;
  }

  static Status Diverged(const std::string& why) { return Conflict(why, "replica_diverged"); }

  // Why the replica cannot follow its primary any more, or "" when it can: DDL made on either
  // side since replication started by a client other than regionmove (which the change stream
  // does not carry; see _regionmove.ddl_seen).
  static Result<std::string> Divergence(const std::string& app, const std::string& primary,
                                        pg::Conn* p, const std::string& replica, pg::Conn* r) {
    for (auto [region, c] : {std::pair{&primary, p}, std::pair{&replica, r}}) {
      ASSIGN_OR_RETURN(pg::Rows seen,
                       c->Exec("SELECT count(*) OVER (), tag, statement, "
                               "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                               "FROM _regionmove.ddl_seen ORDER BY at LIMIT 1"));
      if (seen.size() == 0) continue;
      std::string statement = seen.Text(0, 2);
      for (char& ch : statement) {
        if (ch == '\n' || ch == '\t') ch = ' ';
      }
      if (statement.size() > 160) statement = statement.substr(0, 160) + "...";
      return "DDL on the " + std::string(c == p ? "serving" : "replica") + " database of " + app +
             " in " + *region + " since replication started, which replication does not carry (" +
             seen.Text(0, 0) + " statement(s); first " + seen.Text(0, 1) + " at " +
             seen.Text(0, 3) + ": " + statement + ")";
    }
    return std::string();
  }

  // Tables of the publication that the subscription does not apply yet: a table that DDL
  // carried to the replica is added (REFRESH PUBLICATION with copy_data: its rows are copied,
  // then followed), and one being copied is waited for. Returns how many are not in step.
  static Result<int> SyncTables(pg::Conn* p, pg::Conn* r, const std::string& name) {
    ASSIGN_OR_RETURN(pg::Rows published,
                     p->Query("SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) "
                              "FROM pg_publication_tables WHERE pubname = $1",
                              {name}));
    ASSIGN_OR_RETURN(pg::Rows subscribed,
                     r->Query("SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), "
                              "sr.srsubstate FROM pg_subscription_rel sr "
                              "JOIN pg_subscription s ON s.oid = sr.srsubid "
                              "JOIN pg_class c ON c.oid = sr.srrelid "
                              "JOIN pg_namespace n ON n.oid = c.relnamespace "
                              "WHERE s.subname = $1",
                              {name}));
    std::map<std::string, std::string> state;
    for (int i = 0; i < subscribed.size(); ++i)
      state[subscribed.Text(i, 0)] = subscribed.Text(i, 1);
    int pending = 0, missing = 0, arrived = 0;
    for (int i = 0; i < published.size(); ++i) {
      auto it = state.find(published.Text(i, 0));
      if (it != state.end()) {
        pending += it->second != "r";
        continue;
      }
      ++missing;
      ASSIGN_OR_RETURN(pg::Rows here,
                       r->Query("SELECT to_regclass($1) IS NOT NULL", {published.Text(i, 0)}));
      arrived += here.Text(0, 0) == "t";
    }
    pending += missing;
    // REFRESH adds every published table the subscription lacks, and fails on one that the
    // replica does not have yet: it waits until the carried DDL of all of them has arrived.
    const bool refresh = missing > 0 && arrived == missing;
    if (refresh) {
      // One refresh at a time (two callers' catalog updates would collide); a second one right
      // after finds nothing new. Not in a transaction: REFRESH cannot run in one.
      const std::string key =
          "hashtextextended(" + QuoteLiteral("regionmove:refresh:" + name) + ", 0)";
      RETURN_IF_ERROR(r->Exec("SELECT pg_advisory_lock(" + key + ")").status());
      Status s = r->Exec("ALTER SUBSCRIPTION " + QuoteIdent(name) +
                         " REFRESH PUBLICATION WITH (copy_data = true)")
                     .status();
      Status u = r->Exec("SELECT pg_advisory_unlock(" + key + ")").status();
      RETURN_IF_ERROR(s);
      RETURN_IF_ERROR(u);
    }
    return pending;
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
  std::mutex mu_;
  std::map<std::string, std::chrono::steady_clock::time_point> last_tick_;
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
  ASSIGN_OR_RETURN(std::string admin, ConninfoFor(region.slug, ""));
  ASSIGN_OR_RETURN(std::string conninfo, ConninfoFor(region.slug, PgRuntimeStore::kDatabase));
  ASSIGN_OR_RETURN(auto rs,
                   PgRuntimeStore::Open(admin, conninfo, "region " + region.slug, env_.secrets));
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
