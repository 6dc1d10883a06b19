#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "config/config.h"
#include "dataplane/blob_store.h"

namespace regionmove::s3 {

struct Response {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names in lowercase
};

// A request to one object (or the bucket, key empty). Query values are raw (encoded here).
struct Request {
  std::string method = "GET";
  std::string key;
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // names in lowercase; signed with the request
  std::string_view body;
};

// An S3-compatible endpoint: requests signed with AWS Signature V4 (libcurl carries them).
// Requests are retried with exponential backoff on connection errors, 5xx and throttling
// (every request this engine sends is idempotent). Thread-safe.
class Client {
 public:
  // Credentials from the config, else from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
  static Result<std::unique_ptr<Client>> Make(const EngineConfig& config);

  // Any answer that arrived (the caller reads its status); an error when none did.
  Result<Response> Send(const Request& req) const;
  // A streamed GET of `key` from `offset` on (`size`: the object's size). NotFound on 404.
  Result<std::unique_ptr<BlobReader>> Get(const std::string& key, int64_t offset,
                                          int64_t size) const;

  const std::string& bucket() const { return bucket_; }
  const std::string& access_key_id() const { return access_key_; }

  // The parts of Signature V4 (exposed for tests against AWS's published examples).
  static std::string UriEncode(std::string_view s, bool keep_slash);
  // The Authorization header's value for a request to `host` + `path` (already encoded) at
  // `amz_date` (YYYYMMDD'T'HHMMSS'Z'), with `headers` (lowercase names, host included).
  static std::string Authorization(const std::string& access_key, const std::string& secret_key,
                                   const std::string& region, const std::string& method,
                                   const std::string& path, const std::string& canonical_query,
                                   const std::map<std::string, std::string>& headers,
                                   const std::string& payload_sha256, const std::string& amz_date);

 private:
  Client() = default;
  struct Prepared;
  Prepared Prepare(const Request& req, const std::string& payload_sha256) const;

  std::string scheme_, host_;  // host_ with ":port" when the URL gives one
  std::string bucket_, region_, access_key_, secret_key_;
  bool path_style_ = true;
};

// The text of every <tag>…</tag> in an S3 XML answer, unescaped, in order.
std::vector<std::string> XmlValues(const std::string& xml, const std::string& tag);

}  // namespace regionmove::s3
