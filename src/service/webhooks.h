#pragma once

#include <curl/curl.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "config/config.h"
#include "store/control_store.h"

namespace regionmove {

// Delivers the control store's webhook outbox to the configured receivers (SPEC §7): each
// event POSTed as signed JSON, at least once, in order per app (an app's next event waits
// until its previous one is delivered or given up), retried with exponential backoff until
// the webhook's give_up_after_seconds. Positions and delivery states live in the store, so a
// restart (or another process taking over) resumes where the last one stopped. One process of
// a deployment runs it at a time (System holds the "webhooks" lease). Not thread-safe.
class WebhookDispatcher {
 public:
  WebhookDispatcher(ControlStore* store, Clock* clock, Metrics* metrics,
                    std::vector<WebhookConfig> hooks);
  ~WebhookDispatcher();

  // Gives each webhook a position in the outbox (its end, unless it has one). Run before
  // serving, so that a new webhook hears of everything from its first start.
  Status StartAll();
  // Queues what is new in the outbox and attempts every due delivery, until nothing is due or
  // `keep_going` (asked before each attempt: renew the lease there) says no. Returns how many
  // attempts it made.
  Result<int> RunOnce(const std::function<bool()>& keep_going);
  // The longest one attempt can take (the largest timeout_ms).
  int64_t max_attempt_ms() const;

  // An event as receivers see it: {id, type, created_at, app_id, migration_id, data} (also the
  // entries of GET /v1/events).
  static nlohmann::json Payload(const WebhookEvent& e);
  // The body and headers of one delivery attempt (exposed for tests).
  static std::string Body(const WebhookEvent& e);
  // "sha256=" + hex HMAC-SHA256 of "<timestamp>.<body>" under `secret`.
  static std::string Signature(const std::string& secret, int64_t timestamp,
                               const std::string& body);

 private:
  // One POST; the HTTP status (0 when none came back) and, on failure, why.
  std::pair<int, std::string> Post(const WebhookConfig& hook, const WebhookEvent& e);

  ControlStore* store_;
  Clock* clock_;
  Metrics* metrics_;
  std::vector<WebhookConfig> hooks_;
  CURL* curl_ = nullptr;  // one handle: its connections are kept alive between deliveries
};

}  // namespace regionmove
