#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace regionmove {

// The text rendering of an MCP tool's result: a short sentence or two that an agent can act on
// (where things stand, what to call next). `args` are the call's arguments, `body` its
// structured result.
std::string ResultSentence(const std::string& tool, const nlohmann::json& args,
                           const nlohmann::json& body, bool is_error);

}  // namespace regionmove
