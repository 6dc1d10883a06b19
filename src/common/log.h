#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace regionmove {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError, kOff };

// Structured logs: one line per event, logfmt ("ts=... level=info event=step_transition
// migration_id=... k=v"), written to stderr. Thread-safe.
using LogField = std::pair<std::string_view, std::string>;
void Log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields = {});
void SetLogLevel(LogLevel level);
// Parses "debug" | "info" | "warn" | "error" | "off"; unknown names give kInfo.
LogLevel ParseLogLevel(std::string_view name);

}  // namespace regionmove
