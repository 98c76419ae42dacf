// Autograd of the STNM ops, registered in C++ at the Autograd dispatch key.
//
// A Python autograd registration (torch.library.register_autograd) costs tens
// of microseconds of interpreter time per forward+backward, which is most of
// the op's time at LR-GAN's batch sizes.  Here the forward records a C++ node
// and its backward calls ganrepro::stnm_backward through the dispatcher, so
// that torch.compile (AOTAutograd) still sees the backward as an op with its
// fake kernel.  The forward saves only its inputs: the backward kernel
// recomputes the sampling footprint, which moves fewer bytes than writing and
// re-reading the sampled mask and foreground.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <tuple>

namespace ganrepro {
namespace stnm {
namespace {

using ForwardFn = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                             const at::Tensor&, bool);
using BackwardFn = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
    const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
    const at::Tensor&, bool);

const c10::TypedOperatorHandle<ForwardFn>& forward_op() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("ganrepro::stnm", "").typed<ForwardFn>();
  return op;
}

const c10::TypedOperatorHandle<BackwardFn>& backward_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("ganrepro::stnm_backward", "")
                             .typed<BackwardFn>();
  return op;
}

class StnmFunction : public torch::autograd::Function<StnmFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& canvas,
                            const at::Tensor& fg, const at::Tensor& mask,
                            const at::Tensor& theta, bool mask_grad_full) {
    ctx->save_for_backward({canvas, fg, mask, theta});
    ctx->saved_data["mask_grad_full"] = mask_grad_full;
    const at::AutoDispatchBelowADInplaceOrView below_autograd;
    return forward_op().call(canvas, fg, mask, theta, mask_grad_full);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
                                     at::Tensor()};
    auto [grad_canvas, grad_fg, grad_mask, grad_theta] =
        backward_op().call(grads[0], saved[0], saved[1], saved[2], saved[3],
                           ctx->saved_data["mask_grad_full"].toBool());
    return {grad_canvas, grad_fg, grad_mask, grad_theta, at::Tensor()};
  }
};

at::Tensor stnm_autograd(const at::Tensor& canvas, const at::Tensor& fg, const at::Tensor& mask,
                         const at::Tensor& theta, bool mask_grad_full) {
  return StnmFunction::apply(canvas, fg, mask, theta, mask_grad_full);
}

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
  return backward_op().call(grad_out, canvas, fg, mask, theta, mask_grad_full);
}

}  // namespace
}  // namespace stnm
}  // namespace ganrepro

TORCH_LIBRARY_IMPL(ganrepro, Autograd, m) {
  m.impl("stnm", &ganrepro::stnm::stnm_autograd);
  m.impl("stnm_backward", &ganrepro::stnm::stnm_backward_autograd);
}
