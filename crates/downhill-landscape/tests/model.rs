//! The loss landscape of a trained model, end to end: train a tiny logistic
//! regression with downhill-train, then slice its loss.

mod common;

use downhill_landscape::model::{model_landscape, write_model_outputs, ModelSettings};
use downhill_train::{Silent, TrainConfig, Trainer};
use std::path::Path;

fn train(out: &Path, model: &str, optimizer: &str) {
    let cfg = TrainConfig {
        data: "builtin:fashion-mnist-small".into(),
        model: model.into(),
        optimizer: optimizer.into(),
        epochs: 2,
        batch_size: 50,
        limit_train: Some(400),
        limit_test: Some(100),
        threads: Some(2),
        ..Default::default()
    };
    Trainer::new(cfg, Some(out.to_path_buf()))
        .unwrap()
        .run(&mut Silent)
        .unwrap();
}

fn small(run: &Path) -> ModelSettings {
    ModelSettings {
        examples: 300,
        line_points: 31,
        resolution: 9,
        lines: 3,
        line_samples: 15,
        ..ModelSettings::new(run)
    }
}

#[test]
fn logistic_regression_is_convex_along_every_line_and_the_slice_is_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train(&run, "logreg", "adam(lr=0.01)");
    let mut messages = Vec::new();
    let m = model_landscape(&small(&run), &mut |s| messages.push(s.to_string())).unwrap();
    assert!(messages.len() >= 3, "{messages:?}");

    assert!(m.convex_along_every_line, "{}", m.verdict());
    assert!(m.interpolation.convex, "{}", m.interpolation.verdict());
    assert_eq!(m.random_lines.len(), 3);
    for l in &m.random_lines {
        assert!(l.convex, "{}", l.verdict());
        assert_eq!(l.alphas.len(), 15);
        // α = 0 is the trained weights themselves.
        assert_eq!(l.alphas[7], 0.0);
        assert_eq!(l.losses[7], m.final_loss);
    }
    assert!(
        m.verdict().starts_with("convex along all 4 lines"),
        "{}",
        m.verdict()
    );
    assert_eq!(m.examples, 300);
    assert_eq!(m.parameters, 784 * 10 + 10);
    // The line passes through θ₀ at α = 0 and θ₁ at α = 1.
    let line = &m.interpolation;
    assert_eq!((line.alphas[0], line.alphas[30]), (-0.25, 1.25));
    assert_eq!((line.alphas[5], line.alphas[25]), (0.0, 1.0));
    assert_eq!(line.losses[5], m.initial_loss);
    assert_eq!(line.losses[25], m.final_loss);
    assert!(
        m.final_loss < 0.5 * m.initial_loss,
        "{} → {}",
        m.initial_loss,
        m.final_loss
    );
    // The centre of the slice is θ₁ too.
    assert_eq!(m.surface.values.len(), 81);
    assert_eq!(m.surface.values[4 * 9 + 4], m.final_loss);
    assert!(m
        .surface
        .values
        .iter()
        .all(|v| v.is_finite() && *v >= m.final_loss * 0.5));
    assert_eq!(m.evaluations, 31 + 2 + 81 + 3 * 15);

    let out = dir.path().join("landscape");
    let files = write_model_outputs(&m, &out).unwrap();
    assert_eq!(files.len(), 8);
    let surface = common::check_png(&out.join("surface.png"), 800, 600, 40, 0.7);
    assert!(surface.colours.len() > 40);
    common::check_png(&out.join("interpolation.png"), 800, 600, 10, 0.97);
    common::check_png(&out.join("lines.png"), 800, 600, 10, 0.97);
    common::check_svg(
        &out.join("interpolation.svg"),
        &["θ₀ (initial, α = 0)", "training loss (300 examples)"],
    );
    common::check_svg(
        &out.join("surface.svg"),
        &["trained weights θ₁", "α (along δ, filter-normalised)"],
    );
    common::check_svg(&out.join("lines.svg"), &["random direction 3 (convex)"]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["convex_along_every_line"], true);
    assert_eq!(json["model"], "logreg");
    assert_eq!(json["final_loss"].as_f64().unwrap(), m.final_loss);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("| random direction 2 | 15 |"), "{md}");
    assert!(md.contains(&m.verdict()), "{md}");

    // Same seed, same numbers; another seed, other directions.
    let again = model_landscape(&small(&run), &mut |_| {}).unwrap();
    assert_eq!(again.surface, m.surface);
    let other = model_landscape(
        &ModelSettings {
            seed: 5,
            ..small(&run)
        },
        &mut |_| {},
    )
    .unwrap();
    assert_ne!(other.surface, m.surface);
    assert_eq!(other.interpolation.losses, m.interpolation.losses);
}

#[test]
fn folders_that_are_not_training_runs_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let e = model_landscape(&small(dir.path()), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("init.safetensors") && e.contains("downhill train --out"),
        "{e}"
    );
    std::fs::write(dir.path().join("init.safetensors"), b"not a model").unwrap();
    let e = model_landscape(&small(dir.path()), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("checkpoint"), "{e}");
    let file = dir.path().join("init.safetensors");
    let e = model_landscape(&small(&file), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("--checkpoint: ") && e.contains("not a folder"),
        "{e}"
    );
}

/// A binary problem in LIBSVM format: two Gaussian clouds, sparse rows.
fn write_libsvm(path: &Path) {
    let mut rng = downhill::Rng::new(4);
    let mut text = String::new();
    for i in 0..240 {
        let label = i % 2;
        let sign = if label == 1 { 1.0 } else { -1.0 };
        text.push_str(&label.to_string());
        for j in 1..=30 {
            // About a third of the features are present in each row.
            if rng.uniform() < 0.35 {
                let v = 0.6 * sign * (j % 3) as f64 + rng.normal();
                text.push_str(&format!(" {j}:{v:.4}"));
            }
        }
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn sparse_logistic_regression_is_convex_along_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("train.svm");
    write_libsvm(&data);
    let run = dir.path().join("run");
    let cfg = TrainConfig {
        data: format!("libsvm:{}", data.display()),
        model: "logreg".into(),
        optimizer: "sgd(lr=0.5)".into(),
        epochs: 3,
        batch_size: 16,
        l2: 1e-3,
        threads: Some(2),
        ..Default::default()
    };
    Trainer::new(cfg, Some(run.clone()))
        .unwrap()
        .run(&mut Silent)
        .unwrap();
    let settings = ModelSettings {
        examples: 100,
        lines: 0,
        ..small(&run)
    };
    let m = model_landscape(&settings, &mut |_| {}).unwrap();
    assert_eq!(m.examples, 100);
    assert!(m.convex_along_every_line, "{}", m.verdict());
    assert_eq!(
        m.verdict(),
        "convex along the interpolation line (no random lines tested)"
    );
    assert!(m.final_loss < m.initial_loss);
    let out = dir.path().join("landscape");
    let files = write_model_outputs(&m, &out).unwrap();
    assert_eq!(files.len(), 6, "no lines chart without random lines");
    assert!(!out.join("lines.png").exists());
    common::check_png(&out.join("surface.png"), 800, 600, 40, 0.7);
}
