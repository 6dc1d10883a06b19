#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "store/control_store.h"

namespace regionmove {

// A move's copy and write pause for `bytes` of data with `strategy`, at the rates the last
// moves of that strategy measured (any process's: they are in the control store), or at
// assumed ones until a move has completed.
struct MoveEstimate {
  double copy_seconds = 0;
  double duration_seconds = 0;
  double write_block_seconds = 0;
  double bytes_per_second = 0;
  int measured_moves = 0;  // 0: the rates are assumed
};
Result<MoveEstimate> EstimateMove(ControlStore& store, const std::string& strategy, double bytes,
                                  int64_t max_block_seconds);

}  // namespace regionmove
