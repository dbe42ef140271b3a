//! `XP_TIMINGS=1` (the host's switch; plugins run in its process) also prints the steps of a
//! plugin, on stderr, as `xp-timing: plugin <label> <ms since the plugin's first mark>`.

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

pub fn mark(label: &str) {
    if let Some(start) = start() {
        eprintln!(
            "xp-timing: plugin {label} {:.3} ms",
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
}
