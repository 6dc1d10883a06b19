#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace regionmove {

// `name="value"` with the value escaped as the Prometheus text format requires (\\, \", \n).
std::string MetricLabel(const std::string& name, const std::string& value);

// Counters and histograms in the Prometheus text format. Labels are passed preformatted
// (`step="dumping_data"`). Thread-safe.
class Metrics {
 public:
  void Inc(const std::string& name, const std::string& labels = "", double by = 1);
  // A counter's value (0 when never incremented).
  double Value(const std::string& name, const std::string& labels = "") const;
  // Histogram with the default buckets (seconds: 5 ms .. 5 min).
  void Observe(const std::string& name, const std::string& labels, double value);
  // HELP lines are emitted for names described here.
  void Describe(const std::string& name, const std::string& type, const std::string& help);
  // Everything recorded, plus `extra` (already formatted gauge lines with their HELP/TYPE).
  std::string Render(const std::string& extra = "") const;

 private:
  struct Histogram {
    std::vector<double> counts;  // per bucket, cumulative at render
    double sum = 0;
    double count = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, double>> counters_;
  std::map<std::string, std::map<std::string, Histogram>> histograms_;
  std::map<std::string, std::pair<std::string, std::string>> help_;
};

}  // namespace regionmove
