"""mtmsa.export: the fixed-shape paths, ONNX and TorchScript graphs against the eager generator, mtmsa.inpaint
through ONNX Runtime against the checkpoint, portable safetensors weights with their card, load_pretrained."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from mtmsa.evaluation.evaluator import build_fill
from mtmsa.export import main as export_main
from mtmsa.inference import load_pretrained
from mtmsa.inference.checkpoints import CONFIG_KEY, CheckpointError, load_generator
from mtmsa.inference.export import PULL_PUSH_LEVELS, fixed_shape_copy
from mtmsa.inference.pretrained import CARD_FILE, TRAINING_KEY, WEIGHTS_FILE
from mtmsa.inpaint import main as inpaint_main
from mtmsa.models.attention import TemperatureMaskedAttention
from mtmsa.models.initial_fill import biharmonic_fill, harmonic_fill, pull_push_fill

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytest.importorskip("safetensors")

SIZES = [(1, 36, 20), (3, 32, 48), (2, 8, 100), (1, 256, 128)]
"""(batch, height, width) the graphs are checked at: none of them is the size they were traced with; 256 px
has pull-push levels that are 1 pixel at small sizes and 2 here (an ONNX graph traced at a small example fixed
them; TorchScript's, traced at TRACE_SIZE, must not)."""


def inputs(batch: int, height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    rng = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, height, width, generator=rng) * 2 - 1
    masks = (torch.rand(batch, 1, height, width, generator=rng) > 0.6).float()
    masks[-1, :, : height // 2] = 1.0  # a large hole as well
    sketches = (torch.rand(batch, 1, height, width, generator=rng) > 0.9).float()
    return images, masks, sketches


@pytest.fixture(scope="module")
def exported(tmp_path_factory, checkpoint) -> dict[str, Path]:
    """The tiny checkpoint exported in each format once (the slowest fixture of the suite: torch's dynamo
    exporter traces the graph symbolically)."""
    folder = tmp_path_factory.mktemp("export")
    paths = {"onnx": folder / "g.onnx", "torchscript": folder / "g.pt", "safetensors": folder / "weights"}
    for name, path in paths.items():
        export_main(["--checkpoint", str(checkpoint), "--out", str(path), "--format", name])
    return paths


# 120 positions with 3x3 footprints, and fewer positions than QUERY_CHUNKS (empty chunks)
@pytest.mark.parametrize("height, width, patch_size", [(12, 10, 3), (3, 2, 1)])
def test_fixed_shape_attention_matches_the_fused_and_reference_paths(height, width, patch_size):
    torch.manual_seed(0)
    attention = TemperatureMaskedAttention(
        32, heads=4, patch_size=patch_size, guide_channels=48, descriptor_size=16
    ).eval()
    x = torch.randn(3, 32, height, width)
    mask = torch.zeros(3, 1, 4 * height, 4 * width)
    mask[0, :, : 2 * height, : 2 * width] = 1.0
    mask[1] = 1.0  # no usable key at all: the module returns x for this sample
    mask[2, :, : 3 * height] = 1.0  # most keys unusable: the gather keeps few, the fixed path masks many
    guide = torch.randn(3, 48, height, width)
    with torch.no_grad():
        gathered = attention(x, mask, guide=guide)[0]
        attention.gather_keys = False
        fixed = attention(x, mask, guide=guide)[0]
        attention.fused = False
        reference = attention(x, mask, guide=guide)[0]
    assert (fixed - gathered).abs().max() < 1e-5 and (fixed - reference).abs().max() < 1e-5
    assert torch.equal(fixed[1], x[1]) and (fixed[0] - x[0]).abs().max() > 0.1  # it does attend


@pytest.mark.parametrize("fill", [pull_push_fill, harmonic_fill, biharmonic_fill])
@pytest.mark.parametrize("height, width", [(32, 48), (37, 21), (5, 64), (1, 7)])
def test_initial_fills_with_fixed_levels_give_the_same_fill(fill, height, width):
    torch.manual_seed(0)  # unseeded, the inputs depended on the tests run before (1.2e-6 apart once)
    images = torch.randn(2, 3, height, width)
    masks = (torch.rand(2, 1, height, width) > 0.6).float()
    exact = fill(images * (1 - masks), masks)
    fixed = fill(images * (1 - masks), masks, PULL_PUSH_LEVELS)
    # conjugate gradients carry the rounding of a convolution against slices through their step lengths
    assert (fixed - exact).abs().max() < (1e-4 if fill is biharmonic_fill else 1e-6)
    assert (exact[masks.expand_as(exact).bool()] != 0).all()  # holes really filled


def test_fixed_shape_copy_leaves_the_generator_as_it_was(checkpoint):
    generator = load_generator(checkpoint).generator
    fixed = fixed_shape_copy(generator)
    assert fixed.initial_fill_levels == PULL_PUSH_LEVELS and generator.initial_fill_levels is None
    assert not fixed.refinement.attention.gather_keys and generator.refinement.attention.gather_keys
    batch = inputs(2, 24, 44)
    with torch.no_grad():
        assert (fixed(*batch).refined - generator(*batch).refined).abs().max() < 1e-5


@pytest.mark.parametrize("batch, height, width", SIZES)
def test_onnx_and_torchscript_graphs_match_the_generator_at_other_sizes(
    exported, checkpoint, batch, height, width
):
    from mtmsa.inference.onnx_runtime import OnnxGenerator

    generator = load_generator(checkpoint).generator
    onnx_generator = OnnxGenerator(exported["onnx"])
    assert (onnx_generator.image_size, onnx_generator.size_multiple) == (32, 4)
    scripted = torch.jit.load(str(exported["torchscript"]))
    batch_inputs = inputs(batch, height, width, seed=batch)
    with torch.no_grad():
        expected = generator(*batch_inputs)
        script_refined, script_coarse = scripted(*batch_inputs)
    result = onnx_generator(*batch_inputs)
    assert result.refined.shape == (batch, 3, height, width)
    assert (result.refined - expected.refined).abs().max() < 1e-5
    assert (result.coarse - expected.coarse).abs().max() < 1e-5
    assert (script_refined - expected.refined).abs().max() < 1e-5
    assert (script_coarse - expected.coarse).abs().max() < 1e-5


def test_the_onnx_graph_holds_each_levels_relaxation_sweeps_as_one_loop(exported):
    """The harmonic fill's 20 sweeps per pyramid level are one ONNX Loop per level, not 40 unrolled half-sweeps
    each: 11 loops, and about 1,200 nodes at the top level instead of about 4,300 (unrolled)."""
    import onnx

    graph = onnx.load(str(exported["onnx"])).graph
    assert sum(node.op_type == "Loop" for node in graph.node) == PULL_PUSH_LEVELS
    assert len(graph.node) < 2000, len(graph.node)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_fill_blend_generator_exports_with_each_solve_as_one_loop(tmp_path, sample_data_dir, capsys):
    """With ``model.generator.fill_blend`` and ``fill_blend_bounded`` (the sample data set's model: three fills,
    the third kept within its border's range by window maxima) the biharmonic fill's conjugate-gradient
    steps are one ``torch.while_loop`` per pyramid level, an ONNX Loop, instead of 150 unrolled steps. The
    blend is set halfway (its start leaves the biharmonic fill a 0.018 share) so that the solve shows in the
    output. Conjugate gradients carry the rounding of a convolution against slices through their step
    lengths: graph and eager model agree to 1e-2, not 1e-5. TorchScript, which would trace the steps unrolled,
    is refused with a message."""
    from mtmsa.inference.export import export_onnx
    from mtmsa.inference.onnx_runtime import OnnxGenerator
    from tests.helpers.runs import run_training

    _, run = run_training(
        tmp_path,
        sample_data_dir,
        ["trainer.max_steps=2", "model.generator.fill_blend=true", "model.generator.fill_blend_bounded=true"],
    )
    checkpoint = run / "checkpoints" / "last.ckpt"
    with pytest.raises(SystemExit):
        export_main(
            [
                "--checkpoint",
                str(checkpoint),
                "--out",
                str(tmp_path / "new" / "g.pt"),
                "--format",
                "torchscript",
            ]
        )
    assert "--format onnx" in capsys.readouterr().err and not (tmp_path / "new").exists()
    trained = load_generator(checkpoint)
    torch.nn.init.zeros_(trained.generator.fill_blend.weight.bias)
    onnx_generator = OnnxGenerator(export_onnx(trained, tmp_path / "blend.onnx"))
    for batch, height, width in [(1, 36, 20), (2, 64, 64)]:
        batch_inputs = inputs(batch, height, width, seed=batch)
        with torch.no_grad():
            expected = trained.generator(*batch_inputs)
            generator, plain = trained.generator, trained.generator.fill_blend
            generator.fill_blend, generator.fill_blend_bounded = None, False
            without = generator(*batch_inputs)
            generator.fill_blend, generator.fill_blend_bounded = plain, True
        result = onnx_generator(*batch_inputs)
        assert (result.coarse - expected.coarse).abs().max() < 0.01
        assert (result.refined - expected.refined).abs().max() < 0.01
        assert (without.coarse - expected.coarse).abs().max() > 0.05  # the blend does move the output


def write_inputs(folder: Path, sizes: list[tuple[int, int]]) -> None:
    """Random images and box-and-stroke holes of the given (height, width) in folder/images, folder/masks."""
    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True)
    for index, (height, width) in enumerate(sizes):
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        image = (image // 2 + np.linspace(0, 127, width, dtype=np.uint8)[None, :, None]).astype(np.uint8)
        hole = np.zeros((height, width), np.uint8)
        hole[height // 4 : height // 2, width // 3 : width // 2] = 255
        hole[rng.integers(0, height), :] = 255  # a thin stroke across
        Image.fromarray(image).save(folder / "images" / f"img{index}.png")
        Image.fromarray(hole).save(folder / "masks" / f"img{index}.png")


def test_inpaint_through_onnx_runtime_matches_the_checkpoint_within_2_of_255(exported, checkpoint, tmp_path):
    # odd sizes, one smaller than the trained 32 px, one larger (filled in a window around the hole)
    write_inputs(tmp_path, [(37, 53), (21, 19), (150, 110)])
    common = ["--image", str(tmp_path / "images"), "--mask", str(tmp_path / "masks")]
    inpaint_main(["--checkpoint", str(checkpoint), *common, "--out", str(tmp_path / "torch")])
    inpaint_main(["--model", str(exported["onnx"]), *common, "--out", str(tmp_path / "onnx")])
    for index in range(3):
        name = f"img{index}.png"
        torch_result = np.asarray(Image.open(tmp_path / "torch" / name)).astype(int)
        onnx_result = np.asarray(Image.open(tmp_path / "onnx" / name)).astype(int)
        original = np.asarray(Image.open(tmp_path / "images" / name)).astype(int)
        hole = np.asarray(Image.open(tmp_path / "masks" / name)) > 127
        assert np.abs(onnx_result - torch_result).max() <= 2
        assert np.array_equal(onnx_result[~hole], original[~hole])  # known pixels byte-identical
        assert (onnx_result[hole] != original[hole]).mean() > 0.5


def header(path: Path) -> dict:
    """The JSON header of a safetensors file: its 8-byte length, then plain JSON (then raw tensor bytes: no pickle)."""
    raw = path.read_bytes()
    return json.loads(raw[8 : 8 + struct.unpack("<Q", raw[:8])[0]])


def test_safetensors_folder_holds_weights_config_and_card_without_pickle(exported, checkpoint):
    folder = exported["safetensors"]
    assert sorted(p.name for p in folder.iterdir()) == sorted([WEIGHTS_FILE, CARD_FILE])
    metadata = header(folder / WEIGHTS_FILE)["__metadata__"]
    config = json.loads(metadata[CONFIG_KEY])
    assert config["model"]["attention"]["temperature"]["mode"] == "learned_map"
    assert json.loads(metadata[TRAINING_KEY])["global_step"] == 2
    card = (folder / CARD_FILE).read_text()
    for text in (
        "## Architecture",
        "## Attention",
        "learned_map",
        "| heads | 4 |",
        "## Training",
        "| data set | sample |",
    ):
        assert text in card
    assert "| psnr_hole |" in card and "50-60%" in card  # the run's validation table, per bucket
    assert "## Intended use and limits" in card

    generator, loaded_config = load_pretrained(folder)
    original = load_generator(checkpoint).generator
    assert loaded_config == load_generator(checkpoint).config
    for (name, value), (other, expected) in zip(
        generator.state_dict().items(), original.state_dict().items(), strict=True
    ):
        assert name == other and torch.equal(value, expected)


def test_inpaint_and_evaluate_accept_the_folder_like_the_checkpoint(exported, checkpoint, tmp_path):
    write_inputs(tmp_path, [(29, 31)])
    common = ["--image", str(tmp_path / "images"), "--mask", str(tmp_path / "masks")]
    inpaint_main(["--checkpoint", str(checkpoint), *common, "--out", str(tmp_path / "ckpt")])
    inpaint_main(["--checkpoint", str(exported["safetensors"]), *common, "--out", str(tmp_path / "folder")])
    assert (tmp_path / "ckpt" / "img0.png").read_bytes() == (tmp_path / "folder" / "img0.png").read_bytes()

    batch = inputs(2, 32, 32)
    fills = [
        build_fill(OmegaConf.create({"baseline": None, "ckpt_path": str(path)}), torch.device("cpu"))
        for path in (checkpoint, exported["safetensors"])
    ]
    with torch.no_grad():
        indices = torch.arange(2)
        assert torch.equal(fills[0][0](*batch, indices), fills[1][0](*batch, indices))
    assert fills[1][1]["trained_on"] == "sample at 32 px"


def test_loading_a_folder_runs_no_code_and_refuses_foreign_targets(exported, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "crafted"
    folder.mkdir()
    config = json.loads(header(exported["safetensors"] / WEIGHTS_FILE)["__metadata__"][CONFIG_KEY])
    config["model"]["generator"]["_target_"] = "os.system"
    weights = load_file(exported["safetensors"] / WEIGHTS_FILE)
    save_file(weights, folder / WEIGHTS_FILE, metadata={CONFIG_KEY: json.dumps(config)})
    with pytest.raises(CheckpointError, match="os.system.*refusing to call it"):
        load_pretrained(folder)
    with pytest.raises(FileNotFoundError, match="holds no model.safetensors"):
        load_pretrained(tmp_path)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "onnx", "--out", "{existing}"], "exists; choose another path or pass --force"),
        (["--format", "onnx", "--out", "{folder}"], "exists; choose another path"),
        (
            ["--format", "torchscript", "--force", "--out", "{folder}"],
            "is a folder; --format torchscript writes one file",
        ),
        (["--checkpoint", "{missing}", "--out", "{new}"], "does not exist"),
    ],
)
def test_export_user_errors_are_one_line(checkpoint, tmp_path, capsys, args, message):
    (tmp_path / "existing.onnx").write_text("keep me")
    (tmp_path / "folder").mkdir()
    names = {
        "existing": tmp_path / "existing.onnx",
        "folder": tmp_path / "folder",
        "missing": tmp_path / "missing.ckpt",
        "new": tmp_path / "new.onnx",
    }
    args = [a.format(**names) for a in args]
    if "--checkpoint" not in args:
        args = ["--checkpoint", str(checkpoint), *args]
    with pytest.raises(SystemExit) as exit_info:
        export_main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert (tmp_path / "existing.onnx").read_text() == "keep me"


def test_inpaint_refuses_a_file_that_is_no_exported_graph(tmp_path, capsys):
    write_inputs(tmp_path, [(16, 16)])
    (tmp_path / "fake.onnx").write_bytes(b"not a graph")
    with pytest.raises(SystemExit):
        inpaint_main(
            ["--model", str(tmp_path / "fake.onnx"), "--image", str(tmp_path / "images" / "img0.png"),
             "--mask", str(tmp_path / "masks" / "img0.png"), "--out", str(tmp_path / "out.png")]
        )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot use model" in err[0] and "mtmsa-export" in err[0]
    assert not (tmp_path / "out.png").exists()
