//! `downhill landscape` end to end: the binary on tiny inputs, its files and
//! its errors.

use std::path::Path;
use std::process::{Command, Output};

fn downhill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = downhill(args);
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Checks the PNG signature and the size in its header, and that it is not
/// a tiny placeholder. (The library's tests decode the pixels.)
fn check_png(path: &Path, width: u32, height: u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    assert_eq!((be(16), be(20)), (width, height), "{}", path.display());
    assert!(
        bytes.len() > 10_000,
        "{}: {} bytes",
        path.display(),
        bytes.len()
    );
}

fn check_svg(path: &Path, texts: &[&str]) {
    let svg = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
        "{}",
        path.display()
    );
    for t in texts {
        assert!(svg.contains(t), "{}: `{t}` missing", path.display());
    }
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn function_mode_shows_momentum_beating_gd_on_a_ravine() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ravine");
    let stdout = ok(&[
        "landscape",
        "--function",
        "quadratic",
        "--condition",
        "25",
        "--optimizers",
        "sgd(lr=0.01),sgd(lr=0.01,momentum=0.9),adam(lr=0.1)",
        "--steps",
        "3000",
        "--animate",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(stdout.contains("κ = 25"), "{stdout}");
    assert!(stdout.contains("at the minimum (0, 0)"), "{stdout}");
    for f in ["paths.png", "loss.png"] {
        check_png(&out.join(f), 800, 600);
    }
    check_svg(
        &out.join("paths.svg"),
        &[
            "sgd(lr=0.01,momentum=0.9)",
            "minimum",
            "common start (-4, 2)",
        ],
    );
    check_svg(&out.join("loss.svg"), &["f − f_min", "adam(lr=0.1)"]);
    // The step axis counts whole steps.
    let loss_svg = std::fs::read_to_string(out.join("loss.svg")).unwrap();
    let x_ticks: Vec<&str> = loss_svg
        .split("<text ")
        .skip(1)
        .filter_map(|t| {
            let (attrs, rest) = t.split_once('>')?;
            let text = rest.split("</text>").next()?;
            let centred = attrs.contains("text-anchor=\"middle\"") && !attrs.contains("rotate(");
            (centred && text.parse::<f64>().is_ok()).then_some(text)
        })
        .collect();
    assert!(
        x_ticks.len() >= 2 && x_ticks.iter().all(|t| !t.contains('.')),
        "{x_ticks:?}"
    );
    let gif = std::fs::read(out.join("paths.gif")).unwrap();
    assert_eq!(&gif[..6], b"GIF89a");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("| sgd(lr=0.01,momentum=0.9) |"), "{md}");

    let s = json(&out.join("summary.json"));
    let csv = std::fs::read_to_string(out.join("paths.csv")).unwrap();
    assert_eq!(csv.lines().next(), Some("optimizer,step,x,y,f"));
    assert_eq!(s["function"], "quadratic");
    assert_eq!(s["condition"], 25.0);
    let runs = s["runs"].as_array().unwrap();
    let steps = |i: usize| runs[i]["target_step"].as_u64().expect("reached");
    assert!(
        2 * steps(1) < steps(0),
        "momentum {} vs gd {}",
        steps(1),
        steps(0)
    );
    for r in runs {
        assert_eq!(r["stop"]["reason"], "target");
        assert_eq!(r["ending"]["kind"], "minimum");
        // The summary's numbers are those of the recorded path in paths.csv.
        let name = r["optimizer"].as_str().unwrap();
        let path: Vec<Vec<f64>> = csv
            .lines()
            .skip(1)
            .filter_map(|row| row.strip_prefix(&format!("\"{name}\",")))
            .map(|rest| rest.split(',').map(|x| x.parse().unwrap()).collect())
            .collect();
        assert_eq!(path.len() as u64, r["steps"].as_u64().unwrap() + 1);
        assert_eq!(r["target_step"], r["steps"]);
        for (k, row) in path.iter().enumerate() {
            assert_eq!(row[0], k as f64);
            let (x, y) = (row[1], row[2]);
            assert_eq!(row[3], 0.5 * (x * x + 25.0 * y * y), "{name} step {k}");
        }
        let last = path.last().unwrap();
        assert_eq!(r["final_point"], serde_json::json!([last[1], last[2]]));
        assert_eq!(r["final_value"].as_f64().unwrap(), last[3]);
        assert!(last[3] <= 1e-6);
    }
}

/// The README's Rosenbrock command, as printed there: every optimiser is
/// described by what it did (momentum SGD near (1, 1) without meeting the
/// tolerance, Adam still moving, L-BFGS with its line search at the minimum).
#[test]
fn readme_rosenbrock_example_converges_with_lbfgs_and_says_near_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = ok(&[
        "landscape",
        "--function",
        "rosenbrock",
        "--optimizers",
        "sgd(lr=0.001,momentum=0.9),adam(lr=0.05),lbfgs(line_search_fn=strong_wolfe)",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{stdout}"))
            .to_string()
    };
    let sgd = line("sgd(");
    assert!(sgd.contains("target not reached in 500 steps"), "{sgd}");
    assert!(sgd.contains("near the minimum (1, 1)"), "{sgd}");
    let adam = line("adam(");
    assert!(adam.contains("still moving"), "{adam}");
    let lbfgs = line("lbfgs(");
    assert!(lbfgs.contains("target at step"), "{lbfgs}");
    assert!(lbfgs.contains("at the minimum (1, 1)"), "{lbfgs}");
    assert!(!stdout.contains("diverged"), "{stdout}");
}

#[test]
fn saddle_defaults_escape_and_are_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("saddle");
    let stdout = ok(&[
        "landscape",
        "--function",
        "saddle",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        stdout.contains("escaped the saddle at (0, 0) along +y"),
        "{stdout}"
    );
    check_png(&out.join("paths.png"), 800, 600);
    check_svg(&out.join("loss.svg"), &["escape level f = -1", "f(x, y)"]);
    check_svg(&out.join("paths.svg"), &["saddle point"]);
    assert!(!out.join("paths.gif").exists());
    let s = json(&out.join("summary.json"));
    assert_eq!(s["start"], serde_json::json!([1.5, 0.001]));
    assert_eq!(s["target"]["kind"], "escape");
    assert_eq!(s["runs"].as_array().unwrap().len(), 4);
}

#[test]
fn convexity_verdicts() {
    for (name, verdict) in [
        ("quadratic", "convex on the window"),
        ("booth", "convex on the window"),
        ("logistic", "convex on the window"),
        ("rosenbrock", "not convex: Jensen's inequality fails"),
        ("monkey-saddle", "not convex: Jensen's inequality fails"),
    ] {
        let stdout = ok(&[
            "landscape",
            "--convexity",
            name,
            "--pairs",
            "300",
            "--hessians",
            "100",
        ]);
        assert!(
            stdout.starts_with(&format!("{name}: {verdict}")),
            "{stdout}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    ok(&[
        "landscape",
        "--convexity",
        "saddle",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let report = json(&dir.path().join("convexity.json"));
    assert_eq!(report["convex"], false);
    assert_eq!(report["hessian_witness"]["eigenvalue"], -2.0);
}

#[test]
fn checkpoint_mode_slices_a_trained_logistic_regression() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    ok(&[
        "train",
        "--data",
        "builtin:fashion-mnist-small",
        "--model",
        "logreg",
        "--optimizer",
        "adam(lr=0.01)",
        "--epochs",
        "2",
        "--limit-train",
        "300",
        "--limit-test",
        "50",
        "--quiet",
        "--out",
        run_s,
    ]);
    let out = dir.path().join("landscape");
    let stdout = ok(&[
        "landscape",
        "--checkpoint",
        run_s,
        "--resolution",
        "7",
        "--lines",
        "2",
        "--line-samples",
        "11",
        "--line-points",
        "21",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        stdout.contains("convex along all 3 lines tested"),
        "{stdout}"
    );
    for f in ["interpolation.png", "surface.png", "lines.png"] {
        check_png(&out.join(f), 800, 600);
    }
    check_svg(&out.join("surface.svg"), &["trained weights θ₁"]);
    let s = json(&out.join("summary.json"));
    assert_eq!(s["convex_along_every_line"], true);
    assert_eq!(s["examples"], 300);
    assert_eq!(s["surface"]["values"].as_array().unwrap().len(), 49);
    assert!(s["final_loss"].as_f64().unwrap() < s["initial_loss"].as_f64().unwrap());
}

#[test]
fn user_errors_exit_2_with_one_line_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--function", "parabola", "--out", d],
            "--function: unknown function `parabola`",
        ),
        (
            &["--function", "saddle"],
            "--out DIR is required with --function",
        ),
        (
            &["--function", "booth", "--condition", "3", "--out", d],
            "--condition: applies only to the quadratic",
        ),
        (
            &["--function", "quadratic", "--condition", "0.5", "--out", d],
            "--condition: 0.5 is invalid",
        ),
        (
            &["--function", "rosenbrock", "--start", "1", "--out", d],
            "--start: `1` is invalid",
        ),
        (
            &[
                "--function",
                "rosenbrock",
                "--optimizers",
                "adamm",
                "--out",
                d,
            ],
            "--optimizers: unknown optimizer `adamm`",
        ),
        (
            &[
                "--function",
                "rosenbrock",
                "--optimizers",
                "sgd(lr=-1)",
                "--out",
                d,
            ],
            "--optimizers: `sgd(lr=-1)`",
        ),
        (
            &[
                "--function",
                "rosenbrock",
                "--optimizers",
                "sgd,sgd",
                "--out",
                d,
            ],
            "given twice",
        ),
        (
            &["--function", "rosenbrock", "--steps", "0", "--out", d],
            "--steps: 0 is invalid",
        ),
        (
            &["--function", "rosenbrock", "--tolerance", "-1", "--out", d],
            "--tolerance: -1 is invalid",
        ),
        (
            &["--function", "rosenbrock", "--noise", "nan", "--out", d],
            "--noise: NaN is invalid",
        ),
        (
            &["--function", "booth", "--examples", "3", "--out", d],
            "--examples applies to --checkpoint",
        ),
        (
            &["--convexity", "booth", "--animate"],
            "--animate applies to --function",
        ),
        (
            &["--convexity", "nope"],
            "--convexity: unknown function `nope`",
        ),
        (
            &["--convexity", "booth", "--pairs", "0"],
            "--pairs: 0 is invalid",
        ),
        (
            &["--checkpoint", d],
            "--out DIR is required with --checkpoint",
        ),
        (&["--checkpoint", d, "--out", d], "init.safetensors"),
        (
            &["--checkpoint", "/nonexistent/run", "--out", d],
            "--checkpoint: /nonexistent/run is not a folder",
        ),
        (
            &["--checkpoint", d, "--resolution", "2", "--out", d],
            "--resolution: 2 is invalid",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["landscape"];
        all.extend_from_slice(args);
        let out = downhill(&all);
        assert_eq!(out.status.code(), Some(2), "{all:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{all:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(want),
            "{all:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{all:?}");
    }
    // Choosing no mode, or two, is refused by the parser.
    assert_eq!(downhill(&["landscape"]).status.code(), Some(2));
    assert_eq!(
        downhill(&["landscape", "--function", "booth", "--convexity", "booth"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn help_explains_every_flag_with_examples() {
    let help = ok(&["landscape", "--help"]);
    for flag in [
        "--function",
        "--convexity",
        "--checkpoint",
        "--optimizers",
        "--start",
        "--steps",
        "--tolerance",
        "--noise",
        "--condition",
        "--animate",
        "--seed",
        "--out",
        "--pairs",
        "--hessians",
        "--examples",
        "--resolution",
        "--span",
        "--lines",
        "--line-points",
        "--line-samples",
    ] {
        assert!(
            help.contains(&format!("{flag} <")) || help.contains(&format!("{flag}\n")),
            "{flag} is not listed"
        );
    }
    for text in [
        "Modes (choose one)",
        "Examples:",
        "paths.gif",
        "filter-normalised",
        "rastrigin sgd(lr=0.002)",
    ] {
        assert!(help.contains(text), "`{text}` missing from the help");
    }
    let top = ok(&["--help"]);
    assert!(top.contains("landscape"), "{top}");
}
