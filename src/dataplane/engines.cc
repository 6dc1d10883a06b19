#include "dataplane/engines.h"

#include <map>
#include <mutex>

namespace regionmove {

namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, DatabaseEngineFactory> databases;
  std::map<std::string, BlobEngineFactory> blobs;
};

Registry& Global() {
  static Registry* r = new Registry();  // never destroyed: engines may outlive main's locals
  return *r;
}

template <typename Map>
std::vector<std::string> Names(const Map& m) {
  std::vector<std::string> out;
  for (const auto& [name, f] : m) out.push_back(name);
  return out;
}

}  // namespace

void RegisterDatabaseEngine(const std::string& name, DatabaseEngineFactory factory) {
  std::lock_guard<std::mutex> lock(Global().mu);
  Global().databases[name] = std::move(factory);
}

void RegisterBlobEngine(const std::string& name, BlobEngineFactory factory) {
  std::lock_guard<std::mutex> lock(Global().mu);
  Global().blobs[name] = std::move(factory);
}

const DatabaseEngineFactory* FindDatabaseEngine(const std::string& name) {
  std::lock_guard<std::mutex> lock(Global().mu);
  auto it = Global().databases.find(name);
  return it == Global().databases.end() ? nullptr : &it->second;
}

const BlobEngineFactory* FindBlobEngine(const std::string& name) {
  std::lock_guard<std::mutex> lock(Global().mu);
  auto it = Global().blobs.find(name);
  return it == Global().blobs.end() ? nullptr : &it->second;
}

std::vector<std::string> DatabaseEngineNames() {
  std::lock_guard<std::mutex> lock(Global().mu);
  return Names(Global().databases);
}

std::vector<std::string> BlobEngineNames() {
  std::lock_guard<std::mutex> lock(Global().mu);
  return Names(Global().blobs);
}

}  // namespace regionmove
