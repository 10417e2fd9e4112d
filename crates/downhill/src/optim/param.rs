//! What an optimiser knows about each parameter tensor: its shape and its
//! role in the model. Shapes decide what tensor-level rules do (Muon
//! orthogonalises matrices, Adafactor factors the last two dimensions);
//! roles decide which rule a [`super::Partition`] gives a tensor.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The part a tensor plays in a model, for choosing its rule by role
/// (`partition(hidden=muon,all=adamw)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The weight matrix of a hidden dense layer (neither first nor last).
    Hidden,
    /// The weight matrix of the first layer, which reads the input.
    Input,
    /// The weight matrix of the last layer, which writes the output.
    Output,
    /// A bias, gain or any other vector.
    Bias,
    /// A convolution kernel (out, in, kh, kw).
    Conv,
}

/// Every role, in the order they are listed to users.
pub const ROLES: &[Role] = &[
    Role::Hidden,
    Role::Input,
    Role::Output,
    Role::Bias,
    Role::Conv,
];

impl Role {
    /// The role a tensor of this shape plays when nothing else is known:
    /// vectors (and scalars) are biases, 4-D tensors convolution kernels,
    /// anything else a hidden matrix. A model that knows its layers says
    /// which matrices are its input and output layers instead.
    pub fn from_shape(shape: &[usize]) -> Role {
        match shape.len() {
            0 | 1 => Role::Bias,
            4 => Role::Conv,
            _ => Role::Hidden,
        }
    }

    /// The name used in specs.
    pub fn name(self) -> &'static str {
        match self {
            Role::Hidden => "hidden",
            Role::Input => "input",
            Role::Output => "output",
            Role::Bias => "bias",
            Role::Conv => "conv",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        ROLES
            .iter()
            .copied()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                format!(
                    "`{s}` is not a role (roles: {}, all)",
                    ROLES
                        .iter()
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

/// One parameter tensor as an optimiser sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    /// The shape, row-major: the tensor's elements are stored with the last
    /// dimension fastest.
    pub shape: Vec<usize>,
    /// Its role in the model.
    pub role: Role,
    /// Whether a weight is stored fan-in first, as the transpose of the
    /// usual (out, in, …) layout of torch and candle: downhill's own engine
    /// keeps dense weights as (in, out) and convolution kernels as
    /// (kh, kw, in, out), so that a sparse input's gradient is row-sparse.
    /// Rules that care about which side is the output (Muon's rate
    /// adjustment) read it through [`Param::fans`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub transposed: bool,
}

impl Param {
    /// A tensor of this shape and role.
    pub fn new(shape: impl Into<Vec<usize>>, role: Role) -> Self {
        Param {
            shape: shape.into(),
            role,
            transposed: false,
        }
    }

    /// The same tensor, marked as stored fan-in first (see [`Param::transposed`]).
    pub fn stored_transposed(mut self) -> Self {
        self.transposed = true;
        self
    }

    /// A tensor of this shape, its role inferred from the shape
    /// ([`Role::from_shape`]).
    pub fn of_shape(shape: impl Into<Vec<usize>>) -> Self {
        let shape = shape.into();
        let role = Role::from_shape(&shape);
        Param::new(shape, role)
    }

    /// Number of elements (saturating, so a shape too large to exist is
    /// reported rather than wrapped).
    pub fn len(&self) -> usize {
        self.shape.iter().fold(1usize, |a, &d| a.saturating_mul(d))
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tensor as the row-major matrix it is stored as, for rules that
    /// need one: (rows, columns). Fan-out first (the usual layout), every
    /// dimension after the first folds into the columns, so a convolution
    /// kernel (out, in, kh, kw) is (out, in·kh·kw); stored transposed, every
    /// dimension before the last folds into the rows, so (kh, kw, in, out) is
    /// (kh·kw·in, out). `None` for vectors and scalars.
    pub fn as_matrix(&self) -> Option<(usize, usize)> {
        if self.shape.len() < 2 {
            return None;
        }
        let fold = |dims: &[usize]| dims.iter().fold(1usize, |a, &d| a.saturating_mul(d));
        let n = self.shape.len();
        Some(if self.transposed {
            (fold(&self.shape[..n - 1]), self.shape[n - 1])
        } else {
            (self.shape[0], fold(&self.shape[1..]))
        })
    }

    /// (fan-out, fan-in) of a weight: the stored matrix's (rows, columns),
    /// swapped when it is stored transposed. `None` for vectors.
    pub fn fans(&self) -> Option<(usize, usize)> {
        let (r, c) = self.as_matrix()?;
        Some(if self.transposed { (c, r) } else { (r, c) })
    }
}

/// A flat tensor of `n` elements (a vector, so role [`Role::Bias`]).
impl From<usize> for Param {
    fn from(n: usize) -> Self {
        Param::of_shape(vec![n])
    }
}

impl From<Vec<usize>> for Param {
    fn from(shape: Vec<usize>) -> Self {
        Param::of_shape(shape)
    }
}

impl From<&[usize]> for Param {
    fn from(shape: &[usize]) -> Self {
        Param::of_shape(shape.to_vec())
    }
}

impl<const N: usize> From<[usize; N]> for Param {
    fn from(shape: [usize; N]) -> Self {
        Param::of_shape(shape.to_vec())
    }
}

impl From<&Param> for Param {
    fn from(p: &Param) -> Self {
        p.clone()
    }
}

/// Converts a caller's list (sizes, shapes or [`Param`]s) to params.
pub fn to_params(params: &[impl Clone + Into<Param>]) -> Vec<Param> {
    params.iter().cloned().map(Into::into).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_from_shapes_and_names() {
        assert_eq!(Role::from_shape(&[10]), Role::Bias);
        assert_eq!(Role::from_shape(&[]), Role::Bias);
        assert_eq!(Role::from_shape(&[3, 4]), Role::Hidden);
        assert_eq!(Role::from_shape(&[8, 3, 5, 5]), Role::Conv);
        for r in ROLES {
            assert_eq!(r.name().parse::<Role>(), Ok(*r));
        }
        assert!("weights"
            .parse::<Role>()
            .unwrap_err()
            .contains("hidden, input, output, bias, conv"));
    }

    #[test]
    fn matrices_fold_trailing_dimensions() {
        assert_eq!(Param::of_shape(vec![8, 3, 5, 5]).as_matrix(), Some((8, 75)));
        assert_eq!(
            Param::of_shape(vec![784, 1000]).as_matrix(),
            Some((784, 1000))
        );
        assert_eq!(Param::of_shape(vec![7]).as_matrix(), None);
        // downhill's engine: dense (in, out), conv (kh, kw, in, out).
        let dense = Param::new(vec![784, 1000], Role::Input).stored_transposed();
        assert_eq!(dense.as_matrix(), Some((784, 1000)));
        assert_eq!(dense.fans(), Some((1000, 784)));
        let conv = Param::new(vec![5, 5, 3, 32], Role::Conv).stored_transposed();
        assert_eq!(conv.as_matrix(), Some((75, 32)));
        assert_eq!(conv.fans(), Some((32, 75)));
        assert_eq!(Param::from(12).shape, vec![12]);
        assert_eq!(Param::of_shape(vec![usize::MAX, 2]).len(), usize::MAX);
    }
}
