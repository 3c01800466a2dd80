"""`python -m export train-generator`: train the face generator (GAN) on CPU or CUDA, resumable, time-boxed."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from edgeanon.atomic import atomic_path
from edgeanon.models import DEFAULT_DETECTOR
from export import datasets
from export.models.generator import LATENT, Discriminator, Generator, count_parameters
from export.paths import CENTERFACE_WEIGHTS, shared_data_dir
from export.training import facecrops
from export.training.face_prior import FacePrior
from export.training.gate import add_gate_options, gate

log = logging.getLogger(__name__)

DEFAULT_SET = datasets.CACHE_DIR / "gentrain" / "faces.npz"
DIVERSITY_TARGET = 0.1
BORDER_PROB = 0.0
# Widest frame-border band (share of the crop side) the border augmentation blanks from one side.
BORDER_MAX = 0.45
FLIP_CHANNELS = [0, 1, 2, 3, 4 + 1, 4 + 0, 4 + 2, 4 + 4, 4 + 3]  # rgb, mask, heatmaps with left/right swapped


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train-generator",
        help="train the face generator (GAN) on UTKFace + wider-train crops",
        description="Train the conditional face generator. Builds (once) a compact crop file from the data "
                    "with our detector's landmarks, then trains generator + discriminator for a time budget, "
                    "saving a resumable checkpoint, a fixed-seed preview grid and fp16 weights to --out.",
        epilog="Example: python -m export train-generator --data ../shared/data --out runs/gen --minutes 30",
    )
    p.add_argument("--data", type=Path, default=shared_data_dir(), help="folder with utkface-crops.zip and "
                   "wider-train/ (default ../shared/data)")
    p.add_argument("--out", type=Path, default=Path("runs/gen"), help="output folder (default runs/gen)")
    p.add_argument("--train-set", type=Path, default=DEFAULT_SET, help=f"crop file; built when missing "
                   f"(default {DEFAULT_SET})")
    p.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR,
                   help="our face detector, for landmarks (default models/detector.onnx)")
    p.add_argument("--minutes", type=float, default=30.0, help="training wall-clock budget (default 30)")
    p.add_argument("--batch", type=int, default=16, help="batch size (default 16; use 128+ on a GPU)")
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate for both nets (default 2e-4)")
    p.add_argument("--rec-weight", type=float, default=4.0, help="L1 reconstruction weight (default 4)")
    p.add_argument("--rec-pool", type=int, default=4,
                   help="reconstruction compares images average-pooled by this factor (default 4: colour, light "
                        "and pose are kept; fine detail and identity are left to the generator; 1 = full L1)")
    p.add_argument("--detail-weight", type=float, default=2.0,
                   help="weight of the detail loss: log Laplacian energy inside the mask, generated vs real, "
                        "at full and half resolution (default 2; 0 = off)")
    p.add_argument("--faceness-weight", type=float, default=1.0,
                   help="weight of the face prior's faceness hinge: our frozen CenterFace must find the "
                        "generated face at least as surely as the real one (default 1; 0 = off)")
    p.add_argument("--feature-weight", type=float, default=1.0,
                   help="weight of the face prior's feature loss: CenterFace's stride-4/8 features of fake vs "
                        "real inside the mask (default 1; 0 = off)")
    p.add_argument("--face-prior", type=Path, default=CENTERFACE_WEIGHTS,
                   help=f"CenterFace state dict for the face prior (default {CENTERFACE_WEIGHTS}, made by "
                        "`make setup` / `python -m export import-weights`)")
    p.add_argument("--fm-weight", type=float, default=10.0, help="feature-matching weight (default 10)")
    p.add_argument("--diversity-weight", type=float, default=0.0,
                   help="weight of the mode-seeking loss: two latents for the same face must give faces that "
                        "differ (inside the mask) by at least --diversity-target per unit of latent distance, "
                        "so one latent per track means one distinct synthetic person (default 0 = off)")
    p.add_argument("--diversity-target", type=float, default=DIVERSITY_TARGET,
                   help=f"mean absolute pixel difference (in [-1, 1] units) per mean absolute latent difference "
                        f"above which the mode-seeking loss stops pushing (default {DIVERSITY_TARGET})")
    p.add_argument("--border-prob", type=float, default=BORDER_PROB,
                   help="share of training crops whose context is cut by simulated frame edges (zero bands from "
                        "1-4 sides, the face left whole): at runtime a crop may lie half outside the frame, "
                        "and a tight crop has no scene around it at all (default 0 = off: 0.5 for 70 minutes "
                        "lost AP, detail and identity, see the README)")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    p.add_argument("--preview-every", type=float, default=60.0, help="seconds between previews/checkpoints")
    p.add_argument("--light-checkpoints", action="store_true",
                   help="fp16 checkpoints without optimizer state (small, for copying off a lent machine)")
    p.add_argument("--init-generator", type=Path,
                   help="start the generator (and its EMA) from these weights, e.g. models/generator.pt "
                        "(ignored when --out already holds a checkpoint to resume)")
    p.add_argument("--prepare-only", action="store_true", help="only build the crop file, then stop")
    p.add_argument("--gate", action="store_true",
                   help="after training, compare the new weights with the committed ones (--gate-committed) on the "
                        "tuning split and promote them only if utility, detail and identity all hold "
                        "(`python -m export gate-generator`); the exit status is the gate's: 0 promoted, 1 kept")
    add_gate_options(p, prefix="gate-")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.train_set.is_file():
        if not (args.data / datasets.UTK_ZIP).is_file() or not (args.data / datasets.WIDER).is_dir():
            log.error("%s: needs %s and %s/ (set --data)", args.data, datasets.UTK_ZIP, datasets.WIDER)
            return 2
        if not args.detector.is_file():
            log.error("%s: detector model not found (run make setup)", args.detector)
            return 2
        facecrops.build_training_set(args.data, args.detector, args.train_set)
    if args.prepare_only:
        return 0
    if uses_face_prior(args) and not args.face_prior.is_file():
        log.error("%s: face prior weights not found (run `python -m export import-weights`, or turn the prior "
                  "off with --faceness-weight 0 --feature-weight 0)", args.face_prior)
        return 2
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    Trainer(args, device).train()
    if not args.gate:
        return 0
    return gate(args.out / "generator.pt", args.gate_committed, args.gate_onnx, args.data, args.detector,
                args.gate_images, args.gate_faces, args.gate_threads, args.gate_work)


def uses_face_prior(args: argparse.Namespace) -> bool:
    return args.faceness_weight > 0 or args.feature_weight > 0


class GpuData:
    """All crops with their masks and heatmaps as uint8 tensors on the training device; batches with flips/shifts."""

    def __init__(self, cropset: facecrops.CropSet, idx: np.ndarray, device: torch.device):
        masks, heats = [], []
        for start in range(0, len(idx), 512):
            m, h = cropset.conditions(idx[start : start + 512])
            masks.append(m)
            heats.append(h)
        rgb = cropset.images[idx][..., ::-1].transpose(0, 3, 1, 2)
        stack = np.concatenate([rgb, np.concatenate(masks)[:, None] * 255, np.concatenate(heats) * 255], 1)
        self.data = torch.from_numpy(np.ascontiguousarray(stack.round().astype(np.uint8))).to(device)
        self.device = device

    def __len__(self) -> int:
        return self.data.shape[0]

    def batch(self, n: int, gen: torch.Generator, augment: bool = True, border_prob: float = 0.0
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(real RGB in [-1, 1], condition (masked RGB, mask, heatmaps)) for n random samples."""
        idx = torch.randint(0, len(self), (n,), generator=gen, device="cpu").to(self.device)
        x = self.data[idx].float() / 255.0
        if augment:
            flip = torch.rand(n, generator=gen) < 0.5
            flip = flip.to(self.device)
            x = torch.where(flip[:, None, None, None], x[:, FLIP_CHANNELS].flip(3), x)
            # Small random zoom and shift: the detector's boxes wobble too.
            theta = torch.zeros(n, 2, 3)
            s = 1.0 + (torch.rand(n, generator=gen) - 0.5) * 0.16
            theta[:, 0, 0] = s
            theta[:, 1, 1] = s
            theta[:, :, 2] = (torch.rand(n, 2, generator=gen) - 0.5) * 0.12
            grid = F.affine_grid(theta.to(self.device), list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            if border_prob > 0:
                x = blank_borders(x, gen, border_prob)
        return split(x)


def blank_borders(x: torch.Tensor, gen: torch.Generator, prob: float, widest: float = BORDER_MAX) -> torch.Tensor:
    """Zero the context in bands along 1-4 crop sides for a `prob` share of samples, as a frame edge (the
    runtime's zero padding) would; pixels inside the mask are kept, so the face to learn stays whole.
    A third of those lose all their context (a tight crop such as UTKFace's, padded, has none)."""
    n, _, h, w = x.shape
    chosen = torch.rand(n, generator=gen) < prob
    sides = torch.rand(n, 4, generator=gen) < 0.5
    sides[:, 0] |= ~sides.any(1)  # at least one side
    width = torch.rand(n, 4, generator=gen) * widest
    no_context = torch.rand(n, 1, generator=gen) < 1.0 / 3.0
    width = torch.where(no_context, torch.full_like(width, widest), width) * ((sides | no_context) & chosen[:, None])
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    inside = ((ys[None, :, None] >= width[:, 0, None, None]) & (ys[None, :, None] <= 1.0 - width[:, 1, None, None])
              & (xs[None, None, :] >= width[:, 2, None, None]) & (xs[None, None, :] <= 1.0 - width[:, 3, None, None]))
    keep = (inside[:, None].to(x.device) | (x[:, 3:4] > 0.5)).to(x.dtype)
    return torch.cat([x[:, :3] * keep, x[:, 3:]], 1)


def split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stacked [rgb 0..1, mask, heatmaps] -> (real in [-1, 1], network condition)."""
    real = x[:, :3] * 2.0 - 1.0
    mask = (x[:, 3:4] > 0.5).float()
    cond = torch.cat([real * (1.0 - mask), mask, x[:, 4:9]], 1)
    return real, cond


def color_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Differentiable brightness/saturation/contrast jitter for the discriminator's inputs (DiffAugment)."""
    n = x.shape[0]
    r = torch.rand(n, 3, 1, 1, 1, generator=gen).to(x.device, x.dtype)
    x = x + (r[:, 0] - 0.5) * 0.4
    mean = x.mean(1, keepdim=True)
    x = (x - mean) * (r[:, 1] * 2.0) + mean
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * (r[:, 2] + 0.5) + mean


LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)


def laplacian_energy(image: torch.Tensor, mask: torch.Tensor, pool: int = 1) -> torch.Tensor:
    """Per-sample mean squared Laplacian of the grey image well inside the mask (the boundary seam excluded)."""
    grey = image.float().mean(1, keepdim=True)
    if pool > 1:
        grey, mask = F.avg_pool2d(grey, pool), F.avg_pool2d(mask, pool)
    lap = F.conv2d(grey, LAPLACIAN.to(grey.device), padding=1)
    inner = (F.avg_pool2d(mask, 5, 1, 2) > 0.999).float()
    return (lap * lap * inner).sum((1, 2, 3)) / (inner.sum((1, 2, 3)) + 1.0)


def detail_loss(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """|log energy ratio| of the Laplacian, fake vs real, at full and half resolution: an L1 reconstruction
    pulls towards the mean (blur); this asks for as much fine structure as the real face has, anywhere."""
    loss = fake.new_zeros(())
    for pool in (1, 2):
        ef, er = laplacian_energy(fake, mask, pool), laplacian_energy(real, mask, pool)
        loss = loss + (torch.log(ef + 1e-5) - torch.log(er + 1e-5)).abs().mean()
    return loss / 2.0


def masked_l1(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, dims: tuple[int, ...] = (0, 1, 2, 3)
              ) -> torch.Tensor:
    """Mean absolute RGB difference inside a (1-channel) mask, summed over `dims` (default: the whole batch)."""
    return (torch.abs(a.float() - b.float()) * mask).sum(dims) / (mask.sum(dims) * 3.0 + 1.0)


def reconstruction_loss(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor, pool: int = 1) -> torch.Tensor:
    """Masked L1 after average pooling by `pool`."""
    fake = fake.float()
    if pool > 1:
        fake, real, mask = F.avg_pool2d(fake, pool), F.avg_pool2d(real, pool), F.avg_pool2d(mask, pool)
    return masked_l1(fake, real, mask)


def diversity_loss(fake_a: torch.Tensor, fake_b: torch.Tensor, z_a: torch.Tensor, z_b: torch.Tensor,
                   mask: torch.Tensor, target: float = DIVERSITY_TARGET) -> torch.Tensor:
    """Mode-seeking hinge (MSGAN): a conditional GAN tends to ignore its latent; ask that two latents give
    faces at least `target` apart inside the mask per unit of latent distance, and no more than that."""
    pixel = masked_l1(fake_a, fake_b, mask, dims=(1, 2, 3))
    latent = torch.abs(z_a - z_b).mean(1)
    return F.relu(target - pixel / (latent + 1e-6)).mean() / target


class Trainer:
    def __init__(self, args: argparse.Namespace, device: torch.device):
        self.args = args
        self.device = device
        torch.manual_seed(args.seed)
        cropset = facecrops.load_training_set(args.train_set)
        train_idx = np.nonzero(~cropset.held_out)[0]
        held_idx = np.nonzero(cropset.held_out)[0]
        log.info("%d training faces, %d held back", len(train_idx), len(held_idx))
        self.data = GpuData(cropset, train_idx, device)
        rng = np.random.default_rng(1)
        self.preview = GpuData(cropset, np.sort(rng.choice(held_idx, min(8, len(held_idx)), replace=False)), device)
        self.G = Generator().to(device)
        self.G_ema = Generator().to(device).eval()
        self.G_ema.load_state_dict(self.G.state_dict())
        self.D = Discriminator().to(device)
        self.prior = FacePrior(args.face_prior).to(device) if uses_face_prior(args) else None
        if device.type == "cuda":
            self.G = self.G.to(memory_format=torch.channels_last)
            self.D = self.D.to(memory_format=torch.channels_last)
            self.G_ema = self.G_ema.to(memory_format=torch.channels_last)
            torch.backends.cudnn.benchmark = True
        log.info("generator %d params, discriminator %d params", count_parameters(self.G), count_parameters(self.D))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=args.lr, betas=(0.5, 0.99))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=args.lr, betas=(0.5, 0.99))
        self.step = 0
        self.images = 0
        self.rec_ema: float | None = None
        self.best_rec = float("inf")
        self.out = args.out
        self.out.mkdir(parents=True, exist_ok=True)
        self.ckpt = self.out / "checkpoint.pt"
        if self.ckpt.is_file():
            self._load(self.ckpt)
        elif args.init_generator:
            state = torch.load(args.init_generator, map_location=device, weights_only=True)
            state = state.get("generator_ema", state)
            self.G.load_state_dict({k: v.float() for k, v in state.items()})
            self.G_ema.load_state_dict(self.G.state_dict())
            log.info("generator initialised from %s", args.init_generator)

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def train(self) -> None:
        args = self.args
        gen = torch.Generator().manual_seed(args.seed + self.step)
        deadline = time.monotonic() + args.minutes * 60.0
        last_save = time.monotonic()
        bar = tqdm(desc="train", unit="step", initial=self.step, dynamic_ncols=True, mininterval=2.0)
        t0, n0 = time.monotonic(), self.images
        ema_decay = 0.999 if self.device.type == "cuda" else 0.995
        while time.monotonic() < deadline:
            real, cond = self.data.batch(args.batch, gen, border_prob=args.border_prob)
            if self.device.type == "cuda":
                real = real.contiguous(memory_format=torch.channels_last)
                cond = cond.contiguous(memory_format=torch.channels_last)
            z = torch.randn(args.batch, LATENT, generator=gen).to(self.device)
            mask = cond[:, 3:4]
            with self._autocast():
                if args.diversity_weight > 0:
                    # A second latent per face, same condition: only the mode-seeking loss looks at it.
                    z2 = torch.randn(args.batch, LATENT, generator=gen).to(self.device)
                    fake, fake2 = self.G(torch.cat([cond, cond]), torch.cat([z, z2])).chunk(2)
                    div = diversity_loss(fake, fake2, z, z2, mask, args.diversity_target)
                else:
                    fake = self.G(cond, z)
                    div = fake.new_zeros(())
                # Discriminator: hinge loss.
                d_real, _ = self.D(color_augment(real, gen), cond)
                d_fake, _ = self.D(color_augment(fake.detach(), gen), cond)
                loss_d = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            torch.nn.utils.clip_grad_norm_(self.D.parameters(), 5.0)
            self.opt_d.step()
            with self._autocast():
                d_fake, f_fake = self.D(fake, cond)
                with torch.no_grad():
                    _, f_real = self.D(real, cond)
                adv = -d_fake.float().mean()
                fm = sum(F.l1_loss(a.float(), b.float()) for a, b in zip(f_fake, f_real, strict=True)) / len(f_fake)
                rec = reconstruction_loss(fake, real, mask, args.rec_pool)
                detail = detail_loss(fake, real, mask) if args.detail_weight > 0 else fake.new_zeros(())
                faceness, feats = self.prior(fake, real, mask) if self.prior else (fake.new_zeros(()),) * 2
                loss_g = (adv + args.fm_weight * fm + args.rec_weight * rec + args.detail_weight * detail
                          + args.faceness_weight * faceness + args.feature_weight * feats
                          + args.diversity_weight * div)
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            torch.nn.utils.clip_grad_norm_(self.G.parameters(), 5.0)
            self.opt_g.step()
            with torch.no_grad():
                torch._foreach_lerp_(list(self.G_ema.parameters()), list(self.G.parameters()), 1.0 - ema_decay)
            self.step += 1
            self.images += args.batch
            if self.step % 10 == 0:
                r = rec.item()
                self.rec_ema = r if self.rec_ema is None else 0.9 * self.rec_ema + 0.1 * r
                self.best_rec = min(self.best_rec, self.rec_ema)
            if self.step % 10 == 0:
                rate = (self.images - n0) / max(time.monotonic() - t0, 1e-6)
                bar.set_postfix(d=f"{loss_d.item():.3f}", adv=f"{adv.item():.3f}", fm=f"{fm.item():.3f}",
                                rec=f"{rec.item():.3f}", detail=f"{detail.item():.2f}",
                                face=f"{faceness.item():.2f}", feat=f"{feats.item():.2f}", div=f"{div.item():.2f}",
                                img_s=f"{rate:.0f}")
            bar.update(1)
            if time.monotonic() - last_save > args.preview_every:
                self.save()
                last_save = time.monotonic()
        bar.close()
        self.save()
        log.info("stopped after %d steps (%d images); weights in %s", self.step, self.images,
                 self.out / "generator.pt")

    def save(self) -> None:
        light = self.args.light_checkpoints

        def sd(m: torch.nn.Module) -> dict:
            return {k: (v.half() if light and v.is_floating_point() else v).cpu() for k, v in m.state_dict().items()}

        state = {"generator": sd(self.G), "generator_ema": sd(self.G_ema), "discriminator": sd(self.D),
                 "step": self.step, "images": self.images}
        if not light:
            state["opt_g"] = self.opt_g.state_dict()
            state["opt_d"] = self.opt_d.state_dict()
        with atomic_path(self.ckpt) as tmp:
            torch.save(state, tmp)
        # A GAN can collapse late: shipped weights are only refreshed while reconstruction stays healthy.
        if self.rec_ema is None or self.rec_ema <= 1.25 * self.best_rec:
            with atomic_path(self.out / "generator.pt") as tmp:
                torch.save({k: v.half().cpu() for k, v in self.G_ema.state_dict().items()}, tmp)
        else:
            log.warning("step %d: reconstruction %.3f vs best %.3f, keeping the earlier generator.pt",
                        self.step, self.rec_ema, self.best_rec)
        cv2.imwrite(str(self.out / "preview.png"), self.preview_grid())

    def _load(self, path: Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.G.load_state_dict({k: v.float() for k, v in state["generator"].items()})
        self.G_ema.load_state_dict({k: v.float() for k, v in state["generator_ema"].items()})
        self.D.load_state_dict({k: v.float() if v.is_floating_point() else v
                                for k, v in state["discriminator"].items()})
        if "opt_g" in state:
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            for group in (*self.opt_g.param_groups, *self.opt_d.param_groups):
                group["lr"] = self.args.lr  # --lr applies on resume too
        self.step, self.images = int(state["step"]), int(state["images"])
        log.info("resumed from %s at step %d", path, self.step)

    @torch.no_grad()
    def preview_grid(self) -> np.ndarray:
        """Rows: held-back originals, masked inputs, then generated faces for fixed seeds 0, 1, 2."""
        real, cond = split(self.preview.data.float() / 255.0)
        rows = [real, cond[:, :3]]
        for seed in range(3):
            z = torch.randn(real.shape[0], LATENT, generator=torch.Generator().manual_seed(seed)).to(self.device)
            rows.append(self.G_ema(cond, z).float())
        grid = torch.cat([torch.cat(list(r), 2) for r in rows], 1)
        img = ((grid.clamp(-1, 1) + 1.0) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
        return np.ascontiguousarray(img[:, :, ::-1])

