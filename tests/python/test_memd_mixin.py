"""The memd mixin (data/freqtrade/strategies/memd_mixin.py) against a fake memd.

Run by the e2e test `mem_bots::the_mixin_passes_its_own_tests` (python3 -m unittest); the
real module, a real Unix socket, a fake daemon that answers as memd does (or does not).
The real daemon and the real Freqtrade: tests/e2e/mem_bots.rs.
"""

import json
import logging
import os
import socket
import sys
import tempfile
import threading
import time
import types
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "data", "freqtrade", "strategies"))

import memd_mixin  # noqa: E402


class FakeMemd:
    """A Unix socket server answering hello, mem.enhance and mem.decide as memd does;
    `actionable`, `size` and `silent` (never answers) change its answers."""

    def __init__(self, path):
        self.path = path
        self.actionable = True
        self.size = 0.05
        self.silent = False
        self.decide_error = None
        self.requests = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(8)
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        for line in conn.makefile("rb"):
            request = json.loads(line)
            self.requests.append(request)
            if self.silent:
                continue
            method = request["method"]
            if method == "hello":
                result = {"protocolVersion": 1, "access": "bot"}
            elif method == "mem.enhance":
                result = {
                    "confidence": 0.6,
                    "position_size": self.size,
                    "actionable": self.actionable,
                    "reasoning": "fake",
                }
            else:
                if self.decide_error:
                    answer = {"jsonrpc": "2.0", "id": request["id"], "error": self.decide_error}
                    conn.sendall((json.dumps(answer) + "\n").encode())
                    continue
                result = {"id": request["params"]["id"]}
            answer = {"jsonrpc": "2.0", "id": request["id"], "result": result}
            try:
                conn.sendall((json.dumps(answer) + "\n").encode())
            except OSError:
                return

    def methods(self):
        return [r["method"] for r in self.requests]

    def wait_for(self, count):
        """Waits (a little) until `count` requests have been read."""
        deadline = time.monotonic() + 2.0
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.005)

    def stop(self):
        try:
            self.server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.server.close()
        if os.path.exists(self.path):
            os.unlink(self.path)
        for conn in self.connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


class Trade:
    entry_side = "buy"

    def __init__(self):
        self.data = {}

    def get_custom_data(self, key):
        return self.data.get(key)

    def set_custom_data(self, key, value):
        self.data[key] = value


class Bot(memd_mixin.MemdMixin):
    timeframe = "5m"

    def __init__(self, socket_path, runmode="dry_run", **settings):
        memd = {
            "socket": socket_path,
            "credential": "c0ffee",
            "strategy": "freqtrade_macd_hunter",
            "strategy_id": "4ce3a79b-c22b-4b42-9d87-3a58052a9eec",
            "base_size": 0.1,
            "timeout_ms": 200,
            "fail_closed": False,
            "decided_tags": ["tradingview"],
        }
        memd.update(settings)
        self.config = {"memd": memd}
        self.dp = types.SimpleNamespace(
            runmode=types.SimpleNamespace(value=runmode),
            get_analyzed_dataframe=lambda pair, timeframe: (None, None),
        )

    def stake(self, pair="ETH/USDT", tag=None):
        return self.custom_stake_amount(pair, None, 1.0, 100.0, 10.0, 1000.0, 1.0, tag, "long")

    def confirm(self, pair="ETH/USDT", tag=None):
        return self.confirm_trade_entry(pair, "limit", 1.0, 3000.0, "GTC", None, tag, "long")

    def enter(self, pair="ETH/USDT", tag=None):
        return self.stake(pair, tag), self.confirm(pair, tag)


class MixinTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "memd.sock")
        self.memd = FakeMemd(self.path)

    def tearDown(self):
        self.memd.stop()
        self.dir.cleanup()

    def test_an_entry_is_enhanced_sized_and_decided_with_the_bots_credential(self):
        bot = Bot(self.path)
        stake, entered = bot.enter()
        self.assertAlmostEqual(stake, 100.0 * 0.05 / 0.1)
        self.assertTrue(entered)
        self.memd.wait_for(3)
        hello, enhance, decide = self.memd.requests[:3]
        self.assertEqual(hello["params"]["credential"], "c0ffee")
        self.assertEqual(
            enhance["params"]["signal"],
            {
                "strategy": "4ce3a79b-c22b-4b42-9d87-3a58052a9eec",
                "symbol": "ETH/USDT",
                "action": "BUY",
                "confidence": 0.65,
            },
        )
        self.assertEqual(decide["method"], "mem.decide")
        self.assertEqual(decide["params"]["price"], 3000.0)
        trade = Trade()
        bot.order_filled("ETH/USDT", trade, types.SimpleNamespace(ft_order_side="buy"), None)
        self.assertEqual(trade.get_custom_data("memd_decision_id"), decide["params"]["id"])
        self.assertEqual(self.memd.methods().count("hello"), 1, "one connection")

    def test_the_stake_stays_within_freqtrades_bounds(self):
        self.memd.size = 0.001
        self.assertEqual(Bot(self.path).stake(), 10.0, "the min stake")
        self.memd.size = 5.0
        self.assertEqual(Bot(self.path).stake(), 1000.0, "the max stake")

    def test_mem_refuses_an_entry_that_is_not_actionable(self):
        self.memd.actionable = False
        bot = Bot(self.path)
        with self.assertLogs("memd_mixin", level="INFO") as logs:
            stake, entered = bot.enter()
        self.assertEqual(stake, 100.0, "not sized: refused")
        self.assertFalse(entered)
        self.assertNotIn("mem.decide", self.memd.methods(), "a refused entry is no decision")
        self.assertTrue(any("MEM refused the entry on ETH/USDT" in m for m in logs.output), logs.output)

    def test_without_memd_the_bot_trades_on_and_says_so_once(self):
        self.memd.stop()
        bot = Bot(self.path)
        with self.assertLogs("memd_mixin", level="WARNING") as logs:
            for pair in ["ETH/USDT", "BTC/USDT", "ETH/USDT"]:
                bot._memd_retry_at = 0  # every candle asks again
                self.assertEqual(bot.enter(pair), (100.0, True))
        said = [m for m in logs.output if "memd did not answer" in m]
        self.assertEqual(len(said), 1, logs.output)
        self.assertIn("fail-open", said[0])

    def test_fail_closed_refuses_while_memd_does_not_answer(self):
        self.memd.stop()
        bot = Bot(self.path, fail_closed=True)
        with self.assertLogs("memd_mixin", level="WARNING") as logs:
            self.assertEqual(bot.enter(), (100.0, False))
        self.assertIn("refusing entries (fail-closed)", logs.output[0])

    def test_a_silent_memd_costs_the_deadline_once_then_nothing_for_a_while(self):
        self.memd.silent = True
        bot = Bot(self.path, timeout_ms=100)
        started = time.monotonic()
        self.assertEqual(bot.enter(), (100.0, True))
        took = time.monotonic() - started
        self.assertLess(took, 0.5, "one deadline, not one per callback")
        started = time.monotonic()
        self.assertEqual(bot.enter(), (100.0, True))
        self.assertLess(time.monotonic() - started, 0.05, "not asked again at once")

    def test_memd_restarted_is_reached_again_and_said_once(self):
        bot = Bot(self.path)
        bot.enter()
        self.memd.stop()
        self.memd = FakeMemd(self.path)
        with self.assertNoLogs("memd_mixin", level="WARNING"):
            self.assertEqual(bot.enter(), (50.0, True))
        self.memd.wait_for(3)
        self.assertEqual(self.memd.methods(), ["hello", "mem.enhance", "mem.decide"])

    def test_a_decision_memd_did_not_log_ties_no_trade(self):
        self.memd.decide_error = {"code": -32603, "message": "memory files: disk full"}
        bot = Bot(self.path)
        with self.assertLogs("memd_mixin", level="WARNING") as logs:
            self.assertEqual(bot.enter(), (50.0, True))
            trade = Trade()
            time.sleep(0.05)
            bot.order_filled("ETH/USDT", trade, types.SimpleNamespace(ft_order_side="buy"), None)
        self.assertIsNone(trade.get_custom_data("memd_decision_id"))
        self.assertTrue(any("disk full" in m for m in logs.output), logs.output)

    def test_an_entry_memd_decided_already_is_not_asked_again(self):
        bot = Bot(self.path)
        self.assertEqual(bot.enter(tag="tradingview"), (100.0, True))
        self.assertEqual(self.memd.requests, [])

    def test_backtesting_and_hyperopt_never_call_memd(self):
        for mode in ["backtest", "hyperopt", "plot"]:
            bot = Bot(self.path, runmode=mode)
            self.assertEqual(bot.enter(), (100.0, True))
        self.assertEqual(self.memd.requests, [])

    def test_a_config_without_a_memd_section_trades_on_its_own(self):
        bot = Bot(self.path)
        bot.config = {}
        with self.assertLogs("memd_mixin", level="WARNING"):
            self.assertEqual(bot.enter(), (100.0, True))
        self.assertEqual(self.memd.requests, [])


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    unittest.main()
