"""memd_mixin: a Freqtrade strategy that consults memd's MEM before every entry.

Shipped with memd (and rewritten by memd at start, so that it always speaks the daemon's
protocol: copy it under another name to change it). A strategy opts in by putting the
mixin first among its bases:

    from memd_mixin import MemdMixin

    class MyStrategy(MemdMixin, IStrategy):
        memd_base_confidence = 0.65   # the strategy's own confidence in its signals

What it does, in a bot that memd deployed (memd writes a "memd" section into the bot's
config: the socket, a credential that allows only MEM's calls for this strategy, the
strategy's name, MEM's neutral size, the deadline, fail-open or fail-closed):

* custom_stake_amount asks MEM to enhance the entry (`mem.enhance`): the strategy's own
  signal (side, and its confidence: the dataframe's `mem_confidence` column on the signal
  candle when the strategy computes one, else `memd_base_confidence`), the trend-reversal
  model's prediction, the strategy's memory on the pair, the learned patterns. The stake
  is scaled by MEM's position size: proposed stake x position_size / base_size (within
  Freqtrade's min and max stake).
* confirm_trade_entry refuses the entry when MEM says it is not actionable (its confidence
  is below the strategy's threshold, which MEM's performance monitor raises after a losing
  window); otherwise it has memd log the decision (`mem.decide`, with an id it chooses)
  and lets the entry go at once: memd logs the decision as it reads the request and
  answers once it is on disk; the answer is read at the next call (a refusal to log it is
  said in the log, and the trade is then recorded as observed).
* order_filled ties the trade to its decision (the trade's custom data
  `memd_decision_id`); when the trade closes, memd's trade sync closes the decision with
  the trade's profit, duration and exit reason, and MEM learns from it.
* An entry memd opened itself after MEM decided on it (a TradingView alert forwarded as a
  forced entry, tagged as the section's `decided_tags` say) is not asked about again.

If memd does not answer within the deadline (`timeout_ms`, default 500), the bot trades as
its strategy says (fail-open) or refuses entries (`fail_closed`), and says so in its log
once, and once again when memd answers again. In backtesting, hyperopt and every other run
mode but dry-run and live, and in a config without a "memd" section, the mixin stays out of
the way: it never calls a daemon.

Python's standard library only: nothing to install in Freqtrade's virtualenv.
"""

import json
import logging
import select
import socket
import time
import uuid

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
# The trade's custom data key that names its MEM decision (memd's trade sync reads it).
DECISION_KEY = "memd_decision_id"
# An enhancement asked for the stake is used by the entry confirmation that follows it.
ADVICE_TTL_SECS = 60.0
# After memd failed to answer, calls within this many seconds do not wait for it again.
RETRY_AFTER_SECS = 5.0


class MemdError(Exception):
    """memd could not be asked, or answered with an error."""


class MemdRefused(MemdError):
    """memd answered with an error."""


class MemdClient:
    """One connection to memd's socket: JSON-RPC 2.0, one message per line, `hello` with
    the bot's credential first. Every call is bounded by the deadline; a call that fails
    closes the connection (the next call opens a new one). A request sent without waiting
    (`send`) has its answer handed to its callback when it is read: at the next call, or
    by `drain`."""

    def __init__(self, path, credential, timeout_secs, client_name):
        self.path = path
        self.credential = credential
        self.timeout_secs = timeout_secs
        self.client_name = client_name
        self._sock = None
        self._buf = b""
        self._next_id = 0
        # Request id -> callback(result, error) of the requests sent without waiting.
        self._deferred = {}

    def close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None
        self._buf = b""
        # Their answers are lost with the connection: memd may well have done them.
        self._deferred.clear()

    def call(self, method, params):
        """Sends a request and waits for its answer (within the deadline)."""
        return self._guarded(lambda deadline: self._request(method, params, deadline))

    def send(self, method, params, on_answer):
        """Sends a request without waiting; `on_answer(result, error)` gets its answer."""

        def write(deadline):
            request_id = self._write(method, params, deadline)
            self._deferred[request_id] = on_answer

        # A connection memd closed since (a restart) shows now, not after the write.
        self.drain()
        self._guarded(write)

    def drain(self, wait_secs=0.0):
        """Reads the answers already there (or waits up to `wait_secs` for the pending
        ones) and hands them to their callbacks; notices a connection memd closed."""
        deadline = time.monotonic() + wait_secs
        try:
            while self._sock is not None:
                left = max(deadline - time.monotonic(), 0.0) if self._deferred else 0.0
                readable, _, _ = select.select([self._sock], [], [], left)
                if not readable:
                    return
                chunk = self._sock.recv(65536)
                if not chunk:
                    self.close()
                    return
                self._buf += chunk
                self._dispatch(None)
        except (OSError, ValueError):
            self.close()

    def _guarded(self, act):
        deadline = time.monotonic() + self.timeout_secs
        # A connection opened before may have been closed by memd since (a restart): then
        # once more on a new one.
        reused = self._sock is not None
        while True:
            try:
                if self._sock is None:
                    self._connect(deadline)
                return act(deadline)
            except MemdRefused:
                self.close()
                raise
            except (MemdError, OSError, ValueError) as err:
                self.close()
                timed_out = isinstance(err, socket.timeout)
                if reused and not timed_out:
                    reused = False
                    continue
                if timed_out:
                    raise MemdError(f"no answer within {self.timeout_secs * 1000:.0f} ms") from err
                raise MemdError(str(err) or type(err).__name__) from err

    def _connect(self, deadline):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._buf = b""
        hello = self._request(
            "hello",
            {
                "protocolVersion": PROTOCOL_VERSION,
                "client": self.client_name,
                "credential": self.credential,
            },
            deadline,
        )
        if hello.get("access") != "bot":
            raise MemdRefused(f"memd gave this bot {hello.get('access')!r} access, not 'bot'")

    def _write(self, method, params, deadline):
        self._next_id += 1
        request_id = self._next_id
        line = json.dumps(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params},
            separators=(",", ":"),
        ).encode() + b"\n"
        self._settimeout(deadline)
        self._sock.sendall(line)
        return request_id

    def _request(self, method, params, deadline):
        request_id = self._write(method, params, deadline)
        while True:
            found = self._dispatch(request_id)
            if found is not None:
                if "error" in found:
                    error = found["error"] or {}
                    raise MemdRefused(f"{method}: {error.get('message', error)} ({error.get('code')})")
                return found.get("result") or {}
            self._settimeout(deadline)
            chunk = self._sock.recv(65536)
            if not chunk:
                raise MemdError("memd closed the connection")
            self._buf += chunk

    def _dispatch(self, waited):
        """Handles the whole lines read: answers of deferred requests go to their
        callbacks; the answer to `waited` is returned (None until it is read)."""
        while True:
            newline = self._buf.find(b"\n")
            if newline < 0:
                return None
            raw, self._buf = self._buf[:newline], self._buf[newline + 1 :]
            message = json.loads(raw)
            request_id = message.get("id")
            if waited is not None and request_id == waited:
                return message
            callback = self._deferred.pop(request_id, None)
            if callback is not None:
                callback(message.get("result"), message.get("error"))

    def _settimeout(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline passed")
        self._sock.settimeout(left)


class MemdMixin:
    """Consult memd's MEM before every entry (see the module's documentation)."""

    # The strategy's own confidence in its entry signals (0 to 1), when its dataframe has
    # no `mem_confidence` column.
    memd_base_confidence = 0.65

    # Per instance, made on first use.
    _memd_ready = False
    _memd_settings = None
    _memd_client = None

    # --- Freqtrade callbacks -------------------------------------------------------------

    def custom_stake_amount(
        self,
        pair,
        current_time,
        current_rate,
        proposed_stake,
        min_stake,
        max_stake,
        leverage,
        entry_tag,
        side,
        **kwargs,
    ):
        settings = self._memd()
        if settings is None or self._memd_decided(settings, entry_tag):
            return proposed_stake
        advice = self._memd_enhance(settings, pair, side, entry_tag)
        self._memd_advice[pair] = (time.monotonic(), advice)
        if advice is None or not advice.get("actionable", True):
            return proposed_stake
        base = settings.get("base_size") or 0.1
        stake = proposed_stake * float(advice["position_size"]) / base
        if max_stake:
            stake = min(stake, max_stake)
        if min_stake:
            stake = max(stake, min_stake)
        return stake

    def confirm_trade_entry(
        self,
        pair,
        order_type,
        amount,
        rate,
        time_in_force,
        current_time,
        entry_tag,
        side,
        **kwargs,
    ):
        settings = self._memd()
        if settings is None:
            return True
        if self._memd_decided(settings, entry_tag):
            logger.info("the entry on %s was decided by memd already (tag %s)", pair, entry_tag)
            return True
        asked = self._memd_advice.pop(pair, None)
        if asked is not None and time.monotonic() - asked[0] < ADVICE_TTL_SECS:
            advice = asked[1]
        else:
            advice = self._memd_enhance(settings, pair, side, entry_tag)
        if advice is None:
            return not settings.get("fail_closed", False)
        if not advice.get("actionable", True):
            logger.info(
                "MEM refused the entry on %s: confidence %.2f is below strategy %s's threshold (%s)",
                pair,
                float(advice.get("confidence", 0.0)),
                settings["strategy"],
                advice.get("reasoning", ""),
            )
            return False
        params = self._memd_signal(settings, pair, side, entry_tag)
        params["price"] = float(rate)
        params["id"] = decision_id = str(uuid.uuid4())

        def decided(result, error):
            self._memd_decided_answer(pair, decision_id, result, error)

        if not self._memd_send(settings, "mem.decide", params, decided):
            return not settings.get("fail_closed", False)
        self._memd_pending[pair] = decision_id
        logger.info(
            "MEM decision %s on %s: confidence %.2f, size %.4f (%s)",
            decision_id,
            pair,
            float(advice.get("confidence", 0.0)),
            float(advice.get("position_size", 0.0)),
            advice.get("reasoning", ""),
        )
        return True

    def order_filled(self, pair, trade, order, current_time, **kwargs):
        if not self._memd_ready or self._memd_settings is None:
            return None
        self._memd_client.drain()
        decision = self._memd_pending.get(pair)
        if decision is None or order.ft_order_side != trade.entry_side:
            return None
        if trade.get_custom_data(DECISION_KEY) is None:
            trade.set_custom_data(DECISION_KEY, decision)
        self._memd_pending.pop(pair, None)
        return None

    # --- Overridable -----------------------------------------------------------------------

    def mem_signal_confidence(self, pair, side, entry_tag):
        """The strategy's own confidence in this entry signal, 0 to 1: the analyzed
        dataframe's `mem_confidence` on the last candle when it has that column, else
        `memd_base_confidence`."""
        try:
            dataframe, _ = self.dp.get_analyzed_dataframe(pair, self.timeframe)
            if dataframe is not None and "mem_confidence" in dataframe.columns and len(dataframe):
                value = float(dataframe["mem_confidence"].iloc[-1])
                if 0.0 <= value <= 1.0:
                    return value
        except Exception:  # noqa: BLE001 - the strategy's dataframe is its own business
            pass
        return float(self.memd_base_confidence)

    # --- Inside ----------------------------------------------------------------------------

    def _memd(self):
        """The `memd` section when MEM is to be consulted, else None (decided once)."""
        if self._memd_ready:
            return self._memd_settings
        dp = getattr(self, "dp", None)
        runmode = getattr(getattr(dp, "runmode", None), "value", None)
        if dp is None:
            return None  # too early: Freqtrade has not wired the strategy up yet
        self._memd_ready = True
        self._memd_settings = None
        self._memd_advice = {}
        self._memd_pending = {}
        self._memd_state = "new"
        self._memd_retry_at = 0.0
        settings = (getattr(self, "config", None) or {}).get("memd")
        if runmode not in ("live", "dry_run"):
            logger.info("memd mixin: run mode %s: MEM is not consulted", runmode)
            return None
        if not isinstance(settings, dict) or not settings.get("socket") or not settings.get("credential"):
            logger.warning(
                "memd mixin: the config has no memd section (deploy the strategy with memd): "
                "MEM is not consulted, the strategy trades on its own signals"
            )
            return None
        self._memd_settings = settings
        timeout = max(int(settings.get("timeout_ms") or 500), 1) / 1000.0
        self._memd_client = MemdClient(
            settings["socket"],
            settings["credential"],
            timeout,
            f"memd mixin {settings.get('strategy')} {settings.get('deployment_id', '')}".strip(),
        )
        return settings

    @staticmethod
    def _memd_decided(settings, entry_tag):
        """An entry memd opened itself after MEM decided on it (a forwarded TradingView
        alert): not asked about again; memd ties the trade to that decision."""
        return entry_tag is not None and entry_tag in (settings.get("decided_tags") or ())

    def _memd_signal(self, settings, pair, side, entry_tag):
        return {
            "signal": {
                # By id: memd keeps it under the registry's name, even a renamed one's.
                "strategy": settings.get("strategy_id") or settings["strategy"],
                "symbol": pair,
                "action": "SELL" if side == "short" else "BUY",
                "confidence": self.mem_signal_confidence(pair, side, entry_tag),
            }
        }

    def _memd_enhance(self, settings, pair, side, entry_tag):
        return self._memd_call(settings, "mem.enhance", self._memd_signal(settings, pair, side, entry_tag))

    def _memd_decided_answer(self, pair, decision_id, result, error):
        """memd's answer to a decision sent without waiting: nothing to do when it logged
        it; else the trade is not tied to it (it will be recorded as observed)."""
        if error is None:
            return
        logger.warning(
            "memd did not log the decision %s on %s: %s",
            decision_id,
            pair,
            (error or {}).get("message", error),
        )
        if self._memd_pending.get(pair) == decision_id:
            del self._memd_pending[pair]

    def _memd_send(self, settings, method, params, on_answer):
        """Sends a request without waiting for its answer; False when memd cannot be
        reached (said in the log once)."""
        if self._memd_state == "down" and time.monotonic() < self._memd_retry_at:
            return False
        try:
            self._memd_client.send(method, params, on_answer)
        except MemdError as err:
            self._memd_failed(settings, err)
            return False
        return True

    def _memd_failed(self, settings, err):
        self._memd_retry_at = time.monotonic() + RETRY_AFTER_SECS
        if self._memd_state != "down":
            self._memd_state = "down"
            logger.warning(
                "memd did not answer (%s): %s until it does (logged once)",
                err,
                "refusing entries (fail-closed)"
                if settings.get("fail_closed")
                else "trading as the strategy says (fail-open)",
            )

    def _memd_call(self, settings, method, params):
        """memd's answer, or None when it did not answer (said in the log once)."""
        now = time.monotonic()
        if self._memd_state == "down" and now < self._memd_retry_at:
            return None
        try:
            result = self._memd_client.call(method, params)
        except MemdError as err:
            self._memd_failed(settings, err)
            return None
        if self._memd_state != "up":
            logger.info(
                "memd answers%s: MEM is consulted before every entry of strategy %s",
                " again" if self._memd_state == "down" else "",
                settings["strategy"],
            )
            self._memd_state = "up"
        return result
