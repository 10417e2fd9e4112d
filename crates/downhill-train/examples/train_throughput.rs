//! Training throughput of the real training loop (batch gathering, forward,
//! backward, gradient norm, Adam step) and the process's peak memory.
//!
//! ```text
//! cargo run --release -p downhill-train --example train_throughput -- MODEL [EXAMPLES] [EPOCHS] [BATCH]
//! ```
//!
//! MODEL is a downhill-nn spec (`logreg`, `mlp:1000,1000`,
//! `cnn:32,32,64:pool=2`). The data are random 1×28×28 images with 10
//! classes, so that only the computation is measured. Prints one JSON line:
//! the best epoch's samples per second and the peak resident set size
//! (VmHWM). `bench/train_vs_torch.py` runs this beside PyTorch.

use downhill_data::{DataSplit, Dataset, Dense, Features, ImageShape};
use downhill_train::{Silent, TrainConfig, Trainer};

fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = args
        .first()
        .cloned()
        .unwrap_or_else(|| "mlp:1000,1000".into());
    let n: usize = args.get(1).map_or(12_800, |s| s.parse().expect("EXAMPLES"));
    let epochs: usize = args.get(2).map_or(3, |s| s.parse().expect("EPOCHS"));
    let batch: usize = args.get(3).map_or(128, |s| s.parse().expect("BATCH"));
    let mut rng = downhill::Rng::new(1);
    let values: Vec<f32> = (0..n * 784).map(|_| rng.uniform_f32()).collect();
    let labels: Vec<u32> = (0..n).map(|_| rng.below(10) as u32).collect();
    let names: Vec<String> = (0..10).map(|c| c.to_string()).collect();
    let train = Dataset::new(
        "random",
        Features::Dense(Dense::new(values, 784).expect("dense")),
        labels,
        names,
    )
    .expect("dataset")
    .with_image(ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    })
    .expect("image shape");
    let data = DataSplit {
        train,
        valid: None,
        test: None,
    };
    let cfg = TrainConfig {
        data: "random".into(),
        model: model.clone(),
        optimizer: "adam(lr=0.001)".into(),
        batch_size: batch,
        epochs,
        ..TrainConfig::default()
    };
    let mut t = match Trainer::with_data(cfg, data, None) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    t.run(&mut Silent).expect("training runs");
    let best = t
        .history()
        .iter()
        .map(|r| r.samples_per_sec)
        .fold(0.0, f64::max);
    println!(
        "{{\"framework\":\"downhill\",\"model\":\"{model}\",\"batch\":{batch},\"threads\":{},\"samples_per_sec\":{best:.1},\"peak_rss_bytes\":{}}}",
        t.config().threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        peak_rss_bytes()
    );
}
