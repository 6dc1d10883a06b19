#include "service/system.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "common/log.h"
#include "store/postgres/pg_control_store.h"
#include "store/sqlite/sqlite_control_store.h"

namespace regionmove {

namespace {

constexpr int64_t kBackgroundLeaseMs = 10'000;
// Users and tokens change only when a process starts with a new config.
constexpr int64_t kTokenCacheMs = 10'000;

// Names this process among all that share the control store.
std::string LeaseOwnerId() {
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  return std::string(host) + "/" + std::to_string(::getpid());
}

}  // namespace

Result<std::unique_ptr<System>> System::Open(const Config& config, Clock* clock, Rng* rng) {
  std::unique_ptr<System> sys(new System(config, clock));
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) return Permanent("cannot create data_dir " + config.data_dir + ": " + ec.message());
  if (const char* faults = std::getenv("REGIONMOVE_FAULTS")) {
    RETURN_IF_ERROR(sys->faults_.ArmFromSpec(faults));
    Log(LogLevel::kWarn, "faults_armed", {{"spec", faults}});
  }
  if (config.control_store_engine == "postgres") {
    PgControlStore::Options po;
    po.max_connections = static_cast<int>(config.control_store_max_connections);
    ASSIGN_OR_RETURN(auto pgs, PgControlStore::Open(config.control_store_dsn, po));
    // Every process of the deployment keeps time by the database's clock (leases, schedules).
    sys->synced_clock_ =
        std::make_unique<SyncedClock>(clock, [p = pgs.get()] { return p->DatabaseNowMs(); });
    RETURN_IF_ERROR(sys->synced_clock_->Sync());
    sys->clock_ = sys->synced_clock_.get();
    sys->store_ = std::move(pgs);
  } else {
    ASSIGN_OR_RETURN(sys->store_, SqliteControlStore::Open(config.control_store_path));
  }
  clock = sys->clock_;
  for (const auto& u : config.users) {
    RETURN_IF_ERROR(sys->store_->UpsertUser(User{u.name, u.admin}));
    RETURN_IF_ERROR(sys->store_->AddTokenHash(u.token_sha256, u.name));
  }
  ASSIGN_OR_RETURN(sys->plane_, DataPlane::Open(config, rng));
  StepDeps deps{sys->store_.get(), sys->plane_.get(), clock, &sys->config_, &sys->faults_};
  RegisterMoveSteps(&sys->registry_, deps);
  EngineOptions o;
  o.owner = LeaseOwnerId();
  o.max_attempts = config.max_attempts;
  o.lease_ms = int64_t{config.lease_seconds} * 1000;
  o.max_concurrent = config.max_concurrent;
  o.max_concurrent_per_region = config.max_concurrent_per_region;
  o.queue_poll_ms = 250;
  // Idle workers wait for the store's wake-ups; the poll is a fallback (another process's
  // changes on SQLite, a lost notification on PostgreSQL).
  o.idle_poll_ms = config.control_store_engine == "postgres" ? 1000 : 50;
  o.metrics = &sys->metrics_;
  ASSIGN_OR_RETURN(sys->engine_, Engine::Make(sys->store_.get(), &sys->registry_, clock, rng, o));
  sys->migrations_ = std::make_unique<MigrationService>(deps, rng);
  sys->apps_ = std::make_unique<AppService>(deps, sys->migrations_.get(), rng);
  sys->tokens_ = std::make_unique<TokenCache>(sys->store_.get(), clock, kTokenCacheMs);
  if (!config.webhooks.empty()) {
    sys->webhooks_ = std::make_unique<WebhookDispatcher>(sys->store_.get(), clock, &sys->metrics_,
                                                         config.webhooks);
    RETURN_IF_ERROR(sys->webhooks_->StartAll());
  }
  return sys;
}

System::~System() { Stop(); }

void System::Start(bool background) {
  if (!background) return;
  engine_->Start(config_.workers);
  stop_ = false;
  background_ = std::thread([this] {
    int64_t last_retention = 0;
    // One process of the deployment runs this loop at a time: the holder of the lease.
    const std::string owner = LeaseOwnerId();
    while (!stop_.load()) {
      auto held = store_->TryLease("background", owner, clock_->NowMs(), kBackgroundLeaseMs);
      if (!held.ok() || !*held) {
        if (!held.ok())
          Log(LogLevel::kWarn, "background_lease", {{"error", held.status().ToString()}});
        last_retention = 0;
        SystemClock::Default()->SleepMs(1000);
        continue;
      }
      Status s = CatchAll("replication pump", [&] { return migrations_->PumpReplicas(); });
      if (!s.ok()) Log(LogLevel::kWarn, "replication_pump", {{"error", s.ToString()}});
      Status t = CatchAll("teardown resume", [&] { return migrations_->ResumeTeardowns(); });
      if (!t.ok()) Log(LogLevel::kWarn, "teardown_resume", {{"error", t.ToString()}});
      if (clock_->NowMs() - last_retention > 60'000) {
        last_retention = clock_->NowMs();
        Status r = CatchAll("replica retention", [&] { return migrations_->EnforceRetention(); });
        if (r.ok()) r = CatchAll("debris", [&] { return migrations_->RetryDebris(); });
        if (r.ok()) r = CatchAll("outbox", [&] { return PruneOutbox(); });
        if (!r.ok()) Log(LogLevel::kWarn, "replica_retention", {{"error", r.ToString()}});
      }
      SystemClock::Default()->SleepMs(200);
    }
  });
  if (!webhooks_) return;
  // Deliveries have a lease of their own: a slow receiver never holds up replication.
  webhook_thread_ = std::thread([this] {
    const std::string owner = LeaseOwnerId();
    // Outlives the longest attempt by a margin; a process that died holding it is replaced
    // within this long.
    constexpr int64_t kMarginMs = 5'000;
    const int64_t lease_ms = kMarginMs + webhooks_->max_attempt_ms();
    // Asked before every attempt; renews it (a store write) once half its margin has passed,
    // so that an attempt started before the next renewal ends before the lease does.
    int64_t renewed_at = 0;
    auto hold = [&] {
      if (stop_.load()) return false;
      const int64_t now = clock_->NowMs();
      if (renewed_at > 0 && now - renewed_at < kMarginMs / 2) return true;
      auto held = store_->TryLease("webhooks", owner, now, lease_ms);
      renewed_at = held.ok() && *held ? now : 0;
      return renewed_at > 0;
    };
    while (!stop_.load()) {
      if (!hold()) {
        SystemClock::Default()->SleepMs(500);
        continue;
      }
      Result<int> n = 0;
      Status s = CatchAll("webhooks", [&] {
        n = webhooks_->RunOnce(hold);
        return n.status();
      });
      if (!s.ok()) Log(LogLevel::kWarn, "webhooks", {{"error", s.ToString()}});
      if (!s.ok() || *n == 0) SystemClock::Default()->SleepMs(100);
    }
  });
}

Status System::PruneOutbox() {
  // Kept a week, and twice as long as any webhook goes on retrying.
  int64_t keep_ms = 7 * 86'400'000LL;
  for (const auto& w : config_.webhooks)
    keep_ms = std::max(keep_ms, 2 * w.give_up_after_seconds * 1000);
  constexpr int kBatch = 1000;
  for (;;) {
    ASSIGN_OR_RETURN(int n, store_->PruneOutbox(clock_->NowMs() - keep_ms, kBatch));
    if (n < kBatch) return Status::Ok();
  }
}

void System::Stop() {
  if (engine_) engine_->Stop();
  stop_ = true;
  if (background_.joinable()) background_.join();
  if (webhook_thread_.joinable()) webhook_thread_.join();
}

}  // namespace regionmove
