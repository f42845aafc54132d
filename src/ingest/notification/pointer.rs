//! Reading the body as JSON: a `Value` that notes every duplicated object key
//! (by its RFC 6901 pointer, capped and made log-safe), and syntax errors
//! reduced to their position (never quoting the input).

use super::*;

/// Parse JSON into a `Value`, recording the pointer of every duplicated object key
/// (the last occurrence would otherwise silently win).
pub(super) fn parse_json(body: &[u8], duplicates: &mut Vec<String>) -> Result<Value, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = ValueSeed {
        path: String::new(),
        duplicates,
    }
    .deserialize(&mut de)
    .map_err(syntax_error)?;
    de.end().map_err(syntax_error)?;
    Ok(value)
}

/// Only the position and the error class: `serde_json::Error`'s `Display` can quote input.
pub(super) fn syntax_error(e: serde_json::Error) -> ParseError {
    use serde_json::error::Category as C;
    let kind = match e.classify() {
        C::Io => "read error",
        C::Syntax => "syntax error",
        C::Data => "data error",
        C::Eof => "unexpected end of input",
    };
    ParseError::Syntax(format!(
        "{kind} at line {}, column {}",
        e.line(),
        e.column()
    ))
}

/// Builds a `serde_json::Value` like its own `Deserialize` impl, but notes duplicate keys.
/// Nesting depth stays bounded by serde_json's recursion limit.
pub(super) struct ValueSeed<'a> {
    path: String,
    duplicates: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element_seed(ValueSeed {
            path: index_pointer(&self.path, out.len()),
            duplicates: &mut *self.duplicates,
        })? {
            out.push(item);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = key_pointer(&self.path, &key);
            let item = map.next_value_seed(ValueSeed {
                path: path.clone(),
                duplicates: &mut *self.duplicates,
            })?;
            if out.insert(key, item).is_some() {
                self.duplicates.push(path);
            }
        }
        Ok(Value::Object(out))
    }
}

/// RFC 6901 pointer to `key` under `parent`. The key is capped at
/// `MAX_POINTER_KEY_CHARS` characters, control characters become U+FFFD (pointers end
/// up in logs), and `~` / `/` are escaped as `~0` / `~1`.
pub(crate) fn key_pointer(parent: &str, key: &str) -> String {
    let mut p = String::with_capacity(parent.len() + key.len().min(4 * MAX_POINTER_KEY_CHARS) + 1);
    p.push_str(parent);
    p.push('/');
    for c in key.chars().take(MAX_POINTER_KEY_CHARS) {
        match c {
            '~' => p.push_str("~0"),
            '/' => p.push_str("~1"),
            c if c.is_control() => p.push(char::REPLACEMENT_CHARACTER),
            c => p.push(c),
        }
    }
    p
}

pub(super) fn index_pointer(parent: &str, index: usize) -> String {
    format!("{parent}/{index}")
}
