// The generic strided path of STNM (CPU kernel and generic CUDA kernel): one
// pixel at a time, int64 indices, any strides, float or double, built from the
// per-pixel arithmetic of stnm_math.h.
#pragma once

#include "stnm_math.h"

namespace ganrepro {
namespace stnm {

// out = m * f + (1 - m) * canvas at output pixel (b, i, j), all channels.
template <int G, typename T>
STNM_HD void forward_pixel(const ForwardArgs<T>& a, const Grid<T, int64_t>& grid,
                           const Pose<T>& pose, int64_t b, int64_t i, int64_t j) {
  const Footprint<T, int64_t> f = footprint(pose, grid, i, j);
  int64_t off[4];
  T mv[4];
  tap_offsets(f, a.mask.sh, a.mask.sw, off);
  load_taps(a.mask.data + b * a.mask.sb, f, off, mv);

  tap_offsets(f, a.fg.sh, a.fg.sw, off);
  const T* fg = a.fg.data + b * a.fg.sb;
  const T* canvas = a.canvas.data + b * a.canvas.sb + i * a.canvas.sh + j * a.canvas.sw;
  T* out = a.out.data + b * a.out.sb + i * a.out.sh + j * a.out.sw;
  const int64_t C = a.shape.C;
  for (int64_t c0 = 0; c0 < C; c0 += G) {
    T v[G][4];
    T bg[G];
STNM_UNROLL
    for (int k = 0; k < G; ++k) {
      if (c0 + k < C) {
        load_taps(fg + (c0 + k) * a.fg.sc, f, off, v[k]);
        bg[k] = canvas[(c0 + k) * a.canvas.sc];
      }
    }
    const T m = interpolate(f, mv);
STNM_UNROLL
    for (int k = 0; k < G; ++k) {
      if (c0 + k < C) out[(c0 + k) * a.out.sc] = composite(m, interpolate(f, v[k]), bg[k]);
    }
  }
}

// Adds value * w[t] at each inside tap t of one plane (strided), through `add`.
template <typename T, typename I, typename Add>
STNM_HD void scatter_to_taps(T* plane, I sh, I sw, const Footprint<T, I>& f, T value, Add add) {
  I off[4];
  tap_offsets(f, sh, sw, off);
STNM_UNROLL
  for (int t = 0; t < 4; ++t) {
    if (f.in[t]) add(plane + off[t], f.w[t] * value);
  }
}

// Where backward_pixel sends an output pixel's dL/d(sampled fg_c) (fg) and
// dL/d(sampled mask) (mask).  The scatter backward adds them, times the
// bilinear weights, to the four taps of grad_fg and grad_mask: `add` is a
// plain += on the CPU (one thread per batch element) and an atomicAdd on the
// GPU.  The gather backward's first pass (stnm_gather.h) stores them instead.
template <typename T, typename Add>
struct ScatterToTaps {
  View4<T> grad_fg, grad_mask;
  Add add;
  STNM_HD void fg(const Footprint<T, int64_t>& f, int64_t b, int64_t /*i*/, int64_t /*j*/,
                  int64_t c, T value) const {
    scatter_to_taps(grad_fg.data + b * grad_fg.sb + c * grad_fg.sc, grad_fg.sh, grad_fg.sw, f,
                    value, add);
  }
  STNM_HD void mask(const Footprint<T, int64_t>& f, int64_t b, int64_t /*i*/, int64_t /*j*/,
                    T value) const {
    scatter_to_taps(grad_mask.data + b * grad_mask.sb, grad_mask.sh, grad_mask.sw, f, value, add);
  }
};

// Gradients at output pixel (b, i, j).  grad_canvas is written (each output
// pixel owns its canvas pixel); dL/d(sampled fg_c) and dL/d(sampled mask) go
// to `sink` (ScatterToTaps or the gather's ToScratch); the six d/dtheta terms
// are added to `acc` for the caller to reduce.
template <int G, typename T, typename Acc, typename Sink>
STNM_HD void backward_pixel(const BackwardArgs<T>& a, const Grid<T, int64_t>& grid,
                            const Pose<T>& pose, int64_t b, int64_t i, int64_t j, Acc acc[6],
                            const Sink& sink) {
  const Footprint<T, int64_t> f = footprint(pose, grid, i, j);
  int64_t off[4];
  T mv[4];
  tap_offsets(f, a.mask.sh, a.mask.sw, off);
  load_taps(a.mask.data + b * a.mask.sb, f, off, mv);

  tap_offsets(f, a.fg.sh, a.fg.sw, off);
  const T* fg = a.fg.data + b * a.fg.sb;
  const T* g = a.grad_out.data + b * a.grad_out.sb + i * a.grad_out.sh + j * a.grad_out.sw;
  const T* canvas = a.canvas.data + b * a.canvas.sb + i * a.canvas.sh + j * a.canvas.sw;
  T* grad_canvas =
      a.grad_canvas.data + b * a.grad_canvas.sb + i * a.grad_canvas.sh + j * a.grad_canvas.sw;

  PixelGrad<T> pg;
  const int64_t C = a.shape.C;
  for (int64_t c0 = 0; c0 < C; c0 += G) {
    T v[G][4];
    T gc[G];
    T bg[G];
STNM_UNROLL
    for (int k = 0; k < G; ++k) {
      if (c0 + k < C) {
        load_taps(fg + (c0 + k) * a.fg.sc, f, off, v[k]);
        gc[k] = g[(c0 + k) * a.grad_out.sc];
        bg[k] = canvas[(c0 + k) * a.canvas.sc];
      }
    }
    const T m = interpolate(f, mv);
STNM_UNROLL
    for (int k = 0; k < G; ++k) {
      if (c0 + k >= C) continue;
      T d_canvas;
      const T gf = backward_channel(f, v[k], gc[k], bg[k], m, d_canvas, pg);
      grad_canvas[(c0 + k) * a.grad_canvas.sc] = d_canvas;
      sink.fg(f, b, i, j, c0 + k, gf);
    }
  }
  sink.mask(f, b, i, j, pg.m);
  theta_terms(f, mv, grid, a.mask_grad_full, pg, acc);
}

}  // namespace stnm
}  // namespace ganrepro
