#!/usr/bin/env bash
# Every GPU check and benchmark of the project, in stages, writing logs and JSON to OUTDIR.
# This is what produced the GPU numbers in README.md:  benchmarks/run_gpu.sh OUTDIR [STAGE ...]
# Stages: env ops loop models data numerics (default: all).
set -uo pipefail
out=${1:?usage: benchmarks/run_gpu.sh OUTDIR [STAGE ...]}; shift
stages=${*:-env ops loop models data numerics}
mkdir -p "$out"
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda} PYTHONUNBUFFERED=1
has() { [[ " $stages " == *" $1 "* ]]; }
step() { echo "=== $*"; "$@"; }

if has env; then
    python -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())" | tee "$out/env.txt"
    "$CUDA_HOME/bin/nvcc" --version | tail -1 | tee -a "$out/env.txt"
fi
if has ops; then
    step python scripts/ops_check.py --verbose 2>&1 | tee "$out/ops_check.txt"
    step python -m pytest -q -rs -p no:cacheprovider tests/common/ops/test_stnm_cuda.py \
        tests/common/ops/test_stnm_nvcc.py 2>&1 | tee "$out/pytest_ops_gpu.txt" | tail -15
    step python benchmarks/stnm.py --out "$out/stnm.json" 2>&1 | tee "$out/bench_stnm.txt" | tail -20
fi
if has loop; then
    step python -m pytest -q -rs -p no:cacheprovider tests/common/test_speed.py 2>&1 | tee "$out/pytest_loop_gpu.txt" | tail -8
fi
bench() {  # bench NAME MODEL CFG VARIANTS [KEY=VALUE ...]
    local name=$1 model=$2 cfg=$3 variants=$4; shift 4
    [ -f "$cfg" ] || { echo "skip $name: $cfg missing"; return; }
    step python benchmarks/train_step.py --model "$model" --cfg "$cfg" --variants "$variants" \
        --out "$out/train_$name.json" "$@" 2>&1 | tail -12
}
if has models; then
    all=eager,fused,channels_last,compile,graphs,graphs+compile
    bench lrgan_cifar10 lrgan cfg/lrgan_cifar10.yml "$all"
    bench rpgan_face48 rpgan cfg/rpgan_face48.yml "$all"
    bench stackgan_coco_s1 stackgan cfg/coco_s1.yml "$all"
    bench stackgan_coco_s2 stackgan cfg/coco_s2.yml eager,fused,graphs,compile
    bench stackgan2_birds stackgan2 cfg/birds_3stages.yml "$all"
    bench acvae_celeba64 acvae cfg/acvae_celeba64_acvaegan.yml eager,fused,channels_last,compile
fi
