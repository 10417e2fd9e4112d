//! Writes a synthetic sparse text-classification set in LIBSVM format, for
//! benchmarks where no real one can be downloaded:
//!
//! ```text
//! cargo run -p downhill-data --release --example make_sparse_text -- OUT_DIR \
//!     [--features 100000] [--train 50000] [--test 10000] [--classes 2] \
//!     [--length 80] [--zipf 1.05] [--informative 0.2] [--signal 8] [--seed 1]
//! ```
//!
//! It writes `OUT_DIR/train.svm` and `OUT_DIR/test.svm` and prints their
//! statistics. The set imitates a bag of words:
//!
//! * Word frequencies follow Zipf's law: the word of frequency rank `r`
//!   (the most frequent is rank 1) is drawn with probability ∝ `1 / r^zipf`;
//!   ranks map to feature indices through a fixed random permutation.
//! * A document has a log-normal number of tokens (median `--length`, clamped
//!   to 5..=1000) drawn independently; its features are the distinct words,
//!   valued `1 + ln(count)` (sublinear term frequency) and scaled to unit L2
//!   norm, as a tf-idf pipeline would.
//! * The label comes from a planted linear rule: a fraction `--informative`
//!   of the words, spread evenly over the frequency ranks (so rare words carry
//!   signal too), has a weight per class drawn from N(0, 1); the label is
//!   `argmax_k (signal · (w_k · x − b_k) + Gumbel noise)`, where `b_k` centres
//!   class `k`'s score on a pilot sample (so classes are about balanced). The
//!   Bayes-optimal classifier is linear, and the noise caps the reachable
//!   accuracy.
//!
//! The same arguments always write the same files.

use downhill::Rng;
use std::io::Write;
use std::path::PathBuf;

struct Args {
    out: PathBuf,
    features: usize,
    train: usize,
    test: usize,
    classes: usize,
    length: f64,
    zipf: f64,
    informative: f64,
    signal: f64,
    seed: u64,
}

fn usage(why: &str) -> ! {
    eprintln!("make_sparse_text: {why}");
    eprintln!(
        "usage: make_sparse_text OUT_DIR [--features N] [--train N] [--test N] [--classes K] \
         [--length L] [--zipf S] [--informative F] [--signal A] [--seed N]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut a = Args {
        out: PathBuf::new(),
        features: 100_000,
        train: 50_000,
        test: 10_000,
        classes: 2,
        length: 80.0,
        zipf: 1.05,
        informative: 0.2,
        signal: 8.0,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    let mut out = None;
    while let Some(arg) = it.next() {
        if !arg.starts_with("--") {
            if out.replace(PathBuf::from(&arg)).is_some() {
                usage("one OUT_DIR only");
            }
            continue;
        }
        let Some(value) = it.next() else {
            usage(&format!("{arg} needs a value"))
        };
        fn num<T: std::str::FromStr>(flag: &str, v: &str) -> T {
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{flag}: `{v}` is not a valid number")))
        }
        match arg.as_str() {
            "--features" => a.features = num(&arg, &value),
            "--train" => a.train = num(&arg, &value),
            "--test" => a.test = num(&arg, &value),
            "--classes" => a.classes = num(&arg, &value),
            "--length" => a.length = num(&arg, &value),
            "--zipf" => a.zipf = num(&arg, &value),
            "--informative" => a.informative = num(&arg, &value),
            "--signal" => a.signal = num(&arg, &value),
            "--seed" => a.seed = num(&arg, &value),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    a.out = out.unwrap_or_else(|| usage("OUT_DIR is missing"));
    if a.features < 2 || a.features > u32::MAX as usize {
        usage("--features must be in 2..=4294967295");
    }
    if a.classes < 2 || a.train == 0 || a.test == 0 {
        usage("--classes must be at least 2, --train and --test at least 1");
    }
    if !(a.length >= 1.0 && a.zipf > 0.0 && (0.0..=1.0).contains(&a.informative)) {
        usage("--length must be >= 1, --zipf > 0, --informative in [0, 1]");
    }
    if !(a.signal.is_finite() && a.signal >= 0.0) {
        usage("--signal must be a finite number >= 0");
    }
    a
}

/// The fixed parts of the generating process.
struct Model {
    /// Cumulative probabilities of the frequency ranks.
    cdf: Vec<f64>,
    /// Feature index (0-based) of each rank.
    feature_of_rank: Vec<u32>,
    /// Per-feature class weights, `[features, classes]` (zero for most).
    weights: Vec<f64>,
    /// Per-class offsets that centre the scores, so classes come out balanced.
    bias: Vec<f64>,
    classes: usize,
    signal: f64,
    length: f64,
}

impl Model {
    fn new(a: &Args, rng: &mut Rng) -> Model {
        let mut cdf = Vec::with_capacity(a.features);
        let mut total = 0.0;
        for r in 1..=a.features {
            total += (r as f64).powf(-a.zipf);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        let mut feature_of_rank: Vec<u32> = (0..a.features as u32).collect();
        rng.shuffle(&mut feature_of_rank);
        // Every k-th rank is informative: the signal spans all frequencies.
        let every = if a.informative > 0.0 {
            (1.0 / a.informative).round().max(1.0) as usize
        } else {
            usize::MAX
        };
        let mut weights = vec![0.0; a.features * a.classes];
        for (rank, &f) in feature_of_rank.iter().enumerate() {
            if rank % every == 0 {
                for k in 0..a.classes {
                    weights[f as usize * a.classes + k] = rng.normal();
                }
            }
        }
        let mut m = Model {
            cdf,
            feature_of_rank,
            weights,
            bias: vec![0.0; a.classes],
            classes: a.classes,
            signal: a.signal,
            length: a.length,
        };
        // Frequent informative words occur in most documents and would favour
        // one class throughout: centre each class's score on a pilot sample.
        let (mut words, mut row, mut sum) = (Vec::new(), Vec::new(), vec![0.0; a.classes]);
        let mut pilot = rng.fork(3);
        const PILOT: usize = 2000;
        for _ in 0..PILOT {
            m.tokens(&mut pilot, &mut words, &mut row);
            for (k, s) in sum.iter_mut().enumerate() {
                *s += m.score(&row, k) / PILOT as f64;
            }
        }
        m.bias = sum;
        m
    }

    /// Draws a document's words into `row` as sorted (feature, value) pairs.
    fn tokens(&self, rng: &mut Rng, words: &mut Vec<u32>, row: &mut Vec<(u32, f64)>) {
        let tokens = (self.length * (0.5 * rng.normal()).exp())
            .round()
            .clamp(5.0, 1000.0) as usize;
        words.clear();
        for _ in 0..tokens {
            let u = rng.uniform();
            let rank = self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1);
            words.push(self.feature_of_rank[rank]);
        }
        words.sort_unstable();
        row.clear();
        for w in words.chunk_by(|a, b| a == b) {
            row.push((w[0], 1.0 + (w.len() as f64).ln()));
        }
        let norm = row.iter().map(|(_, v)| v * v).sum::<f64>().sqrt();
        for (_, v) in row.iter_mut() {
            *v /= norm;
        }
    }

    /// Class `k`'s score `w_k · x − b_k`.
    fn score(&self, row: &[(u32, f64)], k: usize) -> f64 {
        row.iter()
            .map(|&(f, v)| self.weights[f as usize * self.classes + k] * v)
            .sum::<f64>()
            - self.bias[k]
    }

    /// One document: its label and its sorted (feature, value) pairs.
    fn document(&self, rng: &mut Rng, words: &mut Vec<u32>, row: &mut Vec<(u32, f64)>) -> usize {
        self.tokens(rng, words, row);
        let mut best = (f64::NEG_INFINITY, 0);
        for k in 0..self.classes {
            let score = self.score(row, k);
            let gumbel = -(-rng.uniform().max(1e-300).ln()).ln();
            let s = self.signal * score + gumbel;
            if s > best.0 {
                best = (s, k);
            }
        }
        best.1
    }
}

/// Writes `n` documents; returns (non-zeros, distinct features used, label counts).
fn write_split(
    model: &Model,
    rng: &mut Rng,
    n: usize,
    path: &std::path::Path,
) -> std::io::Result<(usize, usize, Vec<usize>)> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let (mut words, mut row) = (Vec::new(), Vec::new());
    let mut seen = vec![false; model.feature_of_rank.len()];
    let mut nnz = 0;
    let mut counts = vec![0; model.classes];
    for _ in 0..n {
        let label = model.document(rng, &mut words, &mut row);
        counts[label] += 1;
        write!(out, "{label}")?;
        for &(f, v) in &row {
            write!(out, " {}:{v:.5}", f + 1)?;
            seen[f as usize] = true;
        }
        writeln!(out)?;
        nnz += row.len();
    }
    out.flush()?;
    Ok((nnz, seen.iter().filter(|&&s| s).count(), counts))
}

fn main() {
    let a = parse_args();
    if let Err(e) = std::fs::create_dir_all(&a.out) {
        usage(&format!("{}: {e}", a.out.display()));
    }
    let mut rng = Rng::new(a.seed);
    let model = Model::new(&a, &mut rng);
    for (name, n, stream) in [("train.svm", a.train, 1), ("test.svm", a.test, 2)] {
        let path = a.out.join(name);
        let mut r = rng.fork(stream);
        match write_split(&model, &mut r, n, &path) {
            Ok((nnz, used, counts)) => println!(
                "{}: {n} documents, {} features ({used} used), {:.1} non-zeros a row, density {:.4}%, classes {counts:?}",
                path.display(),
                a.features,
                nnz as f64 / n as f64,
                100.0 * nnz as f64 / (n as f64 * a.features as f64),
            ),
            Err(e) => {
                eprintln!("make_sparse_text: {}: {e}", path.display());
                std::process::exit(1);
            }
        }
    }
}
