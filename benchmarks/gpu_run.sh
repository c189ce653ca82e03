#!/bin/bash
# One prepared device run (after `python -m benchmarks.gpu_payload`): GPU embedding throughput of
# the product against plain sentence-transformers, then four variants of the batching. Writes to $OUT.
OUT=${OUT:-/tmp}
export PYTHONPATH=src:.:.devdata/site HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 HF_HUB_DISABLE_PROGRESS_BARS=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "cores: $(nproc)"; lscpu | grep -i "model name"
python3 -c "import sys, torch, transformers, sentence_transformers, tokenizers; print(sys.version.split()[0], torch.__version__, transformers.__version__, sentence_transformers.__version__, tokenizers.__version__)"
B="python3 -m benchmarks.embed_throughput --texts .devdata/texts.jsonl.gz --device cuda"
$B --count 200000 --baseline-count 20000 --rounds 3 --json $OUT/embed.json 2>&1 | grep -v "Loading weights" | tee $OUT/embed.log
for v in "--tokens-per-batch 65536" "--tokens-per-batch 131072" "--chunk 4096" "--chunk 16384"; do
  echo "== variant $v"
  timeout 90 $B --count 200000 --rounds 2 --skip-baselines $v 2>&1 | grep -v "Loading weights" | grep "academichub\|agreement"
done 2>&1 | tee $OUT/variants.log
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
