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
pub struct Param {
    /// The shape, row-major: the tensor's elements are stored with the last
    /// dimension fastest.
    pub shape: Vec<usize>,
    /// Its role in the model.
    pub role: Role,
}

impl Param {
    /// A tensor of this shape and role.
    pub fn new(shape: impl Into<Vec<usize>>, role: Role) -> Self {
        Param {
            shape: shape.into(),
            role,
        }
    }

    /// A tensor of this shape, its role inferred from the shape
    /// ([`Role::from_shape`]).
    pub fn of_shape(shape: impl Into<Vec<usize>>) -> Self {
        let shape = shape.into();
        let role = Role::from_shape(&shape);
        Param { shape, role }
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

    /// The tensor as a matrix for rules that need one: (rows, columns) with
    /// every dimension after the first folded into the columns, so a
    /// convolution kernel (out, in, kh, kw) is (out, in·kh·kw). `None` for
    /// vectors and scalars.
    pub fn as_matrix(&self) -> Option<(usize, usize)> {
        match self.shape.split_first() {
            Some((&rows, rest)) if !rest.is_empty() => {
                Some((rows, rest.iter().fold(1usize, |a, &d| a.saturating_mul(d))))
            }
            _ => None,
        }
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
        assert_eq!(Param::from(12).shape, vec![12]);
        assert_eq!(Param::of_shape(vec![usize::MAX, 2]).len(), usize::MAX);
    }
}
