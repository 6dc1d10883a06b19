#include "domain/step.h"

#include <array>

namespace regionmove {

namespace {
constexpr std::array<std::string_view, 14> kNames = {
    "requested",         "reserving_dest",
    "syncing",           "blocking_writes",
    "dumping_data",      "restoring_data",
    "copying_blobs",     "copying_runtime",
    "flipping_routing",  "setting_up_reverse_replication",
    "unblocking_writes", "completed",
    "aborted",           "failed",
};
}  // namespace

const Plan& Plan::Offline() {
  static const Plan* plan = new Plan(
      {Step::kRequested, Step::kReservingDest, Step::kBlockingWrites, Step::kDumpingData,
       Step::kRestoringData, Step::kCopyingBlobs, Step::kCopyingRuntime, Step::kFlippingRouting,
       Step::kSettingUpReverseReplication, Step::kUnblockingWrites, Step::kCompleted});
  return *plan;
}

const Plan& Plan::Online() {
  static const Plan* plan =
      new Plan({Step::kRequested, Step::kReservingDest, Step::kSyncing, Step::kBlockingWrites,
                Step::kDumpingData, Step::kRestoringData, Step::kCopyingBlobs,
                Step::kCopyingRuntime, Step::kFlippingRouting, Step::kSettingUpReverseReplication,
                Step::kUnblockingWrites, Step::kCompleted});
  return *plan;
}

const Plan& Plan::For(std::string_view strategy) {
  return strategy == "online" ? Online() : Offline();
}

int Plan::Index(Step step) const {
  for (size_t i = 0; i < steps_.size(); ++i) {
    if (steps_[i] == step) return static_cast<int>(i);
  }
  return -1;
}

std::optional<Step> Plan::Next(Step step) const {
  int i = Index(step);
  if (i < 0 || i + 1 >= size()) return std::nullopt;
  return steps_[static_cast<size_t>(i) + 1];
}

bool Plan::WritesBlocked(Step step) const {
  int i = Index(step);
  return i >= 0 && i >= Index(Step::kBlockingWrites) && i <= Index(Step::kUnblockingWrites);
}

bool Plan::IsLegalTransition(Step from, Step to) const {
  if (from == Step::kFailed) return !IsTerminal(to) && Index(to) >= 0;  // admin repair
  if (IsTerminal(from)) return false;
  if (to == Step::kAborted) return IsBeforeCutover(from);
  if (to == Step::kFailed) return true;
  if (to == Step::kSyncing && Index(to) >= 0 && WritesBlocked(from) && IsBeforeCutover(from)) {
    return true;
  }
  auto next = Next(from);
  return next.has_value() && *next == to;
}

bool IsTerminal(Step step) {
  return step == Step::kCompleted || step == Step::kAborted || step == Step::kFailed;
}

bool IsBeforeCutover(Step step) {
  return !IsTerminal(step) && static_cast<int>(step) < static_cast<int>(kCutoverStep);
}

bool IsWorkStep(Step step) { return step != Step::kRequested && !IsTerminal(step); }

std::string_view StepName(Step step) { return kNames[static_cast<size_t>(step)]; }

std::optional<Step> ParseStep(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<Step>(i);
  }
  return std::nullopt;
}

std::string StepLabel(Step step, std::string_view src, std::string_view dst, bool fast) {
  std::string s(src), d(dst);
  if (fast && step == Step::kDumpingData) return "Letting the replica in " + d + " catch up";
  if (fast && step == Step::kRestoringData) {
    return "Stopping replication and verifying the replica in " + d;
  }
  if (fast && step == Step::kCopyingBlobs) return "Syncing changed files to " + d;
  switch (step) {
    case Step::kRequested:
      return "Waiting for a free migration slot";
    case Step::kReservingDest:
      return "Reserving capacity in " + d;
    case Step::kSyncing:
      return "Copying to " + d + " while writes continue";
    case Step::kBlockingWrites:
      return "Pausing writes in " + s;
    case Step::kDumpingData:
      return "Exporting the database from " + s;
    case Step::kRestoringData:
      return "Restoring and verifying the database in " + d;
    case Step::kCopyingBlobs:
      return "Copying files to " + d;
    case Step::kCopyingRuntime:
      return "Copying functions, env vars, cron and domains to " + d;
    case Step::kFlippingRouting:
      return "Switching traffic to " + d;
    case Step::kSettingUpReverseReplication:
      return "Keeping " + s + " in sync as a standby replica";
    case Step::kUnblockingWrites:
      return "Resuming writes in " + d;
    case Step::kCompleted:
      return "Done: the app is served from " + d;
    case Step::kAborted:
      return "Aborted: the app stays in " + s;
    case Step::kFailed:
      return "Failed";
  }
  return "";
}

std::string_view MigrationStatusName(MigrationStatus status) {
  switch (status) {
    case MigrationStatus::kQueued:
      return "queued";
    case MigrationStatus::kRunning:
      return "running";
    case MigrationStatus::kAborting:
      return "aborting";
    case MigrationStatus::kCompleted:
      return "completed";
    case MigrationStatus::kAborted:
      return "aborted";
    case MigrationStatus::kFailed:
      return "failed";
  }
  return "";
}

}  // namespace regionmove
