//! `downhill train` on broken input, table-driven: every case must exit with
//! status 2 and print exactly one line on stderr that names the problem (the
//! file, flag or setting), with no panic or backtrace, and must leave every
//! file it was given, and every file already in its output folder, byte for
//! byte as it was (and create none).

use downhill_testenv::copy_dir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// One broken input.
struct Case {
    name: &'static str,
    /// Writes the case's files under the folder given and returns the
    /// arguments after `downhill train`, and the texts the message must hold
    /// (paths included).
    setup: fn(&Path) -> (Vec<String>, Vec<String>),
}

fn s(x: impl ToString) -> String {
    x.to_string()
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// IDX images: `n` images of `rows x cols`, big-endian header.
fn idx_images(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for d in [n, rows, cols] {
        b.extend(d.to_be_bytes());
    }
    b.extend((0..n * rows * cols).map(|i| (i * 37 % 256) as u8));
    b
}

/// IDX labels, cycling through 0..10.
fn idx_labels(n: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 1];
    b.extend(n.to_be_bytes());
    b.extend((0..n).map(|i| (i % 10) as u8));
    b
}

/// A valid IDX folder of 20 training and 10 test images of 4x4.
fn idx_dir(dir: &Path) -> PathBuf {
    let d = dir.join("idx");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("train-images-idx3-ubyte"), idx_images(20, 4, 4)).unwrap();
    std::fs::write(d.join("train-labels-idx1-ubyte"), idx_labels(20)).unwrap();
    std::fs::write(d.join("t10k-images-idx3-ubyte"), idx_images(10, 4, 4)).unwrap();
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), idx_labels(10)).unwrap();
    d
}

/// CIFAR-10 records with labels cycling through 0..10.
fn cifar_records(n: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for i in 0..n {
        b.push((i % 10) as u8);
        b.extend((0..3072).map(|j| ((i * 7 + j) % 256) as u8));
    }
    b
}

/// Reviews in the aclImdb layout.
fn imdb_dir(dir: &Path) -> PathBuf {
    let d = dir.join("imdb");
    for (class, text) in [("pos", "great film"), ("neg", "dull film")] {
        let c = d.join("train").join(class);
        std::fs::create_dir_all(&c).unwrap();
        for i in 0..3 {
            std::fs::write(c.join(format!("{i}_5.txt")), text).unwrap();
        }
    }
    d
}

/// A small separable LIBSVM training file.
fn libsvm_file(dir: &Path) -> PathBuf {
    let mut t = String::new();
    for i in 0..40 {
        let y = if i % 2 == 0 { 1 } else { -1 };
        t += &format!("{y} 1:{} 2:{}\n", y as f64 + 0.01 * i as f64, 0.5);
    }
    let path = dir.join("train.svm");
    std::fs::write(&path, t).unwrap();
    path
}

fn libsvm_spec(dir: &Path) -> String {
    format!("libsvm:{}", libsvm_file(dir).display())
}

/// The folder every case passes as `--out`: it exists and holds files of
/// the user's (some with the names a run writes), none of which may change.
fn out_dir(dir: &Path) -> String {
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "my notes\n").unwrap();
    std::fs::write(out.join("metrics.jsonl"), "{\"epoch\": 1}\n").unwrap();
    std::fs::write(out.join("config.toml"), "# mine\n").unwrap();
    p(&out)
}

/// Arguments of a training run that would work, given a data spec.
fn train(dir: &Path, data: &str) -> Vec<String> {
    [
        "--data",
        data,
        "--epochs",
        "1",
        "--threads",
        "1",
        "--quiet",
        "--out",
        &out_dir(dir),
    ]
    .map(s)
    .to_vec()
}

/// Arguments on the small LIBSVM data, plus `extra`.
fn on_libsvm(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = train(dir, &libsvm_spec(dir));
    a.extend(extra.iter().map(s));
    a
}

/// Arguments on the small LIBSVM data, plus `extra`, writing to a folder
/// that does not exist yet: a refused run must not leave it behind, empty
/// or not.
fn fresh(dir: &Path, extra: &[String]) -> Vec<String> {
    let mut a: Vec<String> = [
        "--data",
        &libsvm_spec(dir),
        "--epochs",
        "1",
        "--quiet",
        "--out",
    ]
    .map(s)
    .to_vec();
    a.push(p(&dir.join("new-run")));
    a.extend(extra.iter().cloned());
    a
}

/// `head` nested `depth` times around `core`: `head(head(core))`.
fn nested(head: &str, core: &str, tail: &str, depth: usize) -> String {
    format!("{}{core}{}", head.repeat(depth), tail.repeat(depth))
}

/// A finished two-epoch run, made once and copied into the cases that need
/// one (a run takes a moment; the cases only read or damage a copy).
fn finished_run() -> &'static Path {
    static RUN: OnceLock<tempfile::TempDir> = OnceLock::new();
    RUN.get_or_init(|| {
        let t = tempfile::tempdir().unwrap();
        let data = libsvm_spec(t.path());
        let out = t.path().join("run");
        let status = Command::new(env!("CARGO_BIN_EXE_downhill"))
            .args([
                "train", "--data", &data, "--model", "logreg", "--epochs", "2",
            ])
            .args(["--checkpoint-every", "2", "--threads", "1", "--quiet"])
            .arg("--out")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        t
    })
    .path()
}

/// A copy of the finished run (and its data, at the same relative place).
fn copy_run(dir: &Path) -> PathBuf {
    copy_dir(finished_run(), dir);
    dir.join("run")
}

/// Checkpoint folders of a run, oldest first.
fn checkpoints(run: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "truncated IDX images",
            setup: |d| {
                let idx = idx_dir(d);
                let f = idx.join("train-images-idx3-ubyte");
                let b = std::fs::read(&f).unwrap();
                std::fs::write(&f, &b[..b.len() - 7]).unwrap();
                (
                    train(d, &format!("idx:{}", p(&idx))),
                    vec![p(&f), s("truncated in image 19 of 20")],
                )
            },
        },
        Case {
            name: "truncated IDX header",
            setup: |d| {
                let idx = idx_dir(d);
                let f = idx.join("t10k-labels-idx1-ubyte");
                std::fs::write(&f, [0, 0, 8, 1, 0]).unwrap();
                (
                    train(d, &format!("idx:{}", p(&idx))),
                    vec![p(&f), s("truncated in the 8-byte header")],
                )
            },
        },
        Case {
            name: "wrong IDX magic",
            setup: |d| {
                let idx = idx_dir(d);
                let f = idx.join("train-labels-idx1-ubyte");
                std::fs::write(&f, idx_images(20, 4, 4)).unwrap();
                (
                    train(d, &format!("idx:{}", p(&idx))),
                    vec![p(&f), s("wrong magic number"), s("00 00 08 01")],
                )
            },
        },
        Case {
            name: "IDX test images of other dimensions",
            setup: |d| {
                let idx = idx_dir(d);
                let f = idx.join("t10k-images-idx3-ubyte");
                std::fs::write(&f, idx_images(10, 5, 5)).unwrap();
                (
                    train(d, &format!("idx:{}", p(&idx))),
                    vec![p(&f), s("image size is 5x5"), s("4x4")],
                )
            },
        },
        Case {
            name: "IDX images and labels of different counts",
            setup: |d| {
                let idx = idx_dir(d);
                std::fs::write(idx.join("train-labels-idx1-ubyte"), idx_labels(19)).unwrap();
                (
                    train(d, &format!("idx:{}", p(&idx))),
                    vec![s("holds 20 images"), s("holds 19 labels")],
                )
            },
        },
        Case {
            name: "IDX label out of range",
            setup: |d| {
                let idx = idx_dir(d);
                let f = idx.join("train-labels-idx1-ubyte");
                let mut b = idx_labels(20);
                b[8 + 13] = 10;
                std::fs::write(&f, b).unwrap();
                (
                    train(d, &format!("idx:{}", p(&idx))),
                    vec![p(&f), s("record 13"), s("label 10 is out of range")],
                )
            },
        },
        Case {
            name: "empty IDX folder",
            setup: |d| {
                let e = d.join("empty");
                std::fs::create_dir(&e).unwrap();
                (
                    train(d, &format!("idx:{}", p(&e))),
                    vec![p(&e), s("no data")],
                )
            },
        },
        Case {
            name: "truncated CIFAR-10 batch",
            setup: |d| {
                let c = d.join("cifar");
                std::fs::create_dir(&c).unwrap();
                let f = c.join("data_batch_1.bin");
                std::fs::write(&f, &cifar_records(3)[..3073 * 2 + 100]).unwrap();
                (
                    train(d, &format!("cifar10:{}", p(&c))),
                    vec![p(&f), s("truncated in record 2")],
                )
            },
        },
        Case {
            name: "CIFAR-10 label out of range",
            setup: |d| {
                let c = d.join("cifar");
                std::fs::create_dir(&c).unwrap();
                let f = c.join("data_batch_1.bin");
                let mut b = cifar_records(3);
                b[3073] = 11;
                std::fs::write(&f, b).unwrap();
                (
                    train(d, &format!("cifar10:{}", p(&c))),
                    vec![p(&f), s("record 1"), s("label 11 is out of range")],
                )
            },
        },
        Case {
            name: "empty IMDB class folders",
            setup: |d| {
                let i = d.join("imdb");
                for class in ["pos", "neg"] {
                    std::fs::create_dir_all(i.join("train").join(class)).unwrap();
                }
                (
                    train(d, &format!("imdb:{}", p(&i))),
                    vec![p(&i.join("train").join("neg")), s("no data")],
                )
            },
        },
        Case {
            name: "IMDB review that is not UTF-8",
            setup: |d| {
                let i = imdb_dir(d);
                let f = i.join("train/pos/1_5.txt");
                std::fs::write(&f, b"great \xff\xfe film").unwrap();
                (
                    train(d, &format!("imdb:{}", p(&i))),
                    vec![p(&f), s("not valid UTF-8 at byte 6")],
                )
            },
        },
        Case {
            name: "bad LIBSVM token",
            setup: |d| {
                let f = libsvm_file(d);
                let mut t = std::fs::read_to_string(&f).unwrap();
                t += "1 1:0.5 2:abc\n";
                std::fs::write(&f, t).unwrap();
                (
                    train(d, &format!("libsvm:{}", p(&f))),
                    vec![format!("{}:41:9", p(&f)), s("bad token \"2:abc\"")],
                )
            },
        },
        Case {
            name: "LIBSVM indices out of order",
            setup: |d| {
                let f = d.join("train.svm");
                std::fs::write(&f, "1 1:1 2:1\n-1 3:1 2:1\n").unwrap();
                (
                    train(d, &format!("libsvm:{}", p(&f))),
                    vec![format!("{}:2", p(&f)), s("feature index 2 follows 3")],
                )
            },
        },
        Case {
            name: "empty LIBSVM file",
            setup: |d| {
                let f = d.join("train.svm");
                std::fs::write(&f, "# nothing but a comment\n\n").unwrap();
                (
                    train(d, &format!("libsvm:{}", p(&f))),
                    vec![p(&f), s("no examples")],
                )
            },
        },
        Case {
            name: "missing data file",
            setup: |d| {
                let f = d.join("nowhere.svm");
                (
                    train(d, &format!("libsvm:{}", p(&f))),
                    vec![p(&f), s("No such file")],
                )
            },
        },
        Case {
            name: "missing data file whose name holds a line break",
            setup: |d| {
                let f = d.join("two\nlines.svm");
                let shown = p(&f).replace('\n', "\\n");
                (
                    train(d, &format!("libsvm:{}", p(&f))),
                    vec![shown, s("No such file")],
                )
            },
        },
        Case {
            name: "optimizer spec with a line break",
            setup: |d| {
                (
                    on_libsvm(d, &["--optimizer", "sgd(lr=0.1,\nmomentum)"]),
                    vec![s("--optimizer"), s("\\nmomentum")],
                )
            },
        },
        Case {
            name: "unknown data spec",
            setup: |d| {
                (
                    train(d, "mnist:/data"),
                    vec![s("mnist:/data"), s("idx:DIR")],
                )
            },
        },
        Case {
            name: "unknown optimizer",
            setup: |d| {
                (
                    on_libsvm(d, &["--optimizer", "adamm"]),
                    vec![s("--optimizer"), s("unknown optimizer `adamm`")],
                )
            },
        },
        Case {
            name: "unknown hyper-parameter in the spec",
            setup: |d| {
                (
                    on_libsvm(d, &["--optimizer", "adam(lr=0.01,momentum=0.9)"]),
                    vec![s("--optimizer"), s("momentum")],
                )
            },
        },
        Case {
            name: "hyper-parameter flag the optimizer does not take",
            setup: |d| {
                (
                    on_libsvm(d, &["--optimizer", "adagrad", "--betas", "0.9,0.99"]),
                    vec![s("adagrad"), s("betas")],
                )
            },
        },
        Case {
            name: "unknown flag",
            setup: |d| {
                (
                    on_libsvm(d, &["--learning-rate", "0.1"]),
                    vec![s("--learning-rate")],
                )
            },
        },
        Case {
            name: "negative learning rate",
            setup: |d| {
                (
                    on_libsvm(d, &["--optimizer", "sgd", "--lr", "-0.1"]),
                    vec![s("lr"), s("-0.1")],
                )
            },
        },
        Case {
            name: "beta of 1",
            setup: |d| {
                (
                    on_libsvm(d, &["--optimizer", "adam", "--betas", "0.9,1.0"]),
                    vec![s("betas")],
                )
            },
        },
        Case {
            name: "nesterov without momentum",
            setup: |d| {
                (
                    on_libsvm(d, &["--optimizer", "sgd", "--nesterov"]),
                    vec![s("nesterov"), s("momentum")],
                )
            },
        },
        Case {
            name: "learning rate that is not a number",
            setup: |d| (on_libsvm(d, &["--lr", "fast"]), vec![s("lr"), s("fast")]),
        },
        Case {
            name: "schedule with a bad value",
            setup: |d| {
                (
                    on_libsvm(d, &["--schedule", "steplr(step_size=0)"]),
                    vec![s("--schedule"), s("step_size")],
                )
            },
        },
        Case {
            name: "unknown schedule",
            setup: |d| {
                (
                    on_libsvm(d, &["--schedule", "cosine(T_max=3)"]),
                    vec![s("--schedule"), s("cosine")],
                )
            },
        },
        Case {
            name: "bad model spec",
            setup: |d| {
                (
                    on_libsvm(d, &["--model", "mlp:16,abc"]),
                    vec![s("--model"), s("16,abc")],
                )
            },
        },
        Case {
            name: "model that does not fit the data",
            setup: |d| (on_libsvm(d, &["--model", "cnn:4"]), vec![s("cnn")]),
        },
        Case {
            name: "zero epochs",
            setup: |d| (on_libsvm(d, &["--epochs", "0"]), vec![s("--epochs")]),
        },
        Case {
            name: "unwritable output folder",
            setup: |d| {
                // Under a regular file: no folder can be made there, whatever
                // the user's rights (the tests may run as root).
                let file = d.join("a-file");
                std::fs::write(&file, "not a folder\n").unwrap();
                let out = file.join("run");
                let mut a = train(d, &libsvm_spec(d));
                let at = a.iter().position(|x| x == "--out").unwrap();
                a[at + 1] = p(&out);
                (a, vec![p(&file)])
            },
        },
        Case {
            name: "output folder that holds a run",
            setup: |d| {
                let run = copy_run(d);
                let data = format!("libsvm:{}", p(&d.join("train.svm")));
                let args = [
                    "--data",
                    &data,
                    "--epochs",
                    "1",
                    "--quiet",
                    "--out",
                    &p(&run),
                ];
                (
                    args.map(s).to_vec(),
                    vec![p(&run), s("already holds a run"), s("--resume")],
                )
            },
        },
        Case {
            name: "resume from corrupted checkpoints",
            setup: |d| {
                let run = copy_run(d);
                let steps = checkpoints(&run);
                assert!(steps.len() >= 2, "{steps:?}");
                for (i, step) in steps.iter().enumerate() {
                    let f = step.join(["model.safetensors", "trainer.json"][i % 2]);
                    let mut b = std::fs::read(&f).unwrap();
                    let mid = b.len() / 2;
                    b[mid] ^= 1;
                    std::fs::write(&f, b).unwrap();
                }
                let mut expect = vec![s("no usable checkpoint"), s("checksum mismatch")];
                expect.extend(steps.iter().map(|s| p(s)));
                (vec![s("--resume"), p(&run), s("--quiet")], expect)
            },
        },
        Case {
            name: "resume from a folder without checkpoints",
            setup: |d| {
                let out = out_dir(d);
                (
                    vec![s("--resume"), out.clone(), s("--quiet")],
                    vec![out, s("no usable checkpoint")],
                )
            },
        },
        Case {
            name: "resume with a changed setting",
            setup: |d| {
                let run = copy_run(d);
                (
                    vec![s("--resume"), p(&run), s("--model"), s("mlp:4")],
                    vec![s("--resume"), s("only --epochs")],
                )
            },
        },
        Case {
            name: "resume with a different --sparse-updates",
            setup: |d| {
                let run = copy_run(d);
                (
                    vec![s("--resume"), p(&run), s("--sparse-updates"), s("dense")],
                    vec![s("--resume"), s("only --epochs")],
                )
            },
        },
        Case {
            name: "lazy updates on dense data",
            setup: |d| {
                let mut a = train(d, &format!("idx:{}", p(&idx_dir(d))));
                a.extend([s("--sparse-updates"), s("lazy")]);
                (
                    a,
                    vec![
                        s("--sparse-updates lazy"),
                        s("the data are dense"),
                        s("dense"),
                    ],
                )
            },
        },
        Case {
            name: "lazy updates with an optimizer that has none",
            setup: |d| {
                (
                    on_libsvm(d, &["--sparse-updates", "lazy", "--optimizer", "rmsprop"]),
                    vec![s("--sparse-updates lazy"), s("rmsprop has no lazy step")],
                )
            },
        },
        Case {
            name: "lazy updates with L-BFGS",
            setup: |d| {
                (
                    on_libsvm(d, &["--sparse-updates", "lazy", "--optimizer", "lbfgs"]),
                    vec![s("--sparse-updates lazy"), s("full-batch")],
                )
            },
        },
        Case {
            name: "lazy updates with an L2 penalty",
            setup: |d| {
                (
                    on_libsvm(d, &["--sparse-updates", "lazy", "--l2", "0.001"]),
                    vec![s("--sparse-updates lazy"), s("--l2")],
                )
            },
        },
        Case {
            name: "lazy updates with weight decay",
            setup: |d| {
                (
                    on_libsvm(
                        d,
                        &[
                            "--sparse-updates",
                            "lazy",
                            "--optimizer",
                            "adam",
                            "--weight-decay",
                            "0.01",
                        ],
                    ),
                    vec![s("--sparse-updates lazy"), s("weight_decay=0.01")],
                )
            },
        },
        Case {
            name: "lazy updates on a stream",
            setup: |d| {
                let mut a = train(d, "-");
                a.extend([
                    s("--sparse-updates"),
                    s("lazy"),
                    s("--dim"),
                    s("2"),
                    s("--labels=-1,1"),
                ]);
                (a, vec![s("--sparse-updates lazy"), s("--data -")])
            },
        },
        Case {
            name: "an unknown --sparse-updates mode",
            setup: |d| {
                (
                    on_libsvm(d, &["--sparse-updates", "sometimes"]),
                    vec![s("--sparse-updates"), s("sometimes")],
                )
            },
        },
        Case {
            name: "an unknown sparse_updates mode in a config file",
            setup: |d| {
                let f = d.join("run.toml");
                std::fs::write(&f, "epochs = 2\nsparse_updates = \"sometimes\"\n").unwrap();
                let mut a = train(d, &libsvm_spec(d));
                a.extend([s("--config"), p(&f)]);
                (a, vec![p(&f), s("line 2"), s("sometimes"), s("lazy")])
            },
        },
        Case {
            name: "config file with an unknown key",
            setup: |d| {
                let f = d.join("run.toml");
                std::fs::write(&f, "epochs = 2\nlearning_rate = 0.1\n").unwrap();
                let mut a = train(d, &libsvm_spec(d));
                a.extend([s("--config"), p(&f)]);
                (a, vec![p(&f), s("line 2"), s("learning_rate")])
            },
        },
        Case {
            name: "a seed beyond the integers config.toml can hold",
            setup: |d| {
                (
                    fresh(d, &[s("--seed"), s(u64::MAX)]),
                    vec![s("--seed"), s(u64::MAX), s(i64::MAX)],
                )
            },
        },
        Case {
            name: "a batch size beyond the integers config.toml can hold",
            setup: |d| {
                (
                    fresh(d, &[s("--batch-size"), s(u64::MAX)]),
                    vec![s("--batch-size"), s(i64::MAX)],
                )
            },
        },
        Case {
            name: "gradient accumulation beyond the integers config.toml can hold",
            setup: |d| {
                (
                    fresh(d, &[s("--accumulate"), s(i64::MAX as u64 + 1)]),
                    vec![s("--accumulate"), s(i64::MAX)],
                )
            },
        },
        Case {
            name: "more threads than any machine has",
            setup: |d| {
                (
                    fresh(d, &[s("--threads"), s(100_000)]),
                    vec![s("--threads"), s("at most 1024")],
                )
            },
        },
        Case {
            name: "an optimizer spec nested 11,000 deep (overflowed the parser's stack)",
            setup: |d| {
                let spec = nested("lookahead(", "adam", ")", 11_000);
                (
                    fresh(d, &[s("--optimizer"), spec]),
                    vec![s("--optimizer"), s("nest more than 16 deep")],
                )
            },
        },
        Case {
            name: "an optimizer spec nested 3,000 deep (overflowed a worker during the step)",
            setup: |d| {
                let spec = nested("lookahead(", "adam", ",k=2)", 3_000);
                (
                    fresh(d, &[s("--optimizer"), spec]),
                    vec![s("--optimizer"), s("nest more than 16 deep")],
                )
            },
        },
        Case {
            name: "a partition inside wrappers 17 deep",
            setup: |d| {
                let spec = nested("lookahead(", "partition(all=adam)", ")", 16);
                (
                    fresh(d, &[s("--optimizer"), spec]),
                    vec![s("--optimizer"), s("nest more than 16 deep")],
                )
            },
        },
        Case {
            name: "a schedule nested 3,000 deep",
            setup: |d| {
                let spec = nested(
                    "sequentiallr(",
                    "steplr(step_size=1)",
                    ",milestones=1)",
                    3_000,
                );
                (
                    fresh(d, &[s("--schedule"), spec]),
                    vec![s("--schedule"), s("nest more than 16 deep")],
                )
            },
        },
        Case {
            name: "config file nested 100,000 deep",
            setup: |d| {
                let f = d.join("run.toml");
                let deep = nested("[", "", "]", 100_000);
                std::fs::write(&f, format!("epochs = 2\nx = {deep}\n")).unwrap();
                (
                    fresh(d, &[s("--config"), p(&f)]),
                    vec![p(&f), s("line 2"), s("recursion limit")],
                )
            },
        },
        Case {
            name: "config file with tables nested 20,000 deep",
            setup: |d| {
                let f = d.join("run.toml");
                let header = vec!["a"; 20_000].join(".");
                std::fs::write(&f, format!("epochs = 2\n[{header}]\nb = 1\n")).unwrap();
                (
                    fresh(d, &[s("--config"), p(&f)]),
                    vec![p(&f), s("recursion limit")],
                )
            },
        },
        Case {
            name: "config file with a bad value",
            setup: |d| {
                let f = d.join("run.toml");
                std::fs::write(&f, "optimizer = \"sgd(lr=0.1,momentum=-1)\"\n").unwrap();
                let mut a = train(d, &libsvm_spec(d));
                a.extend([s("--config"), p(&f)]);
                (a, vec![s("--optimizer"), s("momentum")])
            },
        },
    ]
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                files.insert(e.path(), b"<folder>".to_vec());
                stack.push(e.path());
            } else {
                files.insert(e.path(), std::fs::read(e.path()).unwrap());
            }
        }
    }
    files
}

/// Cases that fail today because of bugs outside this test's reach (in the
/// optimiser library and the network builder); the report
/// of the reliability work describes each. Run with `--ignored`.
/// Sizes no machine can allocate: refused by name before allocating (each
/// once aborted the process with "memory allocation of ... bytes failed").
fn beyond_memory() -> Vec<Case> {
    vec![
        Case {
            name: "L-BFGS history too large to allocate",
            setup: |d| {
                (
                    on_libsvm(
                        d,
                        &[
                            "--optimizer",
                            "lbfgs(history_size=1000000000000)",
                            "--batch-size",
                            "0",
                        ],
                    ),
                    vec![s("history_size")],
                )
            },
        },
        Case {
            name: "LIBSVM feature index that makes the model too large",
            // One line `1 4000000000:1` sets the dimension to 4e9.
            setup: |d| {
                let f = d.join("train.svm");
                std::fs::write(&f, "1 1:1 4000000000:1\n-1 2:1\n").unwrap();
                (train(d, &format!("libsvm:{}", p(&f))), vec![s("--model")])
            },
        },
        Case {
            name: "model too large to allocate",
            setup: |d| {
                (
                    on_libsvm(d, &["--model", "mlp:100000000000"]),
                    vec![s("--model")],
                )
            },
        },
    ]
}

/// Runs one case; returns what was wrong, if anything.
fn check(case: &Case) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let (args, expect) = (case.setup)(dir.path());
    let before = snapshot(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_downhill"))
        .arg("train")
        .args(&args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let message = stderr.trim();
    let mut problems = Vec::new();
    if out.status.code() != Some(2) {
        problems.push(format!("exit status {:?}, expected 2", out.status.code()));
    }
    if message.is_empty() || message.contains('\n') {
        problems.push("stderr is not exactly one line".to_string());
    }
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        if message.contains(bad) {
            problems.push(format!("stderr mentions {bad:?}"));
        }
    }
    for e in &expect {
        if !message.contains(e.as_str()) {
            problems.push(format!("the message does not name {e:?}"));
        }
    }
    let after = snapshot(dir.path());
    if after != before {
        let changed: Vec<String> = after
            .keys()
            .chain(before.keys())
            .filter(|k| after.get(*k) != before.get(*k))
            .map(|k| p(k))
            .collect();
        problems.push(format!("files changed or appeared: {changed:?}"));
    }
    (!problems.is_empty()).then(|| {
        format!(
            "{}: {}\n    downhill train {}\n    stderr: {}",
            case.name,
            problems.join("; "),
            args.join(" "),
            stderr.chars().take(2000).collect::<String>()
        )
    })
}

fn check_all(cases: Vec<Case>) {
    let failures: Vec<String> = cases.iter().filter_map(check).collect();
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_broken_input_gets_one_line_naming_the_problem_and_changes_nothing() {
    check_all(cases());
}

#[test]
fn sizes_beyond_memory_get_one_line_too() {
    check_all(beyond_memory());
}

/// Arguments of a logistic regression on the built-in images with SGD at
/// `lr`: at 3e36 and above the loss overflows within the first epoch, at
/// 1.5e36 and below it stays finite for four epochs (measured; bit-exact and
/// seeded, so the same every time).
fn diverging(lr: &str, out: &Path) -> Vec<String> {
    let mut a: Vec<String> = [
        "train",
        "--data",
        "builtin:fashion-mnist-small",
        "--limit-train",
        "600",
        "--limit-test",
        "100",
        "--model",
        "logreg",
        "--batch-size",
        "32",
        "--epochs",
        "4",
        "--threads",
        "1",
        "--quiet",
        "--out",
    ]
    .map(s)
    .to_vec();
    a.push(p(out));
    a.push("--optimizer".into());
    a.push(format!("sgd(lr={lr})"));
    a
}

fn downhill(args: &[String]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args(args)
        .output()
        .unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_diverging_run_stops_with_one_line_naming_step_optimizer_and_rate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut args = diverging("3e36", &out);
    args.extend(["--checkpoint-every", "1"].map(s));
    let r = downhill(&args);
    let stderr = String::from_utf8_lossy(&r.stderr);
    let message = stderr.trim();
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert_eq!(message.lines().count(), 1, "{stderr}");
    let summary = json(&out.join("summary.json"));
    let step = summary["diverged"]["step"].as_u64().unwrap();
    for want in [
        format!("diverged at step {step} "),
        s("with sgd"),
        s("at lr 3e36"),
        s("the training loss is"),
    ] {
        assert!(message.contains(&want), "{message} lacks {want:?}");
    }
    // Caught on the step it happened: the checkpoint of the step before is
    // the newest, and it verifies.
    let (dir_used, state, warnings) =
        downhill_train::checkpoint::latest_trainer_state(&out).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(state.step, step - 1, "{}", dir_used.display());
    assert!(state.step_losses.iter().all(|(_, l)| l.is_finite()));
}

#[test]
fn back_off_halves_the_rate_until_the_run_completes_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("backoff");
    let mut args = diverging("1e37", &out);
    args.extend(["--on-divergence", "backoff"].map(s));
    let r = downhill(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // 1e37 → 5e36 → 2.5e36 all overflow in epoch 1; 1.25e36 trains.
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["backoffs"], 3, "{summary}");
    assert!(summary["diverged"].is_null(), "{summary}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    for l in &lines {
        assert_eq!(l["lr"].as_f64(), Some(1.25e36), "{l}");
        assert!(l["train_loss"].as_f64().unwrap().is_finite(), "{l}");
    }
    // Back-off restored the state before the first epoch: the run ends
    // exactly where a run started at the halved rate ends.
    let fresh = dir.path().join("fresh");
    let r = downhill(&diverging("1.25e36", &fresh));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let newest = |run: &Path| {
        let mut v: Vec<PathBuf> = std::fs::read_dir(run.join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        std::fs::read(v.last().unwrap().join("model.safetensors")).unwrap()
    };
    assert!(newest(&out) == newest(&fresh), "the backed-off run differs");

    // At most four halvings: 1e39 would need more, so the run stops, saying so.
    let stubborn = dir.path().join("stubborn");
    let mut args = diverging("1e39", &stubborn);
    args.extend(["--on-divergence", "backoff"].map(s));
    let r = downhill(&args);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("diverged at step") && stderr.contains("with sgd"),
        "{stderr}"
    );
    assert_eq!(json(&stubborn.join("summary.json"))["backoffs"], 4);
}

/// Full-batch gradient descent (one step an epoch) at 3e36 overflows on its
/// third step; 1.5e36 trains for four epochs. Back-off should get there.
#[test]
fn back_off_recovers_in_full_batch_mode() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut args = diverging("3e36", &out);
    let at = args.iter().position(|a| a == "--batch-size").unwrap();
    args[at + 1] = s("0");
    args.extend(["--on-divergence", "backoff"].map(s));
    let r = downhill(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let summary = json(&out.join("summary.json"));
    assert!(summary["backoffs"].as_u64().unwrap() >= 1, "{summary}");
    for l in std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
    {
        let l: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(l["test_loss"].as_f64().is_some_and(f64::is_finite), "{l}");
    }
}
