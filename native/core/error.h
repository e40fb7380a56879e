// Errors raised by native code. The N-API layer turns every one into a JS Error;
// nothing in native code aborts the process.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace cs {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  append(os, rest...);
}
}  // namespace detail

// fail("linear", ": expected ", a, ", got ", b) throws cs::Error with the pieces joined.
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  detail::append(os, parts...);
  throw Error(os.str());
}

}  // namespace cs
