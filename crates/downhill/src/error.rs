//! The library's error type.

use thiserror::Error;

/// Everything that can go wrong in this crate. Every variant names the thing at
/// fault (an optimiser, a hyper-parameter, a parameter tensor, a file) so the
/// message can be shown to a user as is.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A hyper-parameter value outside its allowed range.
    #[error("{owner}: `{}` = {} is invalid: expected {expected}", printable(.name), printable(.value))]
    InvalidHyper {
        /// Optimiser or schedule name.
        owner: String,
        /// Hyper-parameter name (torch's spelling).
        name: String,
        /// The offending value, as given.
        value: String,
        /// The allowed range, in words.
        expected: String,
    },
    /// A hyper-parameter this optimiser or schedule does not have.
    #[error("{owner}: unknown hyper-parameter `{}` (known: {known})", printable(.name))]
    UnknownHyper {
        /// Optimiser or schedule name.
        owner: String,
        /// The unknown name.
        name: String,
        /// Comma-separated list of the names that exist.
        known: String,
    },
    /// A name that is not an optimiser or schedule this crate knows.
    #[error("unknown {kind} `{}` (known: {known})", printable(.name))]
    UnknownName {
        /// "optimizer" or "schedule".
        kind: &'static str,
        /// The unknown name.
        name: String,
        /// Comma-separated list of valid names.
        known: String,
    },
    /// A spec string that does not parse.
    #[error("cannot parse {what} `{}`: {}", printable(.text), printable(.why))]
    Parse {
        /// What was being parsed ("optimizer spec", "schedule spec", ...).
        what: &'static str,
        /// The text.
        text: String,
        /// Why it failed.
        why: String,
    },
    /// Parameters, gradients or state of inconsistent sizes.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A NaN or infinite gradient, detected before any parameter was changed.
    #[error("non-finite gradient in parameter {param} at element {index} (value {value}); the step was not taken")]
    NonFiniteGradient {
        /// Index of the parameter tensor.
        param: usize,
        /// Index of the first non-finite element.
        index: usize,
        /// The value found.
        value: f64,
    },
    /// A non-finite total gradient norm while clipping with `error_if_nonfinite`.
    #[error("the total gradient norm is {0}; refusing to clip (error_if_nonfinite)")]
    NonFiniteNorm(f64),
    /// Saved state that cannot be loaded.
    #[error("optimizer state: {}", printable(.0))]
    State(String),
    /// The objective closure of L-BFGS or Newton reported an error.
    #[error("objective: {0}")]
    Objective(String),
    /// A request that this optimiser does not support.
    #[error("{0}")]
    Unsupported(String),
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `text` with control characters escaped (`\n`, `\t`, `\u{7f}`), so that a
/// message quoting what the user gave (a multi-line TOML string, say) stays
/// on one line.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_quoting_user_text_stay_on_one_line() {
        let e = Error::Parse {
            what: "optimizer spec",
            text: "sgd(lr=\n0.1".into(),
            why: "`lr=\n0.1` is not key=value".into(),
        };
        let m = e.to_string();
        assert!(!m.contains('\n'), "{m}");
        assert!(m.contains("sgd(lr=\\n0.1"), "{m}");
        let e = Error::InvalidHyper {
            owner: "sgd".into(),
            name: "lr".into(),
            value: "1\t2\r".into(),
            expected: "a number".into(),
        };
        assert_eq!(
            e.to_string(),
            "sgd: `lr` = 1\\t2\\r is invalid: expected a number"
        );
        assert_eq!(printable("plain ü"), "plain ü");
    }
}
