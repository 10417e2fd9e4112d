//! Character-level text for language models (`text:FILE[,VALID_FILE]` and the
//! embedded `builtin:shakespeare`).
//!
//! A text is a sequence of characters (Unicode scalar values). The vocabulary
//! is the set of distinct characters of the training text, sorted by code
//! point; token id `k` is the `k`-th of them. With `sequence = S` tokens per
//! window (context `C = S - 1`), window `i` holds tokens `[i*C, i*C + S)` for
//! every `i` with `i*C + S <= n`: consecutive windows share one token, so every
//! token after the first is a prediction target exactly once. Each window is
//! one [`Dataset`] row: the `S` token ids as `f32` (exact), labelled with its
//! last token, with one class per vocabulary character.

use crate::source::decode;
use crate::{DataError, Dataset, Dense, Features, LoadOptions, Normalise};
use std::collections::HashMap;
use std::path::Path;

/// Decodes a text file's bytes (gzip-compressed or not) into characters.
///
/// Fails on empty data and on invalid UTF-8, naming `origin` and the byte
/// offset of the first bad sequence (in the decompressed data for gzip), unless
/// `lossy` replaces bad sequences with U+FFFD.
pub fn parse_text(bytes: &[u8], origin: &str, lossy: bool) -> Result<Vec<char>, DataError> {
    let bytes = decode(bytes, origin)?;
    if bytes.is_empty() {
        return Err(DataError::NoExamples {
            origin: origin.to_string(),
            reason: "the file is empty: expected UTF-8 text".into(),
        });
    }
    match std::str::from_utf8(&bytes) {
        Ok(s) => Ok(s.chars().collect()),
        Err(_) if lossy => Ok(String::from_utf8_lossy(&bytes).chars().collect()),
        Err(e) => Err(DataError::NonUtf8 {
            path: origin.into(),
            offset: e.valid_up_to(),
        }),
    }
}

/// The sorted distinct characters of `text`: the vocabulary, in token-id order.
pub fn text_vocabulary(text: &[char]) -> Vec<char> {
    let mut v = text.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// Checks the options that text data needs and returns the window length.
fn sequence(origin: &str, opts: &LoadOptions) -> Result<usize, DataError> {
    let s = opts.sequence.ok_or_else(|| DataError::NeedsSequence {
        origin: origin.to_string(),
    })?;
    if s < 2 {
        return Err(DataError::option(
            "sequence",
            format!("{origin}: {s} tokens per window, expected at least 2 (context + 1)"),
        ));
    }
    if !matches!(opts.normalise, Normalise::Auto | Normalise::None) {
        return Err(DataError::option(
            "normalise",
            format!(
                "{origin} holds token ids, which must not be scaled: expected auto or none, found {:?}",
                opts.normalise
            ),
        ));
    }
    Ok(s)
}

/// One-based line and column (in characters) of `text[at]`.
fn line_column(text: &[char], at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line = before.iter().filter(|&&c| c == '\n').count() + 1;
    let column = before.iter().rev().take_while(|&&c| c != '\n').count() + 1;
    (line, column)
}

/// A held-out text: where it comes from, all its characters, and the range
/// that is held out (the whole text for a validation file, the tail otherwise).
struct HeldOut<'a> {
    origin: &'a str,
    full: &'a [char],
    start: usize,
    part: &'static str,
}

/// Token ids of `text[start..]` under `ids`, or the first unknown character.
fn encode(
    held: &HeldOut<'_>,
    ids: &HashMap<char, u32>,
    vocab: usize,
) -> Result<Vec<u32>, DataError> {
    held.full[held.start..]
        .iter()
        .enumerate()
        .map(|(j, c)| {
            ids.get(c).copied().ok_or_else(|| {
                let (line, column) = line_column(held.full, held.start + j);
                DataError::UnknownChar {
                    origin: held.origin.to_string(),
                    line,
                    column,
                    ch: *c,
                    vocab,
                }
            })
        })
        .collect()
}

/// Number of windows of `s` tokens (stride `s - 1`) in `n` tokens.
fn window_count(n: usize, s: usize) -> usize {
    if n < s {
        0
    } else {
        (n - s) / (s - 1) + 1
    }
}

/// The windows of `tokens` as a data set, at most `limit` of them.
fn windows(
    name: &str,
    tokens: &[u32],
    s: usize,
    class_names: &[String],
    limit: Option<usize>,
) -> Result<Dataset, DataError> {
    let c = s - 1;
    let count = window_count(tokens.len(), s).min(limit.unwrap_or(usize::MAX));
    let mut values = Vec::with_capacity(count * s);
    let mut labels = Vec::with_capacity(count);
    for i in 0..count {
        let w = &tokens[i * c..i * c + s];
        values.extend(w.iter().map(|&t| t as f32));
        labels.push(w[s - 1]);
    }
    Dataset::new(
        name,
        Features::Dense(Dense::new(values, s)?),
        labels,
        class_names.to_vec(),
    )?
    .with_text()
}

/// Builds the training and held-out window sets from decoded texts. The
/// vocabulary comes from `train`; `valid`, when given, is a separate held-out
/// text, otherwise the last 10% of `train` is held out.
fn assemble(
    name: &str,
    origin: &str,
    train: &[char],
    valid: Option<(&str, &[char])>,
    s: usize,
    opts: &LoadOptions,
) -> Result<(Dataset, Option<Dataset>), DataError> {
    let too_short = |origin: &str, part: &str, chars: usize| DataError::TextTooShort {
        origin: origin.to_string(),
        part: part.to_string(),
        chars,
        sequence: s,
    };
    if train.len() < s {
        return Err(too_short(origin, "the text", train.len()));
    }
    let (train_part, held) = match valid {
        Some((v_origin, v)) => {
            let held = HeldOut {
                origin: v_origin,
                full: v,
                start: 0,
                part: "the text",
            };
            (train, held)
        }
        None => {
            let cut = train.len() - train.len() / 10;
            let held = HeldOut {
                origin,
                full: train,
                start: cut,
                part: "the held-out last 10% (give a validation file, text:FILE,VALID_FILE, or a shorter context)",
            };
            if cut < s {
                return Err(too_short(origin, "the training part (first 90%)", cut));
            }
            (&train[..cut], held)
        }
    };
    let held_len = held.full.len() - held.start;
    if held_len < s {
        return Err(too_short(held.origin, held.part, held_len));
    }
    let vocab = text_vocabulary(train_part);
    let ids: HashMap<char, u32> = vocab
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, i as u32))
        .collect();
    let class_names: Vec<String> = vocab.iter().map(|c| c.to_string()).collect();
    let whole = HeldOut {
        origin,
        full: train_part,
        start: 0,
        part: "the text",
    };
    let train_tokens = encode(&whole, &ids, vocab.len())?;
    let held_tokens = encode(&held, &ids, vocab.len())?;
    Ok((
        windows(name, &train_tokens, s, &class_names, opts.limit_train)?,
        Some(windows(
            name,
            &held_tokens,
            s,
            &class_names,
            opts.limit_test,
        )?),
    ))
}

/// A short name for a text file: its stem, or the whole path.
fn file_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Loads `text:TRAIN[,VALID]`; `spec` is the spec as written, for messages.
pub(crate) fn load_files(
    spec: &str,
    train: &Path,
    valid: Option<&Path>,
    opts: &LoadOptions,
) -> Result<(Dataset, Option<Dataset>), DataError> {
    let s = sequence(spec, opts)?;
    let read = |p: &Path| -> Result<(String, Vec<char>), DataError> {
        let origin = p.display().to_string();
        let bytes = crate::source::read_file(p)?;
        let chars = parse_text(&bytes, &origin, opts.lossy_utf8)?;
        Ok((origin, chars))
    };
    let (origin, chars) = read(train)?;
    let held = valid.map(read).transpose()?;
    assemble(
        &file_name(train),
        &origin,
        &chars,
        held.as_ref().map(|(o, c)| (o.as_str(), c.as_slice())),
        s,
        opts,
    )
}

/// Loads an embedded text (`builtin:NAME`), holding out its last 10%.
pub(crate) fn load_embedded(
    name: &str,
    bytes: &[u8],
    opts: &LoadOptions,
) -> Result<(Dataset, Option<Dataset>), DataError> {
    let origin = format!("builtin:{name}");
    let s = sequence(&origin, opts)?;
    let chars = parse_text(bytes, &origin, false)?;
    assemble(name, &origin, &chars, None, s, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_cover_every_target_once() {
        assert_eq!(window_count(1, 2), 0);
        assert_eq!(window_count(2, 2), 1);
        assert_eq!(window_count(5, 2), 4);
        assert_eq!(window_count(9, 3), 4);
        assert_eq!(window_count(10, 3), 4);
        assert_eq!(window_count(11, 3), 5);
    }

    #[test]
    fn lines_and_columns_are_one_based() {
        let t: Vec<char> = "ab\ncé\n\nx".chars().collect();
        assert_eq!(line_column(&t, 0), (1, 1));
        assert_eq!(line_column(&t, 1), (1, 2));
        assert_eq!(line_column(&t, 4), (2, 2));
        assert_eq!(line_column(&t, 7), (4, 1));
    }
}
