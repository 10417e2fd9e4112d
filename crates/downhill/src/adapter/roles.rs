//! Parameter roles from a model's parameter names and shapes (a candle
//! `VarMap`'s names, a burn module's paths), the way downhill's
//! own engine assigns them (`downhill_nn::Network::optimizer_params`):
//! biases and vectors are `bias`, 4-D kernels `conv`, the last dense weight
//! `output`, the first dense weight `input` (when no convolution reads the
//! input first), and every other matrix `hidden`.

use crate::optim::{Param, Role};
use std::cmp::Ordering;

/// Compares names as a person orders layers: runs of digits as numbers, so
/// `layer2` comes before `layer10`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let zeros = d.iter().take_while(|&&c| c == b'0').count();
    &d[zeros..]
}

/// Whether a var is a bias (or gain, or any vector) by its name and shape.
fn is_bias(name: &str, shape: &[usize]) -> bool {
    shape.len() <= 1 || name.ends_with("bias")
}

/// The [`Param`] of each var, given in layer order (see [`natural_cmp`]).
/// An embedding table (a matrix whose name contains `embed`) reads the
/// input, so it is `input`, as Muon's authors and Keras route it.
pub fn params_from_names(vars: &[(String, Vec<usize>)]) -> Vec<Param> {
    let has_conv = vars.iter().any(|(n, s)| !is_bias(n, s) && s.len() == 4);
    let dense: Vec<usize> = vars
        .iter()
        .enumerate()
        .filter(|(_, (n, s))| !is_bias(n, s) && s.len() == 2 && !n.contains("embed"))
        .map(|(i, _)| i)
        .collect();
    vars.iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let role = if is_bias(name, shape) {
                Role::Bias
            } else if shape.len() == 4 {
                Role::Conv
            } else if shape.len() == 2 && name.contains("embed") {
                Role::Input
            } else if dense.last() == Some(&i) {
                Role::Output
            } else if dense.first() == Some(&i) && !has_conv {
                Role::Input
            } else {
                Role::from_shape(shape)
            };
            Param::new(shape.clone(), role)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_as_layers() {
        let mut names = vec!["l10.weight", "l2.bias", "l2.weight", "l1.weight", "l01.x"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            ["l1.weight", "l01.x", "l2.bias", "l2.weight", "l10.weight"]
        );
    }

    #[test]
    fn an_mlp_gets_input_hidden_output_and_biases() {
        let vars = [
            ("fc1.bias", vec![512]),
            ("fc1.weight", vec![512, 784]),
            ("fc2.bias", vec![256]),
            ("fc2.weight", vec![256, 512]),
            ("fc3.bias", vec![10]),
            ("fc3.weight", vec![10, 256]),
        ]
        .map(|(n, s)| (n.to_string(), s));
        let roles: Vec<Role> = params_from_names(&vars).iter().map(|p| p.role).collect();
        use Role::*;
        assert_eq!(roles, [Bias, Input, Bias, Hidden, Bias, Output]);
    }

    #[test]
    fn after_a_convolution_the_first_dense_layer_is_hidden() {
        let vars = [
            ("c1.weight", vec![32, 1, 5, 5]),
            ("fc1.weight", vec![100, 512]),
            ("fc2.weight", vec![10, 100]),
            ("norm.gain", vec![10]),
        ]
        .map(|(n, s)| (n.to_string(), s));
        let roles: Vec<Role> = params_from_names(&vars).iter().map(|p| p.role).collect();
        use Role::*;
        assert_eq!(roles, [Conv, Hidden, Output, Bias]);
    }
}
