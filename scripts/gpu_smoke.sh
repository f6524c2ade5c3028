#!/usr/bin/env bash
# The CUDA paths a CPU machine cannot run, end to end on one GPU: a GAN at 32-true, the gradient penalty under
# 16-mixed loss scaling, bf16-mixed with compile=true, both text-to-image stages of the digits presets, and
# sampling free-text prompts from the result, and the CIFAR-10 reproduction presets (with ADA) for a few hundred steps.
# Prints each run's wall time and final metrics.
#   bash scripts/gpu_smoke.sh [OUT_DIR]        (PYTHON=... picks the interpreter; default python3)
# TRAINER=cpu DEVICE=cpu EXTRA="trainer.max_epochs=1 trainer.limit_train_batches=2" checks the script itself on a CPU.
set -euo pipefail
out=${1:-logs/gpu_smoke}
py=${PYTHON:-python3}
trainer=${TRAINER:-gpu}
device=${DEVICE:-cuda}
read -r -a extra <<<"${EXTRA:-}"
mkdir -p "$out"

final_metrics() {  # the last logged value of each key of a run's metrics.csv that matches $2
  "$py" - "$1" "$2" <<'EOF'
import csv, re, sys
rows = list(csv.DictReader(open(sys.argv[1])))
keys = sorted(k for k in (rows[0] if rows else {}) if re.search(sys.argv[2], k))
last = {k: next((r[k] for r in reversed(rows) if r.get(k)), "") for k in keys}
print("   ", "  ".join(f"{k}={float(v):.4g}" for k, v in last.items() if v))
EOF
}

train() {  # name, metric regex, overrides...
  local name=$1 pattern=$2
  shift 2
  local start=$SECONDS
  "$py" -m parti_exp.train "trainer=$trainer" "hydra.run.dir=$out/$name" "$@" "${extra[@]}" >"$out/$name.log" 2>&1 ||
    { echo "$name FAILED"; tail -30 "$out/$name.log"; exit 1; }
  echo "$name: $((SECONDS - start)) s"
  final_metrics "$out/$name/csv/metrics.csv" "$pattern"
}

"$py" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU')"
train dcgan_fp32 "fid_clf|is_clf|g_loss" trainer.max_epochs=5 metrics.every_n_epochs=5
fp16=$([ "$trainer" = cpu ] && echo bf16-mixed || echo 16-mixed)  # float16 loss scaling needs CUDA
train wgan_gp_fp16 "train/gp|g_loss|d_loss" model=wgan_gp precision=$fp16 trainer.max_epochs=2 metrics=none
train dcgan_bf16_compiled "g_loss|d_loss" precision=bf16-mixed compile=true trainer.max_epochs=2 metrics=none
train tokenizer_digits "val/psnr|perplexity" experiment=tokenizer_digits
train parti_digits "caption_acc|fid_clf|val/ce" experiment=parti_digits \
  "model.tokenizer_ckpt=$out/tokenizer_digits/checkpoints/last.ckpt"
start=$SECONDS
"$py" -m parti_exp.sample "ckpt_path=$out/parti_digits/checkpoints/last.ckpt" "device=$device" n=8 "out_dir=$out/prompts" \
  'prompts=["a handwritten seven","the digit 2","a red bus parked on a street"]' >"$out/sample.log" 2>&1 ||
  { echo "sample FAILED"; tail -30 "$out/sample.log"; exit 1; }
echo "sample: $((SECONDS - start)) s, $(find "$out/prompts" -name '*.png' | wc -l) PNGs"

# The CIFAR-10 reproduction presets at their published widths, a few hundred optimizer steps each (no FID: the
# metrics would need the Inception weights, and a few hundred steps say nothing about it). CIFAR_DIR= a directory
# holding cifar-10-batches-py/; without it, random pixels in the official pickle format are written there.
cifar=${CIFAR_DIR:-$out/cifar10}
if [ ! -d "$cifar/cifar-10-batches-py" ]; then
  PYTHONPATH="tests${PYTHONPATH:+:$PYTHONPATH}" "$py" -c \
    "import sys; from dataset_files import write_cifar10; write_cifar10(__import__('pathlib').Path(sys.argv[1]), per_batch=200, n_test=200)" \
    "$cifar"
fi
steps=${PRESET_STEPS:-300}
for preset in dcgan wgan_gp sngan cgan_pd stylegan2; do
  train "cifar10_$preset" "g_loss|d_loss|ada_p" "experiment=cifar10_$preset" "paths.data_dir=$cifar" data.verify=false \
    metrics=none trainer.max_epochs=-1 "trainer.max_steps=$steps"
done
train cifar10_stylegan2_ada "g_loss|ada_p|ada_rt" experiment=cifar10_stylegan2 augment=ada \
  augment.pipeline.speed_images=20000 "paths.data_dir=$cifar" data.verify=false metrics=none trainer.max_epochs=-1 \
  "trainer.max_steps=$steps"
