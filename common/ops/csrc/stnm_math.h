// Per-pixel arithmetic of STNM, shared by the CPU and the CUDA kernels.
//
// Everything here is plain C++ that compiles both with a host compiler and
// with nvcc (as __host__ __device__).  The CPU kernel, which the CPU test suite
// checks against the pure-PyTorch reference, runs exactly these functions, and
// both CUDA paths (the generic strided one, stnm_strided.h, and the dense
// float32 one) build on the same pieces: footprint(), the tap helpers,
// composite(), backward_channel() and theta_terms().  The CUDA kernels only add
// thread indexing, memory access and reductions on top.  Index arithmetic is templated on the index type `I`:
// int64_t for the generic paths, int32_t for the dense CUDA path.
//
// Conventions (see docs/custom_ops.md):
//   canvas, out: (B, C, H, W); fg: (B, C, Hf, Wf); mask: (B, 1, Hf, Wf);
//   theta: (B, 2, 3) as in affine_grid(align_corners=True): for the output
//   pixel at normalised position (xn, yn) the source position is
//     gx = t00*xn + t01*yn + t02,  gy = t10*xn + t11*yn + t12,
//   sampled bilinearly with zeros outside the source.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__CUDACC__)
#define STNM_HD __host__ __device__ __forceinline__
#define STNM_UNROLL _Pragma("unroll")
#else
#define STNM_HD inline
#define STNM_UNROLL
#endif

namespace ganrepro {
namespace stnm {

// Strided view of a 4-D tensor.  Indexing through strides lets the kernels
// read contiguous, channels_last and sliced tensors without copies.
template <typename T>
struct View4 {
  T* data;
  int64_t sb, sc, sh, sw;
};

// Strided view of theta, shape (B, 2, 3).
template <typename T>
struct ThetaView {
  const T* data;
  int64_t sb, sr, sc;
};

struct Shape {
  int64_t B, C, H, W;  // canvas and output
  int64_t Hf, Wf;      // foreground and mask
};

template <typename T>
struct ForwardArgs {
  View4<const T> canvas, fg, mask;
  ThetaView<T> theta;
  View4<T> out;
  Shape shape;
};

template <typename T>
struct BackwardArgs {
  View4<const T> grad_out, canvas, fg, mask;
  ThetaView<T> theta;
  View4<T> grad_canvas;
  // grad_fg and grad_mask are dense (contiguous or channels_last), so each
  // batch element's slice is one contiguous run that a kernel may zero.
  View4<T> grad_fg, grad_mask;
  T* grad_theta;  // contiguous (B, 2, 3)
  Shape shape;
  bool mask_grad_full;  // include the mask's path into d/dtheta
};

// Overloads instead of std:: calls so that float stays float on both sides.
STNM_HD float floor_of(float v) { return floorf(v); }
STNM_HD float ceil_of(float v) { return ceilf(v); }
STNM_HD double ceil_of(double v) { return ceil(v); }
STNM_HD double floor_of(double v) { return floor(v); }
STNM_HD float clamp_to(float v, float lo, float hi) { return fminf(fmaxf(v, lo), hi); }
STNM_HD double clamp_to(double v, double lo, double hi) { return fmin(fmax(v, lo), hi); }

// a * b + c.  On the GPU an explicit fused multiply-add: nvcc would otherwise
// decide per call site whether to fuse, and the gather backward relies on every
// kernel computing a sampling position with the same bits (see footprint).  The
// host compiler does not fuse (no FMA in the baseline x86-64 target).
#if defined(__CUDA_ARCH__)
STNM_HD float fma_of(float a, float b, float c) { return fmaf(a, b, c); }
STNM_HD double fma_of(double a, double b, double c) { return fma(a, b, c); }
#else
STNM_HD float fma_of(float a, float b, float c) { return a * b + c; }
STNM_HD double fma_of(double a, double b, double c) { return a * b + c; }
#endif

// Constants of one launch: the output grid and the source size.
template <typename T, typename I>
struct Grid {
  I H, W, Hf, Wf;
  T step_x, step_y;    // spacing of the normalised output grid, 2 / (n - 1)
  T half_wf, half_hf;  // (Wf - 1) / 2, (Hf - 1) / 2: normalised -> source pixels
};

template <typename T, typename I>
STNM_HD Grid<T, I> make_grid(const Shape& s) {
  Grid<T, I> g;
  g.H = static_cast<I>(s.H);
  g.W = static_cast<I>(s.W);
  g.Hf = static_cast<I>(s.Hf);
  g.Wf = static_cast<I>(s.Wf);
  g.step_x = s.W > 1 ? T(2) / T(s.W - 1) : T(0);
  g.step_y = s.H > 1 ? T(2) / T(s.H - 1) : T(0);
  g.half_wf = T(s.Wf - 1) * T(0.5);
  g.half_hf = T(s.Hf - 1) * T(0.5);
  return g;
}

// Base grid of affine_grid(align_corners=True): linspace(-1, 1, n), or 0 when
// n == 1.  Same formula as torch.linspace (each half counted from its own end),
// so the two ends are exactly -1 and 1.
// Selects instead of branches: the gather backward evaluates it in its inner loop.
template <typename T, typename I>
STNM_HD T base_coord(I i, I n, T step) {
  const bool first_half = i < n / 2;
  const T v = fma_of(first_half ? step : -step, T(first_half ? i : n - 1 - i),
                     first_half ? T(-1) : T(1));
  return n > 1 ? v : T(0);
}

// theta of one batch element: x_src = a xn + b yn + c,  y_src = d xn + e yn + f.
template <typename T>
struct Pose {
  T a, b, c, d, e, f;
};

template <typename T>
STNM_HD Pose<T> pose_of(const ThetaView<T>& theta, int64_t batch) {
  const T* t = theta.data + batch * theta.sb;
  return {t[0], t[theta.sc], t[2 * theta.sc],
          t[theta.sr], t[theta.sr + theta.sc], t[theta.sr + 2 * theta.sc]};
}

// Where one output pixel samples the source, and with which weights.
// Taps are ordered TL, TR, BL, BR: (y0, x0), (y0, x0+1), (y0+1, x0), (y0+1, x0+1).
template <typename T, typename I>
struct Footprint {
  T xn, yn;     // normalised output position (needed by d/dtheta)
  I x0, y0;     // top-left tap in source pixels
  T ax, ay;     // position inside the 2x2 cell, in [0, 1)
  T w[4];       // bilinear weights
  bool in[4];   // tap lies inside the source; outside taps read as zero
};

// The part of a footprint that depends on the output row i only (a loop over
// the pixels of a row computes it once).
template <typename T>
struct FootprintRow {
  T yn;      // normalised row position
  T gx, gy;  // source position, normalised, of the row's column xn = 0
};

template <typename T, typename I>
STNM_HD FootprintRow<T> footprint_row(const Pose<T>& p, const Grid<T, I>& g, I i) {
  const T yn = base_coord(i, g.H, g.step_y);
  return {yn, fma_of(p.b, yn, p.c), fma_of(p.e, yn, p.f)};
}

// Every kernel that needs output pixel (i, j)'s taps calls this one function,
// and on the GPU its position arithmetic is explicit fused multiply-adds
// followed by operations nvcc cannot fuse, so all kernels agree on the taps
// bit for bit (the gather backward's second pass recomputes them).
template <typename T, typename I>
STNM_HD Footprint<T, I> footprint(const Pose<T>& p, const Grid<T, I>& g,
                                  const FootprintRow<T>& row, I j) {
  Footprint<T, I> f;
  f.xn = base_coord(j, g.W, g.step_x);
  f.yn = row.yn;
  const T gx = fma_of(p.a, f.xn, row.gx);
  const T gy = fma_of(p.d, f.xn, row.gy);
  // align_corners=True: -1 and 1 are the centres of the first and last pixels.
  const T x_raw = (gx + T(1)) * g.half_wf;
  const T y_raw = (gy + T(1)) * g.half_hf;
  // Clamping keeps the integer conversion defined for far-away positions; two
  // pixels outside, every tap is already out of the source.  A NaN or infinite
  // position still has to poison the result, as it does in the reference:
  // `poison` is 0 for finite positions and NaN otherwise.
  const T x = clamp_to(x_raw, T(-2), T(g.Wf + 1));
  const T y = clamp_to(y_raw, T(-2), T(g.Hf + 1));
  const T poison = (x_raw - x_raw) + (y_raw - y_raw);
  const T fx = floor_of(x);
  const T fy = floor_of(y);
  f.x0 = static_cast<I>(fx);
  f.y0 = static_cast<I>(fy);
  f.ax = x - fx + poison;
  f.ay = y - fy + poison;
  f.w[0] = (T(1) - f.ax) * (T(1) - f.ay);
  f.w[1] = f.ax * (T(1) - f.ay);
  f.w[2] = (T(1) - f.ax) * f.ay;
  f.w[3] = f.ax * f.ay;
  const bool x0_in = f.x0 >= 0 && f.x0 < g.Wf;
  const bool x1_in = f.x0 + 1 >= 0 && f.x0 + 1 < g.Wf;
  const bool y0_in = f.y0 >= 0 && f.y0 < g.Hf;
  const bool y1_in = f.y0 + 1 >= 0 && f.y0 + 1 < g.Hf;
  f.in[0] = y0_in && x0_in;
  f.in[1] = y0_in && x1_in;
  f.in[2] = y1_in && x0_in;
  f.in[3] = y1_in && x1_in;
  return f;
}

template <typename T, typename I>
STNM_HD Footprint<T, I> footprint(const Pose<T>& p, const Grid<T, I>& g, I i, I j) {
  return footprint(p, g, footprint_row(p, g, i), j);
}

// Offsets of the four taps inside one (b, c) plane of a strided tensor.
template <typename T, typename I>
STNM_HD void tap_offsets(const Footprint<T, I>& f, I sh, I sw, I off[4]) {
  off[0] = f.y0 * sh + f.x0 * sw;
  off[1] = off[0] + sw;
  off[2] = off[0] + sh;
  off[3] = off[2] + sw;
}

template <typename T, typename I>
STNM_HD void load_taps(const T* plane, const Footprint<T, I>& f, const I off[4], T v[4]) {
STNM_UNROLL
  for (int k = 0; k < 4; ++k) v[k] = f.in[k] ? plane[off[k]] : T(0);
}

template <typename T, typename I>
STNM_HD T interpolate(const Footprint<T, I>& f, const T v[4]) {
  return f.w[0] * v[0] + f.w[1] * v[1] + f.w[2] * v[2] + f.w[3] * v[3];
}

// Derivatives of the bilinear sample with respect to the source position, in
// source pixels (outside taps contribute their zero value, as in zero padding).
template <typename T, typename I>
STNM_HD T d_dx(const Footprint<T, I>& f, const T v[4]) {
  return (T(1) - f.ay) * (v[1] - v[0]) + f.ay * (v[3] - v[2]);
}
template <typename T, typename I>
STNM_HD T d_dy(const Footprint<T, I>& f, const T v[4]) {
  return (T(1) - f.ax) * (v[2] - v[0]) + f.ax * (v[3] - v[1]);
}

// out_c = m * f_c + (1 - m) * canvas_c.
template <typename T>
STNM_HD T composite(T m, T f, T bg) {
  return m * f + (T(1) - m) * bg;
}

// Running sums of one output pixel's backward over its channels.
template <typename T>
struct PixelGrad {
  T m = T(0);  // dL/dm (the sampled mask)
  T x = T(0);  // dL/d(source x), so far through the appearance only
  T y = T(0);
};

// One channel's share of the backward at one pixel, given the channel's taps v,
// grad_out g and canvas bg there, and the sampled mask m.  Returns
// dL/d(sampled fg_c), which the caller scatters to the taps with weights f.w,
// and sets dL/d(canvas_c).
//
// d out_c / d position = m * d f_c / d position + (f_c - canvas_c) * d m / d position.
// The original LR-GAN kernel kept only the first term; theta_terms adds the second
// when mask_grad_full.
template <typename T, typename I>
STNM_HD T backward_channel(const Footprint<T, I>& f, const T v[4], T g, T bg, T m,
                           T& grad_canvas, PixelGrad<T>& pg) {
  grad_canvas = g * (T(1) - m);
  pg.m += g * (interpolate(f, v) - bg);
  const T gf = g * m;
  pg.x += gf * d_dx(f, v);
  pg.y += gf * d_dy(f, v);
  return gf;
}

// Adds one pixel's six d/dtheta terms to acc (mask taps mv, all channels done).
template <typename T, typename I, typename Acc>
STNM_HD void theta_terms(const Footprint<T, I>& f, const T mv[4], const Grid<T, I>& g,
                         bool mask_grad_full, PixelGrad<T> pg, Acc acc[6]) {
  if (mask_grad_full) {
    pg.x += pg.m * d_dx(f, mv);
    pg.y += pg.m * d_dy(f, mv);
  }
  // Chain rule through x = (gx + 1) (Wf - 1) / 2 and gx = t00 xn + t01 yn + t02.
  const T gx = pg.x * g.half_wf;
  const T gy = pg.y * g.half_hf;
  acc[0] += gx * f.xn;
  acc[1] += gx * f.yn;
  acc[2] += gx;
  acc[3] += gy * f.xn;
  acc[4] += gy * f.yn;
  acc[5] += gy;
}

// Channels are handled in groups of G: a group issues all of its loads before
// any store or atomic, which keeps several loads in flight per GPU thread.
// G is a compile-time constant so that no registers go to unused channels;
// with_channel_group picks it (1 for masks/MNIST, 3 for RGB, else 4) and is the
// single rule used by the CPU and the CUDA launchers.
template <typename Fn>
void with_channel_group(int64_t channels, Fn&& fn) {
  if (channels == 1) {
    fn(std::integral_constant<int, 1>{});
  } else if (channels == 3) {
    fn(std::integral_constant<int, 3>{});
  } else {
    fn(std::integral_constant<int, 4>{});
  }
}

}  // namespace stnm
}  // namespace ganrepro
