//! Errors from reading a TOML config: one line (the command line prints
//! exactly one), with the position of the problem.

use downhill_train::TrainConfig;

#[test]
fn toml_syntax_errors_are_one_line_with_line_and_column() {
    // toml's message for an unterminated value spans two lines.
    let text = "epochs = 3\nmodel = \"mlp:16\nseed = 1\n";
    let e = TrainConfig::from_toml(text).unwrap_err().to_string();
    assert!(!e.contains('\n'), "{e:?}");
    assert!(e.starts_with("line 2, column "), "{e}");

    let e = TrainConfig::from_toml("epochs = 3\nbatch_size = =\n")
        .unwrap_err()
        .to_string();
    assert!(!e.contains('\n'), "{e:?}");
    assert!(e.starts_with("line 2, column 14:"), "{e}");
}

#[test]
fn unknown_keys_and_wrong_types_name_the_key_and_its_line() {
    let e = TrainConfig::from_toml("epochs = 3\n\nepochz = 4\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("line 3, column 1:") && e.contains("epochz"),
        "{e}"
    );
    assert!(
        e.contains("epochs"),
        "the message lists the valid keys: {e}"
    );

    let e = TrainConfig::from_toml("epochs = \"three\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("line 1, column 10:") && !e.contains('\n'),
        "{e}"
    );
}

#[test]
fn a_config_file_error_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.toml");
    std::fs::write(&path, "seed = 1\nlr = 0.1\n").unwrap();
    let e = TrainConfig::from_toml_file(&path).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: line 2, column 1:", path.display())),
        "{e}"
    );
    assert!(e.contains("lr") && !e.contains('\n'), "{e}");

    // Not UTF-8: named, one line.
    std::fs::write(&path, b"seed = 1\nmodel = \"\xff\"\n").unwrap();
    let e = TrainConfig::from_toml_file(&path).unwrap_err().to_string();
    assert!(
        e.starts_with(&path.display().to_string()) && !e.contains('\n'),
        "{e}"
    );
}

/// Found by the `config_toml` fuzz target (14 inputs, one cause): a TOML
/// string may hold a line break, and the spec parsers quoted the text they
/// could not read as it was, so the message spanned several lines.
#[test]
fn specs_with_line_breaks_are_quoted_on_one_line() {
    for (text, names) in [
        ("optimizer = \"sgd(lr=0.05,\\nmomentum\"\n", "--optimizer"),
        ("optimizer = \"sxxx\\nxx(lr=1)\"\n", "--optimizer"),
        ("optimizer = \"sgd(lr=0\\t5)\"\n", "--optimizer"),
        (
            "schedule = \"steplr(step_size=5,\\ngamma)\"\n",
            "--schedule",
        ),
        ("model = \"mlp:1\\nx\"\n", "--model"),
        ("model = \"mlp:16:\\nfoo=2\"\n", "--model"),
        // The rerun after the fix above found the same in --normalise.
        ("normalise = \"scale\\n01\"\n", "--normalise"),
    ] {
        let cfg = TrainConfig::from_toml(text).unwrap();
        let e = cfg
            .validate()
            .map(|_| cfg.optimizer_spec().map(|_| ()))
            .and_then(|r| r)
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\n') && !e.contains('\t'), "{text}: {e:?}");
        assert!(
            e.contains(names) && (e.contains("\\n") || e.contains("\\t")),
            "{text}: {e}"
        );
    }
}
