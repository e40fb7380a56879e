// The emulated device's execution: a launch runs its blocks one after another on the
// calling thread; a block's threads are fibers (our own context switch on x86-64,
// ucontext elsewhere) in warps of 32 lanes. Fibers run until they block at a barrier
// or return; between barriers the order they run in is the schedule's (in order,
// reversed, or seeded random: CLIPSCALE_EMU_SCHEDULE, or cs_emu::set_schedule).
//
// - __syncthreads: a counting barrier over the block; a thread that has returned counts
//   as arrived.
// - Warp collectives (shuffles, ballot, __syncwarp, the PTX emulations): a barrier over
//   the lanes of one warp named in the mask; every waiting lane's requests are served
//   when the last one arrives. A mask that leaves out the caller, names a lane that has
//   returned, or differs between lanes aborts the launch with a message.
// - No fiber can run but some still wait: a deadlock (e.g. __syncthreads in a branch that
//   only part of a warp takes) aborts the launch with a message.
// - A fault (a read or write past the end of device memory, which ends at a guard page)
//   aborts the launch with the address and the allocation it overran.
// The launch's error is then what cudaGetLastError / the next synchronisation returns.
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "cuda/emu/emu_internal.h"
#include "cuda_runtime.h"

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

thread_local uint3 threadIdx;
thread_local uint3 blockIdx;
thread_local dim3 blockDim;
thread_local dim3 gridDim;

#if defined(__x86_64__)
// cs_emu_switch(save, to): saves the callee-saved registers, the SSE and x87 control
// words and the stack pointer into *save, then resumes the context whose stack pointer is `to`.
extern "C" void cs_emu_switch(void** save, void* to);
asm(R"(
.text
.p2align 4
.globl cs_emu_switch
.hidden cs_emu_switch
.type cs_emu_switch,@function
cs_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size cs_emu_switch,.-cs_emu_switch
.section .note.GNU-stack,"",@progbits
.text
)");
#endif

namespace cs_emu {

namespace {

constexpr size_t kStackBytes = 256 * 1024;

enum class State { Ready, WaitBlock, WaitWarp, Done };

struct CpAsyncCopy {
  void* dst;
  int bytes;
  int group;
  unsigned char data[16];
};

struct Fiber {
#if defined(__x86_64__)
  void* sp = nullptr;
#else
  ucontext_t uc;
#endif
  char* stack = nullptr;  // lowest usable byte (a guard page lies below)
  uint3 tid{};
  int lane = 0, warp = 0;
  State state = State::Ready;
  // At a warp barrier: its mask, published words and requests.
  const char* what = nullptr;
  unsigned mask = 0;
  const uint32_t* pub = nullptr;
  int npub = 0;
  const ExchangeRequest* req = nullptr;
  int nreq = 0;
  // cp.async
  std::vector<CpAsyncCopy> copies;
  int committed = 0;
};

struct Warp {
  unsigned exists = 0;   // lanes that exist (a last warp may be partial)
  unsigned alive = 0;    // lanes that have not returned
  unsigned arrived = 0;  // lanes waiting at the warp barrier
};

struct Run {
  const char* name = nullptr;
  ThreadBody body = nullptr;
  void* ctx = nullptr;
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  std::vector<int> order;
  int current = -1;
  int alive = 0;
  int block_arrived = 0;
  unsigned char* dyn_smem = nullptr;
  size_t dyn_bytes = 0;
#if defined(__x86_64__)
  void* sched_sp = nullptr;
#else
  ucontext_t sched_uc;
#endif
  sigjmp_buf fault_jmp;
  bool failed = false;
  std::string error;
};

thread_local Run* t_run = nullptr;
thread_local std::vector<char*> t_stacks;  // reused between launches
thread_local Schedule t_schedule{ScheduleKind::InOrder, 0};
thread_local bool t_schedule_set = false;
thread_local std::mt19937_64 t_rng;
thread_local bool t_altstack = false;

Schedule default_schedule() {
  Schedule s{ScheduleKind::InOrder, 0};
  if (const char* e = std::getenv("CLIPSCALE_EMU_SCHEDULE")) parse_schedule(e, &s);
  return s;
}

char* stack_at(size_t i) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  while (t_stacks.size() <= i) {
    void* p = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    mprotect(p, page, PROT_NONE);  // a stack overflow faults instead of corrupting the next stack
    t_stacks.push_back(static_cast<char*>(p) + page);
  }
  return t_stacks[i];
}

void switch_to_scheduler() {
  Run& r = *t_run;
  Fiber& f = r.fibers[r.current];
#if defined(__x86_64__)
  cs_emu_switch(&f.sp, r.sched_sp);
#else
  swapcontext(&f.uc, &r.sched_uc);
#endif
}

[[noreturn]] void abort_launch(const std::string& why) {
  Run& r = *t_run;
  if (!r.failed) {
    r.failed = true;
    r.error = why;
  }
  siglongjmp(r.fault_jmp, 1);
}

std::string where() {
  Run& r = *t_run;
  char buf[256];
  if (r.current < 0) return std::string("kernel ") + r.name;
  const Fiber& f = r.fibers[r.current];
  std::snprintf(buf, sizeof buf, "kernel %s, block (%u,%u,%u), thread (%u,%u,%u) (warp %d lane %d)", r.name, blockIdx.x,
                blockIdx.y, blockIdx.z, f.tid.x, f.tid.y, f.tid.z, f.warp, f.lane);
  return buf;
}

void fiber_main() {
  Run& r = *t_run;
  r.body(r.ctx);
  Fiber& f = r.fibers[r.current];
  f.state = State::Done;
  r.alive--;
  Warp& w = r.warps[f.warp];
  w.alive &= ~(1u << f.lane);
  switch_to_scheduler();
  std::abort();  // never resumed
}

#if defined(__x86_64__)
extern "C" void cs_emu_fiber_entry() { fiber_main(); }

void prepare(Fiber& f) {
  // Stack top (16-aligned): [fake return 0][entry][rbp rbx r12 r13 r14 r15][mxcsr|fcw]
  uintptr_t top = reinterpret_cast<uintptr_t>(f.stack + kStackBytes) & ~uintptr_t{15};
  uint64_t* sp = reinterpret_cast<uint64_t*>(top);
  *--sp = 0;
  *--sp = reinterpret_cast<uint64_t>(&cs_emu_fiber_entry);
  for (int i = 0; i < 6; i++) *--sp = 0;
  *--sp = 0x1F80ull | (0x037Full << 32);
  f.sp = sp;
}
#else
void prepare(Fiber& f) {
  getcontext(&f.uc);
  f.uc.uc_stack.ss_sp = f.stack;
  f.uc.uc_stack.ss_size = kStackBytes;
  f.uc.uc_link = nullptr;
  makecontext(&f.uc, fiber_main, 0);
}
#endif

void resume(Run& r, int i) {
  r.current = i;
  Fiber& f = r.fibers[i];
  threadIdx = f.tid;
#if defined(__x86_64__)
  cs_emu_switch(&r.sched_sp, f.sp);
#else
  swapcontext(&r.sched_uc, &f.uc);
#endif
  r.current = -1;
}

// Releases the block barrier when every thread still running waits at it.
void maybe_release_block(Run& r) {
  if (r.block_arrived > 0 && r.block_arrived == r.alive) {
    for (Fiber& f : r.fibers)
      if (f.state == State::WaitBlock) f.state = State::Ready;
    r.block_arrived = 0;
  }
}

std::string lanes(unsigned m) {
  std::string s;
  for (int l = 0; l < 32; l++)
    if (m >> l & 1u) s += (s.empty() ? "" : ",") + std::to_string(l);
  return s;
}

// Serves a warp barrier when every lane of its mask has arrived.
void maybe_release_warp(Run& r, int wi) {
  Warp& w = r.warps[wi];
  if (!w.arrived) return;
  const int base = wi * 32;
  const int first = __builtin_ctz(w.arrived);
  const unsigned mask = r.fibers[base + first].mask & w.exists;
  const unsigned gone = mask & ~w.alive;
  if (gone) {
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "%s: warp %d: %s with mask 0x%08x waits for lane(s) %s, which have returned (kernel %s, block "
                  "(%u,%u,%u))",
                  "emulated device", wi, r.fibers[base + first].what, r.fibers[base + first].mask, lanes(gone).c_str(),
                  r.name, blockIdx.x, blockIdx.y, blockIdx.z);
    abort_launch(buf);
  }
  if ((w.arrived & mask) != mask) return;  // still waiting for some
  for (int l = 0; l < 32; l++) {
    if (!(w.arrived >> l & 1u)) continue;
    const Fiber& f = r.fibers[base + l];
    for (int q = 0; q < f.nreq; q++) {
      const ExchangeRequest& rq = f.req[q];
      if (rq.src >= 32 || !(mask >> rq.src & 1u)) {
        char buf[512];
        std::snprintf(buf, sizeof buf,
                      "emulated device: warp %d lane %d: %s reads lane %d, which is not in the mask 0x%08x (kernel %s, "
                      "block (%u,%u,%u))",
                      wi, l, f.what, rq.src, mask, r.name, blockIdx.x, blockIdx.y, blockIdx.z);
        abort_launch(buf);
      }
      const Fiber& s = r.fibers[base + rq.src];
      *rq.dst = rq.word < s.npub ? s.pub[rq.word] : 0u;
    }
  }
  for (int l = 0; l < 32; l++)
    if (w.arrived >> l & 1u) r.fibers[base + l].state = State::Ready;
  w.arrived = 0;
}

struct sigaction g_prev_segv {}, g_prev_bus {};

void fault_handler(int sig, siginfo_t* info, void* uctx) {
  Run* r = t_run;
  if (!r || r->current < 0) {
    // Not a kernel's fault: whoever handled it before us (V8 has a handler), or the default.
    const struct sigaction& prev = sig == SIGBUS ? g_prev_bus : g_prev_segv;
    if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction) {
      prev.sa_sigaction(sig, info, uctx);
      return;
    }
    if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler) {
      prev.sa_handler(sig);
      return;
    }
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  const void* addr = info->si_addr;
  std::string msg = "emulated device: illegal address: " + where() + " accessed " + describe_address(addr);
  if (!r->failed) {
    r->failed = true;
    r->error = msg;
  }
  siglongjmp(r->fault_jmp, 1);
}

void order_for(std::vector<int>& order, int n, const Schedule& s) {
  order.resize(n);
  for (int i = 0; i < n; i++) order[i] = i;
  if (s.kind == ScheduleKind::Reversed) std::reverse(order.begin(), order.end());
  if (s.kind == ScheduleKind::Random) std::shuffle(order.begin(), order.end(), t_rng);
}

}  // namespace

bool parse_schedule(const char* text, Schedule* s) {
  std::string t = text ? text : "";
  if (t == "" || t == "inorder" || t == "in-order") {
    *s = {ScheduleKind::InOrder, 0};
    return true;
  }
  if (t == "reversed" || t == "reverse") {
    *s = {ScheduleKind::Reversed, 0};
    return true;
  }
  if (t.rfind("random", 0) == 0) {
    uint64_t seed = 1;
    if (t.size() > 6) {
      if (t[6] != ':') return false;
      char* end = nullptr;
      seed = std::strtoull(t.c_str() + 7, &end, 10);
      if (!end || *end) return false;
    }
    *s = {ScheduleKind::Random, seed};
    return true;
  }
  return false;
}

void set_schedule(const Schedule& s) {
  t_schedule = s;
  t_schedule_set = true;
  t_rng.seed(s.seed);
}

void warp_exchange(const char* what, unsigned mask, const uint32_t* pub, int npub, const ExchangeRequest* req,
                   int nreq) {
  Run& r = *t_run;
  Fiber& f = r.fibers[r.current];
  if (!(mask >> f.lane & 1u)) {
    char buf[160];
    std::snprintf(buf, sizeof buf, ": %s with mask 0x%08x leaves out the calling lane", what, mask);
    abort_launch("emulated device: " + where() + buf);
  }
  Warp& w = r.warps[f.warp];
  if (w.arrived) {
    const Fiber& other = r.fibers[f.warp * 32 + __builtin_ctz(w.arrived)];
    if (other.mask != mask || std::strcmp(other.what, what) != 0) {
      char buf[256];
      std::snprintf(buf, sizeof buf, ": %s (mask 0x%08x) while other lanes of the warp wait in %s (mask 0x%08x)", what,
                    mask, other.what, other.mask);
      abort_launch("emulated device: diverged warp: " + where() + buf);
    }
  }
  f.what = what;
  f.mask = mask;
  f.pub = pub;
  f.npub = npub;
  f.req = req;
  f.nreq = nreq;
  f.state = State::WaitWarp;
  w.arrived |= 1u << f.lane;
  maybe_release_warp(r, f.warp);
  if (f.state == State::WaitWarp) switch_to_scheduler();
}

void syncthreads() {
  Run& r = *t_run;
  Fiber& f = r.fibers[r.current];
  f.state = State::WaitBlock;
  r.block_arrived++;
  maybe_release_block(r);
  if (f.state == State::WaitBlock) switch_to_scheduler();
}

int lane_id() {
  Run& r = *t_run;
  return r.fibers[r.current].lane;
}

void* dynamic_shared() { return t_run->dyn_smem; }

void cp_async(void* smem, const void* gmem, int bytes, int src_bytes) {
  Run& r = *t_run;
  Fiber& f = r.fibers[r.current];
  const unsigned char* s = static_cast<unsigned char*>(smem);
  if (s < r.dyn_smem || s + bytes > r.dyn_smem + r.dyn_bytes) {
    // Static shared memory is not tracked; only dynamic shared memory may be a cp.async target here.
    char buf[160];
    std::snprintf(buf, sizeof buf, ": cp.async destination %p is outside the block's dynamic shared memory", smem);
    abort_launch("emulated device: " + where() + buf);
  }
  CpAsyncCopy c;
  c.dst = smem;
  c.bytes = bytes;
  c.group = f.committed;
  std::memset(c.data, 0, sizeof c.data);
  // The source is read now (a fault here names this thread); the shared memory is written at the wait.
  if (src_bytes > 0) std::memcpy(c.data, gmem, static_cast<size_t>(std::min(src_bytes, bytes)));
  f.copies.push_back(c);
}

void cp_async_commit() { t_run->fibers[t_run->current].committed++; }

void cp_async_wait(int n) {
  Fiber& f = t_run->fibers[t_run->current];
  // Groups older than the newest n committed ones land now; the rest stay pending.
  const int limit = f.committed - n;
  size_t keep = 0;
  for (size_t i = 0; i < f.copies.size(); i++) {
    CpAsyncCopy& c = f.copies[i];
    if (c.group < limit)
      std::memcpy(c.dst, c.data, static_cast<size_t>(c.bytes));
    else
      f.copies[keep++] = c;
  }
  f.copies.resize(keep);
}

void kernel_fault(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  abort_launch("emulated device: " + where() + ": " + buf);
}

cudaError_t run_launch(const char* name, dim3 grid, dim3 block, size_t smem, ThreadBody body, void* ctx,
                       std::string* error) {
  if (!t_schedule_set) set_schedule(default_schedule());
  if (!t_altstack) {
    // Faults on a fiber's guard page need a stack of their own to be reported.
    stack_t ss{};
    ss.ss_size = 64 * 1024;
    ss.ss_sp = std::malloc(ss.ss_size);
    sigaltstack(&ss, nullptr);
    t_altstack = true;
  }
  const int nthreads = static_cast<int>(block.x * block.y * block.z);
  Run r;
  r.name = name;
  r.body = body;
  r.ctx = ctx;
  r.fibers.resize(nthreads);
  const int nwarps = (nthreads + 31) / 32;
  r.warps.resize(nwarps);
  std::vector<unsigned char> dyn(smem + 16);
  r.dyn_smem = reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(dyn.data()) + 15) & ~uintptr_t{15});
  r.dyn_bytes = smem;
  for (int i = 0; i < nthreads; i++) {
    r.fibers[i].stack = stack_at(static_cast<size_t>(i));
    if (!r.fibers[i].stack) {
      *error = "emulated device: cannot map fiber stacks for " + std::to_string(nthreads) + " threads";
      return cudaErrorMemoryAllocation;
    }
  }
  blockDim = block;
  gridDim = grid;

  // Installed once for the process, handing faults that are not a kernel's to the handler before.
  static std::once_flag installed;
  std::call_once(installed, [] {
    struct sigaction sa {};
    sa.sa_sigaction = fault_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_prev_segv);
    sigaction(SIGBUS, &sa, &g_prev_bus);
  });
  Run* prev = t_run;
  t_run = &r;

  std::vector<int> block_order;
  const int64_t nblocks = static_cast<int64_t>(grid.x) * grid.y * grid.z;
  std::vector<int64_t> blocks(static_cast<size_t>(nblocks));
  for (int64_t b = 0; b < nblocks; b++) blocks[static_cast<size_t>(b)] = b;
  if (t_schedule.kind == ScheduleKind::Reversed) std::reverse(blocks.begin(), blocks.end());
  if (t_schedule.kind == ScheduleKind::Random) std::shuffle(blocks.begin(), blocks.end(), t_rng);

  if (sigsetjmp(r.fault_jmp, 1) == 0) {
    for (int64_t b : blocks) {
      blockIdx = uint3{static_cast<unsigned>(b % grid.x), static_cast<unsigned>((b / grid.x) % grid.y),
                       static_cast<unsigned>(b / (static_cast<int64_t>(grid.x) * grid.y))};
      // Fresh shared memory holds garbage, as on the GPU: NaN bytes, so an unwritten read shows.
      std::memset(r.dyn_smem, 0xff, smem);
      for (int i = 0; i < nthreads; i++) {
        Fiber& f = r.fibers[i];
        f.tid = uint3{static_cast<unsigned>(i % block.x), static_cast<unsigned>((i / block.x) % block.y),
                      static_cast<unsigned>(i / (block.x * block.y))};
        f.lane = i % 32;
        f.warp = i / 32;
        f.state = State::Ready;
        f.copies.clear();
        f.committed = 0;
        prepare(f);
      }
      for (int wi = 0; wi < nwarps; wi++) {
        const int n = std::min(32, nthreads - wi * 32);
        r.warps[wi].exists = r.warps[wi].alive = n == 32 ? 0xffffffffu : ((1u << n) - 1);
        r.warps[wi].arrived = 0;
      }
      r.alive = nthreads;
      r.block_arrived = 0;
      while (r.alive > 0) {
        order_for(r.order, nthreads, t_schedule);
        bool ran = false;
        for (int i : r.order) {
          if (r.fibers[i].state != State::Ready) continue;
          resume(r, i);
          ran = true;
        }
        if (!ran) {
          // Everyone left waits: say who waits where.
          int at_block = 0, at_warp = 0;
          std::string warp_detail;
          for (int i = 0; i < nthreads; i++) {
            if (r.fibers[i].state == State::WaitBlock) at_block++;
            if (r.fibers[i].state == State::WaitWarp) {
              if (!at_warp)
                warp_detail = std::string(" (thread ") + std::to_string(i) + " in " + r.fibers[i].what + ")";
              at_warp++;
            }
          }
          char buf[512];
          std::snprintf(buf, sizeof buf,
                        "emulated device: deadlock in kernel %s, block (%u,%u,%u): %d thread(s) wait at "
                        "__syncthreads, %d at a warp collective%s, %d have returned",
                        name, blockIdx.x, blockIdx.y, blockIdx.z, at_block, at_warp, warp_detail.c_str(),
                        nthreads - r.alive);
          abort_launch(buf);
        }
        // A lane that returned may leave a warp collective waiting for it: an error.
        for (int wi = 0; wi < nwarps; wi++) maybe_release_warp(r, wi);
        maybe_release_block(r);
      }
    }
  }
  t_run = prev;
  if (r.failed) {
    *error = r.error;
    return r.error.find("illegal address") != std::string::npos ? cudaErrorIllegalAddress : cudaErrorLaunchFailure;
  }
  return cudaSuccess;
}

}  // namespace cs_emu
