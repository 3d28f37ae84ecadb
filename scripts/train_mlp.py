"""Train a small PyTorch MLP classifier on scikit-learn's digits, or on synthetic blobs.

Usage::

    python train_mlp.py [--data digits|synthetic] [--lr 0.003] [--hidden 64] [--layers 2]
                        [--epochs 5] [--batch-size 64] [--seed 0] [--optimizer adam|sgd]
                        [--device auto|cpu|cuda|mps] [--val-fraction 0.2] [--threads N]

(``--batch_size`` and ``--val_fraction`` are accepted too.)

``--device auto`` takes ``$SPOOL_DEVICE`` when it is set, else CUDA when it is present and
actually works, else MPS when present, else the CPU. Every GPU call is guarded: a device that
is missing or fails a tiny test computation (an old card the installed torch has no kernels
for, say) falls back to the CPU with a note on stderr.

Prints one JSON line per epoch, ``{"epoch", "train_loss", "val_loss", "val_accuracy"}``, and a
final line ``{"val_accuracy", "val_loss", "epochs", "device", "seconds"}``. Saves the trained
weights (a CPU ``state_dict``) as ``model.pt`` in ``$SPOOL_OUTPUT_DIR`` (default: the current
folder). Works with torch >= 2.1 and needs scikit-learn only for ``--data digits``.

Resumable: after every epoch the model, the optimiser, the shuffling generator and the epoch
are saved to ``$SPOOL_CHECKPOINT_DIR/train_mlp.pt`` (a temp file, fsync, rename: a kill at any
instant leaves the last whole checkpoint). A run that finds one made with the same settings
goes on from the epoch after it, on any machine; the final line then says ``resumed_from``
(the first epoch this run trained) and ``epochs_run``. Without ``$SPOOL_CHECKPOINT_DIR``
(or with ``--checkpoint-dir ''``) nothing is saved.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=["digits", "synthetic"], default="digits")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2, help="hidden layers (0 = a linear model)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--val-fraction", "--val_fraction", dest="val_fraction", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: up to 2)")
    parser.add_argument(
        "--checkpoint-dir",
        "--checkpoint_dir",
        dest="checkpoint_dir",
        default=os.environ.get("SPOOL_CHECKPOINT_DIR", ""),
        help="where to save and resume from (default: $SPOOL_CHECKPOINT_DIR; '' turns it off)",
    )
    args = parser.parse_args(argv)
    if args.lr <= 0:
        parser.error(f"--lr must be positive, got {args.lr}")
    if args.hidden < 1 or args.layers < 0 or args.epochs < 0 or args.batch_size < 1:
        parser.error("--hidden and --batch-size must be >= 1, --layers and --epochs >= 0")
    if not 0.0 < args.val_fraction < 1.0:
        parser.error(f"--val-fraction must be between 0 and 1, got {args.val_fraction}")
    kind = args.device.split(":")[0]
    if kind not in ("auto", "cpu", "cuda", "mps"):
        parser.error(f"--device must be auto, cpu, cuda, cuda:N or mps, got {args.device!r}")
    return args


def note(message: str) -> None:
    print(f"train_mlp: {message}", file=sys.stderr, flush=True)


def device_works(torch, name: str) -> bool:
    """True when ``name`` is present and a tiny computation on it succeeds."""
    try:
        if name.startswith("cuda"):
            if not torch.cuda.is_available():
                return False
        elif name == "mps":
            mps = getattr(torch.backends, "mps", None)
            if mps is None or not mps.is_available():
                return False
        elif name != "cpu":
            return False
        probe = torch.ones(4, device=name) * 2
        return float(probe.sum().item()) == 8.0
    except Exception:  # no driver, no kernel image for this card, a broken MPS: all mean "no"
        return False


def pick_device(torch, requested: str) -> str:
    if requested == "auto":
        from_env = os.environ.get("SPOOL_DEVICE", "").strip()
        if from_env:
            requested = from_env
        else:
            for candidate in ("cuda", "mps"):
                if device_works(torch, candidate):
                    return candidate
            return "cpu"
    if requested == "cpu" or device_works(torch, requested):
        return requested
    note(f"device {requested!r} is not usable here; using the CPU")
    return "cpu"


def to_tensor(torch, array, dtype):
    """``torch.from_numpy`` with a fallback for a torch built against another numpy major."""
    try:
        return torch.from_numpy(array).to(dtype)
    except Exception:  # e.g. torch 2.2 wheels under numpy 2: "Numpy is not available"
        return torch.tensor(array.tolist(), dtype=dtype)


def load_data(torch, args: argparse.Namespace):
    """Features (float32, roughly unit scale) and integer labels, both on the CPU."""
    if args.data == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError as exc:
            raise SystemExit(f"train_mlp.py --data digits needs scikit-learn ({exc}); try --data synthetic")
        digits = load_digits()
        x = to_tensor(torch, digits.data, torch.float32) / 16.0
        y = to_tensor(torch, digits.target, torch.int64)
        return x, y
    generator = torch.Generator().manual_seed(1234)  # the same data set for every seed
    classes, features, per_class = 4, 20, 300
    centres = torch.randn(classes, features, generator=generator) * 0.9
    x = torch.cat(
        [centres[c] + torch.randn(per_class, features, generator=generator) for c in range(classes)]
    )
    y = torch.arange(classes).repeat_interleave(per_class)
    return x, y


def build_model(torch, n_in: int, n_out: int, hidden: int, layers: int):
    nn = torch.nn
    blocks: list = []
    width = n_in
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    blocks.append(nn.Linear(width, n_out))
    return nn.Sequential(*blocks)


def finite(value: float) -> float | None:
    """A number for JSON; NaN and infinities (a diverged run) become null."""
    return round(value, 6) if math.isfinite(value) else None


def evaluate(torch, model, x, y) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, y).item()
        accuracy = (logits.argmax(dim=1) == y).float().mean().item()
    return float(loss), float(accuracy)


#: settings a checkpoint must share with this run to be resumed from (others start afresh);
#: `epochs` is not one: a run asked for more epochs goes on from where a shorter one ended
SAME_RUN = ("data", "lr", "hidden", "layers", "batch_size", "seed", "optimizer", "val_fraction")


def save_checkpoint(torch, path: str, state: dict) -> None:
    """Write ``state`` beside ``path`` and rename it over: readers see the old or the new, whole."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a full share, a kill mid-save: leave the last whole checkpoint only
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_checkpoint(torch, path: str, args: argparse.Namespace) -> dict | None:
    """The saved state when it belongs to this run; None to start afresh (with a note why)."""
    if not path or not os.path.exists(path):
        return None
    try:
        # weights_only: tensors, numbers and containers only, never code from a file on a share
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file: start again rather than fail the job
        note(f"ignoring the unreadable checkpoint {path}: {exc}")
        return None
    wanted = {k: getattr(args, k) for k in SAME_RUN}
    if not isinstance(state, dict) or state.get("settings") != wanted:
        note(f"ignoring the checkpoint {path}: it was made with other settings")
        return None
    return state


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        import torch
    except ImportError as exc:
        print(f"train_mlp.py needs torch: {exc}", file=sys.stderr)
        return 1

    torch.set_num_threads(args.threads or max(1, min(2, os.cpu_count() or 1)))
    torch.manual_seed(args.seed)
    device = pick_device(torch, args.device)

    x, y = load_data(torch, args)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(args.seed))
    n_val = max(1, int(round(len(y) * args.val_fraction)))
    val_idx, train_idx = order[:n_val], order[n_val:]
    x_train, y_train = x[train_idx].to(device), y[train_idx].to(device)
    x_val, y_val = x[val_idx].to(device), y[val_idx].to(device)
    n_classes = int(y.max().item()) + 1

    model = build_model(torch, x.shape[1], n_classes, args.hidden, args.layers).to(device)
    if args.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    shuffler = torch.Generator().manual_seed(args.seed + 1)

    ckpt = os.path.join(args.checkpoint_dir, "train_mlp.pt") if args.checkpoint_dir else ""
    first = 1
    saved = load_checkpoint(torch, ckpt, args)
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        shuffler.set_state(saved["shuffler"])
        first = int(saved["epoch"]) + 1
        note(f"resuming after epoch {saved['epoch']} from {ckpt}")

    val_loss, val_accuracy = evaluate(torch, model, x_val, y_val)
    for epoch in range(first, args.epochs + 1):
        model.train()
        total, seen = 0.0, 0
        for batch in torch.randperm(len(y_train), generator=shuffler).split(args.batch_size):
            batch = batch.to(device)
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
            total += float(loss.item()) * len(batch)
            seen += len(batch)
        val_loss, val_accuracy = evaluate(torch, model, x_val, y_val)
        record = {
            "epoch": epoch,
            "train_loss": finite(total / max(seen, 1)),
            "val_loss": finite(val_loss),
            "val_accuracy": round(val_accuracy, 6),
        }
        if ckpt:  # saved before it is reported: an epoch whose record is out is never trained again
            state = {
                "settings": {k: getattr(args, k) for k in SAME_RUN},
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "shuffler": shuffler.get_state(),
            }
            save_checkpoint(torch, ckpt, state)
        print(json.dumps(record), flush=True)

    out_dir = os.environ.get("SPOOL_OUTPUT_DIR") or "."
    os.makedirs(out_dir, exist_ok=True)
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    torch.save(state, os.path.join(out_dir, "model.pt"))

    result = {
        "val_accuracy": round(val_accuracy, 6),
        "val_loss": finite(val_loss),
        "epochs": args.epochs,
        "device": device,
        "seconds": round(time.perf_counter() - started, 3),
        "epochs_run": max(0, args.epochs - first + 1),
    }
    if first > 1:
        result["resumed_from"] = first
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
