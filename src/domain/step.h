#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace regionmove {

// The steps of a migration, in order (SPEC §2), followed by the two terminal states that are
// not reached by walking forward. kCompleted is both the last step and a terminal state.
enum class Step {
  kRequested = 0,
  kReservingDest,
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

// The 11 steps of the sequence (kRequested .. kCompleted).
inline constexpr int kStepCount = 11;
// The point of no return: once the flip commits the app is served from dest.
inline constexpr Step kCutoverStep = Step::kFlippingRouting;

// 0-based position in the sequence; terminal kAborted/kFailed have no position (-1).
int StepIndex(Step step);
// The step after `step` in the sequence; nullopt for terminal states.
std::optional<Step> NextStep(Step step);
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

// The legal transition table. A migration moves:
//  - forward one step at a time (never skipping, never backwards);
//  - to kAborted from any step before the cutover (after compensation);
//  - to kFailed from any non-terminal step (before the cutover only after compensation,
//    after it with needs_repair);
//  - back out of kFailed only by an admin repair, to the step it stopped at (a needs_repair
//    migration: failed after the cutover, or its compensation ran out of attempts).
bool IsLegalTransition(Step from, Step to);

// How a migration looks to a user (SPEC §7 AppMigration.status).
enum class MigrationStatus { kQueued, kRunning, kAborting, kCompleted, kAborted, kFailed };
std::string_view MigrationStatusName(MigrationStatus status);

}  // namespace regionmove
