// CUDA registration of the STNM ops: checks, allocation, device guard, stream,
// the choice between the dense and the generic kernels, then the launchers
// (stnm_cuda.cu, stnm_cuda_dense.cu).  Built only with CUDA.
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdlib>
#include <limits>
#include <mutex>
#include <sstream>
#include <string>
#include <tuple>

#include "stnm_common.h"
#include "stnm_cuda.h"

// Tells the loader that a built library has CUDA kernels (see common/ops/_sources.py).
extern "C" __attribute__((used, visibility("default"))) const char ganrepro_stnm_cuda_tag[] =
    "ganrepro-stnm-has-cuda-kernels";

namespace ganrepro {
namespace stnm {
namespace {

constexpr const char* kConfigVariable = "GANREPRO_STNM_CUDA";
constexpr const char* kConfigHelp =
    "expected comma-separated settings: 'generic' or 'dense', bwd=auto|gather|atomic, "
    "fwd_px=1|2|4, bwd_px=1|2, pairs=0|1, images=auto|own|split, zero=auto|rows|front "
    "(e.g. 'dense,bwd=atomic,pairs=1')";

CudaConfig parse_config(const std::string& text) {
  CudaConfig config;
  std::stringstream items(text);
  std::string item;
  while (std::getline(items, item, ',')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    const std::string key = item.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (item == "generic" || item == "dense") {
      config.dense = item == "dense";
    } else if (key == "fwd_px" && (value == "1" || value == "2" || value == "4")) {
      config.fwd_pixels = std::stoi(value);
    } else if (key == "bwd_px" && (value == "1" || value == "2")) {
      config.bwd_pixels = std::stoi(value);
    } else if (key == "pairs" && (value == "0" || value == "1")) {
      config.pair_atomics = value == "1";
    } else if (key == "bwd" && (value == "auto" || value == "gather" || value == "atomic")) {
      config.backward = value == "gather"   ? CudaConfig::Backward::kGather
                        : value == "atomic" ? CudaConfig::Backward::kAtomic
                                            : CudaConfig::Backward::kAuto;
    } else if (key == "zero" && (value == "auto" || value == "rows" || value == "front")) {
      config.zero = value == "rows"    ? CudaConfig::Zero::kRows
                    : value == "front" ? CudaConfig::Zero::kFront
                                       : CudaConfig::Zero::kAuto;
    } else if (key == "images" && (value == "auto" || value == "own" || value == "split")) {
      config.images = value == "own"     ? CudaConfig::kOwnImage
                      : value == "split" ? CudaConfig::kSplitImage
                                         : CudaConfig::kAuto;
    } else {
      TORCH_CHECK_VALUE(false, kConfigVariable, "='", text, "': cannot read '", item, "'; ",
                        kConfigHelp);
    }
  }
  return config;
}

// The kernel choice for this call.  Read per call (a benchmark switches it
// between calls); parsed again only when the variable's text changes.
CudaConfig current_config() {
  static std::mutex mutex;
  static std::string last_text;
  static CudaConfig last_config;
  const char* text = std::getenv(kConfigVariable);
  if (text == nullptr || *text == '\0') return CudaConfig{};
  const std::lock_guard<std::mutex> lock(mutex);
  if (last_text != text) {
    last_config = parse_config(text);  // throws before caching a bad value
    last_text = text;
  }
  return last_config;
}

void check_cuda(const char* op, const at::Tensor& canvas) {
  TORCH_CHECK(canvas.is_cuda(), op, ": expected CUDA tensors, got canvas on ", canvas.device());
  TORCH_CHECK_VALUE(canvas.size(2) * canvas.size(3) <= kMaxPixelsPerImage, op,
                    ": canvas has ", canvas.size(2) * canvas.size(3),
                    " pixels per image; the CUDA kernel supports up to ", kMaxPixelsPerImage);
}

void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA launch failed: ", cudaGetErrorString(err));
}

// Rows contiguous, and every offset the dense kernels form inside one batch
// element within int32?  Tap positions may lie up to two pixels outside the
// source (they are never read there), so half the int32 range is the bound.
bool dense_rows(const at::Tensor& t) {
  if (t.stride(3) != 1 && t.size(3) > 1) return false;
  int64_t largest = t.size(3);
  for (int d = 1; d < 3; ++d) {
    if (t.stride(d) < 0) return false;
    largest += t.size(d) * t.stride(d);
  }
  return largest <= std::numeric_limits<int32_t>::max() / 2;
}

template <typename T>
Image32<T> image32(const at::Tensor& t) {
  return {static_cast<T*>(t.data_ptr()), t.stride(0), static_cast<int32_t>(t.stride(1)),
          static_cast<int32_t>(t.stride(2))};
}

template <typename T>
Image32<const T> cimage32(const at::Tensor& t) {
  return {static_cast<const T*>(t.const_data_ptr()), t.stride(0),
          static_cast<int32_t>(t.stride(1)), static_cast<int32_t>(t.stride(2))};
}

// The dense kernels serve float32 tensors with 1 or 3 channels and contiguous
// rows whose per-image offsets fit int32 (NCHW-contiguous, or sliced along B, C
// or H); everything else (float64, other channel counts, channels_last, column
// slices, huge views) runs generic.  `tensors` starts with a (B, C, H, W) one.
bool use_dense(const CudaConfig& config, std::initializer_list<const at::Tensor*> tensors) {
  if (!config.dense || !dense_supports_channels(tensors.begin()[0]->size(1))) return false;
  for (const at::Tensor* t : tensors) {
    if (t->scalar_type() != at::kFloat || !dense_rows(*t)) return false;
  }
  return true;
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
  const CudaConfig config = current_config();
  if (use_dense(config, {&canvas, &fg, &mask, &out})) {
    const DenseForwardArgs a{cimage32<float>(canvas), cimage32<float>(fg), cimage32<float>(mask),
                             image32<float>(out),     theta_view<float>(theta),
                             shape_of(canvas, fg)};
    check_launch(launch_dense_forward(a, config, stream), op);
    return out;
  }
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
  // No zero-filling here: the atomic backward's launchers zero grad_fg,
  // grad_mask and grad_theta (inside the kernel or with memsets, whichever is
  // cheaper), and the gather backward writes every element of them once.
  at::Tensor grad_canvas = empty_in_layout_of(canvas);
  at::Tensor grad_fg = empty_in_layout_of(fg);
  at::Tensor grad_mask = empty_in_layout_of(mask);
  at::Tensor grad_theta = at::empty({theta.size(0), 2, 3}, theta.options());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const CudaConfig config = current_config();
  if (grad_fg.is_contiguous() && grad_mask.is_contiguous() &&
      use_dense(config, {&canvas, &fg, &mask, &grad_canvas, &grad_fg, &grad_mask})) {
    // A grad_out the dense kernels cannot address, such as the expanded one
    // that out.sum().backward() produces, is copied rather than sending the
    // whole backward to the generic kernels; a dense grad_out costs one check.
    const at::Tensor dense_grad_out =
        grad_out.scalar_type() == at::kFloat && dense_rows(grad_out) ? grad_out
                                                                     : grad_out.contiguous();
    const Shape shape = shape_of(canvas, fg);
    at::Tensor scratch;
    if (shape.B * shape.H * shape.W > 0 && dense_backward_gathers(config, shape)) {
      scratch = at::empty({shape.B, shape.H, shape.W, shape.C + 1}, canvas.options());
    }
    const DenseBackwardArgs a{
        cimage32<float>(dense_grad_out), cimage32<float>(canvas),
        cimage32<float>(fg),             cimage32<float>(mask),
        image32<float>(grad_canvas),     image32<float>(grad_fg),
        image32<float>(grad_mask),       grad_theta.data_ptr<float>(),
        theta_view<float>(theta),        shape,
        mask_grad_full,
        scratch.defined() ? scratch.data_ptr<float>() : nullptr};
    check_launch(launch_dense_backward(a, config, stream), op);
    return {grad_canvas, grad_fg, grad_mask, grad_theta};
  }
  AT_DISPATCH_FLOATING_TYPES(canvas.scalar_type(), "ganrepro::stnm_backward (CUDA)", [&] {
    const BackwardArgs<scalar_t> a{cview4<scalar_t>(grad_out),    cview4<scalar_t>(canvas),
                                   cview4<scalar_t>(fg),          cview4<scalar_t>(mask),
                                   theta_view<scalar_t>(theta),   view4<scalar_t>(grad_canvas),
                                   view4<scalar_t>(grad_fg),      view4<scalar_t>(grad_mask),
                                   grad_theta.data_ptr<scalar_t>(), shape_of(canvas, fg),
                                   mask_grad_full};
    check_launch(launch_backward(a, grad_fg.numel() * sizeof(scalar_t),
                                 grad_mask.numel() * sizeof(scalar_t), config.images, stream),
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
