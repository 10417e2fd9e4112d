//! Runs every test function with its default optimisers and writes the
//! pictures and summaries, one folder per function, for checking by eye;
//! prints each function's convexity verdict and each run's ending:
//!
//! ```text
//! cargo run -p downhill-landscape --release --example tour -- OUT_DIR
//! ```

use downhill_landscape::convexity::{check_function, ConvexitySettings};
use downhill_landscape::functions::FUNCTIONS;
use downhill_landscape::paths::{run_paths, write_outputs, PathSettings};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "tour".into()));
    for name in FUNCTIONS {
        let report = check_function(name, None, &ConvexitySettings::default())?;
        println!("{name}: {}", report.verdict());
        let landscape = run_paths(&PathSettings {
            function: name.to_string(),
            ..Default::default()
        })?;
        for r in &landscape.runs {
            let target = r
                .target_step
                .map_or("not reached".to_string(), |k| format!("target at step {k}"));
            println!(
                "    {:<45} {:<16} {:<24} {}",
                r.optimizer,
                target,
                format!("{:?}", r.stop),
                r.ending.describe()
            );
        }
        write_outputs(&landscape, &out.join(name), true)?;
    }
    println!("wrote {}", out.display());
    Ok(())
}
