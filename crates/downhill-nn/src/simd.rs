//! Run-time selection of SIMD width for the engine's element-wise loops.
//!
//! Committed builds target baseline x86-64 (SSE2), so loops compile to 4-wide
//! vectors at best. [`with_simd`] runs a closure inside a function compiled for
//! AVX-512 or AVX2+FMA when the CPU has them; because the closure and the loops it
//! calls are `#[inline(always)]`, their bodies are compiled for that target too.
//!
//! Each level is written once, as a list of features, by `simd_level!`: the
//! same list enables the features on the level's function (`#[target_feature]`)
//! and is what the level's detection function checks at run time, so nothing
//! can be enabled without being detected. The lists spell out every feature
//! the compiler implies from the others (`avx512f` implies `f16c`, `avx2`
//! implies `avx` and the SSE levels, …); a test asks `rustc` for those
//! implications and checks that the lists are closed under them.

/// Defines one SIMD level from its feature list: `$FEATURES`, the list; `$has`,
/// whether the running CPU has every feature in it; and `$run`, which calls a
/// closure inside a function compiled with every feature in it enabled.
macro_rules! simd_level {
    ($FEATURES:ident, $has:ident, $run:ident, [$($f:tt),+ $(,)?]) => {
        /// The target features of this level, enabled on its function and
        /// detected by its check (one list for both).
        #[cfg(target_arch = "x86_64")]
        #[cfg_attr(not(test), allow(dead_code))] // read by the tests
        const $FEATURES: &[&str] = &[$($f),+];

        /// Whether this CPU (and OS) supports every feature of this level.
        #[cfg(target_arch = "x86_64")]
        fn $has() -> bool {
            true $(&& std::arch::is_x86_feature_detected!($f))+
        }

        /// Calls `f` inside a function compiled with this level's features.
        ///
        /// # Safety
        /// The CPU must support every feature of this level: call it only
        /// when the level's detection function returned `true`.
        #[cfg(target_arch = "x86_64")]
        $(#[target_feature(enable = $f)])+
        unsafe fn $run<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
    };
}

// x86-64-v4's AVX-512 subset the loops use, and everything the compiler
// implies from it.
simd_level!(
    V4_FEATURES,
    has_v4,
    v4,
    [
        "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx2", "avx", "fma", "f16c", "bmi1",
        "bmi2", "lzcnt", "popcnt", "sse4.2", "sse4.1", "ssse3", "sse3",
    ]
);

// AVX2 + FMA (most of x86-64-v3), and everything the compiler implies from it.
simd_level!(
    V3_FEATURES,
    has_v3,
    v3,
    [
        "avx2", "avx", "fma", "bmi1", "bmi2", "lzcnt", "popcnt", "sse4.2", "sse4.1", "ssse3",
        "sse3",
    ]
);

/// Runs `f` with the widest vector instructions this CPU supports, under
/// [`downhill::simd::cap`] (every level gives the same bits).
#[inline(always)]
pub(crate) fn with_simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        use downhill::simd::{allows, Level};
        if allows(Level::Avx512) && has_v4() {
            // SAFETY: `has_v4` detected every feature `v4` is compiled with
            // (both come from the one list `V4_FEATURES`).
            return unsafe { v4(f) };
        }
        if allows(Level::Avx2) && has_v3() {
            // SAFETY: `has_v3` detected every feature `v3` is compiled with
            // (both come from the one list `V3_FEATURES`).
            return unsafe { v3(f) };
        }
    }
    f()
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_the_closure_once_and_returns_its_value() {
        let mut calls = 0;
        let v = super::with_simd(|| {
            calls += 1;
            (0..100u32).map(|x| x * x).sum::<u32>()
        });
        assert_eq!((v, calls), (328_350, 1));
    }

    /// The target features `rustc` turns on for `-C target-feature=+a,+b,…`
    /// (the listed ones, what they imply, and the baseline).
    #[cfg(target_arch = "x86_64")]
    fn rustc_features(enable: &[&str]) -> std::collections::BTreeSet<String> {
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let mut cmd = std::process::Command::new(&rustc);
        cmd.args(["--print", "cfg"]);
        if !enable.is_empty() {
            let flags: Vec<String> = enable.iter().map(|f| format!("+{f}")).collect();
            cmd.arg("-C")
                .arg(format!("target-feature={}", flags.join(",")));
        }
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("running `{rustc} --print cfg`: {e}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("target_feature=\""))
            .map(|f| f.trim_end_matches('"').to_string())
            .collect()
    }

    /// Enabling a feature enables what it implies (`avx512f` → `f16c`, `fma`
    /// → `avx`, …), and the compiler may then use those instructions too. So
    /// each level's list (which is also what is detected) must hold every
    /// feature the compiler enables for it, beyond the baseline every x86-64
    /// has.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn each_level_detects_every_feature_it_enables_including_implied_ones() {
        let baseline = rustc_features(&[]);
        for (name, list) in [("v4", super::V4_FEATURES), ("v3", super::V3_FEATURES)] {
            let enabled = rustc_features(list);
            let missing: Vec<&String> = enabled
                .iter()
                .filter(|f| !baseline.contains(*f) && !list.contains(&f.as_str()))
                .collect();
            assert!(
                missing.is_empty(),
                "{name} enables {missing:?} without detecting it"
            );
            for f in list {
                assert!(enabled.contains(*f), "{name}: rustc does not know {f}");
            }
        }
    }
}
