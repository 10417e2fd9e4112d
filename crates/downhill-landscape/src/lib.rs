//! # downhill-landscape
//!
//! The learner's view of optimisation, behind `downhill landscape`:
//!
//! * [`paths`]: run several optimisers from one start on a 2-D test function
//!   (convex bowl, ravine, saddle, many minima), record every iterate, say
//!   where each ended (which minimum, stuck near or escaped from a saddle,
//!   diverged), and draw the paths over the contours, the loss per step and,
//!   optionally, an animation;
//! * [`convexity`]: test a function for convexity numerically (Jensen's
//!   inequality on random pairs, Hessian eigenvalues), with a counterexample
//!   when it is not convex;
//! * [`model`]: the loss landscape of a model trained by `downhill train`:
//!   the line from the initial to the trained weights, a 2-D slice along
//!   filter-normalised random directions, and convexity along lines.
//!
//! Each takes a plain settings struct and returns a result that serialises to
//! JSON; a `write_*` function draws the pictures and writes the summaries.
//!
//! ```no_run
//! use downhill_landscape::methods::parse_methods;
//! use downhill_landscape::paths::{run_paths, write_outputs, PathSettings};
//!
//! let settings = PathSettings {
//!     function: "saddle".into(),
//!     methods: parse_methods("sgd(lr=0.05),adam(lr=0.05)")?,
//!     steps: 300,
//!     ..Default::default()
//! };
//! let landscape = run_paths(&settings)?;
//! for run in &landscape.runs {
//!     println!("{}: {}", run.optimizer, run.ending.describe());
//! }
//! write_outputs(&landscape, "out/saddle".as_ref(), true)?;
//! # Ok::<(), downhill_landscape::LandscapeError>(())
//! ```
//!
//! ```
//! use downhill_landscape::convexity::{check_function, ConvexitySettings};
//! let report = check_function("rosenbrock", None, &ConvexitySettings::default())?;
//! assert!(!report.convex);
//! assert!(report.verdict().starts_with("not convex"));
//! # Ok::<(), downhill_landscape::LandscapeError>(())
//! ```

#![warn(missing_docs)]

pub mod convexity;
mod error;
pub mod functions;
pub mod methods;
pub mod model;
pub mod paths;

pub use error::{LandscapeError, Result};
