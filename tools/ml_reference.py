#!/usr/bin/env python3
"""Python reference figures for the daemon's model (daemon/src/ml/model.rs).

Trains the seed's classifier, scikit-learn's GradientBoostingClassifier(n_estimators=200,
max_depth=5, learning_rate=0.1, min_samples_split=20, random_state=42), on exactly the
rows, labels and chronological split `ml.train` uses, with a StandardScaler fitted on the
training rows and applied to the holdout. Measures:

  - holdout ROC-AUC, accuracy (threshold 0.5) and log-loss;
  - base rate (share of 1 labels; train and holdout) and the majority baseline (holdout
    accuracy of always answering the training set's majority class);
  - training seconds (scaler + 200 trees): median of 3 runs when one takes under 60 s,
    else that single run;
  - one predict_proba call on one already-scaled row: median over 1,000 calls (1,000
    different holdout rows), in microseconds;
  - predict_proba on a batch of 10,000 holdout rows: median of 7, in milliseconds;
  - the same for LightGBM (LGBMClassifier, n_estimators=200, max_depth=5,
    learning_rate=0.1, min_child_samples=20, random_state=42), when it is installed.

The CSVs come from the daemon's own pipeline:

  cargo run --release -p memd --example export_dataset -- data/market /tmp/mldata
  python3 -m venv /tmp/venv-mlref
  /tmp/venv-mlref/bin/pip install scikit-learn lightgbm pandas numpy
  /tmp/venv-mlref/bin/python tools/ml_reference.py [/tmp/mldata] [--json]

A table goes to stdout; with --json the table goes to stderr and stdout gets one JSON
object (figures and library versions).
"""

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.preprocessing import StandardScaler

FEATURES = ["sma_5", "sma_20", "sma_50", "rsi", "macd", "macd_signal", "macd_hist",
            "bb_position", "volume_ratio", "hl_range", "close_position", "oc_range"]


def timed_fit(make, x, y):
    """Fits make() on (x, y): (median seconds, the first model); 3 runs when one is < 60 s."""
    times, model = [], None
    for _ in range(3):
        m = make()
        t0 = time.perf_counter()
        m.fit(x, y)
        times.append(time.perf_counter() - t0)
        if model is None:
            model = m
        if times[0] >= 60:
            break
    return statistics.median(times), times, model


def latency(model, x_test):
    """(median µs of one-row predict_proba over 1,000 calls, median ms of a 10,000-row batch)."""
    single = []
    for i in range(1000):
        row = x_test[i % len(x_test)].reshape(1, -1)
        t0 = time.perf_counter_ns()
        model.predict_proba(row)
        single.append(time.perf_counter_ns() - t0)
    batch_rows = x_test[:10_000] if len(x_test) >= 10_000 else np.resize(x_test, (10_000, x_test.shape[1]))
    batch = []
    for _ in range(7):
        t0 = time.perf_counter_ns()
        model.predict_proba(batch_rows)
        batch.append(time.perf_counter_ns() - t0)
    return statistics.median(single) / 1e3, statistics.median(batch) / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", default=Path("/tmp/mldata"), type=Path,
                    help="directory holding train.csv and test.csv")
    ap.add_argument("--json", action="store_true", help="JSON on stdout, the table on stderr")
    a = ap.parse_args()
    data, as_json = a.data, a.json
    train, test = pd.read_csv(data / "train.csv"), pd.read_csv(data / "test.csv")
    y_train, y_test = train["label"].to_numpy(), test["label"].to_numpy()

    t0 = time.perf_counter()
    scaler = StandardScaler().fit(train[FEATURES].to_numpy())
    x_train = scaler.transform(train[FEATURES].to_numpy())
    scale_s = time.perf_counter() - t0
    x_test = scaler.transform(test[FEATURES].to_numpy())

    majority = int(y_train.mean() >= 0.5)
    out = {
        "rows": {"train": len(train), "test": len(test)},
        "base_rate": {"train": float(y_train.mean()), "test": float(y_test.mean())},
        "majority_baseline_accuracy": float((y_test == majority).mean()),
        "versions": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__},
    }

    gbc = lambda: GradientBoostingClassifier(n_estimators=200, max_depth=5, learning_rate=0.1,
                                             min_samples_split=20, random_state=42)
    train_s, runs, model = timed_fit(gbc, x_train, y_train)
    p = model.predict_proba(x_test)[:, 1]
    single_us, batch_ms = latency(model, x_test)
    out["sklearn_gbc"] = {
        "roc_auc": roc_auc_score(y_test, p), "accuracy": accuracy_score(y_test, p >= 0.5),
        "log_loss": log_loss(y_test, p), "train_seconds": train_s + scale_s,
        "train_runs_seconds": [r + scale_s for r in runs],
        "predict_one_us": single_us, "predict_10k_ms": batch_ms,
    }

    try:
        import lightgbm
    except ImportError:
        out["lightgbm"] = None
    else:
        out["versions"]["lightgbm"] = lightgbm.__version__
        lgb = lambda: lightgbm.LGBMClassifier(n_estimators=200, max_depth=5, learning_rate=0.1,
                                              min_child_samples=20, random_state=42, verbose=-1)
        train_s, runs, model = timed_fit(lgb, x_train, y_train)
        p = model.predict_proba(x_test)[:, 1]
        out["lightgbm"] = {"roc_auc": roc_auc_score(y_test, p), "accuracy": accuracy_score(y_test, p >= 0.5),
                           "log_loss": log_loss(y_test, p), "train_seconds": train_s + scale_s,
                           "train_runs_seconds": [r + scale_s for r in runs]}

    table = sys.stderr if as_json else sys.stdout
    print(f"rows: train {len(train)}, test {len(test)}; base rate train {out['base_rate']['train']:.4f}, "
          f"test {out['base_rate']['test']:.4f}; majority baseline accuracy "
          f"{out['majority_baseline_accuracy']:.4f}", file=table)
    print(f"{'model':<14}{'ROC-AUC':>9}{'accuracy':>10}{'log-loss':>10}{'train s':>9}"
          f"{'1 row µs':>10}{'10k ms':>9}", file=table)
    for name in ("sklearn_gbc", "lightgbm"):
        m = out[name]
        if m:
            one, batch = m.get("predict_one_us"), m.get("predict_10k_ms")
            print(f"{name:<14}{m['roc_auc']:>9.4f}{m['accuracy']:>10.4f}{m['log_loss']:>10.4f}"
                  f"{m['train_seconds']:>9.2f}{'-' if one is None else f'{one:.1f}':>10}"
                  f"{'-' if batch is None else f'{batch:.1f}':>9}", file=table)
    print("versions: " + ", ".join(f"{k} {v}" for k, v in out["versions"].items()), file=table)
    if as_json:
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
