#!/usr/bin/env python3
"""Writes the TA-Lib reference values that daemon/src/market/indicators.rs is tested against.

Every expected value comes from TA-Lib itself (the `TA-Lib` PyPI package, which bundles the
C library); nothing is computed by hand here. Two files are written:

  tests/fixtures/talib/ETH_BTC-5m.csv   real candles (data/market/ETH_BTC-5m.feather);
                                        the first 3000 when the whole file would be over
                                        ~2 MB (it is: 2.3 MB for 5760 candles)
  tests/fixtures/talib/edge_cases.csv   a small synthetic series with the awkward cases:
                                        flat prices, zero volume, a strictly rising run,
                                        prices quoted around 3e-8

Columns: ts_ms, open, high, low, close, volume, then one column per TA-Lib output. Floats
are written with repr() (shortest text that round-trips to the same double), 'nan' where
TA-Lib answers NaN.

Usage (from the repository root):
  python3 -m venv /tmp/venv-talib
  /tmp/venv-talib/bin/pip install TA-Lib pandas pyarrow numpy
  /tmp/venv-talib/bin/python tools/talib_fixture.py
"""

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import talib

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "data/market/ETH_BTC-5m.feather"
OUT_DIR = ROOT / "tests/fixtures/talib"
# Keep the real-data fixture small enough to commit.
MAX_BYTES = 2_100_000
FALLBACK_ROWS = 3000


def fmt(x: float) -> str:
    x = float(x)
    return "nan" if math.isnan(x) else repr(x)


def outputs(o, h, l, c, v):
    """Column name -> TA-Lib output, in the CSV's order."""
    macd, macd_signal, macd_hist = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)
    bb_upper, bb_middle, bb_lower = talib.BBANDS(c, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0)
    return {
        "sma5": talib.SMA(c, timeperiod=5),
        "sma20": talib.SMA(c, timeperiod=20),
        "sma50": talib.SMA(c, timeperiod=50),
        "ema12": talib.EMA(c, timeperiod=12),
        "ema26": talib.EMA(c, timeperiod=26),
        "rsi14": talib.RSI(c, timeperiod=14),
        "macd": macd,
        "macd_signal": macd_signal,
        "macd_hist": macd_hist,
        "bb_upper": bb_upper,
        "bb_middle": bb_middle,
        "bb_lower": bb_lower,
        "atr14": talib.ATR(h, l, c, timeperiod=14),
        "adx14": talib.ADX(h, l, c, timeperiod=14),
        "mfi14": talib.MFI(h, l, c, v, timeperiod=14),
        "volume_sma20": talib.SMA(v, timeperiod=20),
    }


def render(ts, o, h, l, c, v) -> str:
    cols = outputs(o, h, l, c, v)
    header = ["ts_ms", "open", "high", "low", "close", "volume", *cols]
    lines = [",".join(header)]
    for i in range(len(c)):
        row = [str(int(ts[i])), fmt(o[i]), fmt(h[i]), fmt(l[i]), fmt(c[i]), fmt(v[i])]
        row += [fmt(col[i]) for col in cols.values()]
        lines.append(",".join(row))
    return "\n".join(lines) + "\n"


def real_candles():
    df = pd.read_feather(SOURCE)
    ts = (df["date"].astype("int64") // 1_000_000).to_numpy()  # ns -> ms
    arrays = [df[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close", "volume")]
    return ts, *arrays


def edge_candles():
    """A deterministic series that walks through the degenerate cases, 300 candles:

      0..80     a pair quoted around 3e-8 (every indicator warms up at that scale),
                with zero volume on 30..35
      80..140   an ordinary wave around 0.1
      140..200  flat candles, open = high = low = close = 0.1 (longer than every window)
      200..240  close strictly rising
      240..300  the wave again, with zero volume on 250..280 (longer than the MFI window)
    """
    n = 300
    i = np.arange(n, dtype=np.float64)
    close = 0.1 + 0.002 * np.sin(i / 7.0) + 0.0005 * np.cos(i / 3.0)
    high = close + 0.0003
    low = close - 0.0003
    tiny = slice(0, 80)
    close[tiny] = 3e-8 + 1e-10 * np.sin(i[tiny] / 5.0)
    high[tiny] = close[tiny] + 2e-10
    low[tiny] = close[tiny] - 2e-10
    flat = slice(140, 200)
    close[flat] = 0.1
    high[flat] = 0.1
    low[flat] = 0.1
    rising = slice(200, 240)
    close[rising] = 0.1 + 0.0001 * np.arange(1, 41)
    high[rising] = close[rising] + 0.0003
    low[rising] = close[rising] - 0.0003
    open_ = np.concatenate(([close[0]], close[:-1]))
    open_[flat] = 0.1
    volume = 100.0 + 50.0 * np.cos(i / 4.0)
    volume[30:35] = 0.0
    volume[250:280] = 0.0
    ts = 1_700_000_000_000 + 300_000 * np.arange(n, dtype=np.int64)
    return ts, open_, high, low, close, volume


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    ts, o, h, l, c, v = real_candles()
    text = render(ts, o, h, l, c, v)
    if len(text.encode()) > MAX_BYTES:
        n = FALLBACK_ROWS
        text = render(ts[:n], o[:n], h[:n], l[:n], c[:n], v[:n])
        print(f"real candles: too large, kept the first {n} rows", file=sys.stderr)
    (OUT_DIR / "ETH_BTC-5m.csv").write_text(text)
    (OUT_DIR / "edge_cases.csv").write_text(render(*edge_candles()))
    print(f"TA-Lib {talib.__version__} (C library {talib.__ta_version__.decode()}), "
          f"numpy {np.__version__}, pandas {pd.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
