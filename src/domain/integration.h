#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "domain/app.h"

namespace regionmove {

// What the rest of the platform learns from regionmove (SPEC §7 "Integration").

// One entry of the webhook outbox: a state change, written in the same transaction as the
// change it reports. `seq` orders the outbox (commit order, on every engine); `id` is the
// idempotency key receivers de-duplicate on.
struct WebhookEvent {
  int64_t seq = 0;
  std::string id;    // "evt_" + random
  std::string type;  // "migration.started", ..., "replica.torn_down"
  std::string app_id;
  std::string migration_id;
  int64_t created_at_ms = 0;
  std::string data = "{}";  // JSON object
};

inline constexpr const char* kDeliveryPending = "pending";
inline constexpr const char* kDeliveryDelivered = "delivered";
inline constexpr const char* kDeliveryFailed = "failed";  // gave up after the retry window

// The delivery of one outbox event to one configured webhook.
struct WebhookDelivery {
  std::string webhook;  // the webhook's name in the config
  WebhookEvent event;
  std::string status = kDeliveryPending;
  int attempts = 0;
  int64_t next_attempt_at_ms = 0;
  std::string last_error;
  int last_code = 0;  // HTTP status of the last attempt; 0 when none came back
  int64_t updated_at_ms = 0;
};

// Where every app lives and whether it takes writes: the routing feed's content, read in one
// transaction. `version` increases with every change of what it says (an app or a custom
// domain added or removed, a flip, a block, an unblock).
struct RoutingTable {
  int64_t version = 0;
  std::vector<App> apps;
  std::vector<Route> routes;                // every route, custom ones included
  std::vector<std::string> writes_blocked;  // ids of the apps whose writes are blocked
};

}  // namespace regionmove
