#include "domain/migration.h"
#include "domain/step.h"
#include "test_util.h"

namespace regionmove {
namespace {

constexpr Step kAll[] = {Step::kRequested,        Step::kReservingDest,
                         Step::kSyncing,          Step::kBlockingWrites,
                         Step::kDumpingData,      Step::kRestoringData,
                         Step::kCopyingBlobs,     Step::kCopyingRuntime,
                         Step::kFlippingRouting,  Step::kSettingUpReverseReplication,
                         Step::kUnblockingWrites, Step::kCompleted,
                         Step::kAborted,          Step::kFailed};

// Walks `plan` from requested and checks it names `expected`, in order.
void ExpectPlan(const Plan& plan, const std::vector<std::string>& expected) {
  ASSERT_EQ(plan.size(), static_cast<int>(expected.size()));
  Step s = Step::kRequested;
  for (int i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(StepName(s), expected[static_cast<size_t>(i)]);
    EXPECT_EQ(plan.Index(s), i);
    EXPECT_EQ(ParseStep(expected[static_cast<size_t>(i)]), s);
    if (i + 1 < plan.size()) s = *plan.Next(s);
  }
  EXPECT_EQ(s, Step::kCompleted);
  EXPECT_FALSE(plan.Next(Step::kCompleted).has_value());
  EXPECT_EQ(plan.Index(Step::kAborted), -1);
}

TEST(Steps, OrderAndNames) {
  ExpectPlan(Plan::Offline(),
             {"requested", "reserving_dest", "blocking_writes", "dumping_data", "restoring_data",
              "copying_blobs", "copying_runtime", "flipping_routing",
              "setting_up_reverse_replication", "unblocking_writes", "completed"});
  ExpectPlan(Plan::Online(),
             {"requested", "reserving_dest", "syncing", "blocking_writes", "dumping_data",
              "restoring_data", "copying_blobs", "copying_runtime", "flipping_routing",
              "setting_up_reverse_replication", "unblocking_writes", "completed"});
  EXPECT_EQ(&Plan::For("online"), &Plan::Online());
  EXPECT_EQ(&Plan::For("offline"), &Plan::Offline());
  EXPECT_EQ(Plan::Offline().Index(Step::kSyncing), -1);
  EXPECT_FALSE(Plan::Offline().Next(Step::kSyncing).has_value());
  EXPECT_FALSE(ParseStep("flying").has_value());
}

TEST(Steps, WritesAreBlockedFromTheBlockToTheUnblock) {
  for (const Plan* plan : {&Plan::Offline(), &Plan::Online()}) {
    EXPECT_FALSE(plan->WritesBlocked(Step::kReservingDest));
    EXPECT_FALSE(plan->WritesBlocked(Step::kSyncing));
    EXPECT_TRUE(plan->WritesBlocked(Step::kBlockingWrites));
    EXPECT_TRUE(plan->WritesBlocked(Step::kUnblockingWrites));
    EXPECT_FALSE(plan->WritesBlocked(Step::kCompleted));
    EXPECT_FALSE(plan->WritesBlocked(Step::kAborted));
  }
}

TEST(Steps, CutoverSplitsTheSequence) {
  EXPECT_TRUE(IsBeforeCutover(Step::kCopyingRuntime));
  EXPECT_FALSE(IsBeforeCutover(Step::kFlippingRouting));
  EXPECT_FALSE(IsBeforeCutover(Step::kUnblockingWrites));
  EXPECT_FALSE(IsBeforeCutover(Step::kAborted));
  for (Step t : {Step::kCompleted, Step::kAborted, Step::kFailed}) EXPECT_TRUE(IsTerminal(t));
}

// The whole transition table of each plan, cell by cell.
TEST(Steps, TransitionTable) {
  for (const Plan* plan : {&Plan::Offline(), &Plan::Online()}) {
    for (Step from : plan->steps()) {
      for (Step to : kAll) {
        bool expected = false;
        if (from == Step::kFailed) {
          expected = !IsTerminal(to) && plan->Index(to) >= 0;  // repair
        } else if (!IsTerminal(from)) {
          if (to == Step::kAborted) {
            expected = plan->Index(from) < plan->Index(Step::kFlippingRouting);
          } else if (to == Step::kFailed) {
            expected = true;
          } else if (to == Step::kSyncing && plan->Index(to) >= 0 &&
                     plan->Index(from) >= plan->Index(Step::kBlockingWrites) &&
                     plan->Index(from) < plan->Index(Step::kFlippingRouting)) {
            expected = true;  // the pause outlasted its budget
          } else {
            expected = plan->Index(to) >= 0 && plan->Index(to) == plan->Index(from) + 1;
          }
        }
        EXPECT_EQ(plan->IsLegalTransition(from, to), expected)
            << plan->size() << ": " << StepName(from) << " -> " << StepName(to);
      }
    }
    for (Step to : kAll) {
      EXPECT_EQ(plan->IsLegalTransition(Step::kFailed, to),
                !IsTerminal(to) && plan->Index(to) >= 0);
    }
  }
}

TEST(Steps, LabelsNameTheRegions) {
  EXPECT_EQ(StepLabel(Step::kCopyingBlobs, "us-east-1", "eu-west-1"), "Copying files to eu-west-1");
  for (Step s : kAll) EXPECT_FALSE(StepLabel(s, "a-1", "b-1").empty()) << StepName(s);
}

TEST(MigrationStatus, DerivesFromState) {
  Migration m;
  EXPECT_EQ(m.status(), MigrationStatus::kQueued);
  m.admitted = true;
  EXPECT_EQ(m.status(), MigrationStatus::kRunning);
  m.current_step = Step::kCopyingBlobs;
  EXPECT_TRUE(m.writes_blocked());
  EXPECT_TRUE(m.abortable());
  m.abort_requested = true;
  EXPECT_EQ(m.status(), MigrationStatus::kAborting);
  m.current_step = Step::kAborted;
  EXPECT_EQ(m.status(), MigrationStatus::kAborted);
  EXPECT_FALSE(m.writes_blocked());
  EXPECT_FALSE(m.abortable());

  Migration f;
  f.admitted = true;
  f.current_step = Step::kSettingUpReverseReplication;
  f.cutover_committed = true;
  EXPECT_FALSE(f.abortable());
  EXPECT_EQ(f.status(), MigrationStatus::kRunning);
  f.current_step = Step::kCompleted;
  EXPECT_EQ(f.status(), MigrationStatus::kCompleted);

  Migration early;
  early.current_step = Step::kReservingDest;
  early.admitted = true;
  EXPECT_FALSE(early.writes_blocked());
  early.current_step = Step::kBlockingWrites;
  EXPECT_TRUE(early.writes_blocked());
}

}  // namespace
}  // namespace regionmove
