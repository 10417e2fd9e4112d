//! Lazy against dense updates on sparse data: the same runs (data, model,
//! optimizer, seed) with `sparse_updates = lazy` and `= dense`, side by side.
//!
//! ```text
//! cargo run --release -p downhill-train --example sparse_updates -- libsvm:TRAIN,TEST \
//!     [--model logreg] [--optimizers "adam(lr=0.01);adagrad(lr=0.1);sgd(lr=1)"] \
//!     [--epochs 5] [--batch-size 128] [--repeats 3] [--threads 2] [--seed 1]
//! ```
//!
//! Optimizer specs are separated by `;`. Each repeat runs every optimizer
//! lazy then dense, one right after the other, so that the ratio of the two
//! is measured on a machine in the same state. Prints, per optimizer and mode,
//! the training throughput of every repeat (samples per second of training
//! time: the trainer's clock, without the per-epoch evaluation), its range,
//! the lazy/dense ratio of every repeat, and the final test accuracy and loss
//! (the same in every repeat: runs are deterministic). The data set can come
//! from `make_sparse_text` (`cargo run -p downhill-data --release --example
//! make_sparse_text -- DIR`).

use downhill_train::{Silent, SparseUpdates, TrainConfig, Trainer};

struct Args {
    data: String,
    model: String,
    optimizers: Vec<String>,
    epochs: usize,
    batch_size: usize,
    repeats: usize,
    threads: usize,
    seed: u64,
}

fn usage(why: &str) -> ! {
    eprintln!("sparse_updates: {why}");
    eprintln!(
        "usage: sparse_updates libsvm:TRAIN,TEST [--model M] [--optimizers \"A;B\"] [--epochs N] \
         [--batch-size N] [--repeats N] [--threads N] [--seed N]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut a = Args {
        data: String::new(),
        model: "logreg".into(),
        optimizers: vec![
            "adam(lr=0.01)".into(),
            "adagrad(lr=0.1)".into(),
            "sgd(lr=1)".into(),
        ],
        epochs: 5,
        batch_size: 128,
        repeats: 3,
        threads: 2,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    let mut data = None;
    while let Some(arg) = it.next() {
        if !arg.starts_with("--") {
            if data.replace(arg).is_some() {
                usage("one data spec only");
            }
            continue;
        }
        let Some(v) = it.next() else {
            usage(&format!("{arg} needs a value"))
        };
        fn num<T: std::str::FromStr>(flag: &str, v: &str) -> T {
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{flag}: `{v}` is not a valid number")))
        }
        match arg.as_str() {
            "--model" => a.model = v,
            "--optimizers" => a.optimizers = v.split(';').map(|s| s.trim().to_string()).collect(),
            "--epochs" => a.epochs = num(&arg, &v),
            "--batch-size" => a.batch_size = num(&arg, &v),
            "--repeats" => a.repeats = num(&arg, &v),
            "--threads" => a.threads = num(&arg, &v),
            "--seed" => a.seed = num(&arg, &v),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    a.data = data.unwrap_or_else(|| usage("the data spec is missing"));
    if a.repeats == 0 || a.epochs == 0 || a.threads == 0 {
        usage("--repeats, --epochs and --threads must be at least 1");
    }
    a
}

/// One run's outcome.
struct Outcome {
    samples_per_sec: f64,
    test_accuracy: f64,
    test_loss: f64,
    why: String,
}

fn run(a: &Args, optimizer: &str, mode: SparseUpdates, data: &downhill_data::DataSplit) -> Outcome {
    let cfg = TrainConfig {
        data: a.data.clone(),
        model: a.model.clone(),
        optimizer: optimizer.into(),
        batch_size: a.batch_size,
        epochs: a.epochs,
        seed: a.seed,
        threads: Some(a.threads),
        sparse_updates: mode,
        ..TrainConfig::default()
    };
    let mut t = Trainer::with_data(cfg, data.clone(), None).unwrap_or_else(|e| {
        eprintln!("sparse_updates: {optimizer}: {e}");
        std::process::exit(1)
    });
    let why = t.updates().to_string();
    let s = t.run(&mut Silent).unwrap_or_else(|e| {
        eprintln!("sparse_updates: {optimizer}: {e}");
        std::process::exit(1)
    });
    let n = t.data_info().train as f64;
    let train_seconds: f64 = t.history().iter().map(|r| n / r.samples_per_sec).sum();
    let last = s.last.expect("at least one epoch");
    Outcome {
        samples_per_sec: n * t.history().len() as f64 / train_seconds,
        test_accuracy: last.test_accuracy.unwrap_or(f64::NAN),
        test_loss: last.test_loss.unwrap_or(f64::NAN),
        why,
    }
}

/// `lo–hi` of `xs`, each written by `f`.
fn range(xs: &[f64], f: impl Fn(f64) -> String) -> String {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{}–{}", f(lo), f(hi))
}

fn main() {
    let a = parse_args();
    let opts = downhill_data::LoadOptions::default();
    let data = downhill_data::load(&a.data, &opts).unwrap_or_else(|e| {
        eprintln!("sparse_updates: {e}");
        std::process::exit(1)
    });
    let csr = match data.train.features() {
        downhill_data::Features::Sparse(c) => c,
        downhill_data::Features::Dense(_) => {
            usage("the data are dense; lazy updates need sparse data")
        }
    };
    let nnz = csr.nnz();
    // Distinct features (the rows of fc1.weight a lazy step updates) per
    // batch, over the first epoch's batches.
    let n = data.train.len();
    let bs = if a.batch_size == 0 {
        n
    } else {
        a.batch_size.min(n)
    };
    let mut seen = vec![false; data.train.dim()];
    let mut touched = 0usize;
    for batch in downhill_train::epoch_order(a.seed, 0, n).chunks(bs) {
        let mut rows: Vec<u32> = batch
            .iter()
            .flat_map(|&r| csr.row(r).unwrap().0.to_vec())
            .collect();
        rows.retain(|&j| !std::mem::replace(&mut seen[j as usize], true));
        touched += rows.len();
        for j in rows {
            seen[j as usize] = false;
        }
    }
    println!(
        "{}: {} train, {} test, {} features, {:.1} non-zeros a row (density {:.4}%), {:.0} distinct features a batch; model {}, batch {}, {} epochs, seed {}, {} threads",
        a.data,
        data.train.len(),
        data.test.as_ref().map_or(0, |d| d.len()),
        data.train.dim(),
        nnz as f64 / n as f64,
        100.0 * nnz as f64 / (n as f64 * data.train.dim() as f64),
        touched as f64 / n.div_ceil(bs) as f64,
        a.model,
        a.batch_size,
        a.epochs,
        a.seed,
        a.threads
    );
    for optimizer in &a.optimizers {
        let mut results: [Vec<Outcome>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..a.repeats {
            for (k, mode) in [SparseUpdates::Lazy, SparseUpdates::Dense]
                .into_iter()
                .enumerate()
            {
                results[k].push(run(&a, optimizer, mode, &data));
            }
        }
        println!("{optimizer}");
        for (k, name) in ["lazy", "dense"].into_iter().enumerate() {
            let r = &results[k];
            let sps: Vec<f64> = r.iter().map(|o| o.samples_per_sec).collect();
            let accs: Vec<f64> = r.iter().map(|o| o.test_accuracy).collect();
            let same = accs.iter().all(|&x| x == accs[0]);
            println!(
                "  {name:<5}  samples/s {} (range {})  test accuracy {}  test loss {:.4}  [{}]",
                sps.iter()
                    .map(|s| format!("{:.0}k", s / 1e3))
                    .collect::<Vec<_>>()
                    .join(", "),
                range(&sps, |s| format!("{:.0}k", s / 1e3)),
                if same {
                    format!("{:.2}%", 100.0 * accs[0])
                } else {
                    format!("{accs:?} (differs between repeats!)")
                },
                r[0].test_loss,
                r[0].why
            );
        }
        let ratios: Vec<f64> = results[0]
            .iter()
            .zip(&results[1])
            .map(|(l, d)| l.samples_per_sec / d.samples_per_sec)
            .collect();
        println!(
            "  lazy/dense throughput: {} (range {})",
            ratios
                .iter()
                .map(|r| format!("{r:.2}x"))
                .collect::<Vec<_>>()
                .join(", "),
            range(&ratios, |r| format!("{r:.2}x"))
        );
    }
}
