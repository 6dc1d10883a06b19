#pragma once

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.h"
#include "domain/app.h"
#include "service/migration_service.h"
#include "service/token_cache.h"
#include "store/control_store.h"

namespace regionmove::http {

// The authenticated caller. Admins act for every owner.
struct Caller {
  User user;
  std::string owner() const { return user.admin ? std::string() : user.name; }
};

// Bearer token -> user. Unauthorized (401) when missing or unknown.
Result<Caller> Authenticate(TokenCache* tokens, const httplib::Request& req);
// Authenticate, then 403 unless the caller is an admin.
Result<Caller> RequireAdmin(TokenCache* tokens, const httplib::Request& req);
// Refuses (400 invalid_request) a request whose path, query parameters or header values are
// not valid UTF-8: everything the API keeps or echoes must be text.
Status CheckRequestText(const httplib::Request& req);
// 413 payload_too_large for a body over `max_bytes`.
Status PayloadTooLarge(int64_t max_bytes);
// 400 invalid_request naming the first field of the object `body` that is not in `allowed`,
// with a "did you mean" when one is close; 400 when `body` is not an object.
Status CheckFields(const nlohmann::json& body, const std::vector<std::string>& allowed,
                   const std::string& what = "field");

// The request body as JSON: invalid_json (400) saying what is wrong; an empty body is {}.
Result<nlohmann::json> ParseJsonBody(const httplib::Request& req);

// Field readers: InvalidArgument naming the field when missing (if required) or ill-typed.
Result<std::string> StringField(const nlohmann::json& body, const char* name, bool required);
Result<bool> BoolField(const nlohmann::json& body, const char* name, bool fallback);
// A non-negative integer query parameter with a default and a maximum.
Result<int> IntParam(const httplib::Request& req, const char* name, int fallback, int max);
Result<int64_t> Int64Param(const httplib::Request& req, const char* name, int64_t fallback,
                           int64_t max);

void Reply(httplib::Response& res, int status, const nlohmann::json& body);
void ReplyError(httplib::Response& res, const Status& s);

// The 503 of SPEC §6 for a write to `app_id`: `{error: app_migrating, message, migration_id,
// step}` with Retry-After estimated from the blocking migration's progress; without one (a
// database still fenced by a migration that needs repair) Retry-After is 60.
void ReplyAppMigrating(httplib::Response& res, MigrationService* ms, const std::string& app_id,
                       const std::optional<Migration>& blocker);

Status Unauthorized(const std::string& why);
Status Forbidden(const std::string& why);

}  // namespace regionmove::http
