//! IMDB movie reviews in the aclImdb layout (`train/{pos,neg}/*.txt`,
//! `test/{pos,neg}/*.txt`), turned into a sparse bag of words over the most
//! frequent words of the training reviews.
//!
//! Choices, so results can be reproduced:
//! - Reviews are read in "natural" file-name order (`2_8.txt` before
//!   `10_7.txt`), negative and positive interleaved (neg 0, pos 0, neg 1, ...),
//!   so that "the first N" is balanced. Label 0 is `neg`, 1 is `pos`; `unsup`
//!   is ignored.
//! - Tokens: see [`tokenize`].
//! - The vocabulary is the `vocab_size` words with the most occurrences in the
//!   training reviews that remain after any validation carve-out (labels are
//!   not used); ties go to the word that sorts first. Feature `j` is the word of
//!   rank `j`.
//! - Tf-idf uses `idf = ln((1 + n) / (1 + df)) + 1` over the same reviews
//!   (scikit-learn's smoothed idf), then scales each row to unit L2 norm.

use crate::source::read_file;
use crate::{BagOfWords, DataError, Dataset, Features, LoadOptions};
use rayon::prelude::*;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};

/// Markup the reviews use for line breaks; treated as a space.
const LINE_BREAKS: [&str; 3] = ["<br />", "<br/>", "<br>"];

/// Calls `f` with each word of `lower` (already lowercased): maximal runs of
/// alphanumeric characters and ASCII apostrophes, with leading and trailing
/// apostrophes stripped; `<br />` separates words.
fn for_each_word<'a>(lower: &'a str, mut f: impl FnMut(&'a str)) {
    let mut emit = |s: usize, e: usize| {
        let w = lower[s..e].trim_matches('\'');
        if !w.is_empty() {
            f(w);
        }
    };
    let bytes = lower.as_bytes();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        // ASCII is decided from the byte; other characters are decoded.
        let (in_word, len) = if b.is_ascii() {
            if b == b'<' {
                if let Some(br) = LINE_BREAKS
                    .iter()
                    .find(|br| bytes[i..].starts_with(br.as_bytes()))
                {
                    if let Some(s) = start.take() {
                        emit(s, i);
                    }
                    i += br.len();
                    continue;
                }
            }
            (b.is_ascii_alphanumeric() || b == b'\'', 1)
        } else {
            match lower.get(i..).and_then(|r| r.chars().next()) {
                Some(c) => (c.is_alphanumeric(), c.len_utf8()),
                None => break,
            }
        };
        if in_word {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            emit(s, i);
        }
        i += len;
    }
    if let Some(s) = start {
        emit(s, lower.len());
    }
}

/// Splits a review into words: the text is lowercased, `<br />` counts as a
/// space, words are maximal runs of alphanumeric characters (Unicode) and
/// ASCII apostrophes, and leading and trailing apostrophes are stripped
/// (`'don't'` gives `don't`; a lone `'` gives nothing).
pub fn tokenize(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    for_each_word(&lower, |w| out.push(w.to_string()));
    out
}

/// A fast, non-cryptographic string hasher: the word tables are filled from
/// the data being loaded, and hashing dominated loading time with `SipHash`.
/// Multiply-rotate over 8-byte chunks, then a full avalanche so the low bits
/// (which pick the bucket) depend on every input bit.
#[derive(Clone, Copy, Default)]
struct WordHasher(u64);

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(last) ^ rest.len() as u64).wrapping_mul(K);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^= h >> 33;
        h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        h ^ (h >> 33)
    }
}

type WordMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;

/// The distinct words of one review with their counts, packed into one string
/// (two allocations per review rather than one per word).
#[derive(Default)]
struct WordCounts {
    text: String,
    /// `(end of the word in text, count)`; each word starts where the previous ends.
    words: Vec<(usize, u32)>,
}

impl WordCounts {
    fn iter(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        let mut start = 0usize;
        self.words.iter().map(move |&(end, count)| {
            let w = &self.text[start..end];
            start = end;
            (w, count)
        })
    }
}

fn count_words(text: &str) -> WordCounts {
    let lower = text.to_lowercase();
    // About one distinct word per 8 bytes of text: sized once, no rehashing.
    let mut counts: WordMap<&str, u32> =
        WordMap::with_capacity_and_hasher(lower.len() / 8, Default::default());
    for_each_word(&lower, |w| *counts.entry(w).or_insert(0) += 1);
    let mut out = WordCounts {
        text: String::with_capacity(counts.keys().map(|w| w.len()).sum()),
        words: Vec::with_capacity(counts.len()),
    };
    for (w, c) in counts {
        out.text.push_str(w);
        out.words.push((out.text.len(), c));
    }
    out
}

/// Sort key that puts `2_8.txt` before `10_7.txt`.
fn natural_key(name: &str) -> (u64, &str) {
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    (name[..digits].parse().unwrap_or(u64::MAX), name)
}

/// The `.txt` files of one class folder, in natural order.
fn list_reviews(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "txt") {
            // The entry's type needs no extra system call; only links are followed.
            let ty = entry.file_type().map_err(|e| DataError::io(&path, e))?;
            if ty.is_file() || (ty.is_symlink() && path.is_file()) {
                files.push(path);
            }
        }
    }
    files.sort_by(|a, b| {
        let name = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned());
        let (na, nb) = (name(a).unwrap_or_default(), name(b).unwrap_or_default());
        natural_key(&na).cmp(&natural_key(&nb))
    });
    Ok(files)
}

/// Lists `split/neg` and `split/pos`, interleaved, as `(path, label)`.
fn list_split(root: &Path, split: &str) -> Result<Vec<(PathBuf, u32)>, DataError> {
    let mut lists = Vec::new();
    for class in ["neg", "pos"] {
        let dir = root.join(split).join(class);
        if !dir.is_dir() {
            return Err(DataError::MissingFile {
                dir: root.to_path_buf(),
                what: format!("{split} reviews"),
                looked_for: vec![format!("{split}/neg/"), format!("{split}/pos/")],
            });
        }
        let files = list_reviews(&dir)?;
        if files.is_empty() {
            return Err(DataError::EmptyFolder {
                path: dir,
                expected: "review files *.txt".into(),
            });
        }
        lists.push(files);
    }
    let (neg, pos) = (&lists[0], &lists[1]);
    let mut out = Vec::with_capacity(neg.len() + pos.len());
    for i in 0..neg.len().max(pos.len()) {
        if let Some(p) = neg.get(i) {
            out.push((p.clone(), 0));
        }
        if let Some(p) = pos.get(i) {
            out.push((p.clone(), 1));
        }
    }
    Ok(out)
}

/// Reads and tokenises reviews in parallel.
fn read_reviews(files: &[(PathBuf, u32)], lossy: bool) -> Result<Vec<WordCounts>, DataError> {
    files
        .par_iter()
        .map(|(path, _)| {
            let bytes = read_file(path)?;
            let text = match std::str::from_utf8(&bytes) {
                Ok(t) => std::borrow::Cow::Borrowed(t),
                Err(_) if lossy => String::from_utf8_lossy(&bytes),
                Err(e) => {
                    return Err(DataError::NonUtf8 {
                        path: path.clone(),
                        offset: e.valid_up_to(),
                    })
                }
            };
            Ok(count_words(&text))
        })
        .collect()
}

/// The `size` most frequent words of `docs` (ties to the smaller word), in rank
/// order, with their document frequencies.
fn build_vocab(docs: &[&WordCounts], size: usize) -> (Vec<String>, Vec<u32>) {
    // A few large blocks, not rayon's fine splitting: each block builds one
    // table of the whole vocabulary, so fewer blocks mean less merging.
    let block = docs.len().div_ceil(2 * rayon::current_num_threads()).max(1);
    let totals = docs
        .par_chunks(block)
        .map(|chunk| {
            let mut m = WordMap::<&str, (u64, u32)>::default();
            for doc in chunk {
                for (w, c) in doc.iter() {
                    let e = m.entry(w).or_insert((0, 0));
                    e.0 += c as u64;
                    e.1 += 1;
                }
            }
            m
        })
        .reduce(WordMap::default, |a, b| {
            // Merge the smaller table into the larger one.
            let (mut big, small) = if a.len() >= b.len() { (a, b) } else { (b, a) };
            for (w, (c, d)) in small {
                let e = big.entry(w).or_insert((0, 0));
                e.0 += c;
                e.1 += d;
            }
            big
        });
    let mut ranked: Vec<(&str, u64, u32)> =
        totals.into_iter().map(|(w, (c, d))| (w, c, d)).collect();
    ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    ranked.truncate(size);
    (
        ranked.iter().map(|r| r.0.to_string()).collect(),
        ranked.iter().map(|r| r.2).collect(),
    )
}

/// Turns reviews into CSR rows over `vocab`.
fn to_rows(
    docs: &[WordCounts],
    vocab: &WordMap<&str, u32>,
    mode: BagOfWords,
    idf: &[f32],
) -> (Vec<usize>, Vec<u32>, Vec<f32>) {
    let rows: Vec<Vec<(u32, f32)>> = docs
        .par_iter()
        .map(|doc| {
            let mut row: Vec<(u32, f32)> = doc
                .iter()
                .filter_map(|(w, c)| vocab.get(w).map(|&j| (j, c as f32)))
                .collect();
            row.sort_unstable_by_key(|e| e.0);
            match mode {
                BagOfWords::Binary => row.iter_mut().for_each(|e| e.1 = 1.0),
                BagOfWords::Counts => {}
                BagOfWords::TfIdf => {
                    row.iter_mut().for_each(|e| e.1 *= idf[e.0 as usize]);
                    let norm = row.iter().map(|e| (e.1 as f64).powi(2)).sum::<f64>().sqrt();
                    if norm > 0.0 {
                        row.iter_mut()
                            .for_each(|e| e.1 = (e.1 as f64 / norm) as f32);
                    }
                }
            }
            row
        })
        .collect();
    let nnz = rows.iter().map(Vec::len).sum();
    let mut indptr = Vec::with_capacity(rows.len() + 1);
    let mut indices = Vec::with_capacity(nnz);
    let mut values = Vec::with_capacity(nnz);
    indptr.push(0);
    for row in rows {
        for (j, v) in row {
            indices.push(j);
            values.push(v);
        }
        indptr.push(indices.len());
    }
    (indptr, indices, values)
}

/// Loads `imdb:DIR` (or a folder holding `aclImdb/`).
pub(crate) fn load_dir(
    dir: &Path,
    opts: &LoadOptions,
) -> Result<(Dataset, Option<Dataset>), DataError> {
    let nested = dir.join("aclImdb");
    let root = if !dir.join("train").is_dir() && nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    };
    crate::check_folder(&root, "train/neg/*.txt and train/pos/*.txt")?;
    if opts.vocab_size == 0 {
        return Err(DataError::option("vocab_size", "must be at least 1"));
    }
    let mut train_files = list_split(&root, "train")?;
    train_files.truncate(opts.limit_train.unwrap_or(usize::MAX));
    let test_files = if root.join("test").is_dir() {
        let mut t = list_split(&root, "test")?;
        t.truncate(opts.limit_test.unwrap_or(usize::MAX));
        Some(t)
    } else {
        None
    };

    let train_docs = read_reviews(&train_files, opts.lossy_utf8)?;
    // Only the reviews that stay in training choose the vocabulary, so the
    // validation split is as unseen as the test split.
    let fit: Vec<&WordCounts> = match crate::transform::carve(train_docs.len(), opts)? {
        Some(c) => c.train.iter().map(|&i| &train_docs[i]).collect(),
        None => train_docs.iter().collect(),
    };
    let (words, df) = build_vocab(&fit, opts.vocab_size);
    let n_fit = fit.len() as f64;
    let idf: Vec<f32> = df
        .iter()
        .map(|&d| (((1.0 + n_fit) / (1.0 + d as f64)).ln() + 1.0) as f32)
        .collect();
    let index: WordMap<&str, u32> = words
        .iter()
        .enumerate()
        .map(|(j, w)| (w.as_str(), j as u32))
        .collect();

    let class_names = vec!["neg".to_string(), "pos".to_string()];
    let build = |docs: &[WordCounts], files: &[(PathBuf, u32)]| -> Result<Dataset, DataError> {
        let (indptr, indices, values) = to_rows(docs, &index, opts.bag_of_words, &idf);
        let csr = crate::Csr::from_checked_parts(indptr, indices, values, words.len());
        Dataset::new(
            "imdb",
            Features::Sparse(csr),
            files.iter().map(|f| f.1).collect(),
            class_names.clone(),
        )?
        .with_feature_names(words.clone())
    };
    let train = build(&train_docs, &train_files)?;
    drop(train_docs);
    let test = match test_files {
        Some(files) => {
            let docs = read_reviews(&files, opts.lossy_utf8)?;
            Some(build(&docs, &files)?)
        }
        None => None,
    };
    Ok((train, test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_follows_the_documented_rules() {
        assert_eq!(
            tokenize("It's GREAT!<br /><br />'Quoted' don't 42x ''' caf\u{e9}"),
            ["it's", "great", "quoted", "don't", "42x", "caf\u{e9}"]
        );
        assert_eq!(tokenize("a<br/>b<br>c<BR />d"), ["a", "b", "c", "d"]);
        assert_eq!(tokenize("x<b>y"), ["x", "b", "y"]);
        assert!(tokenize("  ... ").is_empty());
    }

    #[test]
    fn natural_order_sorts_numeric_prefixes() {
        let mut names = vec!["10_7.txt", "2_8.txt", "1_1.txt", "abc.txt"];
        names.sort_by_key(|n| natural_key(n));
        assert_eq!(names, ["1_1.txt", "2_8.txt", "10_7.txt", "abc.txt"]);
    }

    #[test]
    fn vocabulary_ranks_by_count_then_word() {
        let a = count_words("b b a c");
        let b = count_words("a d");
        let (words, df) = build_vocab(&[&a, &b], 3);
        assert_eq!(words, ["a", "b", "c"]);
        assert_eq!(df, [2, 1, 1]);
    }
}
