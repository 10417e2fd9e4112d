//! In-memory data sets: feature matrices (dense or sparse), labels, and the
//! helpers a training loop needs (subsets, mini-batch gathering without
//! allocation, class counts).
//!
//! The matrices keep their invariants private (row lengths, sorted unique
//! sparse indices below the dimension) so that numeric kernels downstream can
//! rely on them; constructors check them and return [`DataError::Invalid`].

use crate::DataError;

/// A dense row-major matrix of `f32`, one row per example.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    values: Vec<f32>,
    rows: usize,
    dim: usize,
}

impl Dense {
    /// A matrix of `values.len() / dim` rows. Fails unless `values.len()` is a
    /// multiple of `dim`, or if `dim == 0` with values present.
    pub fn new(values: Vec<f32>, dim: usize) -> Result<Dense, DataError> {
        if dim == 0 {
            if !values.is_empty() {
                return Err(DataError::invalid(
                    "dense matrix",
                    format!("dimension 0 with {} values", values.len()),
                ));
            }
            return Ok(Dense {
                values,
                rows: 0,
                dim,
            });
        }
        if !values.len().is_multiple_of(dim) {
            return Err(DataError::invalid(
                "dense matrix",
                format!(
                    "{} values is not a whole number of rows of {dim}",
                    values.len()
                ),
            ));
        }
        Ok(Dense {
            rows: values.len() / dim,
            values,
            dim,
        })
    }

    /// Number of rows (examples).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (features).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// All values, row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Row `i`, or `None` when out of range.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        (i < self.rows).then(|| &self.values[i * self.dim..(i + 1) * self.dim])
    }

    /// The values, consuming the matrix.
    pub fn into_values(self) -> Vec<f32> {
        self.values
    }

    pub(crate) fn values_mut(&mut self) -> &mut [f32] {
        &mut self.values
    }

    fn truncate(&mut self, rows: usize) {
        if rows < self.rows {
            self.rows = rows;
            self.values.truncate(rows * self.dim);
        }
    }

    fn gather(&self, rows: &[usize]) -> Dense {
        let mut values = Vec::with_capacity(rows.len() * self.dim);
        for &r in rows {
            values.extend_from_slice(&self.values[r * self.dim..(r + 1) * self.dim]);
        }
        Dense {
            values,
            rows: rows.len(),
            dim: self.dim,
        }
    }
}

/// A compressed-sparse-row matrix of `f32`: row `i` holds the entries
/// `indptr[i]..indptr[i + 1]` of `indices` and `values`, with indices strictly
/// ascending within a row and below `dim`.
#[derive(Clone, Debug, PartialEq)]
pub struct Csr {
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
    dim: usize,
}

impl Csr {
    /// Builds a matrix from its parts, checking every invariant: `indptr` starts
    /// at 0, never decreases and ends at `indices.len() == values.len()`; each
    /// row's indices are strictly ascending and below `dim`.
    pub fn new(
        indptr: Vec<usize>,
        indices: Vec<u32>,
        values: Vec<f32>,
        dim: usize,
    ) -> Result<Csr, DataError> {
        let bad = |reason: String| Err(DataError::invalid("CSR matrix", reason));
        if indptr.first() != Some(&0) {
            return bad("indptr must start with 0".into());
        }
        if indices.len() != values.len() {
            return bad(format!(
                "{} indices but {} values",
                indices.len(),
                values.len()
            ));
        }
        if indptr.last() != Some(&indices.len()) {
            return bad(format!(
                "indptr ends at {:?}, expected {}",
                indptr.last(),
                indices.len()
            ));
        }
        for (row, w) in indptr.windows(2).enumerate() {
            if w[1] < w[0] {
                return bad(format!("indptr decreases at row {row}"));
            }
            let mut prev: Option<u32> = None;
            for &j in &indices[w[0]..w[1]] {
                if j as usize >= dim {
                    return bad(format!("row {row}: index {j} is not below dimension {dim}"));
                }
                if prev.is_some_and(|p| p >= j) {
                    return bad(format!(
                        "row {row}: index {j} after {}: indices must be strictly ascending",
                        prev.unwrap_or_default()
                    ));
                }
                prev = Some(j);
            }
        }
        Ok(Csr {
            indptr,
            indices,
            values,
            dim,
        })
    }

    /// Builds from parts the caller has already checked (loaders inside this crate).
    pub(crate) fn from_checked_parts(
        indptr: Vec<usize>,
        indices: Vec<u32>,
        values: Vec<f32>,
        dim: usize,
    ) -> Csr {
        debug_assert!(Csr::new(indptr.clone(), indices.clone(), values.clone(), dim).is_ok());
        Csr {
            indptr,
            indices,
            values,
            dim,
        }
    }

    /// An empty matrix with no rows.
    pub fn empty(dim: usize) -> Csr {
        Csr {
            indptr: vec![0],
            indices: Vec::new(),
            values: Vec::new(),
            dim,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Number of columns (features).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Row offsets into [`indices`](Csr::indices) and [`values`](Csr::values); `rows() + 1` long.
    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }

    /// Column indices of all stored entries.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// Values of all stored entries.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Row `i` as `(indices, values)`, or `None` when out of range.
    pub fn row(&self, i: usize) -> Option<(&[u32], &[f32])> {
        if i >= self.rows() {
            return None;
        }
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        Some((&self.indices[a..b], &self.values[a..b]))
    }

    /// The parts `(indptr, indices, values, dim)`, consuming the matrix.
    pub fn into_parts(self) -> (Vec<usize>, Vec<u32>, Vec<f32>, usize) {
        (self.indptr, self.indices, self.values, self.dim)
    }

    pub(crate) fn values_mut(&mut self) -> &mut [f32] {
        &mut self.values
    }

    /// Removes stored entries whose value is exactly zero (after scaling).
    pub(crate) fn drop_zeros(&mut self) {
        let mut w = 0;
        let mut start = 0;
        for r in 0..self.rows() {
            let end = self.indptr[r + 1];
            for k in start..end {
                if self.values[k] != 0.0 {
                    self.indices[w] = self.indices[k];
                    self.values[w] = self.values[k];
                    w += 1;
                }
            }
            start = end;
            self.indptr[r + 1] = w;
        }
        self.indices.truncate(w);
        self.values.truncate(w);
    }

    fn truncate(&mut self, rows: usize) {
        if rows < self.rows() {
            self.indptr.truncate(rows + 1);
            let nnz = self.indptr[rows];
            self.indices.truncate(nnz);
            self.values.truncate(nnz);
        }
    }

    fn gather(&self, rows: &[usize]) -> Csr {
        let nnz: usize = rows
            .iter()
            .map(|&r| self.indptr[r + 1] - self.indptr[r])
            .sum();
        let mut out = Csr {
            indptr: Vec::with_capacity(rows.len() + 1),
            indices: Vec::with_capacity(nnz),
            values: Vec::with_capacity(nnz),
            dim: self.dim,
        };
        out.indptr.push(0);
        for &r in rows {
            let (a, b) = (self.indptr[r], self.indptr[r + 1]);
            out.indices.extend_from_slice(&self.indices[a..b]);
            out.values.extend_from_slice(&self.values[a..b]);
            out.indptr.push(out.indices.len());
        }
        out
    }
}

/// The feature matrix of a data set.
#[derive(Clone, Debug, PartialEq)]
pub enum Features {
    /// Dense rows (images).
    Dense(Dense),
    /// Sparse rows (bags of words, LIBSVM).
    Sparse(Csr),
}

impl Features {
    /// Number of rows (examples).
    pub fn rows(&self) -> usize {
        match self {
            Features::Dense(d) => d.rows(),
            Features::Sparse(s) => s.rows(),
        }
    }

    /// Number of features per example.
    pub fn dim(&self) -> usize {
        match self {
            Features::Dense(d) => d.dim(),
            Features::Sparse(s) => s.dim(),
        }
    }

    /// Whether the matrix is stored sparse.
    pub fn is_sparse(&self) -> bool {
        matches!(self, Features::Sparse(_))
    }

    fn truncate(&mut self, rows: usize) {
        match self {
            Features::Dense(d) => d.truncate(rows),
            Features::Sparse(s) => s.truncate(rows),
        }
    }

    fn gather(&self, rows: &[usize]) -> Features {
        match self {
            Features::Dense(d) => Features::Dense(d.gather(rows)),
            Features::Sparse(s) => Features::Sparse(s.gather(rows)),
        }
    }
}

/// The shape of one image example, channels first (CHW), as stored in a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageShape {
    /// Colour channels (1 for grey, 3 for RGB).
    pub channels: usize,
    /// Rows of pixels.
    pub height: usize,
    /// Columns of pixels.
    pub width: usize,
}

impl ImageShape {
    /// Values per image: `channels * height * width`.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Whether the shape holds no pixels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A labelled classification data set held in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    name: String,
    features: Features,
    labels: Vec<u32>,
    class_names: Vec<String>,
    image: Option<ImageShape>,
    feature_names: Vec<String>,
    text: bool,
}

impl Dataset {
    /// A data set with one label per feature row; the number of classes is
    /// `class_names.len()` and every label must be below it.
    pub fn new(
        name: impl Into<String>,
        features: Features,
        labels: Vec<u32>,
        class_names: Vec<String>,
    ) -> Result<Dataset, DataError> {
        let name = name.into();
        if features.rows() != labels.len() {
            return Err(DataError::invalid(
                "data set",
                format!(
                    "{name}: {} feature rows but {} labels",
                    features.rows(),
                    labels.len()
                ),
            ));
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| l as usize >= class_names.len())
        {
            return Err(DataError::invalid(
                "data set",
                format!(
                    "{name}: example {i} has label {l} but there are {} classes",
                    class_names.len()
                ),
            ));
        }
        Ok(Dataset {
            name,
            features,
            labels,
            class_names,
            image: None,
            feature_names: Vec::new(),
            text: false,
        })
    }

    /// Marks the rows as images of `shape`; fails unless `shape.len() == dim()`.
    pub fn with_image(mut self, shape: ImageShape) -> Result<Dataset, DataError> {
        if shape.len() != self.dim() {
            return Err(DataError::invalid(
                "data set",
                format!(
                    "{}: image shape {}x{}x{} holds {} values but rows have {}",
                    self.name,
                    shape.channels,
                    shape.height,
                    shape.width,
                    shape.len(),
                    self.dim()
                ),
            ));
        }
        self.image = Some(shape);
        Ok(self)
    }

    /// Names the features (e.g. the words of a bag of words); fails unless there
    /// is one name per feature.
    pub fn with_feature_names(mut self, names: Vec<String>) -> Result<Dataset, DataError> {
        if names.len() != self.dim() {
            return Err(DataError::invalid(
                "data set",
                format!(
                    "{}: {} feature names for {} features",
                    self.name,
                    names.len(),
                    self.dim()
                ),
            ));
        }
        self.feature_names = names;
        Ok(self)
    }

    /// Marks the rows as windows of a character-level text (see
    /// [`is_text`](Dataset::is_text)). Fails unless the features are dense, at
    /// least 2 wide, and every value is a whole token id below
    /// [`classes`](Dataset::classes).
    pub fn with_text(mut self) -> Result<Dataset, DataError> {
        let Features::Dense(d) = &self.features else {
            return Err(DataError::invalid(
                "data set",
                format!("{}: text windows must be dense", self.name),
            ));
        };
        if d.dim() < 2 {
            return Err(DataError::invalid(
                "data set",
                format!(
                    "{}: text windows of {} tokens, expected at least 2",
                    self.name,
                    d.dim()
                ),
            ));
        }
        let classes = self.class_names.len() as f32;
        if let Some(i) = d
            .values()
            .iter()
            .position(|&v| !(v >= 0.0 && v < classes && v.fract() == 0.0))
        {
            return Err(DataError::invalid(
                "data set",
                format!(
                    "{}: row {}, position {}: {} is not a token id below {}",
                    self.name,
                    i / d.dim(),
                    i % d.dim(),
                    d.values()[i],
                    self.class_names.len()
                ),
            ));
        }
        self.text = true;
        Ok(self)
    }

    /// Whether this is character-level text for a language model (`text:` data
    /// or an embedded text such as `builtin:shakespeare`): each row is a window
    /// of token ids (as `f32`, exact), the label is the window's last token,
    /// and [`class_names`](Dataset::class_names) are the vocabulary's
    /// characters in token-id order. Such data needs a sequence model, and
    /// sequence models need such data.
    pub fn is_text(&self) -> bool {
        self.text
    }

    /// Renames the data set.
    pub fn with_name(mut self, name: impl Into<String>) -> Dataset {
        self.name = name.into();
        self
    }

    /// A short name for messages and reports (e.g. `"fashion-mnist"`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of features per example.
    pub fn dim(&self) -> usize {
        self.features.dim()
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.class_names.len()
    }

    /// The feature matrix.
    pub fn features(&self) -> &Features {
        &self.features
    }

    pub(crate) fn features_mut(&mut self) -> &mut Features {
        &mut self.features
    }

    /// The labels, one per example, each below [`classes`](Dataset::classes).
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// Human-readable class names, indexed by label.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The image shape when examples are images.
    pub fn image(&self) -> Option<ImageShape> {
        self.image
    }

    /// Feature names (the vocabulary of a bag of words), or empty when the
    /// features are anonymous.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// The examples at `rows`, in that order (repeats allowed).
    pub fn subset(&self, rows: &[usize]) -> Result<Dataset, DataError> {
        check_rows(rows, self.len())?;
        Ok(self.subset_checked(rows))
    }

    pub(crate) fn subset_checked(&self, rows: &[usize]) -> Dataset {
        Dataset {
            name: self.name.clone(),
            features: self.features.gather(rows),
            labels: rows.iter().map(|&r| self.labels[r]).collect(),
            class_names: self.class_names.clone(),
            image: self.image,
            feature_names: self.feature_names.clone(),
            text: self.text,
        }
    }

    /// The first `n` examples (all of them when there are fewer), consuming the
    /// set so nothing is copied.
    pub fn take(mut self, n: usize) -> Dataset {
        if n < self.len() {
            self.features.truncate(n);
            self.labels.truncate(n);
        }
        self
    }

    /// Number of examples of each class, indexed by label.
    pub fn label_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes()];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// Copies the examples at `rows` into caller-provided buffers without
    /// allocating: `x` receives `rows.len() * dim()` values row-major (sparse
    /// rows are densified) and `y` their labels. Fails when a buffer has the
    /// wrong length or a row is out of range.
    pub fn gather_dense(
        &self,
        rows: &[usize],
        x: &mut [f32],
        y: &mut [u32],
    ) -> Result<(), DataError> {
        let dim = self.dim();
        check_rows(rows, self.len())?;
        if x.len() != rows.len() * dim || y.len() != rows.len() {
            return Err(DataError::invalid(
                "batch",
                format!(
                    "{} rows of {dim} need buffers of {} values and {} labels, got {} and {}",
                    rows.len(),
                    rows.len() * dim,
                    rows.len(),
                    x.len(),
                    y.len()
                ),
            ));
        }
        match &self.features {
            Features::Dense(d) => {
                for (out, &r) in x.chunks_exact_mut(dim.max(1)).zip(rows) {
                    out.copy_from_slice(&d.values[r * dim..(r + 1) * dim]);
                }
            }
            Features::Sparse(s) => {
                x.fill(0.0);
                for (b, &r) in rows.iter().enumerate() {
                    let out = &mut x[b * dim..(b + 1) * dim];
                    let (a, e) = (s.indptr[r], s.indptr[r + 1]);
                    for (&j, &v) in s.indices[a..e].iter().zip(&s.values[a..e]) {
                        out[j as usize] = v;
                    }
                }
            }
        }
        for (out, &r) in y.iter_mut().zip(rows) {
            *out = self.labels[r];
        }
        Ok(())
    }
}

fn check_rows(rows: &[usize], len: usize) -> Result<(), DataError> {
    match rows.iter().find(|&&r| r >= len) {
        Some(r) => Err(DataError::invalid(
            "row selection",
            format!("row {r} is out of range for {len} examples"),
        )),
        None => Ok(()),
    }
}

/// A reusable sparse mini-batch: [`fill`](CsrBatch::fill) overwrites it with the
/// chosen rows of a data set, reusing its buffers, so a training loop allocates
/// only until the buffers have grown to the largest batch.
#[derive(Clone, Debug, Default)]
pub struct CsrBatch {
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
    labels: Vec<u32>,
    dim: usize,
}

impl CsrBatch {
    /// An empty batch.
    pub fn new() -> CsrBatch {
        CsrBatch::default()
    }

    /// Replaces the contents with the examples at `rows` of `data` (dense rows
    /// keep only their non-zero values). Fails when a row is out of range.
    pub fn fill(&mut self, data: &Dataset, rows: &[usize]) -> Result<(), DataError> {
        check_rows(rows, data.len())?;
        self.indptr.clear();
        self.indices.clear();
        self.values.clear();
        self.labels.clear();
        self.dim = data.dim();
        self.indptr.push(0);
        for &r in rows {
            match &data.features {
                Features::Sparse(s) => {
                    let (a, b) = (s.indptr[r], s.indptr[r + 1]);
                    self.indices.extend_from_slice(&s.indices[a..b]);
                    self.values.extend_from_slice(&s.values[a..b]);
                }
                Features::Dense(d) => {
                    let row = &d.values[r * d.dim..(r + 1) * d.dim];
                    for (j, &v) in row.iter().enumerate() {
                        if v != 0.0 {
                            self.indices.push(j as u32);
                            self.values.push(v);
                        }
                    }
                }
            }
            self.indptr.push(self.indices.len());
            self.labels.push(data.labels[r]);
        }
        Ok(())
    }

    /// Number of rows in the batch.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of features per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Row offsets, `len() + 1` long (empty before the first fill).
    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }

    /// Column indices of the stored entries, ascending within each row.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// Values of the stored entries.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Labels of the rows.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// Row `i` as `(indices, values)`, or `None` when out of range.
    pub fn row(&self, i: usize) -> Option<(&[u32], &[f32])> {
        if i >= self.len() {
            return None;
        }
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        Some((&self.indices[a..b], &self.values[a..b]))
    }
}

/// The splits of a loaded data set. Validation data, when asked for, is carved
/// from the training data; test data comes from the source's own test files.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSplit {
    /// Training examples.
    pub train: Dataset,
    /// Validation examples carved from the training files, if requested.
    pub valid: Option<Dataset>,
    /// Test examples, if the source has them.
    pub test: Option<Dataset>,
}
