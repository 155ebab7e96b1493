//! How the CRD schemas and their YAML are written, beyond what the derives produce.
//!
//! Defaults live in Rust (serde) only: the apiserver applies none. A default inside a list item
//! makes the stored list differ from the applied file, so `kubectl apply` of an unchanged file
//! patches it again every time and a second server-side apply manager conflicts on it; and one
//! source of defaults keeps a cluster and a standalone folder reading the same file alike.

use schemars::Schema;
use serde_json::{Map, Value};

/// Container transform for every top-level type: removes each `default` from the schema, nested
/// ones included, and says it in the field's description instead, with how a list merges
/// (`kubectl explain` and docs/resources.md show descriptions).
pub(crate) fn document_in_descriptions(schema: &mut Schema) {
    if let Some(object) = schema.as_object_mut() {
        document(object);
    }
}

fn document(schema: &mut Map<String, Value>) {
    if let Some(default) = schema.remove("default")
        && let Some(text) = default_text(&default, schema)
    {
        append_sentence(schema, &format!("Defaults to {text}."));
    }
    let keys: Vec<&str> = schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let note = match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("map") if !keys.is_empty() => {
            let keys = keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
            Some(format!("Keyed by {keys}: unique, and server-side apply merges entries by it."))
        }
        Some("set") => {
            Some("A set: values are unique, and server-side apply merges them one by one.".to_owned())
        }
        _ => None,
    };
    if let Some(note) = note {
        append_sentence(schema, &note);
    }
    for (key, value) in schema.iter_mut() {
        match (key.as_str(), value) {
            ("properties", Value::Object(properties)) => {
                for property in properties.values_mut() {
                    if let Value::Object(property) = property {
                        document(property);
                    }
                }
            }
            ("items" | "additionalProperties", Value::Object(sub)) => document(sub),
            ("anyOf" | "oneOf" | "allOf", Value::Array(subs)) => {
                for sub in subs {
                    if let Value::Object(sub) = sub {
                        document(sub);
                    }
                }
            }
            _ => {}
        }
    }
}

fn append_sentence(schema: &mut Map<String, Value>, sentence: &str) {
    let description = match schema.get("description").and_then(Value::as_str) {
        Some(d) if d.ends_with('.') => format!("{d} {sentence}"),
        Some(d) if !d.is_empty() => format!("{d}. {sentence}"),
        _ => sentence.to_owned(),
    };
    schema.insert("description".into(), description.into());
}

/// The default as the description says it, or `None` when it says nothing new: an empty string,
/// list or object, or an object whose every field is its property's own default.
fn default_text(default: &Value, schema: &Map<String, Value>) -> Option<String> {
    match default {
        Value::Null => None,
        Value::String(text) if text.is_empty() => None,
        Value::Array(items) if items.is_empty() => None,
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let implied = fields.iter().all(|(name, value)| {
                properties.and_then(|p| p.get(name)).and_then(|p| p.get("default")) == Some(value)
            });
            (!implied).then(|| format!("`{default}`"))
        }
        Value::String(text) => Some(format!("`{text}`")),
        other => Some(format!("`{other}`")),
    }
}

/// Quotes the plain scalars that a YAML 1.1 reader would not read as strings.
///
/// serde_yaml follows YAML 1.2, so it writes the string `Off` plainly; Kubernetes reads YAML 1.1
/// (sigs.k8s.io/yaml), where `Off`, `yes` or `y` are booleans and `1_000` a number, so an enum
/// value `Off` became `false`. Only strings can be written like that by serde_yaml (it writes
/// booleans as `true`/`false` and numbers in decimal), so quoting them changes no value.
pub(crate) fn yaml_1_1_safe(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len() + 64);
    // Inside a block scalar (`|-`), lines more indented than this column are its text.
    let mut block_column: Option<usize> = None;
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if let Some(column) = block_column
            && (line.trim().is_empty() || indent > column)
        {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let (safe, block) = quote_line(line, indent);
        block_column = block;
        out.push_str(&safe);
        out.push('\n');
    }
    out
}

/// One line: `[- ]*[key: ][value]`. Returns the line with its plain key and value quoted where
/// needed, and the column a block scalar it opens must be indented past.
fn quote_line(line: &str, indent: usize) -> (String, Option<usize>) {
    let mut column = indent;
    let mut rest = &line[indent..];
    let mut out = line[..indent].to_owned();
    let mut node_column = indent;
    while let Some(after) = rest.strip_prefix("- ") {
        out.push_str("- ");
        node_column = column;
        column += 2;
        rest = after;
    }
    if rest == "-" {
        out.push_str(rest);
        return (out, None);
    }
    let (key, value) = split_key(rest);
    if let Some(key) = key {
        node_column = column;
        out.push_str(&quote_if_needed(key));
        out.push(':');
        match value {
            Some(value) => {
                out.push(' ');
                rest = value;
            }
            None => return (out, None),
        }
    }
    if rest.starts_with('|') || rest.starts_with('>') {
        out.push_str(rest);
        return (out, Some(node_column));
    }
    out.push_str(&quote_if_needed(rest));
    (out, None)
}

/// Splits `key: value` (or `key:`) where the key is plain or quoted; `(None, _)` for a lone value.
fn split_key(text: &str) -> (Option<&str>, Option<&str>) {
    let key_end = match text.as_bytes().first() {
        Some(b'\'') => quoted_end(text, '\''),
        Some(b'"') => quoted_end(text, '"'),
        Some(b'{' | b'[') => None,
        _ => text.find(": ").or_else(|| text.ends_with(':').then(|| text.len() - 1)),
    };
    match key_end {
        Some(end) if text[end..].starts_with(": ") => (Some(&text[..end]), Some(&text[end + 2..])),
        Some(end) if &text[end..] == ":" => (Some(&text[..end]), None),
        _ => (None, Some(text)),
    }
}

/// The byte index just past a quoted scalar that starts `text`.
fn quoted_end(text: &str, quote: char) -> Option<usize> {
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if quote == '"' && c == '\\' {
            chars.next();
        } else if c == quote {
            if quote == '\'' && chars.peek().map(|&(_, next)| next) == Some('\'') {
                chars.next();
            } else {
                return Some(i + 1);
            }
        }
    }
    None
}

fn quote_if_needed(scalar: &str) -> String {
    if is_yaml_1_1_non_string(scalar) {
        format!("'{}'", scalar.replace('\'', "''"))
    } else {
        scalar.to_owned()
    }
}

/// A plain scalar that YAML 1.1 reads as a boolean, a number or a merge key although YAML 1.2
/// (and so serde_yaml) reads it as a string. `true`, `false`, `null` and decimal numbers are not
/// here: serde_yaml already quotes such strings.
fn is_yaml_1_1_non_string(scalar: &str) -> bool {
    const BOOLEANS: [&str; 18] = [
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
        "=", "<<",
    ];
    if BOOLEANS.contains(&scalar) {
        return true;
    }
    let unsigned = scalar.strip_prefix(['-', '+']).unwrap_or(scalar);
    let digits = |s: &str, radix: u32| !s.is_empty() && s.chars().all(|c| c == '_' || c.is_digit(radix));
    if let Some(binary) = unsigned.strip_prefix("0b") {
        return digits(binary, 2);
    }
    let starts_with_digit = unsigned.starts_with(|c: char| c.is_ascii_digit());
    // Underscores in numbers (`1_000`) and base 60 (`1:30`, `1:30.5`).
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let fraction_ok = fraction.is_empty() || digits(fraction, 10);
    let sexagesimal = whole.split(':').count() > 1 && whole.split(':').all(|part| digits(part, 10));
    starts_with_digit && fraction_ok && (sexagesimal || (whole.contains('_') && digits(whole, 10)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_1_1_booleans_and_numbers_are_quoted_and_nothing_else_changes() {
        let yaml = "enum:\n- Off\n- Rules\n- 'Model'\nn: 1\nkey: yes\nrate: 1_000\ntime: 1:30\nok: 'on'\n\
                    description: |-\n  Off\n  - on\nsame: true\nlist:\n- - y\n  - name: No\n    value: 60.0\n";
        let expected = "enum:\n- 'Off'\n- Rules\n- 'Model'\n'n': 1\nkey: 'yes'\nrate: '1_000'\ntime: '1:30'\n\
                        ok: 'on'\ndescription: |-\n  Off\n  - on\nsame: true\nlist:\n- - 'y'\n  - name: 'No'\n    value: 60.0\n";
        assert_eq!(yaml_1_1_safe(yaml), expected);
        // The same values as before for a YAML 1.2 reader.
        let before: serde_json::Value = serde_yaml::from_str(yaml).expect("valid YAML");
        let after: serde_json::Value = serde_yaml::from_str(&yaml_1_1_safe(yaml)).expect("valid YAML");
        assert_eq!(before, after);
    }

    #[test]
    fn plain_strings_that_are_strings_in_yaml_1_1_stay_plain() {
        for plain in ["Rules", "Model", "offline", "none", "1.2.3", "v1", "0.5x", "a:b", "_1", "1_a"] {
            assert!(!is_yaml_1_1_non_string(plain), "{plain}");
        }
        for special in ["Off", "ON", "y", "NO", "0b101", "-1_000", "1:30", "190:20:30.15"] {
            assert!(is_yaml_1_1_non_string(special), "{special}");
        }
    }

    #[test]
    fn defaults_and_list_types_move_into_descriptions() {
        let mut schema = Schema::try_from(serde_json::json!({
            "type": "object",
            "properties": {
                "weight": {"type": "integer", "default": 1, "description": "Share of traffic."},
                "mode": {"type": "string", "default": "Off"},
                "message": {"type": "string", "default": "", "description": "Detail."},
                "names": {"type": "array", "default": [], "items": {"type": "string"}},
                "policy": {
                    "type": "object",
                    "default": {"attempts": 1},
                    "description": "Retries",
                    "properties": {"attempts": {"type": "integer", "default": 1}}
                },
                "odd": {
                    "type": "object",
                    "default": {"attempts": 2},
                    "properties": {"attempts": {"type": "integer", "default": 1}}
                },
                "items": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["persona"],
                    "items": {"type": "object", "properties": {"trust": {"type": "integer", "default": 50}}}
                },
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "description": "Tags"}
            }
        }))
        .expect("a schema");
        document_in_descriptions(&mut schema);
        let value = schema.as_value();
        assert!(!value.to_string().contains("\"default\""), "{value}");
        let description = |pointer: &str| value.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
        assert_eq!(
            description("/properties/weight/description").as_deref(),
            Some("Share of traffic. Defaults to `1`.")
        );
        assert_eq!(description("/properties/mode/description").as_deref(), Some("Defaults to `Off`."));
        assert_eq!(description("/properties/names/description"), None);
        assert_eq!(description("/properties/message/description").as_deref(), Some("Detail."));
        assert_eq!(description("/properties/policy/description").as_deref(), Some("Retries"));
        assert_eq!(
            description("/properties/policy/properties/attempts/description").as_deref(),
            Some("Defaults to `1`.")
        );
        assert_eq!(
            description("/properties/odd/description").as_deref(),
            Some("Defaults to `{\"attempts\":2}`.")
        );
        assert_eq!(
            description("/properties/items/items/properties/trust/description").as_deref(),
            Some("Defaults to `50`.")
        );
        assert_eq!(
            description("/properties/items/description").as_deref(),
            Some("Keyed by `persona`: unique, and server-side apply merges entries by it.")
        );
        assert_eq!(
            description("/properties/tags/description").as_deref(),
            Some("Tags. A set: values are unique, and server-side apply merges them one by one.")
        );
    }
}
