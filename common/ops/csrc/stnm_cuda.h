// Interface between the CUDA registration (stnm_cuda.cpp, host compiler) and
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

// Zeroes the scattered gradients (grad_fg_bytes and grad_mask_bytes span the
// dense grad_fg and grad_mask buffers; grad_theta is zeroed too when several
// blocks share one batch element), then launches one kernel on `stream`.
template <typename T>
cudaError_t launch_backward(const BackwardArgs<T>& args, size_t grad_fg_bytes,
                            size_t grad_mask_bytes, int sm_count, cudaStream_t stream);

// Largest output H * W the kernels accept: pixel indices within an image are 32-bit.
constexpr long long kMaxPixelsPerImage = (1LL << 30);

}  // namespace stnm
}  // namespace ganrepro
