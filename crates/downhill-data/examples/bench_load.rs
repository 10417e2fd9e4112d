//! Times `load(SPEC)` and prints what was loaded:
//!
//! ```text
//! cargo run -p downhill-data --release --example bench_load -- SPEC [REPEATS]
//! ```
//!
//! e.g. `idx:/usr/share/datasets/fashion-mnist 5`. Prints each run's wall time,
//! the best and the median, the split sizes and the training set's statistics.

use downhill_data::{load, stats, LoadOptions};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(spec) = args.next() else {
        eprintln!("usage: bench_load SPEC [REPEATS]");
        std::process::exit(2);
    };
    let repeats: usize = match args.next().map(|r| r.parse()) {
        None => 3,
        Some(Ok(r)) if r > 0 => r,
        Some(_) => {
            eprintln!("bench_load: REPEATS must be a positive integer");
            std::process::exit(2);
        }
    };
    let mut times = Vec::with_capacity(repeats);
    let mut last = None;
    for _ in 0..repeats {
        let start = Instant::now();
        match load(&spec, &LoadOptions::default()) {
            Ok(split) => last = Some(split),
            Err(e) => {
                eprintln!("bench_load: {e}");
                std::process::exit(1);
            }
        }
        let t = start.elapsed().as_secs_f64();
        println!("load {spec}: {t:.3} s");
        times.push(t);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "best {:.3} s, median {:.3} s over {repeats} runs",
        times[0],
        times[times.len() / 2]
    );
    if let Some(split) = last {
        let sizes = |d: Option<&downhill_data::Dataset>| d.map_or(0, |d| d.len());
        println!(
            "train {} / valid {} / test {} examples, {} features, {} classes",
            split.train.len(),
            sizes(split.valid.as_ref()),
            sizes(split.test.as_ref()),
            split.train.dim(),
            split.train.classes()
        );
        let start = Instant::now();
        let s = stats(&split.train);
        println!(
            "stats in {:.3} s: density {:.4}, active features {}, gini {:.3}, top-1% share {:.3}, class balance {:.3}",
            start.elapsed().as_secs_f64(),
            s.density,
            s.active_features,
            s.gini,
            s.top1pct_share,
            s.class_balance
        );
    }
}
