#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace regionmove {

// The deepest nesting of arrays and objects a request may have. Deeper input is refused
// before parsing: copying or destroying a JSON value recurses once per level, so a hostile
// body of a few kilobytes of '[' would otherwise exhaust the stack.
inline constexpr int kMaxJsonDepth = 100;

// True when the nesting of `text` (counted outside strings) never exceeds `max_depth`.
// Does not validate the JSON itself.
bool JsonDepthWithin(std::string_view text, int max_depth = kMaxJsonDepth);

// True when no number in `j` is infinite or NaN (a literal like 1e999999 parses to infinity).
bool JsonNumbersFinite(const nlohmann::json& j);

// j.dump() that never throws: bytes that are not UTF-8 in a string become U+FFFD. Every JSON
// that leaves the process or is stored goes through this, so that no text can stop a request
// or a step.
std::string DumpJson(const nlohmann::json& j, int indent = -1);

}  // namespace regionmove
