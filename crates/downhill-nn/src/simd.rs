//! Run-time selection of SIMD width for the engine's element-wise loops.
//!
//! Committed builds target baseline x86-64 (SSE2), so loops compile to 4-wide
//! vectors at best. [`with_simd`] runs a closure inside a function compiled for
//! AVX-512 or AVX2+FMA when the CPU has them; because the closure and the loops it
//! calls are `#[inline(always)]`, their bodies are compiled for that target too.

/// Runs `f` with the widest vector instructions this CPU supports.
#[inline(always)]
pub(crate) fn with_simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            // SAFETY: the features the function is compiled for were detected.
            return unsafe { v4(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            return unsafe { v3(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
unsafe fn v4<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
unsafe fn v3<R>(f: impl FnOnce() -> R) -> R {
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
}
