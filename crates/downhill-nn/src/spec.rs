//! Model specs: the strings the CLI passes through, parsed into [`ModelSpec`].
//!
//! # Grammar
//!
//! ```text
//! spec    = kind { ":" section }
//! kind    = "logreg" | "mlp" | "cnn" | "transformer"
//! section = sizes | shape | option
//! shape   = KEY "=" VALUE { "," KEY "=" VALUE }  transformer (required, first section):
//!                                       layers=L, d=D, heads=H, context=C (all required),
//!                                       tied=true|false (output projection = token embedding,
//!                                       default false)
//! sizes   = N { "," N }                 mlp: hidden widths (required, first section)
//!                                       cnn: conv channels (optional, first section)
//! option  = "relu" | "tanh" | "sigmoid" hidden activation (default relu)
//!         | "binary"                    one output unit, for exactly 2 classes
//!         | "loss=" ("ce" | "logistic" | "mse")
//!         | "dropout=" P                after every hidden fully-connected layer, 0 <= P < 1
//!         | "input-dropout=" P          on the network input (dense or sparse)
//!         | "l2=" L                     penalty L/2·‖W‖² over weights (not biases), L >= 0
//!         | "init=" ("he" | "glorot")   override the per-layer default
//!         | "kernel=" K ["x" K2]        cnn: kernel height × width (default 5)
//!         | "stride=" S                 cnn: convolution stride (default 1)
//!         | "pad=" P                    cnn: zero padding (default kernel/2, "same" for odd kernels)
//!         | "pool=" W ["/" S ["/" P]]   cnn: max-pool window, stride (default W), padding (default 0)
//!         | "fc=" N                     cnn: width of the hidden fully-connected layer (0 = none)
//! ```
//!
//! Options may come in any order; a repeated option is an error.
//!
//! # Models
//!
//! - `logreg`: multinomial logistic regression, one linear layer to `classes`
//!   outputs and softmax cross-entropy. Two classes still get two softmax outputs
//!   unless `binary` is given: `logreg:binary` has a single output with the
//!   logistic (sigmoid) loss, labels 0/1. The choice is explicit so that the
//!   parameter count never changes behind the user's back.
//! - `mlp:H1,H2,…`: fully-connected hidden layers of the given widths, each
//!   followed by the activation (and dropout if set), then a linear output layer.
//! - `cnn` is the Adam paper's c64-c64-c128-1000: three 5×5 convolutions ("same"
//!   padding) with 64, 64 and 128 channels, each followed by ReLU and a 3×3 max-pool
//!   of stride 2, then a 1000-unit fully-connected layer with the activation, then
//!   the output layer. `cnn:32,32,64` changes the channel list (any length ≥ 1).
//!   The hidden activation applies to the fully-connected layer; convolutions are
//!   always followed by ReLU.
//! - `transformer:layers=L,d=D,heads=H,context=C` is a decoder-only
//!   transformer over token ids (a character-level language model): token and
//!   learned position embeddings, `L` pre-norm blocks (LayerNorm, causal
//!   multi-head self-attention with `H` heads, residual; LayerNorm, GELU MLP of
//!   width `4·D`, residual), a final LayerNorm and an output projection to the
//!   vocabulary (`classes`), tied to the token embedding with `tied=true`. Its
//!   input rows hold `C + 1` token ids: the first `C` are read, the last `C` are
//!   the targets. Initialisation is GPT-2's. Of the options only `l2=` applies.
//!
//! # Losses
//!
//! `ce` (default) is softmax cross-entropy; with `binary` the default becomes
//! `logistic` (sigmoid with logits). `mse` is the squared error of the raw outputs
//! against one-hot targets, `½·Σⱼ (zⱼ − [j = label])²` per sample (with `binary`:
//! `½·(z − label)²`), averaged over the batch; predictions are the arg-max output
//! (with `binary`: `z > 0.5`).
//!
//! # Examples
//!
//! ```
//! use downhill_nn::ModelSpec;
//! let s: ModelSpec = "mlp:1000,1000:tanh:dropout=0.5:input-dropout=0.2".parse().unwrap();
//! assert_eq!(s.to_string(), "mlp:1000,1000:tanh:dropout=0.5:input-dropout=0.2");
//! let bench: ModelSpec = "cnn:32,32,64:pool=2".parse().unwrap();
//! let paper: ModelSpec = "cnn".parse().unwrap();
//! assert!("logreg:binary".parse::<ModelSpec>().is_ok());
//! let err = "mlp:1000,x".parse::<ModelSpec>().unwrap_err();
//! assert!(err.to_string().contains("`1000,x`"));
//! ```

use crate::NnError;
use std::fmt;
use std::str::FromStr;

/// Element-wise non-linearity after a hidden layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// No non-linearity (used for output layers).
    Identity,
    /// `max(0, x)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + e^(−x))`.
    Sigmoid,
}

impl Activation {
    fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
        }
    }
}

/// The training objective computed from the output layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// Softmax cross-entropy (numerically stable log-sum-exp).
    CrossEntropy,
    /// Binary logistic loss on a single logit (`binary` models only).
    Logistic,
    /// Squared error against one-hot targets, halved: `½‖z − onehot‖²`.
    SquaredError,
}

/// Weight initialisation scheme (biases always start at zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// Kaiming uniform: `U(±√(6 / fan_in))`; default for layers followed by ReLU.
    He,
    /// Glorot/Xavier uniform: `U(±√(6 / (fan_in + fan_out)))`; default otherwise.
    Glorot,
}

/// Max-pool geometry: window, stride and padding (same for both axes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSpec {
    /// Window height and width.
    pub window: usize,
    /// Step between windows.
    pub stride: usize,
    /// Implicit −∞ border; at most `window / 2` so every window sees real input.
    pub padding: usize,
}

/// The architecture family and its shape parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// One linear layer.
    Logreg,
    /// Fully-connected hidden layers of these widths.
    Mlp {
        /// Hidden widths, input side first.
        hidden: Vec<usize>,
    },
    /// Convolution + ReLU + max-pool blocks, then an optional hidden dense layer.
    Cnn {
        /// Output channels of each convolution.
        channels: Vec<usize>,
        /// Kernel (height, width).
        kernel: (usize, usize),
        /// Convolution stride (both axes).
        stride: usize,
        /// Zero padding (height, width); `None` means kernel/2 on each axis.
        padding: Option<(usize, usize)>,
        /// Pooling after every convolution.
        pool: PoolSpec,
        /// Width of the hidden fully-connected layer; 0 for none.
        fc: usize,
    },
    /// A decoder-only transformer language model over token ids.
    Transformer {
        /// Number of blocks.
        layers: usize,
        /// Model width (embedding size), a multiple of `heads`.
        d: usize,
        /// Attention heads per block.
        heads: usize,
        /// Tokens the model reads per sequence.
        context: usize,
        /// Whether the output projection is the token embedding (transposed).
        tied: bool,
    },
}

/// A parsed model description; see the [module docs](self) for the grammar.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// Architecture.
    pub kind: ModelKind,
    /// Hidden activation (fully-connected hidden layers).
    pub activation: Activation,
    /// A single output unit (two classes, labels 0/1).
    pub binary: bool,
    /// Objective.
    pub loss: LossKind,
    /// Dropout probability after each hidden fully-connected layer.
    pub dropout: f64,
    /// Dropout probability on the input.
    pub input_dropout: f64,
    /// L2 penalty strength λ: adds λ/2·‖W‖² over weight tensors.
    pub l2: f64,
    /// Initialisation override; `None` = He before ReLU, Glorot elsewhere.
    pub init: Option<Init>,
}

impl ModelSpec {
    /// A spec with default options for `kind`.
    pub fn new(kind: ModelKind) -> Self {
        ModelSpec {
            kind,
            activation: Activation::Relu,
            binary: false,
            loss: LossKind::CrossEntropy,
            dropout: 0.0,
            input_dropout: 0.0,
            l2: 0.0,
            init: None,
        }
    }

    /// The Adam paper's CNN defaults with the given channels.
    fn cnn_default(channels: Vec<usize>) -> ModelKind {
        ModelKind::Cnn {
            channels,
            kernel: (5, 5),
            stride: 1,
            padding: None,
            pool: PoolSpec {
                window: 3,
                stride: 2,
                padding: 0,
            },
            fc: 1000,
        }
    }
}

/// The transformer's required first section, for error messages.
const TRANSFORMER_FORM: &str =
    "transformer:layers=L,d=D,heads=H,context=C[,tied=true], e.g. transformer:layers=4,d=128,heads=4,context=128";

/// Parses the transformer's `layers=L,d=D,heads=H,context=C[,tied=B]` section.
fn parse_transformer(tok: &str) -> Result<ModelKind, NnError> {
    let (mut layers, mut d, mut heads, mut context, mut tied) = (None, None, None, None, None);
    for item in tok.split(',') {
        let Some((k, v)) = item.split_once('=') else {
            return Err(bad(item, TRANSFORMER_FORM));
        };
        let (k, v) = (k.trim(), v.trim());
        let slot = match k {
            "layers" => &mut layers,
            "d" => &mut d,
            "heads" => &mut heads,
            "context" => &mut context,
            "tied" => {
                if tied.is_some() {
                    return Err(bad(item, "`tied` at most once"));
                }
                tied = Some(match v {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad(item, "tied=true or tied=false")),
                });
                continue;
            }
            _ => {
                return Err(bad(
                    item,
                    "a transformer key: layers, d, heads, context or tied",
                ))
            }
        };
        if slot.is_some() {
            return Err(bad(item, &format!("`{k}` at most once")));
        }
        *slot = Some(parse_pos(item, v, k)?);
    }
    let need = |v: Option<usize>, k: &str| {
        v.ok_or_else(|| bad(tok, &format!("`{k}=` as well: {TRANSFORMER_FORM}")))
    };
    let (layers, d, heads, context) = (
        need(layers, "layers")?,
        need(d, "d")?,
        need(heads, "heads")?,
        need(context, "context")?,
    );
    if !d.is_multiple_of(heads) {
        return Err(bad(
            tok,
            &format!("d a multiple of heads (d={d} has no {heads} equal heads)"),
        ));
    }
    Ok(ModelKind::Transformer {
        layers,
        d,
        heads,
        context,
        tied: tied.unwrap_or(false),
    })
}

fn bad(token: &str, expected: &str) -> NnError {
    NnError::Spec {
        token: token.to_string(),
        expected: expected.to_string(),
    }
}

fn parse_usize_list(tok: &str, what: &str) -> Result<Vec<usize>, NnError> {
    let expected = format!("{what}: comma-separated positive integers, e.g. 1000,1000");
    let mut out = Vec::new();
    for piece in tok.split(',') {
        match piece.trim().parse::<usize>() {
            Ok(n) if n > 0 => out.push(n),
            _ => return Err(bad(tok, &expected)),
        }
    }
    Ok(out)
}

fn parse_pos(tok: &str, v: &str, what: &str) -> Result<usize, NnError> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad(tok, &format!("{what}: a positive integer"))),
    }
}

fn parse_prob(tok: &str, v: &str) -> Result<f64, NnError> {
    match v.parse::<f64>() {
        Ok(p) if (0.0..1.0).contains(&p) => Ok(p),
        _ => Err(bad(tok, "a dropout probability in [0, 1)")),
    }
}

impl FromStr for ModelSpec {
    type Err = NnError;

    fn from_str(s: &str) -> Result<Self, NnError> {
        let mut sections = s.trim().split(':');
        let kind_tok = sections.next().unwrap_or("");
        let mut rest: Vec<&str> = sections.collect();
        let kind = match kind_tok {
            "logreg" => ModelKind::Logreg,
            "mlp" => {
                if rest.is_empty() {
                    return Err(bad(
                        s,
                        "mlp:H1,H2,… with hidden layer widths, e.g. mlp:1000,1000",
                    ));
                }
                let hidden = parse_usize_list(rest.remove(0), "mlp hidden widths")?;
                ModelKind::Mlp { hidden }
            }
            "cnn" => {
                let channels = if rest
                    .first()
                    .is_some_and(|t| t.starts_with(|c: char| c.is_ascii_digit()))
                {
                    parse_usize_list(rest.remove(0), "cnn channels")?
                } else {
                    vec![64, 64, 128]
                };
                ModelSpec::cnn_default(channels)
            }
            "transformer" => {
                if rest.is_empty() {
                    return Err(bad(s, TRANSFORMER_FORM));
                }
                parse_transformer(rest.remove(0))?
            }
            _ => {
                return Err(bad(
                    kind_tok,
                    "a model kind: logreg, mlp, cnn or transformer",
                ))
            }
        };
        let mut spec = ModelSpec::new(kind);
        let is_cnn = matches!(spec.kind, ModelKind::Cnn { .. });
        let is_transformer = matches!(spec.kind, ModelKind::Transformer { .. });
        let mut seen: Vec<&str> = Vec::new();
        let mut loss_given = false;
        for tok in rest {
            let (key, val) = match tok.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (tok.trim(), None),
            };
            let canon = match key {
                "relu" | "tanh" | "sigmoid" => "activation",
                "in-dropout" => "input-dropout",
                k => k,
            };
            if seen.contains(&canon) {
                return Err(bad(tok, &format!("`{canon}` at most once")));
            }
            seen.push(canon);
            if is_transformer && key != "l2" {
                return Err(bad(
                    tok,
                    "no option but l2= after transformer:layers=L,d=D,heads=H,context=C \
                     (tied=true goes in that first section)",
                ));
            }
            let cnn_only = || -> Result<(), NnError> {
                if is_cnn {
                    Ok(())
                } else {
                    Err(bad(tok, &format!("`{key}` only with cnn models")))
                }
            };
            match (key, val) {
                ("relu", None) => spec.activation = Activation::Relu,
                ("tanh", None) => spec.activation = Activation::Tanh,
                ("sigmoid", None) => spec.activation = Activation::Sigmoid,
                ("binary", None) => spec.binary = true,
                ("loss", Some(v)) => {
                    loss_given = true;
                    spec.loss = match v {
                        "ce" | "cross-entropy" => LossKind::CrossEntropy,
                        "logistic" => LossKind::Logistic,
                        "mse" | "squared" => LossKind::SquaredError,
                        _ => return Err(bad(tok, "loss=ce, loss=logistic or loss=mse")),
                    }
                }
                ("dropout", Some(v)) => spec.dropout = parse_prob(tok, v)?,
                ("input-dropout" | "in-dropout", Some(v)) => spec.input_dropout = parse_prob(tok, v)?,
                ("l2", Some(v)) => {
                    spec.l2 = match v.parse::<f64>() {
                        Ok(l) if l >= 0.0 && l.is_finite() => l,
                        _ => return Err(bad(tok, "l2=λ with a finite λ >= 0")),
                    }
                }
                ("init", Some(v)) => {
                    spec.init = Some(match v {
                        "he" | "kaiming" => Init::He,
                        "glorot" | "xavier" => Init::Glorot,
                        _ => return Err(bad(tok, "init=he or init=glorot")),
                    })
                }
                ("kernel", Some(v)) => {
                    cnn_only()?;
                    let (h, w) = match v.split_once('x') {
                        Some((h, w)) => (parse_pos(tok, h, "kernel height")?, parse_pos(tok, w, "kernel width")?),
                        None => {
                            let k = parse_pos(tok, v, "kernel size")?;
                            (k, k)
                        }
                    };
                    if let ModelKind::Cnn { kernel, .. } = &mut spec.kind {
                        *kernel = (h, w);
                    }
                }
                ("stride", Some(v)) => {
                    cnn_only()?;
                    let s = parse_pos(tok, v, "stride")?;
                    if let ModelKind::Cnn { stride, .. } = &mut spec.kind {
                        *stride = s;
                    }
                }
                ("pad", Some(v)) => {
                    cnn_only()?;
                    let p = v.parse::<usize>().map_err(|_| bad(tok, "pad=P with an integer P >= 0"))?;
                    if let ModelKind::Cnn { padding, .. } = &mut spec.kind {
                        *padding = Some((p, p));
                    }
                }
                ("pool", Some(v)) => {
                    cnn_only()?;
                    let parts: Vec<&str> = v.split('/').collect();
                    if parts.len() > 3 {
                        return Err(bad(tok, "pool=W, pool=W/S or pool=W/S/P"));
                    }
                    let window = parse_pos(tok, parts[0], "pool window")?;
                    let stride = match parts.get(1) {
                        Some(s) => parse_pos(tok, s, "pool stride")?,
                        None => window,
                    };
                    let padding = match parts.get(2) {
                        Some(p) => p.parse::<usize>().map_err(|_| bad(tok, "pool padding: an integer >= 0"))?,
                        None => 0,
                    };
                    if padding > window / 2 {
                        return Err(bad(tok, "pool padding at most half the window"));
                    }
                    if let ModelKind::Cnn { pool, .. } = &mut spec.kind {
                        *pool = PoolSpec { window, stride, padding };
                    }
                }
                ("fc", Some(v)) => {
                    cnn_only()?;
                    let n = v.parse::<usize>().map_err(|_| bad(tok, "fc=N with an integer N >= 0"))?;
                    if let ModelKind::Cnn { fc, .. } = &mut spec.kind {
                        *fc = n;
                    }
                }
                _ => {
                    return Err(bad(
                        tok,
                        "an option: relu, tanh, sigmoid, binary, loss=, dropout=, input-dropout=, l2=, init=, \
                         or for cnn kernel=, stride=, pad=, pool=, fc=",
                    ))
                }
            }
        }
        if spec.binary && !loss_given {
            spec.loss = LossKind::Logistic;
        }
        if spec.loss == LossKind::Logistic && !spec.binary {
            return Err(bad(
                "loss=logistic",
                "`binary` as well (the logistic loss needs a single output)",
            ));
        }
        if spec.binary && spec.loss == LossKind::CrossEntropy {
            return Err(bad(
                "loss=ce",
                "loss=logistic or loss=mse with `binary` (one output has no softmax)",
            ));
        }
        Ok(spec)
    }
}

impl fmt::Display for ModelSpec {
    /// The canonical spec string; parsing it gives back an equal spec.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[usize]| {
            v.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        match &self.kind {
            ModelKind::Logreg => write!(f, "logreg")?,
            ModelKind::Mlp { hidden } => write!(f, "mlp:{}", list(hidden))?,
            ModelKind::Transformer {
                layers,
                d,
                heads,
                context,
                tied,
            } => {
                write!(
                    f,
                    "transformer:layers={layers},d={d},heads={heads},context={context}"
                )?;
                if *tied {
                    write!(f, ",tied=true")?;
                }
            }
            ModelKind::Cnn {
                channels,
                kernel,
                stride,
                padding,
                pool,
                fc,
            } => {
                write!(f, "cnn:{}", list(channels))?;
                if *kernel != (5, 5) {
                    if kernel.0 == kernel.1 {
                        write!(f, ":kernel={}", kernel.0)?;
                    } else {
                        write!(f, ":kernel={}x{}", kernel.0, kernel.1)?;
                    }
                }
                if *stride != 1 {
                    write!(f, ":stride={stride}")?;
                }
                if let Some((p, _)) = padding {
                    write!(f, ":pad={p}")?;
                }
                if *pool
                    != (PoolSpec {
                        window: 3,
                        stride: 2,
                        padding: 0,
                    })
                {
                    write!(f, ":pool={}/{}/{}", pool.window, pool.stride, pool.padding)?;
                }
                if *fc != 1000 {
                    write!(f, ":fc={fc}")?;
                }
            }
        }
        if self.activation != Activation::Relu {
            write!(f, ":{}", self.activation.name())?;
        }
        if self.binary {
            write!(f, ":binary")?;
        }
        let default_loss = if self.binary {
            LossKind::Logistic
        } else {
            LossKind::CrossEntropy
        };
        if self.loss != default_loss {
            let name = match self.loss {
                LossKind::CrossEntropy => "ce",
                LossKind::Logistic => "logistic",
                LossKind::SquaredError => "mse",
            };
            write!(f, ":loss={name}")?;
        }
        if self.dropout > 0.0 {
            write!(f, ":dropout={}", self.dropout)?;
        }
        if self.input_dropout > 0.0 {
            write!(f, ":input-dropout={}", self.input_dropout)?;
        }
        if self.l2 > 0.0 {
            write!(f, ":l2={}", self.l2)?;
        }
        match self.init {
            Some(Init::He) => write!(f, ":init=he")?,
            Some(Init::Glorot) => write!(f, ":init=glorot")?,
            None => {}
        }
        Ok(())
    }
}
