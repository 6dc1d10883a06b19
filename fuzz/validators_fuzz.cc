// The validators of what the API stores: blob keys, custom domains, identifiers, ids and UTF-8.
// Checks properties, not only crashes: what a validator accepts is safe to store and echo.
#include <cstdint>
#include <cstdio>
#include <string>

#include "common/ids.h"
#include "common/json_limits.h"
#include "common/text.h"
#include "dataplane/blob_store.h"
#include "dataplane/database.h"
#include "service/app_service.h"

#define CHECK(cond)                                      \
  do {                                                   \
    if (!(cond)) {                                       \
      std::fprintf(stderr, "check failed: %s\n", #cond); \
      std::abort();                                      \
    }                                                    \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace regionmove;
  std::string s(reinterpret_cast<const char*>(data), size);
  bool utf8 = IsValidUtf8(s);
  std::string clean = SanitizeUtf8(s);
  CHECK(IsValidUtf8(clean));
  CHECK(!utf8 || clean == s);
  if (ValidateBlobKey(s).ok()) {
    CHECK(utf8 && !s.empty() && s.size() <= 1024 && s.find('\0') == std::string::npos);
    CHECK(s[0] != '/' && s != ".." && s.find("/../") == std::string::npos);
    CHECK(s.rfind("../", 0) != 0 && (s.size() < 3 || s.substr(s.size() - 3) != "/.."));
  }
  if (ValidateCustomDomain(s, "apps.localhost").ok()) {
    const std::string suffix = ".apps.localhost";
    CHECK(s.size() <= 253 && s != "apps.localhost");
    CHECK(s.size() < suffix.size() || s.compare(s.size() - suffix.size(), suffix.size(), suffix));
    for (char c : s)
      CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.');
  }
  if (IsValidIdentifier(s)) CHECK(s.size() <= 63 && utf8);
  if (IsValidAppId(s)) CHECK(s.size() == 16);
  if (IsValidUuid(s)) CHECK(s.size() == 36);
  (void)NearestName(s, {"listen", "data_dir", "max_body_bytes"});
  (void)JsonDepthWithin(s);
  nlohmann::json j = nlohmann::json::parse(s, nullptr, false);
  if (!j.is_discarded()) (void)DumpJson(j);
  return 0;
}
