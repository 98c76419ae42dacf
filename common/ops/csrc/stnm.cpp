// STNM operator: schema, input checks and the CPU kernels.
//
// The library defines two ops in the `ganrepro` namespace:
//   stnm(canvas, fg, mask, theta, mask_grad_full) -> out
//   stnm_backward(grad_out, canvas, fg, mask, theta, mask_grad_full)
//       -> (grad_canvas, grad_fg, grad_mask, grad_theta)
// Fake kernels, autograd and autocast are registered from Python
// (common/ops/_registry.py) once this library is loaded.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>
#include <utility>

#include "stnm_common.h"

// The loader compares this tag with the hash of the current sources to spot a
// stale ahead-of-time build without loading it (see common/ops/_build.py).
#define GANREPRO_STRINGIFY_(x) #x
#define GANREPRO_STRINGIFY(x) GANREPRO_STRINGIFY_(x)
#ifndef GANREPRO_STNM_SOURCE_HASH
#define GANREPRO_STNM_SOURCE_HASH unknown
#endif
extern "C" __attribute__((used, visibility("default"))) const char ganrepro_stnm_build_tag[] =
    "ganrepro-stnm-source-hash:" GANREPRO_STRINGIFY(GANREPRO_STNM_SOURCE_HASH);

namespace ganrepro {
namespace stnm {

void check_inputs(const char* op, const at::Tensor& canvas, const at::Tensor& fg,
                  const at::Tensor& mask, const at::Tensor& theta) {
  TORCH_CHECK_VALUE(canvas.dim() == 4, op, ": canvas must be (B, C, H, W), got shape ",
                    canvas.sizes());
  TORCH_CHECK_VALUE(fg.dim() == 4, op, ": fg must be (B, C, Hf, Wf), got shape ", fg.sizes());
  TORCH_CHECK_VALUE(mask.dim() == 4 && mask.size(1) == 1, op,
                    ": mask must be (B, 1, Hf, Wf), got shape ", mask.sizes());
  TORCH_CHECK_VALUE(theta.dim() == 3 && theta.size(1) == 2 && theta.size(2) == 3, op,
                    ": theta must be (B, 2, 3), got shape ", theta.sizes());
  const int64_t B = canvas.size(0);
  TORCH_CHECK_VALUE(fg.size(0) == B && mask.size(0) == B && theta.size(0) == B, op,
                    ": batch sizes differ: canvas ", B, ", fg ", fg.size(0), ", mask ",
                    mask.size(0), ", theta ", theta.size(0));
  TORCH_CHECK_VALUE(fg.size(1) == canvas.size(1), op, ": fg has ", fg.size(1),
                    " channels but canvas has ", canvas.size(1));
  TORCH_CHECK_VALUE(mask.size(2) == fg.size(2) && mask.size(3) == fg.size(3), op,
                    ": mask must match fg's spatial size (", fg.size(2), ", ", fg.size(3),
                    "), got (", mask.size(2), ", ", mask.size(3), ")");

  const auto dtype = canvas.scalar_type();
  TORCH_CHECK_TYPE(dtype == at::kFloat || dtype == at::kDouble, op,
                   ": expected float32 or float64 tensors, got canvas of dtype ", dtype,
                   " (half precision is handled by torch.autocast, which upcasts to float32)");
  const std::pair<const char*, const at::Tensor*> others[] = {
      {"fg", &fg}, {"mask", &mask}, {"theta", &theta}};
  for (const auto& [name, t] : others) {
    TORCH_CHECK_TYPE(t->scalar_type() == dtype, op, ": ", name, " has dtype ",
                     t->scalar_type(), " but canvas has ", dtype,
                     "; all inputs must share one dtype");
    TORCH_CHECK(t->device() == canvas.device(), op, ": ", name, " is on ", t->device(),
                " but canvas is on ", canvas.device(), "; all inputs must be on one device");
  }
}

void check_grad_out(const at::Tensor& grad_out, const at::Tensor& canvas) {
  TORCH_CHECK_VALUE(grad_out.sizes() == canvas.sizes(),
                    "ganrepro::stnm_backward: grad_out must have canvas's shape ",
                    canvas.sizes(), ", got ", grad_out.sizes());
  TORCH_CHECK_TYPE(grad_out.scalar_type() == canvas.scalar_type(),
                   "ganrepro::stnm_backward: grad_out has dtype ", grad_out.scalar_type(),
                   " but canvas has ", canvas.scalar_type());
  TORCH_CHECK(grad_out.device() == canvas.device(), "ganrepro::stnm_backward: grad_out is on ",
              grad_out.device(), " but canvas is on ", canvas.device());
}

at::Tensor empty_in_layout_of(const at::Tensor& like) {
  const bool channels_last =
      like.is_contiguous(at::MemoryFormat::ChannelsLast) && !like.is_contiguous();
  return at::empty(like.sizes(), like.options().memory_format(
                                      channels_last ? at::MemoryFormat::ChannelsLast
                                                    : at::MemoryFormat::Contiguous));
}

Shape shape_of(const at::Tensor& canvas, const at::Tensor& fg) {
  return {canvas.size(0), canvas.size(1), canvas.size(2),
          canvas.size(3), fg.size(2),     fg.size(3)};
}

namespace {

struct PlainAdd {
  template <typename T>
  void operator()(T* p, T v) const { *p += v; }
};

template <int G, typename T>
void forward_cpu_kernel(const ForwardArgs<T>& a) {
  const Shape s = a.shape;
  const int64_t rows_per_task = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, s.W * s.C));
  at::parallel_for(0, s.B * s.H, rows_per_task, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / s.H, i = r % s.H;
      for (int64_t j = 0; j < s.W; ++j) forward_pixel<G>(a, b, i, j);
    }
  });
}

template <int G, typename T>
void backward_cpu_kernel(const BackwardArgs<T>& a) {
  const Shape s = a.shape;
  // Batch elements scatter into disjoint gradient planes, so splitting the
  // work by batch needs no atomics.  d/dtheta is summed in double.
  at::parallel_for(0, s.B, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      double acc[6] = {0, 0, 0, 0, 0, 0};
      for (int64_t i = 0; i < s.H; ++i) {
        for (int64_t j = 0; j < s.W; ++j) backward_pixel<G>(a, b, i, j, acc, PlainAdd{});
      }
      for (int k = 0; k < 6; ++k) a.grad_theta[b * 6 + k] = static_cast<T>(acc[k]);
    }
  });
}

at::Tensor stnm_cpu(const at::Tensor& canvas, const at::Tensor& fg, const at::Tensor& mask,
                    const at::Tensor& theta, bool /*mask_grad_full: backward only*/) {
  check_inputs("ganrepro::stnm", canvas, fg, mask, theta);
  at::Tensor out = empty_in_layout_of(canvas);
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(canvas.scalar_type(), "ganrepro::stnm (CPU)", [&] {
    const ForwardArgs<scalar_t> a{cview4<scalar_t>(canvas), cview4<scalar_t>(fg),
                                  cview4<scalar_t>(mask),   theta_view<scalar_t>(theta),
                                  view4<scalar_t>(out),     shape_of(canvas, fg)};
    with_channel_group(a.shape.C, [&](auto group) { forward_cpu_kernel<decltype(group)::value>(a); });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> stnm_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& canvas, const at::Tensor& fg,
    const at::Tensor& mask, const at::Tensor& theta, bool mask_grad_full) {
  check_inputs("ganrepro::stnm_backward", canvas, fg, mask, theta);
  check_grad_out(grad_out, canvas);
  at::Tensor grad_canvas = empty_in_layout_of(canvas);
  at::Tensor grad_fg = empty_in_layout_of(fg).zero_();
  at::Tensor grad_mask = empty_in_layout_of(mask).zero_();
  at::Tensor grad_theta = at::zeros({theta.size(0), 2, 3}, theta.options());
  const Shape s = shape_of(canvas, fg);
  if (s.B * s.H * s.W == 0) return {grad_canvas, grad_fg, grad_mask, grad_theta};
  AT_DISPATCH_FLOATING_TYPES(canvas.scalar_type(), "ganrepro::stnm_backward (CPU)", [&] {
    const BackwardArgs<scalar_t> a{cview4<scalar_t>(grad_out),    cview4<scalar_t>(canvas),
                                   cview4<scalar_t>(fg),          cview4<scalar_t>(mask),
                                   theta_view<scalar_t>(theta),   view4<scalar_t>(grad_canvas),
                                   view4<scalar_t>(grad_fg),      view4<scalar_t>(grad_mask),
                                   grad_theta.data_ptr<scalar_t>(), s,
                                   mask_grad_full};
    with_channel_group(s.C, [&](auto group) { backward_cpu_kernel<decltype(group)::value>(a); });
  });
  return {grad_canvas, grad_fg, grad_mask, grad_theta};
}

using BackwardFn = decltype(stnm_backward_cpu);

// Autograd kernel of stnm_backward.  The backward is first-order only; without
// this kernel, create_graph=True would merely warn and fail later, elsewhere.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> stnm_backward_autograd(
    const at::Tensor& grad_out, const at::Tensor& canvas, const at::Tensor& fg,
    const at::Tensor& mask, const at::Tensor& theta, bool mask_grad_full) {
  const bool needs_graph =
      at::GradMode::is_enabled() && (grad_out.requires_grad() || canvas.requires_grad() ||
                                     fg.requires_grad() || mask.requires_grad() ||
                                     theta.requires_grad());
  TORCH_CHECK(!needs_graph,
              "ganrepro::stnm: double backward (create_graph=True through the compiled op) is "
              "not supported; use stnm(..., impl='ref') where second derivatives are needed");
  const c10::impl::ExcludeDispatchKeyGuard no_autograd(c10::autograd_dispatch_keyset);
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("ganrepro::stnm_backward", "")
                             .typed<BackwardFn>();
  return op.call(grad_out, canvas, fg, mask, theta, mask_grad_full);
}

}  // namespace
}  // namespace stnm
}  // namespace ganrepro

TORCH_LIBRARY(ganrepro, m) {
  m.def("stnm(Tensor canvas, Tensor fg, Tensor mask, Tensor theta, bool mask_grad_full=True)"
        " -> Tensor",
        {at::Tag::pt2_compliant_tag});
  m.def("stnm_backward(Tensor grad_out, Tensor canvas, Tensor fg, Tensor mask, Tensor theta,"
        " bool mask_grad_full) -> (Tensor grad_canvas, Tensor grad_fg, Tensor grad_mask,"
        " Tensor grad_theta)",
        {at::Tag::pt2_compliant_tag});
}

TORCH_LIBRARY_IMPL(ganrepro, CPU, m) {
  m.impl("stnm", &ganrepro::stnm::stnm_cpu);
  m.impl("stnm_backward", &ganrepro::stnm::stnm_backward_cpu);
}

TORCH_LIBRARY_IMPL(ganrepro, Autograd, m) {
  m.impl("stnm_backward", &ganrepro::stnm::stnm_backward_autograd);
}
