//! Writes the seed corpora: small valid inputs for every fuzz target, so the
//! fuzzer starts from the formats' real structure rather than from nothing.
//!
//! `cargo run --release --bin make_seeds -- CORPUS_DIR` fills
//! `CORPUS_DIR/TARGET/` for every target (`fuzz/run.sh` does this).

use downhill::lbfgs::{Lbfgs, LbfgsConfig};
use downhill::optim::{build, OptimizerSpec, OPTIMIZERS};
use downhill::state::SavedState;
use downhill::Real;
use downhill_fuzz::{join_parts, state_params, STATE_LEN};
use downhill_train::{Silent, TrainConfig, Trainer};
use flate2::{write::GzEncoder, Compression};
use std::io::Write;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: make_seeds CORPUS_DIR"),
    );
    let mut n = 0;
    let mut seed = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("create a corpus folder");
        std::fs::write(dir.join(name), bytes).expect("write a seed");
        n += 1;
    };

    // IDX: a 2-image 3x4 file, an empty one, and gzip-compressed copies.
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4];
    images.extend((0..24u8).map(|i| i * 10));
    seed("idx_images", "two-3x4", &images);
    seed("idx_images", "two-3x4.gz", &gzip(&images));
    seed(
        "idx_images",
        "empty",
        &[0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28],
    );
    let labels = [0, 0, 8, 1, 0, 0, 0, 5, 0, 1, 9, 3, 4];
    seed("idx_labels", "five", &labels);
    seed("idx_labels", "five.gz", &gzip(&labels));

    // CIFAR-10: one and two records, and a gzip copy.
    let record = |label: u8| {
        let mut r = vec![label];
        r.extend((0..3072u32).map(|i| (i % 251) as u8));
        r
    };
    seed("cifar_batch", "one", &record(3));
    let two = [record(0), record(9)].concat();
    seed("cifar_batch", "two", &two);
    seed("cifar_batch", "two.gz", &gzip(&two));

    // IMDB text.
    let reviews: [&[u8]; 4] = [
        b"It's GREAT!<br /><br />'Quoted' don't 42x caf\xc3\xa9 \xce\xa3\xce\xb9\xcf\x83",
        b"A dull film. Dull, dull, DULL.<br/>Not worth it.",
        b"Stra\xc3\x9fe \xc4\xb0stanbul \xef\xbc\xa1\xef\xbc\xa2 <br>end",
        b"bad bytes \xff\xfe here",
    ];
    for (i, r) in reviews.iter().enumerate() {
        seed("imdb_tokenize", &format!("review{i}"), r);
    }
    for sel in [0u8, 0x0b, 0x45, 0x86] {
        let mut input = vec![sel];
        input.extend(join_parts(&reviews));
        seed("imdb_folder", &format!("folder-{sel:02x}"), &input);
    }

    // LIBSVM text.
    let svm: [&[u8]; 4] = [
        b"+1 qid:3 1:0.5 3:0 7:2 # c\n\n# only comment\n-1 2:1e-3\r\n",
        b"0 0:1 4:2.5\n1 1:1\n2 2:-3 3:0.25\n",
        b"3 1:1 2:1\n1.0 5:-1e-7\n-2 10:4\n3 2:2 9:1\n",
        b"1 1:1\n",
    ];
    for (i, s) in svm.iter().enumerate() {
        seed("libsvm_parse", &format!("file{i}"), s);
    }
    seed("libsvm_parse", "file0.gz", &gzip(svm[0]));
    for (i, (head, body)) in [
        (&b"\x15-1 +1"[..], svm[0]),
        (&b"\x0b0 1 2"[..], svm[1]),
        (&b"\x14"[..], b"-1 1:1\n+1 2:1 10:3\n-1 11:1\n+1 x\n"),
    ]
    .iter()
    .enumerate()
    {
        seed(
            "libsvm_stream",
            &format!("stream{i}"),
            &join_parts(&[head, body]),
        );
    }

    // Config files.
    let configs = [
        TrainConfig::default(),
        TrainConfig {
            optimizer: "sgd(lr=0.05,momentum=0.9,nesterov=true)".into(),
            schedule: Some("steplr(step_size=5,gamma=0.5)".into()),
            checkpoint_every: Some(100),
            clip_norm: Some(1.0),
            valid_fraction: Some(0.1),
            model: "mlp:64,32:tanh".into(),
            ..TrainConfig::default()
        },
        TrainConfig {
            optimizer: "lbfgs(line_search_fn=strong_wolfe,history_size=10)".into(),
            batch_size: 0,
            data: "libsvm:a.svm,b.svm".into(),
            on_divergence: downhill_train::OnDivergence::Backoff,
            ..TrainConfig::default()
        },
    ];
    for (i, c) in configs.iter().enumerate() {
        seed(
            "config_toml",
            &format!("config{i}.toml"),
            c.to_toml().as_bytes(),
        );
    }
    seed(
        "config_toml",
        "short.toml",
        b"model = \"cnn:8,8,16\"\noptimizer = \"adam(betas=(0.9,0.99))\"\nepochs = 2\n",
    );

    // Optimiser states: every optimiser after a few steps, in f32 and f64,
    // over the target's tensors (`muon` routes the bias to AdamW: a
    // partition's state).
    for (k, name) in OPTIMIZERS.iter().enumerate() {
        for f64s in [false, true] {
            let state = if f64s {
                optimizer_state::<f64>(name)
            } else {
                optimizer_state::<f32>(name)
            };
            let sel = k as u8 | if f64s { 0x10 } else { 0 };
            seed(
                "optimizer_state",
                &format!("{name}-{sel:02x}"),
                &state_input(sel, &state),
            );
            for (label, input) in boundary_step_inputs(sel, &state) {
                seed(
                    "optimizer_state",
                    &format!("{name}-{sel:02x}-{label}"),
                    &input,
                );
            }
        }
    }
    for f64s in [false, true] {
        let sel = OPTIMIZERS.len() as u8 | if f64s { 0x10 } else { 0 };
        let state = if f64s {
            lbfgs_state::<f64>()
        } else {
            lbfgs_state::<f32>()
        };
        seed(
            "optimizer_state",
            &format!("lbfgs-{sel:02x}"),
            &state_input(sel, &state),
        );
        for (label, input) in boundary_step_inputs(sel, &state) {
            seed(
                "optimizer_state",
                &format!("lbfgs-{sel:02x}-{label}"),
                &input,
            );
        }
    }

    // Checkpoints: real runs of logistic regression over 4 features and 3
    // classes (the model the checkpoint target reads), with several
    // optimisers and schedules.
    let tmp = tempfile::tempdir().expect("temporary folder");
    let data = tmp.path().join("train.svm");
    let mut text = String::new();
    for i in 0..30 {
        let y = i % 3;
        text += &format!(
            "{y} 1:{} 2:{} 3:{} 4:{}\n",
            y,
            i % 5,
            1 + i % 2,
            (i * 7) % 11
        );
    }
    std::fs::write(&data, text).expect("write training data");
    let runs = [
        ("adam", None),
        (
            "sgd(lr=0.1,momentum=0.9)",
            Some("steplr(step_size=1,gamma=0.5)"),
        ),
        (
            "rmsprop(centered=true)",
            Some("reducelronplateau(patience=0)"),
        ),
        ("lbfgs(history_size=3)", None),
        // Tensor-level rules in a partition (its state holds parts).
        (
            "partition(output=lamb,all=adafactor)",
            Some("cosineannealinglr(T_max=4)"),
        ),
    ];
    for (i, (opt, sched)) in runs.iter().enumerate() {
        let out = tmp.path().join(format!("run{i}"));
        let cfg = TrainConfig {
            data: format!("libsvm:{}", data.display()),
            model: "logreg".into(),
            optimizer: opt.to_string(),
            schedule: sched.map(str::to_string),
            batch_size: if opt.starts_with("lbfgs") { 0 } else { 8 },
            epochs: 2,
            checkpoint_every: Some(3),
            threads: Some(1),
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(cfg, Some(out.clone())).expect("seed run starts");
        t.run(&mut Silent).expect("seed run trains");
        for (c, ckpt) in checkpoint_dirs(&out).into_iter().enumerate() {
            let files: Vec<Vec<u8>> = [
                "MANIFEST.json",
                "model.safetensors",
                "optimizer.json",
                "optimizer.safetensors",
                "trainer.json",
            ]
            .iter()
            .map(|f| std::fs::read(ckpt.join(f)).expect("read a checkpoint file"))
            .collect();
            let parts: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
            let stem = ckpt.file_name().unwrap().to_string_lossy().into_owned();
            for flags in [0u8, 1] {
                let mut input = vec![flags];
                input.extend(join_parts(&parts));
                seed("checkpoint_read", &format!("run{i}-{stem}-{flags}"), &input);
            }
            if c == 0 {
                for (label, input) in boundary_checkpoint_inputs(&files) {
                    seed("checkpoint_read", &format!("run{i}-{stem}-{label}"), &input);
                }
            }
        }
    }
    eprintln!("wrote {n} seeds under {}", root.display());
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).expect("gzip into memory");
    e.finish().expect("gzip into memory")
}

/// The `optimizer_state` input for a state: the selector byte, the JSON and
/// the safetensors bytes.
fn state_input(sel: u8, s: &SavedState) -> Vec<u8> {
    let tensors = s.tensors_bytes().expect("buffers serialise");
    let mut input = vec![sel];
    input.extend(join_parts(&[s.manifest_json().as_bytes(), &tensors]));
    input
}

/// Counter values libFuzzer rarely reaches by mutating digits: the largest
/// `u64`, one less, and 2^53 (from where an `f64` no longer counts by one).
/// A loaded state whose `step` was `u64::MAX` once overflowed on the next step.
const BOUNDARY_COUNTS: [(&str, u64); 3] = [
    ("u64max", u64::MAX),
    ("u64max-minus-1", u64::MAX - 1),
    ("2pow53", 1 << 53),
];

/// `json` with the value of every key in `keys`, at any depth, set to `value`.
fn with_keys_set(json: &[u8], keys: &[&str], value: serde_json::Value) -> Vec<u8> {
    fn walk(x: &mut serde_json::Value, keys: &[&str], value: &serde_json::Value) {
        match x {
            serde_json::Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if keys.contains(&k.as_str()) {
                        *v = value.clone();
                    } else {
                        walk(v, keys, value);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| walk(v, keys, value)),
            _ => {}
        }
    }
    let mut doc: serde_json::Value = serde_json::from_slice(json).expect("seed JSON parses");
    walk(&mut doc, keys, &value);
    serde_json::to_vec_pretty(&doc).expect("seed JSON serialises")
}

/// Regression seeds for `optimizer_state`: `state` with every tensor's
/// `step` at each of [`BOUNDARY_COUNTS`].
fn boundary_step_inputs(sel: u8, state: &SavedState) -> Vec<(String, Vec<u8>)> {
    let tensors = state.tensors_bytes().expect("buffers serialise");
    let json = state.manifest_json();
    BOUNDARY_COUNTS
        .iter()
        .map(|&(label, n)| {
            let json = with_keys_set(json.as_bytes(), &["step"], n.into());
            let mut input = vec![sel];
            input.extend(join_parts(&[&json, &tensors]));
            (format!("step-{label}"), input)
        })
        .collect()
}

/// Regression seeds for `checkpoint_read` from one checkpoint's five files
/// (manifest, model, optimizer JSON and tensors, trainer JSON): counters at
/// [`BOUNDARY_COUNTS`] in the optimiser state, the trainer's position and
/// schedule, and the manifest; the run's settings at `u64::MAX`; the
/// schedule's integer hyper-parameters at 0 and `u64::MAX` (where the run has
/// a schedule that takes them); and RNG states of all zeros (not a valid
/// xoshiro state) and all ones. All but the
/// manifest's variant set flag bit 0, so the harness writes matching checksums
/// and the edited file reaches its parser.
fn boundary_checkpoint_inputs(files: &[Vec<u8>]) -> Vec<(String, Vec<u8>)> {
    let input = |flags: u8, replace: usize, part: Vec<u8>| {
        let mut parts: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
        parts[replace] = &part;
        let mut input = vec![flags];
        input.extend(join_parts(&parts));
        input
    };
    let (manifest, optimizer, trainer) = (0, 2, 4);
    let mut out = Vec::new();
    for &(label, n) in &BOUNDARY_COUNTS {
        let edits: [(&str, usize, &[&str]); 3] = [
            ("optimizer-step", optimizer, &["step"]),
            ("trainer-position", trainer, &["epoch", "batch", "step"]),
            ("trainer-steps", trainer, &["steps"]),
        ];
        for (what, file, keys) in edits {
            let part = with_keys_set(&files[file], keys, n.into());
            out.push((format!("{what}-{label}-1"), input(1, file, part)));
        }
    }
    let part = with_keys_set(&files[manifest], &["step"], u64::MAX.into());
    out.push(("manifest-step-u64max-0".into(), input(0, manifest, part)));
    let settings = [
        "batch_size",
        "epochs",
        "seed",
        "checkpoint_every",
        "keep_checkpoints",
        "threads",
        "eval_batch",
        "vocab_size",
        "limit_train",
        "limit_test",
    ];
    let part = with_keys_set(&files[trainer], &settings, u64::MAX.into());
    out.push(("settings-u64max-1".into(), input(1, trainer, part)));
    // Schedule hyper-parameters restored from trainer.json: zero and the
    // largest u64 (a zero StepLR step_size once divided by zero on resume).
    let schedule = [
        "step_size",
        "patience",
        "cooldown",
        "T_max",
        "T_0",
        "total_iters",
    ];
    for (label, n) in [("zero", 0u64), ("u64max", u64::MAX)] {
        let part = with_keys_set(&files[trainer], &schedule, n.into());
        if part != with_keys_set(&files[trainer], &[], 0.into()) {
            out.push((format!("schedule-{label}-1"), input(1, trainer, part)));
        }
    }
    for (label, word) in [("zero", 0u64), ("ones", u64::MAX)] {
        let part = with_keys_set(
            &files[trainer],
            &["rng"],
            serde_json::json!([word, word, word, word]),
        );
        out.push((format!("rng-{label}-1"), input(1, trainer, part)));
    }
    out
}

/// The state of `name` with its defaults (and a variant's extra buffers),
/// over the target's tensors, after three steps.
fn optimizer_state<T: Real>(name: &str) -> SavedState {
    let spec: OptimizerSpec = match name {
        "sgd" => "sgd(momentum=0.9,nesterov=true)",
        "rmsprop" => "rmsprop(centered=true,momentum=0.5)",
        "adam" | "adamw" => "adam(amsgrad=true)",
        other => other,
    }
    .replace("adam(", &format!("{name}("))
    .parse()
    .expect("seed spec parses");
    let mut opt = build::<T>(&spec, &state_params()).expect("seed optimizer builds");
    let mut p: Vec<T> = (0..STATE_LEN)
        .map(|i| T::from_f64(i as f64 * 0.3))
        .collect();
    for s in 0..3 {
        let g: Vec<T> = (0..STATE_LEN)
            .map(|i| T::from_f64(0.1 * (i + s) as f64 - 0.2))
            .collect();
        opt.step_flat(&mut p, &g).expect("seed step");
    }
    opt.save_state().expect("seed state saves")
}

/// L-BFGS over 5 elements after two calls on a quadratic (history filled).
fn lbfgs_state<T: Real>() -> SavedState {
    let config = LbfgsConfig {
        history_size: 3,
        max_iter: 4,
        ..LbfgsConfig::default()
    };
    let mut l = Lbfgs::<T>::new(config, 5).expect("seed lbfgs builds");
    let mut x: Vec<T> = (0..5).map(|i| T::from_f64(1.0 + i as f64)).collect();
    for _ in 0..2 {
        l.step(&mut x, |x, g| {
            let mut f = 0.0;
            for (i, (xi, gi)) in x.iter().zip(g.iter_mut()).enumerate() {
                let w = (i + 1) as f64;
                f += 0.5 * w * Real::to_f64(*xi) * Real::to_f64(*xi);
                *gi = T::from_f64(w * Real::to_f64(*xi));
            }
            f
        })
        .expect("seed lbfgs step");
    }
    l.save_state()
}

fn checkpoint_dirs(out: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out.join("checkpoints"))
        .expect("the run wrote checkpoints")
        .map(|e| e.expect("a folder entry").path())
        .collect();
    dirs.sort();
    dirs
}
