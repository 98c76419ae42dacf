// Interface between the CUDA registration (stnm_cuda_ops.cpp, host compiler) and
// the kernels (stnm_cuda.cu, nvcc).  Kept free of torch headers so that the
// .cu file compiles in seconds on its own (tests/common/ops/test_stnm_nvcc.py).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "stnm_math.h"

namespace ganrepro {
namespace stnm {

// One kernel launch on `stream`; returns the launch status.
template <typename T>
cudaError_t launch_forward(const ForwardArgs<T>& args, cudaStream_t stream);

// Launches the backward on `stream` (current device).  grad_fg, grad_mask and
// grad_theta may hold garbage: they are zeroed here, inside the kernel when one
// block owns each batch element, else by memsets of grad_fg_bytes and
// grad_mask_bytes (the dense spans of those buffers) before the kernel.
template <typename T>
cudaError_t launch_backward(const BackwardArgs<T>& args, size_t grad_fg_bytes,
                            size_t grad_mask_bytes, cudaStream_t stream);

// Largest output H * W the kernels accept: pixel indices within an image are 32-bit.
constexpr long long kMaxPixelsPerImage = (1LL << 30);

}  // namespace stnm
}  // namespace ganrepro
