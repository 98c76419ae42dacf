// Pass 2 of the dense gather backward (pass 1 is dense_backward_kernel with
// SCRATCH in stnm_cuda_dense.cu): one thread per source pixel of grad_fg and
// grad_mask sums, over the output pixels that sample it, the tap weight times
// the values pass 1 stored.  No atomics and no zeroing: each element is written
// once.  Candidates, the exact tap test and the weights are the shared code of
// stnm_gather.h, which the CPU kernel runs too (tests/common/ops/test_stnm_gather.py).
// Images whose gather window is unbounded instead scatter the stored values
// with atomics into the slices that pass 1 zeroed for them.
#include "stnm_cuda.h"
#include "stnm_cuda_device.h"

namespace ganrepro {
namespace stnm {
namespace {

constexpr int kTileW = 32;                    // source tile: one warp per row
constexpr int kTileRows = kThreads / kTileW;  // 8 rows
// Blocks in all: about a wave or more, each walking as many tiles of one image
// as that allows, over which it spreads the cost of the image's window (some
// 250 instructions per thread).
constexpr int kBlocksPerSm = 8;

using Foot = Footprint<float, int>;

struct GatherImage {
  const float* scratch;
  float *grad_fg, *grad_mask;
};

template <int C>
__device__ __forceinline__ void gather_dense_pixel(const DenseBackwardArgs& a,
                                                   const Grid<float, int>& grid,
                                                   const Pose<float>& pose,
                                                   const GatherWindow<float>& window,
                                                   const GatherImage& img, int y, int x) {
  const Candidates<int> k = candidates(window, grid, y, x);
  float sum[C + 1];
#pragma unroll
  for (int c = 0; c <= C; ++c) sum[c] = 0.f;
  for (int i = k.i_lo; i <= k.i_hi; ++i) {
    const FootprintRow<float> row = footprint_row(pose, grid, i);
    for (int j = k.j_lo; j <= k.j_hi; ++j) {
      float weight;
      if (!tap_weight(footprint(pose, grid, row, j), y, x, weight)) continue;
      float v[C + 1];
      ScratchPixel<C>::load(img.scratch + (i * grid.W + j) * (C + 1), v);
#pragma unroll
      for (int c = 0; c <= C; ++c) sum[c] += weight * v[c];
    }
  }
#pragma unroll
  for (int c = 0; c < C; ++c) st(img.grad_fg + c * a.grad_fg.sc + y * a.grad_fg.sh + x, sum[c]);
  st(img.grad_mask + y * a.grad_mask.sh + x, sum[C]);
}

// The fallback for an image with an unbounded window: the image's blocks share
// its output pixels and scatter their stored values with atomics.
template <int C>
__device__ void scatter_image_share(const DenseBackwardArgs& a, const Grid<float, int>& grid,
                                    const Pose<float>& pose, const GatherImage& img) {
  const int blocks = static_cast<int>(gridDim.x * gridDim.y);
  const int k = static_cast<int>(blockIdx.y * gridDim.x + blockIdx.x);
  const int64_t hw = static_cast<int64_t>(grid.H) * grid.W;
  for (int64_t r = static_cast<int64_t>(k) * kThreads + threadIdx.x; r < hw;
       r += static_cast<int64_t>(blocks) * kThreads) {
    const int i = static_cast<int>(r / grid.W);
    const int j = static_cast<int>(r - static_cast<int64_t>(i) * grid.W);
    const Foot f = footprint(pose, grid, i, j);
    if (!any_tap_inside(f)) continue;
    float v[C + 1];
    ScratchPixel<C>::load(img.scratch + (i * grid.W + j) * (C + 1), v);
    const int fg_corner = f.y0 * a.grad_fg.sh + f.x0;
#pragma unroll
    for (int c = 0; c < C; ++c) {
      scatter<false, false>(img.grad_fg + c * a.grad_fg.sc + fg_corner, a.grad_fg.sh, f, v[c]);
    }
    scatter<false, false>(img.grad_mask + f.y0 * a.grad_mask.sh + f.x0, a.grad_mask.sh, f, v[C]);
  }
}

// Resident blocks per SM asked of the compiler: five (48 registers on sm_90),
// since with fewer registers to spare ptxas recomputes the window's fields for
// every tile (nvcc -Xptxas -v, cuobjdump -sass); four where an SM holds only
// 1024 threads (sm_75).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#define GANREPRO_STNM_GATHER_MIN_BLOCKS 4
#else
#define GANREPRO_STNM_GATHER_MIN_BLOCKS 5
#endif

// Grid: x = source tile column, y = source tile row (looping), z = batch element
// (looping beyond the grid limit).
template <int C>
__global__ void __launch_bounds__(kThreads, GANREPRO_STNM_GATHER_MIN_BLOCKS)
    dense_gather_kernel(const DenseBackwardArgs a) {
  const auto grid = make_grid<float, int>(a.shape);
  const int tiles_y = (grid.Hf + kTileRows - 1) / kTileRows;
  const int x = static_cast<int>(blockIdx.x) * kTileW + static_cast<int>(threadIdx.x & 31);
  const int row = static_cast<int>(threadIdx.x >> 5);
  for (int64_t b = blockIdx.z; b < a.shape.B; b += gridDim.z) {
    const Pose<float> pose = pose_of(a.theta, b);
    const GatherImage img{scratch_of(a, b), image_of(a.grad_fg, b),
                          image_of(a.grad_mask, b)};
    const GatherWindow<float> window = gather_window(pose, grid);
    if (!window.ok) {
      scatter_image_share<C>(a, grid, pose, img);
      continue;
    }
    if (x >= grid.Wf) continue;
    for (int ty = blockIdx.y; ty < tiles_y; ty += gridDim.y) {
      const int y = ty * kTileRows + row;
      if (y < grid.Hf) gather_dense_pixel<C>(a, grid, pose, window, img, y, x);
    }
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

cudaError_t launch_dense_gather(const DenseBackwardArgs& a, int sm_count, cudaStream_t stream) {
  const int64_t B = a.shape.B;
  const int64_t source = a.shape.Hf * a.shape.Wf;
  if (B == 0 || source == 0) return cudaSuccess;
  const int64_t tiles_x = ceil_div(a.shape.Wf, kTileW);
  const int64_t tiles_y = ceil_div(a.shape.Hf, kTileRows);
  const int64_t wanted = ceil_div(int64_t{sm_count} * kBlocksPerSm, tiles_x * B);
  const int64_t blocks_y = wanted < tiles_y ? wanted : tiles_y;
  const dim3 grid(static_cast<unsigned>(tiles_x),
                  static_cast<unsigned>(blocks_y < kMaxGridY ? blocks_y : kMaxGridY),
                  static_cast<unsigned>(B < kMaxGridY ? B : kMaxGridY));
  if (a.shape.C == 1) {
    dense_gather_kernel<1><<<grid, kThreads, 0, stream>>>(a);
  } else {
    dense_gather_kernel<3><<<grid, kThreads, 0, stream>>>(a);
  }
  return cudaGetLastError();
}

}  // namespace stnm
}  // namespace ganrepro
