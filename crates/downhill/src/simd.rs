//! Which vector instructions downhill's own loops may use.
//!
//! The element-wise loops (the optimisers' fused passes, the training
//! engine's activations and pooling) are compiled several times, for
//! AVX-512, for AVX2 and for baseline x86-64, and the widest the CPU has is
//! picked at run time. Every copy runs the same IEEE operations in the same
//! order (Rust never contracts `a * b + c` into a fused multiply-add), so
//! the copies give the same bits and only their speed differs.
//! `tests/simd_levels.rs` holds them to it by running each level in turn.
//!
//! The level can be capped, to check that claim or to measure a narrower
//! machine: set `DOWNHILL_SIMD` to `avx512`, `avx2` or `baseline` before the
//! process starts, or call [`set_cap`]. A cap never enables what the CPU
//! lacks. The matrix products (`linalg`) are outside this: the `gemm` crate
//! picks its own kernels from the CPU.

use std::sync::atomic::{AtomicU8, Ordering};

/// A vector-instruction level, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Baseline x86-64 (SSE2), or any other architecture.
    Baseline = 0,
    /// AVX2 (with FMA and what the compiler implies from them).
    Avx2 = 1,
    /// AVX-512 (F, and on the engine's loops BW, VL and DQ).
    Avx512 = 2,
}

impl Level {
    /// Every level, narrowest first.
    pub const ALL: [Level; 3] = [Level::Baseline, Level::Avx2, Level::Avx512];

    /// The name `DOWNHILL_SIMD` takes.
    pub fn name(self) -> &'static str {
        match self {
            Level::Baseline => "baseline",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// Parses a name `DOWNHILL_SIMD` takes.
    pub fn parse(name: &str) -> Option<Level> {
        Level::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// The cap: a [`Level`] as `u8`, or [`UNREAD`] before `DOWNHILL_SIMD` is read.
static CAP: AtomicU8 = AtomicU8::new(UNREAD);
const UNREAD: u8 = u8::MAX;

/// The widest level downhill's loops may use (they also need the CPU to
/// have it): `DOWNHILL_SIMD`, or the last [`set_cap`], or
/// [`Level::Avx512`]. An unknown `DOWNHILL_SIMD` is reported once on
/// standard error and ignored.
pub fn cap() -> Level {
    match CAP.load(Ordering::Relaxed) {
        UNREAD => {
            let level = match std::env::var("DOWNHILL_SIMD") {
                Ok(v) => Level::parse(&v).unwrap_or_else(|| {
                    eprintln!(
                        "warning: DOWNHILL_SIMD={v:?} is not avx512, avx2 or baseline; ignored"
                    );
                    Level::Avx512
                }),
                Err(_) => Level::Avx512,
            };
            // Another thread may have read it too: same value, or a
            // `set_cap` that came first, which then wins.
            let _ = CAP.compare_exchange(UNREAD, level as u8, Ordering::Relaxed, Ordering::Relaxed);
            from_u8(CAP.load(Ordering::Relaxed))
        }
        v => from_u8(v),
    }
}

fn from_u8(v: u8) -> Level {
    Level::ALL[usize::from(v).min(2)]
}

/// Caps the level for the rest of the process (or until the next call),
/// overriding `DOWNHILL_SIMD`. Results do not change, only speed; tests use
/// it to compare the levels' bits.
pub fn set_cap(level: Level) {
    CAP.store(level as u8, Ordering::Relaxed);
}

/// Whether loops may use `level`, as far as the cap goes (the caller still
/// checks the CPU).
#[inline(always)]
pub fn allows(level: Level) -> bool {
    cap() >= level
}

/// The level the core's loops run at on this CPU under the cap: AVX-512
/// when the cap allows it and the CPU has AVX-512F, AVX2 likewise, else the
/// baseline. (The engine's loops, in `downhill-nn`, check more features.)
#[inline]
pub fn active() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if allows(Level::Avx512) && std::arch::is_x86_feature_detected!("avx512f") {
            return Level::Avx512;
        }
        if allows(Level::Avx2) && std::arch::is_x86_feature_detected!("avx2") {
            return Level::Avx2;
        }
    }
    Level::Baseline
}

#[cfg(test)]
mod tests {
    use super::Level;

    #[test]
    fn names_round_trip_and_order_runs_narrow_to_wide() {
        for l in Level::ALL {
            assert_eq!(Level::parse(l.name()), Some(l));
        }
        assert_eq!(Level::parse(" AVX2 "), Some(Level::Avx2));
        assert_eq!(Level::parse("sse9"), None);
        assert!(Level::Baseline < Level::Avx2 && Level::Avx2 < Level::Avx512);
    }
}
