// Saga engine with fake steps, a fake clock and a real (SQLite) control store.
#include "saga/engine.h"

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "saga/steps/steps.h"
#include "store/sqlite/sqlite_control_store.h"
#include "test_util.h"

namespace regionmove {
namespace {

using testing::TempDir;

}  // namespace
void PrintTo(Step s, std::ostream* os) { *os << StepName(s); }
namespace {

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = SqliteControlStore::Open(dir_.File("control.sqlite3"));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    for (Step step : Plan::Online().steps()) {  // every step of both plans
      if (step == Step::kCompleted) continue;
      registry_.Register(step, [this, step](StepContext& ctx) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          calls_.push_back({ctx.migration().id, step});
        }
        auto it = behaviour_.find(step);
        return it == behaviour_.end() ? Status::Ok() : it->second(ctx);
      });
    }
    registry_.RegisterCompensation([this](StepContext& ctx) {
      std::lock_guard<std::mutex> lock(mu_);
      compensations_.push_back(ctx.migration().id);
      return compensation_result_;
    });
  }

  // The fake clock drives leases here; the real-time LeaseKeeper is tested on its own.
  std::unique_ptr<Engine> MakeEngine(EngineOptions o = {}, const std::string& owner = "w") {
    o.owner = owner;
    o.keep_leases = false;
    auto e = Engine::Make(store_.get(), &registry_, &clock_, &rng_, o);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return std::move(e).value();
  }

  // Creates an app in `src` and a queued move to `dst`; returns the migration id.
  std::string StartMove(const std::string& src = "us-east-1",
                        const std::string& dst = "eu-west-1") {
    clock_.Advance(1);  // distinct creation times give a deterministic claim order
    App a;
    a.id = NewAppId(rng_);
    a.owner = "alice";
    a.name = "app";
    a.subdomain = a.id + ".apps.test";
    a.region = src;
    a.created_at_ms = clock_.NowMs();
    EXPECT_OK(store_->CreateApp(a));
    Migration m;
    m.id = NewUuidV4(rng_);
    m.app_id = a.id;
    m.owner = "alice";
    m.source_region = src;
    m.dest_region = dst;
    m.initiated_at_ms = clock_.NowMs();
    m.next_attempt_at_ms = clock_.NowMs();
    EXPECT_OK(store_->CreateMigration(m));
    return m.id;
  }

  Migration Get(const std::string& id) {
    auto m = store_->GetMigration(id);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : Migration{};
  }
  App AppOf(const std::string& id) {
    auto a = store_->GetApp(Get(id).app_id);
    EXPECT_TRUE(a.ok());
    return a.ok() ? *a : App{};
  }

  // Drives the engine (advancing fake time over backoffs) until `id` is terminal.
  Migration RunToEnd(Engine& engine, const std::string& id, int max_rounds = 500) {
    for (int i = 0; i < max_rounds; ++i) {
      auto n = engine.Drain();
      EXPECT_TRUE(n.ok()) << n.status().ToString();
      Migration m = Get(id);
      if (m.terminal()) return m;
      clock_.Advance(1000);
    }
    ADD_FAILURE() << "migration " << id << " did not finish";
    return Get(id);
  }

  std::vector<Step> StepsRun(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Step> out;
    for (const auto& [mid, step] : calls_) {
      if (mid == id) out.push_back(step);
    }
    return out;
  }
  int Compensations(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(std::count(compensations_.begin(), compensations_.end(), id));
  }
  std::vector<MigrationEvent> Events(const std::string& id) {
    auto e = store_->ListEvents(id);
    EXPECT_TRUE(e.ok());
    return e.ok() ? *e : std::vector<MigrationEvent>{};
  }
  int CountEvents(const std::string& id, const std::string& type) {
    int n = 0;
    for (const auto& e : Events(id)) n += e.type == type;
    return n;
  }

  TempDir dir_;
  std::unique_ptr<SqliteControlStore> store_;
  FakeClock clock_;
  Rng rng_{1};
  StepRegistry registry_;
  std::map<Step, StepRegistry::StepFn> behaviour_;
  Status compensation_result_;
  std::mutex mu_;
  std::vector<std::pair<std::string, Step>> calls_;
  std::vector<std::string> compensations_;
};

// The steps an offline migration runs.
std::vector<Step> AllWorkSteps() {
  std::vector<Step> out;
  for (Step s : Plan::Offline().steps()) {
    if (s != Step::kCompleted) out.push_back(s);
  }
  return out;
}

// Every step a registry needs (the online plan walks them all).
std::vector<Step> EveryStep() {
  std::vector<Step> out;
  for (Step s : Plan::Online().steps()) {
    if (s != Step::kCompleted) out.push_back(s);
  }
  return out;
}

TEST_F(EngineTest, RefusesAnIncompleteRegistry) {
  StepRegistry empty;
  auto e = Engine::Make(store_.get(), &empty, &clock_, &rng_, {});
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("reserving_dest"), std::string::npos);
}

TEST_F(EngineTest, HappyPathWalksEveryStepOnceInOrder) {
  auto engine = MakeEngine();
  std::string id = StartMove();
  EXPECT_EQ(Get(id).status(), MigrationStatus::kQueued);
  Migration m = RunToEnd(*engine, id);
  EXPECT_EQ(m.current_step, Step::kCompleted);
  EXPECT_EQ(m.status(), MigrationStatus::kCompleted);
  EXPECT_EQ(StepsRun(id), AllWorkSteps());
  EXPECT_EQ(Compensations(id), 0);
  EXPECT_TRUE(m.cutover_committed);
  EXPECT_EQ(m.retry_count, 0);
  EXPECT_GT(m.completed_at_ms, 0);
  EXPECT_TRUE(m.lease_owner.empty());
  // One transition event per step, each legal, in order.
  auto events = Events(id);
  std::vector<MigrationEvent> transitions;
  for (const auto& e : events) {
    if (e.type == "transition") transitions.push_back(e);
  }
  const Plan& plan = Plan::Offline();
  ASSERT_EQ(transitions.size(), static_cast<size_t>(plan.size() - 1));
  for (size_t i = 0; i < transitions.size(); ++i) {
    EXPECT_EQ(plan.Index(transitions[i].from_step), static_cast<int>(i));
    EXPECT_TRUE(plan.IsLegalTransition(transitions[i].from_step, transitions[i].to_step));
  }
  App app = AppOf(id);
  EXPECT_EQ(app.region, "eu-west-1");
  EXPECT_EQ(app.status, kAppReady);
  EXPECT_EQ(app.routing_version, 2);
}

TEST_F(EngineTest, StepsSeeResourcesAndProgressPersisted) {
  behaviour_[Step::kCopyingBlobs] = [](StepContext& ctx) {
    ctx.migration().resources = R"({"blob_cursor":"k42"})";
    RETURN_IF_ERROR(ctx.SaveResources());
    return ctx.ReportProgress(500, 1000, 5, 10);
  };
  std::string seen;
  behaviour_[Step::kCopyingRuntime] = [&](StepContext& ctx) {
    seen = ctx.migration().resources;
    return Status::Ok();
  };
  auto engine = MakeEngine();
  std::string id = StartMove();
  RunToEnd(*engine, id);
  EXPECT_EQ(seen, R"({"blob_cursor":"k42"})");
  bool blob_bytes = false;
  for (const auto& e : Events(id)) {
    if (e.type == "transition" && e.from_step == Step::kCopyingBlobs) blob_bytes = e.bytes == 500;
  }
  EXPECT_TRUE(blob_bytes);
}

TEST_F(EngineTest, RetryThenSuccessWithBackoff) {
  int calls = 0;
  behaviour_[Step::kCopyingBlobs] = [&](StepContext&) {
    return ++calls <= 2 ? Unavailable("blob store busy") : Status::Ok();
  };
  auto engine = MakeEngine();
  std::string id = StartMove();
  // Run until the first failure.
  for (int i = 0; i < 20 && calls == 0; ++i) ASSERT_TRUE(engine->RunOnce().ok());
  ASSERT_EQ(calls, 1);
  Migration after1 = Get(id);
  EXPECT_EQ(after1.attempt, 1);
  int64_t wait = after1.next_attempt_at_ms - clock_.NowMs();
  EXPECT_GE(wait, 500);
  EXPECT_LE(wait, 1000);
  // Not runnable before the backoff elapses.
  ASSERT_OK_AND_ASSIGN(bool worked, engine->RunOnce());
  EXPECT_FALSE(worked);
  clock_.Advance(wait);
  ASSERT_OK_AND_ASSIGN(bool worked2, engine->RunOnce());
  EXPECT_TRUE(worked2);
  Migration after2 = Get(id);
  EXPECT_EQ(calls, 2);
  int64_t wait2 = after2.next_attempt_at_ms - clock_.NowMs();
  EXPECT_GE(wait2, 1000);
  EXPECT_LE(wait2, 2000);
  Migration m = RunToEnd(*engine, id);
  EXPECT_EQ(m.current_step, Step::kCompleted);
  EXPECT_EQ(m.retry_count, 2);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(CountEvents(id, "retry"), 2);
}

TEST_F(EngineTest, PermanentErrorSkipsRetriesAndCompensates) {
  int calls = 0;
  behaviour_[Step::kDumpingData] = [&](StepContext&) {
    ++calls;
    return Permanent("table has an unsupported type");
  };
  auto engine = MakeEngine();
  std::string id = StartMove();
  Migration m = RunToEnd(*engine, id);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(m.current_step, Step::kFailed);
  EXPECT_EQ(m.status(), MigrationStatus::kFailed);
  EXPECT_EQ(m.stopped_at, Step::kDumpingData);
  EXPECT_FALSE(m.needs_repair);
  EXPECT_NE(m.last_error.find("unsupported type"), std::string::npos);
  EXPECT_EQ(Compensations(id), 1);
  App app = AppOf(id);
  EXPECT_EQ(app.region, "us-east-1");
  EXPECT_EQ(app.status, kAppReady);
}

TEST_F(EngineTest, ExhaustionBeforeCutoverCompensatesThenFails) {
  int calls = 0;
  behaviour_[Step::kRestoringData] = [&](StepContext&) {
    ++calls;
    return Unavailable("dest database unreachable");
  };
  EngineOptions o;
  o.max_attempts = 5;
  auto engine = MakeEngine(o);
  std::string id = StartMove();
  Migration m = RunToEnd(*engine, id);
  EXPECT_EQ(calls, 5);
  EXPECT_EQ(m.current_step, Step::kFailed);
  EXPECT_EQ(m.retry_count, 4);
  EXPECT_FALSE(m.needs_repair);
  EXPECT_EQ(Compensations(id), 1);
  EXPECT_NE(m.last_error.find("out of attempts"), std::string::npos);
  EXPECT_EQ(AppOf(id).region, "us-east-1");
  EXPECT_EQ(AppOf(id).status, kAppReady);
  auto steps = StepsRun(id);
  EXPECT_EQ(std::count(steps.begin(), steps.end(), Step::kCopyingBlobs), 0);
}

TEST_F(EngineTest, ExhaustionAfterCutoverNeedsRepairThenRepairFinishes) {
  bool healthy = false;
  int calls = 0;
  behaviour_[Step::kUnblockingWrites] = [&](StepContext&) {
    ++calls;
    return healthy ? Status::Ok() : Unavailable("guard store down");
  };
  EngineOptions o;
  o.max_attempts = 3;
  auto engine = MakeEngine(o);
  std::string id = StartMove();
  Migration m = RunToEnd(*engine, id);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(m.current_step, Step::kFailed);
  EXPECT_TRUE(m.needs_repair);
  EXPECT_EQ(m.stopped_at, Step::kUnblockingWrites);
  EXPECT_EQ(Compensations(id), 0);  // never backwards after the cutover
  App app = AppOf(id);
  EXPECT_EQ(app.region, "eu-west-1");
  EXPECT_EQ(app.status, kAppNeedsRepair);

  healthy = true;
  ASSERT_OK(store_->RepairMigration(id, clock_.NowMs()));
  Migration repaired = RunToEnd(*engine, id);
  EXPECT_EQ(repaired.current_step, Step::kCompleted);
  EXPECT_FALSE(repaired.needs_repair);
  EXPECT_EQ(AppOf(id).status, kAppReady);
  EXPECT_EQ(CountEvents(id, "repair"), 1);
}

// A worker dies mid-step (its lease just stops being renewed): nobody touches the migration
// until the lease expires, then another worker resumes at the recorded step.
TEST_F(EngineTest, CrashedWorkersLeaseExpiresAndAnotherResumes) {
  auto engine = MakeEngine();
  std::string id = StartMove();
  // Walk to dumping_data.
  while (Get(id).current_step != Step::kDumpingData) ASSERT_TRUE(engine->RunOnce().ok());
  // The "crashed" worker claims and never comes back.
  ASSERT_OK_AND_ASSIGN(auto dead, store_->ClaimNext("crashed", clock_.NowMs(), 30000));
  ASSERT_TRUE(dead.has_value());
  size_t dumps_before = StepsRun(id).size();
  ASSERT_OK_AND_ASSIGN(bool early, engine->RunOnce());
  EXPECT_FALSE(early);
  clock_.Advance(29999);
  ASSERT_OK_AND_ASSIGN(bool still, engine->RunOnce());
  EXPECT_FALSE(still);
  clock_.Advance(1);
  Migration m = RunToEnd(*engine, id);
  EXPECT_EQ(m.current_step, Step::kCompleted);
  EXPECT_GT(m.epoch, dead->epoch);
  auto steps = StepsRun(id);
  EXPECT_EQ(steps[dumps_before], Step::kDumpingData);  // resumed at the recorded step
}

// Worker A stalls inside a step past its lease; worker B takes over and finishes the step;
// A's late writes are rejected by the epoch check and the history shows the step once.
TEST_F(EngineTest, StaleWorkerIsFencedOut) {
  auto a = MakeEngine({}, "A");
  auto b = MakeEngine({}, "B");
  std::string id = StartMove();
  int calls = 0;
  Status late_save;
  behaviour_[Step::kRestoringData] = [&](StepContext& ctx) {
    if (++calls == 1) {
      ctx.migration().resources = R"({"restored":"partial"})";
      EXPECT_OK(ctx.SaveResources());
      clock_.Advance(31000);       // A stalls past its lease...
      auto worked = b->RunOnce();  // ...and B takes the migration over.
      EXPECT_TRUE(worked.ok() && *worked);
      late_save = ctx.SaveResources();
      return Status::Ok();
    }
    EXPECT_EQ(ctx.migration().resources, R"({"restored":"partial"})");
    return Status::Ok();
  };
  while (calls == 0) ASSERT_TRUE(a->RunOnce().ok());
  EXPECT_EQ(late_save.code(), StatusCode::kCancelled);  // lease lost
  Migration m = RunToEnd(*b, id);
  EXPECT_EQ(m.current_step, Step::kCompleted);
  EXPECT_EQ(calls, 2);
  int restore_transitions = 0;
  for (const auto& e : Events(id)) {
    restore_transitions += e.type == "transition" && e.from_step == Step::kRestoringData;
  }
  EXPECT_EQ(restore_transitions, 1);
}

class AbortAtStep : public EngineTest, public ::testing::WithParamInterface<Step> {};

TEST_P(AbortAtStep, CompensatesAndLeavesTheAppInSource) {
  Step at = GetParam();
  auto engine = MakeEngine();
  std::string id = StartMove();
  if (at == Step::kRequested) {
    ASSERT_OK(store_->RequestAbort(id, clock_.NowMs()));  // still queued
  } else {
    behaviour_[at] = [&](StepContext& ctx) {
      EXPECT_OK(store_->RequestAbort(ctx.migration().id, clock_.NowMs()));
      return ctx.Checkpoint();  // the stop token fires
    };
  }
  Migration m = RunToEnd(*engine, id);
  EXPECT_EQ(m.current_step, Step::kAborted);
  EXPECT_EQ(m.status(), MigrationStatus::kAborted);
  EXPECT_EQ(m.stopped_at, at);
  EXPECT_FALSE(m.cutover_committed);
  EXPECT_EQ(Compensations(id), 1);
  for (Step s : StepsRun(id))
    EXPECT_LE(Plan::Offline().Index(s), Plan::Offline().Index(at)) << StepName(s);
  App app = AppOf(id);
  EXPECT_EQ(app.region, "us-east-1");
  EXPECT_EQ(app.status, kAppReady);
  EXPECT_EQ(app.routing_version, 1);
  EXPECT_EQ(CountEvents(id, "abort_requested"), 1);
  EXPECT_EQ(CountEvents(id, "compensated"), 1);
  // The app can move again.
  EXPECT_EQ(store_->RequestAbort(id, clock_.NowMs()).reason(), "not_active");
}

INSTANTIATE_TEST_SUITE_P(EveryStepBeforeTheCutover, AbortAtStep,
                         ::testing::Values(Step::kRequested, Step::kReservingDest,
                                           Step::kBlockingWrites, Step::kDumpingData,
                                           Step::kRestoringData, Step::kCopyingBlobs,
                                           Step::kCopyingRuntime, Step::kFlippingRouting),
                         [](const auto& info) { return std::string(StepName(info.param)); });

// The step fails permanently after an abort was asked for: the migration ends aborted.
TEST_F(EngineTest, AnAbortWinsOverTheStepsError) {
  behaviour_[Step::kDumpingData] = [&](StepContext& ctx) {
    EXPECT_OK(store_->RequestAbort(ctx.migration().id, clock_.NowMs()));
    return Permanent("disk full");
  };
  auto engine = MakeEngine();
  std::string id = StartMove();
  Migration m = RunToEnd(*engine, id);
  EXPECT_EQ(m.current_step, Step::kAborted);
  EXPECT_EQ(m.status(), MigrationStatus::kAborted);
  EXPECT_EQ(Compensations(id), 1);
}

// An abort that arrives while a retryable error is being recorded is not delayed by the retry's
// backoff: the migration is runnable again at once and compensates.
TEST_F(EngineTest, ARetryScheduledAfterAnAbortDoesNotDelayIt) {
  int calls = 0;
  behaviour_[Step::kCopyingBlobs] = [&](StepContext& ctx) {
    if (++calls == 1) {
      // The abort lands after the engine's re-read but before its write: simulate it by
      // writing the flag from the step, then failing retryably.
      EXPECT_OK(store_->RequestAbort(ctx.migration().id, clock_.NowMs()));
    }
    return Unavailable("blob store hiccup");
  };
  auto engine = MakeEngine();
  std::string id = StartMove();
  for (int i = 0; i < 20 && !Get(id).terminal(); ++i) ASSERT_TRUE(engine->Drain().ok());
  Migration m = Get(id);  // no clock advance: nothing waited for a backoff
  EXPECT_EQ(m.current_step, Step::kAborted);
  EXPECT_EQ(calls, 1);
}

TEST_F(EngineTest, AbortDuringCompensationRetriesThenCompletes) {
  compensation_result_ = Unavailable("dest unreachable");
  behaviour_[Step::kCopyingBlobs] = [&](StepContext& ctx) {
    EXPECT_OK(store_->RequestAbort(ctx.migration().id, clock_.NowMs()));
    return ctx.Checkpoint();
  };
  auto engine = MakeEngine();
  std::string id = StartMove();
  while (Compensations(id) < 2) {
    ASSERT_TRUE(engine->Drain().ok());
    clock_.Advance(1000);
  }
  EXPECT_EQ(Get(id).status(), MigrationStatus::kAborting);
  EXPECT_TRUE(Get(id).writes_blocked());
  compensation_result_ = Status::Ok();
  Migration m = RunToEnd(*engine, id);
  EXPECT_EQ(m.current_step, Step::kAborted);
  EXPECT_EQ(AppOf(id).region, "us-east-1");
}

// Abort arrives while the flip step runs, before its commit: the abort wins, the flip refuses.
TEST_F(EngineTest, AbortBeforeFlipCommitWins) {
  behaviour_[Step::kFlippingRouting] = [&](StepContext& ctx) {
    EXPECT_OK(store_->RequestAbort(ctx.migration().id, clock_.NowMs()));
    return Status::Ok();  // does not look at the stop token: the commit must still refuse
  };
  auto engine = MakeEngine();
  std::string id = StartMove();
  Migration m = RunToEnd(*engine, id);
  EXPECT_EQ(m.current_step, Step::kAborted);
  EXPECT_FALSE(m.cutover_committed);
  EXPECT_EQ(AppOf(id).region, "us-east-1");
  EXPECT_EQ(Compensations(id), 1);
  auto steps = StepsRun(id);
  EXPECT_EQ(std::count(steps.begin(), steps.end(), Step::kSettingUpReverseReplication), 0);
}

// The flip commits first: the abort is refused with cutover_passed and the move completes.
TEST_F(EngineTest, FlipCommitsBeforeAbort) {
  Status abort;
  behaviour_[Step::kSettingUpReverseReplication] = [&](StepContext& ctx) {
    abort = store_->RequestAbort(ctx.migration().id, clock_.NowMs());
    return ctx.Checkpoint();  // after the cutover the stop token ignores aborts
  };
  auto engine = MakeEngine();
  std::string id = StartMove();
  Migration m = RunToEnd(*engine, id);
  EXPECT_EQ(abort.reason(), "cutover_passed");
  EXPECT_EQ(m.current_step, Step::kCompleted);
  EXPECT_EQ(Compensations(id), 0);
  EXPECT_EQ(AppOf(id).region, "eu-west-1");
}

TEST_F(EngineTest, ConcurrentMovesOfOneAppOneWins) {
  std::string first = StartMove();
  std::string app_id = Get(first).app_id;
  // Finish the first so the app is free, then race eight new moves.
  auto engine = MakeEngine();
  RunToEnd(*engine, first);
  std::atomic<int> wins{0}, conflicts{0};
  std::vector<std::thread> threads;
  std::vector<std::string> ids(8);
  for (int i = 0; i < 8; ++i) ids[i] = NewUuidV4(rng_);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      Migration m;
      m.id = ids[i];
      m.app_id = app_id;
      m.owner = "alice";
      m.source_region = "eu-west-1";
      m.dest_region = "ap-southeast-1";
      m.initiated_at_ms = clock_.NowMs();
      Status s = store_->CreateMigration(m);
      (s.ok() ? wins : conflicts)++;
      if (!s.ok()) {
        EXPECT_EQ(s.reason(), "migration_in_flight");
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
  EXPECT_EQ(conflicts.load(), 7);
  ASSERT_OK_AND_ASSIGN(auto active, store_->GetActiveMigration(app_id));
  ASSERT_TRUE(active.has_value());
  Migration m = RunToEnd(*engine, active->id);
  EXPECT_EQ(m.current_step, Step::kCompleted);
  EXPECT_EQ(AppOf(active->id).region, "ap-southeast-1");
}

// Migrations beyond the caps wait in `requested` (status queued) and take a slot as soon as
// one is freed, without waiting for their next poll: one round of work (no time passing)
// finishes them all, and the caps held throughout.
TEST_F(EngineTest, ConcurrencyCapsAreHonoured) {
  EngineOptions o;
  o.max_concurrent = 2;
  o.max_concurrent_per_region = 1;
  std::atomic<int> max_in_flight{0}, max_us_east{0};
  auto observe = [&](StepContext&) {
    auto active = store_->ListActiveMigrations();
    EXPECT_TRUE(active.ok());
    int all = 0, us = 0;
    for (const auto& m : *active) {
      if (!m.admitted) continue;
      ++all;
      us += m.source_region == "us-east-1" || m.dest_region == "us-east-1";
    }
    max_in_flight = std::max(max_in_flight.load(), all);
    max_us_east = std::max(max_us_east.load(), us);
    return Status::Ok();
  };
  for (Step s : AllWorkSteps()) {
    if (s != Step::kRequested) behaviour_[s] = observe;
  }
  auto engine = MakeEngine(o);
  std::vector<std::string> ids = {
      StartMove("us-east-1", "eu-west-1"), StartMove("us-east-1", "ap-southeast-1"),
      StartMove("eu-central-1", "sa-east-1"), StartMove("ca-central-1", "me-south-1")};
  // The second move out of us-east-1 is queued for its region's slot; the first move's end
  // frees it, and it runs in the same round.
  ASSERT_TRUE(engine->RunOnce().ok());
  ASSERT_TRUE(engine->RunOnce().ok());
  ASSERT_TRUE(engine->RunOnce().ok());
  EXPECT_EQ(Get(ids[1]).status(), MigrationStatus::kQueued);
  EXPECT_EQ(Get(ids[1]).current_step, Step::kRequested);
  ASSERT_TRUE(engine->Drain().ok());
  for (const auto& id : ids) EXPECT_EQ(Get(id).current_step, Step::kCompleted) << id;
  EXPECT_EQ(max_in_flight.load(), 2);
  EXPECT_EQ(max_us_east.load(), 1);
}

// A new app in us-east-1 and a queued move of it to eu-west-1, straight in the store.
Result<Migration> SeedMove(ControlStore* store, Rng& rng) {
  App a;
  a.id = NewAppId(rng);
  a.owner = "alice";
  a.subdomain = a.id;
  a.region = "us-east-1";
  RETURN_IF_ERROR(store->CreateApp(a));
  Migration m;
  m.id = NewUuidV4(rng);
  m.app_id = a.id;
  m.source_region = "us-east-1";
  m.dest_region = "eu-west-1";
  RETURN_IF_ERROR(store->CreateMigration(m));
  return m;
}

// A step that blocks for several lease periods without a checkpoint keeps its lease: another
// worker cannot take the migration over meanwhile.
TEST(LeaseKeeper, LongStepKeepsItsLease) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto store, SqliteControlStore::Open(dir.File("c.sqlite3")));
  StepRegistry reg;
  std::atomic<int> restores{0};
  Engine* other_ptr = nullptr;
  std::atomic<bool> stolen{false};
  for (Step s : EveryStep()) {
    reg.Register(s, [&, s](StepContext&) {
      if (s != Step::kRestoringData) return Status::Ok();
      if (restores++ > 0) return Status::Ok();  // a takeover runs it again: that is the failure
      // Four lease periods inside one call, while another worker keeps trying to claim.
      for (int i = 0; i < 16; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        auto r = other_ptr->RunOnce();
        if (r.ok() && *r) stolen = true;
      }
      return Status::Ok();
    });
  }
  reg.RegisterCompensation([](StepContext&) { return Status::Ok(); });
  Rng rng(9);
  EngineOptions o;
  o.lease_ms = 200;
  ASSERT_OK_AND_ASSIGN(auto engine,
                       Engine::Make(store.get(), &reg, SystemClock::Default(), &rng, o));
  ASSERT_OK_AND_ASSIGN(auto other,
                       Engine::Make(store.get(), &reg, SystemClock::Default(), &rng, o));
  other_ptr = other.get();
  ASSERT_OK_AND_ASSIGN(Migration m, SeedMove(store.get(), rng));
  for (int i = 0; i < 100 && !store->GetMigration(m.id)->terminal(); ++i) {
    ASSERT_TRUE(engine->RunOnce().ok());
  }
  EXPECT_EQ(store->GetMigration(m.id)->current_step, Step::kCompleted);
  EXPECT_FALSE(stolen.load());
  EXPECT_EQ(restores.load(), 1);
}

// Real threads on the real clock: several workers drive several migrations to completion,
// each step running exactly once per migration.
TEST(EngineThreads, WorkerPoolFinishesEverything) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto store, SqliteControlStore::Open(dir.File("c.sqlite3")));
  StepRegistry reg;
  std::mutex mu;
  std::map<std::string, int> runs;
  for (Step s : EveryStep()) {
    reg.Register(s, [&, s](StepContext& ctx) {
      std::lock_guard<std::mutex> lock(mu);
      // Validation (kRequested) runs again while a migration waits for a slot; the work
      // steps must run once each.
      if (s != Step::kRequested) runs[ctx.migration().id]++;
      return Status::Ok();
    });
  }
  reg.RegisterCompensation([](StepContext&) { return Status::Ok(); });
  Rng rng(3);
  EngineOptions o;
  o.idle_poll_ms = 5;
  o.queue_poll_ms = 5;
  ASSERT_OK_AND_ASSIGN(auto engine,
                       Engine::Make(store.get(), &reg, SystemClock::Default(), &rng, o));
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ASSERT_OK_AND_ASSIGN(Migration m, SeedMove(store.get(), rng));
    ids.push_back(m.id);
  }
  engine->Start(3);
  int64_t deadline = SystemClock::Default()->NowMs() + 20000;
  bool all_done = false;
  while (!all_done && SystemClock::Default()->NowMs() < deadline) {
    all_done = true;
    for (const auto& id : ids) {
      auto m = store->GetMigration(id);
      all_done = all_done && m.ok() && m->current_step == Step::kCompleted;
    }
    if (!all_done) SystemClock::Default()->SleepMs(10);
  }
  engine->Stop();
  EXPECT_TRUE(all_done);
  for (const auto& id : ids) EXPECT_EQ(runs[id], Plan::Offline().Index(Step::kCompleted) - 1) << id;
}

// A worker runs a migration's steps one after another under the one claim it took (no claim,
// no epoch, per step), and gives the lease back when its engine stops: another engine (another
// process) resumes the migration at once, without waiting for the lease to expire.
TEST_F(EngineTest, AWorkerRunsTheStepsUnderOneClaimAndReleasesItOnStop) {
  std::string id = StartMove();
  std::atomic<bool> entered{false}, release{false};
  behaviour_[Step::kCopyingBlobs] = [&](StepContext&) {
    entered = true;
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return Status::Ok();
  };
  auto engine = MakeEngine({}, "first");
  engine->Start(1);
  for (int i = 0; i < 5000 && !entered; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(entered);
  Migration mid = Get(id);
  EXPECT_EQ(mid.epoch, 1);  // admission and four steps so far, one claim
  EXPECT_EQ(mid.lease_owner.rfind("first/", 0), 0u) << mid.lease_owner;
  std::thread stopper([&] { engine->Stop(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  release = true;
  stopper.join();
  Migration stopped = Get(id);
  EXPECT_EQ(stopped.current_step, Step::kCopyingRuntime);
  EXPECT_EQ(stopped.lease_owner, "");
  behaviour_.erase(Step::kCopyingBlobs);
  auto next = MakeEngine({}, "second");
  ASSERT_OK_AND_ASSIGN(bool worked, next->RunOnce());  // no time has passed on the fake clock
  EXPECT_TRUE(worked);
  Migration done = RunToEnd(*next, id);
  EXPECT_EQ(done.current_step, Step::kCompleted);
  std::vector<Step> once = StepsRun(id);
  EXPECT_EQ(std::count(once.begin(), once.end(), Step::kCopyingBlobs), 1);
  EXPECT_EQ(std::count(once.begin(), once.end(), Step::kCopyingRuntime), 1);
}

// The catch-up an online move's pause would need, from two samples of the replica's position.
TEST(LagGate, PredictsTheCatchUpFromTheMeasuredApplyRate) {
  // 1,000 positions applied in 500 ms (2,000/s), 3,000 left: 1.5 s.
  auto p = steps::PredictCatchUpSeconds(10'000, 1'000, 11'000, 14'000, 1'500);
  ASSERT_TRUE(p.has_value());
  EXPECT_DOUBLE_EQ(*p, 1.5);
  EXPECT_EQ(steps::PredictCatchUpSeconds(10'000, 1'000, 14'000, 14'000, 1'500), 0.0);  // caught up
  EXPECT_FALSE(steps::PredictCatchUpSeconds(10'000, 1'000, 10'000, 14'000, 1'500));    // no rate
  EXPECT_FALSE(steps::PredictCatchUpSeconds(10'000, 1'500, 11'000, 14'000, 1'500));    // no time
}

}  // namespace
}  // namespace regionmove
