// CUDA registration of the STNM ops: checks, allocation, device guard and
// stream, then the launchers from stnm_cuda.cu.  Built only with CUDA.
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>

#include "stnm_common.h"
#include "stnm_cuda.h"

// Tells the loader that a built library has CUDA kernels (see common/ops/_sources.py).
extern "C" __attribute__((used, visibility("default"))) const char ganrepro_stnm_cuda_tag[] =
    "ganrepro-stnm-has-cuda-kernels";

namespace ganrepro {
namespace stnm {
namespace {

void check_cuda(const char* op, const at::Tensor& canvas) {
  TORCH_CHECK(canvas.is_cuda(), op, ": expected CUDA tensors, got canvas on ", canvas.device());
  TORCH_CHECK_VALUE(canvas.size(2) * canvas.size(3) <= kMaxPixelsPerImage, op,
                    ": canvas has ", canvas.size(2) * canvas.size(3),
                    " pixels per image; the CUDA kernel supports up to ", kMaxPixelsPerImage);
}

void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA launch failed: ", cudaGetErrorString(err));
}

at::Tensor stnm_cuda(const at::Tensor& canvas, const at::Tensor& fg, const at::Tensor& mask,
                     const at::Tensor& theta, bool /*mask_grad_full: backward only*/) {
  constexpr const char* op = "ganrepro::stnm";
  check_inputs(op, canvas, fg, mask, theta);
  check_cuda(op, canvas);
  const c10::cuda::CUDAGuard guard(canvas.device());
  at::Tensor out = empty_in_layout_of(canvas);
  if (out.numel() == 0) return out;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(canvas.scalar_type(), "ganrepro::stnm (CUDA)", [&] {
    const ForwardArgs<scalar_t> a{cview4<scalar_t>(canvas), cview4<scalar_t>(fg),
                                  cview4<scalar_t>(mask),   theta_view<scalar_t>(theta),
                                  view4<scalar_t>(out),     shape_of(canvas, fg)};
    check_launch(launch_forward(a, stream), op);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> stnm_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& canvas, const at::Tensor& fg,
    const at::Tensor& mask, const at::Tensor& theta, bool mask_grad_full) {
  constexpr const char* op = "ganrepro::stnm_backward";
  check_inputs(op, canvas, fg, mask, theta);
  check_grad_out(grad_out, canvas);
  check_cuda(op, canvas);
  const c10::cuda::CUDAGuard guard(canvas.device());
  // No zero-filling here: the launcher zeroes grad_fg, grad_mask and
  // grad_theta (inside the kernel or with memsets, whichever is cheaper).
  at::Tensor grad_canvas = empty_in_layout_of(canvas);
  at::Tensor grad_fg = empty_in_layout_of(fg);
  at::Tensor grad_mask = empty_in_layout_of(mask);
  at::Tensor grad_theta = at::empty({theta.size(0), 2, 3}, theta.options());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(canvas.scalar_type(), "ganrepro::stnm_backward (CUDA)", [&] {
    const BackwardArgs<scalar_t> a{cview4<scalar_t>(grad_out),    cview4<scalar_t>(canvas),
                                   cview4<scalar_t>(fg),          cview4<scalar_t>(mask),
                                   theta_view<scalar_t>(theta),   view4<scalar_t>(grad_canvas),
                                   view4<scalar_t>(grad_fg),      view4<scalar_t>(grad_mask),
                                   grad_theta.data_ptr<scalar_t>(), shape_of(canvas, fg),
                                   mask_grad_full};
    check_launch(launch_backward(a, grad_fg.numel() * sizeof(scalar_t),
                                 grad_mask.numel() * sizeof(scalar_t), stream),
                 op);
  });
  return {grad_canvas, grad_fg, grad_mask, grad_theta};
}

}  // namespace
}  // namespace stnm
}  // namespace ganrepro

TORCH_LIBRARY_IMPL(ganrepro, CUDA, m) {
  m.impl("stnm", &ganrepro::stnm::stnm_cuda);
  m.impl("stnm_backward", &ganrepro::stnm::stnm_backward_cuda);
}
