//! Character-level text (`text:FILE[,VALID_FILE]`, `builtin:shakespeare`):
//! windows, vocabulary, held-out text, and one clear error per bad input.

use downhill_data::*;
use std::io::Read;
use std::path::{Path, PathBuf};

fn opts(sequence: usize) -> LoadOptions {
    LoadOptions {
        sequence: Some(sequence),
        ..LoadOptions::default()
    }
}

fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write a text file");
    p
}

/// The rows of a data set, each as token ids.
fn rows(d: &Dataset) -> Vec<Vec<u32>> {
    let Features::Dense(m) = d.features() else {
        panic!("text rows must be dense");
    };
    m.values()
        .chunks_exact(d.dim())
        .map(|r| r.iter().map(|&v| v as u32).collect())
        .collect()
}

fn text_spec(train: &Path, valid: Option<&Path>) -> String {
    match valid {
        None => format!("text:{}", train.display()),
        Some(v) => format!("text:{},{}", train.display(), v.display()),
    }
}

fn load_err(spec: &str, o: &LoadOptions) -> String {
    match load(spec, o) {
        Ok(_) => panic!("{spec} loaded, expected an error"),
        Err(e) => e.to_string(),
    }
}

fn assert_contains(message: &str, parts: &[&str]) {
    for p in parts {
        assert!(message.contains(p), "{message:?} lacks {p:?}");
    }
    assert!(!message.contains('\n'), "one line expected: {message:?}");
}

#[test]
fn windows_overlap_by_one_and_are_labelled_with_their_last_token() {
    let dir = tempfile::tempdir().unwrap();
    // vocabulary a b c e g -> 0 1 2 3 4; tokens c a b b a g e = 2 0 1 1 0 4 3.
    let train = file(dir.path(), "cabbage.txt", b"cabbage");
    let valid = file(dir.path(), "valid.txt", b"gabbace");
    let s = load(&text_spec(&train, Some(&valid)), &opts(3)).unwrap();
    let (tr, te) = (&s.train, s.test.as_ref().unwrap());
    assert!(s.valid.is_none());
    assert_eq!(rows(tr), [[2, 0, 1], [1, 1, 0], [0, 4, 3]]);
    assert_eq!(tr.labels(), [1, 0, 3]);
    assert_eq!(tr.class_names(), ["a", "b", "c", "e", "g"]);
    assert_eq!((tr.classes(), tr.dim(), tr.len()), (5, 3, 3));
    assert_eq!(rows(te), [[4, 0, 1], [1, 1, 0], [0, 2, 3]]);
    assert_eq!(te.labels(), [1, 0, 3]);
    assert_eq!(te.class_names(), tr.class_names());
    assert!(tr.is_text() && te.is_text());
    assert_eq!(tr.name(), "cabbage");
    assert!(tr.image().is_none());

    // S = 2: every token after the first is a target exactly once.
    let s = load(&text_spec(&train, Some(&valid)), &opts(2)).unwrap();
    assert_eq!(
        rows(&s.train),
        [[2, 0], [0, 1], [1, 1], [1, 0], [0, 4], [4, 3]]
    );
    assert_eq!(s.train.labels(), [0, 1, 1, 0, 4, 3]);

    // A trailing token that does not complete a window is dropped.
    let eight = file(dir.path(), "eight.txt", b"cabbagea");
    let s = load(&text_spec(&eight, Some(&valid)), &opts(3)).unwrap();
    assert_eq!(s.train.len(), 3);
}

#[test]
fn unicode_characters_are_tokens_in_code_point_order() {
    let dir = tempfile::tempdir().unwrap();
    let train = file(dir.path(), "u.txt", "é a\nzé".as_bytes());
    let valid = file(dir.path(), "v.txt", "a é\n".as_bytes());
    let s = load(&text_spec(&train, Some(&valid)), &opts(2)).unwrap();
    assert_eq!(s.train.class_names(), ["\n", " ", "a", "z", "é"]);
    assert_eq!(s.train.labels(), [1, 2, 0, 3, 4]);
    assert_eq!(rows(s.test.as_ref().unwrap()), [[2, 1], [1, 4], [4, 0]]);
}

#[test]
fn without_a_validation_file_the_last_tenth_is_held_out() {
    let dir = tempfile::tempdir().unwrap();
    let train = file(dir.path(), "t.txt", "abcdefghij".repeat(3).as_bytes());
    let s = load(&text_spec(&train, None), &opts(3)).unwrap();
    // 30 characters: the first 27 train (13 windows), the last 3 test.
    assert_eq!(s.train.len(), 13);
    assert_eq!(rows(&s.train)[0], [0, 1, 2]);
    assert_eq!(rows(&s.train)[12], [4, 5, 6]);
    let te = s.test.as_ref().unwrap();
    assert_eq!(
        (rows(te), te.labels().to_vec()),
        (vec![vec![7, 8, 9]], vec![9])
    );

    // The split is at a character boundary, not a byte offset.
    let wide = file(dir.path(), "w.txt", "αβγδεζηθικ".repeat(2).as_bytes());
    let s = load(&text_spec(&wide, None), &opts(2)).unwrap();
    assert_eq!((s.train.len(), s.test.as_ref().unwrap().len()), (17, 1));
    assert_eq!(s.test.as_ref().unwrap().labels(), [9]);
}

#[test]
fn limits_and_the_validation_carve_apply_to_windows() {
    let dir = tempfile::tempdir().unwrap();
    let train = file(dir.path(), "t.txt", "abcdefghij".repeat(10).as_bytes());
    let o = LoadOptions {
        limit_train: Some(20),
        limit_test: Some(2),
        valid: Some(ValidSplit::Count(5)),
        ..opts(5)
    };
    let s = load(&text_spec(&train, None), &o).unwrap();
    let (tr, va, te) = (
        &s.train,
        s.valid.as_ref().unwrap(),
        s.test.as_ref().unwrap(),
    );
    assert_eq!((tr.len(), va.len(), te.len()), (15, 5, 2));
    assert!(tr.is_text() && va.is_text() && te.is_text());
    assert_eq!(va.dim(), 5);
    // Normalise::None is as good as Auto: ids are never scaled.
    let o = LoadOptions {
        normalise: Normalise::None,
        ..opts(5)
    };
    let n = load(&text_spec(&train, None), &o).unwrap();
    assert_eq!(rows(&n.train)[1], [4, 5, 6, 7, 8]);
}

#[test]
fn text_needs_a_sequence_length_of_at_least_two() {
    let dir = tempfile::tempdir().unwrap();
    let train = file(dir.path(), "t.txt", b"abcabcabcabc");
    let spec = text_spec(&train, None);
    let m = load_err(&spec, &LoadOptions::default());
    assert_contains(
        &m,
        &[
            &format!("{spec} is a character stream"),
            "sequence model",
            "--model transformer:",
            "context=",
        ],
    );
    let m = load_err("builtin:shakespeare", &LoadOptions::default());
    assert_contains(&m, &["builtin:shakespeare is a character stream"]);
    for s in [0, 1] {
        let m = load_err(&spec, &opts(s));
        assert_contains(&m, &["sequence", &spec, "at least 2"]);
    }
}

#[test]
fn token_ids_are_never_scaled() {
    let dir = tempfile::tempdir().unwrap();
    let train = file(dir.path(), "t.txt", b"abcabcabcabc");
    let spec = text_spec(&train, None);
    for how in [Normalise::Scale01, Normalise::Standardise] {
        let o = LoadOptions {
            normalise: how,
            ..opts(2)
        };
        assert_contains(
            &load_err(&spec, &o),
            &["normalise", &spec, "must not be scaled"],
        );
        let m = load_err("builtin:shakespeare", &o);
        assert_contains(
            &m,
            &["normalise", "builtin:shakespeare", "must not be scaled"],
        );
    }
}

#[test]
fn bad_files_give_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = file(dir.path(), "good.txt", b"abcabcabcabcabcabcabc");
    let p = |n: &str| dir.path().join(n).display().to_string();

    // Missing, for either file.
    let missing = dir.path().join("missing.txt");
    let m = load_err(&text_spec(&missing, None), &opts(2));
    assert_contains(&m, &[&p("missing.txt")]);
    let m = load_err(&text_spec(&good, Some(&missing)), &opts(2));
    assert_contains(&m, &[&p("missing.txt")]);

    // Empty.
    let empty = file(dir.path(), "empty.txt", b"");
    let m = load_err(&text_spec(&empty, None), &opts(2));
    assert_contains(&m, &[&p("empty.txt"), "empty", "UTF-8 text"]);
    let m = load_err(&text_spec(&good, Some(&empty)), &opts(2));
    assert_contains(&m, &[&p("empty.txt"), "empty"]);

    // Not UTF-8: the byte offset of the first bad byte.
    let bad = file(dir.path(), "bad.txt", b"abc\xe9abcabcabcabcabcabc");
    let m = load_err(&text_spec(&bad, None), &opts(2));
    assert_contains(&m, &[&p("bad.txt"), "not valid UTF-8 at byte 3"]);
    let m = load_err(&text_spec(&good, Some(&bad)), &opts(2));
    assert_contains(&m, &[&p("bad.txt"), "at byte 3"]);
    // ... unless bad bytes are replaced on request.
    let o = LoadOptions {
        lossy_utf8: true,
        ..opts(2)
    };
    let s = load(&text_spec(&bad, None), &o).unwrap();
    assert!(s.train.class_names().contains(&"\u{fffd}".to_string()));

    // Shorter than one window.
    let short = file(dir.path(), "short.txt", b"abc");
    let m = load_err(&text_spec(&short, None), &opts(8));
    assert_contains(&m, &[&p("short.txt"), "3 characters", "sequence = 8"]);
    let m = load_err(&text_spec(&good, Some(&short)), &opts(8));
    assert_contains(&m, &[&p("short.txt"), "3 characters", "sequence = 8"]);
    // Long enough, but its last 10% is not.
    let m = load_err(&text_spec(&good, None), &opts(3));
    assert_contains(
        &m,
        &[&p("good.txt"), "last 10%", "2 characters", "sequence = 3"],
    );
    // Its last 10% is, but the first 90% is not.
    let tiny = file(dir.path(), "tiny.txt", b"abcdefghij");
    let m = load_err(&text_spec(&tiny, None), &opts(10));
    assert_contains(&m, &[&p("tiny.txt"), "first 90%", "9 characters"]);
}

#[test]
fn held_out_characters_must_be_in_the_training_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    let train = file(dir.path(), "train.txt", "ab\nab\nab\nab\n".as_bytes());
    let valid = file(dir.path(), "valid.txt", "ab\naé\n".as_bytes());
    let m = load_err(&text_spec(&train, Some(&valid)), &opts(2));
    let at = format!("{}:2:2", valid.display());
    assert_contains(&m, &[&at, "'é'", "training text"]);

    // In the held-out tail, the position is within the whole file.
    let tail = file(
        dir.path(),
        "tail.txt",
        format!("{}\nab\tb", "ab\n".repeat(10)).as_bytes(),
    );
    let m = load_err(&text_spec(&tail, None), &opts(2));
    let at = format!("{}:12:3", tail.display());
    assert_contains(&m, &[&at, "'\\t'"]);
}

fn builtin_text() -> String {
    let gz = builtin::builtin_text("shakespeare").expect("shakespeare is embedded");
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut text)
        .expect("the embedded text is gzipped UTF-8");
    text
}

#[test]
fn builtin_shakespeare_is_the_documented_text() {
    let gz = builtin::builtin_text("shakespeare").unwrap();
    assert!(gz.len() < 400_000, "{} bytes embedded", gz.len());
    let text = builtin_text();
    assert_eq!(text.len(), 940_246);
    assert!(text.is_ascii() && !text.contains('\r'));
    assert!(text.starts_with("HAMLET, PRINCE OF DENMARK"));
    assert!(text.contains("To be, or not to be"));
    assert!(builtin::builtin_description("shakespeare")
        .unwrap()
        .contains("public domain"));
    assert!(builtin::builtin_files("shakespeare").is_none());
}

#[test]
fn builtin_shakespeare_loads_like_a_text_file() {
    let s = load("builtin:shakespeare", &opts(129)).unwrap();
    let (tr, te) = (&s.train, s.test.as_ref().unwrap());
    assert!(tr.is_text() && te.is_text());
    assert_eq!(tr.name(), "shakespeare");
    assert_eq!(tr.classes(), 76);
    assert!(tr.classes() < 256);
    assert_eq!(tr.class_names()[..3], ["\n", " ", "!"]);
    assert!(tr.class_names().iter().all(|c| c.chars().count() == 1));
    // 940,246 characters: 846,222 train, 94,024 held out; windows of 129, stride 128.
    assert_eq!((tr.len(), te.len()), (6611, 734));
    assert_eq!(tr.dim(), 129);

    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "shakespeare.txt", builtin_text().as_bytes());
    let f = load(&text_spec(&path, None), &opts(129)).unwrap();
    assert_eq!(f.train.features(), tr.features());
    assert_eq!(f.train.labels(), tr.labels());
    assert_eq!(f.train.class_names(), tr.class_names());
    let ft = f.test.as_ref().unwrap();
    assert_eq!((ft.features(), ft.labels()), (te.features(), te.labels()));
}

#[test]
fn sequence_is_ignored_by_other_data() {
    let s = load(
        "builtin:fashion-mnist-small",
        &LoadOptions {
            limit_train: Some(10),
            limit_test: Some(10),
            ..opts(129)
        },
    )
    .unwrap();
    assert!(!s.train.is_text() && !s.test.unwrap().is_text());
}

#[test]
fn with_text_checks_the_token_ids() {
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let d = |v: Vec<f32>, dim| {
        let rows = v.len() / dim;
        Dataset::new(
            "t",
            Features::Dense(Dense::new(v, dim).unwrap()),
            vec![0; rows],
            names.clone(),
        )
        .unwrap()
    };
    assert!(d(vec![0.0, 1.0, 2.0, 2.0], 2)
        .with_text()
        .unwrap()
        .is_text());
    assert!(!d(vec![0.0, 1.0], 2).is_text());
    for bad in [
        vec![0.0, 3.0],
        vec![0.0, -1.0],
        vec![0.0, 0.5],
        vec![f32::NAN, 0.0],
    ] {
        assert!(d(bad, 2).with_text().is_err());
    }
    assert!(d(vec![0.0, 1.0], 1).with_text().is_err());
    let sparse = Dataset::new("s", Features::Sparse(Csr::empty(2)), vec![], names).unwrap();
    assert!(sparse.with_text().is_err());
}
