#pragma once

#include <atomic>
#include <memory>
#include <thread>

#include "common/metrics.h"
#include "config/config.h"
#include "dataplane/data_plane.h"
#include "saga/engine.h"
#include "service/app_service.h"
#include "service/migration_service.h"
#include "service/token_cache.h"
#include "service/webhooks.h"
#include "store/control_store.h"

namespace regionmove {

// Everything of one regionmove process, wired from a Config: control store, data plane, saga
// engine with the real steps, and the services. Start() runs the workers, a background loop
// that applies replication changes and the replica retention policy, and the webhook
// deliveries.
class System {
 public:
  // `clock` and `rng` are borrowed and must outlive the System.
  static Result<std::unique_ptr<System>> Open(const Config& config, Clock* clock, Rng* rng);
  ~System();

  // Starts the saga workers and the replication/retention loop. With `background` false,
  // nothing runs in the background (an API-only process; `regionmove worker` does the work).
  void Start(bool background = true);
  void Stop();

  const Config& config() const { return config_; }
  ControlStore* store() { return store_.get(); }
  DataPlane* plane() { return plane_.get(); }
  Engine* engine() { return engine_.get(); }
  MigrationService* migrations() { return migrations_.get(); }
  AppService* apps() { return apps_.get(); }
  TokenCache* tokens() { return tokens_.get(); }
  Clock* clock() { return clock_; }
  FaultPoints* faults() { return &faults_; }
  Metrics* metrics() { return &metrics_; }

 private:
  System(Config config, Clock* clock) : config_(std::move(config)), clock_(clock) {}
  // Removes the webhook outbox's entries past their retention (a week, or twice the longest
  // retry window of a webhook), with their deliveries.
  Status PruneOutbox();

  Config config_;
  Clock* clock_;
  std::unique_ptr<SyncedClock> synced_clock_;  // with a shared (PostgreSQL) control store
  FaultPoints faults_;
  Metrics metrics_;
  std::unique_ptr<ControlStore> store_;
  std::unique_ptr<DataPlane> plane_;
  StepRegistry registry_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<MigrationService> migrations_;
  std::unique_ptr<AppService> apps_;
  std::unique_ptr<TokenCache> tokens_;
  std::unique_ptr<WebhookDispatcher> webhooks_;  // when the config has [[webhooks]]
  std::atomic<bool> stop_{false};
  std::thread background_;
  std::thread webhook_thread_;
};

}  // namespace regionmove
