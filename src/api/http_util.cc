#include "api/http_util.h"

#include "api/views.h"
#include "common/hash.h"
#include "common/json_limits.h"
#include "common/text.h"

namespace regionmove::http {

using nlohmann::json;

Status Unauthorized(const std::string& why) {
  return Status(StatusCode::kPermanent, why, "unauthorized");
}
Status Forbidden(const std::string& why) {
  return Status(StatusCode::kPermanent, why, "forbidden");
}

Result<Caller> Authenticate(TokenCache* tokens, const httplib::Request& req) {
  std::string auth = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (auth.size() <= prefix.size() || auth.compare(0, prefix.size(), prefix) != 0) {
    return Unauthorized("missing bearer token (Authorization: Bearer <token>)");
  }
  auto user = tokens->UserForTokenHash(Sha256Hex(auth.substr(prefix.size())));
  if (!user.ok()) return Unauthorized("unknown token");
  return Caller{*user};
}

Result<Caller> RequireAdmin(TokenCache* tokens, const httplib::Request& req) {
  ASSIGN_OR_RETURN(Caller c, Authenticate(tokens, req));
  if (!c.user.admin) return Forbidden("admin token required");
  return c;
}

Status CheckRequestText(const httplib::Request& req) {
  if (!IsValidUtf8(req.path)) return InvalidArgument("the request path is not valid UTF-8");
  for (const auto& [k, v] : req.params) {
    if (!IsValidUtf8(k) || !IsValidUtf8(v)) {
      return InvalidArgument("query parameter '" + SanitizeUtf8(k) + "' is not valid UTF-8");
    }
  }
  for (const auto& [k, v] : req.headers) {
    if (!IsValidUtf8(k) || !IsValidUtf8(v)) {
      return InvalidArgument("header '" + SanitizeUtf8(k) + "' is not valid UTF-8");
    }
  }
  return Status::Ok();
}

Status PayloadTooLarge(int64_t max_bytes) {
  return Status(StatusCode::kInvalidArgument,
                "request body is larger than " + std::to_string(max_bytes) + " bytes",
                "payload_too_large");
}

Status CheckFields(const json& body, const std::vector<std::string>& allowed,
                   const std::string& what) {
  if (!body.is_object()) return InvalidArgument("the body must be a JSON object");
  for (const auto& [key, value] : body.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string known;
    for (const auto& a : allowed) known += (known.empty() ? "" : ", ") + a;
    return InvalidArgument("unknown " + what + " '" + SanitizeUtf8(key) + "'" +
                           DidYouMean(key, allowed) +
                           (known.empty() ? "; none is accepted" : "; accepted: " + known));
  }
  return Status::Ok();
}

Result<json> ParseJsonBody(const httplib::Request& req) {
  if (req.body.empty()) return json::object();
  if (!JsonDepthWithin(req.body)) {
    return InvalidArgument("JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels",
                           "invalid_json");
  }
  try {
    json body = json::parse(req.body);
    if (!JsonNumbersFinite(body)) {
      return InvalidArgument("a number in the body is out of range", "invalid_json");
    }
    return body;
  } catch (const json::parse_error& e) {
    // The parser's text quotes the offending input, which may not be UTF-8.
    std::string what = e.what();
    size_t colon = what.find(": ");
    return InvalidArgument("malformed JSON at byte " + std::to_string(e.byte) + ": " +
                               SanitizeUtf8(colon == what.npos ? what : what.substr(colon + 2)),
                           "invalid_json");
  } catch (const std::exception&) {
    return InvalidArgument("malformed JSON", "invalid_json");
  }
}

Result<std::string> StringField(const json& body, const char* name, bool required) {
  if (!body.is_object()) return InvalidArgument("the body must be a JSON object");
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) {
    if (required) return InvalidArgument(std::string("field '") + name + "' is required");
    return std::string();
  }
  if (!it->is_string())
    return InvalidArgument(std::string("field '") + name + "' must be a string");
  return it->get<std::string>();
}

Result<bool> BoolField(const json& body, const char* name, bool fallback) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    return InvalidArgument(std::string("field '") + name + "' must be a boolean");
  }
  return it->get<bool>();
}

Result<int> IntParam(const httplib::Request& req, const char* name, int fallback, int max) {
  ASSIGN_OR_RETURN(int64_t n, Int64Param(req, name, fallback, max));
  return static_cast<int>(n);
}

Result<int64_t> Int64Param(const httplib::Request& req, const char* name, int64_t fallback,
                           int64_t max) {
  if (!req.has_param(name)) return fallback;
  std::string v = req.get_param_value(name);
  if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgument(std::string("parameter '") + name + "' must be a non-negative integer");
  }
  int64_t n = std::stoll(v);
  if (n > max) {
    return InvalidArgument(std::string("parameter '") + name + "' must be at most " +
                           std::to_string(max));
  }
  return n;
}

void Reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(DumpJson(body), "application/json");
}

void ReplyError(httplib::Response& res, const Status& s) {
  Reply(res, HttpStatusFor(s), ErrorJson(s));
}

void ReplyAppMigrating(httplib::Response& res, MigrationService* ms, const std::string& app_id,
                       const std::optional<Migration>& blocker) {
  json body = {{"error", "app_migrating"}};
  if (blocker) {
    const Migration& m = *blocker;
    res.set_header("Retry-After", std::to_string(ms->RetryAfterSeconds(m)));
    body["message"] = "app " + app_id + " is moving from " + m.source_region + " to " +
                      m.dest_region + "; writes are paused until the move finishes";
    body["migration_id"] = m.id;
    body["step"] = StepName(m.current_step);
  } else {
    res.set_header("Retry-After", "60");
    body["message"] = "writes to app " + app_id + " are paused";
  }
  Reply(res, 503, body);
}

}  // namespace regionmove::http
