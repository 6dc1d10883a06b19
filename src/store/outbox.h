#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/integration.h"
#include "domain/migration.h"

// What every ControlStore engine writes beside a state change for the rest of the platform:
// the webhook outbox entries it announces and whether it bumps the routing version. Engines
// call these inside the transaction of the change, so the announcement commits with it.
namespace regionmove::store {

// The events of a write of migration `m` (as written): `from` is its step before the write,
// nullopt when the write creates it; `flip` when the write is the routing flip.
std::vector<WebhookEvent> MigrationWriteEvents(const Migration& m, std::optional<Step> from,
                                               bool flip);
// replica.torn_down or replica.diverged of the replica of migration `migration_id`.
WebhookEvent ReplicaEvent(std::string type, const std::string& app_id,
                          const std::string& migration_id, const std::string& region,
                          int64_t now_ms);
// Whether a write of `m` from step `from` blocks or unblocks the app's writes.
bool BlocksOrUnblocks(const Migration& m, Step from);

// Glob match of an event type against a webhook's patterns ('*' any run, '?' one character).
bool TypeMatches(const std::vector<std::string>& patterns, std::string_view type);

}  // namespace regionmove::store
