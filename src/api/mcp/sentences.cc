// The text of each MCP tool result: one or two sentences an agent can act on, naming the next
// call; the structured result travels beside it.
#include "api/mcp/sentences.h"

#include "common/text.h"

namespace regionmove {

using nlohmann::json;

namespace {

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// "a, b, c and 4 more" of at most `shown` items.
std::string Listing(const std::vector<std::string>& items, size_t shown = 10) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < shown; ++i) out += (i ? "; " : "") + items[i];
  if (items.size() > shown) out += "; and " + std::to_string(items.size() - shown) + " more";
  return out;
}

// One migration (an AppMigration) as a sentence: where it is and what can be done.
std::string MigrationSentence(const json& m) {
  const std::string id = Str(m, "migration_id"), app = Str(m, "app_id");
  const std::string from = Str(m, "source_region"), to = Str(m, "dest_region");
  const std::string status = Str(m, "status"), kind = Str(m, "kind");
  const std::string what = (kind == "reverse" ? "Reverse " : "Migration ") + id + " of " + app;
  if (status == "completed") {
    std::string s = what + " completed: the app is served from " + to;
    if (m["writes_paused_seconds"].is_number()) {
      s += "; writes were paused " + HumanSeconds(m["writes_paused_seconds"].get<double>());
    }
    if (Str(m, "source_replica_state") == "replicating") {
      s += ". The replica in " + from +
           " is kept in sync: manage_migrations action=reverse moves the app back fast while "
           "it exists; teardown_source_replica removes it once the app is stable.";
    } else {
      s += ". The replica in " + from + " is " + Str(m, "source_replica_state") +
           (m.value("reversible", false) ? "; a reverse would be a slow full move back." : ".");
    }
    return s;
  }
  if (status == "aborted" || status == "failed") {
    std::string s = what + " " + status + "; the app stays in " + from;
    if (!Str(m, "last_error").empty()) s += " (last error: " + Str(m, "last_error") + ")";
    if (m.value("needs_repair", false)) s += "; it needs an admin's repair";
    return s + ".";
  }
  const json& p = m["progress"];
  std::string s = what + " is " + (status == "queued" ? "queued, at step " : "at step ") +
                  std::to_string(p.value("step_index", 0)) + " of " +
                  std::to_string(p.value("step_count", 0)) + " (" + Str(m, "step_label");
  const int64_t total = p.value("bytes_total", int64_t{0});
  if (total > 0) {
    s += ", " + std::to_string(100 * p.value("bytes_done", int64_t{0}) / total) + "%";
  }
  s += ")";
  if (status == "aborting") return s + "; it is aborting and the app will stay in " + from + ".";
  s += m.value("writes_blocked", false) ? "; writes are paused" : "; writes are open";
  s += m.value("abortable", false)
           ? "; abort is still possible (manage_migrations action=abort)."
           : "; the cutover has passed, so it can no longer be aborted, only reversed once done.";
  return s + " Poll move_app_status until it completes.";
}

}  // namespace

std::string ResultSentence(const std::string& tool, const json& args, const json& body,
                           bool is_error) {
  if (is_error) {
    return "Refused (" + Str(body, "error") +
           (Str(body, "reason_code").empty() ? "" : "/" + Str(body, "reason_code")) +
           "): " + Str(body, "message");
  }
  const std::string action = Str(args, "action");
  if (tool == "list_regions") {
    std::vector<std::string> items;
    for (const auto& r : body["regions"]) {
      items.push_back(Str(r, "slug") + (r.value("accepting_moves", false)
                                            ? " (accepting moves)"
                                            : " (" + Str(r, "status") + ", not accepting moves)"));
    }
    return std::to_string(items.size()) + " regions: " + Listing(items, 50) + ".";
  }
  if (tool == "list_apps") {
    std::vector<std::string> items;
    for (const auto& a : body["apps"]) {
      items.push_back(Str(a, "app_id") + " '" + Str(a, "name") + "' in " + Str(a, "region") + " (" +
                      Str(a, "status") + ")");
    }
    if (items.empty()) return "You have no apps.";
    return "You have " + std::to_string(items.size()) + " app(s): " + Listing(items) +
           ". Move one with move_app (dry_run=true first shows the plan).";
  }
  if (tool == "move_app" && body.value("dry_run", false)) {
    std::vector<std::string> failed;
    for (const auto& c : body["checks"]) {
      if (!c.value("ok", false)) failed.push_back(Str(c, "message"));
    }
    const json& st = body["strategies"];
    std::string s = "Dry run: moving " + Str(body, "app_id") + " from " +
                    Str(body, "source_region") + " to " + Str(body, "dest_region") + " is " +
                    (failed.empty() ? "eligible" : "not eligible (" + Listing(failed) + ")");
    if (st.is_object() && st.contains("offline") && st.contains("online")) {
      s += "; writes would pause about " +
           HumanSeconds(st["offline"].value("estimated_write_block_seconds", 0.0)) +
           " offline or " + HumanSeconds(st["online"].value("estimated_write_block_seconds", 0.0)) +
           " online; recommended strategy: " + Str(body, "recommended_strategy");
    }
    return s + ".";
  }
  if (tool == "move_app") {
    return "Migration " + Str(body, "migration_id") + " is queued to move " + Str(args, "app_id") +
           " to " + Str(args, "dest_region") +
           ". Poll move_app_status with this migration_id; it can be aborted "
           "(manage_migrations action=abort) until flipping_routing.";
  }
  if (tool == "move_app_status") return MigrationSentence(body);
  if (tool == "manage_migrations" && action == "get_active") {
    if (body["migration"].is_null()) return Str(args, "app_id") + " has no active migration.";
    return MigrationSentence(body["migration"]);
  }
  if (tool == "manage_migrations" && action == "list") {
    std::vector<std::string> items;
    for (const auto& m : body["migrations"]) {
      items.push_back(Str(m, "migration_id") + " (" + Str(m, "kind") + " " +
                      Str(m, "source_region") + " -> " + Str(m, "dest_region") + ", " +
                      Str(m, "status") + (m.value("reversible", false) ? ", reversible" : "") +
                      ")");
    }
    if (items.empty()) return Str(args, "app_id") + " has no migrations.";
    return std::to_string(items.size()) + " migration(s) of " + Str(args, "app_id") +
           ", newest first: " + Listing(items) + ".";
  }
  if (tool == "manage_migrations" && action == "abort") {
    return "Abort of " + Str(body, "migration_id") +
           " requested: it is aborting, and the app stays in its source region. Poll "
           "move_app_status until it says aborted.";
  }
  if (tool == "manage_migrations" && action == "reverse") {
    return "Reverse " + Str(body, "migration_id") + " of " + Str(body, "reverse_of") +
           " is queued on the " + Str(body, "path") +
           " path. Poll move_app_status with this migration_id.";
  }
  if (tool == "manage_migrations" && action == "list_source_replicas") {
    std::vector<std::string> items;
    for (const auto& r : body["source_replicas"]) {
      items.push_back(Str(r, "migration_id") + ": " + Str(r, "app_id") + " in " +
                      Str(r, "source_region") + ", " + Str(r, "state") + ", " +
                      std::to_string(r.value("size_bytes", int64_t{0})) + " bytes, " +
                      HumanUsd(r.value("estimated_monthly_cost_usd", 0.0)) + "/month");
    }
    if (items.empty()) return "No retained source replicas.";
    return std::to_string(items.size()) + " retained source replica(s): " + Listing(items) +
           ". teardown_source_replica removes one (its move can then only be reversed slowly).";
  }
  if (tool == "teardown_source_replica") {
    return "The source replica of " + Str(body, "migration_id") +
           " is torn down; a reverse of that move is now a slow full move back.";
  }
  return "Done.";
}

}  // namespace regionmove
