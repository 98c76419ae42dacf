#!/usr/bin/env bash
# Every GPU check and benchmark of the project, in stages, writing logs and JSON to OUTDIR.
# This is what produced the GPU numbers in README.md:  benchmarks/run_gpu.sh OUTDIR [STAGE ...]
# Stages: env ops loop models_a data models_b rpgan_d profile (default: all). DATA=<shared data
# dir> is needed by the data stage. Every step's whole output is kept in OUTDIR/*.log.
set -uo pipefail
out=${1:?usage: benchmarks/run_gpu.sh OUTDIR [STAGE ...]}; shift
stages=${*:-env ops loop models_a data models_b rpgan_d profile}
mkdir -p "$out"
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda} PYTHONUNBUFFERED=1
has() { [[ " $stages " == *" $1 "* ]]; }
step() { echo "=== $*"; "$@"; }
bench() {  # bench NAME MODEL CFG VARIANTS [KEY=VALUE ...]
    local name=$1 model=$2 cfg=$3 variants=$4; shift 4
    step python benchmarks/train_step.py --model "$model" --cfg "$cfg" --variants "$variants" \
        --iters 40 --warmup 12 --out "$out/train_$name.json" "$@" > "$out/train_$name.log" 2>&1
    tail -8 "$out/train_$name.log"
}

if has env; then
    python -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())" | tee "$out/env.txt"
fi
if has ops; then
    step python scripts/lrgan_ops_check.py > "$out/ops_check.txt" 2>&1; tail -3 "$out/ops_check.txt"
    step python benchmarks/stnm.py --out "$out/stnm.json" > "$out/bench_stnm.txt" 2>&1
    grep -A12 "^STNM forward+backward" "$out/bench_stnm.txt" | head -6; tail -4 "$out/bench_stnm.txt"
fi
if has loop; then
    step python -m pytest -q -rs -p no:cacheprovider tests/common/test_speed.py \
        tests/common/test_fast_paths_gpu.py > "$out/pytest_loop.txt" 2>&1; tail -4 "$out/pytest_loop.txt"
fi
if has models_a; then
    bench lrgan_cifar10 lrgan cfg/lrgan_cifar10.yml \
        eager,fused,compile,graphs,graphs+compile,graphs+tf32,graphs+compile+tf32
    bench rpgan_face48 rpgan cfg/rpgan_face48.yml \
        eager,tf32,graphs+tf32,bf16,graphs+bf16,bf16+channels_last,compile+bf16
fi
if has data; then
    step python benchmarks/data_loop.py --model lrgan --cfg cfg/lrgan_cifar10.yml --fast graphs \
        --iters 300 --out "$out/data_lrgan.json" DATA.ROOT="$DATA/cifar10/test_jpg" RUN.WORKERS=8 \
        > "$out/data_lrgan.log" 2>&1; tail -1 "$out/data_lrgan.log"
    step python scripts/stackgan_embed_captions.py --data-dir "$DATA/cub/birds" --out /tmp/birds \
        --only-present > "$out/embed_captions.log" 2>&1 || tail -5 "$out/embed_captions.log"
    # the write-back (host-decided at snapshots) does not replay in a CUDA graph
    step python benchmarks/data_loop.py --model stackgan_v2 --cfg cfg/birds_3stages.yml --fast graphs \
        --iters 200 --out "$out/data_stackgan2.json" TREE.BRANCH_NUM=1 DATA_DIR=/tmp/birds \
        TRAIN.EMA_WRITE_BACK=False \
        DATASET.CUB_DIR="$DATA/cub/CUB_200_2011" EMBEDDING_TYPE=char-ngram RUN.WORKERS=12 \
        > "$out/data_stackgan2.log" 2>&1; tail -3 "$out/data_stackgan2.log"
fi
if has models_b; then
    bench stackgan_coco_s1 stackgan_v1 cfg/coco_s1.yml eager,fused,tf32,bf16,graphs+tf32,graphs+bf16
    bench stackgan_coco_s2 stackgan_v1 cfg/coco_s2.yml eager,tf32,bf16,graphs+bf16
    bench stackgan2_birds stackgan_v2 cfg/birds_3stages.yml eager,tf32,bf16,graphs+tf32,graphs+bf16 \
        TRAIN.EMA_WRITE_BACK=False   # host-decided at snapshots: no CUDA graph replays it
    bench acvae_celeba64 acvae cfg/acvae_celeba64_acvaegan.yml \
        eager,fused,tf32,bf16,bf16+tf32,bf16+channels_last,compile+tf32,compile+bf16
fi
if has rpgan_d; then
    step python benchmarks/rpgan_d.py --impl loop grouped_cl bmm --precision fp32 tf32 bf16 \
        --batch 64 128 --mode d g --json "$out/rpgan_d.json" > "$out/rpgan_d.log" 2>&1
    grep -A40 "^RP-GAN discriminator bank" "$out/rpgan_d.log"
fi
if has profile; then  # where the time goes: torch.profiler tables of the slowest iterations
    step python benchmarks/train_step.py --model acvae --cfg cfg/acvae_celeba64_acvaegan.yml \
        --variants eager,bf16 --iters 5 --warmup 5 --profile 3 > "$out/profile_acvae.log" 2>&1
    step python benchmarks/train_step.py --model rpgan --cfg cfg/rpgan_face48.yml \
        --variants bf16 --iters 5 --warmup 5 --profile 3 > "$out/profile_rpgan.log" 2>&1
fi
