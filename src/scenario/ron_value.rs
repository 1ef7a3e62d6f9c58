//! A RON value as a JSON tree, keeping enum variant names.
//!
//! `--set` values and `sweep` entries replace parts of a scenario. They are applied to the
//! scenario's JSON form (serde's externally tagged layout), so variant names matter: `ron`'s
//! own `Value` drops them (`RelativeToCritical(0.5)` would become `[0.5]`). This small parser
//! maps `Name` to `"Name"`, `Name(x)` to `{"Name": x}`, `Name(a: x, ..)` to
//! `{"Name": {"a": x, ..}}`, `Some(x)` to `x` and `None` to `null`.

use serde_json::{Map, Number, Value};

/// Parses one RON value. The error is a message with the 1-based column.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        at: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.at != p.s.len() {
        return Err(p.err("unexpected text after the value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!("{what} at column {}", self.at + 1)
    }

    fn ws(&mut self) {
        loop {
            while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
                self.at += 1;
            }
            if self.s[self.at..].starts_with(b"//") {
                while self.at < self.s.len() && self.s[self.at] != b'\n' {
                    self.at += 1;
                }
            } else {
                return;
            }
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.at).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected `{}`", c as char)))
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            None => Err(self.err("expected a value")),
            Some(b'"') => self.string().map(Value::String),
            Some(b'[') => {
                self.at += 1;
                Ok(Value::Array(self.sequence(b']')?))
            }
            Some(b'{') => {
                self.at += 1;
                let mut map = Map::new();
                while self.peek() != Some(b'}') {
                    let key = match self.value()? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    self.expect(b':')?;
                    map.insert(key, self.value()?);
                    if self.peek() == Some(b',') {
                        self.at += 1;
                    } else {
                        break;
                    }
                }
                self.expect(b'}')?;
                Ok(Value::Object(map))
            }
            Some(b'(') => self.parenthesised(),
            Some(c) if c == b'-' || c == b'+' || c == b'.' || c.is_ascii_digit() => self.number(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let name = self.identifier();
                match name.as_str() {
                    "true" => return Ok(Value::Bool(true)),
                    "false" => return Ok(Value::Bool(false)),
                    "None" => return Ok(Value::Null),
                    "inf" | "NaN" => return Err(self.err("non-finite numbers are not accepted")),
                    _ => {}
                }
                if self.peek() != Some(b'(') {
                    return Ok(Value::String(name));
                }
                let inner = self.parenthesised()?;
                if name == "Some" {
                    return Ok(match inner {
                        Value::Array(mut items) if items.len() == 1 => items.remove(0),
                        other => other,
                    });
                }
                let inner = match inner {
                    Value::Array(mut items) if items.len() == 1 => items.remove(0),
                    other => other,
                };
                let mut map = Map::new();
                map.insert(name, inner);
                Ok(Value::Object(map))
            }
            Some(c) => Err(self.err(&format!(
                "unexpected `{}`: text values need double quotes, as in `\"{}\"` (in a shell, quote the whole option: --set 'path=\"...\"')",
                c as char,
                String::from_utf8_lossy(&self.s[self.at..])
            ))),
        }
    }

    /// `(a: 1, b: 2)` is an object, `(1, 2)` an array.
    fn parenthesised(&mut self) -> Result<Value, String> {
        self.expect(b'(')?;
        let save = self.at;
        if let Some(c) = self.peek()
            && (c.is_ascii_alphabetic() || c == b'_')
        {
            let _ = self.identifier();
            if self.peek() == Some(b':') {
                self.at = save;
                let mut map = Map::new();
                while self.peek() != Some(b')') {
                    self.ws();
                    let key = self.identifier();
                    if key.is_empty() {
                        return Err(self.err("expected a field name"));
                    }
                    self.expect(b':')?;
                    map.insert(key, self.value()?);
                    if self.peek() == Some(b',') {
                        self.at += 1;
                    } else {
                        break;
                    }
                }
                self.expect(b')')?;
                return Ok(Value::Object(map));
            }
        }
        self.at = save;
        if self.peek() == Some(b')') {
            // `Name()`: a struct variant with every field defaulted.
            self.at += 1;
            return Ok(Value::Object(Map::new()));
        }
        Ok(Value::Array(self.sequence(b')')?))
    }

    fn sequence(&mut self, close: u8) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        while self.peek() != Some(close) {
            items.push(self.value()?);
            if self.peek() == Some(b',') {
                self.at += 1;
            } else {
                break;
            }
        }
        self.expect(close)?;
        Ok(items)
    }

    fn identifier(&mut self) -> String {
        let start = self.at;
        while self.at < self.s.len() && (self.s[self.at].is_ascii_alphanumeric() || self.s[self.at] == b'_') {
            self.at += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.at]).into_owned()
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.at;
        while self.at < self.s.len()
            && matches!(
                self.s[self.at],
                b'0'..=b'9' | b'+' | b'-' | b'.' | b'e' | b'E' | b'_'
            )
        {
            self.at += 1;
        }
        let text: String = String::from_utf8_lossy(&self.s[start..self.at]).replace('_', "");
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Value::Number(i.into()));
        }
        if let Ok(u) = text.parse::<u64>() {
            return Ok(Value::Number(u.into()));
        }
        let f: f64 = text.parse().map_err(|_| {
            self.at = start;
            self.err(&format!("`{text}` is not a number"))
        })?;
        Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| self.err("non-finite numbers are not accepted"))
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        while self.at < self.s.len() {
            match self.s[self.at] {
                b'"' => {
                    self.at += 1;
                    return String::from_utf8(out).map_err(|_| self.err("invalid UTF-8 in string"));
                }
                b'\\' if self.at + 1 < self.s.len() => {
                    self.at += 1;
                    out.push(match self.s[self.at] {
                        b'n' => b'\n',
                        b't' => b'\t',
                        other => other,
                    });
                }
                c => out.push(c),
            }
            self.at += 1;
        }
        Err(self.err("unterminated string"))
    }
}

/// The elements of a RON tuple `(a, b, ..)` as text, split at its top-level commas (commas
/// inside brackets or strings stay with their element); `None` if `text` is not a tuple.
pub fn split_tuple(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    let mut elements = Vec::new();
    let (mut depth, mut in_string, mut escaped, mut start) = (0i32, false, false, 0);
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '(' | '[' | '{' if !in_string => depth += 1,
            ')' | ']' | '}' if !in_string => depth -= 1,
            ',' if !in_string && depth == 0 => {
                elements.push(inner[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return None;
        }
    }
    let last = inner[start..].trim();
    if !last.is_empty() {
        elements.push(last.to_string());
    }
    (depth == 0 && !in_string).then_some(elements)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_variant_names() {
        assert_eq!(
            parse("RelativeToCritical(0.5)").unwrap(),
            json!({"RelativeToCritical": 0.5})
        );
        assert_eq!(parse("F32").unwrap(), json!("F32"));
        assert_eq!(
            parse("NodePerturbation(learning_rate: Absolute(1e-4))").unwrap(),
            json!({"NodePerturbation": {"learning_rate": {"Absolute": 1e-4}}})
        );
        assert_eq!(
            parse("(steps: 10, batch_size: 1)").unwrap(),
            json!({"steps": 10, "batch_size": 1})
        );
        assert_eq!(
            parse("[1, -2.5, \"a\", true, None, Some(3)]").unwrap(),
            json!([1, -2.5, "a", true, null, 3])
        );
        assert_eq!(parse("Zeros").unwrap(), json!("Zeros"));
        assert_eq!(parse("1_000").unwrap(), json!(1000));
        assert_eq!(
            parse("WeightNormalisation()").unwrap(),
            json!({"WeightNormalisation": {}})
        );
    }

    #[test]
    fn tuples_split_at_their_top_level_commas() {
        assert_eq!(
            split_tuple("(300, Absolute(0.4), [1, 2], \"a,b\",)").unwrap(),
            ["300", "Absolute(0.4)", "[1, 2]", "\"a,b\""]
        );
        assert_eq!(split_tuple(" (Normal(std: 0.3)) ").unwrap(), ["Normal(std: 0.3)"]);
        assert_eq!(split_tuple("Absolute(0.4)"), None);
        assert_eq!(split_tuple("(1, (2)"), None);
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(parse("Absolute(1e-4").unwrap_err(), "expected `)` at column 14");
        assert_eq!(
            parse("12abc").unwrap_err(),
            "unexpected text after the value at column 3"
        );
        assert!(parse("").unwrap_err().contains("expected a value"));
    }
}
