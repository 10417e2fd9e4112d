//! Optimisers by name: `adam`, `sgd(lr=0.05,momentum=0.9,nesterov=true)`, ...

use super::{
    Adadelta, Adagrad, Adam, AdamW, Adamax, Elementwise, Group, NAdam, Optimizer, RAdam, RMSprop,
    Rule, Sgd,
};
use crate::error::{Error, Result};
use crate::hyper::{HyperInfo, HyperMap, HyperValue};
use crate::Real;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The element-wise optimisers [`build`] knows, by torch name. (`lbfgs` is
/// closure-based: see [`crate::lbfgs`].)
pub const OPTIMIZERS: &[&str] = &[
    "sgd", "adagrad", "adadelta", "rmsprop", "adam", "adamw", "adamax", "nadam", "radam",
];

/// A parameter group in a spec: tensor indices and hyper-parameter overrides.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Tensor indices.
    pub params: Vec<usize>,
    /// Overrides of the spec's hyper-parameters for this group.
    #[serde(default)]
    pub hyper: HyperMap,
}

/// An optimiser by name, with hyper-parameters (torch names; absent ones take
/// torch's defaults) and optional parameter groups.
///
/// Written as `name` or `name(key=value,...)`; a list value continues across
/// commas (`adam(betas=0.9,0.99,lr=0.01)`) or may be bracketed
/// (`betas=(0.9,0.99)`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerSpec {
    /// torch name, lower case.
    pub name: String,
    /// Hyper-parameters for every group.
    #[serde(default)]
    pub hyper: HyperMap,
    /// Parameter groups; empty means one group with every tensor.
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
}

impl OptimizerSpec {
    /// A spec with torch's defaults.
    pub fn new(name: &str) -> Self {
        OptimizerSpec {
            name: name.to_ascii_lowercase(),
            ..Default::default()
        }
    }

    /// Sets a hyper-parameter (checked when the optimiser is built).
    pub fn with(mut self, key: &str, value: HyperValue) -> Self {
        self.hyper.insert(key.to_string(), value);
        self
    }

    /// Builds and validates the configuration without any parameters, so a
    /// CLI can reject a bad spec before loading data.
    pub fn validate(&self) -> Result<()> {
        build::<f32>(self, &[]).map(drop)
    }

    /// A display label: the name plus the hyper-parameters that were set.
    pub fn label(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for OptimizerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if !self.hyper.is_empty() {
            let parts: Vec<String> = self
                .hyper
                .iter()
                .map(|(k, v)| match v {
                    HyperValue::List(xs) => {
                        format!(
                            "{k}={}",
                            xs.iter()
                                .map(|x| x.to_string())
                                .collect::<Vec<_>>()
                                .join(",")
                        )
                    }
                    v => format!("{k}={v}"),
                })
                .collect();
            write!(f, "({})", parts.join(","))?;
        }
        Ok(())
    }
}

impl FromStr for OptimizerSpec {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let (name, hyper) = parse_call(text, "optimizer spec")?;
        Ok(OptimizerSpec {
            name,
            hyper,
            groups: Vec::new(),
        })
    }
}

/// Parses `name` or `name(key=value,...)` into a lower-case name and a map.
pub(crate) fn parse_call(text: &str, what: &'static str) -> Result<(String, HyperMap)> {
    let err = |why: String| Error::Parse {
        what,
        text: text.to_string(),
        why,
    };
    let t = text.trim();
    let (name, args) = match t.find('(') {
        None => (t, ""),
        Some(i) => {
            let inner = t[i + 1..]
                .strip_suffix(')')
                .ok_or_else(|| err("missing the closing `)`".into()))?;
            (&t[..i], inner)
        }
    };
    let name = name.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(err(format!("`{name}` is not a name")));
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    for token in split_top_level(args) {
        let token = token.trim();
        if token.is_empty() {
            continue;
        }
        match token.split_once('=') {
            Some((k, v)) => {
                let k = k.trim().to_string();
                if pairs.iter().any(|(seen, _)| *seen == k) {
                    return Err(err(format!("`{k}` is given twice")));
                }
                pairs.push((k, v.trim().to_string()));
            }
            // A bare number after `key=value` continues a list: betas=0.9,0.999.
            None => match pairs.last_mut() {
                Some((_, v)) if token.parse::<f64>().is_ok() => {
                    v.push(',');
                    v.push_str(token);
                }
                _ => return Err(err(format!("`{token}` is not key=value"))),
            },
        }
    }
    let hyper = pairs
        .into_iter()
        .map(|(k, v)| (k, HyperValue::parse(&v)))
        .collect();
    Ok((name.to_ascii_lowercase(), hyper))
}

/// Splits on commas that are not inside brackets.
pub(crate) fn split_top_level(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn make<R: Rule, T: Real>(spec: &OptimizerSpec, sizes: &[usize]) -> Result<Box<dyn Optimizer<T>>> {
    let mut base = R::default();
    for (k, v) in &spec.hyper {
        base.set(k, v)?;
    }
    let groups = if spec.groups.is_empty() {
        vec![Group {
            rule: base,
            params: (0..sizes.len()).collect(),
        }]
    } else {
        spec.groups
            .iter()
            .map(|g| {
                let mut rule = base.clone();
                for (k, v) in &g.hyper {
                    rule.set(k, v)?;
                }
                Ok(Group {
                    rule,
                    params: g.params.clone(),
                })
            })
            .collect::<Result<_>>()?
    };
    Ok(Box::new(Elementwise::<R, T>::with_groups(groups, sizes)?))
}

/// Calls `$f::<Rule>` for the rule named `$name`.
macro_rules! dispatch {
    ($name:expr, $f:ident $(::<$($t:ty),*>)? ($($arg:expr),*)) => {
        match $name {
            "sgd" => $f::<Sgd $($(, $t)*)?>($($arg),*),
            "adagrad" => $f::<Adagrad $($(, $t)*)?>($($arg),*),
            "adadelta" => $f::<Adadelta $($(, $t)*)?>($($arg),*),
            "rmsprop" => $f::<RMSprop $($(, $t)*)?>($($arg),*),
            "adam" => $f::<Adam $($(, $t)*)?>($($arg),*),
            "adamw" => $f::<AdamW $($(, $t)*)?>($($arg),*),
            "adamax" => $f::<Adamax $($(, $t)*)?>($($arg),*),
            "nadam" => $f::<NAdam $($(, $t)*)?>($($arg),*),
            "radam" => $f::<RAdam $($(, $t)*)?>($($arg),*),
            other => Err(unknown_optimizer(other)),
        }
    };
}

fn unknown_optimizer(name: &str) -> Error {
    if name == "lbfgs" {
        return Error::Unsupported(
            "lbfgs is closure-based (it evaluates the objective several times per step): use downhill::lbfgs::Lbfgs"
                .into(),
        );
    }
    Error::UnknownName {
        kind: "optimizer",
        name: name.to_string(),
        known: OPTIMIZERS.join(", "),
    }
}

/// Builds the optimiser a spec names, over parameter tensors of the given sizes.
pub fn build<T: Real>(spec: &OptimizerSpec, sizes: &[usize]) -> Result<Box<dyn Optimizer<T>>> {
    dispatch!(spec.name.as_str(), make::<T>(spec, sizes))
}

fn describe_rule<R: Rule>() -> Result<Vec<HyperInfo>> {
    Ok(R::describe())
}

/// The hyper-parameters of the optimiser `name`, with defaults and docs.
pub fn describe(name: &str) -> Result<Vec<HyperInfo>> {
    dispatch!(name, describe_rule())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let s: OptimizerSpec = "SGD(lr=0.05, momentum=0.9,nesterov=true)".parse().unwrap();
        assert_eq!(s.name, "sgd");
        assert_eq!(s.hyper["lr"], HyperValue::Number(0.05));
        assert_eq!(s.hyper["nesterov"], HyperValue::Bool(true));
        let s: OptimizerSpec = "adam(betas=0.9,0.99,lr=1e-2)".parse().unwrap();
        assert_eq!(s.hyper["betas"], HyperValue::List(vec![0.9, 0.99]));
        assert_eq!(s.hyper["lr"], HyperValue::Number(0.01));
        let s: OptimizerSpec = "adam(betas=(0.8,0.9))".parse().unwrap();
        assert_eq!(s.hyper["betas"], HyperValue::List(vec![0.8, 0.9]));
        assert_eq!(s.to_string(), "adam(betas=0.8,0.9)");
        assert_eq!(
            "adam".parse::<OptimizerSpec>().unwrap(),
            OptimizerSpec::new("adam")
        );
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "adam(lr=0.1",
            "(lr=1)",
            "adam(lr)",
            "adam(lr=1,lr=2)",
            "ad am",
        ] {
            assert!(bad.parse::<OptimizerSpec>().is_err(), "{bad}");
        }
        let e = build::<f32>(&"adamm".parse().unwrap(), &[1]).unwrap_err();
        assert!(e.to_string().contains("unknown optimizer `adamm`"), "{e}");
        let e = build::<f32>(&"adam(foo=1)".parse().unwrap(), &[1]).unwrap_err();
        assert!(
            e.to_string().contains("unknown hyper-parameter `foo`"),
            "{e}"
        );
        let e = build::<f32>(&"lbfgs".parse().unwrap(), &[1]).unwrap_err();
        assert!(e.to_string().contains("closure"), "{e}");
    }

    #[test]
    fn a_misplaced_key_in_a_group_is_an_error() {
        // `lr` belongs in `hyper`; silently ignoring it would train at the wrong rate.
        let e = serde_json::from_str::<GroupSpec>(r#"{"params":[0],"lr":0.2}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `lr`"), "{e}");
        let e = serde_json::from_str::<OptimizerSpec>(r#"{"name":"sgd","lr":0.2}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `lr`"), "{e}");
    }

    #[test]
    fn every_optimizer_describes_its_hyper_parameters() {
        for name in OPTIMIZERS {
            let d = describe(name).unwrap();
            assert_eq!(d[0].name, "lr", "{name}");
            assert!(d.iter().all(|h| !h.doc.is_empty()), "{name}");
        }
    }
}
