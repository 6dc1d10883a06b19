#pragma once

#include <exception>
#include <string>
#include <string_view>
#include <utility>

namespace regionmove {

// The handful of error classes the whole project speaks. The saga decides retry vs
// compensation by code, never by message:
//   kUnavailable is the only retryable code; every other error is permanent for the step.
enum class StatusCode {
  kOk = 0,
  kNotFound,
  kInvalidArgument,
  kConflict,
  kUnavailable,  // transient: retry with backoff
  kPermanent,    // will not succeed by retrying
  kCancelled,    // a stop token fired (abort requested or lease lost)
  kCorruption,   // data does not verify
};

std::string_view StatusCodeName(StatusCode code);

// Status is an error code, a human message and an optional machine reason
// (the API error code such as "cutover_passed"). Cheap to copy when ok.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message, std::string reason = {}, std::string detail = {})
      : code_(code),
        message_(std::move(message)),
        reason_(std::move(reason)),
        detail_(std::move(detail)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& reason() const { return reason_; }
  // A finer machine code under the reason ("same_region" under "ineligible").
  const std::string& detail() const { return detail_; }
  bool retryable() const { return code_ == StatusCode::kUnavailable; }

  // "Conflict: message [reason]"
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string reason_;
  std::string detail_;
};

inline Status NotFound(std::string msg, std::string reason = "not_found") {
  return Status(StatusCode::kNotFound, std::move(msg), std::move(reason));
}
inline Status InvalidArgument(std::string msg, std::string reason = "invalid_request") {
  return Status(StatusCode::kInvalidArgument, std::move(msg), std::move(reason));
}
inline Status Conflict(std::string msg, std::string reason = {}) {
  return Status(StatusCode::kConflict, std::move(msg), std::move(reason));
}
inline Status Unavailable(std::string msg) {
  return Status(StatusCode::kUnavailable, std::move(msg));
}
inline Status Permanent(std::string msg) { return Status(StatusCode::kPermanent, std::move(msg)); }
inline Status Cancelled(std::string msg) { return Status(StatusCode::kCancelled, std::move(msg)); }
inline Status Corruption(std::string msg) {
  return Status(StatusCode::kCorruption, std::move(msg));
}

// Runs `fn` (returning Status or Result<T>) at a boundary where no exception may pass: a step,
// a background loop, a thread's body. An exception becomes Permanent naming `where` (a bug to
// log and report, never a reason to end the process).
template <typename Fn>
auto CatchAll(std::string_view where, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return Status(StatusCode::kPermanent,
                  "internal error in " + std::string(where) + ": " + e.what());
  } catch (...) {
    return Status(StatusCode::kPermanent, "internal error in " + std::string(where));
  }
}

}  // namespace regionmove

#define RM_CONCAT_INNER(a, b) a##b
#define RM_CONCAT(a, b) RM_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                 \
  do {                                        \
    ::regionmove::Status rm_status_ = (expr); \
    if (!rm_status_.ok()) return rm_status_;  \
  } while (0)

#define RM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  RM_ASSIGN_OR_RETURN_IMPL(RM_CONCAT(rm_result_, __COUNTER__), lhs, expr)
