// Tensor-level helpers shared by the CPU and CUDA registrations (host code only).
#pragma once

#include <ATen/core/Tensor.h>

#include "stnm_math.h"

namespace ganrepro {
namespace stnm {

// Checks ranks, shapes, dtypes and devices; messages name the offending argument.
void check_inputs(const char* op, const at::Tensor& canvas, const at::Tensor& fg,
                  const at::Tensor& mask, const at::Tensor& theta);
void check_grad_out(const at::Tensor& grad_out, const at::Tensor& canvas);

// Output allocation rule, mirrored by the fake kernels in _registry.py:
// channels_last when `like` is channels_last and not plain contiguous,
// contiguous otherwise.
at::Tensor empty_in_layout_of(const at::Tensor& like);

Shape shape_of(const at::Tensor& canvas, const at::Tensor& fg);

template <typename T>
View4<T> view4(const at::Tensor& t) {
  return {t.data_ptr<T>(), t.stride(0), t.stride(1), t.stride(2), t.stride(3)};
}

template <typename T>
View4<const T> cview4(const at::Tensor& t) {
  return {t.const_data_ptr<T>(), t.stride(0), t.stride(1), t.stride(2), t.stride(3)};
}

template <typename T>
ThetaView<T> theta_view(const at::Tensor& theta) {
  return {theta.const_data_ptr<T>(), theta.stride(0), theta.stride(1), theta.stride(2)};
}

}  // namespace stnm
}  // namespace ganrepro
