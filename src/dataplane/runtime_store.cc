#include "dataplane/runtime_store.h"

#include <algorithm>

namespace regionmove {

namespace {

Status ValidateCronField(std::string_view field, int lo, int hi, const char* what) {
  auto bad = [&] {
    return InvalidArgument("cron " + std::string(what) + " field '" + std::string(field) +
                           "' is not valid (" + std::to_string(lo) + "-" + std::to_string(hi) +
                           ")");
  };
  auto number = [&](std::string_view s, int* out) {
    if (s.empty() || s.size() > 2) return false;
    int v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    *out = v;
    return true;
  };
  size_t start = 0;
  while (start <= field.size()) {
    size_t end = field.find(',', start);
    if (end == std::string_view::npos) end = field.size();
    std::string_view part = field.substr(start, end - start);
    std::string_view range = part, step;
    if (size_t slash = part.find('/'); slash != std::string_view::npos) {
      range = part.substr(0, slash);
      step = part.substr(slash + 1);
      int s = 0;
      if (!number(step, &s) || s < 1) return bad();
    }
    if (range != "*") {
      size_t dash = range.find('-');
      int a = 0, b = 0;
      if (dash == std::string_view::npos) {
        if (!number(range, &a) || a < lo || a > hi) return bad();
      } else if (!number(range.substr(0, dash), &a) || !number(range.substr(dash + 1), &b) ||
                 a < lo || b > hi || a > b) {
        return bad();
      }
    }
    start = end + 1;
  }
  return Status::Ok();
}

// What a sealed env value is bound to: its app and its name.
std::string SecretBinding(const std::string& app_id, const std::string& key) {
  return "env\n" + app_id + "\n" + key;
}

}  // namespace

Status ValidateCron(std::string_view schedule) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < schedule.size()) {
    while (i < schedule.size() && schedule[i] == ' ') ++i;
    size_t start = i;
    while (i < schedule.size() && schedule[i] != ' ') ++i;
    if (i > start) fields.push_back(schedule.substr(start, i - start));
  }
  if (fields.size() != 5) {
    return InvalidArgument("cron schedule must have 5 fields (minute hour day month weekday)");
  }
  static const struct {
    int lo, hi;
    const char* name;
  } kRanges[] = {
      {0, 59, "minute"}, {0, 23, "hour"}, {1, 31, "day"}, {1, 12, "month"}, {0, 7, "weekday"}};
  for (size_t f = 0; f < 5; ++f) {
    RETURN_IF_ERROR(ValidateCronField(fields[f], kRanges[f].lo, kRanges[f].hi, kRanges[f].name));
  }
  return Status::Ok();
}

bool RuntimeSnapshot::operator==(const RuntimeSnapshot& o) const {
  auto fn_eq = [](const FunctionDef& a, const FunctionDef& b) {
    return a.name == b.name && a.version == b.version && a.entrypoint == b.entrypoint &&
           a.runtime == b.runtime && a.bundle == b.bundle;
  };
  auto env_eq = [](const EnvVar& a, const EnvVar& b) {
    return a.key == b.key && a.value == b.value && a.secret == b.secret;
  };
  auto cron_eq = [](const CronTrigger& a, const CronTrigger& b) {
    return a.name == b.name && a.schedule == b.schedule && a.function == b.function;
  };
  return std::equal(functions.begin(), functions.end(), o.functions.begin(), o.functions.end(),
                    fn_eq) &&
         std::equal(env.begin(), env.end(), o.env.begin(), o.env.end(), env_eq) &&
         std::equal(cron.begin(), cron.end(), o.cron.begin(), o.cron.end(), cron_eq) &&
         domains == o.domains;
}

Result<std::string> SealSecretEnv(const SecretBox& box, const std::string& app_id,
                                  const EnvVar& e) {
  return box.Seal(e.value, SecretBinding(app_id, e.key));
}

Result<std::string> OpenSecretEnv(const SecretBox& box, const std::string& app_id,
                                  const EnvVar& stored) {
  auto opened = box.Open(stored.value, SecretBinding(app_id, stored.key));
  // Values sealed before secrets were bound to their row open without the binding.
  if (!opened.ok()) opened = box.Open(stored.value);
  return opened;
}

}  // namespace regionmove
