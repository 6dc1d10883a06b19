#include "saga/engine.h"

#include <optional>

#include "common/log.h"
#include "saga/lease_keeper.h"

namespace regionmove {

// ---------------------------------------------------------------- StepContext

StepContext::StepContext(Engine* engine, Migration m)
    : engine_(engine), m_(std::move(m)), epoch_(m_.epoch) {
  last_heartbeat_ms_ = engine_->clock_->NowMs();
}

ControlStore* StepContext::store() const { return engine_->store_; }
Clock* StepContext::clock() const { return engine_->clock_; }

Status StepContext::Persist() {
  m_.lease_expires_at_ms = clock()->NowMs() + engine_->options_.lease_ms;
  m_.updated_at_ms = clock()->NowMs();
  Status s = store()->UpdateMigration(m_, epoch_, {});
  if (s.reason() == "fenced") lease_lost_ = true;
  if (s.ok()) last_heartbeat_ms_ = clock()->NowMs();
  return lease_lost_ ? Cancelled("lease lost: " + s.message()) : s;
}

Status StepContext::SaveResources() { return Persist(); }

Status StepContext::ReportProgress(int64_t bytes_done, int64_t bytes_total, int64_t items_done,
                                   int64_t items_total) {
  m_.progress = Progress{bytes_done, bytes_total, items_done, items_total};
  int64_t now = clock()->NowMs();
  if (last_progress_ms_ == INT64_MIN / 2 && bytes_total < kSmallStepBytes) {
    last_progress_ms_ = now;  // no write yet: the next report a progress interval later
  }
  if (now - last_progress_ms_ >= engine_->options_.progress_interval_ms) {
    last_progress_ms_ = now;
    RETURN_IF_ERROR(Persist());
  }
  return Checkpoint();
}

Status StepContext::Checkpoint() {
  if (lease_lost_) return Cancelled("lease lost");
  const EngineOptions& o = engine_->options_;
  int64_t now = clock()->NowMs();
  if (now - last_heartbeat_ms_ >= o.lease_ms / 3) {
    Status s = store()->Heartbeat(m_.id, epoch_, now + o.lease_ms);
    if (s.reason() == "fenced") {
      lease_lost_ = true;
      return Cancelled("lease lost");
    }
    if (s.ok()) last_heartbeat_ms_ = now;
  }
  if (!m_.cutover_committed && now - last_abort_check_ms_ >= o.abort_poll_ms) {
    last_abort_check_ms_ = now;
    auto fresh = store()->GetMigration(m_.id);
    if (fresh.ok()) {
      if (fresh->epoch != epoch_) {
        lease_lost_ = true;
        return Cancelled("lease lost");
      }
      if (fresh->abort_requested) {
        m_.abort_requested = true;
        return Cancelled("abort requested");
      }
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- Engine

Result<std::unique_ptr<Engine>> Engine::Make(ControlStore* store, const StepRegistry* registry,
                                             Clock* clock, Rng* rng, EngineOptions options) {
  if (!store || !registry || !clock || !rng) return InvalidArgument("engine dependency missing");
  RETURN_IF_ERROR(registry->Validate());
  if (options.max_attempts < 1) return InvalidArgument("saga.max_attempts must be at least 1");
  if (options.lease_ms < 3) return InvalidArgument("saga.lease_seconds must be positive");
  if (options.max_concurrent < 1 || options.max_concurrent_per_region < 1) {
    return InvalidArgument("saga concurrency caps must be at least 1");
  }
  return std::unique_ptr<Engine>(new Engine(store, registry, clock, rng, options));
}

Engine::~Engine() { Stop(); }

void Engine::Start(int workers) {
  stop_ = false;
  for (int i = 0; i < workers; ++i) {
    threads_.emplace_back([this] {
      while (!stop_.load()) {
        auto worked = CatchAll("saga worker", [&] { return Turn(/*chain=*/true); });
        if (!worked.ok()) {
          Log(LogLevel::kWarn, "saga_worker_error", {{"error", worked.status().ToString()}});
          clock_->SleepMs(options_.idle_poll_ms);
        } else if (!*worked) {
          store_->WaitForWork(options_.idle_poll_ms);
        }
      }
    });
  }
}

void Engine::Stop() {
  stop_ = true;
  for (auto& t : threads_) t.join();
  threads_.clear();
}

Result<bool> Engine::RunOnce() { return Turn(/*chain=*/false); }

Result<bool> Engine::Turn(bool chain) {
  std::string owner = options_.owner + "/" + std::to_string(next_worker_++);
  ASSIGN_OR_RETURN(auto claimed, store_->ClaimNext(owner, clock_->NowMs(), options_.lease_ms));
  if (!claimed) return false;
  const std::string id = claimed->id;
  const int64_t epoch = claimed->epoch;
  Migration m = std::move(*claimed);
  while (true) {
    Status s = RunClaimed(std::move(m), owner, chain);
    if (s.reason() == "fenced") {
      // Another worker took the migration over; it carries on from what was recorded.
      Log(LogLevel::kWarn, "saga_fenced", {{"error", s.message()}});
      return true;
    }
    RETURN_IF_ERROR(s);
    if (!chain) return true;
    // A step that went well kept the lease: the next step runs on this worker at once, without
    // a claim (a write) and a wake-up. Read back, it carries what others may have set meanwhile
    // (an abort request); a released lease, or another epoch, ends the turn.
    ASSIGN_OR_RETURN(Migration fresh, store_->GetMigration(id));
    if (fresh.epoch != epoch || fresh.lease_owner != owner || fresh.terminal()) return true;
    if (stop_.load()) {
      ReleaseLease(fresh);
      Status released = store_->UpdateMigration(fresh, epoch, {});
      if (released.reason() == "fenced") return true;
      RETURN_IF_ERROR(released);
      return true;
    }
    m = std::move(fresh);
  }
}

Result<int> Engine::Drain() {
  int n = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool worked, RunOnce());
    if (!worked) return n;
    ++n;
  }
}

Status Engine::Recorded(Status written, const MigrationEvent& e) const {
  if (written.ok()) Measure(e);
  return written;
}

MigrationEvent Engine::NewEvent(const Migration& m, std::string type) const {
  MigrationEvent e;
  e.migration_id = m.id;
  e.type = std::move(type);
  e.step = e.from_step = e.to_step = m.current_step;
  e.attempt = m.attempt + 1;
  e.started_at_ms = m.step_started_at_ms;
  e.ended_at_ms = clock_->NowMs();
  e.bytes = m.progress.bytes_done;
  return e;
}

void Engine::Measure(const MigrationEvent& e) const {
  Metrics* mx = options_.metrics;
  if (!mx) return;
  std::string step = "step=\"" + std::string(StepName(e.step)) + "\"";
  if (e.type == "transition") {
    mx->Observe("regionmove_step_duration_seconds", step,
                static_cast<double>(e.ended_at_ms - e.started_at_ms) / 1000.0);
    if (e.bytes > 0) mx->Inc("regionmove_bytes_copied_total", step, static_cast<double>(e.bytes));
  } else if (e.type == "retry" || e.type == "compensation_retry") {
    mx->Inc("regionmove_step_retries_total", step);
  }
  if (IsTerminal(e.to_step) && e.type != "abort_requested") {
    mx->Inc("regionmove_migrations_finished_total",
            "status=\"" + std::string(StepName(e.to_step)) + "\"");
  }
}

void Engine::ReleaseLease(Migration& m) const {
  m.lease_owner.clear();
  m.lease_expires_at_ms = 0;
  m.updated_at_ms = clock_->NowMs();
}

Status Engine::RunClaimed(Migration m, const std::string& owner, bool chain) {
  int64_t epoch = m.epoch;
  m.lease_owner = owner;
  if (m.compensation != Compensation::kNone) return RunCompensation(std::move(m), epoch);
  if (m.abort_requested && !m.cutover_committed) {
    return StartCompensation(std::move(m), epoch, Compensation::kAbort, "abort requested");
  }
  if (m.step_started_at_ms == 0) m.step_started_at_ms = clock_->NowMs();
  if (m.current_step == Step::kRequested) return Admit(m, epoch, chain);
  return RunStep(std::move(m), epoch, chain);
}

Status Engine::Admit(Migration& m, int64_t epoch, bool chain) {
  if (const auto* validate = registry_->Find(Step::kRequested)) {
    StepContext ctx(this, m);
    Status s = CatchAll("requested", [&] { return (*validate)(ctx); });
    if (!s.ok()) return HandleFailure(std::move(ctx.m_), epoch, s);
    m = std::move(ctx.m_);
  }
  ASSIGN_OR_RETURN(bool admitted, store_->TryAdmit(m.id, epoch, options_.max_concurrent,
                                                   options_.max_concurrent_per_region));
  if (!admitted) {
    m.next_attempt_at_ms = clock_->NowMs() + options_.queue_poll_ms;
    ReleaseLease(m);
    return store_->UpdateMigration(m, epoch, {});
  }
  m.admitted = true;
  return Advance(std::move(m), epoch, "admitted", chain);
}

Status Engine::RunStep(Migration m, int64_t epoch, bool chain) {
  Step step = m.current_step;
  const StepRegistry::StepFn* fn = registry_->Find(step);
  Status s;
  if (fn) {
    std::optional<LeaseKeeper> keeper;
    if (options_.keep_leases) keeper.emplace(store_, clock_, m.id, epoch, options_.lease_ms);
    StepContext ctx(this, std::move(m));
    Log(LogLevel::kDebug, "step_start",
        {{"migration_id", ctx.m_.id}, {"step", std::string(StepName(step))}});
    s = CatchAll(StepName(step), [&] { return (*fn)(ctx); });
    if (ctx.lease_lost_ || (keeper && keeper->lost())) {
      return Conflict("lease lost while running " + std::string(StepName(step)), "fenced");
    }
    m = std::move(ctx.m_);
  }
  if (s.code() == StatusCode::kCancelled) {
    // The stop token fired: see whether it was an abort (re-read: the flag is not ours).
    ASSIGN_OR_RETURN(Migration fresh, store_->GetMigration(m.id));
    if (fresh.epoch != epoch) return Conflict("lease lost", "fenced");
    if (fresh.abort_requested && !m.cutover_committed) {
      return StartCompensation(std::move(m), epoch, Compensation::kAbort, "abort requested");
    }
  }
  if (s.reason() == "block_budget") return BackToSync(std::move(m), epoch, s.message());
  if (s.reason() == "not_yet") return NotYet(std::move(m), epoch, s.message());
  if (!s.ok()) return HandleFailure(std::move(m), epoch, s);
  return Advance(std::move(m), epoch, "", chain);
}

void Engine::EnterStep(Migration& m, Step to) const {
  int64_t now = clock_->NowMs();
  m.current_step = to;
  m.stopped_at = to;
  m.attempt = 0;
  m.last_error.clear();
  m.step_started_at_ms = now;
  m.progress = Progress{};
  m.next_attempt_at_ms = now;
  if (to == Step::kCompleted) m.completed_at_ms = now;
  ReleaseLease(m);
}

Status Engine::NotYet(Migration m, int64_t epoch, std::string why) {
  std::vector<MigrationEvent> events;
  if (m.last_error != why) {  // recorded when the reason changes, not on every pass
    MigrationEvent e = NewEvent(m, "waiting");
    e.message = why;
    events.push_back(std::move(e));
  }
  m.last_error = std::move(why);
  m.next_attempt_at_ms = clock_->NowMs() + options_.queue_poll_ms;
  ReleaseLease(m);
  return store_->UpdateMigration(m, epoch, events);
}

Status Engine::BackToSync(Migration m, int64_t epoch, std::string why) {
  MigrationEvent e = NewEvent(m, "block_budget_exceeded");
  e.to_step = Step::kSyncing;
  e.message = why;
  EnterStep(m, Step::kSyncing);
  m.last_error = why;  // until the sync is done
  Log(LogLevel::kWarn, "block_budget_exceeded", {{"migration_id", m.id}, {"why", why}});
  return store_->UpdateMigration(m, epoch, {e});
}

Status Engine::Advance(Migration m, int64_t epoch, std::string note, bool chain) {
  Step from = m.current_step;
  Step to = *m.plan().Next(from);
  MigrationEvent e = NewEvent(m, "transition");
  e.to_step = to;
  e.message = std::move(note);
  const std::string holder = m.lease_owner;
  EnterStep(m, to);
  if (chain && !IsTerminal(to)) {
    m.lease_owner = holder;
    m.lease_expires_at_ms = clock_->NowMs() + options_.lease_ms;
  }
  Log(LogLevel::kInfo, "step_transition",
      {{"migration_id", m.id},
       {"from", std::string(StepName(from))},
       {"to", std::string(StepName(to))},
       {"duration_ms", std::to_string(e.ended_at_ms - e.started_at_ms)}});
  if (from != kCutoverStep) return Recorded(store_->UpdateMigration(m, epoch, {e}), e);

  m.cutover_committed = true;
  Status s = Recorded(store_->CommitFlip(m, epoch, {e}), e);
  if (s.reason() == "abort_won") {
    m.current_step = from;
    m.cutover_committed = false;
    return StartCompensation(std::move(m), epoch, Compensation::kAbort,
                             "abort requested before the flip committed");
  }
  return s;
}

Status Engine::HandleFailure(Migration m, int64_t epoch, const Status& error) {
  if (!m.cutover_committed && m.compensation == Compensation::kNone) {
    // An abort asked for while the step ran wins over the step's error: the migration ends
    // aborted (not failed), now (not after the retries).
    ASSIGN_OR_RETURN(Migration fresh, store_->GetMigration(m.id));
    if (fresh.epoch != epoch) return Conflict("lease lost", "fenced");
    if (fresh.abort_requested) {
      m.last_error = error.ToString();
      return StartCompensation(std::move(m), epoch, Compensation::kAbort,
                               "abort requested (the step had failed: " + error.message() + ")");
    }
  }
  m.last_error = error.ToString();
  MigrationEvent e = NewEvent(m, "retry");
  e.error = m.last_error;
  int used = m.attempt + 1;
  if (error.retryable() && used < options_.max_attempts) {
    m.attempt = used;
    m.retry_count++;
    int64_t delay = BackoffDelayMs(options_.backoff, used, *rng_);
    m.next_attempt_at_ms = clock_->NowMs() + delay;
    e.message = "retry in " + std::to_string(delay) + " ms";
    ReleaseLease(m);
    Log(LogLevel::kWarn, "step_retry",
        {{"migration_id", m.id},
         {"step", std::string(StepName(m.current_step))},
         {"attempt", std::to_string(used)},
         {"error", m.last_error}});
    return Recorded(store_->UpdateMigration(m, epoch, {e}), e);
  }
  std::string why = (error.retryable() ? "out of attempts at " : "permanent error at ") +
                    std::string(StepName(m.current_step)) + ": " + error.message();
  if (!m.cutover_committed) {
    return StartCompensation(std::move(m), epoch, Compensation::kFailure, why);
  }
  // After the cutover the saga only goes forward: keep the app on dest, wait for a repair.
  e.type = "failed";
  e.to_step = Step::kFailed;
  e.message = why + "; needs repair";
  m.stopped_at = m.current_step;
  m.current_step = Step::kFailed;
  m.needs_repair = true;
  m.completed_at_ms = clock_->NowMs();
  ReleaseLease(m);
  Log(LogLevel::kError, "migration_needs_repair", {{"migration_id", m.id}, {"error", why}});
  return Recorded(store_->UpdateMigration(m, epoch, {e}), e);
}

Status Engine::StartCompensation(Migration m, int64_t epoch, Compensation why, std::string reason) {
  MigrationEvent e = NewEvent(m, why == Compensation::kAbort ? "aborting" : "compensating");
  e.message = reason;
  if (why == Compensation::kFailure) e.error = m.last_error;
  m.compensation = why;
  m.stopped_at = m.current_step;
  m.attempt = 0;
  m.step_started_at_ms = clock_->NowMs();
  if (why == Compensation::kFailure) m.last_error = reason;
  Log(LogLevel::kInfo, "compensation_start",
      {{"migration_id", m.id},
       {"step", std::string(StepName(m.current_step))},
       {"reason", reason}});
  // Record the decision before acting on it, keeping the lease.
  m.lease_expires_at_ms = clock_->NowMs() + options_.lease_ms;
  RETURN_IF_ERROR(store_->UpdateMigration(m, epoch, {e}));
  return RunCompensation(std::move(m), epoch);
}

Status Engine::RunCompensation(Migration m, int64_t epoch) {
  std::optional<LeaseKeeper> keeper;
  if (options_.keep_leases) keeper.emplace(store_, clock_, m.id, epoch, options_.lease_ms);
  StepContext ctx(this, std::move(m));
  Status s = CatchAll("compensation", [&] { return (*registry_->compensation())(ctx); });
  if (ctx.lease_lost_ || (keeper && keeper->lost())) {
    return Conflict("lease lost during compensation", "fenced");
  }
  m = std::move(ctx.m_);
  if (s.code() == StatusCode::kCancelled) s = Unavailable(s.message());  // abort of an abort
  if (!s.ok()) {
    int used = m.attempt + 1;
    MigrationEvent e = NewEvent(m, "compensation_retry");
    e.error = s.ToString();
    if (used < options_.max_attempts) {
      m.attempt = used;
      m.retry_count++;
      m.next_attempt_at_ms = clock_->NowMs() + BackoffDelayMs(options_.backoff, used, *rng_);
      ReleaseLease(m);
      return Recorded(store_->UpdateMigration(m, epoch, {e}), e);
    }
    // Compensation itself is stuck: stop and wait for an operator's repair.
    e.type = "failed";
    e.to_step = Step::kFailed;
    e.message = "compensation out of attempts; needs repair";
    m.last_error = "compensation failed: " + s.ToString();
    m.current_step = Step::kFailed;
    m.needs_repair = true;
    m.completed_at_ms = clock_->NowMs();
    ReleaseLease(m);
    return Recorded(store_->UpdateMigration(m, epoch, {e}), e);
  }
  Step end = m.compensation == Compensation::kAbort ? Step::kAborted : Step::kFailed;
  MigrationEvent e = NewEvent(m, "compensated");
  e.to_step = end;
  e.message = end == Step::kAborted ? "aborted; the app stays in " + m.source_region
                                    : "failed; the app is back in " + m.source_region;
  m.current_step = end;
  m.completed_at_ms = clock_->NowMs();
  m.progress = Progress{};
  ReleaseLease(m);
  Log(LogLevel::kInfo, "migration_" + std::string(StepName(end)), {{"migration_id", m.id}});
  return Recorded(store_->UpdateMigration(m, epoch, {e}), e);
}

}  // namespace regionmove
