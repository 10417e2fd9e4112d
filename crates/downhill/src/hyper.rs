//! Hyper-parameters: typed config structs that can also be read and written by
//! name, so that the same optimiser can be driven from Rust code, from a CLI
//! flag, from a spec string like `adam(lr=0.01,betas=0.9,0.99)` or from a
//! reference fixture, with one definition of each name, default and range.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A hyper-parameter value as it arrives from outside Rust code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HyperValue {
    /// `true` / `false`.
    Bool(bool),
    /// Any number (integers included).
    Number(f64),
    /// A list of numbers, e.g. `betas` or `milestones`.
    List(Vec<f64>),
    /// A word, e.g. `threshold_mode = "rel"`.
    Text(String),
    /// JSON `null` / `none`: "not set", for optional hyper-parameters.
    Null,
    /// A list whose members may be unset, e.g. Adafactor's `eps = (none, 1e-3)`.
    OptList(Vec<Option<f64>>),
}

/// Hyper-parameters by name, in a stable order.
pub type HyperMap = BTreeMap<String, HyperValue>;

impl HyperValue {
    /// Parses a command-line style value: `true`/`false`, a number, a list of
    /// numbers separated by `,` or `:` (optionally in brackets), `none`, or a word.
    pub fn parse(text: &str) -> HyperValue {
        let t = text.trim();
        let inner = t
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .or_else(|| t.strip_prefix('[').and_then(|s| s.strip_suffix(']')))
            .unwrap_or(t);
        match inner.to_ascii_lowercase().as_str() {
            "true" => return HyperValue::Bool(true),
            "false" => return HyperValue::Bool(false),
            "none" | "null" => return HyperValue::Null,
            _ => {}
        }
        if let Ok(x) = inner.parse::<f64>() {
            if inner == t {
                return HyperValue::Number(x);
            }
        }
        let parts: Vec<&str> = inner.split([',', ':']).map(str::trim).collect();
        let unset = |p: &str| p.eq_ignore_ascii_case("none") || p.eq_ignore_ascii_case("null");
        if parts.len() > 1
            && parts.iter().any(|p| unset(p))
            && parts.iter().all(|p| unset(p) || p.parse::<f64>().is_ok())
        {
            return HyperValue::OptList(parts.iter().map(|p| p.parse().ok()).collect());
        }
        if parts.iter().all(|p| p.parse::<f64>().is_ok()) && (parts.len() > 1 || inner != t) {
            return HyperValue::List(
                parts
                    .iter()
                    .map(|p| p.parse().unwrap_or(f64::NAN))
                    .collect(),
            );
        }
        HyperValue::Text(t.to_string())
    }
}

impl fmt::Display for HyperValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HyperValue::Bool(b) => write!(f, "{b}"),
            HyperValue::Number(x) => write!(f, "{x}"),
            HyperValue::List(xs) => {
                write!(f, "(")?;
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{x}")?;
                }
                write!(f, ")")
            }
            HyperValue::Text(s) => write!(f, "{s}"),
            HyperValue::Null => write!(f, "none"),
            HyperValue::OptList(xs) => {
                write!(f, "(")?;
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    match x {
                        Some(x) => write!(f, "{x}")?,
                        None => write!(f, "none")?,
                    }
                }
                write!(f, ")")
            }
        }
    }
}

/// A hyper-parameter's name, default and one-line documentation.
#[derive(Clone, Debug, PartialEq)]
pub struct HyperInfo {
    /// torch's name.
    pub name: &'static str,
    /// The default value.
    pub default: HyperValue,
    /// What it does.
    pub doc: &'static str,
}

/// A Rust type that can hold a hyper-parameter. `from_value` returns the
/// expected form in words when the value has the wrong shape.
pub trait HyperField: Sized {
    /// Converts from the outside representation.
    fn from_value(v: &HyperValue) -> std::result::Result<Self, String>;
    /// Converts to the outside representation.
    fn to_value(&self) -> HyperValue;
}

impl HyperField for f64 {
    fn from_value(v: &HyperValue) -> std::result::Result<Self, String> {
        match v {
            HyperValue::Number(x) => Ok(*x),
            _ => Err("a number".into()),
        }
    }
    fn to_value(&self) -> HyperValue {
        HyperValue::Number(*self)
    }
}

impl HyperField for bool {
    fn from_value(v: &HyperValue) -> std::result::Result<Self, String> {
        match v {
            HyperValue::Bool(b) => Ok(*b),
            HyperValue::Number(x) if *x == 0.0 || *x == 1.0 => Ok(*x == 1.0),
            _ => Err("true or false".into()),
        }
    }
    fn to_value(&self) -> HyperValue {
        HyperValue::Bool(*self)
    }
}

fn whole(x: f64) -> std::result::Result<u64, String> {
    if x >= 0.0 && x.fract() == 0.0 && x < 9.0e15 {
        Ok(x as u64)
    } else {
        Err("a non-negative whole number".into())
    }
}

impl HyperField for u64 {
    fn from_value(v: &HyperValue) -> std::result::Result<Self, String> {
        match v {
            HyperValue::Number(x) => whole(*x),
            _ => Err("a non-negative whole number".into()),
        }
    }
    fn to_value(&self) -> HyperValue {
        HyperValue::Number(*self as f64)
    }
}

impl HyperField for usize {
    fn from_value(v: &HyperValue) -> std::result::Result<Self, String> {
        u64::from_value(v).map(|x| x as usize)
    }
    fn to_value(&self) -> HyperValue {
        HyperValue::Number(*self as f64)
    }
}

impl HyperField for (f64, f64) {
    fn from_value(v: &HyperValue) -> std::result::Result<Self, String> {
        match v {
            HyperValue::List(xs) if xs.len() == 2 => Ok((xs[0], xs[1])),
            _ => Err("a pair of numbers, e.g. 0.9,0.999".into()),
        }
    }
    fn to_value(&self) -> HyperValue {
        HyperValue::List(vec![self.0, self.1])
    }
}

impl HyperField for (f64, f64, f64) {
    fn from_value(v: &HyperValue) -> std::result::Result<Self, String> {
        match v {
            HyperValue::List(xs) if xs.len() == 3 => Ok((xs[0], xs[1], xs[2])),
            _ => Err("three numbers, e.g. 3.4445,-4.775,2.0315".into()),
        }
    }
    fn to_value(&self) -> HyperValue {
        HyperValue::List(vec![self.0, self.1, self.2])
    }
}

/// A pair whose first member may be unset (Adafactor's `eps`).
impl HyperField for (Option<f64>, f64) {
    fn from_value(v: &HyperValue) -> std::result::Result<Self, String> {
        let expected = || "a pair of numbers, the first may be none, e.g. none,0.001".to_string();
        match v {
            HyperValue::List(xs) if xs.len() == 2 => Ok((Some(xs[0]), xs[1])),
            HyperValue::OptList(xs) if xs.len() == 2 => match xs[1] {
                Some(second) => Ok((xs[0], second)),
                None => Err(expected()),
            },
            _ => Err(expected()),
        }
    }
    fn to_value(&self) -> HyperValue {
        match self.0 {
            Some(first) => HyperValue::List(vec![first, self.1]),
            None => HyperValue::OptList(vec![None, Some(self.1)]),
        }
    }
}

impl HyperField for Vec<u64> {
    fn from_value(v: &HyperValue) -> std::result::Result<Self, String> {
        let expected = || "a list of non-negative whole numbers, e.g. 30,60,90".to_string();
        match v {
            HyperValue::List(xs) => xs
                .iter()
                .map(|&x| whole(x).map_err(|_| expected()))
                .collect(),
            HyperValue::Number(x) => Ok(vec![whole(*x).map_err(|_| expected())?]),
            _ => Err(expected()),
        }
    }
    fn to_value(&self) -> HyperValue {
        HyperValue::List(self.iter().map(|&x| x as f64).collect())
    }
}

impl<F: HyperField> HyperField for Option<F> {
    fn from_value(v: &HyperValue) -> std::result::Result<Self, String> {
        match v {
            HyperValue::Null => Ok(None),
            other => F::from_value(other)
                .map(Some)
                .map_err(|e| format!("{e} or none")),
        }
    }
    fn to_value(&self) -> HyperValue {
        self.as_ref().map_or(HyperValue::Null, HyperField::to_value)
    }
}

/// Declares a hyper-parameter enum that is written as a word (`"min"`, `"max"`).
#[macro_export]
#[doc(hidden)]
macro_rules! hyper_enum {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        $vis enum $name { $($(#[$vm])* #[serde(rename = $text)] $variant),+ }
        impl $crate::hyper::HyperField for $name {
            fn from_value(v: &$crate::hyper::HyperValue) -> ::std::result::Result<Self, String> {
                match v {
                    $($crate::hyper::HyperValue::Text(t) if t.eq_ignore_ascii_case($text) => Ok($name::$variant),)+
                    _ => Err(concat!("one of:" $(, " ", $text)+).to_string()),
                }
            }
            fn to_value(&self) -> $crate::hyper::HyperValue {
                match self { $($name::$variant => $crate::hyper::HyperValue::Text($text.to_string())),+ }
            }
        }
    };
}

/// A set of hyper-parameters with names, defaults and ranges. Implemented by the
/// [`hyper_struct!`](crate::hyper_struct) macro; never by hand.
pub trait Hyper: Clone + fmt::Debug + Default + Send + Sync + 'static {
    /// The optimiser or schedule name used in messages (torch's).
    const OWNER: &'static str;
    /// All hyper-parameter names, in declaration order.
    const NAMES: &'static [&'static str];
    /// One line of documentation per name, for help texts.
    const DOCS: &'static [&'static str];
    /// The value of `name`, if this set has it.
    fn get(&self, name: &str) -> Option<HyperValue>;
    /// Sets `name` after checking its type (not its range: see [`Hyper::validate`]).
    fn set(&mut self, name: &str, value: &HyperValue) -> Result<()>;
    /// Checks every field against its allowed range.
    fn validate(&self) -> Result<()>;

    /// Sets every entry of `map`, then validates.
    fn apply(&mut self, map: &HyperMap) -> Result<()> {
        for (k, v) in map {
            self.set(k, v)?;
        }
        self.validate()
    }

    /// Name, default value and documentation of every hyper-parameter.
    fn describe() -> Vec<HyperInfo> {
        let d = Self::default();
        Self::NAMES
            .iter()
            .zip(Self::DOCS)
            .map(|(n, doc)| HyperInfo {
                name: n,
                default: d.get(n).unwrap_or(HyperValue::Null),
                doc,
            })
            .collect()
    }

    /// All hyper-parameters by name.
    fn to_map(&self) -> HyperMap {
        Self::NAMES
            .iter()
            .filter_map(|n| self.get(n).map(|v| (n.to_string(), v)))
            .collect()
    }
}

/// Range checks used by [`hyper_struct!`](crate::hyper_struct) declarations. Each
/// returns the allowed range in words when the value falls outside it.
pub mod check {
    type Check = std::result::Result<(), &'static str>;

    fn ok(cond: bool, expected: &'static str) -> Check {
        if cond {
            Ok(())
        } else {
            Err(expected)
        }
    }
    /// `x ≥ 0` and finite.
    pub fn non_negative(x: &f64) -> Check {
        ok(x.is_finite() && *x >= 0.0, "a finite number >= 0")
    }
    /// `x > 0` and finite.
    pub fn positive(x: &f64) -> Check {
        ok(x.is_finite() && *x > 0.0, "a finite number > 0")
    }
    /// `0 ≤ x < 1`.
    pub fn unit_open(x: &f64) -> Check {
        ok((0.0..1.0).contains(x), "a number in [0, 1)")
    }
    /// `0 ≤ x ≤ 1`.
    pub fn unit_closed(x: &f64) -> Check {
        ok((0.0..=1.0).contains(x), "a number in [0, 1]")
    }
    /// `0 < x < 1`.
    pub fn unit_exclusive(x: &f64) -> Check {
        ok(*x > 0.0 && *x < 1.0, "a number in (0, 1)")
    }
    /// Both members in `[0, 1)`.
    pub fn betas(b: &(f64, f64)) -> Check {
        ok(
            (0.0..1.0).contains(&b.0) && (0.0..1.0).contains(&b.1),
            "two numbers, each in [0, 1)",
        )
    }
    /// At least 1.
    pub fn at_least_one_usize(x: &usize) -> Check {
        ok(*x >= 1, "a whole number >= 1")
    }
    /// At least 1.
    pub fn at_least_one(x: &u64) -> Check {
        ok(*x >= 1, "a whole number >= 1")
    }
    /// Finite (any sign).
    pub fn finite(x: &f64) -> Check {
        ok(x.is_finite(), "a finite number")
    }
    /// Strictly increasing.
    pub fn increasing(xs: &[u64]) -> Check {
        ok(
            xs.windows(2).all(|w| w[0] < w[1]),
            "strictly increasing whole numbers",
        )
    }
}

/// Declares a hyper-parameter struct: fields with docs, defaults and range
/// checks, plus by-name access through [`Hyper`]. One declaration per optimiser
/// or schedule is the single source of truth for names, defaults and ranges.
#[macro_export]
#[doc(hidden)]
macro_rules! hyper_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident : $owner:literal {
            $( $(#[doc = $doc:literal])* $field:ident : $ty:ty = $default:expr $(; check $check:path)? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        $vis struct $name { $( $(#[doc = $doc])* pub $field: $ty, )* }

        impl Default for $name {
            fn default() -> Self { Self { $( $field: $default, )* } }
        }

        impl $crate::hyper::Hyper for $name {
            const OWNER: &'static str = $owner;
            const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];
            const DOCS: &'static [&'static str] = &[$(concat!($($doc),*).trim_ascii()),*];
            fn get(&self, name: &str) -> Option<$crate::hyper::HyperValue> {
                match name {
                    $( stringify!($field) => Some($crate::hyper::HyperField::to_value(&self.$field)), )*
                    _ => None,
                }
            }
            fn set(&mut self, name: &str, value: &$crate::hyper::HyperValue) -> $crate::Result<()> {
                match name {
                    $( stringify!($field) => {
                        self.$field = $crate::hyper::HyperField::from_value(value)
                            .map_err(|expected| $crate::hyper::invalid_value($owner, name, value, expected))?;
                        Ok(())
                    } )*
                    _ => Err($crate::hyper::unknown_name($owner, name, Self::NAMES)),
                }
            }
            fn validate(&self) -> $crate::Result<()> {
                $( $(
                    if let Err(expected) = $check(&self.$field) {
                        let shown = $crate::hyper::HyperField::to_value(&self.$field);
                        return Err($crate::hyper::invalid_value($owner, stringify!($field), shown, expected));
                    }
                )? )*
                Ok(())
            }
        }
    };
}

/// The error for a value outside its range (used by the declaration macros).
#[doc(hidden)]
pub fn invalid_value(
    owner: &str,
    name: &str,
    value: impl fmt::Display,
    expected: impl Into<String>,
) -> Error {
    Error::InvalidHyper {
        owner: owner.to_string(),
        name: name.to_string(),
        value: value.to_string(),
        expected: expected.into(),
    }
}

/// The error for a name that does not exist (used by the declaration macros).
#[doc(hidden)]
pub fn unknown_name(owner: &str, name: &str, known: &[&str]) -> Error {
    Error::UnknownHyper {
        owner: owner.to_string(),
        name: name.to_string(),
        known: known.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::hyper_struct! {
        /// Test set.
        struct Demo: "demo" {
            /// A rate.
            lr: f64 = 0.1; check check::non_negative,
            /// A flag.
            flag: bool = false,
            /// A pair.
            betas: (f64, f64) = (0.9, 0.999); check check::betas,
        }
    }

    #[test]
    fn parse_values() {
        assert_eq!(HyperValue::parse("0.5"), HyperValue::Number(0.5));
        assert_eq!(HyperValue::parse("True"), HyperValue::Bool(true));
        assert_eq!(
            HyperValue::parse("0.9,0.99"),
            HyperValue::List(vec![0.9, 0.99])
        );
        assert_eq!(
            HyperValue::parse("(0.9, 0.99)"),
            HyperValue::List(vec![0.9, 0.99])
        );
        assert_eq!(HyperValue::parse("[3]"), HyperValue::List(vec![3.0]));
        assert_eq!(HyperValue::parse("rel"), HyperValue::Text("rel".into()));
        assert_eq!(HyperValue::parse("none"), HyperValue::Null);
    }

    #[test]
    fn set_get_validate() {
        let mut d = Demo::default();
        d.set("lr", &HyperValue::Number(0.5)).unwrap();
        assert_eq!(d.get("lr"), Some(HyperValue::Number(0.5)));
        let e = d.set("nope", &HyperValue::Number(1.0)).unwrap_err();
        assert!(
            e.to_string().contains("unknown hyper-parameter `nope`"),
            "{e}"
        );
        assert!(e.to_string().contains("lr, flag, betas"), "{e}");
        let e = d.set("flag", &HyperValue::Number(0.5)).unwrap_err();
        assert!(e.to_string().contains("true or false"), "{e}");
        d.set("betas", &HyperValue::List(vec![0.9, 1.0])).unwrap();
        let e = d.validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "demo: `betas` = (0.9, 1) is invalid: expected two numbers, each in [0, 1)"
        );
        let mut m = HyperMap::new();
        m.insert("lr".into(), HyperValue::Number(-1.0));
        let e = Demo::default().apply(&m).unwrap_err();
        assert!(e.to_string().contains("`lr` = -1"), "{e}");
        assert_eq!(Demo::default().to_map().len(), 3);
    }
}
