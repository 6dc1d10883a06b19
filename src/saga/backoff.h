#pragma once

#include <cstdint>

#include "common/ids.h"

namespace regionmove {

struct BackoffPolicy {
  int64_t base_ms = 1000;
  int64_t cap_ms = 60000;
};

// Delay before retry number `retry` (1-based): exponential (base * 2^(retry-1), capped) with
// "equal jitter": uniform in [d/2, d]. Never below base/2, never above cap.
int64_t BackoffDelayMs(const BackoffPolicy& policy, int retry, Rng& rng);

}  // namespace regionmove
