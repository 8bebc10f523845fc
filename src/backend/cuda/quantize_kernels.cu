// quench/backend/cuda/quantize_kernels.cu: GPU weight quantization (see quantize_gpu.h).
//
// Bit-exactness with the CPU path (src/quant/nvfp4.cpp, src/quant/fp8.cpp, src/core/numeric.cpp):
// - fp32 arithmetic uses the explicit round-to-nearest intrinsics (__fmul_rn, __fdiv_rn,
//   __fadd_rn), which nvcc never contracts into FMAs; the build uses no fast-math, so subnormals
//   are kept (no FTZ) as on x86 SSE;
// - amax is a max (exact in any order); fmaxf ignores NaN like std::fmax / the CPU's `a > m`;
// - the E4M3 encode is c10's bit algorithm (core/numeric.cpp f32_to_fp8e4m3, saturate = false);
// - the E2M1 code is ModelOpt's `_cast_fp4` threshold count (quant/nvfp4.cpp e2m1_code).
#include "backend/cuda/quantize_gpu.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <thread>
#include <vector>

#include "backend/cuda/cuda_utils.h"  // QUENCH_CUDA_CHECK, DeviceBuffer, CudaError
#include "core/error.h"               // InvalidArgument

namespace quench::cuda {

namespace {

/// Concatenates the arguments with operator<< (fmt's consteval format strings do not compile
/// under nvcc in C++20 mode, so messages are built with a stream here).
template <typename... A>
std::string cat(const A&... a) {
  std::ostringstream os;
  (os << ... << a);
  return os.str();
}

constexpr int kBlock = 16;        // NVFP4 group size (ModelOpt block_size)
constexpr int kThreads = 256;

// ---- scalar numerics (device) ------------------------------------------------------------------

/// fp32 -> FP8 E4M3FN byte, RNE, non-saturating (values >= 480, inf, NaN -> 0x7f | sign).
/// Same bit algorithm as core/numeric.cpp f32_to_fp8e4m3(v, false) (c10 fp8e4m3fn_from_fp32_value).
__device__ __forceinline__ uint8_t f32_to_e4m3(float v) {
  uint32_t f = __float_as_uint(v);
  const uint32_t sign = f & 0x80000000u;
  f ^= sign;
  uint8_t result;
  if (f >= (1087u << 20)) {
    result = 0x7f;
  } else if (f < (121u << 23)) {
    // Below 2^-6: the fp32 adder rounds onto the subnormal grid (ulp 2^-9) when 2^14 is added.
    const uint32_t denorm_mask = 141u << 23;
    const uint32_t r = __float_as_uint(__fadd_rn(__uint_as_float(f), __uint_as_float(denorm_mask)));
    result = static_cast<uint8_t>(r - denorm_mask);
  } else {
    const uint32_t mant_odd = (f >> 20) & 1u;
    f += (static_cast<uint32_t>(7 - 127) << 23) + 0x7ffffu + mant_odd;
    result = static_cast<uint8_t>(f >> 20);
  }
  return static_cast<uint8_t>(result | (sign >> 24));
}

/// FP8 E4M3FN byte -> fp32 (exact; 0x7f / 0xff -> NaN), as core/numeric.cpp fp8e4m3_to_f32.
__device__ __forceinline__ float e4m3_to_f32(uint8_t b) {
  const uint32_t e = (b >> 3) & 0xfu, m = b & 0x7u;
  float mag;
  if (e == 0xf && m == 0x7) mag = __uint_as_float(0x7fc00000u);
  else if (e == 0) mag = __fmul_rn(static_cast<float>(m), 0x1p-9f);  // m/8 * 2^-6, exact
  else mag = __uint_as_float(((e + 120u) << 23) | (m << 20));        // (1 + m/8) * 2^(e-7)
  return (b & 0x80u) ? -mag : mag;
}

/// E2M1 nibble of x with ModelOpt's rounding: the number of bounds {0.25, 0.75, 1.25, 1.75, 2.5,
/// 3.5, 5} below |x| (ties 0.75, 1.75, 3.5 counted: ties go to the even code), 7 for NaN, sign bit
/// = (x < 0). Identical to quant/nvfp4.cpp e2m1_code.
__device__ __forceinline__ uint32_t e2m1_code(float x) {
  const float a = fabsf(x);
  const int c = (a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) + (a > 2.5f) + (a >= 3.5f) + (a > 5.0f);
  const int code = (a != a) ? 7 : c;
  return static_cast<uint32_t>(code | ((x < 0.0f) ? 8 : 0));
}

/// E2M1 nibble -> fp32 (§1.1 table).
__device__ __forceinline__ float e2m1_value(uint32_t nib) {
  const uint32_t c = nib & 7u;
  // 0, 0.5, 1, 1.5, 2, 3, 4, 6
  const float mag = c < 4 ? 0.5f * static_cast<float>(c) : (c == 7 ? 6.0f : static_cast<float>(c - 2));
  return (nib & 8u) ? -mag : mag;
}

/// Element i of a source tensor as fp32 (exact for BF16 / F16 / F32).
template <DType D>
__device__ __forceinline__ float load_f32(const void* p, int64_t i) {
  if constexpr (D == DType::kBF16) {
    return __uint_as_float(static_cast<uint32_t>(static_cast<const uint16_t*>(p)[i]) << 16);
  } else if constexpr (D == DType::kF16) {
    return __half2float(static_cast<const __half*>(p)[i]);
  } else {
    return static_cast<const float*>(p)[i];
  }
}

/// 16 consecutive elements starting at 16*blk (the block is 32- or 64-byte aligned: cudaMalloc'd
/// base, cols % 16 == 0) loaded with vector loads.
template <DType D>
__device__ __forceinline__ void load_block(const void* p, int64_t blk, float (&v)[kBlock]) {
  if constexpr (D == DType::kF32) {
    const float4* q = reinterpret_cast<const float4*>(static_cast<const float*>(p) + blk * kBlock);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float4 t = q[j];
      v[4 * j] = t.x, v[4 * j + 1] = t.y, v[4 * j + 2] = t.z, v[4 * j + 3] = t.w;
    }
  } else {
    const uint4* q = reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(p) + blk * kBlock);
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const uint4 t = q[j];
      const uint32_t w[4] = {t.x, t.y, t.z, t.w};
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const uint16_t lo = static_cast<uint16_t>(w[k] & 0xffffu), hi = static_cast<uint16_t>(w[k] >> 16);
        if constexpr (D == DType::kBF16) {
          v[8 * j + 2 * k] = __uint_as_float(static_cast<uint32_t>(lo) << 16);
          v[8 * j + 2 * k + 1] = __uint_as_float(static_cast<uint32_t>(hi) << 16);
        } else {
          v[8 * j + 2 * k] = __half2float(__ushort_as_half(lo));
          v[8 * j + 2 * k + 1] = __half2float(__ushort_as_half(hi));
        }
      }
    }
  }
}

// ---- reductions ----------------------------------------------------------------------------------

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/// Adds the CTA's (num, den) into acc[0], acc[1] (double atomics, sm_60+).
__device__ __forceinline__ void block_accumulate(double num, double den, double* acc) {
  __shared__ double s_num[kThreads / 32], s_den[kThreads / 32];
  num = warp_sum(num);
  den = warp_sum(den);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) s_num[warp] = num, s_den[warp] = den;
  __syncthreads();
  if (warp == 0) {
    num = lane < kThreads / 32 ? s_num[lane] : 0.0;
    den = lane < kThreads / 32 ? s_den[lane] : 0.0;
    num = warp_sum(num);
    den = warp_sum(den);
    if (lane == 0) {
      atomicAdd(acc, num);
      atomicAdd(acc + 1, den);
    }
  }
}

// ---- kernels -------------------------------------------------------------------------------------

/// *amax_bits = max(*amax_bits, bits of max |w|) over n elements (non-negative floats order like
/// their bit patterns, so an unsigned atomicMax is exact). *amax_bits must start at 0.
template <DType D>
__global__ void __launch_bounds__(kThreads) amax_kernel(const void* w, int64_t n, unsigned int* amax_bits) {
  float m = 0.0f;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    m = fmaxf(m, fabsf(load_f32<D>(w, i)));  // fmaxf(0, NaN) = 0: NaN is skipped
  m = warp_max(m);
  __shared__ float s[kThreads / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) s[warp] = m;
  __syncthreads();
  if (warp == 0) {
    m = lane < kThreads / 32 ? s[lane] : 0.0f;
    m = warp_max(m);
    if (lane == 0) atomicMax(amax_bits, __float_as_uint(m));
  }
}

/// One thread per 16-element block (nblocks = rows * cols / 16; block b's scale is scales[b] and
/// its codes are packed[8b .. 8b+7] since cols % 16 == 0). Formulas of quant/nvfp4.cpp
/// nvfp4_block_scale / nvfp4_quantize (spec §3.2, §3.3, §1.4); acc += (sum (w - dq)^2, sum w^2).
template <DType D>
__global__ void __launch_bounds__(kThreads) nvfp4_kernel(const void* w, int64_t nblocks, float g, uint8_t* packed,
                                                          uint8_t* scales, double* acc) {
  const int64_t b = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  double num = 0.0, den = 0.0;
  if (b < nblocks) {
    float v[kBlock];
    load_block<D>(w, b, v);
    float amax_b = 0.0f;
#pragma unroll
    for (int i = 0; i < kBlock; ++i) amax_b = fmaxf(amax_b, fabsf(v[i]));
    uint8_t sbyte;
    if (!(g > 0.0f)) {
      sbyte = 0x38;  // e4m3(1.0): all-zero tensor
    } else {
      float s = __fdiv_rn(amax_b, __fmul_rn(6.0f, g));  // fl32(amax_b / fl32(6 g))
      if (s == 0.0f) s = 1.0f;
      s = s < 0x1p-9f ? 0x1p-9f : s;
      s = s > 448.0f ? 448.0f : s;
      sbyte = f32_to_e4m3(s);
    }
    scales[b] = sbyte;
    const float d = __fmul_rn(e4m3_to_f32(sbyte), g);  // fl32(float(s) * g)
    uint32_t lo = 0, hi = 0;
    if (d > 0.0f) {
#pragma unroll
      for (int i = 0; i < kBlock; ++i) {
        const uint32_t c = e2m1_code(__fdiv_rn(v[i], d));  // code of fl32(w / d)
        if (i < 8) lo |= c << (4 * i);
        else hi |= c << (4 * (i - 8));
        const double x = v[i], e = x - static_cast<double>(__fmul_rn(e2m1_value(c), d));
        num += e * e;
        den += x * x;
      }
    } else {  // g == 0: every code 0, dequantized 0
#pragma unroll
      for (int i = 0; i < kBlock; ++i) {
        const double x = v[i];
        num += x * x;
        den += x * x;
      }
    }
    reinterpret_cast<uint2*>(packed)[b] = make_uint2(lo, hi);
  }
  block_accumulate(num, den, acc);
}

/// out[i] = e4m3(fl32(w[i] / scale)) (quant/fp8.cpp fp8_quantize); acc as above.
template <DType D>
__global__ void __launch_bounds__(kThreads) fp8_kernel(const void* w, int64_t n, float scale, uint8_t* out,
                                                        double* acc) {
  double num = 0.0, den = 0.0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float x = load_f32<D>(w, i);
    const uint8_t q = f32_to_e4m3(__fdiv_rn(x, scale));
    out[i] = q;
    const double e = static_cast<double>(x) - static_cast<double>(__fmul_rn(e4m3_to_f32(q), scale));
    num += e * e;
    den += static_cast<double>(x) * x;
  }
  block_accumulate(num, den, acc);
}

/// memcpy split over up to `threads` std::threads (pieces of at least 4 MiB): copying out of a
/// checkpoint mmap is page-fault bound, and one core would cap the upload at a few GB/s.
void parallel_memcpy(void* dst, const void* src, std::size_t n, int threads) {
  constexpr std::size_t kMinPiece = std::size_t{4} << 20;
  const int t = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(std::max(threads, 1)),
                                                       std::max<std::size_t>(n / kMinPiece, 1)));
  if (t <= 1) {
    std::memcpy(dst, src, n);
    return;
  }
  const std::size_t piece = (n + t - 1) / t;
  std::vector<std::thread> pool;
  pool.reserve(t - 1);
  for (int i = 1; i < t; ++i) {
    const std::size_t off = i * piece;
    if (off >= n) break;
    pool.emplace_back([=] {
      std::memcpy(static_cast<unsigned char*>(dst) + off, static_cast<const unsigned char*>(src) + off,
                  std::min(piece, n - off));
    });
  }
  std::memcpy(dst, src, std::min(piece, n));
  for (auto& th : pool) th.join();
}

int grid_for(int64_t n_threads_wanted, int cap) {
  const int64_t g = (n_threads_wanted + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(g, cap)));
}

/// Dispatches a kernel template on the source dtype.
template <template <DType> class K, typename... Args>
void dispatch(DType t, Args&&... args) {
  switch (t) {
    case DType::kBF16: K<DType::kBF16>::run(args...); break;
    case DType::kF16: K<DType::kF16>::run(args...); break;
    case DType::kF32: K<DType::kF32>::run(args...); break;
    default: throw InvalidArgument(cat("GPU quantizer: dtype ", dtype_name(t), " is not BF16, F16 or F32"));
  }
}

template <DType D>
struct AmaxLaunch {
  static void run(const void* w, int64_t n, unsigned int* bits, int max_grid, cudaStream_t s) {
    amax_kernel<D><<<grid_for(n, max_grid), kThreads, 0, s>>>(w, n, bits);
    QUENCH_CUDA_LAUNCH_CHECK();
  }
};

template <DType D>
struct Nvfp4Launch {
  static void run(const void* w, int64_t nblocks, float g, uint8_t* packed, uint8_t* scales, double* acc,
                  cudaStream_t s) {
    const int64_t grid = (nblocks + kThreads - 1) / kThreads;
    nvfp4_kernel<D><<<static_cast<unsigned>(std::max<int64_t>(grid, 1)), kThreads, 0, s>>>(w, nblocks, g, packed,
                                                                                          scales, acc);
    QUENCH_CUDA_LAUNCH_CHECK();
  }
};

template <DType D>
struct Fp8Launch {
  static void run(const void* w, int64_t n, float scale, uint8_t* out, double* acc, int max_grid, cudaStream_t s) {
    fp8_kernel<D><<<grid_for((n + 3) / 4, max_grid), kThreads, 0, s>>>(w, n, scale, out, acc);
    QUENCH_CUDA_LAUNCH_CHECK();
  }
};

}  // namespace

// ---- host side -------------------------------------------------------------------------------------

void accumulate_amax(const void* x, DType dtype, int64_t n, uint32_t* amax_bits, cudaStream_t stream) {
  if (n < 0) throw InvalidArgument(cat("accumulate_amax: negative element count ", n));
  if (n == 0) return;
  int device = 0, sms = 0;
  QUENCH_CUDA_CHECK(cudaGetDevice(&device));
  QUENCH_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  dispatch<AmaxLaunch>(dtype, x, n, reinterpret_cast<unsigned int*>(amax_bits), std::max(sms, 1) * 8, stream);
}

struct GpuWeightQuantizer::Impl {
  struct Slot {
    DeviceBuffer buf;
    DeviceWeightInfo info;
    bool loaded = false;
  };
  int device = 0;
  int max_grid = 0;  ///< SMs x 8 CTAs for the grid-stride kernels
  int copy_threads = 1;  ///< host threads for the pageable <-> pinned copies
  cudaStream_t stream = nullptr;
  std::size_t staging_bytes = 0;
  void* pinned[2] = {nullptr, nullptr};
  cudaEvent_t done[2] = {nullptr, nullptr};  ///< the last async copy through pinned[i] finished
  std::vector<Slot> slots;
  DeviceBuffer out_a, out_b;  ///< quantized results (codes, block scales)
  DeviceBuffer scratch;       ///< [0..7]: amax bits (uint32); [8..23]: (num, den) doubles

  ~Impl() {
    if (device >= 0) cudaSetDevice(device);
    for (int i = 0; i < 2; ++i) {
      if (pinned[i]) cudaFreeHost(pinned[i]);
      if (done[i]) cudaEventDestroy(done[i]);
    }
    if (stream) cudaStreamDestroy(stream);
  }

  void activate() const { QUENCH_CUDA_CHECK(cudaSetDevice(device)); }

  /// Host -> device through the two pinned buffers; the memcpy into one overlaps the DMA of the other.
  void upload(void* dst, const void* src, std::size_t nbytes) {
    const auto* s = static_cast<const unsigned char*>(src);
    auto* d = static_cast<unsigned char*>(dst);
    int b = 0;
    for (std::size_t off = 0; off < nbytes; off += staging_bytes, b ^= 1) {
      const std::size_t n = std::min(staging_bytes, nbytes - off);
      QUENCH_CUDA_CHECK(cudaEventSynchronize(done[b]));
      parallel_memcpy(pinned[b], s + off, n, copy_threads);
      QUENCH_CUDA_CHECK(cudaMemcpyAsync(d + off, pinned[b], n, cudaMemcpyHostToDevice, stream));
      QUENCH_CUDA_CHECK(cudaEventRecord(done[b], stream));
    }
  }

  /// Device -> host through the pinned buffers: chunk i is copied out on the host while chunk i+1
  /// is in flight. Waits for everything queued on the stream before (the kernels) first.
  void download(void* dst, const void* src, std::size_t nbytes) {
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    std::size_t prev_off = 0, prev_n = 0;
    int b = 0;
    for (std::size_t off = 0; off < nbytes; off += staging_bytes, b ^= 1) {
      const std::size_t n = std::min(staging_bytes, nbytes - off);
      QUENCH_CUDA_CHECK(cudaMemcpyAsync(pinned[b], s + off, n, cudaMemcpyDeviceToHost, stream));
      QUENCH_CUDA_CHECK(cudaEventRecord(done[b], stream));
      if (prev_n > 0) {
        QUENCH_CUDA_CHECK(cudaEventSynchronize(done[b ^ 1]));
        parallel_memcpy(d + prev_off, pinned[b ^ 1], prev_n, copy_threads);
      }
      prev_off = off;
      prev_n = n;
    }
    if (prev_n > 0) {
      QUENCH_CUDA_CHECK(cudaEventSynchronize(done[b ^ 1]));
      parallel_memcpy(d + prev_off, pinned[b ^ 1], prev_n, copy_threads);
    }
  }

  Slot& loaded_slot(int slot) {
    if (slot < 0 || slot >= static_cast<int>(slots.size()) || !slots[slot].loaded)
      throw InvalidArgument(cat("GPU quantizer: slot ", slot, " holds no uploaded weight"));
    return slots[slot];
  }

  void clear_acc() { QUENCH_CUDA_CHECK(cudaMemsetAsync(scratch.get<unsigned char>() + 8, 0, 16, stream)); }

  QuantError read_error() {
    double acc[2];
    QUENCH_CUDA_CHECK(cudaMemcpyAsync(acc, scratch.get<unsigned char>() + 8, 16, cudaMemcpyDeviceToHost, stream));
    QUENCH_CUDA_CHECK(cudaStreamSynchronize(stream));
    QuantError e;
    e.rel_l2 = acc[1] > 0 ? std::sqrt(acc[0] / acc[1]) : 0.0;
    return e;
  }
};

GpuWeightQuantizer::GpuWeightQuantizer(int device, std::size_t staging_bytes) : impl_(std::make_unique<Impl>()) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count <= device || device < 0)
    throw CudaError(cat("GPU quantizer: CUDA device ", device, " is not available (",
                        err == cudaSuccess ? count : 0, " device(s)", err == cudaSuccess ? "" : ": ",
                        err == cudaSuccess ? "" : cudaGetErrorString(err), ")"));
  if (staging_bytes < 4096)
    throw InvalidArgument(cat("GPU quantizer: staging buffer of ", staging_bytes, " bytes; expected >= 4096"));
  Impl& m = *impl_;
  m.device = device;
  m.staging_bytes = staging_bytes;
  m.activate();
  int sms = 0;
  QUENCH_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  m.max_grid = std::max(1, sms) * 8;
  m.copy_threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  QUENCH_CUDA_CHECK(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
  for (int i = 0; i < 2; ++i) {
    QUENCH_CUDA_CHECK(cudaHostAlloc(&m.pinned[i], staging_bytes, cudaHostAllocDefault));
    QUENCH_CUDA_CHECK(cudaEventCreateWithFlags(&m.done[i], cudaEventDisableTiming));
  }
  m.scratch.reset(32);
}

GpuWeightQuantizer::~GpuWeightQuantizer() = default;

std::string GpuWeightQuantizer::device_description() const { return cuda_device_description(impl_->device); }

const DeviceWeightInfo& GpuWeightQuantizer::info(int slot) const {
  if (slot < 0 || slot >= static_cast<int>(impl_->slots.size()) || !impl_->slots[slot].loaded)
    throw InvalidArgument(cat("GPU quantizer: slot ", slot, " holds no uploaded weight"));
  return impl_->slots[slot].info;
}

DeviceWeightInfo GpuWeightQuantizer::upload(int slot, const void* host, DType dtype, int64_t rows, int64_t cols) {
  Impl& m = *impl_;
  if (slot < 0 || slot > 1024) throw InvalidArgument(cat("GPU quantizer: slot ", slot, " out of range [0, 1024]"));
  if (dtype != DType::kBF16 && dtype != DType::kF16 && dtype != DType::kF32)
    throw InvalidArgument(cat("GPU quantizer: dtype ", dtype_name(dtype), " is not BF16, F16 or F32"));
  if (rows < 0 || cols < 0)
    throw InvalidArgument(cat("GPU quantizer: shape [", rows, ", ", cols, "] has a negative dimension"));
  m.activate();
  if (slot >= static_cast<int>(m.slots.size())) m.slots.resize(slot + 1);
  Impl::Slot& s = m.slots[slot];
  const int64_t n = rows * cols;
  const std::size_t nbytes = static_cast<std::size_t>(n) * dtype_size(dtype);
  if (s.buf.bytes() < std::max<std::size_t>(nbytes, 1)) s.buf.reset(std::max<std::size_t>(nbytes, 1));
  s.loaded = false;
  m.upload(s.buf.get(), host, nbytes);
  QUENCH_CUDA_CHECK(cudaMemsetAsync(m.scratch.get(), 0, 4, m.stream));
  if (n > 0) dispatch<AmaxLaunch>(dtype, s.buf.get(), n, m.scratch.get<unsigned int>(), m.max_grid, m.stream);
  unsigned int bits = 0;
  QUENCH_CUDA_CHECK(cudaMemcpyAsync(&bits, m.scratch.get(), 4, cudaMemcpyDeviceToHost, m.stream));
  QUENCH_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  float amax;
  std::memcpy(&amax, &bits, 4);
  s.info = {rows, cols, dtype, amax};
  s.loaded = true;
  return s.info;
}

QuantError GpuWeightQuantizer::quantize_nvfp4(int slot, float global_scale, std::span<uint8_t> packed,
                                              std::span<uint8_t> scales) {
  Impl& m = *impl_;
  Impl::Slot& s = m.loaded_slot(slot);
  const int64_t rows = s.info.rows, cols = s.info.cols;
  if (cols <= 0 || cols % kBlock != 0)
    throw InvalidArgument(cat("GPU nvfp4 quantize: shape [", rows, ", ", cols,
                              "]: the input dimension must be a positive multiple of ", kBlock));
  const auto n = static_cast<std::size_t>(rows * cols);
  if (packed.size() != n / 2 || scales.size() != n / kBlock)
    throw InvalidArgument(cat("GPU nvfp4 quantize: shape [", rows, ", ", cols, "] needs ", n / 2,
                              " packed bytes and ", n / kBlock, " scales; got ", packed.size(), ", ", scales.size()));
  m.activate();
  if (m.out_a.bytes() < std::max<std::size_t>(n / 2, 8)) m.out_a.reset(std::max<std::size_t>(n / 2, 8));
  if (m.out_b.bytes() < std::max<std::size_t>(n / kBlock, 8)) m.out_b.reset(std::max<std::size_t>(n / kBlock, 8));
  m.clear_acc();
  const auto acc = reinterpret_cast<double*>(m.scratch.get<unsigned char>() + 8);
  const int64_t nblocks = static_cast<int64_t>(n / kBlock);
  if (nblocks > 0)
    dispatch<Nvfp4Launch>(s.info.dtype, s.buf.get(), nblocks, global_scale, m.out_a.get<uint8_t>(),
                          m.out_b.get<uint8_t>(), acc, m.stream);
  m.download(packed.data(), m.out_a.get(), n / 2);
  m.download(scales.data(), m.out_b.get(), n / kBlock);
  return m.read_error();
}

QuantError GpuWeightQuantizer::quantize_fp8(int slot, float scale, std::span<uint8_t> out) {
  Impl& m = *impl_;
  Impl::Slot& s = m.loaded_slot(slot);
  const auto n = static_cast<std::size_t>(s.info.rows * s.info.cols);
  if (out.size() != n)
    throw InvalidArgument(cat("GPU fp8 quantize: ", n, " weights but ", out.size(), " output bytes"));
  if (!(scale > 0.0f)) throw InvalidArgument(cat("GPU fp8 quantize: scale must be > 0, got ", scale));
  m.activate();
  if (m.out_a.bytes() < std::max<std::size_t>(n, 8)) m.out_a.reset(std::max<std::size_t>(n, 8));
  m.clear_acc();
  const auto acc = reinterpret_cast<double*>(m.scratch.get<unsigned char>() + 8);
  if (n > 0)
    dispatch<Fp8Launch>(s.info.dtype, s.buf.get(), static_cast<int64_t>(n), scale, m.out_a.get<uint8_t>(), acc,
                        m.max_grid, m.stream);
  m.download(out.data(), m.out_a.get(), n);
  return m.read_error();
}

}  // namespace quench::cuda
