//! Anthropic's forced tool calls: a request whose `tool_choice` names a tool (`{"type": "tool",
//! "name": ...}`) is answered with one `tool_use` block calling it, its input an example of the
//! tool's `input_schema` (each required property filled by type: `"fake"`, `0`, `false`, `[]`,
//! objects recursively; `enum` and `const` take their first value).

use serde_json::{Map, Value, json};

/// The forced tool's name and an input matching its schema, if the request forces one.
pub(crate) fn forced(body: &Value) -> Option<(String, Value)> {
    let choice = body.get("tool_choice")?;
    if choice.get("type").and_then(Value::as_str) != Some("tool") {
        return None;
    }
    let name = choice.get("name").and_then(Value::as_str)?;
    let tools = body.get("tools").and_then(Value::as_array)?;
    let tool = tools.iter().find(|t| t.get("name").and_then(Value::as_str) == Some(name))?;
    Some((name.to_owned(), example(tool.get("input_schema").unwrap_or(&Value::Null), 0)))
}

/// A value `schema` accepts, for the schemas tools use; nesting is bounded.
pub(crate) fn example(schema: &Value, depth: usize) -> Value {
    if let Some(value) = schema.get("const").or_else(|| schema.get("enum").and_then(|e| e.get(0))) {
        return value.clone();
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") if depth < 8 => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let required = schema.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
            let mut object = Map::new();
            for name in required.iter().filter_map(Value::as_str) {
                let property = properties.and_then(|p| p.get(name)).unwrap_or(&Value::Null);
                object.insert(name.to_owned(), example(property, depth + 1));
            }
            Value::Object(object)
        }
        Some("object") => json!({}),
        Some("array") => json!([]),
        Some("integer" | "number") => json!(0),
        Some("boolean") => json!(false),
        Some("null") => Value::Null,
        _ => json!("fake"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forced_tool_gets_an_input_its_schema_accepts() {
        let body = json!({"tool_choice": {"type": "tool", "name": "answer"}, "tools": [{"name": "answer", "input_schema": {
            "type": "object", "required": ["sky", "n", "tags", "inner", "kind"],
            "properties": {"sky": {"type": "string"}, "n": {"type": "integer"}, "tags": {"type": "array"},
                           "inner": {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}},
                           "kind": {"enum": ["a", "b"]}, "optional": {"type": "string"}}}}]});
        let (name, input) = forced(&body).unwrap();
        assert_eq!(name, "answer");
        assert_eq!(input, json!({"sky": "fake", "n": 0, "tags": [], "inner": {"ok": false}, "kind": "a"}));
        assert!(forced(&json!({"tool_choice": {"type": "auto"}})).is_none());
    }
}
