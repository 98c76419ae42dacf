// Device helpers shared by the CUDA kernels (stnm_cuda.cu, stnm_cuda_dense.cu):
// block shape, atomics, zeroing and the block reduction of d/dtheta.  nvcc only.
#pragma once

#include <cuda_runtime.h>

#include "stnm_math.h"

namespace ganrepro {
namespace stnm {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxGridY = 65535;

template <typename T>
__device__ __forceinline__ void atomic_add(T* p, T v) {
  atomicAdd(p, v);
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 600
// Native double atomicAdd needs sm_60; older targets use a compare-and-swap loop.
template <>
__device__ __forceinline__ void atomic_add<double>(double* p, double v) {
  auto* address = reinterpret_cast<unsigned long long*>(p);
  unsigned long long old = *address, assumed;
  do {
    assumed = old;
    old = atomicCAS(address, assumed,
                    __double_as_longlong(v + __longlong_as_double(assumed)));
  } while (assumed != old);
}
#endif

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// Sums acc[0..5] over the block; thread 0 ends up with the totals.
template <typename T>
__device__ void block_sum6(T acc[6]) {
  __shared__ T partial[6][kWarps];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
#pragma unroll
  for (int k = 0; k < 6; ++k) acc[k] = warp_sum(acc[k]);
  if (lane == 0) {
#pragma unroll
    for (int k = 0; k < 6; ++k) partial[k][warp] = acc[k];
  }
  __syncthreads();
  if (warp == 0) {
#pragma unroll
    for (int k = 0; k < 6; ++k) acc[k] = warp_sum(lane < kWarps ? partial[k][lane] : T(0));
  }
  __syncthreads();  // `partial` is reused for the next batch element
}

// Thread 0 stores (own_image) or adds (blocks share the image) the block's d/dtheta.
template <typename T>
__device__ void write_grad_theta(T* grad_theta, T acc[6], bool own_image) {
  block_sum6(acc);
  if (threadIdx.x != 0) return;
#pragma unroll
  for (int k = 0; k < 6; ++k) {
    if (own_image) {
      grad_theta[k] = acc[k];
    } else {
      atomic_add(grad_theta + k, acc[k]);
    }
  }
}

// Zeroes n elements at p with the block's threads (16-byte stores when aligned).
template <typename T>
__device__ void zero_run(T* p, int64_t n) {
  if (sizeof(T) == 4 && (reinterpret_cast<uintptr_t>(p) & 15u) == 0) {
    float4* p4 = reinterpret_cast<float4*>(p);
    const int64_t n4 = n / 4;
    for (int64_t e = threadIdx.x; e < n4; e += kThreads) p4[e] = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int64_t e = 4 * n4 + threadIdx.x; e < n; e += kThreads) p[e] = T(0);
    return;
  }
  for (int64_t e = threadIdx.x; e < n; e += kThreads) p[e] = T(0);
}

}  // namespace stnm
}  // namespace ganrepro
