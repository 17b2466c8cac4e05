"""MACD_Aggressive: memd's "Freqtrade MACD Hunter" seed bot.

Momentum on 5-minute candles with the classic MACD (EMA 12 - EMA 26, signal EMA 9):
enter long when the MACD line crosses above its signal line, leave when it crosses back
below. Higher ROI targets and an 8% stoploss give trades room to run.

Indicators are computed with pandas only, so the file has no dependency beyond what
Freqtrade itself imports.

MEM is consulted before every entry (memd_mixin.MemdMixin, shipped beside this file): it
can refuse the entry, and it sizes the stake.
"""

from pandas import DataFrame, Series

from freqtrade.strategy import IStrategy
from memd_mixin import MemdMixin


def ema(series: Series, span: int) -> Series:
    """Exponential moving average seeded from the first value, as most charting tools do."""
    return series.ewm(span=span, adjust=False, min_periods=span).mean()


class MACD_Aggressive(MemdMixin, IStrategy):
    INTERFACE_VERSION = 3

    timeframe = "5m"
    can_short = False

    # ROI by trade age in minutes: 15% at once, 8% after 20 min, 3% after 40 min.
    minimal_roi = {"0": 0.15, "20": 0.08, "40": 0.03}
    stoploss = -0.08
    trailing_stop = False

    process_only_new_candles = True
    use_exit_signal = True
    exit_profit_only = False
    ignore_roi_if_entry_signal = False

    macd_fast = 12
    macd_slow = 26
    macd_signal = 9

    # The slow EMA and the signal EMA on top of it need a few times 26 + 9 candles to settle.
    startup_candle_count = 100

    order_types = {
        "entry": "limit",
        "exit": "limit",
        "stoploss": "market",
        "stoploss_on_exchange": False,
    }
    order_time_in_force = {"entry": "GTC", "exit": "GTC"}

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        close = dataframe["close"]
        macd = ema(close, self.macd_fast) - ema(close, self.macd_slow)
        signal = ema(macd, self.macd_signal)
        dataframe["macd"] = macd
        dataframe["macdsignal"] = signal
        dataframe["macdhist"] = macd - signal
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        hist = dataframe["macdhist"]
        # Crossed above: the histogram turned from <= 0 to > 0 on this candle.
        crossed_up = (hist > 0) & (hist.shift(1) <= 0) & (dataframe["volume"] > 0)
        dataframe.loc[crossed_up, ["enter_long", "enter_tag"]] = (1, "macd_cross_up")
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        hist = dataframe["macdhist"]
        crossed_down = (hist < 0) & (hist.shift(1) >= 0) & (dataframe["volume"] > 0)
        dataframe.loc[crossed_down, ["exit_long", "exit_tag"]] = (1, "macd_cross_down")
        return dataframe
