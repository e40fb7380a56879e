#include "cuda/cublaslt_gemm.h"

#include <dlfcn.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>
#include <vector>

#include "cuda/cublaslt_api.h"

namespace cs::cuda {

namespace {

struct Api {
  void* lib = nullptr;
  std::string path, error;
  size_t version = 0;
  lt::Handle handle = nullptr;
  lt::CreateFn create = nullptr;
  lt::GetVersionFn get_version = nullptr;
  lt::MatmulDescCreateFn desc_create = nullptr;
  lt::MatmulDescDestroyFn desc_destroy = nullptr;
  lt::MatmulDescSetAttributeFn desc_set = nullptr;
  lt::MatrixLayoutCreateFn layout_create = nullptr;
  lt::MatrixLayoutDestroyFn layout_destroy = nullptr;
  lt::MatrixLayoutSetAttributeFn layout_set = nullptr;
  lt::PreferenceCreateFn pref_create = nullptr;
  lt::PreferenceDestroyFn pref_destroy = nullptr;
  lt::PreferenceSetAttributeFn pref_set = nullptr;
  lt::AlgoGetHeuristicFn heuristic = nullptr;
  lt::MatmulFn matmul = nullptr;
};

std::vector<std::string> candidates() {
  const char* names[] = {"libcublasLt.so.13", "libcublasLt.so.12"};
  std::vector<std::string> out;
  if (const char* dirs = std::getenv("CLIPSCALE_CUBLASLT_PATH")) {
    std::stringstream ss(dirs);
    std::string dir;
    while (std::getline(ss, dir, ':'))
      if (!dir.empty())
        for (const char* n : names) out.push_back(dir + "/" + n);
  }
  for (const char* n : names) out.push_back(n);
  for (const char* dir : {"/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib",
                          "/usr/local/cuda/targets/sbsa-linux/lib", "/usr/lib/x86_64-linux-gnu",
                          "/usr/lib/aarch64-linux-gnu"})
    for (const char* n : names) out.push_back(std::string(dir) + "/" + n);
  return out;
}

template <typename Fn>
bool bind(Api& api, Fn* slot, const char* name) {
  *slot = reinterpret_cast<Fn>(dlsym(api.lib, name));
  if (!*slot) api.error = api.path + " lacks " + name;
  return *slot != nullptr;
}

Api& api() {
  static Api a;
  static std::once_flag once;
  std::call_once(once, [] {
#if defined(CLIPSCALE_EMULATED_DEVICE)
    // The emulated device runs our own kernels only: a real cuBLASLt would need a GPU.
    // CLIPSCALE_EMU_CUBLASLT=no-algorithm puts a stand-in in its place that has no algorithm
    // for any shape, so the fallback to our own kernel runs in the tests.
    if (const char* e = std::getenv("CLIPSCALE_EMU_CUBLASLT"); e && std::string(e) == "no-algorithm") {
      a.path = "the emulated device's stand-in (CLIPSCALE_EMU_CUBLASLT=no-algorithm)";
      a.handle = reinterpret_cast<lt::Handle>(&a);
      return;
    }
    a.error = "cuBLASLt is absent on the emulated CUDA device";
    return;
#endif
    for (const auto& c : candidates()) {
      if ((a.lib = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL))) {
        a.path = c;
        break;
      }
      dlerror();
    }
    if (!a.lib) {
      a.error = "libcublasLt.so.13/.12 not found on $CLIPSCALE_CUBLASLT_PATH, the loader's path or the CUDA "
                "install directories (set CLIPSCALE_CUBLASLT_PATH to the directory that holds it)";
      return;
    }
    bool ok = bind(a, &a.create, "cublasLtCreate") && bind(a, &a.desc_create, "cublasLtMatmulDescCreate") &&
              bind(a, &a.desc_destroy, "cublasLtMatmulDescDestroy") &&
              bind(a, &a.desc_set, "cublasLtMatmulDescSetAttribute") &&
              bind(a, &a.layout_create, "cublasLtMatrixLayoutCreate") &&
              bind(a, &a.layout_destroy, "cublasLtMatrixLayoutDestroy") &&
              bind(a, &a.layout_set, "cublasLtMatrixLayoutSetAttribute") &&
              bind(a, &a.pref_create, "cublasLtMatmulPreferenceCreate") &&
              bind(a, &a.pref_destroy, "cublasLtMatmulPreferenceDestroy") &&
              bind(a, &a.pref_set, "cublasLtMatmulPreferenceSetAttribute") &&
              bind(a, &a.heuristic, "cublasLtMatmulAlgoGetHeuristic") && bind(a, &a.matmul, "cublasLtMatmul");
    if (!ok) return;
    if (bind(a, &a.get_version, "cublasLtGetVersion")) a.version = a.get_version();
    a.error.clear();
    if (lt::Status s = a.create(&a.handle); s != 0) {
      a.error = "cublasLtCreate failed with status " + std::to_string(s);
      a.handle = nullptr;
    }
  });
  return a;
}

// Owns the descriptors of one call.
struct Descriptors {
  Api& a;
  lt::MatmulDesc op = nullptr;
  lt::MatrixLayout la = nullptr, lb = nullptr, lc = nullptr;
  lt::Preference pref = nullptr;
  explicit Descriptors(Api& api) : a(api) {}
  ~Descriptors() {
    if (pref) a.pref_destroy(pref);
    for (lt::MatrixLayout l : {la, lb, lc})
      if (l) a.layout_destroy(l);
    if (op) a.desc_destroy(op);
  }
};

// Heuristic answers, kept per shape so a training step asks once per GEMM shape.
using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int, bool, bool, size_t, int, bool, bool>;
std::mutex cache_mutex;
std::map<Key, lt::MatmulAlgo>& algo_cache() {
  static std::map<Key, lt::MatmulAlgo> m;
  return m;
}

std::string status_error(const char* what, lt::Status s) { return std::string(what) + " failed with cuBLAS status " + std::to_string(s); }

}  // namespace

bool cublaslt_load(std::string* why) {
  Api& a = api();
  if (!a.handle) {
    if (why) *why = a.error;
    return false;
  }
  return true;
}

std::string cublaslt_loaded_path() { return api().handle ? api().path : std::string(); }
size_t cublaslt_version() { return api().handle ? api().version : 0; }

static const char* type_name(int type) { return type == 0 ? "fp32" : type == 2 ? "fp16" : "bf16"; }

std::string cublaslt_gemm_nt(void* stream, int64_t M, int64_t N, int64_t K, float alpha, int type, const void* A,
                             int64_t lda, int64_t sa, bool a_kmajor, const void* B, int64_t ldb, int64_t sb,
                             bool b_kmajor, float beta, float* C, int64_t ldc, int64_t sc, int64_t batch,
                             const float* bias, bool gelu, void* workspace, size_t workspace_bytes,
                             bool* no_algorithm) {
  if (no_algorithm) *no_algorithm = false;
  Api& a = api();
  if (!a.handle) return "cuBLASLt is not loaded: " + a.error;
#if defined(CLIPSCALE_EMULATED_DEVICE)
  if (no_algorithm) *no_algorithm = true;  // the stand-in: no algorithm for anything
  return std::string("cuBLASLt (the emulated stand-in) has no algorithm for ") + type_name(type) +
         " GEMM M=" + std::to_string(M) +
         " N=" + std::to_string(N) + " K=" + std::to_string(K) + " batch=" + std::to_string(batch);
#endif
  // cuBLASLt is column-major: row-major C[M×N] is column-major Cᵀ[N×M] = (its A: N×K) · (its B: K×M).
  // Its A is our B: K-major, that is a K×N column-major block read transposed; otherwise an
  // N×K column-major block as it is. Its B is our A: K-major, a K×M column-major block;
  // otherwise M×K read transposed. K-major both ways is TN, the layout cuBLASLt serves best.
  Descriptors d(a);
  lt::Status s;
  if ((s = a.desc_create(&d.op, lt::kCompute32F, lt::kR32F))) return status_error("cublasLtMatmulDescCreate", s);
  const int32_t op_a = b_kmajor ? lt::kOpT : lt::kOpN, op_b = a_kmajor ? lt::kOpN : lt::kOpT;
  a.desc_set(d.op, lt::kDescTransA, &op_a, sizeof op_a);
  a.desc_set(d.op, lt::kDescTransB, &op_b, sizeof op_b);
  const int32_t epilogue = bias ? (gelu ? lt::kEpilogueGeluBias : lt::kEpilogueBias)
                                : (gelu ? lt::kEpilogueGelu : lt::kEpilogueDefault);
  if ((s = a.desc_set(d.op, lt::kDescEpilogue, &epilogue, sizeof epilogue)))
    return status_error("setting the epilogue", s);
  if (bias) {
    if ((s = a.desc_set(d.op, lt::kDescBiasPointer, &bias, sizeof bias))) return status_error("setting the bias", s);
    const int32_t bias_type = lt::kR32F;
    a.desc_set(d.op, lt::kDescBiasDataType, &bias_type, sizeof bias_type);  // the default already, on older versions
  }
  const int dtype = type == 0 ? lt::kR32F : type == 2 ? lt::kR16F : lt::kR16BF;
  if ((s = b_kmajor ? a.layout_create(&d.la, dtype, K, N, ldb) : a.layout_create(&d.la, dtype, N, K, ldb)))
    return status_error("cublasLtMatrixLayoutCreate(A)", s);
  if ((s = a_kmajor ? a.layout_create(&d.lb, dtype, K, M, lda) : a.layout_create(&d.lb, dtype, M, K, lda)))
    return status_error("cublasLtMatrixLayoutCreate(B)", s);
  if ((s = a.layout_create(&d.lc, lt::kR32F, N, M, ldc))) return status_error("cublasLtMatrixLayoutCreate(C)", s);
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    for (auto [layout, stride] : {std::pair{d.la, sb}, std::pair{d.lb, sa}, std::pair{d.lc, sc}}) {
      a.layout_set(layout, lt::kLayoutBatchCount, &count, sizeof count);
      a.layout_set(layout, lt::kLayoutStridedBatchOffset, &stride, sizeof stride);
    }
  }
  Key key{M, N, K, lda, ldb, ldc, sa, sb, sc, batch, reinterpret_cast<uintptr_t>(bias) % 16, epilogue, beta != 0.0f,
          (reinterpret_cast<uintptr_t>(C) % 16) == 0, workspace_bytes, type, a_kmajor, b_kmajor};
  lt::MatmulAlgo algo;
  bool cached = false;
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto it = algo_cache().find(key);
    if (it != algo_cache().end()) {
      algo = it->second;
      cached = true;
    }
  }
  if (!cached) {
    if ((s = a.pref_create(&d.pref))) return status_error("cublasLtMatmulPreferenceCreate", s);
    const uint64_t ws = workspace_bytes;
    a.pref_set(d.pref, lt::kPrefMaxWorkspaceBytes, &ws, sizeof ws);
    lt::HeuristicResult result{};
    int returned = 0;
    s = a.heuristic(a.handle, d.op, d.la, d.lb, d.lc, d.lc, d.pref, 1, &result, &returned);
    if (s || returned == 0) {
      if (no_algorithm) *no_algorithm = true;
      std::ostringstream os;
      os << "cuBLASLt has no algorithm for " << type_name(type) << " GEMM M=" << M << " N=" << N << " K=" << K
         << " batch=" << batch
         << " (status " << s << ")";
      return os.str();
    }
    algo = result.algo;
    std::lock_guard<std::mutex> lock(cache_mutex);
    algo_cache()[key] = algo;
  }
  s = a.matmul(a.handle, d.op, &alpha, B, d.la, A, d.lb, &beta, C, d.lc, C, d.lc, &algo, workspace, workspace_bytes,
               stream);
  if (s) return status_error("cublasLtMatmul", s);
  return "";
}

}  // namespace cs::cuda
