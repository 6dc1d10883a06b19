#include "api/mcp/mcp.h"

#include "api/mcp/sentences.h"
#include "common/json_limits.h"
#include "common/text.h"

namespace regionmove {

using nlohmann::json;

namespace {

constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;

json Error(const json& id, int code, const std::string& message) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

json RpcResult(const json& id, json result) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json StringProp(const std::string& description) {
  return {{"type", "string"}, {"description", description}};
}

const char* kSteps =
    "requested -> reserving_dest -> blocking_writes -> dumping_data -> restoring_data -> "
    "copying_blobs -> copying_runtime -> flipping_routing (the cutover) -> "
    "setting_up_reverse_replication -> unblocking_writes -> completed";

json Annotations(const std::string& title, bool read_only, bool destructive, bool idempotent) {
  return {{"title", title},
          {"readOnlyHint", read_only},
          {"destructiveHint", destructive},
          {"idempotentHint", idempotent},
          {"openWorldHint", false}};
}

json Tool(const std::string& name, const std::string& title, const std::string& description,
          json properties, json required, json annotations) {
  return {{"name", name},
          {"title", title},
          {"description", description},
          {"inputSchema",
           {{"type", "object"},
            {"properties", std::move(properties)},
            {"required", std::move(required)},
            {"additionalProperties", false}}},
          {"annotations", std::move(annotations)}};
}

// A tool result: a sentence to act on, and the body as JSON text and as structuredContent.
json ToolResult(const std::string& tool, const json& args, const ToolOutcome& out) {
  json structured = out.body.is_object() ? out.body : json{{"result", out.body}};
  return {{"content", json::array({{{"type", "text"},
                                    {"text", ResultSentence(tool, args, structured, out.is_error)}},
                                   {{"type", "text"}, {"text", DumpJson(out.body, 2)}}})},
          {"structuredContent", structured},
          {"isError", out.is_error}};
}

ToolOutcome ArgumentError(const std::string& message) {
  return {true, {{"error", "invalid_request"}, {"message", message}}};
}

// Reads a string argument; sets `error` naming the argument when missing or ill-typed.
std::string Arg(const json& args, const char* name, bool required,
                std::optional<ToolOutcome>* error) {
  auto it = args.find(name);
  if (it == args.end() || it->is_null()) {
    if (required && !*error) {
      *error = ArgumentError(std::string("missing required argument '") + name + "'");
    }
    return "";
  }
  if (!it->is_string()) {
    if (!*error) *error = ArgumentError(std::string("argument '") + name + "' must be a string");
    return "";
  }
  return it->get<std::string>();
}

}  // namespace

const std::vector<std::string>& McpProtocolVersions() {
  static const std::vector<std::string> kVersions = {"2025-11-25", "2025-06-18", "2025-03-26",
                                                     "2024-11-05"};
  return kVersions;
}

json McpToolList() {
  json tools = json::array();
  tools.push_back(
      Tool("list_regions", "List regions",
           "List the regions an app can live in, with their status and whether each accepts moves "
           "(accepting_moves). Call this before suggesting a destination: only a region with "
           "accepting_moves=true can receive a move.",
           json::object(), json::array(), Annotations("List regions", true, false, true)));
  tools.push_back(
      Tool("list_apps", "List apps",
           "List the caller's apps: app_id, name, region (where it is served now), status "
           "(ready, or migrating while a move runs) and size_bytes. Use it to find the app_id "
           "that move_app and the other tools need.",
           json::object(), json::array(), Annotations("List apps", true, false, true)));
  tools.push_back(Tool(
      "move_app", "Move an app to another region",
      std::string("Start moving an app to another region. Answers {migration_id, status: "
                  "\"queued\"} at once; the move then walks 11 steps: ") +
          kSteps +
          " (an online move has a 12th, syncing, after reserving_dest). Writes to the app are "
          "refused (HTTP 503 with Retry-After) from blocking_writes "
          "until unblocking_writes; reads keep working. Poll move_app_status every few seconds "
          "until status is completed, aborted or failed. Before flipping_routing the move can "
          "be aborted (manage_migrations action=abort); after it, only reversed. With "
          "dry_run=true nothing moves: the answer is the plan (sizes, estimated duration and "
          "write-block window, eligibility). Errors: invalid_region (unknown slug), not_found, "
          "invalid_strategy, ineligible with reason_code same_region, region_not_accepting, "
          "migration_in_flight, app_not_ready or insufficient_capacity.",
      {{"app_id", StringProp("The app to move (app_ + 12 characters).")},
       {"dest_region", StringProp("Destination region slug from list_regions, e.g. eu-west-1.")},
       {"strategy",
        {{"type", "string"},
         {"enum", {"offline", "online"}},
         {"description",
          "offline (default): writes pause during the whole copy. online: the copy runs while "
          "writes continue (syncing) and writes pause only for the final catch-up."}}},
       {"dry_run",
        {{"type", "boolean"},
         {"description", "Only plan the move: sizes, estimates and checks."}}}},
      {"app_id", "dest_region"},
      Annotations("Move an app to another region", false, false, false)));
  tools.push_back(Tool(
      "move_app_status", "Migration status",
      "Read one migration: current_step, status (queued, running, aborting, completed, aborted, "
      "failed), progress (step i of step_count: 11, or 12 online; bytes done and total, "
      "eta_seconds), writes_blocked, "
      "abortable, reversible, source_replica_state (replicating after a completed move: the old "
      "region is kept current for a fast reverse), retry_count and last_error.",
      {{"app_id", StringProp("The app the migration belongs to.")},
       {"migration_id", StringProp("The migration id returned by move_app or reverse.")}},
      {"app_id", "migration_id"}, Annotations("Migration status", true, false, true)));
  tools.push_back(Tool(
      "manage_migrations", "Manage migrations",
      "Operations on migrations. action=get_active (needs app_id): the app's in-flight "
      "migration, or null. action=list (needs app_id): the app's migrations, newest first. "
      "action=abort (needs app_id, migration_id): only before the cutover "
      "(abortable=true, before flipping_routing commits); the destination copy is dropped, "
      "writes resume and the migration ends aborted with the app still in its source region. "
      "After the cutover abort answers cutover_passed: use reverse. action=reverse (needs "
      "app_id, migration_id): roll back a completed move; only the app's latest completed "
      "migration, with no migration in flight (else not_reversible). It starts a new migration "
      "(kind reverse) through the same 11 steps and answers its path: fast while the source "
      "replica is replicating (no dump; seconds for small apps), slow once the replica was torn "
      "down (a full move back). action=list_source_replicas: retained replicas with size_bytes, "
      "lag_bytes and estimated_monthly_cost_usd.",
      {{"action",
        {{"type", "string"},
         {"enum", {"get_active", "list", "abort", "reverse", "list_source_replicas"}},
         {"description", "What to do."}}},
       {"app_id", StringProp("Needed by get_active, list, abort and reverse.")},
       {"migration_id", StringProp("Needed by abort and reverse.")}},
      {"action"}, Annotations("Manage migrations", false, false, false)));
  tools.push_back(Tool(
      "teardown_source_replica", "Tear down a source replica",
      "Tear down the source replica kept by a completed move: stops replication, deletes the old "
      "region's copy of the database, blobs and archived runtime, and releases its capacity, "
      "ending its monthly cost (see list_source_replicas). It cannot be undone: afterwards a "
      "reverse of that move takes the slow path (a full move back). Only a replica in state "
      "replicating can be torn down (else not_replicating).",
      {{"migration_id", StringProp("The completed move whose replica to tear down.")}},
      {"migration_id"}, Annotations("Tear down a source replica", false, true, true)));
  return tools;
}

bool McpSession::IsInitialize(const json& message) {
  return message.is_object() && message.value("method", json()) == "initialize" &&
         message.contains("id");
}

std::optional<json> McpSession::Handle(const std::string& text) {
  if (!JsonDepthWithin(text)) {
    return Error(nullptr, kParseError,
                 "Parse error: nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  json message = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (message.is_discarded()) return Error(nullptr, kParseError, "Parse error: not valid JSON");
  return HandleJson(message);
}

std::optional<json> McpSession::HandleJson(const json& message) {
  if (message.is_array()) {
    return Error(nullptr, kInvalidRequest, "Invalid Request: batches are not supported");
  }
  if (!message.is_object())
    return Error(nullptr, kInvalidRequest, "Invalid Request: not an object");
  json id = nullptr;
  bool has_id = message.contains("id");
  if (has_id) {
    const json& raw = message["id"];
    if (raw.is_string() || raw.is_number_integer()) {
      id = raw;
    } else if (!raw.is_null()) {
      return Error(nullptr, kInvalidRequest, "Invalid Request: id must be a string or an integer");
    }
  }
  if (message.value("jsonrpc", json()) != "2.0") {
    return Error(id, kInvalidRequest, "Invalid Request: jsonrpc must be \"2.0\"");
  }
  if (!message.contains("method")) {
    // A response from the client (we send no requests): nothing to answer.
    if (message.contains("result") || message.contains("error")) return std::nullopt;
    return Error(id, kInvalidRequest, "Invalid Request: method is missing");
  }
  if (!message["method"].is_string()) {
    return Error(id, kInvalidRequest, "Invalid Request: method must be a string");
  }
  std::string method = message["method"];
  json params = message.value("params", json::object());
  if (!params.is_object()) {
    return has_id ? std::optional<json>(Error(id, kInvalidParams, "params must be an object"))
                  : std::nullopt;
  }
  if (!has_id) {
    // Notifications get no answer, known or not.
    if (method == "notifications/initialized") initialized_ = !protocol_version_.empty();
    return std::nullopt;
  }
  return Dispatch(method, params, id);
}

json McpSession::Dispatch(const std::string& method, const json& params, const json& id) {
  if (method == "initialize") {
    auto v = params.find("protocolVersion");
    if (v == params.end() || !v->is_string()) {
      return Error(id, kInvalidParams, "initialize needs params.protocolVersion (a string)");
    }
    const auto& versions = McpProtocolVersions();
    std::string asked = *v;
    protocol_version_ =
        std::find(versions.begin(), versions.end(), asked) != versions.end() ? asked : versions[0];
    return RpcResult(id, {{"protocolVersion", protocol_version_},
                          {"capabilities", {{"tools", {{"listChanged", false}}}}},
                          {"serverInfo",
                           {{"name", "regionmove"}, {"title", "regionmove"}, {"version", "0.1.0"}}},
                          {"instructions",
                           "regionmove moves an app between regions. Start with list_regions, then "
                           "move_app, then poll move_app_status. Abort before the cutover; reverse "
                           "after it; tear the source replica down once the move is stable."}});
  }
  if (method == "ping") return RpcResult(id, json::object());
  if (method != "tools/list" && method != "tools/call") {
    return Error(id, kMethodNotFound, "Method not found: " + method);
  }
  if (protocol_version_.empty()) {
    return Error(id, kInvalidRequest, "Invalid Request: send initialize first");
  }
  if (method == "tools/list") return RpcResult(id, {{"tools", McpToolList()}});
  return CallTool(params, id);
}

json McpSession::CallTool(const json& params, const json& id) {
  auto name_it = params.find("name");
  if (name_it == params.end() || !name_it->is_string()) {
    return Error(id, kInvalidParams, "tools/call needs params.name (a string)");
  }
  std::string name = *name_it;
  json args = params.value("arguments", json::object());
  if (args.is_null()) args = json::object();
  if (!args.is_object()) return Error(id, kInvalidParams, "params.arguments must be an object");
  static const json kTools = McpToolList();
  auto tool =
      std::find_if(kTools.begin(), kTools.end(), [&](const json& t) { return t["name"] == name; });
  if (tool == kTools.end()) return Error(id, kInvalidParams, "Unknown tool: " + SanitizeUtf8(name));
  std::optional<ToolOutcome> err;
  // The schemas say additionalProperties: false; so does the server.
  std::vector<std::string> known;
  for (const auto& [prop, schema] : (*tool)["inputSchema"]["properties"].items()) {
    known.push_back(prop);
  }
  for (const auto& [arg, value] : args.items()) {
    if (std::find(known.begin(), known.end(), arg) == known.end()) {
      err = ArgumentError("unknown argument '" + SanitizeUtf8(arg) + "'" + DidYouMean(arg, known) +
                          (known.empty() ? "; this tool takes no arguments" : ""));
      return RpcResult(id, ToolResult(name, args, *err));
    }
  }
  ToolOutcome out;
  if (name == "list_regions") {
    out = backend_->ListRegions();
  } else if (name == "list_apps") {
    out = backend_->ListApps();
  } else if (name == "move_app") {
    std::string app = Arg(args, "app_id", true, &err);
    std::string dest = Arg(args, "dest_region", true, &err);
    std::string strategy = Arg(args, "strategy", false, &err);
    bool dry_run = false;
    if (auto d = args.find("dry_run"); d != args.end() && !d->is_null()) {
      if (!d->is_boolean()) {
        if (!err) err = ArgumentError("argument 'dry_run' must be a boolean");
      } else {
        dry_run = *d;
      }
    }
    if (!err) out = backend_->MoveApp(app, dest, strategy, dry_run);
  } else if (name == "move_app_status") {
    std::string app = Arg(args, "app_id", true, &err);
    std::string mig = Arg(args, "migration_id", true, &err);
    if (!err) out = backend_->Status(app, mig);
  } else if (name == "manage_migrations") {
    std::string action = Arg(args, "action", true, &err);
    if (err) {
      // reported below
    } else if (action == "list_source_replicas") {
      out = backend_->ListReplicas();
    } else if (action == "get_active" || action == "list") {
      std::string app = Arg(args, "app_id", true, &err);
      if (!err) out = action == "list" ? backend_->ListMigrations(app) : backend_->GetActive(app);
    } else if (action == "abort" || action == "reverse") {
      std::string app = Arg(args, "app_id", true, &err);
      std::string mig = Arg(args, "migration_id", true, &err);
      if (!err) out = action == "abort" ? backend_->Abort(app, mig) : backend_->Reverse(app, mig);
    } else {
      err = ArgumentError(
          "argument 'action' must be one of get_active, list, abort, reverse, "
          "list_source_replicas" +
          DidYouMean(action, {"get_active", "list", "abort", "reverse", "list_source_replicas"}));
    }
  } else if (name == "teardown_source_replica") {
    std::string mig = Arg(args, "migration_id", true, &err);
    if (!err) out = backend_->Teardown(mig);
  }
  return RpcResult(id, ToolResult(name, args, err ? *err : out));
}

}  // namespace regionmove
