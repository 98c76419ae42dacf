// Interface between the CUDA registration (stnm_cuda_ops.cpp, host compiler) and
// the kernels (stnm_cuda.cu and stnm_cuda_dense.cu, nvcc).  Kept free of torch
// headers so that the .cu files compile in seconds on their own
// (tests/common/ops/test_stnm_nvcc.py).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "stnm_gather.h"
#include "stnm_math.h"

namespace ganrepro {
namespace stnm {

// Which kernels run; set per call from GANREPRO_STNM_CUDA (see docs/custom_ops.md,
// "CUDA kernel variants").  The defaults follow the H200 measurements in
// docs/custom_ops_perf.md.
struct CudaConfig {
  bool dense = true;         // dense float32 kernels where the tensors allow them
  int fwd_pixels = 4;        // dense forward: output pixels per thread (1, 2 or 4)
  int bwd_pixels = 2;        // dense backward: output pixels per thread (1 or 2; 2 measured best)
  bool pair_atomics = false; // dense atomic backward: 8-byte atomics for adjacent taps (sm_90+)
  // Dense backward: gather (two passes, no atomics; stnm_gather.h) or atomic
  // scatter.  kAuto gathers from kGatherMinPixels output pixels per call on.
  enum class Backward { kAuto, kGather, kAtomic } backward = Backward::kAuto;
  // Dense atomic backward with a block per image: zero the image's source rows
  // just before they are needed, or the whole slice first.  kAuto: rows when
  // the batch exceeds the SM count (images then wait in L2 for their atomics).
  enum class Zero { kAuto, kRows, kFront } zero = Zero::kAuto;
  // Backward: how images map to blocks.  kAuto picks kOwnImage when the batch
  // fills the GPU or images are small, else kSplitImage.
  enum Images { kAuto, kOwnImage, kSplitImage } images = kAuto;
};

// Below this many output pixels per call (B H W) the atomic backward stays the
// default: such calls are bound by host time (tens of microseconds per eager
// forward+backward against a few of GPU time), and the gather adds a launch and
// a scratch allocation.  On the H200 (docs/custom_ops_perf.md, run 3) the atomic
// backward still won at 1024 x 64 x 64 = 2^22 pixels and the gather at 2^24, so the
// switch sits at 2^23 = 512 x 128 x 128.
constexpr long long kGatherMinPixels = 1LL << 23;

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
  // The gather backward's buffer between its two passes, (B, H, W, C + 1)
  // contiguous: an output pixel's C + 1 values side by side, one vector access.
  // nullptr selects the atomic backward.
  float* scratch;
};

// The dense kernels are compiled for 1 (masks, MNIST) and 3 (RGB) channels.
bool dense_supports_channels(int64_t channels);

cudaError_t launch_dense_forward(const DenseForwardArgs& args, const CudaConfig& config,
                                 cudaStream_t stream);

// Same zeroing contract as launch_backward.  With args.scratch set it runs the
// gather backward: pass 1 here, then launch_dense_gather.
cudaError_t launch_dense_backward(const DenseBackwardArgs& args, const CudaConfig& config,
                                  cudaStream_t stream);

// Pass 2 of the gather backward (stnm_cuda_gather.cu): writes grad_fg and
// grad_mask from args.scratch.
cudaError_t launch_dense_gather(const DenseBackwardArgs& args, int sm_count, cudaStream_t stream);

// Does the dense backward of this call gather?  The scratch buffer's offsets
// inside one image must fit int32, as the dense tensors' do.
inline bool dense_backward_gathers(const CudaConfig& config, const Shape& s) {
  if (config.backward == CudaConfig::Backward::kAtomic) return false;
  if ((s.C + 1) * s.H * s.W > (1LL << 30)) return false;
  return config.backward == CudaConfig::Backward::kGather || s.B * s.H * s.W >= kGatherMinPixels;
}

// Shared by both launchers: the current device's SM count (cached per device),
// and whether the backward gives each image its own block.
cudaError_t multiprocessor_count(int* count);
bool backward_owns_images(CudaConfig::Images images, int64_t batch, int64_t pixels,
                          int sm_count);

}  // namespace stnm
}  // namespace ganrepro
