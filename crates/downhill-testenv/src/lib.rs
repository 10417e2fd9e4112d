//! Test-only helpers shared by every crate's tests: the counting allocator
//! of the allocation tests ([`Counting`]), [`copy_dir`] for the tests that
//! resume a copy of a run, and what a test does when
//! something it needs from outside the repository
//! (Chromium for the report-rendering checks, the Fashion-MNIST data set in
//! `/usr/share/datasets/fashion-mnist`) is not installed.
//!
//! The policy, in one place for every crate's tests:
//!
//! * installed: the test runs;
//! * missing on a developer's machine: the test prints
//!   `SKIPPED: <test>: <what is missing>` straight to stderr, past the test
//!   harness's output capture so it shows in a plain `cargo test`, and
//!   returns without checking anything;
//! * missing with `CI=true` (or `CI=1`) in the environment: the test fails,
//!   because CI (`.ci/run`) installs both, and a skip there would hide a
//!   broken install.
//!
//! ```
//! # fn report_renders() {
//! if !downhill_testenv::require_path(
//!     "report_renders",
//!     "/usr/bin/chromium",
//!     "apt-get install chromium",
//! ) {
//!     return;
//! }
//! // … drive the browser …
//! # }
//! ```

use std::io::Write;
use std::path::Path;

/// What to do about a test's requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// It is there: run.
    Run,
    /// Missing outside CI: skip, printing this line.
    Skip(String),
    /// Missing under CI: fail with this message.
    Fail(String),
}

/// Whether an environment's `CI` value asks for missing requirements to fail.
pub fn is_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The policy without side effects: `test` needs something, `present` says
/// whether it is installed, `missing` says what is not (and how to install
/// it), `ci` is the environment's `CI` value.
pub fn decide(test: &str, present: bool, missing: &str, ci: Option<&str>) -> Decision {
    if present {
        Decision::Run
    } else if is_ci(ci) {
        Decision::Fail(format!(
            "{test}: {missing}; CI=true, and CI installs it, so this fails instead of skipping"
        ))
    } else {
        Decision::Skip(format!("SKIPPED: {test}: {missing}"))
    }
}

/// Applies the policy for the current environment: `true` when the test
/// should run; `false` after printing the `SKIPPED:` line; panics under CI.
pub fn require(test: &str, present: bool, missing: &str) -> bool {
    match decide(test, present, missing, std::env::var("CI").ok().as_deref()) {
        Decision::Run => true,
        Decision::Skip(line) => {
            // Written to the stream itself: the harness captures `eprintln!`
            // and shows it only for failing tests, which would hide the skip.
            let _ = writeln!(std::io::stderr().lock(), "{line}");
            false
        }
        Decision::Fail(message) => panic!("{message}"),
    }
}

/// [`require`] for a file or folder: runs when `path` exists; otherwise says
/// "`path` is missing (`install`)".
pub fn require_path(test: &str, path: impl AsRef<Path>, install: &str) -> bool {
    let path = path.as_ref();
    require(
        test,
        path.exists(),
        &format!("{} is missing ({install})", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_requirements_run_everywhere() {
        for ci in [None, Some("true"), Some("false")] {
            assert_eq!(decide("t", true, "x is missing", ci), Decision::Run);
        }
    }

    #[test]
    fn missing_requirements_skip_visibly_outside_ci() {
        for ci in [None, Some(""), Some("false"), Some("0")] {
            assert_eq!(
                decide("report_renders", false, "/usr/bin/chromium is missing", ci),
                Decision::Skip("SKIPPED: report_renders: /usr/bin/chromium is missing".into()),
                "CI={ci:?}"
            );
        }
    }

    #[test]
    fn missing_requirements_fail_under_ci() {
        for ci in ["true", "TRUE", "True", "1"] {
            let Decision::Fail(m) = decide("loads", false, "the data is missing", Some(ci)) else {
                panic!("CI={ci} must fail");
            };
            assert!(m.starts_with("loads: the data is missing"), "{m}");
            assert!(m.contains("CI=true"), "{m}");
        }
    }

    #[test]
    fn require_runs_what_is_there_and_paths_are_checked() {
        // Present requirements run whatever CI says, so this reads the real
        // environment without depending on it.
        assert!(require("t", true, "nothing"));
        assert!(require_path("t", env!("CARGO_MANIFEST_DIR"), "cargo"));
    }

    /// Missing under CI panics with the reason; otherwise the skip line
    /// reaches stderr even though the harness captures test output. Run in a
    /// child process so the environment of this one is left alone.
    #[test]
    fn require_panics_under_ci_and_skips_otherwise_in_a_real_process() {
        let me = std::env::current_exe().unwrap();
        let child = |ci: &str| {
            std::process::Command::new(&me)
                .args([
                    "--exact",
                    "tests::child_requires_a_missing_path",
                    "--ignored",
                ])
                .env("CI", ci)
                .output()
                .unwrap()
        };
        let failed = child("true");
        let err = String::from_utf8_lossy(&failed.stderr).to_string()
            + &String::from_utf8_lossy(&failed.stdout);
        assert!(!failed.status.success(), "{err}");
        assert!(
            err.contains("/nonexistent/downhill-testenv is missing (nothing to install)"),
            "{err}"
        );
        assert!(err.contains("CI=true"), "{err}");
        let skipped = child("false");
        let err = String::from_utf8_lossy(&skipped.stderr).to_string();
        assert!(skipped.status.success(), "{err}");
        assert!(
            err.contains(
                "SKIPPED: child: /nonexistent/downhill-testenv is missing (nothing to install)"
            ),
            "{err}"
        );
    }

    /// Driven by the test above, which sets `CI`; ignored in normal runs.
    #[test]
    #[ignore = "run by require_panics_under_ci_and_skips_otherwise_in_a_real_process"]
    fn child_requires_a_missing_path() {
        if !require_path(
            "child",
            "/nonexistent/downhill-testenv",
            "nothing to install",
        ) {
            return;
        }
        unreachable!("the path does not exist");
    }
}

/// A global allocator that counts allocations, for the tests that show a
/// training step allocates nothing once its buffers have grown. Install it
/// in a test crate with
/// `#[global_allocator] static GLOBAL: downhill_testenv::Counting = downhill_testenv::Counting;`,
/// then read [`allocations`] (every thread) or [`marked_allocations`] (only
/// the threads that called [`mark_thread`], e.g. a rayon pool's workers, so
/// that the test harness's own threads, which allocate when they please,
/// are not counted).
pub struct Counting;

static ALL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static MARKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    static IS_MARKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count() {
    use std::sync::atomic::Ordering;
    ALL.fetch_add(1, Ordering::Relaxed);
    // try_with: the allocator also runs while thread-locals are torn down.
    if IS_MARKED.try_with(|m| m.get()).unwrap_or(false) {
        MARKED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Allocations (and reallocations) so far, on every thread.
pub fn allocations() -> usize {
    ALL.load(std::sync::atomic::Ordering::SeqCst)
}

/// Allocations so far on threads that called [`mark_thread`].
pub fn marked_allocations() -> usize {
    MARKED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Counts this thread's allocations in [`marked_allocations`] from now on
/// (for a rayon pool: `ThreadPoolBuilder::start_handler(|_| mark_thread())`).
pub fn mark_thread() {
    IS_MARKED.with(|m| m.set(true));
}

// SAFETY: every method forwards its arguments unchanged to `System`, which
// meets `GlobalAlloc`'s contract, so `Counting` meets it too: the memory it
// returns and frees is `System`'s, with `System`'s layouts. Counting touches
// atomics and a `const`-initialised thread-local only; it neither allocates
// nor unwinds.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        count();
        // SAFETY: the caller guarantees `alloc`'s contract (a layout of
        // non-zero size), which holds for `System.alloc` with the same layout.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: the caller guarantees `ptr` was allocated by this allocator
        // with `layout`; every allocation of this allocator is `System`'s.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        count();
        // SAFETY: as in `dealloc`, `ptr` is `System`'s block of `layout`; the
        // caller guarantees `new` is non-zero and valid for `layout`'s
        // alignment, as `System.realloc` requires.
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

/// Copies the folder `from` into `to` (created), recursively: how a test
/// keeps a run as it was before resuming or damaging it. Panics on any error.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}
