"""upscale-train: architectures, data, the loop, checkpoints, exact resume, losses."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from upscale.train.arch import RepConv, RoundingNoise, create_model, macs_per_output_pixel  # noqa: E402
from upscale.train.checkpoint import load_checkpoint, model_from_checkpoint  # noqa: E402
from upscale.train.config import TrainConfig  # noqa: E402
from upscale.train.data import PatchSampler, downscale, load_images, prefetch, to_unit  # noqa: E402
from upscale.train.losses import SRLoss, vgg19_features  # noqa: E402
from upscale.train.trainer import lr_at, train  # noqa: E402

from upscale.bicubic import imresize  # noqa: E402
from upscale.errors import TrainingError  # noqa: E402

from .conftest import photo  # noqa: E402

TINY = {"channels": 8, "depth": 2}


def measured_receptive_field(model: torch.nn.Module, size: int = 41) -> int:
    """Radius of the input region that the centre output pixel depends on (by gradients)."""
    model = model.double().eval()
    x = torch.rand(1, 3, size, size, dtype=torch.float64, requires_grad=True)
    y = model(x)
    c = y.shape[2] // 2
    y[0, :, c, c].sum().backward()
    rows = torch.nonzero(x.grad[0].abs().sum(0).sum(1)).flatten()
    centre = c // model.scale
    return int(max(centre - rows.min(), rows.max() - centre))


@pytest.mark.parametrize(("arch", "options"), [("srcnn", {"channels": 8, "hidden": 4}), ("repsr", TINY),
                                                ("repsr-relu", TINY)])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_declared_receptive_field_covers_the_real_one(arch: str, options: dict, scale: int) -> None:
    model = create_model(arch, scale, **options)
    assert measured_receptive_field(model.fold()) <= model.receptive_field


@pytest.mark.parametrize("arch", ["repsr", "repsr-relu"])
def test_folded_network_equals_training_network(arch: str) -> None:
    model = create_model(arch, 2, **TINY)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # make every branch matter
    x = torch.rand(2, 3, 13, 17)
    folded = model.fold()
    assert sum(isinstance(m, torch.nn.Conv2d) for m in folded.modules()) == TINY["depth"] + 3  # + bicubic conv
    with torch.no_grad():
        assert torch.allclose(model(x), folded(x), atol=1e-5)


def test_rounding_noise_trains_the_float_network_and_leaves_inference_alone() -> None:
    """activation_noise / weight_noise: noise while training only; the folded network is the plain one."""
    noisy = create_model("repsr-relu", 2, **TINY, activation_noise=255, weight_noise=127)
    plain = create_model("repsr-relu", 2, **TINY)
    plain.load_state_dict({k: v for k, v in noisy.state_dict().items() if k in plain.state_dict()})
    assert noisy.config() == TINY | {"activation_noise": 255, "weight_noise": 127}
    assert plain.config() == TINY  # options recorded only when set: old checkpoints rebuild as they were
    x = torch.rand(2, 3, 12, 12)
    with torch.no_grad():
        noisy.train()(x)  # a training pass: the ranges observe, the outputs carry noise
        assert not torch.equal(noisy(x), plain.eval()(x))
        assert torch.equal(noisy.eval()(x), plain(x))
        assert torch.equal(noisy.fold()(x), plain.fold()(x))
    assert not any(isinstance(m, RoundingNoise) for m in noisy.fold().modules())


def test_activation_noise_is_one_rounding_step_on_positive_outputs() -> None:
    noise = RoundingNoise(255).train()
    x = torch.linspace(-1, 2.55, 100_000)
    y = noise(x)
    assert float(noise.range) == pytest.approx(2.55)
    assert torch.equal(y[x <= 0], torch.zeros_like(y[x <= 0]))  # uint8 holds 0 exactly
    moved = (y - x.clamp_min(0))[x > 0]
    assert moved.abs().max() <= 0.01 / 2 + 1e-6  # one step of 2.55 / 255
    assert moved.abs().mean() > 0.002 and abs(float(moved.mean())) < 2e-4  # uniform, unbiased


def test_weight_noise_is_one_int8_step_of_each_output_channel() -> None:
    conv = RepConv(4, 4, weight_noise=127)
    x = torch.zeros(1, 4, 5, 5)
    x[0, 1, 2, 2] = 1.0  # one input pixel: the output reads single kernel taps
    weight, _ = conv.kernel()
    step = weight.detach().abs().amax(dim=(1, 2, 3)) / 127
    moved = (conv.train()(x) - conv.eval()(x)).detach()[0]  # per output channel, 3x3 taps of input channel 1
    assert torch.all(moved[:, 1:4, 1:4].abs().amax(dim=(1, 2)) <= step / 2 + 1e-6)
    assert moved.abs().sum() > 0
    conv.train()(x).sum().backward()  # the merged kernel still trains both branches
    assert conv.conv3.weight.grad.abs().sum() > 0 and conv.conv1.weight.grad.abs().sum() > 0


def test_without_identity_branches_the_folded_centre_tap_is_the_trained_one() -> None:
    """identity=0: the body's RepConvs add no identity, so folding adds nothing to the centre taps."""
    model = create_model("repsr-relu", 2, **TINY, identity=0)
    assert model.config() == TINY | {"identity": 0}
    assert create_model("repsr-relu", 2, **TINY).config() == TINY  # recorded only when off
    layer = model.body[2]
    with torch.no_grad():
        layer.conv3.weight.zero_()
        layer.conv1.weight.zero_()
        assert float(layer.folded().weight.abs().max()) == 0
        x = torch.rand(1, 8, 6, 6)
        assert torch.equal(layer(x), layer.conv3.bias[:, None, None] + layer.conv1.bias[:, None, None]
                           + torch.zeros_like(x))
        y = torch.rand(2, 3, 11, 9)
        assert torch.allclose(model.eval()(y), model.fold()(y), atol=1e-6)


def test_registry_numbers() -> None:
    d = create_model("repsr", 2).describe()
    assert d.macs_per_output_pixel <= 25_000 and d.receptive_field == 10
    assert d.params == sum(p.numel() for p in create_model("repsr", 2).fold().parameters())
    fast = create_model("repsr-relu", 2)
    # fast-x2's budget: at most 8,000. 16 channels, 12 layers in LR space, a quarter per output pixel.
    assert fast.describe().macs_per_output_pixel == (3 * 16 * 9 + 12 * 16 * 16 * 9 + 16 * 12 * 9 + 12 * 25) / 4
    assert fast.describe().macs_per_output_pixel <= 8_000
    assert not any(isinstance(m, torch.nn.PReLU) for m in fast.fold().modules())
    srcnn = create_model("srcnn", 2)
    # 9-5-5 with 64/32 channels in HR space: 9*9*3*64 + 5*5*64*32 + 5*5*32*3 per output pixel, plus bicubic.
    assert macs_per_output_pixel(srcnn) == 9 * 9 * 3 * 64 + 5 * 5 * 64 * 32 + 5 * 5 * 32 * 3 + 3 * 25
    with pytest.raises(ValueError, match="unknown architecture"):
        create_model("nope", 2)


def test_bicubic_start_equals_bicubic_interpolation() -> None:
    """repsr starts near bicubic (its last layer is scaled down 100x), so training begins from the baseline."""
    torch.manual_seed(0)
    model = create_model("repsr", 2)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        near = (model(x) - model.upsample(x)).abs().mean()
        for m in model.body[-1].modules():  # undo the scaling: now the residual is a random network's
            if isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(100)
        far = (model(x) - model.upsample(x)).abs().mean()
    assert near < 0.03 and far > 10 * near


def test_patches_equal_whole_image_downscale() -> None:
    image = photo(64, 80)
    sampler = PatchSampler([image], 2, 16, 1, seed=0)
    whole = imresize(image, 0.5)
    rng = np.random.default_rng(3)
    for _ in range(20):
        lr, hr = sampler.pair(rng)
        # undo nothing: find the HR patch in the image (any orientation) and compare LR to whole-image LR
        found = False
        for k in range(4):
            for flip in (False, True):
                h = hr[:, ::-1] if flip else hr
                h = np.rot90(h, -k)
                ll = lr[:, ::-1] if flip else lr
                ll = np.rot90(ll, -k)
                for y in range(0, 64 - 15, 2):
                    for x in range(0, 80 - 15, 2):
                        if np.array_equal(image[y : y + 16, x : x + 16], h):
                            assert np.array_equal(whole[y // 2 : y // 2 + 8, x // 2 : x // 2 + 8], ll)
                            found = True
        assert found


def test_distillation_adds_the_teachers_term(tmp_path: Path) -> None:
    teacher = tiny_config(tmp_path / "teacher", steps=2, val=[])
    train(teacher)
    cfg = tiny_config(tmp_path / "student", steps=2, val=[], log_every=1, arch="repsr-relu",
                      teacher=str(Path(teacher.out) / "last.pt"), distill_weight=0.5)
    record = train(cfg)
    assert record["distill"] > 0
    assert record["loss"] == pytest.approx(record["pixel"] + 0.5 * record["distill"], rel=1e-5)
    with pytest.raises(TrainingError, match="--distill-weight"):
        train(tiny_config(tmp_path / "no-weight", steps=1, val=[], teacher=cfg.teacher))
    with pytest.raises(TrainingError, match="--pixel-weight 0 leaves nothing to learn without a --teacher"):
        train(tiny_config(tmp_path / "nothing", steps=1, val=[], pixel_weight=0.0))
    four = tiny_config(tmp_path / "x4", steps=1, val=[], scale=4, patch=32, teacher=cfg.teacher, distill_weight=1.0)
    with pytest.raises(TrainingError, match="a 2x model, the run is 4x"):
        train(four)


def test_downscale_is_matlab_imresize() -> None:
    image = photo(30, 44)
    assert np.array_equal(downscale(image, 2), imresize(image, 0.5))


def test_batches_are_a_function_of_the_step() -> None:
    sampler = PatchSampler([photo(40, 40, seed=i) for i in range(3)], 2, 16, 4, seed=5)
    a1, b1 = sampler.batch(7)
    a2, b2 = sampler.batch(7)
    assert torch.equal(a1, a2) and torch.equal(b1, b2)
    assert not torch.equal(sampler.batch(8)[1], b1)
    assert a1.shape == (4, 3, 8, 8) and b1.shape == (4, 3, 16, 16)
    assert a1.dtype == b1.dtype == torch.uint8  # made float on the device, by to_unit
    unit = to_unit(b1, torch.device("cpu"))
    assert unit.dtype == torch.float32 and torch.equal(unit, b1.float() / 255)


def test_small_images_are_skipped_and_counted(tmp_path: Path) -> None:
    Image.fromarray(photo(40, 40)).save(tmp_path / "ok.png")
    Image.fromarray(photo(10, 40)).save(tmp_path / "small.png")
    result = load_images([tmp_path], 16)
    assert len(result.images) == 1 and result.skipped_small == 1


def test_lr_schedule() -> None:
    cfg = TrainConfig(lr=1.0, warmup=10, steps=110, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55) and lr_at(110, cfg) == pytest.approx(0.1)


def image_folder(root: Path, n: int = 4, size: int = 40) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(photo(size, size + 8, seed=i)).save(root / f"{i}.png")
    return root


def tiny_config(tmp_path: Path, **kw) -> TrainConfig:
    data = image_folder(tmp_path / "data")
    val = image_folder(tmp_path / "val", n=2, size=32)
    base = dict(data=[str(data)], val=[str(val)], scale=2, patch=16, batch_size=4, arch="repsr",
                arch_options=dict(TINY), steps=8, warmup=2, lr=3e-3, out=str(tmp_path / "run"),
                val_every=4, log_every=2, save_every=4, threads=1)
    base.update(kw)
    return TrainConfig(**base)


def test_training_learns_and_writes_checkpoints(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, steps=60, log_every=5, val_every=30, save_every=30, ema=0, loss="mse")
    train(cfg)
    run = Path(cfg.out)
    assert (run / "best.pt").is_file() and (run / "last.pt").is_file()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["event"] == "train"]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    vals = [r for r in records if r["event"] == "val"]
    assert len(vals) == 2 and all(math.isfinite(v["psnr"]) for v in vals)
    state = load_checkpoint(run / "last.pt")
    assert state["step"] == 60 and state["arch"] == {"name": "repsr", "scale": 2, "options": TINY}


def test_resume_is_exact(tmp_path: Path) -> None:
    straight = tiny_config(tmp_path / "a", steps=8)
    train(straight)
    split = tiny_config(tmp_path / "b", steps=8, stop_after=4)
    train(split)
    assert load_checkpoint(Path(split.out) / "last.pt")["step"] == 4
    split.stop_after = None
    train(split, resume=True)
    assert_same_state(load_checkpoint(Path(straight.out) / "last.pt"), load_checkpoint(Path(split.out) / "last.pt"))


def assert_same_state(a: dict, b: dict) -> None:
    """Two checkpoints hold the same run: step, weights, EMA weights and optimiser state, bit for bit."""
    assert a["step"] == b["step"]
    for key in ("model", "ema"):
        assert (a[key] is None) == (b[key] is None) and a[key] is not None, key
        assert a[key].keys() == b[key].keys()
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), (key, name)
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert len(sa) == len(sb) > 0
    for pa, pb in zip(sa.values(), sb.values(), strict=True):
        assert pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)


def test_checkpoint_rebuilds_model(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, steps=2, val=[])
    train(cfg)
    state = load_checkpoint(Path(cfg.out) / "best.pt")
    model = model_from_checkpoint(state)
    assert model.scale == 2 and model.channels == 8


def test_srcnn_trains_with_the_seeds_patch_setup(tmp_path: Path) -> None:
    """The SRCNN baseline with 64x64 -> 128x128 patches, as the seed describes."""
    data = image_folder(tmp_path / "big", n=2, size=136)
    cfg = tiny_config(tmp_path, data=[str(data)], arch="srcnn", arch_options={}, patch=128, batch_size=2, steps=2,
                      val=[], loss="mse")
    train(cfg)
    assert load_checkpoint(Path(cfg.out) / "last.pt")["arch"]["name"] == "srcnn"


def test_losses(tmp_path: Path, monkeypatch) -> None:
    sr, hr = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    _, parts = SRLoss("l1", fft_weight=0.1)(sr, hr)
    assert parts["pixel"] == pytest.approx(float((sr - hr).abs().mean()), rel=1e-5) and "fft" in parts
    weights = tmp_path / "vgg.pth"
    torch.save({f"features.{k}": v for k, v in vgg19_features().state_dict().items()}, weights)
    _, parts = SRLoss("mse", perceptual_weight=0.5, vgg_weights=weights)(sr, hr)
    assert parts["perceptual"] > 0
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty-hub"))
    with pytest.raises(TrainingError, match="nothing is downloaded"):
        SRLoss("l1", perceptual_weight=1.0)


def test_training_with_perceptual_loss(tmp_path: Path) -> None:
    weights = tmp_path / "vgg.pth"
    torch.save({f"features.{k}": v for k, v in vgg19_features().state_dict().items()}, weights)
    cfg = tiny_config(tmp_path, steps=2, val=[], perceptual_weight=0.1, vgg_weights=str(weights), patch=32)
    record = train(cfg)
    assert "perceptual" in record


def test_init_from_another_scale(tmp_path: Path) -> None:
    two = tiny_config(tmp_path / "x2", steps=2, val=[])
    train(two)
    four = tiny_config(tmp_path / "x4", steps=1, val=[], scale=4, patch=32, lr=1e-12, warmup=1, ema=0,
                       init_from=str(Path(two.out) / "last.pt"))
    train(four)
    source = load_checkpoint(Path(two.out) / "last.pt")["ema"]
    target = load_checkpoint(Path(four.out) / "last.pt")["model"]
    assert torch.allclose(source["body.2.conv3.weight"], target["body.2.conv3.weight"], atol=1e-6)
    assert source["body.6.conv3.weight"].shape != target["body.6.conv3.weight"].shape  # the tail is new
    start = json.loads((Path(four.out) / "metrics.jsonl").read_text().splitlines()[0])
    assert start["init_from"]["copied"] > 0 and start["init_from"]["kept"] > 0


def test_ctrl_c_keeps_finished_steps_and_resume_stays_exact(tmp_path: Path) -> None:
    straight = tiny_config(tmp_path / "a", steps=8, val=[])
    train(straight)
    broken = tiny_config(tmp_path / "b", steps=8, val=[], log_every=1, save_every=100)

    def interrupt_at_five(record: dict) -> None:
        if record.get("step") == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(broken, progress=interrupt_at_five)
    assert load_checkpoint(Path(broken.out) / "last.pt")["step"] == 5
    train(broken, resume=True)
    a = load_checkpoint(Path(straight.out) / "last.pt")
    b = load_checkpoint(Path(broken.out) / "last.pt")
    assert a["step"] == 8
    assert_same_state(a, b)


def test_amp_is_float32_by_default_and_bf16_only_on_cuda() -> None:
    from upscale.train.trainer import make_autocast

    cpu = torch.device("cpu")
    with make_autocast("off", cpu):
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="CUDA"):
        make_autocast("bf16", cpu)
    with pytest.raises(ValueError, match="off or bf16"):
        make_autocast("fp8", cpu)


def test_realistic_pool_is_a_function_of_the_seed_alone() -> None:
    from upscale.train.data import lr_pool
    from upscale.train.degradations import realistic_lr

    images = [photo(48, 64, seed=i) for i in range(3)]
    one = lr_pool(images, 2, "realistic", 2, seed=4, workers=1)
    two = lr_pool(images, 2, "realistic", 2, seed=4, workers=2)
    assert all(np.array_equal(a, b) for x, y in zip(one, two, strict=True) for a, b in zip(x, y, strict=True))
    assert np.array_equal(one[1][0], realistic_lr(images[1], 2, np.random.default_rng([4, 1, 0, 0xDE6])))
    assert not np.array_equal(one[1][0], one[1][1])
    assert [len(c) for c in lr_pool(images, 2, "bicubic", 5, seed=4)] == [1, 1, 1]
    with pytest.raises(ValueError, match="bicubic, realistic"):
        lr_pool(images, 2, "jpeg", 2, seed=4)


def test_training_on_realistic_degradations_validates_on_degraded_sets(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, steps=4, degradation="realistic", degradation_copies=2,
                      val_degrade=["jpeg:50", "blur:0.8+noise:3"])
    train(cfg)
    records = [json.loads(line) for line in (Path(cfg.out) / "metrics.jsonl").read_text().splitlines()]
    last_val = [r for r in records if r["event"] == "val"][-1]
    assert set(last_val["val"]) == {"val", "val jpeg:50", "val blur:0.8+noise:3"}
    assert last_val["psnr"] == pytest.approx(np.mean([v["psnr"] for v in last_val["val"].values()]))
    sampler_batches = PatchSampler([photo(40, 48, seed=i) for i in range(2)], 2, 16, 4, seed=0,
                                   degradation="realistic", copies=3)
    assert torch.equal(sampler_batches.batch(5)[0], sampler_batches.batch(5)[0])
    with pytest.raises(ValueError, match="bad degradation"):
        train(tiny_config(tmp_path / "bad", steps=1, val_degrade=["sharpen:2"]))


def test_an_unknown_distance_to_the_teacher_is_refused_before_anything_loads(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, data=[str(tmp_path / "no such folder")], distill_loss="huber")
    with pytest.raises(TrainingError, match="--distill-loss must be l1 or mse, got 'huber'"):
        train(cfg)


def test_a_batch_that_fails_is_raised_in_the_training_loop_not_waited_for() -> None:
    """prefetch: an exception on the background thread reaches the consumer (it used to wait forever)."""

    class Failing:
        def batch(self, step: int) -> int:
            if step == 2:
                raise ValueError("no patch fits")
            return step

    got: list = []

    def consume() -> None:
        try:
            got.extend(prefetch(Failing(), 0, 5))
        except ValueError as exc:
            got.append(exc)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    consumer.join(timeout=20)
    assert not consumer.is_alive()
    assert got[:2] == [0, 1] and len(got) == 3 and str(got[2]) == "no patch fits"  # the batches before, then it


def test_graphics_refuse_a_patch_larger_than_their_pictures(tmp_path: Path) -> None:
    """Refused before the data load (the folder here does not exist)."""
    cfg = tiny_config(tmp_path, data=[str(tmp_path / "no such folder")], patch=400, graphics=2)
    with pytest.raises(TrainingError, match="--graphics draws 480x320 pictures: a --patch of 400 does not fit"):
        train(cfg)
