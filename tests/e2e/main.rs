//! The end-to-end tests, one binary: each module starts the real `memd` (and `memctl`,
//! Freqtrade, tmux, ...) on temporary directories of its own, so their tests run side by
//! side on the test harness's threads. The few that need something of the machine's for
//! themselves take turns (`mem_e2e::seed::preferred_ports`). What they share is in the
//! `mem_e2e` library (tests/src).

mod adaptation;
mod alerts;
mod attach;
mod audit;
mod backtest;
mod backup;
mod clock;
mod crash;
mod daemon_cli;
mod dashboard;
mod deploy;
mod encryption;
mod faults;
mod fleet;
mod freqtrade_bots;
mod freqtrade_mock;
mod http;
mod http_schema;
mod jobs;
mod lifecycle;
mod manual;
mod market_refresh;
mod mem_bots;
mod memctl;
mod metrics;
mod model;
mod native;
mod newcomer;
mod package;
mod readme;
mod registry;
mod registry_postgres;
mod retention;
mod risk;
mod secrets;
mod socket;
mod systemd_units;
mod tradingview;
mod tui;
