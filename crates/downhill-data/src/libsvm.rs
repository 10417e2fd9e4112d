//! LIBSVM / svmlight text: one example per line,
//! `label [qid:N] index:value index:value ... [# comment]`.
//!
//! Rules:
//! - Labels are integers (`3`, `-1`, `+1`; an integral float such as `1.0` is
//!   accepted). Distinct label values become classes `0..k` in ascending
//!   numeric order, named by their first spelling in the training file.
//! - Indices are strictly ascending within a line. With [`IndexBase::Auto`]
//!   (the default, like scikit-learn's `zero_based="auto"`) a file set is
//!   0-based when any index is 0 and 1-based otherwise; feature `j` of the
//!   result is written `j + 1` in a 1-based file.
//! - Values must be finite; entries whose value is 0 are not stored. A `qid:N`
//!   token after the label is accepted and ignored. Blank lines and lines that
//!   hold only a comment are skipped. Files may be gzip-compressed.

use crate::source::{decode, read_file};
use crate::{DataError, Dataset, Features, LoadOptions};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

/// How the feature indices of a LIBSVM file are numbered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IndexBase {
    /// 0-based if any index in the files is 0, else 1-based.
    #[default]
    Auto,
    /// The first feature is written `0`.
    Zero,
    /// The first feature is written `1` (the LIBSVM convention).
    One,
}

/// A LIBSVM file parsed as written, before the label mapping and index base
/// are decided (those depend on the training and test files together).
#[derive(Clone, Debug, PartialEq)]
pub struct LibsvmFile {
    /// Row offsets into `indices` and `values`, one more than the examples.
    pub indptr: Vec<usize>,
    /// Feature indices exactly as written, strictly ascending within a row.
    pub indices: Vec<u32>,
    /// Feature values (finite, non-zero).
    pub values: Vec<f32>,
    /// Label of each example, as a number.
    pub labels: Vec<i64>,
    /// One-based line number of each example, for later messages.
    pub lines: Vec<usize>,
    /// First spelling of each label value, e.g. `1 -> "+1"`.
    pub label_names: BTreeMap<i64, String>,
}

impl LibsvmFile {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the file holds no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The smallest and largest index written, if any.
    fn index_range(&self) -> Option<(u32, u32)> {
        let min = self.indices.iter().min()?;
        let max = self.indices.iter().max()?;
        Some((*min, *max))
    }

    /// The example (line) of the first stored entry whose index satisfies `bad`.
    fn line_of(&self, bad: impl Fn(u32) -> bool) -> Option<(usize, u32)> {
        let k = self.indices.iter().position(|&j| bad(j))?;
        let row = self.indptr.partition_point(|&p| p <= k) - 1;
        Some((self.lines[row], self.indices[k]))
    }
}

/// Parses LIBSVM text (raw or gzip-compressed). `origin` names the data in
/// errors. Stops after `limit` examples when given.
pub fn parse_libsvm(
    bytes: &[u8],
    origin: &str,
    limit: Option<usize>,
) -> Result<LibsvmFile, DataError> {
    let text = decode(bytes, origin)?;
    let mut f = LibsvmFile {
        indptr: vec![0],
        indices: Vec::new(),
        values: Vec::new(),
        labels: Vec::new(),
        lines: Vec::new(),
        label_names: BTreeMap::new(),
    };
    let limit = limit.unwrap_or(usize::MAX);
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if f.labels.len() >= limit {
            break;
        }
        let lineno = i + 1;
        let Some((label, spelling)) =
            parse_line(line, lineno, origin, &mut f.indices, &mut f.values)?
        else {
            continue;
        };
        f.label_names
            .entry(label)
            .or_insert_with(|| String::from_utf8_lossy(spelling).into_owned());
        f.labels.push(label);
        f.lines.push(lineno);
        f.indptr.push(f.indices.len());
    }
    Ok(f)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

/// Shortened, lossily decoded token text for messages.
fn show(token: &[u8]) -> String {
    let s = String::from_utf8_lossy(token);
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s.into_owned()
    }
}

/// Parses one line, appending its entries (indices as written) to `indices`
/// and `values`. Returns the label and its spelling, or `None` for a blank or
/// comment-only line.
fn parse_line<'a>(
    line: &'a [u8],
    lineno: usize,
    origin: &str,
    indices: &mut Vec<u32>,
    values: &mut Vec<f32>,
) -> Result<Option<(i64, &'a [u8])>, DataError> {
    let line = match line.iter().position(|&b| b == b'#') {
        Some(p) => &line[..p],
        None => line,
    };
    let bad = |start: usize, token: &[u8], reason: &str| DataError::BadToken {
        origin: origin.to_string(),
        line: lineno,
        column: start + 1,
        token: show(token),
        reason: reason.to_string(),
    };
    let mut pos = 0;
    let mut next_token = || -> Option<(usize, &'a [u8])> {
        while pos < line.len() && is_space(line[pos]) {
            pos += 1;
        }
        if pos == line.len() {
            return None;
        }
        let start = pos;
        while pos < line.len() && !is_space(line[pos]) {
            pos += 1;
        }
        Some((start, &line[start..pos]))
    };
    let Some((start, label_tok)) = next_token() else {
        return Ok(None);
    };
    let label = parse_label(label_tok).map_err(|why| bad(start, label_tok, why))?;
    let mut previous: Option<u32> = None;
    let mut first = true;
    while let Some((start, tok)) = next_token() {
        let Some(colon) = tok.iter().position(|&b| b == b':') else {
            return Err(bad(start, tok, "expected index:value"));
        };
        let (idx_txt, val_txt) = (&tok[..colon], &tok[colon + 1..]);
        if first && idx_txt == b"qid" {
            first = false;
            if std::str::from_utf8(val_txt)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .is_none()
            {
                return Err(bad(
                    start,
                    tok,
                    "expected qid:N with a non-negative integer N",
                ));
            }
            continue;
        }
        first = false;
        if idx_txt.is_empty() || !idx_txt.iter().all(u8::is_ascii_digit) {
            return Err(bad(
                start,
                tok,
                "expected a non-negative integer feature index before ':'",
            ));
        }
        let index: u32 = std::str::from_utf8(idx_txt)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(start, tok, "feature index is larger than 4294967295"))?;
        let value: f32 = std::str::from_utf8(val_txt)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(start, tok, "expected a number after ':'"))?;
        if !value.is_finite() {
            return Err(bad(start, tok, "value is not finite (or overflows f32)"));
        }
        if let Some(p) = previous {
            if index <= p {
                return Err(DataError::IndexOrder {
                    origin: origin.to_string(),
                    line: lineno,
                    previous: p as u64,
                    found: index as u64,
                });
            }
        }
        previous = Some(index);
        if value != 0.0 {
            indices.push(index);
            values.push(value);
        }
    }
    Ok(Some((label, label_tok)))
}

fn parse_label(tok: &[u8]) -> Result<i64, &'static str> {
    if tok.contains(&b',') {
        return Err("multi-label examples are not supported; expected one integer class label");
    }
    let s = std::str::from_utf8(tok).map_err(|_| "expected an integer class label")?;
    if let Ok(v) = s.parse::<i64>() {
        return Ok(v);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 => Ok(v as i64),
        Ok(_) => Err("expected an integer class label (regression targets are not supported)"),
        Err(_) => Err("expected an integer class label"),
    }
}

/// Maps label values to classes: the caller's list, in the caller's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelMap {
    /// `(value, class)` sorted by value, for binary search.
    by_value: Vec<(i64, u32)>,
    names: Vec<String>,
}

impl LabelMap {
    /// Class `i` is the label spelled `names[i]` (e.g. a training set's
    /// [`class_names`](Dataset::class_names)). Fails when a name is not an
    /// integer label or two names have the same value (`1` and `+1`).
    pub fn new<S: AsRef<str>>(names: &[S]) -> Result<LabelMap, DataError> {
        let mut by_value = Vec::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            let n = n.as_ref();
            let v = parse_label(n.as_bytes())
                .map_err(|why| DataError::option("labels", format!("{n:?}: {why}")))?;
            by_value.push((v, i as u32));
        }
        by_value.sort_unstable();
        if let Some(w) = by_value.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(DataError::option(
                "labels",
                format!("two class names have the value {}", w[0].0),
            ));
        }
        Ok(LabelMap {
            by_value,
            names: names.iter().map(|n| n.as_ref().to_string()).collect(),
        })
    }

    /// The class of a label value.
    pub fn class_of(&self, value: i64) -> Option<u32> {
        self.by_value
            .binary_search_by_key(&value, |e| e.0)
            .ok()
            .map(|k| self.by_value[k].1)
    }

    /// The class names, indexed by class.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// One example read by [`LibsvmStream`]: sorted feature indices (0-based,
/// below the stream's dimension) and their values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SparseExample {
    /// Class of the example.
    pub label: u32,
    /// Feature indices, strictly ascending.
    pub indices: Vec<u32>,
    /// Values, one per index.
    pub values: Vec<f32>,
    /// One-based line number in the input.
    pub line: usize,
}

/// Reads LIBSVM text one example at a time, for online learning from a pipe.
/// The dimension and label mapping are the caller's (usually from the training
/// data); every error carries the line number. After an error on one line,
/// reading continues with the next; after an I/O error the stream ends.
pub struct LibsvmStream<R> {
    reader: R,
    origin: String,
    dim: usize,
    zero_based: bool,
    labels: LabelMap,
    line: usize,
    buf: Vec<u8>,
    raw: Vec<u32>,
    done: bool,
}

impl<R: BufRead> LibsvmStream<R> {
    /// A stream over `reader`, named `origin` in errors (e.g. `"<stdin>"`),
    /// with features `0..dim` written `0..dim` if `zero_based`, else `1..=dim`.
    pub fn new(
        reader: R,
        origin: impl Into<String>,
        dim: usize,
        zero_based: bool,
        labels: LabelMap,
    ) -> LibsvmStream<R> {
        LibsvmStream {
            reader,
            origin: origin.into(),
            dim,
            zero_based,
            labels,
            line: 0,
            buf: Vec::new(),
            raw: Vec::new(),
            done: false,
        }
    }

    /// Lines read so far.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Reads the next example into `out`, reusing its buffers; `Ok(false)` at
    /// the end of the input.
    pub fn read_into(&mut self, out: &mut SparseExample) -> Result<bool, DataError> {
        loop {
            if self.done {
                return Ok(false);
            }
            self.buf.clear();
            let n = self.reader.read_until(b'\n', &mut self.buf).map_err(|e| {
                self.done = true;
                DataError::Io {
                    path: format!("{} (line {})", self.origin, self.line + 1).into(),
                    source: e,
                }
            })?;
            if n == 0 {
                self.done = true;
                return Ok(false);
            }
            self.line += 1;
            out.indices.clear();
            out.values.clear();
            self.raw.clear();
            let parsed = parse_line(
                &self.buf,
                self.line,
                &self.origin,
                &mut self.raw,
                &mut out.values,
            )?;
            let Some((value, spelling)) = parsed else {
                continue;
            };
            out.label = self
                .labels
                .class_of(value)
                .ok_or_else(|| DataError::UnknownLabel {
                    origin: self.origin.clone(),
                    line: self.line,
                    label: show(spelling),
                    known: self.labels.names().join(", "),
                })?;
            for &j in &self.raw {
                let feature = if self.zero_based {
                    Some(j)
                } else {
                    j.checked_sub(1)
                };
                match feature.filter(|&f| (f as usize) < self.dim) {
                    Some(f) => out.indices.push(f),
                    None => {
                        return Err(DataError::IndexOutOfRange {
                            origin: self.origin.clone(),
                            line: self.line,
                            index: j as u64,
                            range: written_range(self.dim, self.zero_based),
                        })
                    }
                }
            }
            out.line = self.line;
            return Ok(true);
        }
    }
}

impl<R: BufRead> Iterator for LibsvmStream<R> {
    type Item = Result<SparseExample, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut ex = SparseExample::default();
        match self.read_into(&mut ex) {
            Ok(true) => Some(Ok(ex)),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// How the valid indices of `dim` features are written.
fn written_range(dim: usize, zero_based: bool) -> String {
    match (dim, zero_based) {
        (0, _) => "no features (dimension 0)".into(),
        (d, true) => format!("0..={}", d - 1),
        (d, false) => format!("1..={d}"),
    }
}

/// Loads `libsvm:TRAIN[,TEST]`.
pub(crate) fn load_files(
    train_path: &Path,
    test_path: Option<&Path>,
    opts: &LoadOptions,
) -> Result<(Dataset, Option<Dataset>), DataError> {
    let read = |path: &Path, limit| -> Result<(LibsvmFile, String), DataError> {
        let origin = path.display().to_string();
        let f = parse_libsvm(&read_file(path)?, &origin, limit)?;
        if f.is_empty() {
            return Err(DataError::NoExamples {
                origin,
                reason: "expected lines of the form `label index:value ...`".into(),
            });
        }
        Ok((f, origin))
    };
    let (train, test) = rayon::join(
        || read(train_path, opts.limit_train),
        || test_path.map(|p| read(p, opts.limit_test)).transpose(),
    );
    let (train, test) = (train?, test?);
    let files: Vec<&(LibsvmFile, String)> = std::iter::once(&train).chain(test.as_ref()).collect();

    let zero_based = match opts.libsvm_base {
        IndexBase::Zero => true,
        IndexBase::One => false,
        IndexBase::Auto => files
            .iter()
            .any(|(f, _)| f.index_range().is_some_and(|r| r.0 == 0)),
    };
    let max_written = files
        .iter()
        .filter_map(|(f, _)| f.index_range().map(|r| r.1 as usize))
        .max();
    let inferred = match max_written {
        Some(m) if zero_based => m + 1,
        Some(m) => m,
        None => 0,
    };
    let dim = opts.dim.unwrap_or(inferred);
    for (f, origin) in &files {
        let out_of_range = |j: u32| {
            let feature = if zero_based {
                Some(j)
            } else {
                j.checked_sub(1)
            };
            !matches!(feature, Some(f) if (f as usize) < dim)
        };
        if let Some((line, index)) = f.line_of(out_of_range) {
            return Err(DataError::IndexOutOfRange {
                origin: origin.clone(),
                line,
                index: index as u64,
                range: written_range(dim, zero_based),
            });
        }
    }

    let class_names: Vec<String> = train.0.label_names.values().cloned().collect();
    let values: Vec<i64> = train.0.label_names.keys().copied().collect();
    let class_of = |v: i64| values.binary_search(&v).ok().map(|k| k as u32);
    let to_dataset = |(f, origin): (LibsvmFile, String)| -> Result<Dataset, DataError> {
        let mut labels = Vec::with_capacity(f.len());
        for (k, &v) in f.labels.iter().enumerate() {
            labels.push(class_of(v).ok_or_else(|| {
                DataError::UnknownLabel {
                    origin: origin.clone(),
                    line: f.lines[k],
                    label: f
                        .label_names
                        .get(&v)
                        .cloned()
                        .unwrap_or_else(|| v.to_string()),
                    known: class_names.join(", "),
                }
            })?);
        }
        let shift = u32::from(!zero_based);
        let indices = f.indices.iter().map(|&j| j - shift).collect();
        let csr = crate::Csr::from_checked_parts(f.indptr, indices, f.values, dim);
        Dataset::new(
            stem(&origin),
            Features::Sparse(csr),
            labels,
            class_names.clone(),
        )
    };
    let train = to_dataset(train)?;
    let test = test.map(to_dataset).transpose()?;
    Ok((train, test))
}

fn stem(origin: &str) -> String {
    Path::new(origin)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .map(|n| n.trim_end_matches(".gz").to_string())
        .unwrap_or_else(|| "libsvm".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_qid_comments_and_drops_zeros() {
        let f = parse_libsvm(
            b"+1 qid:3 1:0.5 3:0 7:2 # c\n\n# only comment\n-1 2:1e-3\r\n",
            "t",
            None,
        )
        .unwrap();
        assert_eq!(f.labels, [1, -1]);
        assert_eq!(f.lines, [1, 4]);
        assert_eq!(f.indptr, [0, 2, 3]);
        assert_eq!(f.indices, [1, 7, 2]);
        assert_eq!(f.values, [0.5, 2.0, 1e-3]);
        assert_eq!(f.label_names[&1], "+1");
    }

    #[test]
    fn labels_accept_integral_floats_only() {
        assert_eq!(parse_label(b"1.0"), Ok(1));
        assert_eq!(parse_label(b"-3"), Ok(-3));
        assert!(parse_label(b"0.5").is_err());
        assert!(parse_label(b"1,2").is_err());
        assert!(parse_label(b"nan").is_err());
    }

    #[test]
    fn line_of_finds_the_example() {
        let f = parse_libsvm(b"1 1:1\n1 2:1 9:1\n", "t", None).unwrap();
        assert_eq!(f.line_of(|j| j > 5), Some((2, 9)));
    }
}
