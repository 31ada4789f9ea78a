"""export stage: adapter merged into its base -> GGUF f16 / q8_0 / q4_0 + skills.gbnf (what llama.cpp runs).

    python -m stages.export BASE_DIR ADAPTER_DIR OUT_DIR      (dvc.yaml: models/base models/adapter models/export)

W&B: offline unless WANDB_MODE says otherwise; job type "export"; the run uses the adapter's ``model`` artifact
and logs OUT_DIR as one ``model`` artifact (``skillcall-gguf``), so the lineage reads adapter -> export.
"""

import sys
import time

from skillcall import tracking
from skillcall.export import EXPORT_ARTIFACT, GGUF_TYPES, export_gguf
from skillcall.models import adapter_metadata
from skillcall.params import load_params


def main(base_dir: str, adapter_dir: str, out_dir: str) -> None:
    began = time.perf_counter()
    config = {"base": base_dir, "adapter": adapter_dir, "types": list(GGUF_TYPES)}
    run = tracking.init_run("export", config, load_params("wandb", tracking.WandbParams), stage="export")
    metadata = adapter_metadata(adapter_dir)
    tracking.use_artifact(run, tracking.MODEL_ARTIFACT, "model", adapter_dir, metadata)
    paths = export_gguf(adapter_dir, out_dir, base_dir)
    sizes = {p.name: round(p.stat().st_size / 1e6, 1) for p in paths}
    tracking.log_artifact(run, EXPORT_ARTIFACT, "model", out_dir, metadata | {"files_mb": sizes})
    run.finish()
    listing = ", ".join(f"{name} {mb} MB" for name, mb in sizes.items())
    print(f"export: {adapter_dir} merged into {base_dir} -> {out_dir}: {listing} ({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main(*sys.argv[1:])
