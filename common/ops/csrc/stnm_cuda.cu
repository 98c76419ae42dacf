// Generic CUDA kernels of STNM: any strides, float32 or float64, int64 indexing,
// one output pixel per thread.  They serve float64 (gradcheck) and tensors the
// dense kernels (stnm_cuda_dense.cu) cannot address with 32-bit offsets.  The
// per-pixel math lives in stnm_math.h and is shared with the CPU kernel; this
// file adds the thread layout, the atomic scatter of grad_fg / grad_mask and the
// block reduction of d/dtheta.
#include <atomic>

#include "stnm_cuda.h"
#include "stnm_cuda_device.h"
#include "stnm_strided.h"

namespace ganrepro {
namespace stnm {
namespace {

// When the backward splits images over blocks, it aims for this many blocks
// per SM in total.
constexpr int kBlocksPerSm = 8;
// Images up to this many output pixels take one block each (16 per thread).
constexpr int64_t kOwnImagePixels = 4096;

struct AtomicAdd {
  template <typename T>
  __device__ __forceinline__ void operator()(T* p, T v) const { atomic_add(p, v); }
};

// Grid: x walks the pixels of one image, y walks the batch.  Asking for three
// resident blocks per SM keeps more loads in flight; it costs no spills in
// float32 (the backward would spill, so it keeps the compiler's choice).
template <int G, typename T>
__global__ void __launch_bounds__(kThreads, 3) forward_kernel(const ForwardArgs<T> a) {
  const auto grid = make_grid<T, int64_t>(a.shape);
  const int W = static_cast<int>(a.shape.W);
  const int hw = static_cast<int>(a.shape.H * a.shape.W);
  for (int64_t b = blockIdx.y; b < a.shape.B; b += gridDim.y) {
    const Pose<T> pose = pose_of(a.theta, b);
    for (int r = blockIdx.x * kThreads + threadIdx.x; r < hw; r += gridDim.x * kThreads) {
      const int i = r / W;
      forward_pixel<G>(a, grid, pose, b, i, r - i * W);
    }
  }
}

// Two modes, chosen by the launcher:
//  * gridDim.x == 1: the block owns whole batch elements.  It zeroes their
//    grad_fg / grad_mask slices itself (no memset pass, and the slices stay in
//    L2 while they are accumulated) and stores d/dtheta directly.
//  * gridDim.x > 1: blocks split an image; the launcher has zeroed the
//    gradients and each block adds its d/dtheta partial sums atomically.
template <int G, typename T>
__global__ void __launch_bounds__(kThreads) backward_kernel(const BackwardArgs<T> a) {
  const auto grid = make_grid<T, int64_t>(a.shape);
  const int W = static_cast<int>(a.shape.W);
  const int hw = static_cast<int>(a.shape.H * a.shape.W);
  const bool own_image = gridDim.x == 1;
  const ScatterToTaps<T, AtomicAdd> sink{a.grad_fg, a.grad_mask, {}};
  for (int64_t b = blockIdx.y; b < a.shape.B; b += gridDim.y) {
    if (own_image) {
      zero_run(a.grad_fg.data + b * a.grad_fg.sb, a.shape.C * a.shape.Hf * a.shape.Wf);
      zero_run(a.grad_mask.data + b * a.grad_mask.sb, a.shape.Hf * a.shape.Wf);
      __syncthreads();
    }
    const Pose<T> pose = pose_of(a.theta, b);
    T acc[6] = {T(0), T(0), T(0), T(0), T(0), T(0)};
    for (int r = blockIdx.x * kThreads + threadIdx.x; r < hw; r += gridDim.x * kThreads) {
      const int i = r / W;
      backward_pixel<G>(a, grid, pose, b, i, r - i * W, acc, sink);
    }
    write_grad_theta(a.grad_theta + b * 6, acc, own_image);
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

cudaError_t multiprocessor_count(int* count) {
  // Cached: the attribute query is cheap but not free, and this runs per call.
  static std::atomic<int> cached[64] = {};
  int device = 0;
  cudaError_t status = cudaGetDevice(&device);
  if (status != cudaSuccess) return status;
  if (device >= 0 && device < 64 && (*count = cached[device].load()) > 0) return cudaSuccess;
  status = cudaDeviceGetAttribute(count, cudaDevAttrMultiProcessorCount, device);
  if (status == cudaSuccess && device >= 0 && device < 64) cached[device].store(*count);
  return status;
}

bool backward_owns_images(CudaConfig::Images images, int64_t batch, int64_t pixels,
                          int sm_count) {
  if (images != CudaConfig::kAuto) return images == CudaConfig::kOwnImage;
  // A block per batch element when the batch alone fills the GPU, or when an
  // image is small enough for one block to finish it quickly.  This mode needs
  // no memset launches, which is what matters for small, launch-bound calls.
  return batch >= sm_count || pixels <= kOwnImagePixels;
}

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
                            size_t grad_mask_bytes, CudaConfig::Images images,
                            cudaStream_t stream) {
  int sm_count = 0;
  cudaError_t status = multiprocessor_count(&sm_count);
  if (status != cudaSuccess) return status;
  const int64_t B = a.shape.B;
  const int64_t hw = a.shape.H * a.shape.W;
  const size_t grad_theta_bytes = static_cast<size_t>(B) * 6 * sizeof(T);
  const bool own_image = backward_owns_images(images, B, hw, sm_count);
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
                                            CudaConfig::Images, cudaStream_t);
template cudaError_t launch_backward<double>(const BackwardArgs<double>&, size_t, size_t,
                                             CudaConfig::Images, cudaStream_t);

}  // namespace stnm
}  // namespace ganrepro
