//! The README and the help texts say what the code has: the README's table
//! of optimisers is the registry's (`downhill optimizers --markdown`), and
//! `downhill compare --help` lists every preset.

use std::process::Command;

fn downhill(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_readmes_optimizer_table_is_the_registrys() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = "<!-- optimizers: downhill optimizers --markdown -->\n";
    let end = "<!-- /optimizers -->";
    let i = readme.find(start).expect("the table's opening marker") + start.len();
    let j = readme[i..].find(end).expect("the table's closing marker") + i;
    let table = downhill(&["optimizers", "--markdown"]);
    assert_eq!(
        &readme[i..j],
        table,
        "the README's table differs from `downhill optimizers --markdown`: paste its output between the markers"
    );
    for e in downhill::optim::REGISTRY {
        assert!(table.contains(&format!("| `{}` |", e.name)), "{}", e.name);
    }
}

#[test]
fn compare_help_lists_every_preset() {
    // clap wraps long lines: compare with the whitespace collapsed.
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let help = words(&downhill(&["compare", "--help"]));
    for name in downhill_lab::presets::PRESETS {
        let p = downhill_lab::presets::preset(name).unwrap();
        assert!(
            help.contains(&format!("{name} {}", words(p.description))),
            "`downhill compare --help` does not list {name}"
        );
    }
}
