// The gather backward of grad_fg and grad_mask, shared by the CPU kernel and the
// dense CUDA kernels (plain C++, __host__ __device__ on the GPU).
//
// The scatter backward adds each output pixel's dL/d(sampled fg_c) and
// dL/d(sampled mask), times the bilinear weights, to its four taps: on a GPU
// that is 4 (C + 1) atomics per pixel into buffers that must be zeroed first.
// The gather backward instead runs two passes:
//  1. per output pixel: grad_canvas and d/dtheta as before, and the C + 1 values
//     (gf_c = g_c m and gm = sum_c g_c (f_c - canvas_c)) stored in a scratch
//     buffer (B, C + 1, H, W) instead of scattered (ToScratch);
//  2. per source pixel (y, x): the output pixels whose footprint can include
//     (y, x) lie in a small box around the inverse image of (x, y) under the
//     pose (gather_window, candidates).  For each candidate the pass recomputes
//     the forward's footprint with the same function and, if (y, x) is one of
//     its taps, adds that tap's weight times the stored values (tap_weight).
//     Every grad_fg and grad_mask element is written once: no atomics, no zeroing.
// The box has to be small for pass 2 to be cheap.  gather_window marks an image
// `ok` when the box holds at most kMaxGatherCandidates output pixels; other
// images (a nearly singular pose, an object enlarged more than ~3.5x, W or H of
// 1, non-finite poses, astronomically far translations) fall back to
// scattering the stored values to zeroed buffers (scatter_from_scratch).
#pragma once

#include "stnm_strided.h"

namespace ganrepro {
namespace stnm {

constexpr int kMaxGatherCandidates = 64;

STNM_HD float abs_of(float v) { return fabsf(v); }
STNM_HD double abs_of(double v) { return fabs(v); }
STNM_HD float max_of(float a, float b) { return fmaxf(a, b); }
STNM_HD double max_of(double a, double b) { return fmax(a, b); }

// A product the compiler may not fuse into a multiply-add.  On the GPU both
// passes evaluate gather_window and must reach the same `ok` for every image
// (pass 1 zeroes what pass 2 will scatter into); without fusing, both get the
// same bits whatever code surrounds the call.
#if defined(__CUDA_ARCH__)
STNM_HD float mul_rn(float a, float b) { return __fmul_rn(a, b); }
STNM_HD double mul_rn(double a, double b) { return __dmul_rn(a, b); }
#else
STNM_HD float mul_rn(float a, float b) { return a * b; }
STNM_HD double mul_rn(double a, double b) { return a * b; }
#endif

// For source pixel (x, y), the candidate output pixels (i, j) lie within
// half_j columns of jx x + jy y + j0 and half_i rows of ix x + iy y + i0.
template <typename T>
struct GatherWindow {
  T jx, jy, j0;
  T ix, iy, i0;
  T half_j, half_i;
  bool ok;  // the box is bounded: gather; otherwise scatter the stored values
};

// The footprint maps output pixel (j, i) to the source position
//   (x, y) = A (j, i) + origin,  A = [[a00, a01], [a10, a11]]  (source pixels),
// up to rounding.  Pixel (y, x) is a tap of (i, j) exactly when the position
// lies in [x - 1, x + 1) x [y - 1, y + 1), a square of half-side 1 around
// (x, y); its preimage under the map is a parallelogram around
// A^-1 ((x, y) - origin) whose bounding box has half-widths
// |A^-1|_row0 . (1, 1) and |A^-1|_row1 . (1, 1).  Two margins keep the box
// conservative:
//  * `slack`: the footprint's position and the affine model above differ by
//    rounding, less than half_w (|a| + |b| + |c| + 1) 2^-19 source pixels (the
//    base grid, the pose products and the normalisation, a few float roundings
//    each); the square is widened by 4x that.
//  * `rounding`: inverting A and evaluating the centre in T lose about
//    (kappa + 4) ulps of the largest term (kappa = conditioning of the 2x2
//    determinant); the box is widened by 32x that.
// Since the candidates are then tested exactly, margins only cost time.
template <typename T, typename I>
STNM_HD GatherWindow<T> gather_window(const Pose<T>& p, const Grid<T, I>& g) {
  GatherWindow<T> w;
  const T a00 = mul_rn(mul_rn(p.a, g.step_x), g.half_wf), a01 = mul_rn(mul_rn(p.b, g.step_y), g.half_wf);
  const T a10 = mul_rn(mul_rn(p.d, g.step_x), g.half_hf), a11 = mul_rn(mul_rn(p.e, g.step_y), g.half_hf);
  const T x_origin = mul_rn(p.c - p.a - p.b + T(1), g.half_wf);  // output pixel (0, 0)
  const T y_origin = mul_rn(p.f - p.d - p.e + T(1), g.half_hf);
  const T p0 = mul_rn(a00, a11), p1 = mul_rn(a01, a10);
  const T inv_det = T(1) / (p0 - p1);
  const T kappa = mul_rn(abs_of(p0) + abs_of(p1), abs_of(inv_det));  // inf or NaN if singular
  w.jx = mul_rn(a11, inv_det);
  w.jy = -mul_rn(a01, inv_det);
  w.ix = -mul_rn(a10, inv_det);
  w.iy = mul_rn(a00, inv_det);
  w.j0 = -(mul_rn(w.jx, x_origin) + mul_rn(w.jy, y_origin));
  w.i0 = -(mul_rn(w.ix, x_origin) + mul_rn(w.iy, y_origin));

  const T slack = mul_rn(T(0x1p-17),
                         max_of(mul_rn(g.half_wf, abs_of(p.a) + abs_of(p.b) + abs_of(p.c) + T(1)),
                                mul_rn(g.half_hf, abs_of(p.d) + abs_of(p.e) + abs_of(p.f) + T(1))));
  const T span_x = T(g.Wf) + abs_of(x_origin), span_y = T(g.Hf) + abs_of(y_origin);
  const T rounding = mul_rn(kappa + T(4), T(0x1p-18));
  w.half_j = mul_rn(abs_of(w.jx) + abs_of(w.jy), T(1) + slack) +
             mul_rn(rounding, T(1) + mul_rn(abs_of(w.jx), span_x) + mul_rn(abs_of(w.jy), span_y));
  w.half_i = mul_rn(abs_of(w.ix) + abs_of(w.iy), T(1) + slack) +
             mul_rn(rounding, T(1) + mul_rn(abs_of(w.ix), span_x) + mul_rn(abs_of(w.iy), span_y));
  const T count = mul_rn(floor_of(mul_rn(T(2), w.half_j)) + T(1),
                         floor_of(mul_rn(T(2), w.half_i)) + T(1));
  // Written so that NaN anywhere gives false.  W or H of 1 makes A singular.
  w.ok = slack < T(0.25) && count <= T(kMaxGatherCandidates);
  return w;
}

// The candidate output pixels of source pixel (y, x): rows i_lo..i_hi, columns
// j_lo..j_hi, clipped to the output (empty when lo > hi).  Only for ok windows.
template <typename I>
struct Candidates {
  I i_lo, i_hi, j_lo, j_hi;
};

template <typename T, typename I>
STNM_HD Candidates<I> candidates(const GatherWindow<T>& w, const Grid<T, I>& g, I y, I x) {
  const T xs = T(x), ys = T(y);
  const T jc = fma_of(w.jx, xs, fma_of(w.jy, ys, w.j0));
  const T ic = fma_of(w.ix, xs, fma_of(w.iy, ys, w.i0));
  // Clamped before the conversion, which keeps it defined for far-away boxes.
  Candidates<I> c;
  c.j_lo = static_cast<I>(ceil_of(clamp_to(jc - w.half_j, T(0), T(g.W))));
  c.j_hi = static_cast<I>(floor_of(clamp_to(jc + w.half_j, T(-1), T(g.W - 1))));
  c.i_lo = static_cast<I>(ceil_of(clamp_to(ic - w.half_i, T(0), T(g.H))));
  c.i_hi = static_cast<I>(floor_of(clamp_to(ic + w.half_i, T(-1), T(g.H - 1))));
  return c;
}

// Is source pixel (y, x) a tap of footprint f, and with which weight?  The
// weight is the very product the forward uses for that tap (f.w[t]).
template <typename T, typename I>
STNM_HD bool tap_weight(const Footprint<T, I>& f, I y, I x, T& weight) {
  const I dx = x - f.x0, dy = y - f.y0;
  const T wx = dx == 0 ? T(1) - f.ax : f.ax;
  const T wy = dy == 0 ? T(1) - f.ay : f.ay;
  weight = wx * wy;
  return (dx == 0 || dx == 1) && (dy == 0 || dy == 1);
}

// Pass 1 stores an output pixel's values when a tap of it is inside the source
// or within one pixel of it.  Pass 2 reads only pixels with a tap inside; the
// margin makes that a subset even if two compilations of footprint() rounded a
// position differently (on the GPU they do not: see footprint).
template <typename T, typename I>
STNM_HD bool near_source(const Footprint<T, I>& f, const Grid<T, I>& g) {
  return f.x0 >= -2 && f.x0 <= g.Wf && f.y0 >= -2 && f.y0 <= g.Hf;
}

template <typename T, typename I>
STNM_HD bool any_tap_inside(const Footprint<T, I>& f) {
  return f.in[0] || f.in[1] || f.in[2] || f.in[3];
}

// ----------------------------------------------------------------------------
// The generic strided path (CPU kernel): int64 indices, runtime channel count.

// Pass 1's sink for backward_pixel: stores gf_c at scratch[b, c, i, j] and gm
// at scratch[b, C, i, j].
template <typename T>
struct ToScratch {
  View4<T> scratch;
  Grid<T, int64_t> grid;
  int64_t C;
  STNM_HD void fg(const Footprint<T, int64_t>& f, int64_t b, int64_t i, int64_t j, int64_t c,
                  T value) const {
    if (near_source(f, grid))
      scratch.data[b * scratch.sb + c * scratch.sc + i * scratch.sh + j * scratch.sw] = value;
  }
  STNM_HD void mask(const Footprint<T, int64_t>& f, int64_t b, int64_t i, int64_t j,
                    T value) const {
    fg(f, b, i, j, C, value);
  }
};

template <typename T>
struct GatherArgs {
  View4<const T> scratch;  // (B, C + 1, H, W), written by pass 1
  View4<T> grad_fg, grad_mask;
  Shape shape;
};

// Pass 2 at source pixel (b, y, x) of an ok image: writes grad_fg[b, :, y, x]
// and grad_mask[b, 0, y, x].
template <typename T>
STNM_HD void gather_pixel(const GatherArgs<T>& a, const Grid<T, int64_t>& grid,
                          const Pose<T>& pose, const GatherWindow<T>& w, int64_t b, int64_t y,
                          int64_t x) {
  const int64_t C = a.shape.C;
  T* grad_fg = a.grad_fg.data + b * a.grad_fg.sb + y * a.grad_fg.sh + x * a.grad_fg.sw;
  T* grad_mask = a.grad_mask.data + b * a.grad_mask.sb + y * a.grad_mask.sh + x * a.grad_mask.sw;
  for (int64_t c = 0; c < C; ++c) grad_fg[c * a.grad_fg.sc] = T(0);
  *grad_mask = T(0);
  const Candidates<int64_t> k = candidates(w, grid, y, x);
  for (int64_t i = k.i_lo; i <= k.i_hi; ++i) {
    const FootprintRow<T> row = footprint_row(pose, grid, i);
    for (int64_t j = k.j_lo; j <= k.j_hi; ++j) {
      T weight;
      if (!tap_weight(footprint(pose, grid, row, j), y, x, weight)) continue;
      const T* s = a.scratch.data + b * a.scratch.sb + i * a.scratch.sh + j * a.scratch.sw;
      for (int64_t c = 0; c < C; ++c) grad_fg[c * a.grad_fg.sc] += weight * s[c * a.scratch.sc];
      *grad_mask += weight * s[C * a.scratch.sc];
    }
  }
}

// The fallback of pass 2 at output pixel (b, i, j): scatters its stored values
// to its taps through `add`, into buffers the caller has zeroed.
template <typename T, typename Add>
STNM_HD void scatter_from_scratch(const GatherArgs<T>& a, const Grid<T, int64_t>& grid,
                                  const Pose<T>& pose, int64_t b, int64_t i, int64_t j, Add add) {
  const Footprint<T, int64_t> f = footprint(pose, grid, i, j);
  if (!any_tap_inside(f)) return;
  const int64_t C = a.shape.C;
  const T* s = a.scratch.data + b * a.scratch.sb + i * a.scratch.sh + j * a.scratch.sw;
  for (int64_t c = 0; c < C; ++c) {
    scatter_to_taps(a.grad_fg.data + b * a.grad_fg.sb + c * a.grad_fg.sc, a.grad_fg.sh,
                    a.grad_fg.sw, f, s[c * a.scratch.sc], add);
  }
  scatter_to_taps(a.grad_mask.data + b * a.grad_mask.sb, a.grad_mask.sh, a.grad_mask.sw, f,
                  s[C * a.scratch.sc], add);
}

}  // namespace stnm
}  // namespace ganrepro
