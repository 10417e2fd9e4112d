//! The transformer language model from the command line: on the embedded
//! corpus and on a text file, with every optimiser of the registry, and the
//! one-line refusals of text and models that do not go together.

mod common;

use common::{downhill, ok, records, refused};

const TINY: &str = "transformer:layers=1,d=16,heads=2,context=16";

#[test]
fn trains_on_the_embedded_corpus_by_steps_with_losses_in_nats_and_bits() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let stdout = ok(&[
        "train",
        "--data",
        "builtin:shakespeare",
        "--model",
        TINY,
        "--optimizer",
        "muon",
        "--batch-size",
        "16",
        "--steps",
        "30",
        "--eval-every",
        "10",
        "--out",
        out_s,
    ]);
    // Muon on the hidden matrices, AdamW on the rest: Keller Jordan's routing.
    // The run header goes to stderr (stdout stays for results).
    let text = String::from_utf8_lossy(&stdout.stderr);
    assert!(
        text.contains("blocks.0.attn.qkv.weight [16, 48] hidden: muon"),
        "{text}"
    );
    assert!(
        text.contains("tok_emb.weight [76, 16] input: adamw"),
        "{text}"
    );
    let recs = records(&out);
    assert_eq!(recs.len(), 3);
    let first = &recs[0];
    let last = &recs[2];
    assert_eq!(last["step"], 30);
    for r in &recs {
        let (loss, bits) = (
            r["test_loss"].as_f64().unwrap(),
            r["test_bits_per_char"].as_f64().unwrap(),
        );
        assert!((bits - loss / std::f64::consts::LN_2).abs() < 1e-12);
        let train_bits = r["train_bits_per_char"].as_f64().unwrap();
        assert!(
            (train_bits - r["train_loss"].as_f64().unwrap() / std::f64::consts::LN_2).abs() < 1e-12
        );
    }
    // An untrained model is near ln(76) = 4.33 nats; 30 steps learn something.
    assert!(last["test_loss"].as_f64().unwrap() < first["test_loss"].as_f64().unwrap());
    assert!(last["test_loss"].as_f64().unwrap() < 4.0, "{last}");
}

#[test]
fn trains_on_a_text_file_with_every_optimizer_of_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("corpus.txt");
    let text = "It was the best of times, it was the worst of times, it was the age of wisdom.\n"
        .repeat(12);
    std::fs::write(&file, text).unwrap();
    let data = format!("text:{}", file.display());
    let names: Vec<String> = downhill::optim::REGISTRY
        .iter()
        .map(|e| e.name.to_string())
        // Newton's exact Hessian exists for logistic regression only: refused
        // in the next test.
        .filter(|n| n != "newton")
        .chain(
            [
                "lbfgs",
                "lookahead(adamw)",
                "partition(hidden=soap,all=adamw)",
            ]
            .map(String::from),
        )
        .collect();
    assert!(names.len() > 20, "{names:?}");
    for name in &names {
        let out = dir.path().join(name.replace(['(', ')', '=', ','], "_"));
        let run = downhill(&[
            "train",
            "--data",
            &data,
            "--model",
            "transformer:layers=1,d=8,heads=2,context=8",
            "--optimizer",
            name,
            "--batch-size",
            "8",
            "--steps",
            "4",
            "--eval-every",
            "2",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(
            run.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let recs = records(&out);
        assert_eq!(recs.len(), 2, "{name}");
        assert!(recs[1]["test_loss"].as_f64().unwrap().is_finite(), "{name}");
    }
}

#[test]
fn text_and_models_that_do_not_fit_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let out_s = out.to_str().unwrap();
    let e = refused(&[
        "train",
        "--data",
        "builtin:shakespeare",
        "--model",
        TINY,
        "--optimizer",
        "newton",
        "--out",
        out_s,
    ]);
    assert!(e.contains("use lbfgs"), "{e}");
    let e = refused(&[
        "train",
        "--data",
        "builtin:shakespeare",
        "--model",
        "mlp:32",
        "--out",
        out_s,
    ]);
    assert!(e.contains("needs a sequence model"), "{e}");
    let e = refused(&[
        "train",
        "--data",
        "builtin:fashion-mnist-small",
        "--model",
        TINY,
        "--out",
        out_s,
    ]);
    assert!(e.contains("trains on text"), "{e}");
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, b"abc\xff\xfedef").unwrap();
    let spec = format!("text:{}", bad.display());
    let e = refused(&["train", "--data", &spec, "--model", TINY, "--out", out_s]);
    assert!(e.contains("bad.txt") && e.contains("UTF-8"), "{e}");
    assert!(!out.exists(), "a refused run left {out_s} behind");
}

#[test]
fn export_loads_in_torch_layout_names() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    ok(&[
        "train",
        "--data",
        "builtin:shakespeare",
        "--model",
        "transformer:layers=1,d=16,heads=2,context=16,tied=true",
        "--batch-size",
        "8",
        "--steps",
        "2",
        "--out",
        run.to_str().unwrap(),
    ]);
    let file = dir.path().join("m.safetensors");
    let out = ok(&[
        "export",
        "--run",
        run.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    let listing = String::from_utf8_lossy(&out.stdout);
    for name in [
        "tok_emb.weight [76, 16]",
        "blocks.0.attn.qkv.weight [48, 16]",
        "head.weight [76, 16]",
    ] {
        assert!(listing.contains(name), "{name} not in {listing}");
    }
}

#[test]
fn advise_speaks_of_a_language_model_not_of_features() {
    let out = ok(&["advise", "--data", "builtin:shakespeare", "--model", TINY]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("a language model's data"), "{text}");
    assert!(
        text.contains("adamw(lr=0.001,betas=0.9,0.99,weight_decay=0.1)"),
        "{text}"
    );
    assert!(
        !text.contains("density") && !text.contains("image"),
        "{text}"
    );
}
