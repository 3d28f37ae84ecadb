"""Train and score a scikit-learn classifier on a dataset that ships with scikit-learn.

Usage::

    python classify.py [--dataset wine|digits] [--model logreg|rf|svm] [--C 1.0]
                       [--n-estimators 100] [--max-depth N|none] [--test-size 0.25] [--seed 0]

(``--n_estimators``, ``--max_depth`` and ``--test_size`` are accepted too.)

Writes ``confusion.csv`` (rows: true class, columns: predicted class) into
``$SPOOL_OUTPUT_DIR`` (default: the current folder) and prints one JSON line at the end::

    {"accuracy": .., "f1_macro": .., "train_seconds": .., "n_train": .., "n_test": ..}
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time


def optional_int(text: str) -> int | None:
    """An int, or None for ``none``/``null``/empty/``0`` (no depth limit)."""
    if text.strip().lower() in ("", "none", "null", "0"):
        return None
    value = int(float(text))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'none', got {text!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["wine", "digits"], default="wine")
    parser.add_argument("--model", choices=["logreg", "rf", "svm"], default="logreg")
    parser.add_argument("--C", "--c", dest="C", type=float, default=1.0, help="inverse regularisation")
    parser.add_argument("--n-estimators", "--n_estimators", dest="n_estimators", type=int, default=100)
    parser.add_argument("--max-depth", "--max_depth", dest="max_depth", type=optional_int, default=None)
    parser.add_argument("--test-size", "--test_size", dest="test_size", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 0.0 < args.test_size < 1.0:
        parser.error(f"--test-size must be between 0 and 1, got {args.test_size}")
    if args.C <= 0:
        parser.error(f"--C must be positive, got {args.C}")
    if args.n_estimators < 1:
        parser.error(f"--n-estimators must be at least 1, got {args.n_estimators}")
    return args


def make_model(args: argparse.Namespace):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if args.model == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(C=args.C, max_iter=2000))
    if args.model == "svm":
        return make_pipeline(StandardScaler(), SVC(C=args.C, random_state=args.seed))
    return RandomForestClassifier(
        n_estimators=args.n_estimators, max_depth=args.max_depth, random_state=args.seed, n_jobs=1
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from sklearn.datasets import load_digits, load_wine
        from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
        from sklearn.model_selection import train_test_split
    except ImportError as exc:
        print(f"classify.py needs scikit-learn: {exc}", file=sys.stderr)
        return 1

    data = load_wine() if args.dataset == "wine" else load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=args.test_size, random_state=args.seed, stratify=data.target
    )
    model = make_model(args)
    started = time.perf_counter()
    model.fit(x_train, y_train)
    train_seconds = time.perf_counter() - started
    predicted = model.predict(x_test)

    labels = sorted(int(v) for v in set(data.target.tolist()))
    names = [str(data.target_names[i]) for i in labels]
    matrix = confusion_matrix(y_test, predicted, labels=labels)
    out_dir = os.environ.get("SPOOL_OUTPUT_DIR") or "."
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "confusion.csv"), "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["true\\predicted", *names])
        for name, row in zip(names, matrix.tolist(), strict=True):
            writer.writerow([name, *row])

    result = {
        "accuracy": round(float(accuracy_score(y_test, predicted)), 6),
        "f1_macro": round(float(f1_score(y_test, predicted, average="macro")), 6),
        "train_seconds": round(train_seconds, 4),
        "n_train": int(len(y_train)),
        "n_test": int(len(y_test)),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
