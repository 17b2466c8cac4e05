#!/usr/bin/env python3
"""Python reference time for the model's 12 features (daemon/src/market/features.rs).

Computes the 12 features with TA-Lib and vectorised numpy/pandas, exactly as the module
doc of features.rs defines them:

  sma_k          SMA(close, k) / close - 1, k = 5, 20, 50
  rsi            RSI(close, 14)
  macd, macd_signal, macd_hist   MACD(close, 12, 26, 9) outputs / close
  bb_position    (close - lower) / (upper - lower), BBANDS(close, 20, 2, 2); 0.5 where upper == lower
  volume_ratio   volume / SMA(volume, 20); 1 where that SMA is 0
  hl_range       (high - low) / close
  close_position (close - low) / (high - low); 0.5 where high == low
  oc_range       (close - open) / open

over 1,000,000 candles made by tiling the 5,760 candles of data/market/ETH_BTC-5m.feather
(timestamps are not used). Reports the median of 7 runs, after one warm-up, of the whole
computation into a 12-column DataFrame; reading the file is not timed.

  python3 -m venv /tmp/venv-mlref
  /tmp/venv-mlref/bin/pip install TA-Lib pandas pyarrow numpy
  /tmp/venv-mlref/bin/python tools/features_reference.py [FEATHER] [--rows N] [--json]
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
import talib

ROOT = Path(__file__).resolve().parent.parent


def features(o, h, l, c, v):
    """The 12 features of float64 arrays, as a DataFrame (NaN during the warm-up)."""
    macd, signal, hist = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)
    upper, _, lower = talib.BBANDS(c, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0)
    vsma = talib.SMA(v, timeperiod=20)
    width, rng = upper - lower, h - l
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame({
            "sma_5": talib.SMA(c, timeperiod=5) / c - 1.0,
            "sma_20": talib.SMA(c, timeperiod=20) / c - 1.0,
            "sma_50": talib.SMA(c, timeperiod=50) / c - 1.0,
            "rsi": talib.RSI(c, timeperiod=14),
            "macd": macd / c,
            "macd_signal": signal / c,
            "macd_hist": hist / c,
            "bb_position": np.where(width > 0, (c - lower) / width, np.where(np.isnan(width), np.nan, 0.5)),
            "volume_ratio": np.where(vsma > 0, v / vsma, np.where(np.isnan(vsma), np.nan, 1.0)),
            "hl_range": rng / c,
            "close_position": np.where(rng > 0, (c - l) / rng, 0.5),
            "oc_range": (c - o) / o,
        })


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("feather", nargs="?", default=ROOT / "data/market/ETH_BTC-5m.feather", type=Path)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--json", action="store_true", help="print JSON instead of text")
    a = ap.parse_args()
    path, rows, as_json = a.feather, a.rows, a.json

    df = pd.read_feather(path)
    cols = [np.resize(df[k].to_numpy(dtype=np.float64), rows) for k in ("open", "high", "low", "close", "volume")]

    features(*cols)  # warm-up
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        out = features(*cols)
        times.append((time.perf_counter() - t0) * 1e3)
    assert out.shape == (rows, 12)

    result = {
        "candles": rows, "source": str(path), "source_candles": len(df),
        "median_ms": statistics.median(times), "runs_ms": times,
        "versions": {"python": platform.python_version(), "TA-Lib": talib.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__},
    }
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(f"12 features over {rows:,} candles (tiled {path.name}): median {result['median_ms']:.1f} ms "
              f"of 7 (runs {', '.join(f'{t:.1f}' for t in times)})")
        print("versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()))


if __name__ == "__main__":
    main()
