//! What every change to a tenant must satisfy, wherever it is written (names, how many keys),
//! and why a change is refused.

/// Keys per tenant at most (the Tenant's schema).
pub const MAX_KEYS: usize = 16;
const NAME_PATTERN: &str =
    "1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit";
const MAX_DISPLAY_NAME_BYTES: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// The API server's refusal of the signed-in person, in its words.
    #[error("{0}")]
    Forbidden(String),
    /// The API server could not be asked.
    #[error("{0}")]
    Unavailable(String),
    #[error("cannot write the config folder: {0}")]
    Io(#[from] std::io::Error),
}

/// The name of the Secret holding a key the console created. `.` cannot be in either name (DNS
/// labels), so no two tenants' keys share a Secret (as `a-b` + `c` and `a` + `b-c` would with `-`).
pub fn key_secret_name(tenant: &str, key: &str) -> String {
    format!("console-key.{tenant}.{key}")
}

/// Tenant and key names are DNS labels, as the Tenant's schema requires.
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (1..=63).contains(&bytes.len())
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes.iter().all(|b| edge(b) || *b == b'-')
}

pub fn check_name(what: &str, name: &str) -> Result<(), EditError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(EditError::Invalid(format!("the {what} name must be {NAME_PATTERN}")))
    }
}

pub fn check_display_name(display_name: Option<&str>) -> Result<(), EditError> {
    match display_name {
        Some(d) if d.len() > MAX_DISPLAY_NAME_BYTES || d.chars().any(char::is_control) => {
            Err(EditError::Invalid(format!(
                "display_name must be at most {MAX_DISPLAY_NAME_BYTES} bytes without control characters, not {} bytes",
                d.len()
            )))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        for good in ["a", "payments", "team-7", &"x".repeat(63)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", "../x", &"x".repeat(64)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn no_two_keys_share_a_secret() {
        assert_ne!(key_secret_name("a-b", "c"), key_secret_name("a", "b-c"));
    }
}
