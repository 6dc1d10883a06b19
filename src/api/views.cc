#include "api/views.h"

#include "common/clock.h"

namespace regionmove {

using nlohmann::json;

namespace {
json TimeOrNull(int64_t ms) { return ms > 0 ? json(FormatTimeMs(ms)) : json(nullptr); }
json StrOrNull(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }
}  // namespace

json AppJson(const App& app, int64_t size_bytes) {
  return {{"app_id", app.id},
          {"name", app.name},
          {"owner", app.owner},
          {"subdomain", app.subdomain},
          {"region", app.region},
          {"status", app.status},
          {"created_at", TimeOrNull(app.created_at_ms)},
          {"routing_version", app.routing_version},
          {"size_bytes", size_bytes}};
}

json MigrationJson(const Migration& m, bool reversible, int64_t eta_seconds) {
  json resources = json::parse(m.resources, nullptr, false);
  if (!resources.is_object()) resources = json::object();
  const Plan& plan = m.plan();
  int index = plan.Index(m.current_step);
  if (index < 0) index = plan.Index(m.stopped_at);
  // The plan's steps with their labels: what a timeline shows, done, running and to come.
  json steps = json::array();
  for (Step s : plan.steps()) {
    steps.push_back(
        {{"step", StepName(s)},
         {"label", StepLabel(s, m.source_region, m.dest_region, m.reverse_path == "fast")}});
  }
  return {
      {"migration_id", m.id},
      {"app_id", m.app_id},
      {"kind", m.kind},
      {"reverse_of", StrOrNull(m.reverse_of)},
      {"path", StrOrNull(m.reverse_path)},
      {"strategy", m.strategy},
      {"source_region", m.source_region},
      {"dest_region", m.dest_region},
      {"current_step", StepName(m.current_step)},
      {"step_label",
       StepLabel(m.current_step, m.source_region, m.dest_region, m.reverse_path == "fast")},
      {"status", MigrationStatusName(m.status())},
      {"source_replica_state", m.source_replica_state},
      {"retry_count", m.retry_count},
      {"last_error", StrOrNull(m.last_error)},
      {"needs_repair", m.needs_repair},
      {"writes_blocked", m.writes_blocked()},
      // When the current pause began, and how long the pause lasted once writes resumed.
      {"writes_blocked_since", m.writes_blocked()
                                   ? TimeOrNull(resources.value("block_started_at_ms", int64_t{0}))
                                   : json(nullptr)},
      {"writes_paused_seconds", resources.contains("writes_paused_ms")
                                    ? json(resources.value("writes_paused_ms", 0.0) / 1000.0)
                                    : json(nullptr)},
      {"abortable", m.abortable()},
      {"reversible", reversible},
      {"step_started_at", TimeOrNull(m.step_started_at_ms)},
      {"initiated_at", TimeOrNull(m.initiated_at_ms)},
      {"completed_at", TimeOrNull(m.completed_at_ms)},
      {"progress",
       {{"step_index", index + 1},
        {"step_count", plan.size()},
        {"bytes_done", m.progress.bytes_done},
        {"bytes_total", m.progress.bytes_total},
        {"eta_seconds", m.terminal() ? json(0) : json(eta_seconds)},
        // An online move's replication lag as its syncing step last measured it.
        {"lag_bytes", resources.contains("sync_lag") ? resources["sync_lag"]["bytes"] : json()},
        {"lag_seconds", resources.contains("sync_lag") ? resources["sync_lag"]["seconds"] : json()},
        {"predicted_block_seconds",
         resources.contains("sync_lag")
             ? resources["sync_lag"].value("predicted_block_seconds", json())
             : json()}}},
      {"steps", steps},
      {"resources", resources}};
}

json MigrationView(MigrationService* ms, const Migration& m) {
  auto eta = ms->EtaSeconds(m);
  json j = MigrationJson(m, ms->IsReversible(m), eta.value_or(0));
  if (!eta) j["progress"]["eta_seconds"] = nullptr;
  return j;
}

json EventJson(const MigrationEvent& e) {
  return {{"seq", e.seq},
          {"type", e.type},
          {"step", StepName(e.step)},
          {"from", StepName(e.from_step)},
          {"to", StepName(e.to_step)},
          {"attempt", e.attempt},
          {"started_at", TimeOrNull(e.started_at_ms)},
          {"ended_at", TimeOrNull(e.ended_at_ms)},
          {"duration_ms", e.ended_at_ms - e.started_at_ms},
          {"error", StrOrNull(e.error)},
          {"bytes", e.bytes},
          {"message", e.message}};
}

json ReplicaJson(const ReplicaInfo& r) {
  const Migration& m = r.migration;
  return {{"migration_id", m.id},
          {"app_id", m.app_id},
          {"source_region", m.source_region},
          {"dest_region", m.dest_region},
          {"completed_at", TimeOrNull(m.completed_at_ms)},
          {"state", m.source_replica_state},
          {"size_bytes", r.size_bytes},
          {"lag_bytes", r.lag_bytes},
          {"lag_seconds", r.lag_seconds < 0 ? json(nullptr) : json(r.lag_seconds)},
          {"lag_changes", r.lag_changes < 0 ? json(nullptr) : json(r.lag_changes)},
          {"apply_errors", r.apply_errors},
          {"reason", r.reason.empty() ? json(nullptr) : json(r.reason)},
          {"estimated_monthly_cost_usd", r.estimated_monthly_cost_usd}};
}

json RegionJson(const RegionConfig& r) {
  return {{"slug", r.slug},
          {"name", r.name},
          {"status", r.status},
          {"accepting_moves", r.status == "available"}};
}

json BlobJson(const BlobInfo& b) {
  return {{"key", b.key}, {"size", b.size}, {"sha256", b.sha256}, {"content_type", b.content_type}};
}

json ErrorJson(const Status& s) {
  std::string code = s.reason();
  if (code.empty()) {
    switch (s.code()) {
      case StatusCode::kNotFound:
        code = "not_found";
        break;
      case StatusCode::kInvalidArgument:
        code = "invalid_request";
        break;
      case StatusCode::kConflict:
        code = "conflict";
        break;
      case StatusCode::kUnavailable:
        code = "unavailable";
        break;
      default:
        code = "internal";
    }
  }
  json body = {{"error", code}, {"message", s.message()}};
  if (code == "ineligible") {
    body["reason_code"] = s.detail();
    body["reason"] = s.message();
  } else if (code == "app_migrating" && !s.detail().empty()) {
    body["migration_id"] = s.detail();
  }
  return body;
}

int HttpStatusFor(const Status& s) {
  const std::string& r = s.reason();
  if (r == "unauthorized") return 401;
  if (r == "forbidden") return 403;
  if (r == "payload_too_large") return 413;
  if (r == "app_migrating") return 503;
  switch (s.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kConflict:
      return 409;
    case StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

}  // namespace regionmove
