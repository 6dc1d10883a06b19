#include "common/metrics.h"

#include <cstdio>
#include <sstream>

namespace regionmove {

namespace {
constexpr double kBuckets[] = {0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
constexpr size_t kBucketCount = sizeof(kBuckets) / sizeof(kBuckets[0]);

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}
std::string WithLabels(const std::string& name, const std::string& labels,
                       const std::string& more = "") {
  std::string all = labels;
  if (!more.empty()) all += (all.empty() ? "" : ",") + more;
  return all.empty() ? name : name + "{" + all + "}";
}
}  // namespace

std::string MetricLabel(const std::string& name, const std::string& value) {
  std::string out = name + "=\"";
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void Metrics::Inc(const std::string& name, const std::string& labels, double by) {
  std::lock_guard<std::mutex> lock(mu_);
  counters_[name][labels] += by;
}

double Metrics::Value(const std::string& name, const std::string& labels) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto n = counters_.find(name);
  if (n == counters_.end()) return 0;
  auto l = n->second.find(labels);
  return l == n->second.end() ? 0 : l->second;
}

void Metrics::Observe(const std::string& name, const std::string& labels, double value) {
  std::lock_guard<std::mutex> lock(mu_);
  Histogram& h = histograms_[name][labels];
  if (h.counts.empty()) h.counts.assign(kBucketCount, 0);
  for (size_t i = 0; i < kBucketCount; ++i) {
    if (value <= kBuckets[i]) h.counts[i]++;
  }
  h.sum += value;
  h.count++;
}

void Metrics::Describe(const std::string& name, const std::string& type, const std::string& help) {
  std::lock_guard<std::mutex> lock(mu_);
  help_[name] = {type, help};
}

std::string Metrics::Render(const std::string& extra) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream out;
  auto header = [&](const std::string& name, const char* type) {
    auto it = help_.find(name);
    out << "# HELP " << name << " " << (it == help_.end() ? name : it->second.second) << "\n";
    out << "# TYPE " << name << " " << type << "\n";
  };
  for (const auto& [name, series] : counters_) {
    header(name, "counter");
    for (const auto& [labels, v] : series) out << WithLabels(name, labels) << " " << Num(v) << "\n";
  }
  for (const auto& [name, series] : histograms_) {
    header(name, "histogram");
    for (const auto& [labels, h] : series) {
      for (size_t i = 0; i < kBucketCount; ++i) {
        out << WithLabels(name + "_bucket", labels, "le=\"" + Num(kBuckets[i]) + "\"") << " "
            << Num(h.counts[i]) << "\n";
      }
      out << WithLabels(name + "_bucket", labels, "le=\"+Inf\"") << " " << Num(h.count) << "\n";
      out << WithLabels(name + "_sum", labels) << " " << Num(h.sum) << "\n";
      out << WithLabels(name + "_count", labels) << " " << Num(h.count) << "\n";
    }
  }
  out << extra;
  return out.str();
}

}  // namespace regionmove
