#pragma once

#include <optional>
#include <string_view>

namespace regionmove {

// The dashboard's static files (ui/ of the source tree, built into the binary): the bytes of
// the file `name` ("index.html", "app.js", ...), nullopt when there is none.
std::optional<std::string_view> UiAsset(std::string_view name);

}  // namespace regionmove
