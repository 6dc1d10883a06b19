# Writes OUT, a C++ source that holds every file of DIR (the dashboard's static files) as bytes
# for UiAsset() (src/api/ui_assets.h). Run by the build whenever a file of DIR changes.
file(GLOB names RELATIVE "${DIR}" "${DIR}/*")
list(SORT names)
set(arrays "")
set(entries "")
set(i 0)
foreach(name ${names})
  file(READ "${DIR}/${name}" hex HEX)
  string(LENGTH "${hex}" digits)
  math(EXPR size "${digits} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND arrays "const unsigned char kUiFile${i}[] = {${bytes}0};\n")
  string(APPEND entries "      {\"${name}\", {reinterpret_cast<const char*>(kUiFile${i}), ${size}}},\n")
  math(EXPR i "${i} + 1")
endforeach()
file(WRITE "${OUT}.tmp" "// Generated from ui/ by cmake/embed_ui.cmake; do not edit.
#include <map>

#include \"api/ui_assets.h\"

namespace regionmove {
namespace {
${arrays}}  // namespace

std::optional<std::string_view> UiAsset(std::string_view name) {
  static const std::map<std::string_view, std::string_view> files = {
${entries}  };
  auto it = files.find(name);
  if (it == files.end()) return std::nullopt;
  return it->second;
}

}  // namespace regionmove
")
# Rewritten only when it changed: an unchanged dashboard recompiles nothing.
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
