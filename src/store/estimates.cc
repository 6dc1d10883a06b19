#include "store/estimates.h"

#include <nlohmann/json.hpp>

namespace regionmove {

namespace {
// Until a move has measured them: a local disk copy of a compressed dump, and the fixed cost
// of the steps around it.
constexpr double kAssumedBytesPerSecond = 80.0 * 1024 * 1024;
constexpr double kFixedSeconds = 2.0;
constexpr int kRatesOfMoves = 20;

// What completed moves of one strategy measured (UnblockWrites records it in their resources):
// bytes copied over the seconds of their copy steps, and the mean write pause.
struct MeasuredRates {
  int moves = 0;
  double bytes_per_second = 0;         // of the copy steps
  double pause_seconds = 0;            // mean
  double paused_bytes_per_second = 0;  // bytes over the whole write pause (offline: the copy
                                       // and the steps around it)
};

MeasuredRates MeasureRates(const std::vector<Migration>& moves) {
  MeasuredRates out;
  double bytes = 0, seconds = 0, pause = 0;
  for (const auto& m : moves) {
    auto res = nlohmann::json::parse(m.resources, nullptr, false);
    if (!res.is_object() || !res.contains("measured")) continue;
    bytes += res["measured"].value("bytes", 0.0);
    seconds += res["measured"].value("copy_seconds", 0.0);
    pause += res.value("writes_paused_ms", 0.0) / 1000.0;
    ++out.moves;
  }
  if (out.moves == 0) return out;
  out.bytes_per_second = seconds > 0 ? bytes / seconds : 0;
  out.pause_seconds = pause / out.moves;
  out.paused_bytes_per_second = pause > 0 ? bytes / pause : 0;
  return out;
}

}  // namespace

Result<MoveEstimate> EstimateMove(ControlStore& store, const std::string& strategy, double bytes,
                                  int64_t max_block_seconds) {
  ASSIGN_OR_RETURN(auto recent, store.ListRecentCopies(strategy, kRatesOfMoves));
  const MeasuredRates rates = MeasureRates(recent);
  MoveEstimate e;
  e.measured_moves = rates.bytes_per_second > 0 ? rates.moves : 0;
  e.bytes_per_second = e.measured_moves > 0 ? rates.bytes_per_second : kAssumedBytesPerSecond;
  e.copy_seconds = bytes / e.bytes_per_second;
  // Offline, writes pause for the whole copy; online, for the catch-up (at most
  // saga.max_block_seconds by the lag gate), the check of the changed rows and the deltas.
  if (strategy == "online") {
    e.write_block_seconds =
        rates.moves > 0 ? rates.pause_seconds : static_cast<double>(max_block_seconds);
    e.duration_seconds = kFixedSeconds + e.copy_seconds + e.write_block_seconds;
  } else {
    // The pause of the last moves, scaled to these bytes (what they paused for, not only their
    // copy: the steps around it count too).
    e.write_block_seconds = e.measured_moves > 0 && rates.paused_bytes_per_second > 0
                                ? bytes / rates.paused_bytes_per_second
                                : kFixedSeconds + e.copy_seconds;
    e.duration_seconds = kFixedSeconds + e.copy_seconds;
  }
  return e;
}

}  // namespace regionmove
