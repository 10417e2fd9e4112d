//! Optimisers by name: `adam`, `sgd(lr=0.05,momentum=0.9,nesterov=true)`, ...

use super::Role;
use crate::error::{Error, Result};
use crate::hyper::{HyperMap, HyperValue};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

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

/// One part of a partition: the roles it takes and the optimiser for them.
/// `all` takes every tensor that no other part names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartSpec {
    /// The roles this part takes (`hidden`, `input`, `output`, `bias`, `conv`).
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Whether this part takes every tensor no other part names (`all`).
    #[serde(default)]
    pub rest: bool,
    /// The optimiser for those tensors.
    pub spec: OptimizerSpec,
}

impl PartSpec {
    /// The selector as written: `hidden+conv`, or `all`.
    pub fn selector(&self) -> String {
        let mut names: Vec<&str> = self.roles.iter().map(|r| r.name()).collect();
        if self.rest {
            names.push("all");
        }
        names.join("+")
    }
}

/// An optimiser by name, with hyper-parameters (torch names; absent ones take
/// torch's defaults) and optional parameter groups; or a partition that gives
/// different optimisers to parameters of different roles.
///
/// Written as `name` or `name(key=value,...)`; a list value continues across
/// commas (`adam(betas=0.9,0.99,lr=0.01)`) or may be bracketed
/// (`betas=(0.9,0.99)`). A partition is written
/// `partition(ROLES=SPEC,...)` where `ROLES` is one role or several joined by
/// `+` (`hidden`, `input`, `output`, `bias`, `conv`) or `all` for every tensor
/// no other part names: `partition(hidden=muon(lr=0.02),all=adamw(lr=1e-3))`.
/// Commas inside the parentheses do not separate specs, so a partition can
/// stand in any list of specs (`--optimizers "adamw,partition(hidden=muon,all=adamw)"`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerSpec {
    /// Registry name, lower case, or `partition`.
    pub name: String,
    /// Hyper-parameters for every group.
    #[serde(default)]
    pub hyper: HyperMap,
    /// Parameter groups; empty means one group with every tensor.
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
    /// The parts of a partition (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartSpec>,
    /// The optimiser a wrapper wraps (`lookahead(SPEC,k=5)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner: Option<Box<OptimizerSpec>>,
}

/// The hyper-parameters that belong to the `lookahead` wrapper itself; any
/// other goes to the optimiser it wraps.
const WRAPPER_HYPER: &[&str] = &["k", "alpha"];

impl OptimizerSpec {
    /// A spec with torch's defaults.
    pub fn new(name: &str) -> Self {
        OptimizerSpec {
            name: name.to_ascii_lowercase(),
            ..Default::default()
        }
    }

    /// Sets a hyper-parameter (checked when the optimiser is built). On a
    /// partition, sets it on every part that has it.
    pub fn with(mut self, key: &str, value: HyperValue) -> Self {
        if let Some(inner) = self.inner.take() {
            if WRAPPER_HYPER.contains(&key) {
                self.hyper.insert(key.to_string(), value);
                self.inner = Some(inner);
            } else {
                self.inner = Some(Box::new(inner.with(key, value)));
            }
            return self;
        }
        if self.parts.is_empty() {
            self.hyper.insert(key.to_string(), value);
        } else {
            for p in &mut self.parts {
                p.spec = std::mem::take(&mut p.spec).with(key, value.clone());
            }
        }
        self
    }

    /// Builds and validates the configuration without any parameters, so a
    /// CLI can reject a bad spec before loading data.
    pub fn validate(&self) -> Result<()> {
        if let Some(inner) = &self.inner {
            let mut config = super::LookaheadConfig::default();
            crate::hyper::Hyper::apply(&mut config, &self.hyper)?;
            return inner.validate();
        }
        if self.parts.is_empty() {
            return super::registry::check_spec(self);
        }
        self.parts.iter().try_for_each(|p| p.spec.validate())
    }

    /// A display label: the name plus the hyper-parameters that were set.
    pub fn label(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for OptimizerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if let Some(inner) = &self.inner {
            write!(f, "({inner}")?;
            for (k, v) in &self.hyper {
                write!(f, ",{k}={v}")?;
            }
            return write!(f, ")");
        }
        if !self.parts.is_empty() {
            let parts: Vec<String> = self
                .parts
                .iter()
                .map(|p| format!("{}={}", p.selector(), p.spec))
                .collect();
            return write!(f, "({})", parts.join(","));
        }
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

/// The deepest brackets may nest in a spec (`lookahead(partition(hidden=adam(betas=(…))))`
/// is 4): readers and builders recurse once per level, and a spec nested
/// thousands deep would otherwise overflow a thread's stack.
pub const MAX_NESTING: usize = 16;

/// Refuses `text` if its brackets nest deeper than [`MAX_NESTING`]: one pass,
/// before any recursive reading.
pub(crate) fn check_nesting(text: &str, what: &'static str) -> Result<()> {
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' | '[' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Error::Parse {
                        what,
                        text: if text.chars().count() > 60 {
                            text.chars().take(60).collect::<String>() + "…"
                        } else {
                            text.to_string()
                        },
                        why: format!("brackets nest more than {MAX_NESTING} deep"),
                    });
                }
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

impl OptimizerSpec {
    /// How deep wrappers and partitions nest in this spec (0 for a plain
    /// optimizer; each level adds a pair of brackets, so a parsed spec is
    /// never deeper than [`MAX_NESTING`]), counted no further than one past
    /// it, so the count itself recurses a bounded number of times.
    pub fn nesting(&self) -> usize {
        fn walk(s: &OptimizerSpec, depth: usize) -> usize {
            if depth > MAX_NESTING {
                return depth;
            }
            let inner = s.inner.as_deref().map_or(depth, |i| walk(i, depth + 1));
            s.parts
                .iter()
                .map(|p| walk(&p.spec, depth + 1))
                .fold(inner, usize::max)
        }
        walk(self, 0)
    }

    /// Refuses a spec nested deeper than [`MAX_NESTING`] (one built in code
    /// can be; a parsed one cannot).
    pub(crate) fn check_nesting(&self) -> Result<()> {
        if self.nesting() > MAX_NESTING {
            return Err(Error::Unsupported(format!(
                "optimizer spec `{}…`: wrappers and partitions nest more than {MAX_NESTING} deep",
                self.name
            )));
        }
        Ok(())
    }
}

impl FromStr for OptimizerSpec {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        check_nesting(text, "optimizer spec")?;
        let t = text.trim();
        if starts_with_ignore_case(t, "partition(") {
            return parse_partition(t);
        }
        if starts_with_ignore_case(t, "lookahead(") {
            return parse_wrapper(t);
        }
        let (name, hyper) = parse_call(t, "optimizer spec")?;
        Ok(OptimizerSpec {
            name,
            hyper,
            ..Default::default()
        })
    }
}

/// Whether `text` starts with the ASCII `prefix`, in any case, and goes on
/// after it. `get`, not slicing: the prefix's end may fall inside a
/// character of several bytes (found by the `config_toml` fuzz target).
fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() > prefix.len()
        && text
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// `lookahead(SPEC,k=5,alpha=0.5)`: the wrapped spec first, then the
/// wrapper's own settings.
fn parse_wrapper(text: &str) -> Result<OptimizerSpec> {
    let err = |why: String| Error::Parse {
        what: "optimizer spec",
        text: text.to_string(),
        why,
    };
    let inner_text = text[10..]
        .strip_suffix(')')
        .ok_or_else(|| err("missing the closing `)`".into()))?;
    let tokens = split_top_level(inner_text);
    let Some((first, rest)) = tokens.split_first() else {
        return Err(err(
            "lookahead needs the optimizer it wraps: lookahead(adam,k=5,alpha=0.5)".into(),
        ));
    };
    // A setting is `key=value` with no parenthesis before the `=`.
    let is_setting = |tok: &str| tok.split_once('=').is_some_and(|(k, _)| !k.contains('('));
    if is_setting(first) || first.trim().is_empty() {
        return Err(err(
            "the wrapped optimizer comes first: lookahead(adam(lr=0.001),k=5,alpha=0.5)".into(),
        ));
    }
    let inner: OptimizerSpec = first.trim().parse()?;
    let (_, hyper) = parse_call(&format!("lookahead({})", rest.join(",")), "optimizer spec")
        .map_err(|e| err(e.to_string()))?;
    if let Some(k) = hyper.keys().find(|k| !WRAPPER_HYPER.contains(&k.as_str())) {
        return Err(err(format!(
            "`{k}` is not a lookahead setting (k, alpha); the wrapped optimizer's go inside its own parentheses"
        )));
    }
    Ok(OptimizerSpec {
        name: "lookahead".into(),
        hyper,
        inner: Some(Box::new(inner)),
        ..Default::default()
    })
}

/// `partition(ROLES=SPEC,...)`, parts in the order written.
fn parse_partition(text: &str) -> Result<OptimizerSpec> {
    let err = |why: String| Error::Parse {
        what: "optimizer spec",
        text: text.to_string(),
        why,
    };
    let inner = text[10..]
        .strip_suffix(')')
        .ok_or_else(|| err("missing the closing `)`".into()))?;
    let mut parts: Vec<PartSpec> = Vec::new();
    for token in split_top_level(inner) {
        let token = token.trim();
        if token.is_empty() {
            continue;
        }
        let (sel, spec) = token.split_once('=').ok_or_else(|| {
            err(format!(
                "`{token}` is not ROLES=SPEC (e.g. hidden=muon(lr=0.02) or all=adamw)"
            ))
        })?;
        let (mut roles, mut rest) = (Vec::new(), false);
        for name in sel.split('+').map(str::trim) {
            if name == "all" {
                rest = true;
            } else {
                let role: Role = name.parse().map_err(err)?;
                if parts.iter().any(|p| p.roles.contains(&role)) || roles.contains(&role) {
                    return Err(err(format!("role `{role}` is given to two parts")));
                }
                roles.push(role);
            }
        }
        if rest && parts.iter().any(|p| p.rest) {
            return Err(err("`all` is given to two parts".into()));
        }
        let spec: OptimizerSpec = spec.trim().parse()?;
        if !spec.parts.is_empty() {
            return Err(err("a part cannot itself be a partition".into()));
        }
        parts.push(PartSpec { roles, rest, spec });
    }
    if parts.is_empty() {
        return Err(err("a partition needs at least one ROLES=SPEC part".into()));
    }
    Ok(OptimizerSpec {
        name: "partition".into(),
        parts,
        ..Default::default()
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{build, describe, OPTIMIZERS};

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

    /// Found by the `config_toml` fuzz target: the check for a
    /// `partition(` prefix sliced the spec at byte 10, which panicked when
    /// a character of several bytes spanned it.
    #[test]
    fn a_multibyte_character_at_byte_ten_is_an_error_not_a_panic() {
        for text in [
            "sgd(0=.l5\u{5da}",
            "partitio\u{20ac}(all=sgd)",
            "lookahea\u{20ac}(sgd)",
            "a\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}(lr=1)",
        ] {
            let e = text.parse::<OptimizerSpec>().unwrap_err().to_string();
            assert!(e.contains(text) && !e.contains('\n'), "{e}");
        }
        let s: OptimizerSpec = "PARTITION(all=sgd)".parse().unwrap();
        assert_eq!(s.parts.len(), 1);
    }
}
