// On/off switches read from the environment once: CLIPSCALE_<NAME>=0 turns a default-on
// behaviour off (for A/B comparisons); any other value, or none, leaves it on.
#pragma once
#include <cstdlib>
#include <cstring>

namespace cs {

inline bool env_switch_on(const char* name) {
  const char* env = std::getenv(name);
  return !(env && std::strcmp(env, "0") == 0);
}

}  // namespace cs
