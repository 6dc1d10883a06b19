#include "service/webhooks.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/hash.h"
#include "common/log.h"

namespace regionmove {

namespace {

constexpr int kQueueBatch = 500;
constexpr int kDueBatch = 100;

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

}  // namespace

WebhookDispatcher::WebhookDispatcher(ControlStore* store, Clock* clock, Metrics* metrics,
                                     std::vector<WebhookConfig> hooks)
    : store_(store), clock_(clock), metrics_(metrics), hooks_(std::move(hooks)) {
  curl_ = curl_easy_init();
}

WebhookDispatcher::~WebhookDispatcher() {
  if (curl_) curl_easy_cleanup(curl_);
}

Status WebhookDispatcher::StartAll() {
  for (const auto& h : hooks_) RETURN_IF_ERROR(store_->StartWebhook(h.name));
  return Status::Ok();
}

nlohmann::json WebhookDispatcher::Payload(const WebhookEvent& e) {
  nlohmann::json data = nlohmann::json::parse(e.data, nullptr, false);
  if (data.is_discarded()) data = nlohmann::json::object();
  return {{"id", e.id},
          {"type", e.type},
          {"created_at", FormatTimeMs(e.created_at_ms)},
          {"app_id", e.app_id},
          {"migration_id", e.migration_id},
          {"data", data}};
}

std::string WebhookDispatcher::Body(const WebhookEvent& e) { return Payload(e).dump(); }

std::string WebhookDispatcher::Signature(const std::string& secret, int64_t timestamp,
                                         const std::string& body) {
  return "sha256=" + HexEncode(HmacSha256(secret, std::to_string(timestamp) + "." + body));
}

std::pair<int, std::string> WebhookDispatcher::Post(const WebhookConfig& hook,
                                                    const WebhookEvent& e) {
  if (!curl_) return {0, "libcurl could not be initialised"};
  const std::string body = Body(e);
  const int64_t ts = clock_->NowMs() / 1000;
  std::vector<std::string> headers = {
      "Content-Type: application/json",
      "User-Agent: regionmove-webhooks",
      "X-Regionmove-Event: " + e.type,
      "X-Regionmove-Delivery: " + e.id,
      "X-Regionmove-Timestamp: " + std::to_string(ts),
      "X-Regionmove-Signature: " + Signature(hook.secret, ts, body),
      "Expect:",
  };
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_reset(curl_);
  curl_easy_setopt(curl_, CURLOPT_URL, hook.url.c_str());
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, static_cast<long>(hook.timeout_ms));
  curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(hook.timeout_ms));
  curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, Discard);
  curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
  CURLcode rc = curl_easy_perform(curl_);
  long code = 0;
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(list);
  if (rc != CURLE_OK) return {0, curl_easy_strerror(rc)};
  if (code < 200 || code >= 300) return {static_cast<int>(code), "HTTP " + std::to_string(code)};
  return {static_cast<int>(code), ""};
}

int64_t WebhookDispatcher::max_attempt_ms() const {
  int64_t ms = 0;
  for (const auto& h : hooks_) ms = std::max(ms, h.timeout_ms);
  return ms;
}

Result<int> WebhookDispatcher::RunOnce(const std::function<bool()>& keep_going) {
  int attempts = 0;
  for (const auto& hook : hooks_) {
    for (;;) {
      ASSIGN_OR_RETURN(int read, store_->QueueWebhookDeliveries(hook.name, hook.events,
                                                                clock_->NowMs(), kQueueBatch));
      if (read < kQueueBatch) break;
    }
    for (;;) {
      ASSIGN_OR_RETURN(auto due,
                       store_->DueWebhookDeliveries(hook.name, clock_->NowMs(), kDueBatch));
      if (due.empty()) break;
      for (auto& d : due) {
        if (!keep_going()) return attempts;
        auto [code, error] = Post(hook, d.event);
        ++attempts;
        int64_t now = clock_->NowMs();
        d.attempts++;
        d.last_code = code;
        d.last_error = error;
        d.updated_at_ms = now;
        if (error.empty()) {
          d.status = kDeliveryDelivered;
        } else if (now - d.event.created_at_ms >= hook.give_up_after_seconds * 1000) {
          d.status = kDeliveryFailed;
          Log(LogLevel::kError, "webhook_gave_up",
              {{"webhook", hook.name}, {"event", d.event.id}, {"error", error}});
        } else {
          int64_t wait = hook.min_backoff_ms;  // doubled per attempt after the first, capped
          for (int i = 1; i < d.attempts && wait < hook.max_backoff_ms; ++i) wait *= 2;
          wait = std::min(wait, hook.max_backoff_ms);
          d.next_attempt_at_ms = now + wait;
          Log(LogLevel::kWarn, "webhook_attempt_failed",
              {{"webhook", hook.name},
               {"event", d.event.id},
               {"attempt", std::to_string(d.attempts)},
               {"error", error},
               {"retry_in_ms", std::to_string(wait)}});
        }
        if (metrics_) {
          metrics_->Inc("regionmove_webhook_attempts_total",
                        MetricLabel("result", error.empty() ? "delivered" : "failed"));
        }
        RETURN_IF_ERROR(store_->RecordWebhookAttempt(d));
      }
    }
  }
  return attempts;
}

}  // namespace regionmove
