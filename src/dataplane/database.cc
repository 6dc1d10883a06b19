#include "dataplane/database.h"

#include <cctype>

#include "common/hash.h"

namespace regionmove {

using nlohmann::json;

Result<std::map<std::string, int64_t>> Database::SizesBytes(
    const std::vector<std::string>& app_ids) {
  std::map<std::string, int64_t> out;
  for (const auto& id : app_ids) {
    ASSIGN_OR_RETURN(out[id], SizeBytes(id));
  }
  return out;
}

bool IsValidColumnType(std::string_view type) {
  for (const char* t : kColumnTypes) {
    if (type == t) return true;
  }
  return false;
}

bool IsValidIdentifier(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(name[0])) return false;
  for (char c : name) {
    if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
  }
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower != "id" && lower.rfind("_rm_", 0) != 0 && lower.rfind("sqlite_", 0) != 0;
}

Status ValidateTableSpec(const TableSpec& spec) {
  if (!IsValidIdentifier(spec.name)) {
    return InvalidArgument("table name '" + spec.name + "' is not allowed", "invalid_name");
  }
  for (size_t i = 0; i < spec.columns.size(); ++i) {
    const auto& c = spec.columns[i];
    if (!IsValidIdentifier(c.name)) {
      return InvalidArgument("column name '" + c.name + "' is not allowed", "invalid_name");
    }
    for (size_t j = 0; j < i; ++j) {
      if (spec.columns[j].name == c.name) {
        return InvalidArgument("column '" + c.name + "' is repeated", "invalid_name");
      }
    }
    if (!IsValidColumnType(c.type)) {
      return InvalidArgument("column '" + c.name + "' has unknown type '" + c.type +
                             "' (text integer real boolean json timestamp bytes)");
    }
  }
  return Status::Ok();
}

namespace {

// RFC 3339 / ISO 8601 as the data API takes timestamps: a date (YYYY-MM-DD), optionally with a
// time ("T" or a space, HH:MM[:SS[.fraction]]) and a zone (Z or +HH[:MM]).
bool IsTimestamp(std::string_view t) {
  size_t i = 0;
  auto num = [&](int digits, int lo, int hi) {
    if (i + digits > t.size()) return false;
    int v = 0;
    for (int k = 0; k < digits; ++k) {
      char c = t[i + k];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    i += digits;
    return v >= lo && v <= hi;
  };
  auto lit = [&](char c) { return i < t.size() && t[i] == c ? (++i, true) : false; };
  if (!num(4, 0, 9999) || !lit('-') || !num(2, 1, 12) || !lit('-') || !num(2, 1, 31)) {
    return false;
  }
  if (i == t.size()) return true;
  if (!lit('T') && !lit(' ') && !lit('t')) return false;
  if (!num(2, 0, 23) || !lit(':') || !num(2, 0, 59)) return false;
  if (lit(':')) {
    if (!num(2, 0, 60)) return false;
    if (lit('.')) {
      size_t start = i;
      while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
      if (i == start) return false;
    }
  }
  if (i == t.size() || lit('Z') || lit('z')) return i == t.size();
  if (!lit('+') && !lit('-')) return false;
  if (!num(2, 0, 23)) return false;
  if (i == t.size()) return true;
  lit(':');
  return num(2, 0, 59) && i == t.size();
}

}  // namespace

Status CheckValue(const ColumnSpec& col, const json& v) {
  auto bad = [&](const char* want) {
    return InvalidArgument("field '" + col.name + "' must be " + want);
  };
  if (v.is_null()) return Status::Ok();
  const std::string& t = col.type;
  if ((t == "text" || t == "timestamp") && !v.is_string()) return bad("a string");
  if (t == "timestamp" && !IsTimestamp(v.get_ref<const std::string&>())) {
    return bad("a timestamp like 2026-01-31T09:30:00Z");
  }
  if (t == "integer" && !v.is_number_integer()) return bad("an integer");
  if (t == "real" && !v.is_number()) return bad("a number");
  if (t == "boolean" && !v.is_boolean()) return bad("a boolean");
  if (t == "bytes") {
    std::string raw;
    if (!v.is_string() || !Base64Decode(v.get_ref<const std::string&>(), &raw)) {
      return bad("base64 text");
    }
  }
  return Status::Ok();
}

const ColumnSpec* FindColumn(const std::vector<ColumnSpec>& cols, const std::string& name) {
  for (const auto& c : cols) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

Status NormalizeRow(const std::string& table, const std::vector<ColumnSpec>& cols, Rng& rng,
                    json* row) {
  if (!row->is_object()) return InvalidArgument("each row must be a JSON object");
  for (auto it = row->begin(); it != row->end(); ++it) {
    if (it.key() != "id" && !FindColumn(cols, it.key()))
      return InvalidArgument("table " + table + " has no column '" + it.key() + "'");
  }
  if (!row->contains("id")) (*row)["id"] = NewUuidV4(rng);
  const json& id = (*row)["id"];
  if (!id.is_string() || id.get_ref<const std::string&>().empty() ||
      id.get_ref<const std::string&>().size() > 255) {
    return InvalidArgument("field 'id' must be a non-empty string of at most 255 bytes");
  }
  for (const auto& c : cols) {
    auto v = row->find(c.name);
    if (v == row->end()) {
      (*row)[c.name] = nullptr;
    } else {
      RETURN_IF_ERROR(CheckValue(c, *v));
    }
  }
  return Status::Ok();
}

json DigestToJson(const std::vector<TableDigest>& digest) {
  json out = json::array();
  for (const auto& d : digest) {
    out.push_back({{"table", d.table},
                   {"rows", d.rows},
                   {"checksum", d.checksum},
                   {"app_table", d.app_table}});
  }
  return out;
}

Result<std::vector<TableDigest>> DigestFromJson(const json& j) {
  if (!j.is_array()) return Corruption("a recorded digest is not a list");
  std::vector<TableDigest> out;
  for (const auto& e : j) {
    if (!e.is_object() || !e.contains("table") || !e.contains("checksum")) {
      return Corruption("a recorded digest entry lacks its table or checksum");
    }
    out.push_back(TableDigest{e.value("table", ""), e.value("rows", int64_t{0}),
                              e.value("checksum", ""), e.value("app_table", true)});
  }
  return out;
}

}  // namespace regionmove
