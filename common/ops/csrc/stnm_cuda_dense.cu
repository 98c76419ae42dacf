// Dense float32 CUDA kernels of STNM: the fast path for the usual case
// (float32, 1 or 3 channels, rows contiguous, per-image offsets within int32).
//
// Compared with the generic kernels (stnm_cuda.cu) they
//  * know the channel count at compile time, so a pixel is straight-line code;
//  * address each batch element through a base pointer per tensor and 32-bit
//    offsets (a 64-bit index costs about five instructions per address on a
//    GPU, a 32-bit offset from a base pointer one), with contiguous rows so that
//    a tap's right neighbour is an immediate +4 bytes;
//  * compute the launch constants once per thread and read theta once per image;
//  * give each thread P output pixels, 8 rows apart in a 32-wide tile, and issue
//    all of their loads before any store or atomic, so that more memory
//    requests are in flight per thread;
//  * in the atomic backward, scatter without per-tap branches where all four
//    taps are inside, optionally send adjacent taps as one 8-byte atomic on
//    sm_90, and, when a block owns an image, zero the source rows just before
//    the atomics reach them (or the whole slice first);
//  * in the gather backward (stnm_gather.h), store each output pixel's C + 1
//    values as one vector instead of scattering them (pass 1); pass 2 is
//    stnm_cuda_gather.cu.
// The arithmetic is the shared per-pixel code of stnm_math.h (footprint,
// interpolate, composite, backward_channel, theta_terms), the same the CPU
// kernel runs, so the CPU tests vouch for it; tests/common/ops/test_stnm_cuda.py
// runs both CUDA paths against the reference.
#include "stnm_cuda.h"
#include "stnm_cuda_device.h"

namespace ganrepro {
namespace stnm {
namespace {

constexpr int kTileW = 32;                    // one warp covers one tile row
constexpr int kTileRows = kThreads / kTileW;  // rows covered per pixel slot: 8
constexpr int kBlocksPerSm = 8;               // split mode: blocks per SM in total

using Foot = Footprint<float, int>;

// grad_fg and grad_mask receive one pixel's contributions.  Pixels whose taps
// are all inside (most pixels of an object) take a path without per-tap
// branches; pixels with no tap inside skip the scatter.
template <int C, bool PAIR, bool ALL>
__device__ __forceinline__ void scatter_pixel(const DenseBackwardArgs& a, float* grad_fg,
                                              float* grad_mask, const Foot& f, const float gf[C],
                                              float gm) {
#pragma unroll
  for (int c = 0; c < C; ++c) {
    scatter<PAIR, ALL>(grad_fg + c * a.grad_fg.sc, a.grad_fg.sh, f, gf[c]);
  }
  scatter<PAIR, ALL>(grad_mask, a.grad_mask.sh, f, gm);
}

// ---------------------------------------------------------------------------
// Per-tile work.  A thread's pixels are (i0 + 8 p, j) for p < P.

template <int P>
__device__ __forceinline__ void footprints(const Pose<float>& pose, const Grid<float, int>& grid,
                                           int i0, int j, Foot f[P], bool on[P]) {
#pragma unroll
  for (int p = 0; p < P; ++p) {
    const int i = i0 + kTileRows * p;
    on[p] = i < grid.H && j < grid.W;
    f[p] = footprint(pose, grid, i, j);
    if (!on[p]) f[p].in[0] = f[p].in[1] = f[p].in[2] = f[p].in[3] = false;
  }
}

__device__ __forceinline__ int top_left(const Foot& f, int sh) { return f.y0 * sh + f.x0; }

struct ForwardImage {
  const float *canvas, *fg, *mask;
  float* out;
};

template <int C, int P>
__device__ __forceinline__ void forward_tile(const DenseForwardArgs& a,
                                             const Grid<float, int>& grid,
                                             const Pose<float>& pose, const ForwardImage& img,
                                             int i0, int j) {
  Foot f[P];
  bool on[P];
  footprints<P>(pose, grid, i0, j, f, on);
  float mv[P][4], v[P][C][4], bg[P][C];
#pragma unroll
  for (int p = 0; p < P; ++p) {  // every load first
    load4(img.mask + top_left(f[p], a.mask.sh), a.mask.sh, f[p], mv[p]);
    const float* fg = img.fg + top_left(f[p], a.fg.sh);
    const float* canvas = img.canvas + (i0 + kTileRows * p) * a.canvas.sh + j;
#pragma unroll
    for (int c = 0; c < C; ++c) {
      load4(fg + c * a.fg.sc, a.fg.sh, f[p], v[p][c]);
      bg[p][c] = on[p] ? ld(canvas + c * a.canvas.sc) : 0.f;
    }
  }
#pragma unroll
  for (int p = 0; p < P; ++p) {
    if (!on[p]) continue;
    const float m = interpolate(f[p], mv[p]);
    float* out = img.out + (i0 + kTileRows * p) * a.out.sh + j;
#pragma unroll
    for (int c = 0; c < C; ++c) {
      st(out + c * a.out.sc, composite(m, interpolate(f[p], v[p][c]), bg[p][c]));
    }
  }
}

struct BackwardImage {
  const float *grad_out, *canvas, *fg, *mask;
  float *grad_canvas, *grad_fg, *grad_mask, *scratch;
};

// SCRATCH: the gather backward's pass 1 (stores), else the atomic backward.
template <int C, int P, bool PAIR, bool SCRATCH>
__device__ __forceinline__ void backward_tile(const DenseBackwardArgs& a,
                                              const Grid<float, int>& grid,
                                              const Pose<float>& pose, const BackwardImage& img,
                                              int i0, int j, float acc[6]) {
  Foot f[P];
  bool on[P];
  footprints<P>(pose, grid, i0, j, f, on);
  float mv[P][4], v[P][C][4], g[P][C], bg[P][C];
#pragma unroll
  for (int p = 0; p < P; ++p) {  // every load first
    load4(img.mask + top_left(f[p], a.mask.sh), a.mask.sh, f[p], mv[p]);
    const float* fg = img.fg + top_left(f[p], a.fg.sh);
    const int i = i0 + kTileRows * p;
    const float* grad_out = img.grad_out + i * a.grad_out.sh + j;
    const float* canvas = img.canvas + i * a.canvas.sh + j;
#pragma unroll
    for (int c = 0; c < C; ++c) {
      load4(fg + c * a.fg.sc, a.fg.sh, f[p], v[p][c]);
      g[p][c] = on[p] ? ld(grad_out + c * a.grad_out.sc) : 0.f;
      bg[p][c] = on[p] ? ld(canvas + c * a.canvas.sc) : 0.f;
    }
  }
#pragma unroll
  for (int p = 0; p < P; ++p) {
    if (!on[p]) continue;
    const float m = interpolate(f[p], mv[p]);
    float* grad_canvas = img.grad_canvas + (i0 + kTileRows * p) * a.grad_canvas.sh + j;
    float* grad_fg = img.grad_fg + top_left(f[p], a.grad_fg.sh);
    PixelGrad<float> pg;
    float gf[C];
#pragma unroll
    for (int c = 0; c < C; ++c) {
      float d_canvas;
      gf[c] = backward_channel(f[p], v[p][c], g[p][c], bg[p][c], m, d_canvas, pg);
      st(grad_canvas + c * a.grad_canvas.sc, d_canvas);
    }
    float* grad_mask = img.grad_mask + top_left(f[p], a.grad_mask.sh);
    const Foot& t = f[p];
    if (SCRATCH) {
      if (near_source(t, grid)) store_scratch<C>(grid, img.scratch, i0 + kTileRows * p, j, gf, pg.m);
    } else if (t.in[0] && t.in[1] && t.in[2] && t.in[3]) {
      scatter_pixel<C, PAIR, true>(a, grad_fg, grad_mask, t, gf, pg.m);
    } else if (t.in[0] || t.in[1] || t.in[2] || t.in[3]) {
      scatter_pixel<C, PAIR, false>(a, grad_fg, grad_mask, t, gf, pg.m);
    }
    theta_terms(f[p], mv[p], grid, a.mask_grad_full, pg, acc);
  }
}

// ---------------------------------------------------------------------------
// Kernels.  Grid: x = tile column, y = tile row, z = batch element (y and z
// loop when the image or the batch exceeds the grid limits).

// Resident blocks per SM asked of the compiler (a register cap): as many as the
// kernel's natural register use allows, so that the cap costs no or almost no
// spills (checked with nvcc -Xptxas -v; see docs/custom_ops_perf.md).
constexpr int forward_min_blocks(int pixels) { return pixels == 1 ? 4 : pixels == 2 ? 3 : 2; }
constexpr int backward_min_blocks(int pixels) { return pixels == 1 ? 3 : 2; }

template <int C, int P>
__global__ void __launch_bounds__(kThreads, forward_min_blocks(P))
    dense_forward_kernel(const DenseForwardArgs a) {
  const auto grid = make_grid<float, int>(a.shape);
  const int rows = kTileRows * P;
  const int tiles_y = (grid.H + rows - 1) / rows;
  const int j = blockIdx.x * kTileW + static_cast<int>(threadIdx.x & 31);
  const int row = static_cast<int>(threadIdx.x >> 5);
  for (int64_t b = blockIdx.z; b < a.shape.B; b += gridDim.z) {
    const Pose<float> pose = pose_of(a.theta, b);
    const ForwardImage img{image_of(a.canvas, b), image_of(a.fg, b), image_of(a.mask, b),
                           image_of(a.out, b)};
    for (int ty = blockIdx.y; ty < tiles_y; ty += gridDim.y) {
      forward_tile<C, P>(a, grid, pose, img, ty * rows + row, j);
    }
  }
}

// Who zeroes grad_fg and grad_mask before the atomics add to them.
enum class Zeroing {
  kLauncher,   // blocks share images; the launcher zeroed everything with memsets
  kImageFront, // one block per image; it zeroes the image's slices first
  kImageRows,  // one block per image; it zeroes source rows just before they are needed
  kNone,       // one block per image, nothing to zero (the gather's pass 1)
};

// Own-image zeroing row by row (Zeroing::kImageRows).  The block walks its
// image's output rows in order and, before each band of output rows, zeroes the
// source rows that the band may touch and that are not zeroed yet.  A row is
// then accumulated within microseconds of being zeroed, while it is still in L2.
// Zeroing the whole slice first instead leaves time for L2 to evict it before
// the atomics arrive (at 1024x3x128x128 about 400 images' slices are in flight,
// 100 MB against a 50 MB L2), which costs a DRAM read and write per line.
//
// last_row_touched bounds the source rows that output rows [i_first, i_last]
// touch: the row of a top-left tap is monotone in i and in j, so over the band
// it is largest at a corner; add 1 for the bottom tap, 1 for a floor that
// rounds the other way, and the most that two evaluation orders of the
// position can differ, half_hf (|d| + |e| + |f| + 1) 2^-20 pixels (doubled).
// Lanes 0-3 of every warp evaluate the corners, so all warps agree.
__device__ __forceinline__ int last_row_touched(const Pose<float>& pose,
                                                const Grid<float, int>& grid, int i_first,
                                                int i_last) {
  const int lane = static_cast<int>(threadIdx.x & 31);
  int y0 = -3;
  if (lane < 4) {
    y0 = footprint(pose, grid, (lane & 1) ? i_last : i_first, (lane & 2) ? grid.W - 1 : 0).y0;
  }
  y0 = max(y0, __shfl_xor_sync(0xffffffffu, y0, 2));
  y0 = max(y0, __shfl_xor_sync(0xffffffffu, y0, 1));
  y0 = __shfl_sync(0xffffffffu, y0, 0);
  const float slack =
      grid.half_hf * (fabsf(pose.d) + fabsf(pose.e) + fabsf(pose.f) + 1.f) * 0x1p-19f;
  if (!(slack < static_cast<float>(grid.Hf))) return grid.Hf - 1;  // also NaN and inf
  return min(grid.Hf - 1, y0 + 2 + static_cast<int>(slack));
}

// Zeroes source rows [first, last] of every plane of the image's grad_fg and
// grad_mask (contiguous NCHW, as the op allocates them).
__device__ __forceinline__ void zero_rows(const DenseBackwardArgs& a, int64_t b, int first,
                                          int last) {
  if (last < first) return;
  const int64_t plane = a.shape.Hf * a.shape.Wf;
  const int64_t n = static_cast<int64_t>(last - first + 1) * a.shape.Wf;
  float* fg = a.grad_fg.data + b * a.grad_fg.sb + static_cast<int64_t>(first) * a.shape.Wf;
  for (int64_t c = 0; c < a.shape.C; ++c) zero_run(fg + c * plane, n);
  zero_run(a.grad_mask.data + b * a.grad_mask.sb + static_cast<int64_t>(first) * a.shape.Wf, n);
}

template <int C, int P, bool PAIR, bool SCRATCH>
__global__ void __launch_bounds__(kThreads, backward_min_blocks(P))
    dense_backward_kernel(const DenseBackwardArgs a, Zeroing zeroing) {
  const auto grid = make_grid<float, int>(a.shape);
  const int rows = kTileRows * P;
  const int tiles_x = (grid.W + kTileW - 1) / kTileW;
  const int tiles_y = (grid.H + rows - 1) / rows;
  const int lane = static_cast<int>(threadIdx.x & 31);
  const int row = static_cast<int>(threadIdx.x >> 5);
  for (int64_t b = blockIdx.z; b < a.shape.B; b += gridDim.z) {
    if (zeroing == Zeroing::kImageFront) {
      zero_rows(a, b, 0, grid.Hf - 1);
      __syncthreads();
    }
    const Pose<float> pose = pose_of(a.theta, b);
    if (SCRATCH) zero_for_scatter(a, grid, pose, b);
    const BackwardImage img{image_of(a.grad_out, b),    image_of(a.canvas, b),
                            image_of(a.fg, b),          image_of(a.mask, b),
                            image_of(a.grad_canvas, b), image_of(a.grad_fg, b),
                            image_of(a.grad_mask, b),   SCRATCH ? scratch_of(a, b) : nullptr};
    float acc[6] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    int zeroed = -1;  // kImageRows: source rows [0, zeroed] are zero
    for (int ty = blockIdx.y; ty < tiles_y; ty += gridDim.y) {
      if (zeroing == Zeroing::kImageRows) {
        const int last = min(ty * rows + rows, grid.H) - 1;
        const int needed = last_row_touched(pose, grid, ty * rows, last);
        if (needed > zeroed) {
          zero_rows(a, b, zeroed + 1, needed);
          zeroed = needed;
          __syncthreads();
        }
      }
      for (int tx = blockIdx.x; tx < tiles_x; tx += gridDim.x) {
        backward_tile<C, P, PAIR, SCRATCH>(a, grid, pose, img, ty * rows + row,
                                           tx * kTileW + lane, acc);
      }
    }
    if (zeroing == Zeroing::kImageRows) zero_rows(a, b, zeroed + 1, grid.Hf - 1);
    write_grad_theta(a.grad_theta + b * 6, acc, zeroing != Zeroing::kLauncher);
  }
}

// ---------------------------------------------------------------------------
// Launchers.

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

unsigned grid_limit(int64_t n) { return static_cast<unsigned>(n < kMaxGridY ? n : kMaxGridY); }

template <typename Fn>
void with_pixels(int pixels, Fn&& fn) {
  if (pixels == 1) {
    fn(std::integral_constant<int, 1>{});
  } else if (pixels == 4) {
    fn(std::integral_constant<int, 4>{});
  } else {
    fn(std::integral_constant<int, 2>{});
  }
}

template <typename Fn>
void with_channels(int64_t channels, Fn&& fn) {
  if (channels == 1) {
    fn(std::integral_constant<int, 1>{});
  } else {
    fn(std::integral_constant<int, 3>{});
  }
}

// 8-byte tap pairs need rows that start 8-byte aligned.
bool rows_pair_aligned(const Image32<float>& v) {
  return v.sh % 2 == 0 && v.sc % 2 == 0 && v.sb % 2 == 0 &&
         (reinterpret_cast<uintptr_t>(v.data) & 7u) == 0;
}

}  // namespace

bool dense_supports_channels(int64_t channels) { return channels == 1 || channels == 3; }

cudaError_t launch_dense_forward(const DenseForwardArgs& a, const CudaConfig& config,
                                 cudaStream_t stream) {
  if (a.shape.B == 0 || a.shape.H * a.shape.W == 0) return cudaSuccess;
  with_pixels(config.fwd_pixels, [&](auto pixels) {
    constexpr int P = decltype(pixels)::value;
    const dim3 grid(static_cast<unsigned>(ceil_div(a.shape.W, kTileW)),
                    grid_limit(ceil_div(a.shape.H, kTileRows * P)), grid_limit(a.shape.B));
    with_channels(a.shape.C, [&](auto channels) {
      dense_forward_kernel<decltype(channels)::value, P><<<grid, kThreads, 0, stream>>>(a);
    });
  });
  return cudaGetLastError();
}

cudaError_t launch_dense_backward(const DenseBackwardArgs& a, const CudaConfig& config,
                                  cudaStream_t stream) {
  int sm_count = 0;
  cudaError_t status = multiprocessor_count(&sm_count);
  if (status != cudaSuccess) return status;
  const int64_t B = a.shape.B;
  const int64_t hw = a.shape.H * a.shape.W;
  const bool gather = a.scratch != nullptr;
  const int pixels = config.bwd_pixels == 1 ? 1 : 2;
  const bool own_image = backward_owns_images(config.images, B, hw, sm_count);
  dim3 grid(1, 1, grid_limit(B));
  if (!own_image || B == 0 || hw == 0) {
    // The gather zeroes nothing here: pass 2 writes grad_fg and grad_mask (and
    // pass 1 zeroes what pass 2 scatters), unless no output pixel exists at all.
    const bool zero_sources = !gather || hw == 0;
    const size_t fg_bytes = static_cast<size_t>(B * a.shape.C * a.shape.Hf * a.shape.Wf) * 4;
    const size_t mask_bytes = static_cast<size_t>(B * a.shape.Hf * a.shape.Wf) * 4;
    const size_t theta_bytes = static_cast<size_t>(B) * 6 * 4;
    if (zero_sources && fg_bytes > 0) status = cudaMemsetAsync(a.grad_fg.data, 0, fg_bytes, stream);
    if (status == cudaSuccess && zero_sources && mask_bytes > 0)
      status = cudaMemsetAsync(a.grad_mask.data, 0, mask_bytes, stream);
    if (status == cudaSuccess && theta_bytes > 0)
      status = cudaMemsetAsync(a.grad_theta, 0, theta_bytes, stream);
    if (status != cudaSuccess || B == 0 || hw == 0) return status;
    // All tile columns, and enough tile rows for about kBlocksPerSm blocks per SM.
    const int64_t tiles_x = ceil_div(a.shape.W, kTileW);
    const int64_t tiles_y = ceil_div(a.shape.H, kTileRows * pixels);
    const int64_t wanted = ceil_div(ceil_div(int64_t{sm_count} * kBlocksPerSm, B), tiles_x);
    grid.x = static_cast<unsigned>(tiles_x);
    grid.y = grid_limit(wanted < tiles_y ? wanted : tiles_y);
  }
  const bool pair = !gather && config.pair_atomics && rows_pair_aligned(a.grad_fg) &&
                    rows_pair_aligned(a.grad_mask);
  const bool rows = config.zero == CudaConfig::Zero::kRows ||
                    (config.zero == CudaConfig::Zero::kAuto && B > sm_count);
  const Zeroing zeroing = !own_image ? Zeroing::kLauncher
                          : gather   ? Zeroing::kNone
                          : rows     ? Zeroing::kImageRows
                                     : Zeroing::kImageFront;
  with_pixels(pixels, [&](auto pixel_count) {
    constexpr int P = decltype(pixel_count)::value == 1 ? 1 : 2;
    with_channels(a.shape.C, [&](auto channels) {
      constexpr int C = decltype(channels)::value;
      if (gather) {
        dense_backward_kernel<C, P, false, true><<<grid, kThreads, 0, stream>>>(a, zeroing);
      } else if (pair) {
        dense_backward_kernel<C, P, true, false><<<grid, kThreads, 0, stream>>>(a, zeroing);
      } else {
        dense_backward_kernel<C, P, false, false><<<grid, kThreads, 0, stream>>>(a, zeroing);
      }
    });
  });
  status = cudaGetLastError();
  if (status != cudaSuccess || !gather) return status;
  return launch_dense_gather(a, sm_count, stream);
}

}  // namespace stnm
}  // namespace ganrepro
