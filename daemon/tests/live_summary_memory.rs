//! Regression test: the live-trading summary that memd writes into a strategy's metadata
//! every 2 s must not allocate memory as large as the strategy's trade log.
//!
//! It did (a copy of every trade point, taken to compute outside the log's lock): an
//! allocation that grew with every trade recorded, every 2 s, which the 30-minute soak
//! showed as resident memory rising while a strategy traded (malloc's heap grew around
//! ever larger blocks). A counting allocator records the largest single allocation made
//! on this thread during `flush_live_summaries` over 50,000 trades.

use chrono::{Duration, TimeZone, Utc};
use mem_e2e::trades::closed_trade;
use mem_protocol::registry::{RecordTradesParams, TradeRecord};
use memd::bus::EventBus;
use memd::registry::{Caller, Registry};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
}
static LARGEST: AtomicUsize = AtomicUsize::new(0);

fn note(size: usize) {
    if WATCHING.with(Cell::get) {
        LARGEST.fetch_max(size, Ordering::Relaxed);
    }
}

#[allow(unsafe_code)] // a counting allocator must implement the unsafe trait
// SAFETY: every call is passed on to the system allocator unchanged; the bookkeeping
// only reads a const-initialized thread-local and updates an atomic (no allocation).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const TRADES: usize = 50_000;
const BATCH: usize = 10_000;

/// Closed trades in exit order, one a minute, as a bot records them while they close.
fn trade(n: usize) -> TradeRecord {
    let exit_time =
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(n as i64);
    let pnl_pct = if n % 5 < 3 { 0.004 } else { -0.003 };
    closed_trade(format!("t-{n:07}"))
        .entry_price(40_000.0)
        .returning(pnl_pct)
        .held(Duration::minutes(30))
        .closed_at(exit_time)
        .build()
}

#[test]
fn the_live_summary_allocates_nothing_as_large_as_the_trade_log() {
    let dir = tempfile::tempdir().unwrap();
    memd::datadir::seed_registry(dir.path()).unwrap();
    let registry = Registry::open(dir.path(), Arc::new(EventBus::new(64))).unwrap();
    let id = registry.summaries()[0].id;
    for from in (0..TRADES).step_by(BATCH) {
        let trades = (from..from + BATCH).map(trade).collect();
        let recorded = registry
            .record_trades(RecordTradesParams { id, trades }, &Caller::default())
            .unwrap();
        assert_eq!(recorded.recorded, BATCH);
    }

    LARGEST.store(0, Ordering::Relaxed);
    WATCHING.with(|w| w.set(true));
    registry.flush_live_summaries();
    WATCHING.with(|w| w.set(false));
    let largest = LARGEST.load(Ordering::Relaxed);

    // The summary was written, from every trade.
    let live = registry
        .get(id)
        .unwrap()
        .metadata
        .strategy
        .performance
        .live_trading
        .clone();
    assert_eq!(live.total_trades, TRADES as u64);
    assert!(live.live_sharpe.is_some());
    // The trade points alone are 40 bytes each, 2 MB here; the metadata document and
    // its file are some kilobytes.
    let points_bytes = TRADES * 40;
    assert!(
        largest < 64 * 1024,
        "flush_live_summaries allocated a block of {largest} bytes at once \
         (the trade points are {points_bytes} bytes)"
    );
}
