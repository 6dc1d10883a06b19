#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace regionmove {

// The steps of a migration (SPEC §2), followed by the two terminal states that are not reached
// by walking forward. kCompleted is both the last step and a terminal state. The order of the
// enum is the order of every plan (a plan may leave steps out): which steps a migration walks is
// its Plan. Only names are stored, never these numbers.
enum class Step {
  kRequested = 0,
  kReservingDest,
  kSyncing,  // online moves: copy and follow the source while it takes writes
  kBlockingWrites,
  kDumpingData,
  kRestoringData,
  kCopyingBlobs,
  kCopyingRuntime,
  kFlippingRouting,
  kSettingUpReverseReplication,
  kUnblockingWrites,
  kCompleted,
  kAborted,
  kFailed,
};

// The point of no return: once the flip commits the app is served from dest.
inline constexpr Step kCutoverStep = Step::kFlippingRouting;

// The sequence of steps a migration walks, kRequested .. kCompleted: data of its strategy.
// offline: 11 steps; online: 12 (kSyncing before the block).
class Plan {
 public:
  static const Plan& Offline();
  static const Plan& Online();
  // The plan of a strategy ("online"; anything else is offline).
  static const Plan& For(std::string_view strategy);

  int size() const { return static_cast<int>(steps_.size()); }
  const std::vector<Step>& steps() const { return steps_; }
  // 0-based position; -1 for a step the plan does not walk and for kAborted/kFailed.
  int Index(Step step) const;
  // The step after `step`; nullopt for terminal states and steps not in the plan.
  std::optional<Step> Next(Step step) const;
  // True from blocking_writes through unblocking_writes.
  bool WritesBlocked(Step step) const;
  // The legal transitions of a migration on this plan:
  //  - forward one step at a time (never skipping, never backwards);
  //  - to kAborted from any step before the cutover (after compensation);
  //  - to kFailed from any non-terminal step (before the cutover only after compensation,
  //    after it with needs_repair);
  //  - back out of kFailed only by an admin repair, to the step it stopped at (a needs_repair
  //    migration: failed after the cutover, or its compensation ran out of attempts);
  //  - back to kSyncing, on a plan that has it, from a step of the write pause before the
  //    cutover (the pause outlasted its budget: writes resume and the sync starts over).
  bool IsLegalTransition(Step from, Step to) const;

 private:
  explicit Plan(std::vector<Step> steps) : steps_(std::move(steps)) {}
  std::vector<Step> steps_;
};

bool IsTerminal(Step step);
// True for steps strictly before the cutover: an abort is still possible there.
bool IsBeforeCutover(Step step);
// True for the steps that run work (everything but kRequested and the terminals).
bool IsWorkStep(Step step);

// Wire name: "copying_blobs".
std::string_view StepName(Step step);
std::optional<Step> ParseStep(std::string_view name);

// A friendly label for people: "Copying files to eu-west-1".
// `fast` names the fast-reverse work of the data steps (catching up the replica, no dump).
std::string StepLabel(Step step, std::string_view source_region, std::string_view dest_region,
                      bool fast = false);

// How a migration looks to a user (SPEC §7 AppMigration.status).
enum class MigrationStatus { kQueued, kRunning, kAborting, kCompleted, kAborted, kFailed };
std::string_view MigrationStatusName(MigrationStatus status);

}  // namespace regionmove
