// The MCP JSON-RPC session: each input line is one message (as over stdio), on an embedded
// System acting as alice. Every answer must be one JSON-RPC response that serialises.
#include <cstdint>
#include <cstdio>

#include "api/mcp/mcp.h"
#include "common/json_limits.h"
#include "fuzz_system.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace regionmove;
  static std::unique_ptr<McpBackend> backend = MakeLocalBackend(fuzz::FuzzSystem(), "alice");
  McpSession session(backend.get());
  std::string_view in(reinterpret_cast<const char*>(data), size);
  while (!in.empty()) {
    size_t nl = in.find('\n');
    std::string line(in.substr(0, nl));
    in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
    std::optional<nlohmann::json> reply = session.Handle(line);
    if (!reply) continue;
    if (!reply->is_object() || (*reply)["jsonrpc"] != "2.0" ||
        (reply->contains("result") == reply->contains("error"))) {
      std::fprintf(stderr, "not a JSON-RPC response: %s\n", DumpJson(*reply).c_str());
      std::abort();
    }
    (void)DumpJson(*reply);
  }
  return 0;
}
