//! Optimisers as the landscape runs them: the element-wise ones by spec
//! (`sgd(lr=0.01,momentum=0.9)`), and the closure-based L-BFGS and Newton,
//! whose every iteration becomes one point of the path.

use crate::error::{LandscapeError, Result};
use downhill::hyper::Hyper;
use downhill::lbfgs::LbfgsConfig;
use downhill::newton::Newton;
use downhill::optim::{OptimizerSpec, OPTIMIZERS};
use std::fmt;

/// One optimiser to run, validated.
#[derive(Clone, Debug, PartialEq)]
pub enum Method {
    /// An element-wise optimiser (`sgd`, `adam`, …) with its spec.
    Step(OptimizerSpec),
    /// L-BFGS with torch's hyper-parameters (`lbfgs(line_search_fn=strong_wolfe)`).
    /// One path step is one L-BFGS iteration (with its line search);
    /// `max_iter` and `max_eval` are per iteration and so have no effect.
    Lbfgs(OptimizerSpec, LbfgsConfig),
    /// Newton's method with Hessian modification (`newton`,
    /// `newton(line_search_fn=backtracking)`). One path step is one iteration.
    Newton(OptimizerSpec, Newton),
}

impl Method {
    /// Parses and validates one spec: `name` or `name(key=value,...)`.
    pub fn parse(text: &str) -> Result<Method> {
        let bad = |message: String| LandscapeError::setting("--optimizers", message);
        let spec: OptimizerSpec = text.trim().parse().map_err(|e| bad(format!("{e}")))?;
        match spec.name.as_str() {
            "lbfgs" => {
                let config = downhill_train::method::lbfgs_config(&spec)
                    .map_err(|e| bad(format!("`{text}`: {e}")))?;
                Ok(Method::Lbfgs(spec, config))
            }
            "newton" => {
                let mut config = Newton::default();
                config
                    .apply(&spec.hyper)
                    .map_err(|e| bad(format!("`{text}`: {e}")))?;
                Ok(Method::Newton(spec, config))
            }
            name if OPTIMIZERS.contains(&name) => {
                // The point (x, y) is one vector: a rule that needs a matrix
                // (Muon) says so in one line.
                downhill::optim::build_rule::<f64>(&spec, &[2]).map_err(|e| match e {
                    downhill::Error::Shape(why) => bad(format!(
                        "`{text}` cannot move a 2-D point (x, y), one vector of 2: {}",
                        why.split_once(", but ").map_or(why.as_str(), |(_, w)| w)
                    )),
                    e => bad(format!("`{text}`: {e}")),
                })?;
                Ok(Method::Step(spec))
            }
            other => Err(bad(format!(
                "unknown optimizer `{other}`; expected one of {}, lbfgs, newton",
                OPTIMIZERS.join(", ")
            ))),
        }
    }

    /// The spec, for legends and reports (`sgd(lr=0.01,momentum=0.9)`).
    pub fn label(&self) -> String {
        match self {
            Method::Step(s) | Method::Lbfgs(s, _) | Method::Newton(s, _) => s.to_string(),
        }
    }

    /// Whether a path step is an iteration of a closure-based method
    /// (several evaluations) rather than one gradient step.
    pub fn is_closure_based(&self) -> bool {
        !matches!(self, Method::Step(_))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// Splits a list of specs on the commas outside parentheses:
/// `sgd(lr=0.01),adam(betas=0.9,0.99)` is two specs. `None` when the
/// parentheses do not balance.
pub fn split_specs(text: &str) -> Option<Vec<&str>> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.checked_sub(1)?,
            ',' if depth == 0 => {
                out.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    out.push(text[start..].trim());
    Some(out)
}

/// Parses a comma-separated list of specs (see [`split_specs`]); every spec
/// is validated, and none may be empty or repeated.
pub fn parse_methods(text: &str) -> Result<Vec<Method>> {
    let bad = |message: String| LandscapeError::setting("--optimizers", message);
    let parts =
        split_specs(text).ok_or_else(|| bad(format!("`{text}` has unbalanced parentheses")))?;
    let mut out: Vec<Method> = Vec::new();
    for part in parts {
        if part.is_empty() {
            return Err(bad(format!(
                "`{text}` has an empty entry; expected specs separated by commas, e.g. sgd(lr=0.01),adam"
            )));
        }
        let m = Method::parse(part)?;
        if out.iter().any(|o| o.label() == m.label()) {
            return Err(bad(format!("`{}` is given twice", m.label())));
        }
        out.push(m);
    }
    Ok(out)
}

/// The optimisers run on `function` when none are given, chosen to show the
/// function's lesson at learning rates that are stable from its usual start:
///
/// | function | optimisers |
/// |---|---|
/// | quadratic | `sgd(lr=0.03)`, `sgd(lr=0.03,momentum=0.8)`, `adam(lr=0.3)`, `newton` |
/// | rosenbrock | `sgd(lr=0.001)`, `sgd(lr=0.001,momentum=0.9)`, `adam(lr=0.05)`, `lbfgs(line_search_fn=strong_wolfe)` |
/// | beale | `sgd(lr=0.01)`, `sgd(lr=0.01,momentum=0.9)`, `adam(lr=0.05)`, `rmsprop(lr=0.01)` |
/// | booth | `sgd(lr=0.02)`, `sgd(lr=0.02,momentum=0.9)`, `adam(lr=0.5)`, `newton` |
/// | himmelblau | `sgd(lr=0.01)`, `sgd(lr=0.01,momentum=0.9)`, `adam(lr=0.1)`, `rmsprop(lr=0.05)` |
/// | saddle | `sgd(lr=0.05)`, `sgd(lr=0.05,momentum=0.9)`, `adam(lr=0.05)`, `newton` |
/// | monkey-saddle | `sgd(lr=0.02)`, `sgd(lr=0.02,momentum=0.9)`, `adam(lr=0.05)`, `rmsprop(lr=0.01)` |
/// | rastrigin | `sgd(lr=0.002)`, `sgd(lr=0.002,momentum=0.9)`, `adam(lr=0.8)`, `adagrad(lr=2)` |
/// | logistic | `sgd(lr=1)`, `sgd(lr=1,momentum=0.9)`, `adam(lr=0.1)`, `newton` |
pub fn default_specs(function: &str) -> &'static str {
    match function {
        "quadratic" => "sgd(lr=0.03),sgd(lr=0.03,momentum=0.8),adam(lr=0.3),newton",
        "rosenbrock" => {
            "sgd(lr=0.001),sgd(lr=0.001,momentum=0.9),adam(lr=0.05),lbfgs(line_search_fn=strong_wolfe)"
        }
        "beale" => "sgd(lr=0.01),sgd(lr=0.01,momentum=0.9),adam(lr=0.05),rmsprop(lr=0.01)",
        "booth" => "sgd(lr=0.02),sgd(lr=0.02,momentum=0.9),adam(lr=0.5),newton",
        "himmelblau" => "sgd(lr=0.01),sgd(lr=0.01,momentum=0.9),adam(lr=0.1),rmsprop(lr=0.05)",
        "saddle" => "sgd(lr=0.05),sgd(lr=0.05,momentum=0.9),adam(lr=0.05),newton",
        "monkey-saddle" => {
            "sgd(lr=0.02),sgd(lr=0.02,momentum=0.9),adam(lr=0.05),rmsprop(lr=0.01)"
        }
        "rastrigin" => {
            "sgd(lr=0.002),sgd(lr=0.002,momentum=0.9),adam(lr=0.8),adagrad(lr=2)"
        }
        _ => "sgd(lr=1),sgd(lr=1,momentum=0.9),adam(lr=0.1),newton",
    }
}

/// The parsed [`default_specs`] of `function`.
pub fn default_methods(function: &str) -> Vec<Method> {
    parse_methods(default_specs(function)).expect("the default specs are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_parentheses() {
        assert_eq!(
            split_specs("sgd(lr=0.01),sgd(lr=0.01,momentum=0.9), adam(betas=(0.9,0.99))").unwrap(),
            vec![
                "sgd(lr=0.01)",
                "sgd(lr=0.01,momentum=0.9)",
                "adam(betas=(0.9,0.99))"
            ]
        );
        assert_eq!(split_specs("adam").unwrap(), vec!["adam"]);
        assert!(split_specs("adam(lr=1").is_none());
        assert!(split_specs("adam)lr=1(").is_none());
    }

    #[test]
    fn parses_every_kind() {
        let ms =
            parse_methods("sgd(lr=0.1,momentum=0.9),adam(betas=0.9,0.99),lbfgs,newton").unwrap();
        assert_eq!(ms.len(), 4);
        assert!(matches!(ms[0], Method::Step(_)));
        assert!(matches!(ms[2], Method::Lbfgs(..)));
        assert!(matches!(&ms[3], Method::Newton(..)));
        assert_eq!(ms[1].label(), "adam(betas=0.9,0.99)");
        assert!(ms[2].is_closure_based() && !ms[0].is_closure_based());
    }

    #[test]
    fn rejects_bad_lists_naming_the_flag() {
        for (text, want) in [
            ("adamm", "unknown optimizer `adamm`"),
            ("adam(lr=-1)", "lr"),
            ("sgd,,adam", "empty entry"),
            ("sgd(lr=0.1", "unbalanced"),
            ("adam,adam", "given twice"),
            ("lbfgs(history_size=0)", "history_size"),
            ("newton(max_iter=0)", "max_iter"),
            ("newton(foo=1)", "foo"),
        ] {
            let e = parse_methods(text).unwrap_err().to_string();
            assert!(e.starts_with("--optimizers: "), "{e}");
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn defaults_parse_for_every_function() {
        for f in crate::functions::FUNCTIONS {
            assert!(default_methods(f).len() >= 3, "{f}");
        }
    }
}
