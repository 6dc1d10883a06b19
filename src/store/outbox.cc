#include "store/outbox.h"

#include <nlohmann/json.hpp>

#include "common/ids.h"
#include "common/text.h"

namespace regionmove::store {

namespace {

WebhookEvent NewEvent(std::string type, const std::string& app_id, const std::string& migration_id,
                      int64_t now_ms, nlohmann::json data) {
  static Rng rng = Rng::FromEntropy();
  WebhookEvent e;
  e.id = "evt_" + NewUuidV4(rng);
  e.type = std::move(type);
  e.app_id = app_id;
  e.migration_id = migration_id;
  e.created_at_ms = now_ms;
  e.data = data.dump();
  return e;
}

}  // namespace

std::vector<WebhookEvent> MigrationWriteEvents(const Migration& m, std::optional<Step> from,
                                               bool flip) {
  std::vector<WebhookEvent> out;
  if (from && *from == m.current_step && !flip) return out;
  nlohmann::json data = {{"kind", m.kind},
                         {"strategy", m.strategy},
                         {"source_region", m.source_region},
                         {"dest_region", m.dest_region},
                         {"step", StepName(m.current_step)},
                         {"writes_blocked", m.writes_blocked()}};
  if (m.kind == "reverse") {
    data["reverse_of"] = m.reverse_of;
    data["reverse_path"] = m.reverse_path;
  }
  auto add = [&](const char* type, nlohmann::json d) {
    out.push_back(NewEvent(type, m.app_id, m.id, m.updated_at_ms, std::move(d)));
  };
  if (!from) {
    add("migration.started", data);
    return out;
  }
  data["from_step"] = StepName(*from);
  if (flip) add("migration.cutover", data);
  if (m.current_step == Step::kCompleted) {
    add("migration.completed", data);
  } else if (m.current_step == Step::kAborted || m.current_step == Step::kFailed) {
    data["stopped_at"] = StepName(m.stopped_at);
    data["error"] = m.last_error;
    if (m.current_step == Step::kFailed) data["needs_repair"] = m.needs_repair;
    add(m.current_step == Step::kAborted ? "migration.aborted" : "migration.failed", data);
  } else if (*from != m.current_step) {
    add("migration.step_changed", data);
    if (m.writes_blocked() && !m.plan().WritesBlocked(*from)) add("migration.writes_blocked", data);
  }
  return out;
}

WebhookEvent ReplicaEvent(std::string type, const std::string& app_id,
                          const std::string& migration_id, const std::string& region,
                          int64_t now_ms) {
  return NewEvent(std::move(type), app_id, migration_id, now_ms, {{"region", region}});
}

bool BlocksOrUnblocks(const Migration& m, Step from) {
  return m.plan().WritesBlocked(from) != m.writes_blocked();
}

bool TypeMatches(const std::vector<std::string>& patterns, std::string_view type) {
  for (const auto& p : patterns) {
    if (GlobMatch(p, type)) return true;
  }
  return false;
}

}  // namespace regionmove::store
