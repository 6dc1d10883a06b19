// Faults injected into the real steps: resume, verification, degraded replication, repair.
#include <cmath>

#include "dataplane/sqlite/sqlite_database.h"
#include "e2e/e2e_util.h"

namespace regionmove::testing {
namespace {

using nlohmann::json;

class FaultE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    sys_ = OpenSystem(dir_, SystemClock::Default(), &rng_);
    ASSERT_NE(sys_, nullptr);
  }
  std::string MakeApp(int blobs) {
    auto app = sys_->apps()->CreateApp("alice", "shop", "us-east-1", "");
    EXPECT_TRUE(app.ok());
    RegionPlane* r = sys_->plane()->Region("us-east-1");
    EXPECT_OK(r->db->CreateTable(app->id, TableSpec{"t", {{"n", "integer"}}}));
    json rows = json::array();
    for (int i = 0; i < 200; ++i) rows.push_back({{"id", "r" + std::to_string(i)}, {"n", i}});
    EXPECT_OK(r->db->InsertRows(app->id, "t", rows).status());
    for (int i = 0; i < blobs; ++i) {
      EXPECT_OK(r->blobs->Put(app->id, "b/" + std::to_string(1000 + i), std::string(2000, 'x'), "")
                    .status());
    }
    return app->id;
  }
  TempDir dir_;
  Rng rng_{17};
  std::unique_ptr<System> sys_;
};

TEST_F(FaultE2E, BlobCopyResumesFromItsCursor) {
  std::string app = MakeApp(150);  // three pages
  AppState before = Capture(*sys_, "us-east-1", app);
  sys_->faults()->Arm("copying_blobs.after_page", Unavailable("blob store hiccup"), 1, 1);
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app, "eu-west-1", ""));
  Migration done = Drive(*sys_, m.id);
  ASSERT_EQ(done.current_step, Step::kCompleted) << done.last_error;
  EXPECT_EQ(done.retry_count, 1);
  json res = json::parse(done.resources);
  EXPECT_EQ(res["blobs_copied"], 150);  // each blob once
  EXPECT_EQ(res["blobs_skipped"], 0);   // the retry started after the recorded cursor
  EXPECT_TRUE(Capture(*sys_, "eu-west-1", app) == before);
}

TEST_F(FaultE2E, ADestThatWillNotBeCleanedNeverKeepsTheAppBlocked) {
  std::string app = MakeApp(3);
  AppState before = Capture(*sys_, "us-east-1", app);
  sys_->faults()->Arm("compensation.clean_dest", Unavailable("dest blob dir is read-only"), 100);
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app, "eu-west-1", ""));
  RunUntil(*sys_, m.id, Step::kCopyingBlobs);
  ASSERT_OK(sys_->migrations()->Abort("alice", app, m.id).status());
  // While compensation retries the destination, the app already takes writes in its source.
  ASSERT_OK_AND_ASSIGN(bool worked, sys_->engine()->RunOnce());
  ASSERT_TRUE(worked);
  ASSERT_OK_AND_ASSIGN(Migration mid, sys_->store()->GetMigration(m.id));
  EXPECT_EQ(mid.status(), MigrationStatus::kAborting);
  RegionPlane* us = sys_->plane()->Region("us-east-1");
  ASSERT_OK(us->db->InsertRows(app, "t", json{{"id", "during"}, {"n", 1}}).status());
  Migration done = Drive(*sys_, m.id);
  EXPECT_EQ(done.current_step, Step::kAborted) << done.last_error;
  json res = json::parse(done.resources);
  ASSERT_TRUE(res.contains("debris")) << done.resources;
  EXPECT_NE(res["debris"].dump().find("read-only"), std::string::npos);
  ASSERT_OK_AND_ASSIGN(auto events, sys_->store()->ListEvents(m.id));
  bool noted = false;
  for (const auto& e : events)
    noted |= e.message.find("for an operator to remove") != e.message.npos;
  EXPECT_TRUE(noted);
  ASSERT_OK(us->db->InsertRows(app, "t", json{{"id", "after"}, {"n", 2}}).status());
  ASSERT_OK_AND_ASSIGN(App a, sys_->store()->GetApp(app));
  EXPECT_EQ(a.region, "us-east-1");
  EXPECT_EQ(a.status, kAppReady);
  AppState now = Capture(*sys_, "us-east-1", app);
  EXPECT_EQ(now.blobs, before.blobs);
  ASSERT_OK_AND_ASSIGN(auto listed, sys_->migrations()->ListDebris("alice"));
  ASSERT_EQ(listed.size(), 1u);
  // The destination heals: the background retry removes the debris and says so.
  sys_->faults()->DisarmAll();
  ASSERT_OK(sys_->migrations()->RetryDebris());
  ASSERT_OK_AND_ASSIGN(Migration healed, sys_->store()->GetMigration(m.id));
  EXPECT_FALSE(json::parse(healed.resources).contains("debris")) << healed.resources;
  ASSERT_OK_AND_ASSIGN(bool left, sys_->plane()->Region("eu-west-1")->db->Exists(app));
  EXPECT_FALSE(left);
  ASSERT_OK_AND_ASSIGN(auto none, sys_->migrations()->ListDebris(""));
  EXPECT_TRUE(none.empty());
}

// Writes that keep the replica behind (a write storm, injected at the lag gate) hold an online
// move in syncing, saying why, without using its attempts: once the storm passes, it completes.
TEST_F(FaultE2E, OnlineMoveWaitsOutAWriteStormWithoutFailing) {
  std::string app = MakeApp(3);
  AppState before = Capture(*sys_, "us-east-1", app);
  // Five passes of the gate (12 measurements each) behind; the config allows 3 attempts.
  sys_->faults()->Arm("syncing.lag_gate", Unavailable("writes outpace the apply"), 60);
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app, "eu-west-1", "online"));
  bool said_why = false;
  for (int i = 0; i < 500 && !said_why; ++i) {
    (void)sys_->engine()->Drain();
    ASSERT_OK_AND_ASSIGN(Migration now, sys_->store()->GetMigration(m.id));
    said_why = now.current_step == Step::kSyncing &&
               now.last_error.find("waiting to pause writes") != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(said_why);
  Migration done = Drive(*sys_, m.id);
  ASSERT_EQ(done.current_step, Step::kCompleted) << done.last_error;
  EXPECT_EQ(done.retry_count, 0);
  ASSERT_OK_AND_ASSIGN(auto events, sys_->store()->ListEvents(m.id));
  int waiting = 0;
  for (const auto& e : events) waiting += e.type == "waiting";
  EXPECT_EQ(waiting, 1);  // recorded once, not on every pass
  EXPECT_TRUE(Capture(*sys_, "eu-west-1", app) == before);
}

TEST_F(FaultE2E, BlobProgressKnowsItsTotalFromTheStart) {
  std::string app = MakeApp(150);  // 150 blobs of 2000 bytes: three pages
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app, "eu-west-1", ""));
  RunUntil(*sys_, m.id, Step::kCopyingBlobs);
  sys_->faults()->Arm("copying_blobs.after_page", Unavailable("stop after the first page"));
  ASSERT_OK_AND_ASSIGN(bool worked, sys_->engine()->RunOnce());
  ASSERT_TRUE(worked);
  ASSERT_OK_AND_ASSIGN(Migration mid, sys_->store()->GetMigration(m.id));
  EXPECT_EQ(mid.current_step, Step::kCopyingBlobs);
  EXPECT_EQ(mid.progress.bytes_total, 150 * 2000);
  EXPECT_GE(mid.progress.bytes_done, 64 * 2000);
  EXPECT_LT(mid.progress.bytes_done, 150 * 2000);
}

TEST_F(FaultE2E, VerificationMismatchNeverFlips) {
  std::string app = MakeApp(3);
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app, "eu-west-1", ""));
  RunUntil(*sys_, m.id, Step::kRestoringData);
  // A change slips into the source after the dump (bypassing the fence).
  auto* us = dynamic_cast<SqliteDatabase*>(sys_->plane()->Region("us-east-1")->db.get());
  ASSERT_OK(us->WithWriteTxn(
      app, [](sqlite::Db* db) { return db->Exec("DELETE FROM t WHERE id = 'r5'"); }));
  Migration done = Drive(*sys_, m.id);
  EXPECT_EQ(done.current_step, Step::kFailed);
  EXPECT_FALSE(done.cutover_committed);
  EXPECT_NE(done.last_error.find("verification failed"), std::string::npos) << done.last_error;
  EXPECT_EQ(sys_->store()->GetApp(app)->region, "us-east-1");
  ASSERT_OK_AND_ASSIGN(bool dest_db, sys_->plane()->Region("eu-west-1")->db->Exists(app));
  EXPECT_FALSE(dest_db);
  ASSERT_OK_AND_ASSIGN(bool fenced, us->IsFenced(app));
  EXPECT_FALSE(fenced);
}

TEST_F(FaultE2E, ReplicationFailureDegradesToNoReplica) {
  std::string app = MakeApp(3);
  sys_->faults()->Arm("setting_up_reverse_replication.start", Permanent("replica unreachable"));
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app, "eu-west-1", ""));
  Migration done = Drive(*sys_, m.id);
  ASSERT_EQ(done.current_step, Step::kCompleted);
  EXPECT_EQ(done.source_replica_state, kReplicaNone);
  ASSERT_OK_AND_ASSIGN(auto events, sys_->store()->ListEvents(m.id));
  bool noted = false;
  for (const auto& e : events) {
    noted |= e.message.find("reverse replication not set up: replica unreachable") == 0;
  }
  EXPECT_TRUE(noted);
  // No orphan: the old region's copy, which nothing would keep current, is gone.
  RegionPlane* us = sys_->plane()->Region("us-east-1");
  ASSERT_OK_AND_ASSIGN(bool exists, us->db->Exists(app));
  EXPECT_FALSE(exists);
  ASSERT_OK_AND_ASSIGN(int64_t blob_bytes, us->blobs->SizeBytes(app));
  EXPECT_EQ(blob_bytes, 0);
  ASSERT_OK_AND_ASSIGN(RuntimeSnapshot archived, us->runtime->Snapshot(app, true));
  EXPECT_TRUE(archived.functions.empty() && archived.env.empty());
  ASSERT_OK_AND_ASSIGN(Migration rev, sys_->migrations()->Reverse("alice", app, m.id));
  EXPECT_EQ(rev.reverse_path, "slow");
  ASSERT_EQ(Drive(*sys_, rev.id).current_step, Step::kCompleted);
  EXPECT_EQ(sys_->store()->GetApp(app)->region, "us-east-1");
}

TEST_F(FaultE2E, FailureAfterCutoverWaitsForRepair) {
  std::string app = MakeApp(3);
  sys_->faults()->Arm("unblocking_writes", Unavailable("guard store down"), 100);
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app, "eu-west-1", ""));
  Migration failed = Drive(*sys_, m.id);
  ASSERT_EQ(failed.current_step, Step::kFailed);
  EXPECT_TRUE(failed.needs_repair);
  EXPECT_EQ(failed.stopped_at, Step::kUnblockingWrites);
  EXPECT_EQ(sys_->store()->GetApp(app)->region, "eu-west-1");  // forward only
  EXPECT_EQ(sys_->store()->GetApp(app)->status, kAppNeedsRepair);
  EXPECT_EQ(sys_->migrations()->Move("alice", app, "us-east-1", "").status().detail(),
            "app_not_ready");
  sys_->faults()->DisarmAll();
  ASSERT_OK(sys_->store()->RepairMigration(m.id, SystemClock::Default()->NowMs()));
  Migration repaired = Drive(*sys_, m.id);
  ASSERT_EQ(repaired.current_step, Step::kCompleted);
  ASSERT_OK(sys_->plane()->Region("eu-west-1")->db->InsertRows(app, "t", {{"n", 1}}).status());
}

// A writer refused during the pause is told what is left of the pause that the move estimated
// when it reserved dest, then (the estimate passed) a quarter of the time paused so far, never
// more than server.max_retry_after_seconds.
TEST_F(FaultE2E, RetryAfterCountsDownThePausesEstimate) {
  TempDir dir;
  FakeClock clock(SystemClock::Default()->NowMs());
  Rng rng(5);
  auto sys = OpenSystem(dir, &clock, &rng, "", "max_retry_after_seconds = 20\n");
  ASSERT_NE(sys, nullptr);
  ASSERT_OK_AND_ASSIGN(App app, sys->apps()->CreateApp("alice", "a", "us-east-1", ""));
  ASSERT_OK_AND_ASSIGN(Migration m, sys->migrations()->Move("alice", app.id, "eu-west-1", ""));
  RunUntil(*sys, m.id, Step::kDumpingData);
  ASSERT_OK_AND_ASSIGN(Migration blocked, sys->store()->GetMigration(m.id));
  json res = json::parse(blocked.resources);
  ASSERT_TRUE(res.contains("block_estimate_seconds")) << res.dump();
  const double estimate = res["block_estimate_seconds"].get<double>();
  ASSERT_GT(estimate, 1.0);  // no move has measured rates yet: the assumed ones
  const int64_t started = res["block_started_at_ms"].get<int64_t>();
  auto told_at = [&](int64_t after_ms) {
    clock.Advance(started + after_ms - clock.NowMs());
    return sys->migrations()->RetryAfterSeconds(blocked);
  };
  EXPECT_EQ(told_at(0), static_cast<int64_t>(std::ceil(estimate)));
  EXPECT_EQ(told_at(1000), static_cast<int64_t>(std::ceil(estimate - 1.0)));
  EXPECT_EQ(told_at(static_cast<int64_t>(estimate * 1000) + 8000),
            static_cast<int64_t>(std::ceil(0.25 * (estimate + 8.0))));
  EXPECT_EQ(told_at(600'000), 20);  // 150 s, above the configured maximum
}

TEST_F(FaultE2E, RetentionTearsDownOldReplicas) {
  TempDir dir;
  FakeClock clock(SystemClock::Default()->NowMs());
  Rng rng(3);
  auto sys = OpenSystem(dir, &clock, &rng, "[replicas]\nretention_days = 2\n");
  ASSERT_NE(sys, nullptr);
  ASSERT_OK_AND_ASSIGN(App app, sys->apps()->CreateApp("alice", "a", "us-east-1", ""));
  ASSERT_OK_AND_ASSIGN(Migration m, sys->migrations()->Move("alice", app.id, "eu-west-1", ""));
  for (int i = 0; i < 50 && !sys->store()->GetMigration(m.id)->terminal(); ++i) {
    ASSERT_TRUE(sys->engine()->Drain().ok());
    clock.Advance(1000);
  }
  ASSERT_EQ(sys->store()->GetMigration(m.id)->source_replica_state, kReplicaReplicating);
  clock.Advance(86'400'000);
  ASSERT_OK(sys->migrations()->EnforceRetention());
  EXPECT_EQ(sys->store()->GetMigration(m.id)->source_replica_state, kReplicaReplicating);
  clock.Advance(86'400'000 + 1000);
  ASSERT_OK(sys->migrations()->EnforceRetention());
  EXPECT_EQ(sys->store()->GetMigration(m.id)->source_replica_state, kReplicaTornDown);
}

}  // namespace
}  // namespace regionmove::testing
