#!/usr/bin/env bash
# The GPU measurements of docs/benchmarks.md, in stages, on a GPU machine with the wheelhouse's packages
# (../shared/device/wheelhouse.sh) installed under /tmp/site. Each stage writes under $OUT (default
# bench/.gpu-out) and is bounded by `timeout`, so a stage that fails or hangs leaves the others' figures.
#
#   bench/gpu_session.sh env resnet50 bundled                    # first call
#   bench/gpu_session.sh loader resnet50_compile archs            # second call
set -uo pipefail
out=${OUT:-bench/.gpu-out}; mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
data=/tmp/algoprogress-bench
for stage in "$@"; do
  echo "=== $stage ($(date -u +%H:%M:%S))"
  case $stage in
    env)
      { nvidia-smi; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; lscpu | grep -E 'Model name|^CPU\(s\)';
        $py -c "import torch, torchvision, ffcv, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'torchvision', torchvision.__version__, 'ffcv', ffcv.__version__)"; } > "$out/env.txt" 2>&1
      cat "$out/env.txt" ;;
    resnet50)
      timeout 150 $py bench/train_throughput.py --arch resnet50 --images 20000 --folder $data --json "$out/resnet50.json" ;;
    resnet50_compile)
      timeout 200 $py bench/train_throughput.py --arch resnet50 --images 20000 --folder $data --compile --json "$out/resnet50_compile.json" ;;
    bundled)
      timeout 420 $py bench/make_run_timing.py --cores "$(nproc)" --out "$out/bundled_timing.md" --keep
      run=$(ls -dt /tmp/algoprogress-bench-*/ | head -1)
      tar -czf "$out/bundled_results.tar.gz" -C "$run" results ;;
    loader)
      timeout 150 $py bench/loading.py --images 20000 --side 176 --batch-size 256 --workers "$(nproc)" --repeats 3 \
        --write-mode proportion --folder $data --json "$out/loader.json" ;;
    archs)
      timeout 560 $py bench/train_throughput.py --images 20000 --folder $data --steps 40 --json "$out/archs.json" ;;
    archs_compile)
      timeout 560 $py bench/train_throughput.py --images 20000 --folder $data --steps 40 --compile \
        --arch resnet18 --arch mobilenet_v2 --arch shufflenet_v2_x1_0 --arch efficientnet_b0 --arch convnext_tiny \
        --arch vit_b_16 --json "$out/archs_compile.json" ;;
    *) echo "unknown stage $stage" >&2 ;;
  esac
done
