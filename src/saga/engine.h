#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "saga/backoff.h"
#include "saga/step_registry.h"
#include "store/control_store.h"

namespace regionmove {

struct EngineOptions {
  std::string owner = "worker";  // lease owner prefix; unique per process
  int max_attempts = 5;          // per step, and for the compensation
  int64_t lease_ms = 30000;
  BackoffPolicy backoff;
  int max_concurrent = 16;            // admitted migrations, all regions
  int max_concurrent_per_region = 4;  // admitted migrations touching one region
  int64_t queue_poll_ms = 1000;       // a queued migration retries admission this often
  int64_t progress_interval_ms = 1000;
  int64_t abort_poll_ms = 250;  // how often Checkpoint() reads the abort flag
  int64_t idle_poll_ms = 100;   // worker threads sleep this long when nothing is runnable
  Metrics* metrics = nullptr;   // step durations, retries, bytes, outcomes; may be null
  // Renew leases from a background thread while steps run (LeaseKeeper), on top of the
  // heartbeats of Checkpoint(). Off for tests that stall a worker on a FakeClock on purpose.
  bool keep_leases = true;
};

class Engine;

// Handed to a step function while it runs. Owned by the engine; valid only during the call.
// Not thread-safe: use it from the step's own thread.
class StepContext {
 public:
  // The migration as the engine holds it. Steps may change `resources` and
  // `source_replica_state`; every other field belongs to the engine.
  Migration& migration() { return m_; }
  ControlStore* store() const;
  Clock* clock() const;

  // Persists the migration now (resources included), renewing the lease.
  Status SaveResources();
  // Records progress; persisted at most once per progress interval, the first report at once
  // (the total is then known from the start) unless the step has less than kSmallStepBytes to
  // copy: such a step is over in milliseconds, and its transition records where it ended.
  // Also a Checkpoint().
  Status ReportProgress(int64_t bytes_done, int64_t bytes_total, int64_t items_done = 0,
                        int64_t items_total = 0);
  // The stop token: heartbeats when due, and returns Cancelled when an abort was requested
  // (before the cutover) or the lease was lost. Copy loops call it between chunks.
  Status Checkpoint();
  bool lease_lost() const { return lease_lost_; }
  // The epoch this run holds: the fencing token of its destructive data-plane actions.
  int64_t epoch() const { return epoch_; }

 private:
  friend class Engine;
  static constexpr int64_t kSmallStepBytes = 1 << 20;
  StepContext(Engine* engine, Migration m);
  Status Persist();

  Engine* engine_;
  Migration m_;
  int64_t epoch_;
  int64_t last_heartbeat_ms_;
  int64_t last_abort_check_ms_ = INT64_MIN / 2;
  int64_t last_progress_ms_ = INT64_MIN / 2;  // last written (a small step: its first report)
  bool lease_lost_ = false;
};

// The saga engine: claims runnable migrations from the control store and drives them through
// their steps (SPEC §3). Every transition is written (with its history event) before the next
// step starts; a crashed worker's migration resumes at the recorded step once its lease expires.
//
// RunOnce() is the unit of work and is what tests drive with a FakeClock; Start() runs it on
// worker threads. Thread-safe: any number of threads (or processes sharing the store) may call
// RunOnce concurrently.
class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Make(ControlStore* store, const StepRegistry* registry,
                                              Clock* clock, Rng* rng, EngineOptions options);
  ~Engine();

  // Claims at most one runnable migration and runs its current step (or its compensation) to
  // an outcome. Returns whether a migration was claimed.
  Result<bool> RunOnce();
  // Runs RunOnce until nothing is runnable now; returns how many were processed.
  Result<int> Drain();

  // Starts `workers` threads looping on RunOnce; Stop() asks them to finish and joins them.
  void Start(int workers);
  void Stop();

  const EngineOptions& options() const { return options_; }

 private:
  friend class StepContext;
  Engine(ControlStore* store, const StepRegistry* registry, Clock* clock, Rng* rng,
         EngineOptions options)
      : store_(store), registry_(registry), clock_(clock), rng_(rng), options_(options) {}

  // One claim's work. With `chain`, a step that succeeds keeps the lease for the next step
  // (the worker goes on with it without claiming it again; see Turn()).
  Result<bool> Turn(bool chain);
  Status RunClaimed(Migration m, const std::string& owner, bool chain);
  Status Admit(Migration& m, int64_t epoch, bool chain);
  Status RunStep(Migration m, int64_t epoch, bool chain);
  // Makes `to` the migration's step, runnable now, with a fresh attempt count and progress,
  // its lease released (the caller writes it).
  void EnterStep(Migration& m, Step to) const;
  // The step is waiting on something outside the saga (an online move's lag gate): not a
  // failure, so no attempt is used; `why` is kept in last_error and the step runs again soon.
  // An abort still reaches it (the step's checkpoints).
  Status NotYet(Migration m, int64_t epoch, std::string why);
  // An online move's pause outlasted its budget (the step gave the app back to its source and
  // reset `m`'s resources): records the return to syncing, with those resources, at once.
  Status BackToSync(Migration m, int64_t epoch, std::string why);
  // Records the step done and the next one entered: its lease released, or with `chain`
  // renewed for this worker (unless the migration ended; Turn() gives it back at a stop).
  Status Advance(Migration m, int64_t epoch, std::string note, bool chain);
  Status HandleFailure(Migration m, int64_t epoch, const Status& error);
  Status StartCompensation(Migration m, int64_t epoch, Compensation why, std::string reason);
  Status RunCompensation(Migration m, int64_t epoch);
  MigrationEvent NewEvent(const Migration& m, std::string type) const;
  void ReleaseLease(Migration& m) const;
  // Records an event in the metrics (when configured).
  void Measure(const MigrationEvent& e) const;
  // Passes `written` through, measuring `e` when it was written.
  Status Recorded(Status written, const MigrationEvent& e) const;

  ControlStore* store_;
  const StepRegistry* registry_;
  Clock* clock_;
  Rng* rng_;
  EngineOptions options_;
  std::atomic<bool> stop_{false};
  std::atomic<int> next_worker_{0};
  std::vector<std::thread> threads_;
};

}  // namespace regionmove
