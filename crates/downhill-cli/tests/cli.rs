//! The `downhill` binary run on tiny generated files of every format, as a
//! user would run it.

mod common;

use common::{downhill, json, lines, ok};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A valid, non-trivial PNG: decodes, has the expected size range and many colours.
fn check_png(path: &Path) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert!(
        info.width >= 200 && info.height >= 200,
        "{}",
        path.display()
    );
    let px = info.color_type.samples();
    let mut colours: Vec<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    colours.sort();
    colours.dedup();
    assert!(
        colours.len() >= 20,
        "{}: only {} colours",
        path.display(),
        colours.len()
    );
}

/// The x-axis tick labels of a chart's SVG: the horizontal, centred texts
/// that are numbers (the title and the x-axis label are words; y ticks are
/// right-aligned; the y-axis label is rotated).
fn x_tick_labels(svg_path: &Path) -> Vec<String> {
    let svg = std::fs::read_to_string(svg_path).unwrap();
    svg.split("<text ")
        .skip(1)
        .filter_map(|t| {
            let (attrs, rest) = t.split_once('>')?;
            let centred = attrs.contains("text-anchor=\"middle\"") && !attrs.contains("rotate(");
            let text = rest.split("</text>").next()?;
            (centred && text.replace('−', "-").parse::<f64>().is_ok()).then(|| text.to_string())
        })
        .collect()
}

/// Epoch and step axes count whole things: their ticks are whole numbers.
fn assert_whole_x_ticks(svg_path: &Path) {
    let ticks = x_tick_labels(svg_path);
    assert!(
        ticks.len() >= 2 && ticks.iter().all(|t| !t.contains('.')),
        "{}: {ticks:?}",
        svg_path.display()
    );
}

/// Deterministic pseudo-random numbers for test data.
fn noise(i: usize) -> f64 {
    let x = (i as f64 * 12.9898).sin() * 43758.5453;
    x - x.floor()
}

/// Two classes of 6×6 images: bright top half or bright bottom half.
fn write_idx(dir: &Path) {
    let (n_train, n_test) = (60, 20);
    let make = |n: usize, offset: usize| {
        let mut px = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let y = (i % 2) as u8;
            for p in 0..36 {
                let top = p < 18;
                let bright = top == (y == 0);
                let v = if bright { 180.0 } else { 40.0 } + 60.0 * noise(offset + i * 36 + p);
                px.push(v as u8);
            }
            labels.push(y);
        }
        (
            downhill_data::builtin::write_idx_images(&px, 6, 6).unwrap(),
            downhill_data::builtin::write_idx_labels(&labels).unwrap(),
        )
    };
    let (x, y) = make(n_train, 0);
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), x).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), y).unwrap();
    let (x, y) = make(n_test, 100_000);
    std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), x).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), y).unwrap();
}

fn write_cifar(dir: &Path) {
    let batch = |n: usize, offset: usize| {
        let mut b = Vec::new();
        for i in 0..n {
            let y = (i % 3) as u8;
            b.push(y);
            for c in 0..3 {
                for p in 0..1024 {
                    let v = if c == y as usize { 200.0 } else { 50.0 }
                        + 40.0 * noise(offset + i * 3072 + c * 1024 + p);
                    b.push(v as u8);
                }
            }
        }
        b
    };
    std::fs::write(dir.join("data_batch_1.bin"), batch(30, 0)).unwrap();
    std::fs::write(dir.join("data_batch_2.bin"), batch(30, 1 << 20)).unwrap();
    std::fs::write(dir.join("test_batch.bin"), batch(15, 2 << 20)).unwrap();
}

fn write_imdb(dir: &Path) {
    let good = ["great", "wonderful", "superb", "moving", "brilliant"];
    let bad = ["awful", "boring", "dull", "terrible", "waste"];
    for split in ["train", "test"] {
        for (label, words) in [("pos", &good), ("neg", &bad)] {
            let d = dir.join(split).join(label);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..12 {
                let text = format!(
                    "This film was {} and {}.<br /><br />The plot is {} but the cast {}.",
                    words[i % 5],
                    words[(i + 2) % 5],
                    ["simple", "odd", "long"][i % 3],
                    ["tries", "works", "shines"][i % 3]
                );
                std::fs::write(d.join(format!("{i}_{}.txt", 1 + i % 10)), text).unwrap();
            }
        }
    }
}

fn write_libsvm(dir: &Path) -> String {
    let file = |n: usize, offset: usize| {
        let mut t = String::new();
        for i in 0..n {
            let y = if i % 2 == 0 { 1 } else { -1 };
            t += &y.to_string();
            for j in 1..=8 {
                let v =
                    noise(offset + i * 8 + j) - 0.5 + if (j <= 4) == (y == 1) { 1.0 } else { 0.0 };
                t += &format!(" {j}:{v:.4}");
            }
            t.push('\n');
        }
        t
    };
    std::fs::write(dir.join("train.svm"), file(120, 0)).unwrap();
    std::fs::write(dir.join("test.svm"), file(40, 10_000)).unwrap();
    format!(
        "libsvm:{},{}",
        dir.join("train.svm").display(),
        dir.join("test.svm").display()
    )
}

#[test]
fn help_explains_every_command() {
    let top = ok(&["--help"]);
    let text = String::from_utf8_lossy(&top.stdout);
    for cmd in ["train", "compare", "advise", "optimizers", "schedules"] {
        assert!(text.contains(cmd), "{text}");
    }
    let train = String::from_utf8_lossy(&ok(&["train", "--help"]).stdout).to_string();
    for flag in [
        "--data",
        "--model",
        "--optimizer",
        "--lr",
        "--momentum",
        "--nesterov",
        "--betas",
        "--schedule",
        "--batch-size",
        "--out",
        "--resume",
        "--clip-norm",
        "--on-divergence",
        "--config",
    ] {
        assert!(train.contains(flag), "train --help lacks {flag}");
    }
    let compare = String::from_utf8_lossy(&ok(&["compare", "--help"]).stdout).to_string();
    for word in [
        "--preset",
        "--tune-lr",
        "adam-paper-logreg",
        "adam-paper-bow",
        "adam-paper-mlp",
        "adam-paper-cnn",
    ] {
        assert!(compare.contains(word), "compare --help lacks {word}");
    }
    let listing = String::from_utf8_lossy(&ok(&["optimizers"]).stdout).to_string();
    for name in downhill::optim::OPTIMIZERS.iter().copied().chain([
        "lbfgs",
        "newton",
        "nesterov",
        "amsgrad",
        "partition(",
        "use when",
    ]) {
        assert!(listing.contains(name), "{name}");
    }
    // Reading only the first line closes the pipe: no panic, no message.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' optimizers | head -n 1",
            env!("CARGO_BIN_EXE_downhill")
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&ok(&["schedules"]).stdout).contains("reducelronplateau"));
}

#[test]
fn trains_on_every_data_format() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    for name in ["idx", "cifar", "imdb", "svm"] {
        std::fs::create_dir_all(t.join(name)).unwrap();
    }
    write_idx(&t.join("idx"));
    write_cifar(&t.join("cifar"));
    write_imdb(&t.join("imdb"));
    let svm = write_libsvm(&t.join("svm"));
    // (data, model, least test accuracy, lazy updates by default)
    let cases: Vec<(String, &str, f64, bool)> = vec![
        (
            format!("idx:{}", t.join("idx").display()),
            "cnn:4:kernel=3:pool=2:fc=8",
            0.9,
            false,
        ),
        (
            format!("cifar10:{}", t.join("cifar").display()),
            "logreg",
            0.9,
            false,
        ),
        (
            format!("imdb:{}", t.join("imdb").display()),
            "logreg:input-dropout=0.2",
            0.9,
            true,
        ),
        (svm, "mlp:8", 0.9, true),
    ];
    for (i, (data, model, min_acc, lazy)) in cases.iter().enumerate() {
        let out = t.join(format!("run{i}"));
        ok(&[
            "train",
            "--data",
            data,
            "--model",
            model,
            "--optimizer",
            "adam(lr=0.05)",
            "--batch-size",
            "8",
            "--epochs",
            "6",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        let m = lines(&out.join("metrics.jsonl"));
        assert_eq!(m.len(), 6, "{data}");
        for key in [
            "epoch",
            "step",
            "train_loss",
            "test_loss",
            "test_accuracy",
            "lr",
            "seconds",
        ] {
            assert!(m[5].get(key).is_some(), "{data}: metrics lack {key}");
        }
        let acc = m[5]["test_accuracy"].as_f64().unwrap();
        assert!(acc >= *min_acc, "{data} with {model}: test accuracy {acc}");
        let s = json(&out.join("summary.json"));
        assert_eq!(s["epochs"], 6);
        assert_eq!(s["updates"]["lazy"], *lazy, "{data}: {}", s["updates"]);
        assert!(out.join("init.safetensors").exists() && out.join("steps.csv").exists());
        assert!(std::fs::read_dir(out.join("checkpoints")).unwrap().count() >= 1);
    }
}

#[test]
fn sparse_updates_are_chosen_by_flag_or_config_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let svm = write_libsvm(tmp.path());
    let run = |name: &str, extra: &[&str]| {
        let out = tmp.path().join(name);
        let mut args = vec!["train", "--data", &svm, "--epochs", "1", "--out"];
        args.push(out.to_str().unwrap());
        args.extend_from_slice(extra);
        let stderr = String::from_utf8_lossy(&ok(&args).stderr).to_string();
        (stderr, json(&out.join("summary.json"))["updates"].clone())
    };
    let (stderr, updates) = run("auto", &[]);
    assert!(
        stderr.contains(
            "sparse updates: lazy (auto: sparse data, row-sparse adam steps of fc1.weight)"
        ),
        "{stderr}"
    );
    assert_eq!(updates["lazy"], true);
    let (stderr, updates) = run("rmsprop", &["--optimizer", "rmsprop"]);
    assert!(
        stderr.contains("sparse updates: dense (auto: rmsprop has no lazy step"),
        "{stderr}"
    );
    assert_eq!(updates["lazy"], false);
    let (stderr, _) = run("dense", &["--sparse-updates", "dense"]);
    assert!(
        stderr.contains("sparse updates: dense (requested)"),
        "{stderr}"
    );
    // From a config file, and a flag over it.
    let cfg = tmp.path().join("run.toml");
    std::fs::write(
        &cfg,
        "sparse_updates = \"dense\"\noptimizer = \"sgd(lr=0.1)\"\n",
    )
    .unwrap();
    let (_, updates) = run("toml", &["--config", cfg.to_str().unwrap()]);
    assert_eq!(updates["why"], "requested");
    let (_, updates) = run(
        "toml-flag",
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--sparse-updates",
            "lazy",
        ],
    );
    assert_eq!(
        updates["why"],
        "requested: row-sparse sgd steps of fc1.weight"
    );
    let saved = std::fs::read_to_string(tmp.path().join("toml-flag/config.toml")).unwrap();
    assert!(saved.contains("sparse_updates = \"lazy\""), "{saved}");
    // Dense data say nothing about it.
    let idx = tmp.path().join("idx");
    std::fs::create_dir_all(&idx).unwrap();
    write_idx(&idx);
    let out = ok(&[
        "train",
        "--data",
        &format!("idx:{}", idx.display()),
        "--epochs",
        "1",
    ]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("sparse updates"));
}

#[test]
fn a_toml_config_holds_the_same_settings_and_flags_override_it() {
    let tmp = tempfile::tempdir().unwrap();
    let svm = write_libsvm(tmp.path());
    let cfg = tmp.path().join("run.toml");
    std::fs::write(&cfg, format!("data = \"{}\"\nmodel = \"logreg\"\noptimizer = \"sgd(lr=0.1)\"\nepochs = 3\nbatch_size = 10\n", svm.replace('\\', "\\\\"))).unwrap();
    let out = tmp.path().join("run");
    ok(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--epochs",
        "2",
        "--momentum",
        "0.9",
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    let saved = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(
        saved.contains("epochs = 2")
            && saved.contains("momentum=0.9")
            && saved.contains("batch_size = 10"),
        "{saved}"
    );
    assert_eq!(lines(&out.join("metrics.jsonl")).len(), 2);
}

#[test]
fn learns_online_from_standard_input() {
    let tmp = tempfile::tempdir().unwrap();
    write_libsvm(tmp.path());
    let stream = std::fs::read(tmp.path().join("train.svm")).unwrap();
    let out = tmp.path().join("online");
    let mut child = Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args([
            "train",
            "--data",
            "-",
            "--dim",
            "8",
            "--labels=-1,1",
            "--optimizer",
            "sgd(lr=0.2)",
            "--log-every",
            "40",
            "--out",
            out.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&stream).unwrap();
    let status = child.wait_with_output().unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let m = lines(&out.join("metrics.jsonl"));
    assert_eq!(m.len(), 3);
    assert_eq!(m[2]["examples"], 120);
    assert!(
        m[2]["progressive_accuracy"].as_f64().unwrap() > 0.8,
        "{m:?}"
    );
    assert!(out.join("model.safetensors").exists());
}

#[test]
fn real_fashion_mnist_beats_chance_by_far_in_a_fraction_of_an_epoch() {
    if !downhill_testenv::require_path(
        "real_fashion_mnist_beats_chance_by_far_in_a_fraction_of_an_epoch",
        "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz",
        "apt-get install dataset-fashion-mnist",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fmnist");
    // 10,000 of the 60,000 training images, one pass: a sixth of an epoch.
    ok(&[
        "train",
        "--data",
        "idx:/usr/share/datasets/fashion-mnist",
        "--model",
        "logreg",
        "--optimizer",
        "adam(lr=0.002)",
        "--limit-train",
        "10000",
        "--epochs",
        "1",
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    let m = lines(&out.join("metrics.jsonl"));
    let acc = m[0]["test_accuracy"].as_f64().unwrap();
    assert!(
        acc > 0.70,
        "test accuracy {acc} on the 10,000 real test images (chance is 0.10)"
    );
}

#[test]
fn compare_writes_pictures_summaries_and_a_report_consistent_with_the_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let svm = write_libsvm(tmp.path());
    let out = tmp.path().join("cmp");
    ok(&[
        "compare",
        "--data",
        &svm,
        "--model",
        "logreg",
        "--optimizers",
        "sgd(lr=0.1),adam(lr=0.05),adagrad(lr=0.1)",
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    for pic in ["loss", "loss_steps", "accuracy", "test_loss"] {
        check_png(&out.join(format!("{pic}.png")));
        let svg = std::fs::read_to_string(out.join(format!("{pic}.svg"))).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("adam(lr=0.05)"),
            "{pic}.svg"
        );
        // Three epochs once gave ticks 1.00, 1.25, … 3.00.
        assert_whole_x_ticks(&out.join(format!("{pic}.svg")));
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("data:image/png;base64,") && !html.contains("src=\"http"));
    // The report renders in a real browser (headless Chromium, offline).
    if downhill_testenv::require_path(
        "compare_writes_pictures_summaries_and_a_report_consistent_with_the_runs (browser check)",
        "/usr/bin/chromium",
        "apt-get install chromium",
    ) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../downhill-plot/scripts/check-report-in-chromium.sh");
        let shot = out.join("report-screenshot.png");
        let status = Command::new("bash")
            .arg(&script)
            .arg(out.join("report.html"))
            .arg(&shot)
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        check_png(&shot);
    }
    let s = json(&out.join("summary.json"));
    let runs = s["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    for r in runs {
        let dir = PathBuf::from(r["dir"].as_str().unwrap());
        let m = lines(&dir.join("metrics.jsonl"));
        assert_eq!(m.len(), 3);
        let history = r["history"].as_array().unwrap();
        assert_eq!(history.last().unwrap()["train_loss"], m[2]["train_loss"]);
        assert_eq!(r["summary"]["last"]["test_accuracy"], m[2]["test_accuracy"]);
    }
    // Every run started from the same weights.
    let inits: Vec<Vec<u8>> = runs
        .iter()
        .map(|r| {
            std::fs::read(PathBuf::from(r["dir"].as_str().unwrap()).join("init.safetensors"))
                .unwrap()
        })
        .collect();
    assert!(inits.windows(2).all(|w| w[0] == w[1]));
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("| adagrad(lr=0.1) |"), "{md}");
    // A second comparison into the same folder is refused, leaving it intact.
    let before = std::fs::read(out.join("summary.json")).unwrap();
    assert!(!downhill(&[
        "compare",
        "--data",
        &svm,
        "--optimizers",
        "adam",
        "--out",
        out.to_str().unwrap(),
        "-q"
    ])
    .status
    .success());
    assert_eq!(std::fs::read(out.join("summary.json")).unwrap(), before);
}

#[test]
fn compare_tunes_learning_rates_on_held_out_training_data() {
    let tmp = tempfile::tempdir().unwrap();
    let svm = write_libsvm(tmp.path());
    let out = tmp.path().join("tuned");
    ok(&[
        "compare",
        "--data",
        &svm,
        "--model",
        "logreg",
        "--optimizers",
        "sgd,adam",
        "--epochs",
        "2",
        "--tune-lr",
        "--tune-grid",
        "0.001,0.1,10000",
        "--tune-epochs",
        "1",
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    let s = json(&out.join("summary.json"));
    for r in s["runs"].as_array().unwrap() {
        let grid = r["tuning"]["grid"].as_array().unwrap();
        assert_eq!(grid.len(), 3);
        let best = r["tuning"]["best_lr"].as_f64().unwrap();
        let scores: Vec<f64> = grid
            .iter()
            .map(|p| p["holdout_loss"].as_f64().unwrap_or(f64::INFINITY))
            .collect();
        let min = scores.iter().cloned().fold(f64::INFINITY, f64::min);
        let at = grid
            .iter()
            .position(|p| p["lr"].as_f64() == Some(best))
            .unwrap();
        assert_eq!(scores[at], min);
        assert!(r["spec"].as_str().unwrap().contains(&format!("lr={best}")));
    }
    assert!(std::fs::read_to_string(out.join("summary.md"))
        .unwrap()
        .contains("Learning-rate tuning"));
}

#[test]
fn advise_names_its_evidence_and_races() {
    let tmp = tempfile::tempdir().unwrap();
    // Sparse, skewed features: a few common words and many rare ones.
    let mut text = String::new();
    for i in 0..300 {
        let y = i % 2;
        let mut feats = vec![1 + (i % 3), 10 + (i * 7) % 400 + y * 400];
        feats.sort();
        feats.dedup();
        text += &format!("{y}");
        for f in feats {
            text += &format!(" {f}:1");
        }
        text.push('\n');
    }
    std::fs::write(tmp.path().join("sparse.svm"), text).unwrap();
    let sparse = format!("libsvm:{}", tmp.path().join("sparse.svm").display());
    let out = String::from_utf8_lossy(&ok(&["advise", "--data", &sparse]).stdout).to_string();
    assert!(
        out.contains("Gini") && out.contains("density") && out.contains("sparse"),
        "{out}"
    );
    let first = out
        .lines()
        .find(|l| l.trim_start().starts_with("1."))
        .unwrap();
    assert!(
        first.contains("adagrad") || first.contains("lbfgs"),
        "{out}"
    );
    assert!(out.contains("adagrad"), "{out}");

    let race_dir = tmp.path().join("race");
    let out = ok(&[
        "advise",
        "--data",
        &sparse,
        "--race",
        "--budget",
        "20",
        "--optimizers",
        "adam(lr=0.01),adam(lr=0.0001),adagrad(lr=0.1)",
        "--out",
        race_dir.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("winner:"), "{text}");
    check_png(&race_dir.join("race.png"));
    assert_whole_x_ticks(&race_dir.join("race.svg"));
    let r = json(&race_dir.join("race.json"));
    assert_eq!(r["entrants"].as_array().unwrap().len(), 3);
    assert!(race_dir.join("advice.json").exists());

    // The suggested entrants: rates around adagrad's 0.05 are the decimals a
    // person would type, in the table, the legend and race.json; epochs count
    // from 1 and "1 epoch" is singular.
    let race_dir = tmp.path().join("race-defaults");
    let out = ok(&[
        "advise",
        "--data",
        &sparse,
        "--race",
        "--budget",
        "20",
        "--out",
        race_dir.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let svg = std::fs::read_to_string(race_dir.join("race.svg")).unwrap();
    let race_json = std::fs::read_to_string(race_dir.join("race.json")).unwrap();
    for shown in [&*text, &svg, &race_json] {
        assert!(shown.contains("adagrad(lr=0.15)"), "{shown}");
        assert!(shown.contains("adagrad(lr=0.015)"), "{shown}");
        assert!(!shown.contains("0000000"), "{shown}");
    }
    let r = json(&race_dir.join("race.json"));
    let entrants = r["entrants"].as_array().unwrap();
    assert!(entrants.len() >= 4, "{text}");
    // The entrants dropped after the first rung trained one epoch.
    assert!(entrants.iter().any(|e| e["epochs"] == 1), "{race_json}");
    assert!(text.contains(" after 1 epoch\n"), "{text}");
    assert!(
        !text.contains(" 1 epochs") && !text.contains(" 1 rungs"),
        "{text}"
    );
    // Counted from 0, the curves began at x = 0 and the axis showed a 0 tick;
    // from 1 (and under 25 epochs, so the padding stays above 0) it cannot.
    let ticks = x_tick_labels(&race_dir.join("race.svg"));
    let longest = entrants.iter().map(|e| e["epochs"].as_u64().unwrap()).max();
    assert!(longest < Some(25), "{race_json}");
    assert!(
        !ticks.is_empty() && !ticks.contains(&"0".to_string()),
        "{ticks:?}"
    );
}

/// `advise` knows the modern methods: a model with hidden matrices on dense
/// data gets Muon, with what it measured, and schedule-free as the
/// no-schedule choice; a model without hidden layers does not get Muon.
#[test]
fn advise_suggests_muon_for_hidden_matrices_with_its_measured_cost() {
    let out = ok(&[
        "advise",
        "--data",
        "builtin:fashion-mnist-small",
        "--model",
        "mlp:64,64",
        "--limit-train",
        "500",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("muon(lr=0.02)"), "{text}");
    assert!(text.contains("hidden matrices [64, 64] hold"), "{text}");
    assert!(text.contains("the model's own work per step"), "{text}");
    assert!(text.contains("schedulefree_adamw"), "{text}");
    let out = ok(&[
        "advise",
        "--data",
        "builtin:fashion-mnist-small",
        "--model",
        "logreg",
        "--limit-train",
        "500",
    ]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("muon"));
}

/// The `modern` preset runs every method it names, and the Adam-paper
/// presets tune their rates unless told not to; the legends name what ran.
#[test]
fn modern_preset_runs_and_paper_presets_tune_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let modern = tmp.path().join("modern");
    ok(&[
        "compare",
        "--preset",
        "modern",
        "--epochs",
        "1",
        "--limit-train",
        "300",
        "--limit-test",
        "200",
        "--model",
        "mlp:32,32",
        "--quiet",
        "--out",
        modern.to_str().unwrap(),
    ]);
    let summary = std::fs::read_to_string(modern.join("summary.json")).unwrap();
    for name in [
        "adamw",
        "muon",
        "soap",
        "shampoo",
        "ademamix",
        "lion",
        "schedulefree_adamw",
        "prodigy",
        "adan",
        "nesterov",
    ] {
        assert!(
            summary.contains(name),
            "{name} missing from the modern preset"
        );
    }
    let paper = tmp.path().join("paper");
    ok(&[
        "compare",
        "--preset",
        "adam-paper-logreg",
        "--data",
        "builtin:fashion-mnist-small",
        "--epochs",
        "1",
        "--limit-train",
        "300",
        "--limit-test",
        "200",
        "--tune-epochs",
        "1",
        "--tune-limit",
        "200",
        "--tune-grid",
        "0.01,0.1",
        "--quiet",
        "--out",
        paper.to_str().unwrap(),
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(paper.join("summary.json")).unwrap())
            .unwrap();
    for run in json["runs"].as_array().unwrap() {
        assert!(!run["tuning"].is_null(), "{run}");
        // The curve is labelled with the spec that ran (the tuned rate).
        let spec = run["spec"].as_str().unwrap();
        assert!(
            spec.contains("lr=0.01") || spec.contains("lr=0.1"),
            "{spec}"
        );
        let svg = std::fs::read_to_string(paper.join("loss.svg")).unwrap();
        assert!(
            svg.contains(&spec.replace('&', "&amp;")),
            "{spec} not in the legend"
        );
    }
    let untuned = tmp.path().join("untuned");
    ok(&[
        "compare",
        "--preset",
        "adam-paper-logreg",
        "--data",
        "builtin:fashion-mnist-small",
        "--epochs",
        "1",
        "--limit-train",
        "300",
        "--no-tune-lr",
        "--quiet",
        "--out",
        untuned.to_str().unwrap(),
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(untuned.join("summary.json")).unwrap())
            .unwrap();
    assert!(json["runs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["tuning"].is_null()));
}

/// `downhill export` writes a run's model in torch's layout and names, and
/// refuses, on one line and without writing, a missing run or an existing
/// file. (That the tensors are right is shown in `downhill-candle`'s
/// `tests/import.rs`, where they equal what reproduces downhill's accuracy.)
#[test]
fn export_writes_torch_layout_and_refuses_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let file = tmp.path().join("model.safetensors");
    ok(&[
        "train",
        "--data",
        "builtin:fashion-mnist-small",
        "--model",
        "cnn:4,8:kernel=3:pool=2:fc=16",
        "--epochs",
        "1",
        "--limit-train",
        "300",
        "--threads",
        "1",
        "-q",
        "--out",
        run.to_str().unwrap(),
    ]);
    let args = |r: &Path| {
        vec![
            "export".to_string(),
            "--run".to_string(),
            r.to_str().unwrap().to_string(),
            "--out".to_string(),
            file.to_str().unwrap().to_string(),
        ]
    };
    let missing = downhill(
        &args(&tmp.path().join("nowhere"))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(missing.status.code(), Some(2));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("nowhere") && err.trim().lines().count() == 1,
        "{err}"
    );
    assert!(!file.exists());

    let a = args(&run);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = String::from_utf8_lossy(&ok(&a).stdout).to_string();
    assert!(out.contains("conv1.weight [4, 1, 3, 3]"), "{out}");
    assert!(out.contains("fc1.weight [16, 392]"), "{out}");
    let head = std::fs::read(&file).unwrap();
    assert!(String::from_utf8_lossy(&head).contains("downhill-export/1"));

    let again = downhill(&a);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
}
