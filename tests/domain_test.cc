#include "domain/migration.h"
#include "domain/step.h"
#include "test_util.h"

namespace regionmove {
namespace {

constexpr Step kAll[] = {Step::kRequested,
                         Step::kReservingDest,
                         Step::kBlockingWrites,
                         Step::kDumpingData,
                         Step::kRestoringData,
                         Step::kCopyingBlobs,
                         Step::kCopyingRuntime,
                         Step::kFlippingRouting,
                         Step::kSettingUpReverseReplication,
                         Step::kUnblockingWrites,
                         Step::kCompleted,
                         Step::kAborted,
                         Step::kFailed};

TEST(Steps, OrderAndNames) {
  const char* expected[] = {
      "requested",         "reserving_dest",   "blocking_writes",
      "dumping_data",      "restoring_data",   "copying_blobs",
      "copying_runtime",   "flipping_routing", "setting_up_reverse_replication",
      "unblocking_writes", "completed"};
  Step s = Step::kRequested;
  for (int i = 0; i < kStepCount; ++i) {
    EXPECT_EQ(StepName(s), expected[i]);
    EXPECT_EQ(StepIndex(s), i);
    EXPECT_EQ(ParseStep(expected[i]), s);
    if (i + 1 < kStepCount) s = *NextStep(s);
  }
  EXPECT_EQ(s, Step::kCompleted);
  EXPECT_FALSE(NextStep(Step::kCompleted).has_value());
  EXPECT_FALSE(ParseStep("flying").has_value());
  EXPECT_EQ(StepIndex(Step::kAborted), -1);
}

TEST(Steps, CutoverSplitsTheSequence) {
  EXPECT_TRUE(IsBeforeCutover(Step::kCopyingRuntime));
  EXPECT_FALSE(IsBeforeCutover(Step::kFlippingRouting));
  EXPECT_FALSE(IsBeforeCutover(Step::kUnblockingWrites));
  EXPECT_FALSE(IsBeforeCutover(Step::kAborted));
  for (Step t : {Step::kCompleted, Step::kAborted, Step::kFailed}) EXPECT_TRUE(IsTerminal(t));
}

// The whole transition table, cell by cell.
TEST(Steps, TransitionTable) {
  for (Step from : kAll) {
    for (Step to : kAll) {
      bool expected = false;
      if (from == Step::kFailed) {
        expected = !IsTerminal(to);  // repair
      } else if (!IsTerminal(from)) {
        if (to == Step::kAborted) {
          expected = StepIndex(from) < StepIndex(Step::kFlippingRouting);
        } else if (to == Step::kFailed) {
          expected = true;
        } else {
          expected = StepIndex(to) == StepIndex(from) + 1;
        }
      }
      EXPECT_EQ(IsLegalTransition(from, to), expected) << StepName(from) << " -> " << StepName(to);
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
