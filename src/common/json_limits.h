#pragma once

#include <string_view>

namespace regionmove {

// The deepest nesting of arrays and objects a request may have. Deeper input is refused
// before parsing: copying or destroying a JSON value recurses once per level, so a hostile
// body of a few kilobytes of '[' would otherwise exhaust the stack.
inline constexpr int kMaxJsonDepth = 100;

// True when the nesting of `text` (counted outside strings) never exceeds `max_depth`.
// Does not validate the JSON itself.
bool JsonDepthWithin(std::string_view text, int max_depth = kMaxJsonDepth);

}  // namespace regionmove
