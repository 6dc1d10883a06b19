// In-process end to end: real steps on the embedded data plane (SPEC §2, §4, §5).
#include "e2e/e2e_util.h"

namespace regionmove::testing {
namespace {

using nlohmann::json;

class MoveE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    sys_ = OpenSystem(dir_, SystemClock::Default(), &rng_);
    ASSERT_NE(sys_, nullptr);
  }

  // An app with two tables of every column type, small and large blobs, and a runtime.
  std::string MakeApp(const std::string& region, int rows = 2000, int big_blobs = 3) {
    auto app = sys_->apps()->CreateApp("alice", "shop", region, "");
    EXPECT_TRUE(app.ok()) << app.status().ToString();
    std::string id = app->id;
    RegionPlane* r = sys_->plane()->Region(region);
    EXPECT_OK(r->db->CreateTable(id, TableSpec{"customers",
                                               {{"name", "text"},
                                                {"age", "integer"},
                                                {"balance", "real"},
                                                {"vip", "boolean"},
                                                {"tags", "json"},
                                                {"joined", "timestamp"},
                                                {"avatar", "bytes"}}}));
    EXPECT_OK(
        r->db->CreateTable(id, TableSpec{"orders", {{"customer", "text"}, {"total", "real"}}}));
    json customers = json::array(), orders = json::array();
    for (int i = 0; i < rows; ++i) {
      customers.push_back(
          {{"id", "c" + std::to_string(i)},
           {"name", "customer " + std::to_string(i)},
           {"age", 18 + i % 60},
           {"balance", i * 1.5},
           {"vip", i % 7 == 0},
           {"tags", json::array({"t" + std::to_string(i % 5)})},
           {"joined", "2026-01-01T00:00:00Z"},
           {"avatar", Base64Encode(std::string(static_cast<size_t>(i % 64), 'a'))}});
      if (i % 4 != 3) orders.push_back({{"customer", "c" + std::to_string(i)}, {"total", i * 2.0}});
    }
    EXPECT_OK(r->db->InsertRows(id, "customers", customers).status());
    EXPECT_OK(r->db->InsertRows(id, "orders", orders).status());
    for (int i = 0; i < 40; ++i) {
      std::string data(static_cast<size_t>(1000 + i * 500), static_cast<char>('a' + i % 26));
      EXPECT_OK(r->blobs->Put(id, "img/" + std::to_string(i) + ".png", data, "image/png").status());
    }
    for (int i = 0; i < big_blobs; ++i) {
      std::string big(1536 * 1024 + static_cast<size_t>(i), '\0');
      for (size_t j = 0; j < big.size(); j += 64) big[j] = static_cast<char>(rng_.Next());
      EXPECT_OK(
          r->blobs->Put(id, "video/" + std::to_string(i) + ".mp4", big, "video/mp4").status());
    }
    EXPECT_OK(
        r->runtime->PutFunction(id, {"checkout", 2, "index.handler", "node20", "exports.x=1"}));
    EXPECT_OK(r->runtime->PutFunction(id, {"resize", 1, "main", "python3.12", "def main(): 1"}));
    EXPECT_OK(r->runtime->PutEnv(id, {"API_URL", "https://api.example.com", false}));
    EXPECT_OK(r->runtime->PutEnv(id, {"STRIPE_KEY", "sk_live_abc", true}));
    EXPECT_OK(r->runtime->PutCron(id, {"nightly", "0 3 * * *", "checkout"}));
    EXPECT_OK(sys_->apps()->PutDomain("alice", id, "shop-" + id.substr(4) + ".example.com"));
    return id;
  }

  App GetApp(const std::string& id) { return *sys_->store()->GetApp(id); }

  bool DestHoldsNothing(const std::string& region, const std::string& app) {
    RegionPlane* r = sys_->plane()->Region(region);
    auto exists = r->db->Exists(app);
    auto blobs = r->blobs->List(app, "", "", 10);
    auto live = r->runtime->Snapshot(app, false);
    auto archived = r->runtime->Snapshot(app, true);
    auto reservations = sys_->store()->ListReservations(region);
    return exists.ok() && !*exists && blobs.ok() && blobs->empty() && live.ok() &&
           live->functions.empty() && live->env.empty() && archived.ok() &&
           archived->functions.empty() && reservations.ok() && reservations->empty();
  }

  TempDir dir_;
  Rng rng_{99};
  std::unique_ptr<System> sys_;
};

TEST_F(MoveE2E, MoveWriteFastReverseTeardownSlowReverse) {
  std::string app = MakeApp("us-east-1");
  AppState before = Capture(*sys_, "us-east-1", app);
  ASSERT_EQ(before.tables.size(), 4u);  // customers, orders, the column catalog, the schema
  ASSERT_EQ(before.blobs.size(), 43u);

  // ---- move us-east-1 -> eu-west-1
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app, "eu-west-1", ""));
  Migration done = Drive(*sys_, m.id);
  ASSERT_EQ(done.current_step, Step::kCompleted) << done.last_error;
  EXPECT_EQ(done.source_replica_state, kReplicaReplicating);
  EXPECT_EQ(GetApp(app).region, "eu-west-1");
  EXPECT_EQ(GetApp(app).status, kAppReady);
  EXPECT_TRUE(Capture(*sys_, "eu-west-1", app) == before);
  json res = json::parse(done.resources);
  // The app's tables only: not the data API's column catalog.
  EXPECT_EQ(res["verified"]["rows"], 2000 + 1500);
  EXPECT_EQ(res["verified"]["tables"], 2);
  EXPECT_EQ(res["blobs_copied"], 43);
  // Routing follows, custom domain included.
  ASSERT_OK_AND_ASSIGN(auto routes, sys_->store()->ListRoutes(app));
  ASSERT_EQ(routes.size(), 2u);
  for (const auto& r : routes) EXPECT_EQ(r.region, "eu-west-1");
  // The source keeps its rows archived, and its database refuses writes.
  RegionPlane* us = sys_->plane()->Region("us-east-1");
  RegionPlane* eu = sys_->plane()->Region("eu-west-1");
  ASSERT_OK_AND_ASSIGN(auto archived, us->runtime->Snapshot(app, true));
  EXPECT_TRUE(archived == before.runtime);
  EXPECT_EQ(us->db->InsertRows(app, "orders", {{"total", 1.0}}).status().reason(), "app_migrating");

  // ---- writes after the move reach the retained replica
  ASSERT_OK(eu->db->InsertRows(app, "orders", {{"id", "after-move"}, {"total", 42.0}}).status());
  ASSERT_OK(eu->db->UpdateRow(app, "customers", "c1", {{"name", "renamed"}}).status());
  ASSERT_OK(eu->db->DeleteRow(app, "customers", "c2"));
  ASSERT_OK(eu->db->CreateTable(app, TableSpec{"reviews", {{"stars", "integer"}}}));
  ASSERT_OK(eu->db->InsertRows(app, "reviews", {{"stars", 5}}).status());
  ASSERT_OK(eu->blobs->Put(app, "img/new.png", "fresh", "image/png").status());
  ASSERT_OK(eu->blobs->Delete(app, "img/3.png"));
  ASSERT_OK(eu->blobs->Put(app, "img/4.png", "changed", "image/png").status());
  ASSERT_OK(eu->runtime->PutEnv(app, {"FEATURE", "on", false}));
  ASSERT_OK(sys_->migrations()->PumpReplicas());
  ASSERT_OK_AND_ASSIGN(auto replicas, sys_->migrations()->ListReplicas("alice"));
  ASSERT_EQ(replicas.size(), 1u);
  EXPECT_EQ(replicas[0].lag_bytes, 0);
  EXPECT_GT(replicas[0].size_bytes, 0);
  EXPECT_GT(replicas[0].estimated_monthly_cost_usd, 0);
  ASSERT_OK_AND_ASSIGN(auto us_tables, us->db->Digest(app));
  ASSERT_OK_AND_ASSIGN(auto eu_tables, eu->db->Digest(app));
  EXPECT_EQ(us_tables, eu_tables);
  AppState on_eu = Capture(*sys_, "eu-west-1", app);

  // ---- fast reverse
  ASSERT_OK_AND_ASSIGN(Migration rev, sys_->migrations()->Reverse("alice", app, m.id));
  EXPECT_EQ(rev.reverse_path, "fast");
  EXPECT_EQ(rev.kind, "reverse");
  Migration rev_done = Drive(*sys_, rev.id);
  ASSERT_EQ(rev_done.current_step, Step::kCompleted) << rev_done.last_error;
  EXPECT_EQ(GetApp(app).region, "us-east-1");
  EXPECT_TRUE(Capture(*sys_, "us-east-1", app) == on_eu);
  EXPECT_EQ(sys_->store()->GetMigration(m.id)->source_replica_state, kReplicaPromoted);
  EXPECT_EQ(rev_done.source_replica_state, kReplicaReplicating);
  // Capacity: nothing is held in us-east-1 (the app lives there), the new replica is held in
  // eu-west-1.
  ASSERT_OK_AND_ASSIGN(auto held_us, sys_->store()->ListReservations("us-east-1"));
  EXPECT_TRUE(held_us.empty());
  ASSERT_OK_AND_ASSIGN(auto held_eu, sys_->store()->ListReservations("eu-west-1"));
  ASSERT_EQ(held_eu.size(), 1u);
  EXPECT_EQ(held_eu[0].migration_id, rev.id);
  ASSERT_OK_AND_ASSIGN(auto row, us->db->GetRow(app, "orders", "after-move"));
  EXPECT_EQ(row["total"], 42.0);
  ASSERT_OK(us->db->InsertRows(app, "orders", {{"total", 7.0}}).status());  // writable again

  // ---- teardown of the new replica (in eu-west-1)
  EXPECT_EQ(sys_->migrations()->Teardown("bob", rev.id).code(), StatusCode::kNotFound);
  ASSERT_OK(sys_->migrations()->Teardown("alice", rev.id));
  EXPECT_EQ(sys_->migrations()->Teardown("alice", rev.id).reason(), "not_replicating");
  EXPECT_EQ(sys_->store()->GetMigration(rev.id)->source_replica_state, kReplicaTornDown);
  EXPECT_TRUE(DestHoldsNothing("eu-west-1", app));
  ASSERT_OK_AND_ASSIGN(auto none, sys_->migrations()->ListReplicas("alice"));
  EXPECT_TRUE(none.empty());

  // ---- a reverse now takes the slow path (a full move back)
  AppState on_us = Capture(*sys_, "us-east-1", app);
  ASSERT_OK_AND_ASSIGN(Migration slow, sys_->migrations()->Reverse("alice", app, rev.id));
  EXPECT_EQ(slow.reverse_path, "slow");
  Migration slow_done = Drive(*sys_, slow.id);
  ASSERT_EQ(slow_done.current_step, Step::kCompleted) << slow_done.last_error;
  EXPECT_EQ(GetApp(app).region, "eu-west-1");
  EXPECT_TRUE(Capture(*sys_, "eu-west-1", app) == on_us);
}

TEST_F(MoveE2E, ReverseRules) {
  std::string app = MakeApp("us-east-1", 10, 0);
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app, "eu-west-1", ""));
  EXPECT_EQ(sys_->migrations()->Reverse("alice", app, m.id).status().reason(), "not_reversible");
  ASSERT_EQ(Drive(*sys_, m.id).current_step, Step::kCompleted);
  ASSERT_OK_AND_ASSIGN(Migration m2, sys_->migrations()->Move("alice", app, "ap-southeast-1", ""));
  ASSERT_EQ(Drive(*sys_, m2.id).current_step, Step::kCompleted);
  // Only the latest completed migration can be reversed; the older replica was torn down.
  EXPECT_EQ(sys_->migrations()->Reverse("alice", app, m.id).status().reason(), "not_reversible");
  EXPECT_EQ(sys_->store()->GetMigration(m.id)->source_replica_state, kReplicaTornDown);
  EXPECT_TRUE(DestHoldsNothing("us-east-1", app));
  ASSERT_OK_AND_ASSIGN(auto events, sys_->store()->ListEvents(m.id));
  EXPECT_EQ(events.back().type, "replica_torn_down");
  // A move back into a region that holds a replica replaces it.
  ASSERT_OK_AND_ASSIGN(Migration m3, sys_->migrations()->Move("alice", app, "eu-west-1", ""));
  Migration done3 = Drive(*sys_, m3.id);
  ASSERT_EQ(done3.current_step, Step::kCompleted) << done3.last_error;
  EXPECT_EQ(sys_->store()->GetMigration(m2.id)->source_replica_state, kReplicaTornDown);
  EXPECT_EQ(sys_->migrations()->Move("alice", app, "eu-west-1", "").status().detail(),
            "same_region");
  EXPECT_EQ(sys_->migrations()->Move("alice", app, "mars-1", "").status().reason(),
            "invalid_region");
  EXPECT_EQ(sys_->migrations()->Move("alice", app, "us-east-1", "sideways").status().reason(),
            "invalid_strategy");
  EXPECT_EQ(sys_->migrations()->Move("bob", app, "us-east-1", "").status().code(),
            StatusCode::kNotFound);
}

struct AbortCase {
  std::string strategy;
  Step step;
};
class AbortE2E : public MoveE2E, public ::testing::WithParamInterface<AbortCase> {};

TEST_P(AbortE2E, AbortLeavesSourceUntouchedAndDestEmpty) {
  const Step at = GetParam().step;
  std::string app = MakeApp("us-east-1", 300, 1);
  AppState before = Capture(*sys_, "us-east-1", app);
  ASSERT_OK_AND_ASSIGN(Migration m,
                       sys_->migrations()->Move("alice", app, "eu-west-1", GetParam().strategy));
  RunUntil(*sys_, m.id, at);
  ASSERT_OK(sys_->migrations()->Abort("alice", app, m.id).status());
  Migration done = Drive(*sys_, m.id);
  ASSERT_EQ(done.current_step, Step::kAborted) << done.last_error;
  EXPECT_EQ(done.stopped_at, at);
  App a = GetApp(app);
  EXPECT_EQ(a.region, "us-east-1");
  EXPECT_EQ(a.status, kAppReady);
  EXPECT_TRUE(Capture(*sys_, "us-east-1", app) == before);
  EXPECT_TRUE(DestHoldsNothing("eu-west-1", app));
  RegionPlane* us = sys_->plane()->Region("us-east-1");
  ASSERT_OK(us->db->InsertRows(app, "orders", {{"total", 1.0}}).status());  // writable again
  ASSERT_OK_AND_ASSIGN(auto archived, us->runtime->Snapshot(app, true));
  EXPECT_TRUE(archived.functions.empty());
  // And it can move afterwards.
  ASSERT_OK_AND_ASSIGN(Migration again, sys_->migrations()->Move("alice", app, "eu-west-1", ""));
  EXPECT_EQ(Drive(*sys_, again.id).current_step, Step::kCompleted);
}

// Every step before the cutover of both plans.
std::vector<AbortCase> StepsBeforeTheCutover() {
  std::vector<AbortCase> out;
  for (const char* strategy : {"offline", "online"}) {
    for (Step s : Plan::For(strategy).steps()) {
      if (Plan::For(strategy).Index(s) > Plan::For(strategy).Index(Step::kFlippingRouting)) break;
      out.push_back(AbortCase{strategy, s});
    }
  }
  return out;
}
INSTANTIATE_TEST_SUITE_P(EveryStepBeforeTheCutover, AbortE2E,
                         ::testing::ValuesIn(StepsBeforeTheCutover()), [](const auto& info) {
                           return info.param.strategy + "_" +
                                  std::string(StepName(info.param.step));
                         });

TEST_F(MoveE2E, AbortOfAFastReverseKeepsTheReplica) {
  std::string app = MakeApp("us-east-1", 50, 0);
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app, "eu-west-1", ""));
  ASSERT_EQ(Drive(*sys_, m.id).current_step, Step::kCompleted);
  ASSERT_OK_AND_ASSIGN(Migration rev, sys_->migrations()->Reverse("alice", app, m.id));
  RunUntil(*sys_, rev.id, Step::kFlippingRouting);
  ASSERT_OK(sys_->migrations()->Abort("alice", app, rev.id).status());
  ASSERT_EQ(Drive(*sys_, rev.id).current_step, Step::kAborted);
  EXPECT_EQ(GetApp(app).region, "eu-west-1");
  // The forward move's replica follows the app again.
  RegionPlane* eu = sys_->plane()->Region("eu-west-1");
  ASSERT_OK(eu->db->InsertRows(app, "orders", {{"id", "post-abort"}, {"total", 3.0}}).status());
  ASSERT_OK(sys_->migrations()->PumpReplicas());
  ASSERT_OK_AND_ASSIGN(auto row,
                       sys_->plane()->Region("us-east-1")->db->GetRow(app, "orders", "post-abort"));
  EXPECT_EQ(row["total"], 3.0);
  ASSERT_OK_AND_ASSIGN(Migration rev2, sys_->migrations()->Reverse("alice", app, m.id));
  EXPECT_EQ(rev2.reverse_path, "fast");
  EXPECT_EQ(Drive(*sys_, rev2.id).current_step, Step::kCompleted);
  EXPECT_EQ(GetApp(app).region, "us-east-1");
  // A reverse can itself be reversed, fast, through the replica it left behind.
  AppState in_us = Capture(*sys_, "us-east-1", app);
  ASSERT_OK_AND_ASSIGN(Migration rev3, sys_->migrations()->Reverse("alice", app, rev2.id));
  EXPECT_EQ(rev3.reverse_path, "fast");
  EXPECT_EQ(Drive(*sys_, rev3.id).current_step, Step::kCompleted);
  EXPECT_EQ(GetApp(app).region, "eu-west-1");
  EXPECT_TRUE(Capture(*sys_, "eu-west-1", app) == in_us);
}

}  // namespace

void PrintTo(Step s, std::ostream* os) { *os << StepName(s); }

}  // namespace regionmove::testing
