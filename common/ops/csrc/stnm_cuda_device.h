// Device helpers of the CUDA kernels (stnm_cuda.cu, stnm_cuda_dense.cu,
// stnm_cuda_gather.cu): block shape, atomics, zeroing, the block reduction of
// d/dtheta, the explicit global loads, stores and reductions of the dense
// kernels, and the gather backward's scratch pixels.  nvcc only.
#pragma once

#include <cuda_runtime.h>

#include "stnm_cuda.h"
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

// ---------------------------------------------------------------------------
// Memory access.  A batch element's base pointer goes through opaque(), so the
// compiler keeps it in registers and forms each address as base + 32-bit offset
// instead of re-deriving a 64-bit index per access.  Since that hides the
// global state space from the compiler, loads, stores and reductions say it
// themselves (cvta.to.global is free on current GPUs).

template <typename T>
__device__ __forceinline__ T* opaque(T* p) {
  asm("" : "+l"(p));
  return p;
}

template <typename T>
__device__ __forceinline__ T* image_of(const Image32<T>& view, int64_t b) {
  return opaque(view.data + b * view.sb);
}

// Batch element b's part of the gather's scratch buffer, (B, H, W, C + 1).
__device__ __forceinline__ float* scratch_of(const DenseBackwardArgs& a, int64_t b) {
  return opaque(a.scratch + b * a.shape.H * a.shape.W * (a.shape.C + 1));
}

__device__ __forceinline__ float ld(const float* p) { return __ldg(p); }

__device__ __forceinline__ void st(float* p, float v) {
  asm volatile("{\n\t.reg .u64 g;\n\tcvta.to.global.u64 g, %0;\n\tst.global.f32 [g], %1;\n\t}"
               :: "l"(p), "f"(v) : "memory");
}

// atomicAdd without a result.
__device__ __forceinline__ void red(float* p, float v) {
  asm volatile(
      "{\n\t.reg .u64 g;\n\tcvta.to.global.u64 g, %0;\n\tred.global.add.f32 [g], %1;\n\t}"
      :: "l"(p), "f"(v) : "memory");
}

__device__ __forceinline__ void red_if(bool add, float* p, float v) {
  if (add) red(p, v);
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define GANREPRO_STNM_PAIR_ATOMICS 1
// One 8-byte reduction (sm_90+); p must be 8-byte aligned.
__device__ __forceinline__ void red2(float* p, float v0, float v1) {
  asm volatile(
      "{\n\t.reg .u64 g;\n\tcvta.to.global.u64 g, %0;\n\tred.global.add.v2.f32 [g], {%1, %2};\n\t}"
      :: "l"(p), "f"(v0), "f"(v1) : "memory");
}
#else
#define GANREPRO_STNM_PAIR_ATOMICS 0
#endif

// The gather backward's scratch pixel: C + 1 floats stored and loaded as one
// vector (16 bytes for C = 3, 8 for C = 1; the buffer is aligned to that).
template <int C>
struct ScratchPixel;

template <>
struct ScratchPixel<3> {
  static __device__ __forceinline__ void store(float* p, const float v[4]) {
    asm volatile(
        "{\n\t.reg .u64 g;\n\tcvta.to.global.u64 g, %0;\n\t"
        "st.global.v4.f32 [g], {%1, %2, %3, %4};\n\t}"
        :: "l"(p), "f"(v[0]), "f"(v[1]), "f"(v[2]), "f"(v[3]) : "memory");
  }
  static __device__ __forceinline__ void load(const float* p, float v[4]) {
    const float4 q = __ldg(reinterpret_cast<const float4*>(p));
    v[0] = q.x;
    v[1] = q.y;
    v[2] = q.z;
    v[3] = q.w;
  }
};

template <>
struct ScratchPixel<1> {
  static __device__ __forceinline__ void store(float* p, const float v[2]) {
    asm volatile(
        "{\n\t.reg .u64 g;\n\tcvta.to.global.u64 g, %0;\n\tst.global.v2.f32 [g], {%1, %2};\n\t}"
        :: "l"(p), "f"(v[0]), "f"(v[1]) : "memory");
  }
  static __device__ __forceinline__ void load(const float* p, float v[2]) {
    const float2 q = __ldg(reinterpret_cast<const float2*>(p));
    v[0] = q.x;
    v[1] = q.y;
  }
};

// The gather's pass 1 stores a pixel's C + 1 values instead of scattering them.
template <int C>
__device__ __forceinline__ void store_scratch(const Grid<float, int>& grid, float* scratch, int i,
                                              int j, const float gf[C], float gm) {
  float v[C + 1];
#pragma unroll
  for (int c = 0; c < C; ++c) v[c] = gf[c];
  v[C] = gm;
  ScratchPixel<C>::store(scratch + (i * grid.W + j) * (C + 1), v);
}

// The gather's pass 1, for an image whose gather window is unbounded: pass 2
// will scatter into its grad_fg and grad_mask, so each block that works on the
// image zeroes its share of them now.
__device__ __forceinline__ void zero_for_scatter(const DenseBackwardArgs& a,
                                                 const Grid<float, int>& grid,
                                                 const Pose<float>& pose, int64_t b) {
  if (gather_window(pose, grid).ok) return;
  const int64_t blocks = static_cast<int64_t>(gridDim.x) * gridDim.y;
  const int64_t k = static_cast<int64_t>(blockIdx.y) * gridDim.x + blockIdx.x;
  const int64_t plane = a.shape.Hf * a.shape.Wf;
  const int64_t fg_begin = a.shape.C * plane * k / blocks;
  const int64_t fg_end = a.shape.C * plane * (k + 1) / blocks;
  zero_run(a.grad_fg.data + b * a.grad_fg.sb + fg_begin, fg_end - fg_begin);
  const int64_t mask_begin = plane * k / blocks, mask_end = plane * (k + 1) / blocks;
  zero_run(a.grad_mask.data + b * a.grad_mask.sb + mask_begin, mask_end - mask_begin);
}

// The four taps of one plane at p (the top-left tap); outside taps read 0.
__device__ __forceinline__ void load4(const float* p, int sh, const Footprint<float, int>& f,
                                      float v[4]) {
  v[0] = f.in[0] ? ld(p) : 0.f;
  v[1] = f.in[1] ? ld(p + 1) : 0.f;
  v[2] = f.in[2] ? ld(p + sh) : 0.f;
  v[3] = f.in[3] ? ld(p + sh + 1) : 0.f;
}

// Adds v0 at p[0] and v1 at p[1] (horizontally adjacent taps), each only if its
// tap is inside the source (both are, if ALL).  With PAIR a pair that is wholly
// inside goes out as one 8-byte reduction: at p when p is 8-byte aligned, else
// (0, v0) at p - 1 and v1 alone.  PAIR needs rows that start 8-byte aligned (the
// launcher checks), so a misaligned p is at an odd x >= 1 and p - 1 is in the
// same row, where adding 0 changes nothing.  That is 1.5 instead of 2
// memory-side atomics per pair on average.
template <bool PAIR, bool ALL>
__device__ __forceinline__ void add_pair(float* p, bool in0, bool in1, float v0, float v1) {
#if GANREPRO_STNM_PAIR_ATOMICS
  if (PAIR && (ALL || (in0 && in1))) {
    const bool odd = (reinterpret_cast<uintptr_t>(p) & 7u) != 0;
    red2(odd ? p - 1 : p, odd ? 0.f : v0, odd ? v0 : v1);
    red_if(odd, p + 1, v1);
    return;
  }
#endif
  if (ALL) {
    red(p, v0);
    red(p + 1, v1);
  } else {
    red_if(in0, p, v0);
    red_if(in1, p + 1, v1);
  }
}

// Scatters value * w[t] to the four taps of one plane at p (the top-left tap).
template <bool PAIR, bool ALL>
__device__ __forceinline__ void scatter(float* p, int sh, const Footprint<float, int>& f,
                                        float value) {
  add_pair<PAIR, ALL>(p, f.in[0], f.in[1], f.w[0] * value, f.w[1] * value);
  add_pair<PAIR, ALL>(p + sh, f.in[2], f.in[3], f.w[2] * value, f.w[3] * value);
}

}  // namespace stnm
}  // namespace ganrepro
