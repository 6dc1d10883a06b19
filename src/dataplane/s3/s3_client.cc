#include "dataplane/s3/s3_client.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <thread>

#include "common/hash.h"

namespace regionmove::s3 {

namespace {

constexpr int kAttempts = 4;  // backoff 0.1 s, 0.4 s, 1.6 s
const char* const kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string AmzDate() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t AppendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// Collects "name: value" header lines (lowercase names); a new status line starts over.
size_t AppendHeader(char* data, size_t size, size_t n, void* out) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(out);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) headers->clear();
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
      value.remove_suffix(1);
    (*headers)[name] = std::string(value);
  }
  return size * n;
}

struct Upload {
  std::string_view body;
  size_t pos = 0;
};

size_t ReadBody(char* buf, size_t size, size_t n, void* in) {
  auto* up = static_cast<Upload*>(in);
  size_t take = std::min(size * n, up->body.size() - up->pos);
  std::memcpy(buf, up->body.data() + up->pos, take);
  up->pos += take;
  return take;
}

bool Retryable(long status) { return status >= 500 || status == 429; }

void Backoff(int attempt) {
  std::this_thread::sleep_for(std::chrono::milliseconds(100 << (2 * attempt)));
}

struct CurlList {
  curl_slist* list = nullptr;
  ~CurlList() { curl_slist_free_all(list); }
  void Add(const std::string& s) { list = curl_slist_append(list, s.c_str()); }
};

void CommonOptions(CURL* c) {
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  // A transfer that moves less than 1 KiB/s for 30 s is dead; no cap on a large one's time.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
}

}  // namespace

std::string Client::UriEncode(std::string_view s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (c == '/' && keep_slash)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string Client::Authorization(const std::string& access_key, const std::string& secret_key,
                                  const std::string& region, const std::string& method,
                                  const std::string& path, const std::string& canonical_query,
                                  const std::map<std::string, std::string>& headers,
                                  const std::string& payload_sha256, const std::string& amz_date) {
  std::string canonical_headers, signed_headers;
  for (const auto& [name, value] : headers) {
    canonical_headers += name + ":" + value + "\n";
    signed_headers += (signed_headers.empty() ? "" : ";") + name;
  }
  std::string canonical = method + "\n" + path + "\n" + canonical_query + "\n" + canonical_headers +
                          "\n" + signed_headers + "\n" + payload_sha256;
  std::string day = amz_date.substr(0, 8);
  std::string scope = day + "/" + region + "/s3/aws4_request";
  std::string to_sign =
      "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" + Sha256Hex(canonical);
  std::string key = HmacSha256(
      HmacSha256(HmacSha256(HmacSha256("AWS4" + secret_key, day), region), "s3"), "aws4_request");
  return "AWS4-HMAC-SHA256 Credential=" + access_key + "/" + scope +
         ", SignedHeaders=" + signed_headers + ", Signature=" + HexEncode(HmacSha256(key, to_sign));
}

Result<std::unique_ptr<Client>> Client::Make(const EngineConfig& config) {
  InitCurlOnce();
  std::unique_ptr<Client> c(new Client());
  size_t scheme_end = config.endpoint.find("://");
  if (scheme_end == std::string::npos) {
    return InvalidArgument("s3 endpoint '" + config.endpoint + "' is not a URL", "invalid_config");
  }
  c->scheme_ = config.endpoint.substr(0, scheme_end);
  c->host_ = config.endpoint.substr(scheme_end + 3);
  while (!c->host_.empty() && c->host_.back() == '/') c->host_.pop_back();
  if (c->host_.empty() || c->host_.find('/') != std::string::npos) {
    return InvalidArgument("s3 endpoint '" + config.endpoint + "' must be scheme://host[:port]",
                           "invalid_config");
  }
  c->bucket_ = config.bucket;
  c->region_ = config.region;
  c->path_style_ = config.path_style;
  c->access_key_ = config.access_key_id;
  c->secret_key_ = config.secret_access_key;
  if (c->access_key_.empty()) {
    const char* v = std::getenv("AWS_ACCESS_KEY_ID");
    c->access_key_ = v ? v : "";
  }
  if (c->secret_key_.empty()) {
    const char* v = std::getenv("AWS_SECRET_ACCESS_KEY");
    c->secret_key_ = v ? v : "";
  }
  if (c->access_key_.empty() || c->secret_key_.empty()) {
    return InvalidArgument("s3 bucket " + config.bucket +
                               ": no credentials (access_key_id and secret_access_key, or "
                               "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
                           "invalid_config");
  }
  return c;
}

struct Client::Prepared {
  std::string url;
  std::map<std::string, std::string> headers;  // with host, x-amz-date and the signature
};

Client::Prepared Client::Prepare(const Request& req, const std::string& payload_sha256) const {
  Prepared p;
  std::string host = path_style_ ? host_ : bucket_ + "." + host_;
  std::string path = path_style_ ? "/" + UriEncode(bucket_, false) : "";
  path += "/" + UriEncode(req.key, true);
  std::string query;
  for (const auto& [k, v] : req.query) {  // std::map: sorted by name, as V4 wants
    query += (query.empty() ? "" : "&") + UriEncode(k, false) + "=" + UriEncode(v, false);
  }
  p.headers = req.headers;
  p.headers["host"] = host;
  p.headers["x-amz-date"] = AmzDate();
  p.headers["x-amz-content-sha256"] = payload_sha256;
  std::string auth = Authorization(access_key_, secret_key_, region_, req.method, path, query,
                                   p.headers, payload_sha256, p.headers["x-amz-date"]);
  p.headers["authorization"] = auth;
  p.url = scheme_ + "://" + host + path + (query.empty() ? "" : "?" + query);
  return p;
}

Result<Response> Client::Send(const Request& req) const {
  std::string payload = req.body.empty() ? kEmptySha256 : Sha256Hex(req.body);
  // One handle per thread: it keeps its connections open between requests.
  thread_local std::unique_ptr<CURL, void (*)(CURL*)> handle(curl_easy_init(), curl_easy_cleanup);
  CURL* c = handle.get();
  std::string last_error;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (attempt > 0) Backoff(attempt - 1);
    Prepared p = Prepare(req, payload);  // signed anew: the date moves on
    curl_easy_reset(c);
    CommonOptions(c);
    CurlList headers;
    for (const auto& [name, value] : p.headers) {
      if (name != "host") headers.Add(name + ": " + value);
    }
    headers.Add("Expect:");  // no 100-continue round trip
    Response res;
    Upload up{req.body};
    curl_easy_setopt(c, CURLOPT_URL, p.url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.list);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, AppendBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &res.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, AppendHeader);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &res.headers);
    if (req.method == "HEAD") {
      curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (req.method == "PUT" || req.method == "POST") {
      if (req.method == "PUT") {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
      } else {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
      }
      curl_easy_setopt(c, CURLOPT_READFUNCTION, ReadBody);
      curl_easy_setopt(c, CURLOPT_READDATA, &up);
      curl_easy_setopt(c,
                       req.method == "PUT" ? CURLOPT_INFILESIZE_LARGE : CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(req.body.size()));
    } else if (req.method != "GET") {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
      last_error = curl_easy_strerror(rc);
      continue;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res.status);
    if (Retryable(res.status) && attempt + 1 < kAttempts) {
      last_error = "HTTP " + std::to_string(res.status);
      continue;
    }
    return res;
  }
  return Unavailable("s3 " + req.method + " " + bucket_ + "/" + req.key + ": " + last_error);
}

namespace {

// A GET streamed through curl's multi interface: each Read runs the transfer until it has
// bytes, so memory stays at what one socket read brings, whatever the object's size.
class StreamReader final : public BlobReader {
 public:
  StreamReader() : multi_(curl_multi_init()), easy_(curl_easy_init()) {}
  ~StreamReader() override {
    curl_multi_remove_handle(multi_, easy_);
    curl_easy_cleanup(easy_);
    curl_multi_cleanup(multi_);
  }

  // Starts the transfer and runs it until the status is known.
  Status Start(const std::string& url, const std::map<std::string, std::string>& headers,
               const std::string& what) {
    what_ = what;
    CommonOptions(easy_);
    for (const auto& [name, value] : headers) {
      if (name != "host") headers_.Add(name + ": " + value);
    }
    curl_easy_setopt(easy_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers_.list);
    curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, OnData);
    curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this);
    curl_multi_add_handle(multi_, easy_);
    while (status_ == 0 && !done_) RETURN_IF_ERROR(Pump());
    if (status_ == 0) curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status_);
    if (status_ == 404) return NotFound(what_ + " not found");
    if (status_ != 200 && status_ != 206) {
      while (!done_) RETURN_IF_ERROR(Pump());  // the error's XML, for the message
      return Unavailable(what_ + ": HTTP " + std::to_string(status_) + " " + buf_.substr(0, 300));
    }
    return Status::Ok();
  }

  Result<size_t> Read(char* out, size_t n) override {
    while (pos_ == buf_.size() && !done_) {
      buf_.clear();
      pos_ = 0;
      RETURN_IF_ERROR(Pump());
    }
    size_t take = std::min(n, buf_.size() - pos_);
    std::memcpy(out, buf_.data() + pos_, take);
    pos_ += take;
    return take;
  }

 private:
  static size_t OnData(char* data, size_t size, size_t n, void* self) {
    auto* r = static_cast<StreamReader*>(self);
    if (r->status_ == 0) curl_easy_getinfo(r->easy_, CURLINFO_RESPONSE_CODE, &r->status_);
    r->buf_.append(data, size * n);
    return size * n;
  }

  Status Pump() {
    int running = 0;
    CURLMcode mc = curl_multi_perform(multi_, &running);
    if (mc != CURLM_OK) return Unavailable(what_ + ": " + curl_multi_strerror(mc));
    if (running == 0) {
      done_ = true;
      int left = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
        if (msg->msg == CURLMSG_DONE && msg->data.result != CURLE_OK) {
          return Unavailable(what_ + ": " + curl_easy_strerror(msg->data.result));
        }
      }
      return Status::Ok();
    }
    curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    return Status::Ok();
  }

  CURLM* multi_;
  CURL* easy_;
  CurlList headers_;
  std::string what_;
  std::string buf_;
  size_t pos_ = 0;
  long status_ = 0;
  bool done_ = false;
};

}  // namespace

Result<std::unique_ptr<BlobReader>> Client::Get(const std::string& key, int64_t offset,
                                                int64_t size) const {
  if (offset >= size && size > 0) return std::unique_ptr<BlobReader>(new StringBlobReader(""));
  Request req;
  req.key = key;
  if (offset > 0) req.headers["range"] = "bytes=" + std::to_string(offset) + "-";
  std::string what = "s3 GET " + bucket_ + "/" + key;
  Status last;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (attempt > 0) Backoff(attempt - 1);
    Prepared p = Prepare(req, kEmptySha256);
    auto reader = std::make_unique<StreamReader>();
    last = reader->Start(p.url, p.headers, what);
    if (last.ok()) return std::unique_ptr<BlobReader>(std::move(reader));
    if (last.code() == StatusCode::kNotFound) return last;
  }
  return last;
}

std::vector<std::string> XmlValues(const std::string& xml, const std::string& tag) {
  std::vector<std::string> out;
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  for (size_t at = xml.find(open); at != std::string::npos; at = xml.find(open, at)) {
    size_t start = at + open.size();
    size_t end = xml.find(close, start);
    if (end == std::string::npos) break;
    std::string v = xml.substr(start, end - start), text;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] != '&') {
        text += v[i];
        continue;
      }
      size_t semi = v.find(';', i);
      std::string ent = semi == std::string::npos ? "" : v.substr(i + 1, semi - i - 1);
      const char* rep = ent == "amp"    ? "&"
                        : ent == "lt"   ? "<"
                        : ent == "gt"   ? ">"
                        : ent == "quot" ? "\""
                        : ent == "apos" ? "'"
                                        : nullptr;
      if (rep) {
        text += rep;
        i = semi;
      } else if (!ent.empty() && ent[0] == '#') {
        long cp = ent.size() > 1 && ent[1] == 'x' ? std::strtol(ent.c_str() + 2, nullptr, 16)
                                                  : std::strtol(ent.c_str() + 1, nullptr, 10);
        text += static_cast<char>(cp);  // S3 escapes control characters only
        i = semi;
      } else {
        text += '&';
      }
    }
    out.push_back(std::move(text));
    at = end + close.size();
  }
  return out;
}

}  // namespace regionmove::s3
