// Checks native/core/host_memory.cpp: alignment, every byte writable, huge pages asked for from
// 1 MB (and granted, where the kernel's THP setting allows), and none when switched off.
// Prints one JSON line; exit code 1 on a failed check.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "core/host_memory.h"

namespace {

int failures = 0;
void check(bool ok, const char* what, size_t bytes) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s (%zu bytes)\n", what, bytes);
    failures++;
  }
}

// The mapping that holds p, from /proc/self/smaps: its AnonHugePages (kB) and whether its VmFlags
// carry "hg" (advised MADV_HUGEPAGE). huge_kb = -1 where unreadable.
struct Mapping {
  long huge_kb = -1;
  bool advised = false;
};
Mapping mapping_at(const void* p) {
  Mapping m;
  std::ifstream smaps("/proc/self/smaps");
  if (!smaps) return m;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find('-')) {
      inside = a >= lo && a < hi;
      continue;
    }
    if (!inside) continue;
    long kb = 0;
    if (std::sscanf(line.c_str(), "AnonHugePages: %ld kB", &kb) == 1) m.huge_kb = kb;
    if (line.rfind("VmFlags:", 0) == 0) m.advised = (line + " ").find(" hg ") != std::string::npos;
  }
  return m;
}

}  // namespace

int main() {
  const bool huge = cs::host_huge_pages();
  const size_t min = cs::huge_page_min_bytes();
  Mapping big;
  for (size_t bytes : {size_t{1}, size_t{63}, size_t{4096}, min - 64, min, min + 1, size_t{3} << 20, size_t{8} << 20}) {
    auto* p = static_cast<unsigned char*>(cs::host_alloc(bytes));
    check(p != nullptr, "allocated", bytes);
    if (!p) continue;
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    check(a % 64 == 0, "64-byte aligned", bytes);
    if (huge && bytes >= min) check(a % (size_t{2} << 20) == 0, "2 MB aligned from the huge-page size on", bytes);
    std::memset(p, 0xab, bytes);
    check(p[0] == 0xab && p[bytes - 1] == 0xab, "every byte writable", bytes);
    if (bytes == (size_t{8} << 20)) big = mapping_at(p);
    cs::host_free(p);
  }
  cs::host_free(nullptr);
  std::printf("{\"huge_pages\":%s,\"min_bytes\":%zu,\"advised_8mb\":%s,\"granted_kb_of_8mb\":%ld,\"failures\":%d}\n",
              huge ? "true" : "false", min, big.advised ? "true" : "false", big.huge_kb, failures);
  return failures ? 1 : 0;
}
