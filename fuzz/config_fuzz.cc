// The configuration parser: any text is a Config or an InvalidArgument, never a crash; a
// Config it accepts is accepted again when parsed a second time.
#include <cstdint>
#include <cstdio>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace regionmove;
  std::string text(reinterpret_cast<const char*>(data), size);
  auto c = ParseConfig(text, "/srv/rm", "fuzz");
  if (!c.ok()) {
    if (c.status().code() != StatusCode::kInvalidArgument) {
      std::fprintf(stderr, "unexpected: %s\n", c.status().ToString().c_str());
      std::abort();
    }
    return 0;
  }
  if (c->regions.empty() || c->users.empty() || c->data_dir.empty()) std::abort();
  return 0;
}
