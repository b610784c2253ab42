"""The demo notebook runs top to bottom (training its own tiny checkpoint) and shows what it promises."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "demo.ipynb"


def test_demo_notebook_runs_top_to_bottom(tmp_path, sample_data_dir, monkeypatch):
    # The kernel inherits this environment: a tiny model (32 px, width 4) trained for 4 optimizer steps.
    monkeypatch.setenv("MTMSA_DATA", str(sample_data_dir))
    monkeypatch.setenv("MTMSA_DEMO_SIZE", "32")
    monkeypatch.setenv("MTMSA_DEMO_STEPS", "4")
    monkeypatch.setenv(
        "MTMSA_DEMO_OVERRIDES",
        "model.generator.width=4 model.discriminator.width=8 model.discriminator.layers=4 dataset.batch_size=4",
    )
    monkeypatch.delenv("MTMSA_DEMO_CHECKPOINT", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=180, resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "trained " in text and "last.ckpt" in text
    assert "images (4, 3, 32, 32)" in text
    assert text.count("known pixels unchanged: True") == 2
    assert "head 3: temperature" in text  # the default attention has 4 heads
    figures = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(figures) == 4  # masks and sketches, inpainting, temperatures, attention
