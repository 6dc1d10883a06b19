#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace regionmove {

// True when `s` is well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past
// U+10FFFF, no truncated sequence. The empty string is valid.
bool IsValidUtf8(std::string_view s);

// `s` with every byte that is not part of well-formed UTF-8 replaced by U+FFFD: for echoing
// untrusted text in messages and logs, never for data.
std::string SanitizeUtf8(std::string_view s);

// The candidate closest to `word` by edit distance, when it is close enough to be a likely
// typo (distance at most 2, and less than half of the word); empty otherwise.
std::string NearestName(std::string_view word, const std::vector<std::string>& candidates);

// " (did you mean 'x'?)" when NearestName finds one; empty otherwise.
std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates);

// Quantities for people. Bytes: "512 B", "1.5 MiB".
std::string HumanBytes(int64_t bytes);
// Money: "$1.25", and "< $0.01" for what rounds to nothing.
std::string HumanUsd(double usd);
// Seconds: "40 ms", "2.5 s", "12 s", "3 min 5 s".
std::string HumanSeconds(double seconds);

// Whether `s` matches glob `pattern`: '*' matches any run of characters, '?' one.
bool GlobMatch(std::string_view pattern, std::string_view s);

}  // namespace regionmove
