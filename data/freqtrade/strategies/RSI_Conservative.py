"""RSI_Conservative: memd's "Freqtrade Conservative RSI" seed bot.

Mean reversion on a 14-period RSI over 5-minute candles: enter long when the RSI falls
below 30 (oversold), leave when it rises above 70 (overbought). Small, quickly decaying
ROI targets and a 5% stoploss keep the risk low.

Indicators are computed with pandas only, so the file has no dependency beyond what
Freqtrade itself imports.

MEM is consulted before every entry (memd_mixin.MemdMixin, shipped beside this file): it
can refuse the entry, and it sizes the stake.
"""

from pandas import DataFrame, Series

from freqtrade.strategy import IStrategy
from memd_mixin import MemdMixin


def wilder_rsi(close: Series, period: int) -> Series:
    """Relative Strength Index with Wilder's smoothing (an EMA with alpha = 1 / period)."""
    change = close.diff()
    gain = change.clip(lower=0.0)
    loss = -change.clip(upper=0.0)
    avg_gain = gain.ewm(alpha=1.0 / period, adjust=False, min_periods=period).mean()
    avg_loss = loss.ewm(alpha=1.0 / period, adjust=False, min_periods=period).mean()
    rs = avg_gain / avg_loss
    rsi = 100.0 - 100.0 / (1.0 + rs)
    # No losses in the window: the RSI is 100 (avg_loss == 0 gives rs = inf above, and
    # 0 / 0 gives NaN when the price did not move at all: call that neutral).
    rsi = rsi.where(avg_loss != 0.0, 100.0)
    rsi = rsi.where((avg_gain != 0.0) | (avg_loss != 0.0), 50.0)
    return rsi.where(avg_gain.notna())


class RSI_Conservative(MemdMixin, IStrategy):
    INTERFACE_VERSION = 3

    timeframe = "5m"
    can_short = False

    # ROI by trade age in minutes: 10% at once, 5% after 30 min, 2% after an hour.
    minimal_roi = {"0": 0.1, "30": 0.05, "60": 0.02}
    stoploss = -0.05
    trailing_stop = False

    process_only_new_candles = True
    use_exit_signal = True
    exit_profit_only = False
    ignore_roi_if_entry_signal = False

    rsi_period = 14
    rsi_entry = 30
    rsi_exit = 70

    # Wilder's smoothing needs a few times the period to forget its starting value.
    startup_candle_count = 100

    order_types = {
        "entry": "limit",
        "exit": "limit",
        "stoploss": "market",
        "stoploss_on_exchange": False,
    }
    order_time_in_force = {"entry": "GTC", "exit": "GTC"}

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["rsi"] = wilder_rsi(dataframe["close"], self.rsi_period)
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        oversold = (dataframe["rsi"] < self.rsi_entry) & (dataframe["volume"] > 0)
        dataframe.loc[oversold, ["enter_long", "enter_tag"]] = (1, "rsi_oversold")
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        overbought = (dataframe["rsi"] > self.rsi_exit) & (dataframe["volume"] > 0)
        dataframe.loc[overbought, ["exit_long", "exit_tag"]] = (1, "rsi_overbought")
        return dataframe
