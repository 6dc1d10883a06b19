#include "saga/backoff.h"

#include <algorithm>

namespace regionmove {

int64_t BackoffDelayMs(const BackoffPolicy& policy, int retry, Rng& rng) {
  int shift = std::clamp(retry - 1, 0, 30);
  int64_t d = std::min(policy.cap_ms, policy.base_ms << shift);
  return rng.Uniform(d / 2, d);
}

}  // namespace regionmove
