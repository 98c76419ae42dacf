// Per-pixel arithmetic of STNM, shared by the CPU and the CUDA kernels.
//
// Everything here is plain C++ that compiles both with a host compiler and
// with nvcc (as __host__ __device__).  The CPU kernel, which the CPU test suite
// checks against the pure-PyTorch reference, runs exactly these functions, so
// the CUDA kernel only adds thread indexing and reductions on top of them.
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
STNM_HD double floor_of(double v) { return floor(v); }
STNM_HD float clamp_to(float v, float lo, float hi) { return fminf(fmaxf(v, lo), hi); }
STNM_HD double clamp_to(double v, double lo, double hi) { return fmin(fmax(v, lo), hi); }

// Base grid of affine_grid(align_corners=True): linspace(-1, 1, n), or 0 when
// n == 1.  Same formula as torch.linspace (each half counted from its own end),
// so the two ends are exactly -1 and 1.
template <typename T>
STNM_HD T base_coord(int64_t i, int64_t n) {
  if (n <= 1) return T(0);
  const T step = T(2) / T(n - 1);
  return i < n / 2 ? T(-1) + step * T(i) : T(1) - step * T(n - 1 - i);
}

// Where one output pixel samples the source, and with which weights.
// Taps are ordered TL, TR, BL, BR: (y0, x0), (y0, x0+1), (y0+1, x0), (y0+1, x0+1).
template <typename T>
struct Footprint {
  T xn, yn;          // normalised output position (needed by d/dtheta)
  int64_t x0, y0;    // top-left tap in source pixels
  T ax, ay;          // position inside the 2x2 cell, in [0, 1)
  T w[4];            // bilinear weights
  bool in[4];        // tap lies inside the source; outside taps read as zero
};

template <typename T>
STNM_HD Footprint<T> footprint(const ThetaView<T>& theta, const Shape& s,
                               int64_t b, int64_t i, int64_t j) {
  Footprint<T> f;
  f.xn = base_coord<T>(j, s.W);
  f.yn = base_coord<T>(i, s.H);
  const T* t = theta.data + b * theta.sb;
  const T gx = t[0] * f.xn + t[theta.sc] * f.yn + t[2 * theta.sc];
  const T gy = t[theta.sr] * f.xn + t[theta.sr + theta.sc] * f.yn + t[theta.sr + 2 * theta.sc];
  // align_corners=True: -1 and 1 are the centres of the first and last pixels.
  const T x_raw = (gx + T(1)) * (T(s.Wf - 1) * T(0.5));
  const T y_raw = (gy + T(1)) * (T(s.Hf - 1) * T(0.5));
  // Clamping keeps the integer conversion defined for far-away positions; two
  // pixels outside, every tap is already out of the source.  A NaN or infinite
  // position still has to poison the result, as it does in the reference:
  // `poison` is 0 for finite positions and NaN otherwise.
  const T x = clamp_to(x_raw, T(-2), T(s.Wf + 1));
  const T y = clamp_to(y_raw, T(-2), T(s.Hf + 1));
  const T poison = (x_raw - x_raw) + (y_raw - y_raw);
  const T fx = floor_of(x);
  const T fy = floor_of(y);
  f.x0 = static_cast<int64_t>(fx);
  f.y0 = static_cast<int64_t>(fy);
  f.ax = x - fx + poison;
  f.ay = y - fy + poison;
  f.w[0] = (T(1) - f.ax) * (T(1) - f.ay);
  f.w[1] = f.ax * (T(1) - f.ay);
  f.w[2] = (T(1) - f.ax) * f.ay;
  f.w[3] = f.ax * f.ay;
  const bool x0_in = f.x0 >= 0 && f.x0 < s.Wf;
  const bool x1_in = f.x0 + 1 >= 0 && f.x0 + 1 < s.Wf;
  const bool y0_in = f.y0 >= 0 && f.y0 < s.Hf;
  const bool y1_in = f.y0 + 1 >= 0 && f.y0 + 1 < s.Hf;
  f.in[0] = y0_in && x0_in;
  f.in[1] = y0_in && x1_in;
  f.in[2] = y1_in && x0_in;
  f.in[3] = y1_in && x1_in;
  return f;
}

// Offsets of the four taps inside one (b, c) plane of a strided tensor.
template <typename T>
STNM_HD void tap_offsets(const Footprint<T>& f, int64_t sh, int64_t sw, int64_t off[4]) {
  off[0] = f.y0 * sh + f.x0 * sw;
  off[1] = off[0] + sw;
  off[2] = off[0] + sh;
  off[3] = off[2] + sw;
}

template <typename T>
STNM_HD void load_taps(const T* plane, const Footprint<T>& f, const int64_t off[4], T v[4]) {
STNM_UNROLL
  for (int k = 0; k < 4; ++k) v[k] = f.in[k] ? plane[off[k]] : T(0);
}

template <typename T>
STNM_HD T interpolate(const Footprint<T>& f, const T v[4]) {
  return f.w[0] * v[0] + f.w[1] * v[1] + f.w[2] * v[2] + f.w[3] * v[3];
}

// Derivatives of the bilinear sample with respect to the source position, in
// source pixels (outside taps contribute their zero value, as in zero padding).
template <typename T>
STNM_HD T d_dx(const Footprint<T>& f, const T v[4]) {
  return (T(1) - f.ay) * (v[1] - v[0]) + f.ay * (v[3] - v[2]);
}
template <typename T>
STNM_HD T d_dy(const Footprint<T>& f, const T v[4]) {
  return (T(1) - f.ax) * (v[2] - v[0]) + f.ax * (v[3] - v[1]);
}

// Channels are handled in groups of G: a group issues all of its loads before
// any store or atomic, which keeps several loads in flight per GPU thread.
// G is a compile-time constant so that no registers go to unused channels;
// with_channel_group picks it (1 for masks/MNIST, 3 for RGB, else 4) and is the
// single rule used by both the CPU and the CUDA launchers.
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

// out = m * f + (1 - m) * canvas at output pixel (b, i, j), all channels.
template <int G, typename T>
STNM_HD void forward_pixel(const ForwardArgs<T>& a, int64_t b, int64_t i, int64_t j) {
  const Footprint<T> f = footprint(a.theta, a.shape, b, i, j);
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
      if (c0 + k < C) out[(c0 + k) * a.out.sc] = m * interpolate(f, v[k]) + (T(1) - m) * bg[k];
    }
  }
}

// Gradients at output pixel (b, i, j).  grad_canvas is written (each output
// pixel owns its canvas pixel); grad_fg and grad_mask are scattered to the
// four taps through `add` (a plain += on the CPU, atomicAdd on the GPU); the
// six d/dtheta terms are added to `acc` for the caller to reduce.
//
// d out_c / d position = m * d f_c / d position + (f_c - canvas_c) * d m / d position.
// The original LR-GAN kernel kept only the first term; mask_grad_full selects both.
template <int G, typename T, typename Acc, typename Add>
STNM_HD void backward_pixel(const BackwardArgs<T>& a, int64_t b, int64_t i, int64_t j,
                            Acc acc[6], Add add) {
  const Footprint<T> f = footprint(a.theta, a.shape, b, i, j);
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
  T* grad_fg = a.grad_fg.data + b * a.grad_fg.sb;
  int64_t grad_off[4];
  tap_offsets(f, a.grad_fg.sh, a.grad_fg.sw, grad_off);

  T grad_m = T(0);  // dL/dm at this pixel
  T grad_x = T(0);  // dL/d(source x) through the appearance
  T grad_y = T(0);
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
      grad_canvas[(c0 + k) * a.grad_canvas.sc] = gc[k] * (T(1) - m);
      grad_m += gc[k] * (interpolate(f, v[k]) - bg[k]);
      const T gf = gc[k] * m;  // dL/d(sampled fg)
      T* plane = grad_fg + (c0 + k) * a.grad_fg.sc;
STNM_UNROLL
      for (int t = 0; t < 4; ++t) {
        if (f.in[t]) add(plane + grad_off[t], f.w[t] * gf);
      }
      grad_x += gf * d_dx(f, v[k]);
      grad_y += gf * d_dy(f, v[k]);
    }
  }

  tap_offsets(f, a.grad_mask.sh, a.grad_mask.sw, grad_off);
  T* grad_mask = a.grad_mask.data + b * a.grad_mask.sb;
STNM_UNROLL
  for (int t = 0; t < 4; ++t) {
    if (f.in[t]) add(grad_mask + grad_off[t], f.w[t] * grad_m);
  }
  if (a.mask_grad_full) {
    grad_x += grad_m * d_dx(f, mv);
    grad_y += grad_m * d_dy(f, mv);
  }

  // Chain rule through x = (gx + 1) (Wf - 1) / 2 and gx = t00 xn + t01 yn + t02.
  const T gx = grad_x * (T(a.shape.Wf - 1) * T(0.5));
  const T gy = grad_y * (T(a.shape.Hf - 1) * T(0.5));
  acc[0] += gx * f.xn;
  acc[1] += gx * f.yn;
  acc[2] += gx;
  acc[3] += gy * f.xn;
  acc[4] += gy * f.yn;
  acc[5] += gy;
}

}  // namespace stnm
}  // namespace ganrepro
