//! `--set` overrides and `sweep` entries: replacing a value at a dotted path.
//!
//! Both are applied to the scenario's JSON form (serde's externally tagged layout), so a path
//! steps through fields, through a template or rule variant transparently
//! (`circuit.lh` reaches into `DeepLinear(..)`), and into lists by the `name` of an element or
//! by its index (`circuit.populations.h.noise.std`, `post_update.0.rate`). The new value is
//! written in RON and parsed by [`super::ron_value`].

use std::collections::BTreeMap;

use serde_json::Value;

use super::config::ScenarioConfig;
use super::{RunConfig, ScenarioError, ron_value};

/// Replaces the value at a dotted path of `config`.
pub(super) fn set_path<C: serde::Serialize + serde::de::DeserializeOwned>(
    config: &C,
    path: &str,
    value_text: &str,
    origin: &'static str,
) -> Result<C, ScenarioError> {
    let fail = |message: String| ScenarioError::Override {
        origin,
        path: path.to_string(),
        message,
    };
    let value =
        ron_value::parse(value_text).map_err(|m| fail(format!("cannot read value `{value_text}`: {m}")))?;
    let mut tree = serde_json::to_value(config).expect("a scenario always serialises");
    let mut at = &mut tree;
    let mut walked = Vec::new();
    for key in path.split('.') {
        if descend(&mut at.clone(), key).is_none() {
            let here = if walked.is_empty() {
                "the scenario".to_string()
            } else {
                format!("`{}`", walked.join("."))
            };
            return Err(fail(format!("{here} has no {}", children(at, key))));
        }
        at = descend(at, key).expect("checked above");
        walked.push(key);
    }
    // `None` is both an absent option and a unit variant (`noise: None`, `trace_gate: None`):
    // where the place holds a variant name, it is the variant.
    let value = match (&value, &*at) {
        (Value::Null, Value::String(_)) => Value::String("None".into()),
        _ => value,
    };
    let is_null = value.is_null();
    let previous = std::mem::replace(at, value);
    match serde_json::from_value(tree.clone()) {
        Ok(config) => Ok(config),
        Err(first) => {
            // An enum with a variant named `None` where an absent option does not fit.
            if is_null {
                let mut retry = tree.clone();
                let mut at = &mut retry;
                for key in path.split('.') {
                    at = descend(at, key).expect("walked above");
                }
                *at = Value::String("None".into());
                if let Ok(config) = serde_json::from_value(retry) {
                    return Ok(config);
                }
            }
            Err(fail(explain(&first.to_string(), &previous, &tree, path)))
        }
    }
}

/// The child `key` of `node`: a field; an element of a list by its `name` or index; stepping
/// through a single-variant object (`{"DeepLinear": {..}}`).
fn descend<'a>(node: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    match node {
        Value::Object(map) => {
            if map.contains_key(key) {
                return map.get_mut(key);
            }
            if map.len() == 1 {
                let (variant, _) = map.iter().next().expect("one entry");
                if is_variant(variant) {
                    return map.values_mut().next().and_then(|inner| descend(inner, key));
                }
            }
            None
        }
        Value::Array(items) => {
            if let Some(k) = items
                .iter()
                .position(|item| element_name(item).as_deref() == Some(key))
            {
                return items.get_mut(k);
            }
            key.parse::<usize>().ok().and_then(|k| items.get_mut(k))
        }
        _ => None,
    }
}

fn is_variant(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_uppercase())
}

/// The name a list element is addressed by: its `name`, or a projection's default
/// `<from>-><to>`.
fn element_name(item: &Value) -> Option<String> {
    let Value::Object(map) = item else { return None };
    match map.get("name") {
        Some(Value::String(name)) => Some(name.clone()),
        _ => match (map.get("from"), map.get("to")) {
            (Some(Value::String(from)), Some(Value::String(to))) => Some(format!("{from}->{to}")),
            _ => None,
        },
    }
}

/// What `node` offers instead of `key`, for the message.
fn children(node: &Value, key: &str) -> String {
    match node {
        Value::Object(map) if map.len() == 1 && map.keys().all(|k| is_variant(k)) => {
            children(map.values().next().expect("one entry"), key)
        }
        Value::Object(map) => {
            let names: Vec<&str> = map.keys().map(String::as_str).collect();
            format!(
                "field `{key}`{}; fields there: {}",
                did_you_mean(key, &names),
                quoted(&names)
            )
        }
        Value::Array(items) => {
            let names: Vec<String> = items.iter().filter_map(element_name).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            if names.is_empty() {
                format!(
                    "element `{key}`: give an index from 0 to {}",
                    items.len().saturating_sub(1)
                )
            } else {
                format!(
                    "element named `{key}`{}; names there: {} (or an index from 0 to {})",
                    did_you_mean(key, &refs),
                    quoted(&refs),
                    items.len() - 1
                )
            }
        }
        _ => format!("field `{key}`: it is a single value"),
    }
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// ` (did you mean `x`?)` when one of `names` is close to `word`.
pub(crate) fn did_you_mean(word: &str, names: &[&str]) -> String {
    let distance = |a: &str, b: &str| {
        let (a, b): (Vec<char>, Vec<char>) = (
            a.to_lowercase().chars().collect(),
            b.to_lowercase().chars().collect(),
        );
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for i in 1..=a.len() {
            let mut diagonal = row[0];
            row[0] = i;
            for j in 1..=b.len() {
                let next = (row[j] + 1)
                    .min(row[j - 1] + 1)
                    .min(diagonal + usize::from(a[i - 1] != b[j - 1]));
                diagonal = row[j];
                row[j] = next;
            }
        }
        row[b.len()]
    };
    let mut close: Vec<(usize, &str)> = names
        .iter()
        .map(|n| (distance(word, n), *n))
        .filter(|&(d, n)| n != word && d <= (n.chars().count() / 3).max(1))
        .collect();
    close.sort();
    match close.as_slice() {
        // Two equally close names: no guess.
        [(d, _), (e, _), ..] if d == e => String::new(),
        [(_, n), ..] => format!(" (did you mean `{n}`?)"),
        [] => String::new(),
    }
}

/// A serde message about a replaced value, with what the place held before and, for an enum,
/// its variants.
fn explain(message: &str, previous: &Value, tree: &Value, path: &str) -> String {
    let mut text = message.to_string();
    if !previous.is_null() {
        text += &format!("; `{path}` was `{}`", to_ron(previous));
    }
    if let Some(variants) = variants_at(tree, path, previous) {
        text += &format!(", one of {variants}");
    }
    text
}

/// The variant names the enum at `path` accepts, found by offering it one that does not exist
/// and reading serde's list of the expected ones.
fn variants_at(tree: &Value, path: &str, previous: &Value) -> Option<String> {
    let is_enum = match previous {
        Value::String(s) => is_variant(s),
        Value::Object(map) => map.len() == 1 && map.keys().all(|k| is_variant(k)),
        _ => false,
    };
    if !is_enum {
        return None;
    }
    let mut probe = tree.clone();
    let mut at = &mut probe;
    for key in path.split('.') {
        at = descend(at, key)?;
    }
    *at = Value::String("\u{1}".into());
    let message = serde_json::from_value::<ScenarioConfig>(probe).err()?.to_string();
    let list = message.split("expected one of ").nth(1)?;
    Some(
        list.split(", ")
            .map(|v| {
                let name = v.trim().trim_matches('`');
                // A place that held a bare name takes bare names (a unit-variant choice).
                let unit = matches!(previous, Value::String(_));
                if unit || name.is_empty() {
                    format!("`{name}`")
                } else {
                    format!("`{name}(..)`")
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
    )
    .map(|s| s.split(" at line").next().unwrap_or(&s).to_string())
}

/// A JSON value in RON syntax, for messages.
fn to_ron(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::String(s) if is_variant(s) => s.clone(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => format!("[{}]", items.iter().map(to_ron).collect::<Vec<_>>().join(", ")),
        Value::Object(map) if map.len() == 1 && map.keys().all(|k| is_variant(k)) => {
            let (name, inner) = map.iter().next().expect("one entry");
            match inner {
                Value::Object(fields) => format!("{name}({})", fields_to_ron(fields)),
                other => format!("{name}({})", to_ron(other)),
            }
        }
        Value::Object(fields) => format!("({})", fields_to_ron(fields)),
        other => other.to_string(),
    }
}

fn fields_to_ron(fields: &serde_json::Map<String, Value>) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}: {}", to_ron(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Refuses a `--set` path that a sweep entry would overwrite in every run (the same path, a
/// path inside a swept block, or a block containing a swept path).
pub(super) fn check_not_swept(
    path: &str,
    sweep: &BTreeMap<String, Vec<Box<ron::value::RawValue>>>,
) -> Result<(), ScenarioError> {
    let inside = |outer: &str, inner: &str| inner == outer || inner.starts_with(&format!("{outer}."));
    for (key, values) in sweep {
        let Some(swept) = key_paths(key)
            .into_iter()
            .find(|swept| inside(swept, path) || inside(path, swept))
        else {
            continue;
        };
        let listed: Vec<String> = values.iter().map(|v| v.get_ron().trim().to_string()).collect();
        return Err(ScenarioError::Override {
            origin: "--set",
            path: path.into(),
            message: format!(
                "the scenario's sweep sets `{swept}` in every run (to {}), which would replace this value; edit or remove that sweep entry in the file instead",
                listed.join(", ")
            ),
        });
    }
    Ok(())
}

/// The paths one sweep key sets: one, or several joined by commas (a linked axis, whose
/// values are tuples giving each path its value).
fn key_paths(key: &str) -> Vec<&str> {
    key.split(',').map(str::trim).collect()
}

/// The `(path, value)` assignments of one value of a sweep key.
fn axis_assignments(key: &str, value: &str) -> Result<Vec<(String, String)>, ScenarioError> {
    let paths = key_paths(key);
    if paths.len() == 1 {
        return Ok(vec![(paths[0].to_string(), value.to_string())]);
    }
    let fail = |message: String| ScenarioError::Override {
        origin: "sweep entry",
        path: key.to_string(),
        message,
    };
    if let Some(empty) = paths.iter().position(|p| p.is_empty()) {
        return Err(fail(format!(
            "path {} of this linked key is empty: write the paths separated by single commas",
            empty + 1
        )));
    }
    let elements = ron_value::split_tuple(value).ok_or_else(|| {
        fail(format!(
            "links {} paths, so each value must be a tuple of {} values such as `({})`, got `{value}`",
            paths.len(),
            paths.len(),
            vec!["..".to_string(); paths.len()].join(", ")
        ))
    })?;
    if elements.len() != paths.len() {
        return Err(fail(format!(
            "links {} paths but the value `{value}` has {} element{}: give one per path, in order",
            paths.len(),
            elements.len(),
            if elements.len() == 1 { "" } else { "s" }
        )));
    }
    Ok(paths.iter().map(|p| p.to_string()).zip(elements).collect())
}

/// The runs of a sweep: the cartesian product (keys in alphabetical order, the last varying
/// fastest), or the one run if there is no sweep. A key naming several comma-separated paths
/// is one axis whose tuple values set those paths together.
pub(super) fn expand_sweep(config: &ScenarioConfig) -> Result<Vec<RunConfig>, ScenarioError> {
    let entries: Vec<(&String, &Vec<Box<ron::value::RawValue>>)> = config.sweep.iter().collect();
    for (path, values) in &entries {
        if values.is_empty() {
            return Err(ScenarioError::Override {
                origin: "sweep entry",
                path: (*path).clone(),
                message: "has no values; list at least one".into(),
            });
        }
    }
    let total: usize = entries.iter().map(|(_, v)| v.len()).product();
    let mut runs = Vec::with_capacity(total);
    let base = ScenarioConfig {
        sweep: BTreeMap::new(),
        ..config.clone()
    };
    for index in 0..total {
        let mut rest = index;
        let mut picks = vec![0; entries.len()];
        for (k, (_, values)) in entries.iter().enumerate().rev() {
            picks[k] = rest % values.len();
            rest /= values.len();
        }
        let mut assignments = Vec::new();
        for ((key, values), &pick) in entries.iter().zip(&picks) {
            assignments.extend(axis_assignments(key, values[pick].get_ron().trim())?);
        }
        // Whole-block replacements first, so `rule` then `rule.learning_rate` compose.
        let mut order: Vec<usize> = (0..assignments.len()).collect();
        order.sort_by_key(|&k| assignments[k].0.matches('.').count());
        let mut config = base.clone();
        for k in order {
            let (path, value) = &assignments[k];
            config = set_path(&config, path, value, "sweep entry")?;
        }
        runs.push(RunConfig {
            index,
            assignments,
            config,
        });
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn close_names_are_suggested_and_far_ones_are_not() {
        let names = ["WeightNormalisation", "WeightDecay"];
        assert_eq!(
            did_you_mean("WeightNormalization", &names),
            " (did you mean `WeightNormalisation`?)"
        );
        assert_eq!(did_you_mean("Hebbian", &names), "");
        assert_eq!(
            did_you_mean("stepz", &["steps", "epochs"]),
            " (did you mean `steps`?)"
        );
        assert_eq!(did_you_mean("w1", &["W1", "W2"]), " (did you mean `W1`?)");
        // Equally close: no guess.
        assert_eq!(did_you_mean("lr", &["lx", "lh", "ly"]), "");
    }
}
