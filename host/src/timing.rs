//! `XP_TIMINGS=1` prints how long each phase of a command took, on stderr, for benchmarks and
//! for users wondering where time goes.

use std::sync::OnceLock;
use std::time::Instant;

fn start() -> Option<&'static Instant> {
    static START: OnceLock<Option<Instant>> = OnceLock::new();
    START
        .get_or_init(|| {
            std::env::var_os("XP_TIMINGS")
                .filter(|v| v != "0")
                .map(|_| Instant::now())
        })
        .as_ref()
}

/// Starts the clock (call first thing in `main`).
pub fn init() {
    let _ = start();
}

/// Prints `xp-timing: <label> <ms since start>` when timings are on.
pub fn mark(label: &str) {
    if let Some(start) = start() {
        eprintln!("xp-timing: {label} {:.3} ms", start.elapsed().as_secs_f64() * 1000.0);
    }
}
