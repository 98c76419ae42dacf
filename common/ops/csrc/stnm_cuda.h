// Interface between the CUDA registration (stnm_cuda_ops.cpp, host compiler) and
// the kernels (stnm_cuda.cu and stnm_cuda_dense.cu, nvcc).  Kept free of torch
// headers so that the .cu files compile in seconds on their own
// (tests/common/ops/test_stnm_nvcc.py).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "stnm_math.h"

namespace ganrepro {
namespace stnm {

// Which kernels run; set per call from GANREPRO_STNM_CUDA (see docs/custom_ops.md,
// "CUDA kernel variants").  The defaults are the fastest measured on an H200.
struct CudaConfig {
  bool dense = true;        // dense float32 kernels where the tensors allow them
  int fwd_pixels = 2;       // dense forward: output pixels per thread (1, 2 or 4)
  int bwd_pixels = 1;       // dense backward: output pixels per thread (1 or 2)
  bool pair_atomics = true; // dense backward: 8-byte atomics for adjacent taps (sm_90+)
  bool zero_by_rows = true; // dense backward, a block per image: zero source rows as needed
  // Backward: how images map to blocks.  kAuto picks kOwnImage when the batch
  // fills the GPU or images are small, else kSplitImage.
  enum Images { kAuto, kOwnImage, kSplitImage } images = kAuto;
};

// Largest output H * W the kernels accept: pixel indices within an image are 32-bit.
constexpr long long kMaxPixelsPerImage = (1LL << 30);

// ---------------------------------------------------------------------------
// Generic kernels (stnm_cuda.cu): any strides, float or double, int64 indexing.

// One kernel launch on `stream`; returns the launch status.
template <typename T>
cudaError_t launch_forward(const ForwardArgs<T>& args, cudaStream_t stream);

// Launches the backward on `stream` (current device).  grad_fg, grad_mask and
// grad_theta may hold garbage: they are zeroed here, inside the kernel when one
// block owns each batch element, else by memsets of grad_fg_bytes and
// grad_mask_bytes (the dense spans of those buffers) before the kernel.
template <typename T>
cudaError_t launch_backward(const BackwardArgs<T>& args, size_t grad_fg_bytes,
                            size_t grad_mask_bytes, CudaConfig::Images images,
                            cudaStream_t stream);

// ---------------------------------------------------------------------------
// Dense kernels (stnm_cuda_dense.cu): float32 tensors with 1 or 3 channels and
// contiguous rows (NCHW-contiguous, or sliced along B, C or H), addressed with
// 32-bit offsets inside one batch element (the caller checks that they fit),
// several output pixels per thread.

// A tensor with contiguous rows seen one batch element at a time: element
// (b, c, y, x) is at data[b * sb + c * sc + y * sh + x].  A column stride of 1
// known at compile time lets a tap's right neighbour be addressed as +4 bytes.
template <typename T>
struct Image32 {
  T* data;
  int64_t sb;
  int32_t sc, sh;
};

struct DenseForwardArgs {
  Image32<const float> canvas, fg, mask;
  Image32<float> out;
  ThetaView<float> theta;
  Shape shape;
};

struct DenseBackwardArgs {
  Image32<const float> grad_out, canvas, fg, mask;
  Image32<float> grad_canvas;
  Image32<float> grad_fg, grad_mask;  // contiguous NCHW, as the op allocates them
  float* grad_theta;                  // contiguous (B, 2, 3)
  ThetaView<float> theta;
  Shape shape;
  bool mask_grad_full;
};

// The dense kernels are compiled for 1 (masks, MNIST) and 3 (RGB) channels.
bool dense_supports_channels(int64_t channels);

cudaError_t launch_dense_forward(const DenseForwardArgs& args, const CudaConfig& config,
                                 cudaStream_t stream);

// Same zeroing contract as launch_backward.
cudaError_t launch_dense_backward(const DenseBackwardArgs& args, const CudaConfig& config,
                                  cudaStream_t stream);

// Shared by both launchers: the current device's SM count (cached per device),
// and whether the backward gives each image its own block.
cudaError_t multiprocessor_count(int* count);
bool backward_owns_images(CudaConfig::Images images, int64_t batch, int64_t pixels,
                          int sm_count);

}  // namespace stnm
}  // namespace ganrepro
