// CUDA kernels of STNM.  The per-pixel math lives in stnm_math.h and is shared
// with the CPU kernel; this file adds the thread layout, the atomic scatter of
// grad_fg / grad_mask and the block reduction of d/dtheta.
#include "stnm_cuda.h"

namespace ganrepro {
namespace stnm {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxGridY = 65535;
// When the backward kernel splits images over blocks, it aims for this many
// blocks per SM in total.
constexpr int kBlocksPerSm = 8;
// Images up to this many output pixels (16 per thread) take one block each.
constexpr int64_t kOwnImagePixels = 4096;

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

struct AtomicAdd {
  template <typename T>
  __device__ __forceinline__ void operator()(T* p, T v) const { atomic_add(p, v); }
};

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

// Grid: x walks the pixels of one image, y walks the batch.  Asking for three
// resident blocks per SM keeps more loads in flight; it costs no spills in
// float32 (the backward would spill, so it keeps the compiler's choice).
template <int G, typename T>
__global__ void __launch_bounds__(kThreads, 3) forward_kernel(const ForwardArgs<T> a) {
  const int W = static_cast<int>(a.shape.W);
  const int hw = static_cast<int>(a.shape.H * a.shape.W);
  for (int64_t b = blockIdx.y; b < a.shape.B; b += gridDim.y) {
    for (int r = blockIdx.x * kThreads + threadIdx.x; r < hw; r += gridDim.x * kThreads) {
      const int i = r / W;
      forward_pixel<G>(a, b, i, r - i * W);
    }
  }
}

template <typename T>
__device__ void zero_run(T* p, int64_t n) {
  for (int64_t e = threadIdx.x; e < n; e += kThreads) p[e] = T(0);
}

// Two modes, chosen by the launcher:
//  * gridDim.x == 1: the block owns whole batch elements.  It zeroes their
//    grad_fg / grad_mask slices itself (no memset pass, and the slices stay in
//    L2 while they are accumulated) and stores d/dtheta directly.
//  * gridDim.x > 1: blocks split an image; the launcher has zeroed the
//    gradients and each block adds its d/dtheta partial sums atomically.
template <int G, typename T>
__global__ void __launch_bounds__(kThreads) backward_kernel(const BackwardArgs<T> a) {
  const int W = static_cast<int>(a.shape.W);
  const int hw = static_cast<int>(a.shape.H * a.shape.W);
  const bool own_image = gridDim.x == 1;
  for (int64_t b = blockIdx.y; b < a.shape.B; b += gridDim.y) {
    if (own_image) {
      zero_run(a.grad_fg.data + b * a.grad_fg.sb, a.shape.C * a.shape.Hf * a.shape.Wf);
      zero_run(a.grad_mask.data + b * a.grad_mask.sb, a.shape.Hf * a.shape.Wf);
      __syncthreads();
    }
    T acc[6] = {T(0), T(0), T(0), T(0), T(0), T(0)};
    for (int r = blockIdx.x * kThreads + threadIdx.x; r < hw; r += gridDim.x * kThreads) {
      const int i = r / W;
      backward_pixel<G>(a, b, i, r - i * W, acc, AtomicAdd{});
    }
    block_sum6(acc);
    if (threadIdx.x == 0) {
      T* grad_theta = a.grad_theta + b * 6;
#pragma unroll
      for (int k = 0; k < 6; ++k) {
        if (own_image) {
          grad_theta[k] = acc[k];
        } else {
          atomic_add(grad_theta + k, acc[k]);
        }
      }
    }
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

template <typename T>
cudaError_t launch_forward(const ForwardArgs<T>& a, cudaStream_t stream) {
  const int64_t hw = a.shape.H * a.shape.W;
  if (a.shape.B == 0 || hw == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(ceil_div(hw, kThreads)),
                  static_cast<unsigned>(a.shape.B < kMaxGridY ? a.shape.B : kMaxGridY));
  with_channel_group(a.shape.C, [&](auto group) {
    forward_kernel<decltype(group)::value, T><<<grid, kThreads, 0, stream>>>(a);
  });
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_backward(const BackwardArgs<T>& a, size_t grad_fg_bytes,
                            size_t grad_mask_bytes, cudaStream_t stream) {
  int device = 0, sm_count = 0;
  cudaError_t status = cudaGetDevice(&device);
  if (status == cudaSuccess)
    status = cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device);
  if (status != cudaSuccess) return status;
  const int64_t B = a.shape.B;
  const int64_t hw = a.shape.H * a.shape.W;
  const size_t grad_theta_bytes = static_cast<size_t>(B) * 6 * sizeof(T);
  // A block per batch element when the batch alone fills the GPU, or when an
  // image is small enough for one block to finish it quickly.  This mode needs
  // no memset launches, which is what matters for small, launch-bound calls.
  const bool own_image = B >= sm_count || hw <= kOwnImagePixels;
  int64_t blocks_x = 1;
  if (!own_image || B == 0 || hw == 0) {
    cudaError_t err = cudaSuccess;
    if (grad_fg_bytes > 0) err = cudaMemsetAsync(a.grad_fg.data, 0, grad_fg_bytes, stream);
    if (err == cudaSuccess && grad_mask_bytes > 0)
      err = cudaMemsetAsync(a.grad_mask.data, 0, grad_mask_bytes, stream);
    if (err == cudaSuccess && grad_theta_bytes > 0)
      err = cudaMemsetAsync(a.grad_theta, 0, grad_theta_bytes, stream);
    if (err != cudaSuccess || B == 0 || hw == 0) return err;
    const int64_t wanted = ceil_div(static_cast<int64_t>(sm_count) * kBlocksPerSm, B);
    const int64_t per_image = ceil_div(hw, kThreads);
    blocks_x = wanted < per_image ? wanted : per_image;
    if (blocks_x < 2) blocks_x = 2;  // keeps the atomic mode, whose buffers are zeroed
  }
  const dim3 grid(static_cast<unsigned>(blocks_x),
                  static_cast<unsigned>(B < kMaxGridY ? B : kMaxGridY));
  with_channel_group(a.shape.C, [&](auto group) {
    backward_kernel<decltype(group)::value, T><<<grid, kThreads, 0, stream>>>(a);
  });
  return cudaGetLastError();
}

template cudaError_t launch_forward<float>(const ForwardArgs<float>&, cudaStream_t);
template cudaError_t launch_forward<double>(const ForwardArgs<double>&, cudaStream_t);
template cudaError_t launch_backward<float>(const BackwardArgs<float>&, size_t, size_t,
                                            cudaStream_t);
template cudaError_t launch_backward<double>(const BackwardArgs<double>&, size_t, size_t,
                                             cudaStream_t);

}  // namespace stnm
}  // namespace ganrepro
