// The whole HTTP request path: request line, headers and body through the connection layer,
// routing, validation and handlers, on an embedded System. Input: the bytes of one connection.
#include <cstdint>
#include <cstdio>

#include "api/http_api.h"
#include "fuzz_system.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace regionmove;
  static HttpApi* api = [] {
    System* sys = fuzz::FuzzSystem();
    auto made = HttpApi::Make(sys, sys->metrics());
    if (!made.ok()) std::abort();
    return made->release();
  }();
  // "APP" stands for the fuzzing app's id, so that inputs reach the app routes.
  std::string app;
  fuzz::FuzzSystem(&app);
  std::string in(reinterpret_cast<const char*>(data), size);
  for (size_t at = in.find("APP"); at != std::string::npos; at = in.find("APP", at + app.size())) {
    in.replace(at, 3, app);
  }
  std::string out = api->server()->ServeBytes(in);
  // No answer may be a 500: every failure a client can cause is the client's (4xx) or a
  // refusal to serve (503).
  static int64_t seen = 0;
  if (api->internal_errors() != seen) {
    std::fprintf(stderr, "answered 5xx:\n%s\n", out.c_str());
    std::abort();
  }
  return 0;
}
