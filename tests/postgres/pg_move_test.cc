// End to end on PostgreSQL regions (the clusters of scripts/pg-regions): an app whose database
// has a schema as a real app's services would make it, moved through the saga, written to
// after the move (through the data API and straight through libpq), reversed through the
// replica, torn down; no slot, publication or subscription is left on either cluster.
#include <atomic>
#include <cstdlib>

#include "common/pg.h"
#include "dataplane/postgres/pg_runtime_store.h"
#include "e2e/e2e_util.h"

namespace regionmove::testing {
namespace {

using nlohmann::json;

std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

const std::string kDsnA =
    Env("REGIONMOVE_PG_DSN_A", "postgresql://postgres@127.0.0.1:54321/postgres");
const std::string kDsnB =
    Env("REGIONMOVE_PG_DSN_B", "postgresql://postgres@127.0.0.1:54322/postgres");

// What the app's own services created, beside the data API: several schemas, keys of many
// kinds, constraints, indexes, sequences and identities, views, functions and triggers, types.
constexpr const char* kAppSchema = R"sql(
CREATE TYPE public.mood AS ENUM ('happy', 'sad', 'calm');
CREATE DOMAIN public.posint AS integer CHECK (VALUE > 0);
CREATE TYPE public.addr AS (street text, zip text);
CREATE SCHEMA billing;
CREATE TABLE public.users (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email text NOT NULL UNIQUE,
  mood public.mood,
  profile jsonb,
  avatar bytea,
  tags text[],
  created timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00',
  home public.addr,
  score public.posint CHECK (score < 1000000));
COMMENT ON TABLE public.users IS 'people who use the app';
CREATE INDEX users_profile ON public.users USING gin (profile);
CREATE INDEX users_lower_email ON public.users (lower(email));
CREATE INDEX users_happy ON public.users (created) WHERE mood = 'happy';
CREATE TABLE billing.invoices (
  user_id bigint NOT NULL REFERENCES public.users (id),
  n integer NOT NULL,
  amount numeric(12, 2) NOT NULL,
  PRIMARY KEY (user_id, n));
CREATE SEQUENCE billing.invoice_no START 1000;
CREATE TABLE public.bookings (room integer, during tsrange,
  EXCLUDE USING gist (during WITH &&));
CREATE TABLE public.log (at bigint, line text);
CREATE VIEW public.happy_users AS SELECT id, email FROM public.users WHERE mood = 'happy';
CREATE MATERIALIZED VIEW billing.totals AS
  SELECT user_id, sum(amount) AS total FROM billing.invoices GROUP BY user_id;
CREATE FUNCTION billing.round_amount() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN NEW.amount := round(NEW.amount, 2); RETURN NEW; END $$;
CREATE TRIGGER invoices_round BEFORE INSERT OR UPDATE ON billing.invoices
  FOR EACH ROW EXECUTE FUNCTION billing.round_amount();
ALTER TABLE billing.invoices ENABLE ROW LEVEL SECURITY;
CREATE POLICY invoices_all ON billing.invoices USING (true);
INSERT INTO public.users (email, mood, profile, avatar, tags, home, score)
  SELECT 'u' || i || '@example.com', (ARRAY['happy', 'sad', 'calm'])[1 + i % 3]::public.mood,
         jsonb_build_object('i', i, 'name', md5(i::text)), decode(md5(i::text), 'hex'),
         ARRAY['t' || i % 7, 'x'], ROW('street ' || i, lpad((i % 99999)::text, 5, '0'))::public.addr,
         1 + i % 1000
  FROM generate_series(1, 50000) i;
INSERT INTO billing.invoices SELECT 1 + i % 50000, i, i * 0.137 FROM generate_series(1, 150000) i;
INSERT INTO public.bookings SELECT i, tsrange('2026-01-01'::timestamp + i * interval '1 hour',
  '2026-01-01'::timestamp + (i + 1) * interval '1 hour') FROM generate_series(1, 2000) i;
INSERT INTO public.log SELECT i, repeat(md5(i::text), 3) FROM generate_series(1, 50000) i;
SELECT nextval('billing.invoice_no') FROM generate_series(1, 7);
REFRESH MATERIALIZED VIEW billing.totals;
GRANT USAGE ON SCHEMA billing TO rm_test_writer;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON public.log, billing.invoices TO rm_test_writer;
)sql";

// A role of the app's services that does not own its tables (roles are the cluster's).
constexpr const char* kWriterRole =
    "DO $$ BEGIN CREATE ROLE rm_test_writer LOGIN; "
    "EXCEPTION WHEN duplicate_object THEN NULL; END $$";

class PgMove : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string regions;
    for (auto [slug, dsn] : {std::pair{"pg-a", kDsnA}, std::pair{"pg-b", kDsnB}}) {
      regions += std::string("[[regions]]\nslug = \"") + slug +
                 "\"\ndatabase = { engine = \"postgres\", dsn = \"" + dsn + "\" }\n" +
                 "blobs = { engine = \"fs\", dir = \"regions/" + slug + "/blobs\" }\n";
    }
    regions +=
        "[[regions]]\nslug = \"sq-east-1\"\ndatabase = { engine = \"sqlite\", dir = \"lite/db\" }\n"
        "blobs = { engine = \"fs\", dir = \"lite/blobs\" }\n";
    auto config = ParseConfig(std::string("[server]\ndata_dir = \"var\"\n[saga]\nworkers = 2\n"
                                          "max_attempts = 5\n") +
                                  SagaExtra() +
                                  "[[users]]\nname = \"alice\"\n"
                                  "token = \"alice-token\"\n" +
                                  regions,
                              dir_.path(), "test");
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    auto sys = System::Open(*config, SystemClock::Default(), &rng_);
    ASSERT_TRUE(sys.ok()) << sys.status().ToString();
    sys_ = std::move(sys).value();
  }

  virtual std::string SagaExtra() const { return ""; }

  void TearDown() override {
    if (!sys_ || app_.empty()) return;
    // Whatever the test left: replication both ways, then the databases.
    for (auto [p, r] : {std::pair{"pg-a", "pg-b"}, std::pair{"pg-b", "pg-a"}}) {
      (void)sys_->plane()->replicator()->Stop(app_, p, r);
    }
    for (const char* region : {"pg-a", "pg-b"}) {
      EXPECT_OK(sys_->plane()->Region(region)->db->Drop(app_));
    }
    // The runtime rows and tokens too: the clusters outlive the test, and the next test's app
    // has the same id (and its migrations' tokens start at 1 again).
    for (const std::string& dsn : {kDsnA, kDsnB}) {
      auto c = Connect(dsn, PgRuntimeStore::kDatabase);
      for (const char* t : {"functions", "env", "cron", "domains", "fence_tokens"}) {
        EXPECT_OK(
            c->Query(std::string("DELETE FROM ") + t + " WHERE app_id = $1", {app_}).status());
      }
    }
  }

  std::unique_ptr<pg::Conn> Connect(const std::string& dsn, const std::string& db) {
    auto info = pg::Conninfo(dsn, db);
    EXPECT_TRUE(info.ok());
    auto c = pg::Conn::Open(*info, "test");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  // A client of the app's own, with no regionmove settings: what the app's services are.
  std::unique_ptr<pg::Conn> AppClient(const std::string& port,
                                      const std::string& user = "postgres") {
    auto c = pg::Conn::Open("host=127.0.0.1 port=" + port + " user=" + user + " dbname=" + app_,
                            "app client");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  void ExpectEqualDatabases(const std::string& a, const std::string& b) {
    auto da = sys_->plane()->Region(a)->db->Digest(app_);
    auto db = sys_->plane()->Region(b)->db->Digest(app_);
    ASSERT_OK(da.status());
    ASSERT_OK(db.status());
    EXPECT_EQ(*da, *db);
    int64_t rows = 0;
    bool schema = false, sequence = false;
    for (const auto& d : *da) {
      rows += d.rows;
      schema |= d.table == "schema";
      sequence |= d.table == "sequence billing.invoice_no";
    }
    EXPECT_GE(rows, 250000);
    EXPECT_TRUE(schema);
    EXPECT_TRUE(sequence);
  }

  // Replication objects of this app on a cluster: slots, publications, subscriptions.
  int ReplicationObjects(const std::string& dsn) {
    auto admin = Connect(dsn, "postgres");
    std::string like = pg::QuoteLiteral("rm\\_" + app_ + "%");
    auto r = admin->Exec("SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE " +
                         like + ") + (SELECT count(*) FROM pg_subscription WHERE subname LIKE " +
                         like + ")");
    EXPECT_TRUE(r.ok());
    int n = r.ok() ? static_cast<int>(r->Int(0, 0)) : -1;
    auto db = pg::Conn::Open(*pg::Conninfo(dsn, app_), "test");
    if (db.ok()) {
      auto pubs = (*db)->Exec("SELECT count(*) FROM pg_publication WHERE pubname LIKE " + like);
      n += pubs.ok() ? static_cast<int>(pubs->Int(0, 0)) : 0;
    }
    return n;
  }

  TempDir dir_;
  Rng rng_ = Rng::FromEntropy();  // app ids unique across runs: the clusters outlive them
  std::unique_ptr<System> sys_;
  std::string app_;
};

TEST_F(PgMove, MoveWriteReverseTeardownAnySchema) {
  ASSERT_OK_AND_ASSIGN(App app, sys_->apps()->CreateApp("alice", "shop", "pg-a", ""));
  app_ = app.id;
  Database* a = sys_->plane()->Region("pg-a")->db.get();
  Database* b = sys_->plane()->Region("pg-b")->db.get();
  ASSERT_OK(a->CreateTable(app_, TableSpec{"notes", {{"body", "text"}, {"at", "timestamp"}}}));
  ASSERT_OK(a->InsertRows(app_, "notes", {{"id", "n1"}, {"body", "first"}}).status());
  for (const std::string& dsn : {kDsnA, kDsnB}) {
    ASSERT_OK(Connect(dsn, "postgres")->Exec(kWriterRole).status());
  }
  {
    auto c = AppClient("54321");
    ASSERT_NE(c, nullptr);
    ASSERT_OK(c->Exec(kAppSchema).status());
  }

  // The move.
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app_, "pg-b", "offline"));
  Migration done = Drive(*sys_, m.id, 120000);
  ASSERT_EQ(done.current_step, Step::kCompleted) << done.last_error;
  ExpectEqualDatabases("pg-a", "pg-b");
  ASSERT_OK_AND_ASSIGN(auto notes, b->GetRow(app_, "notes", "n1"));
  EXPECT_EQ(notes["body"], "first");

  // The source is fenced: the app's own client can read it but not write it.
  {
    auto c = AppClient("54321");
    ASSERT_NE(c, nullptr);
    ASSERT_OK_AND_ASSIGN(pg::Rows n, c->Exec("SELECT count(*) FROM billing.invoices"));
    EXPECT_EQ(n.Int(0, 0), 150000);
    EXPECT_EQ(c->Exec("INSERT INTO public.log VALUES (-1, 'to the old region')").status().reason(),
              "app_migrating");
    // Not even a session that turns read-only off, as a role that does not own the tables.
    auto w = AppClient("54321", "rm_test_writer");
    ASSERT_NE(w, nullptr);
    ASSERT_OK(w->Exec("SET default_transaction_read_only = off").status());
    for (const char* sql : {"INSERT INTO public.log VALUES (-2, 'x')",
                            "UPDATE billing.invoices SET amount = 0 WHERE n = 1",
                            "DELETE FROM public.log WHERE at = 1", "TRUNCATE public.log"}) {
      EXPECT_EQ(w->Exec(sql).status().reason(), "app_migrating") << sql;
    }
    ASSERT_OK_AND_ASSIGN(pg::Rows r, w->Exec("SELECT count(*) FROM public.log"));
    EXPECT_EQ(r.Int(0, 0), 50000);
    // Nor a session of the tables' owner that would take the fence down: DDL is refused too.
    ASSERT_OK(c->Exec("SET default_transaction_read_only = off").status());
    for (const char* sql : {"ALTER TABLE public.log DISABLE TRIGGER _regionmove_fence",
                            "DROP TRIGGER _regionmove_fence ON public.log",
                            "ALTER TABLE public.log ADD COLUMN sneaky int"}) {
      EXPECT_EQ(c->Exec(sql).status().reason(), "app_migrating") << sql;
    }
  }
  // The copy carried the grants: the role writes in the new region.
  {
    auto w = AppClient("54322", "rm_test_writer");
    ASSERT_NE(w, nullptr);
    ASSERT_OK(w->Exec("INSERT INTO public.log VALUES (50001, 'written by the app role')").status());
  }

  // Writes after the move, through the data API and through libpq, reach the source replica.
  ASSERT_OK(b->InsertRows(app_, "notes", {{"id", "n2"}, {"body", "after the move"}}).status());
  {
    auto c = AppClient("54322");
    ASSERT_NE(c, nullptr);
    ASSERT_OK(c->Exec("INSERT INTO billing.invoices VALUES (1, 999999, 12.345); "
                      "UPDATE public.users SET mood = 'calm' WHERE id = 2; "
                      "DELETE FROM public.log WHERE at <= 10; "
                      "UPDATE public.log SET line = 'changed' WHERE at = 11; "
                      "SELECT nextval('billing.invoice_no')")
                  .status());
  }
  // Pump waits a few seconds at most; the background loop would call it again.
  bool caught_up = false;
  for (int i = 0; i < 20 && !caught_up; ++i) {
    auto l = sys_->plane()->replicator()->Pump(app_, "pg-b", "pg-a");
    ASSERT_OK(l.status());
    caught_up = l->caught_up();
    EXPECT_GT(l->primary_position, 0);
  }
  EXPECT_TRUE(caught_up);
  ASSERT_OK_AND_ASSIGN(auto seen, a->GetRow(app_, "notes", "n2"));
  EXPECT_EQ(seen["body"], "after the move");
  {
    auto c = AppClient("54321");
    ASSERT_OK_AND_ASSIGN(pg::Rows r, c->Exec("SELECT amount FROM billing.invoices "
                                             "WHERE n = 999999"));
    ASSERT_EQ(r.size(), 1);
    EXPECT_EQ(r.Text(0, 0), "12.35");  // as the dest's trigger rounded it
    ASSERT_OK_AND_ASSIGN(pg::Rows log, c->Exec("SELECT count(*), max(line) FILTER (WHERE at = 11) "
                                               "FROM public.log"));
    EXPECT_EQ(log.Int(0, 0), 49991);
    EXPECT_EQ(log.Text(0, 1), "changed");
  }
  ASSERT_OK_AND_ASSIGN(auto replicas, sys_->migrations()->ListReplicas(""));
  ASSERT_EQ(replicas.size(), 1u);
  EXPECT_GE(replicas[0].lag_bytes, 0);
  EXPECT_EQ(replicas[0].apply_errors, 0);  // a healthy replica

  // Fast reverse through the replica: equal again, sequences included.
  ASSERT_OK_AND_ASSIGN(Migration r, sys_->migrations()->Reverse("alice", app_, m.id));
  EXPECT_EQ(r.reverse_path, "fast");
  Migration back = Drive(*sys_, r.id, 120000);
  ASSERT_EQ(back.current_step, Step::kCompleted) << back.last_error;
  ExpectEqualDatabases("pg-a", "pg-b");
  ASSERT_OK_AND_ASSIGN(App moved_back, sys_->store()->GetApp(app_));
  EXPECT_EQ(moved_back.region, "pg-a");
  ASSERT_OK(a->InsertRows(app_, "notes", {{"id", "n3"}, {"body", "home again"}}).status());

  // Teardown: the replica in pg-b and every replication object on both clusters go.
  EXPECT_GT(ReplicationObjects(kDsnA) + ReplicationObjects(kDsnB), 0);
  ASSERT_OK(sys_->migrations()->Teardown("alice", r.id));
  ASSERT_OK_AND_ASSIGN(bool replica_left, b->Exists(app_));
  EXPECT_FALSE(replica_left);
  EXPECT_EQ(ReplicationObjects(kDsnA), 0);
  EXPECT_EQ(ReplicationObjects(kDsnB), 0);

  // A later move takes the slow path back: a full copy, verified.
  ASSERT_OK_AND_ASSIGN(Migration again, sys_->migrations()->Move("alice", app_, "pg-b", ""));
  Migration again_done = Drive(*sys_, again.id, 120000);
  ASSERT_EQ(again_done.current_step, Step::kCompleted) << again_done.last_error;
  ASSERT_OK(sys_->migrations()->Teardown("alice", again.id));
  ASSERT_OK_AND_ASSIGN(Migration slow, sys_->migrations()->Reverse("alice", app_, again.id));
  EXPECT_EQ(slow.reverse_path, "slow");
  Migration slow_done = Drive(*sys_, slow.id, 120000);
  ASSERT_EQ(slow_done.current_step, Step::kCompleted) << slow_done.last_error;
  ASSERT_OK_AND_ASSIGN(auto home, a->GetRow(app_, "notes", "n3"));
  EXPECT_EQ(home["body"], "home again");
}

// Regions whose database engines differ cannot exchange an app database: refused before any
// work, in the plan and at the move.
TEST_F(PgMove, EngineMismatchIsRefused) {
  ASSERT_OK_AND_ASSIGN(App app, sys_->apps()->CreateApp("alice", "mixed", "pg-a", ""));
  app_ = app.id;
  ASSERT_OK_AND_ASSIGN(json plan, sys_->migrations()->PlanMove("alice", app_, "sq-east-1", ""));
  EXPECT_EQ(plan["eligible"], false);
  bool flagged = false;
  for (const auto& c : plan["checks"]) {
    if (c["name"] == "engines_compatible") flagged = c["ok"] == false;
  }
  EXPECT_TRUE(flagged) << plan.dump();
  auto moved = sys_->migrations()->Move("alice", app_, "sq-east-1", "");
  ASSERT_FALSE(moved.ok());
  EXPECT_EQ(moved.status().reason(), "ineligible");
  EXPECT_EQ(moved.status().detail(), "engine_mismatch");
  ASSERT_OK_AND_ASSIGN(auto active, sys_->store()->GetActiveMigration(app_));
  EXPECT_FALSE(active.has_value());
}

// A table created through the data API after a move travels to the source replica with its
// rows (the DDL rides the change stream; the subscription then copies and follows the table),
// is fenced there like the others, and the fast reverse brings everything back equal.
TEST_F(PgMove, DataApiTablesAfterTheMoveTravelToTheReplica) {
  ASSERT_OK_AND_ASSIGN(App app, sys_->apps()->CreateApp("alice", "ddl", "pg-a", ""));
  app_ = app.id;
  Database* a = sys_->plane()->Region("pg-a")->db.get();
  Database* b = sys_->plane()->Region("pg-b")->db.get();
  ASSERT_OK(a->CreateTable(app_, TableSpec{"t", {{"n", "integer"}}}));
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app_, "pg-b", ""));
  ASSERT_EQ(Drive(*sys_, m.id, 120000).current_step, Step::kCompleted);
  ASSERT_OK(b->CreateTable(app_, TableSpec{"later", {{"v", "text"}}}));
  ASSERT_OK(b->InsertRows(app_, "later", {{"id", "l1"}, {"v", "made after the move"}}).status());
  bool caught_up = false;
  for (int i = 0; i < 20 && !caught_up; ++i) {
    auto l = sys_->plane()->replicator()->Pump(app_, "pg-b", "pg-a");
    ASSERT_OK(l.status());
    caught_up = l->caught_up();
  }
  ASSERT_TRUE(caught_up);
  ASSERT_OK(b->InsertRows(app_, "later", {{"id", "l2"}, {"v", "followed"}}).status());
  ASSERT_OK(sys_->plane()->replicator()->Pump(app_, "pg-b", "pg-a").status());
  ASSERT_OK_AND_ASSIGN(json l1, a->GetRow(app_, "later", "l1"));
  EXPECT_EQ(l1["v"], "made after the move");
  ASSERT_OK_AND_ASSIGN(json l2, a->GetRow(app_, "later", "l2"));
  EXPECT_EQ(l2["v"], "followed");
  {
    auto c = AppClient("54321");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->Exec("INSERT INTO public.later VALUES ('x', 'to the replica')").status().reason(),
              "app_migrating");
  }
  ASSERT_OK_AND_ASSIGN(auto replicas, sys_->migrations()->ListReplicas("alice"));
  ASSERT_EQ(replicas.size(), 1u);
  EXPECT_EQ(replicas[0].migration.source_replica_state, kReplicaReplicating);
  EXPECT_EQ(replicas[0].apply_errors, 0);
  EXPECT_EQ(replicas[0].reason, "");

  ASSERT_OK_AND_ASSIGN(Migration r, sys_->migrations()->Reverse("alice", app_, m.id));
  EXPECT_EQ(r.reverse_path, "fast");
  Migration back = Drive(*sys_, r.id, 120000);
  ASSERT_EQ(back.current_step, Step::kCompleted) << back.last_error;
  ASSERT_OK_AND_ASSIGN(auto da, a->Digest(app_));
  ASSERT_OK_AND_ASSIGN(auto db, b->Digest(app_));
  EXPECT_EQ(da, db);
  ASSERT_OK(a->InsertRows(app_, "later", {{"id", "l3"}}).status());  // home, and writable
}

// DDL made outside regionmove on the serving database (here a column added by the app's own
// client) is not carried: the replica is marked diverged with the reason, its replication is
// stopped (no slot left to hold WAL), and a reverse takes the slow path. A reverse requested
// before the background has noticed finds it too.
TEST_F(PgMove, DdlOutsideRegionmoveMarksTheReplicaDiverged) {
  ASSERT_OK_AND_ASSIGN(App app, sys_->apps()->CreateApp("alice", "ddl", "pg-a", ""));
  app_ = app.id;
  Database* a = sys_->plane()->Region("pg-a")->db.get();
  Database* b = sys_->plane()->Region("pg-b")->db.get();
  ASSERT_OK(a->CreateTable(app_, TableSpec{"t", {{"n", "integer"}}}));
  ASSERT_OK(a->InsertRows(app_, "t", {{"id", "r1"}, {"n", 1}}).status());
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app_, "pg-b", ""));
  ASSERT_EQ(Drive(*sys_, m.id, 120000).current_step, Step::kCompleted);
  {
    auto c = AppClient("54322");
    ASSERT_NE(c, nullptr);
    ASSERT_OK(c->Exec("ALTER TABLE public.t ADD COLUMN extra integer DEFAULT 7").status());
    ASSERT_OK(c->Exec("INSERT INTO public.t (id, n) VALUES ('r2', 2)").status());
  }
  ASSERT_OK(sys_->migrations()->PumpReplicas());
  ASSERT_OK_AND_ASSIGN(auto replicas, sys_->migrations()->ListReplicas("alice"));
  ASSERT_EQ(replicas.size(), 1u);
  EXPECT_EQ(replicas[0].migration.source_replica_state, kReplicaDiverged);
  EXPECT_NE(replicas[0].reason.find("ALTER TABLE"), std::string::npos) << replicas[0].reason;
  EXPECT_EQ(ReplicationObjects(kDsnA), 0);
  EXPECT_EQ(ReplicationObjects(kDsnB), 0);
  ASSERT_OK_AND_ASSIGN(auto events, sys_->migrations()->Events("alice", app_, m.id));
  bool noted = false;
  for (const auto& e : events) noted |= e.type == "replica_diverged";
  EXPECT_TRUE(noted);

  ASSERT_OK_AND_ASSIGN(Migration r, sys_->migrations()->Reverse("alice", app_, m.id));
  EXPECT_EQ(r.reverse_path, "slow");
  Migration home = Drive(*sys_, r.id, 120000);
  ASSERT_EQ(home.current_step, Step::kCompleted) << home.last_error;
  {
    auto c = AppClient("54321");
    ASSERT_NE(c, nullptr);
    ASSERT_OK_AND_ASSIGN(pg::Rows rows, c->Exec("SELECT id, extra FROM public.t ORDER BY id"));
    ASSERT_EQ(rows.size(), 2);
    EXPECT_EQ(rows.Text(1, 0), "r2");
    EXPECT_EQ(rows.Text(1, 1), "7");
  }
  ASSERT_OK_AND_ASSIGN(Migration old, sys_->store()->GetMigration(m.id));
  EXPECT_EQ(old.source_replica_state, kReplicaTornDown);  // replaced by the slow reverse

  // The slow reverse left a replica in pg-b; DDL on pg-a, then a reverse at once: the request
  // itself finds the divergence.
  ASSERT_OK_AND_ASSIGN(Migration now, sys_->store()->GetMigration(r.id));
  ASSERT_EQ(now.source_replica_state, kReplicaReplicating);
  {
    auto c = AppClient("54321");
    ASSERT_NE(c, nullptr);
    ASSERT_OK(c->Exec("CREATE INDEX t_extra ON public.t (extra)").status());
  }
  ASSERT_OK_AND_ASSIGN(Migration again, sys_->migrations()->Reverse("alice", app_, r.id));
  EXPECT_EQ(again.reverse_path, "slow");
  Migration there = Drive(*sys_, again.id, 120000);
  ASSERT_EQ(there.current_step, Step::kCompleted) << there.last_error;
  ASSERT_OK_AND_ASSIGN(json r2, b->GetRow(app_, "t", "r2"));
  EXPECT_EQ(r2["n"], 2);
}

// An online move between PostgreSQL regions: the database is copied from a snapshot and
// followed through a slot while a writer keeps writing (its writes are acknowledged through the
// syncing step), writes pause only for the catch-up, and every acknowledged write is in the new
// region; the fast reverse works as after an offline move. An online move aborted while it
// syncs leaves no database, slot, publication or subscription behind.
TEST_F(PgMove, OnlineMoveKeepsTakingWrites) {
  ASSERT_OK_AND_ASSIGN(App app, sys_->apps()->CreateApp("alice", "online", "pg-a", ""));
  app_ = app.id;
  Database* a = sys_->plane()->Region("pg-a")->db.get();
  ASSERT_OK(a->CreateTable(app_, TableSpec{"w", {{"n", "integer"}}}));
  json rows = json::array();
  for (int i = 0; i < 5000; ++i) rows.push_back({{"n", i}});
  ASSERT_OK(a->InsertRows(app_, "w", rows).status());

  // Writes as the data API does them: to the region that serves the app, unless blocked.
  std::atomic<bool> stop{false};
  std::atomic<int> blocked{0};
  std::vector<std::string> acked;
  std::atomic<int> acked_before_block{-1};
  std::atomic<bool> moving{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      auto blocker = sys_->migrations()->WriteBlocker(app_);
      auto where = sys_->store()->GetApp(app_);
      if (!blocker.ok() || !where.ok()) continue;
      if (blocker->has_value()) {
        if (moving && acked_before_block < 0) acked_before_block = static_cast<int>(acked.size());
        ++blocked;
      } else {
        std::string id = "x" + std::to_string(i);
        Status s = sys_->plane()
                       ->Region(where->region)
                       ->db->InsertRows(app_, "w", {{"id", id}, {"n", -i}})
                       .status();
        if (s.ok()) acked.push_back(id);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  auto acked_now = [&] { return static_cast<int>(acked.size()); };
  while (acked_now() < 20) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  sys_->faults()->ArmDelay("syncing.after", 800, 1);  // writes land after the copy's point
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app_, "pg-b", "online"));
  const int acked_at_start = acked_now();
  moving = true;
  Migration done = Drive(*sys_, m.id, 120000);
  ASSERT_EQ(done.current_step, Step::kCompleted) << done.last_error;
  const int at_end = acked_now();
  while (acked_now() < at_end + 20) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop = true;
  writer.join();
  EXPECT_GT(acked_before_block - acked_at_start, 50);  // writes went on while it synced
  EXPECT_GT(blocked.load(), 0);
  ASSERT_OK_AND_ASSIGN(App moved, sys_->store()->GetApp(app_));
  EXPECT_EQ(moved.region, "pg-b");
  // Checked whole at the copy's snapshot, then, under the pause, the rows the stream changed.
  json res = json::parse(done.resources);
  EXPECT_GE(res["verified_at_copy"]["rows"].get<int64_t>(), 5000) << res;
  EXPECT_EQ(res["verified"]["scope"], "changed_rows") << res;
  EXPECT_GT(res["verified"]["changed_keys"].get<int64_t>(), 50) << res;
  EXPECT_LT(res["verified"]["rows"].get<int64_t>(), res["verified_at_copy"]["rows"].get<int64_t>());
  // The destination's change tracking went with its replication.
  {
    auto db = pg::Conn::Open(*pg::Conninfo(kDsnB, app_), "test");
    ASSERT_OK(db.status());
    auto left = (*db)->Exec(
        "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname LIKE "
        "'\\_regionmove\\_touched%') + (SELECT count(*) FROM pg_class "
        "WHERE relname = 'touched')");
    ASSERT_OK(left.status());
    EXPECT_EQ(left->Int(0, 0), 0);
  }
  Database* b = sys_->plane()->Region("pg-b")->db.get();
  ASSERT_OK_AND_ASSIGN(auto tables, b->ListTables(app_));
  ASSERT_EQ(tables.size(), 1u);
  EXPECT_EQ(tables[0].row_count, 5000 + static_cast<int64_t>(acked.size()));
  for (size_t i = 0; i < acked.size(); i += 97) ASSERT_OK(b->GetRow(app_, "w", acked[i]).status());
  ASSERT_OK(b->GetRow(app_, "w", acked.back()).status());

  ASSERT_OK_AND_ASSIGN(Migration r, sys_->migrations()->Reverse("alice", app_, m.id));
  EXPECT_EQ(r.reverse_path, "fast");
  Migration back = Drive(*sys_, r.id, 120000);
  ASSERT_EQ(back.current_step, Step::kCompleted) << back.last_error;
  ASSERT_OK_AND_ASSIGN(auto home, a->ListTables(app_));
  EXPECT_EQ(home[0].row_count, 5000 + static_cast<int64_t>(acked.size()));
  ASSERT_OK(sys_->migrations()->Teardown("alice", r.id));

  // Aborted while syncing: the app stays in pg-a, writable; pg-b holds nothing of it.
  sys_->faults()->ArmDelay("syncing.after_copy", 1500, 1);
  ASSERT_OK_AND_ASSIGN(Migration m2, sys_->migrations()->Move("alice", app_, "pg-b", "online"));
  std::thread aborter([&] {
    for (int i = 0; i < 2000; ++i) {
      auto cur = sys_->store()->GetMigration(m2.id);
      if (cur.ok() && cur->current_step == Step::kSyncing &&
          cur->resources.find("\"synced\":true") != std::string::npos) {
        EXPECT_OK(sys_->migrations()->Abort("alice", app_, m2.id).status());
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ADD_FAILURE() << "the sync never finished its copy";
  });
  Migration aborted = Drive(*sys_, m2.id, 120000);
  aborter.join();
  EXPECT_EQ(aborted.current_step, Step::kAborted) << aborted.last_error;
  EXPECT_EQ(aborted.stopped_at, Step::kSyncing);
  ASSERT_OK_AND_ASSIGN(bool left, b->Exists(app_));
  EXPECT_FALSE(left);
  EXPECT_EQ(ReplicationObjects(kDsnA), 0);
  EXPECT_EQ(ReplicationObjects(kDsnB), 0);
  ASSERT_OK(a->InsertRows(app_, "w", {{"id", "after-abort"}}).status());
}

// A destination cluster without a role that the app's grants name would fail the copy halfway:
// the plan says so, and the move is refused before any work.
TEST_F(PgMove, MissingRolesAreRefusedBeforeAnyWork) {
  ASSERT_OK_AND_ASSIGN(App app, sys_->apps()->CreateApp("alice", "roles", "pg-a", ""));
  app_ = app.id;
  auto admin_a = Connect(kDsnA, "postgres");
  auto admin_b = Connect(kDsnB, "postgres");
  ASSERT_OK(admin_b->Exec("DROP ROLE IF EXISTS rm_test_reader").status());
  ASSERT_OK(admin_a
                ->Exec("DO $$ BEGIN CREATE ROLE rm_test_reader; "
                       "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
                .status());
  {
    auto c = AppClient("54321");
    ASSERT_NE(c, nullptr);
    ASSERT_OK(c->Exec("CREATE TABLE public.reports (n int); "
                      "GRANT SELECT ON public.reports TO rm_test_reader")
                  .status());
  }
  ASSERT_OK_AND_ASSIGN(json plan, sys_->migrations()->PlanMove("alice", app_, "pg-b", ""));
  EXPECT_EQ(plan["eligible"], false);
  std::string message;
  for (const auto& c : plan["checks"]) {
    if (c["name"] == "dest_has_prerequisites" && c["ok"] == false) message = c["message"];
  }
  EXPECT_NE(message.find("role rm_test_reader"), std::string::npos) << plan.dump();
  auto moved = sys_->migrations()->Move("alice", app_, "pg-b", "");
  ASSERT_FALSE(moved.ok());
  EXPECT_EQ(moved.status().detail(), "missing_prerequisites");
  // Once the role exists there, the move is possible and the grant travels with the copy.
  ASSERT_OK(admin_b->Exec("CREATE ROLE rm_test_reader").status());
  ASSERT_OK_AND_ASSIGN(json again, sys_->migrations()->PlanMove("alice", app_, "pg-b", ""));
  EXPECT_EQ(again["eligible"], true) << again.dump();
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app_, "pg-b", ""));
  Migration done = Drive(*sys_, m.id, 120000);
  ASSERT_EQ(done.current_step, Step::kCompleted) << done.last_error;
  {
    auto c = AppClient("54322");
    ASSERT_OK_AND_ASSIGN(pg::Rows r, c->Exec("SELECT has_table_privilege('rm_test_reader', "
                                             "'public.reports', 'SELECT')"));
    EXPECT_EQ(r.Text(0, 0), "t");
  }
  TearDown();
  app_.clear();
  for (auto* admin : {admin_a.get(), admin_b.get()}) {
    ASSERT_OK(admin->Exec("DROP ROLE IF EXISTS rm_test_reader").status());
  }
}

// Abort at every step before the cutover: the source is as it was and writable by the app's
// own clients again, the destination holds no database, no replication object is left.
class PgAbort : public PgMove, public ::testing::WithParamInterface<Step> {};

TEST_P(PgAbort, LeavesSourceUntouchedAndDestEmpty) {
  ASSERT_OK_AND_ASSIGN(App app, sys_->apps()->CreateApp("alice", "abort", "pg-a", ""));
  app_ = app.id;
  Database* a = sys_->plane()->Region("pg-a")->db.get();
  ASSERT_OK(a->CreateTable(app_, TableSpec{"notes", {{"body", "text"}}}));
  ASSERT_OK(a->InsertRows(app_, "notes", {{"id", "n1"}, {"body", "kept"}}).status());
  {
    auto c = AppClient("54321");
    ASSERT_NE(c, nullptr);
    ASSERT_OK(c->Exec("CREATE TABLE public.log (at bigint PRIMARY KEY, line text); "
                      "INSERT INTO public.log SELECT i, md5(i::text) "
                      "FROM generate_series(1, 20000) i")
                  .status());
  }
  ASSERT_OK_AND_ASSIGN(auto before, a->Digest(app_));
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app_, "pg-b", ""));
  RunUntil(*sys_, m.id, GetParam());
  ASSERT_OK(sys_->migrations()->Abort("alice", app_, m.id).status());
  Migration done = Drive(*sys_, m.id, 120000);
  ASSERT_EQ(done.current_step, Step::kAborted) << done.last_error;
  EXPECT_EQ(done.stopped_at, GetParam());
  ASSERT_OK_AND_ASSIGN(auto after, a->Digest(app_));
  EXPECT_TRUE(after == before);
  ASSERT_OK_AND_ASSIGN(bool dest_db, sys_->plane()->Region("pg-b")->db->Exists(app_));
  EXPECT_FALSE(dest_db);
  EXPECT_EQ(ReplicationObjects(kDsnA) + ReplicationObjects(kDsnB), 0);
  ASSERT_OK(a->InsertRows(app_, "notes", {{"id", "n2"}}).status());
  auto c = AppClient("54321");
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->Exec("INSERT INTO public.log VALUES (-1, 'writable again')").status());
}

INSTANTIATE_TEST_SUITE_P(EveryStepBeforeTheCutover, PgAbort,
                         ::testing::Values(Step::kRequested, Step::kReservingDest,
                                           Step::kBlockingWrites, Step::kDumpingData,
                                           Step::kRestoringData, Step::kCopyingBlobs,
                                           Step::kCopyingRuntime, Step::kFlippingRouting),
                         [](const auto& info) { return std::string(StepName(info.param)); });

// A write storm (injected at the lag gate) holds an online move in syncing on PostgreSQL regions
// without using its attempts; it says why, and completes once the storm passes.
TEST_F(PgMove, OnlineMoveWaitsOutAWriteStormWithoutFailing) {
  ASSERT_OK_AND_ASSIGN(App app, sys_->apps()->CreateApp("alice", "storm", "pg-a", ""));
  app_ = app.id;
  Database* a = sys_->plane()->Region("pg-a")->db.get();
  ASSERT_OK(a->CreateTable(app_, TableSpec{"w", {{"n", "integer"}}}));
  ASSERT_OK(a->InsertRows(app_, "w", {{"n", 1}}).status());
  sys_->faults()->Arm("syncing.lag_gate", Unavailable("writes outpace the apply"), 12 * 7);
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app_, "pg-b", "online"));
  Migration done = Drive(*sys_, m.id, 120000);
  ASSERT_EQ(done.current_step, Step::kCompleted) << done.last_error;
  EXPECT_EQ(done.retry_count, 0);
  ASSERT_OK_AND_ASSIGN(auto events, sys_->store()->ListEvents(m.id));
  int waiting = 0;
  for (const auto& e : events) {
    if (e.type != "waiting") continue;
    ++waiting;
    EXPECT_NE(e.message.find("waiting to pause writes"), std::string::npos) << e.message;
  }
  EXPECT_EQ(waiting, 1);
}

// An online move whose pause outlasts its budget on PostgreSQL regions: the app goes back to
// pg-a (its subscription in pg-b and the copy are dropped), syncs again from a new snapshot, and
// the second pause completes the move. The flip happens once, after the return to syncing.
// Two replications set up at once in opposite directions (app 1 from pg-a to pg-b, app 2 from
// pg-b to pg-a: two moves crossing, or a move and another app's reverse replication) must not
// wait on each other across the clusters: a slot's creation waits for the transactions running
// on its cluster, and a subscription created with its slot keeps one open on the other.
TEST_F(PgMove, ReplicationsSetUpInOppositeDirectionsAtOnceDoNotDeadlock) {
  ASSERT_OK_AND_ASSIGN(App one, sys_->apps()->CreateApp("alice", "east-west", "pg-a", ""));
  ASSERT_OK_AND_ASSIGN(App two, sys_->apps()->CreateApp("alice", "west-east", "pg-b", ""));
  app_ = one.id;
  Database* a = sys_->plane()->Region("pg-a")->db.get();
  Database* b = sys_->plane()->Region("pg-b")->db.get();
  ASSERT_OK(b->Create(one.id));
  ASSERT_OK(a->Create(two.id));
  Replicator* rep = sys_->plane()->replicator();
  bool stuck = false;
  for (int round = 0; round < 6 && !stuck; ++round) {
    std::atomic<int> ready{0};
    std::atomic<int> done{0};
    Status s1, s2;
    auto start = [&](const std::string& app, const char* p, const char* r, Status* out) {
      ready.fetch_add(1);
      while (ready.load() < 2) std::this_thread::yield();
      *out = rep->Start(app, p, r);
      done.fetch_add(1);
    };
    std::thread t1(start, one.id, "pg-a", "pg-b", &s1);
    std::thread t2(start, two.id, "pg-b", "pg-a", &s2);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (done.load() < 2 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (done.load() < 2) {
      // Stuck: cancel the set-ups on both clusters so the threads (and the clusters) come back.
      stuck = true;
      for (const std::string& dsn : {kDsnA, kDsnB}) {
        auto admin = Connect(dsn, "postgres");
        (void)admin->Exec(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND (query LIKE 'CREATE SUBSCRIPTION%' OR query LIKE 'CREATE_REPLICATION_SLOT%' OR "
            "query LIKE '%pg_create_logical_replication_slot%')");
      }
    }
    t1.join();
    t2.join();
    EXPECT_FALSE(stuck) << "the two set-ups waited on each other (round " << round << ")";
    if (!stuck) {
      EXPECT_OK(s1);
      EXPECT_OK(s2);
    }
    EXPECT_OK(rep->Stop(one.id, "pg-a", "pg-b"));
    EXPECT_OK(rep->Stop(two.id, "pg-b", "pg-a"));
  }
  for (Database* db : {a, b}) EXPECT_OK(db->Drop(two.id));
}

class PgMoveTightBudget : public PgMove {
 protected:
  std::string SagaExtra() const override { return "block_budget_seconds = 1\n"; }
};

TEST_F(PgMoveTightBudget, PauseOverItsBudgetSyncsAgainAndNeverFlipsLate) {
  ASSERT_OK_AND_ASSIGN(App app, sys_->apps()->CreateApp("alice", "budget", "pg-a", ""));
  app_ = app.id;
  Database* a = sys_->plane()->Region("pg-a")->db.get();
  ASSERT_OK(a->CreateTable(app_, TableSpec{"w", {{"n", "integer"}}}));
  json rows = json::array();
  for (int i = 0; i < 1000; ++i) rows.push_back({{"n", i}});
  ASSERT_OK(a->InsertRows(app_, "w", rows).status());
  sys_->faults()->ArmDelay("copying_runtime.before", 1500, 1);
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app_, "pg-b", "online"));
  // A write between the two pauses lands in pg-a and travels with the second sync.
  std::atomic<bool> wrote{false};
  // It watches until the move ends (bounded by Drive's own deadline), not a fixed number of
  // polls: how soon the second sync comes depends on the machine.
  std::thread writer([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
      auto cur = sys_->store()->GetMigration(m.id);
      if (cur.ok() && IsTerminal(cur->current_step)) return;
      if (cur.ok() && cur->current_step == Step::kSyncing && !cur->last_error.empty()) {
        EXPECT_OK(a->InsertRows(app_, "w", {{"id", "between"}, {"n", -1}}).status());
        wrote = true;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  Migration done = Drive(*sys_, m.id, 120000);
  writer.join();
  ASSERT_EQ(done.current_step, Step::kCompleted) << done.last_error;
  ASSERT_OK_AND_ASSIGN(auto events, sys_->store()->ListEvents(m.id));
  int over = 0, flips = 0;
  for (const auto& e : events) {
    if (e.type == "block_budget_exceeded") {
      ++over;
      EXPECT_EQ(flips, 0);
      EXPECT_EQ(e.to_step, Step::kSyncing);
    }
    if (e.type == "transition" && e.from_step == Step::kFlippingRouting) ++flips;
  }
  EXPECT_EQ(over, 1);
  EXPECT_EQ(flips, 1);
  Database* b = sys_->plane()->Region("pg-b")->db.get();
  ASSERT_OK_AND_ASSIGN(auto tables, b->ListTables(app_));
  ASSERT_EQ(tables.size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto home, a->ListTables(app_));
  EXPECT_EQ(tables[0].row_count, home[0].row_count);
  EXPECT_GE(tables[0].row_count, 1000);
  EXPECT_EQ(done.source_replica_state, kReplicaReplicating);
  EXPECT_TRUE(wrote.load());
  EXPECT_OK(b->GetRow(app_, "w", "between").status());
}

}  // namespace
}  // namespace regionmove::testing
