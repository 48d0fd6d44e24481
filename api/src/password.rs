//! The password policy: 12 to 128 characters, no composition rules, and not one of the common
//! passwords shipped in `common-passwords.txt` (compared case-insensitively).

use crate::error::ApiError;

const COMMON: &str = include_str!("common-passwords.txt");

/// Checks a new password; the error names the `field`.
pub fn check(field: &str, password: &str, username: &str) -> Result<(), ApiError> {
    let length = password.chars().count();
    if length < 12 {
        return Err(ApiError::invalid(field, "must be at least 12 characters"));
    }
    if length > 128 {
        return Err(ApiError::invalid(field, "must be at most 128 characters"));
    }
    let lower = password.to_lowercase();
    if lower == username.to_lowercase() {
        return Err(ApiError::invalid(field, "must not be the username"));
    }
    let listed = COMMON.lines().map(str::trim).filter(|c| !c.is_empty() && !c.starts_with('#'));
    if listed.into_iter().any(|common| common == lower) {
        return Err(ApiError::invalid(field, "is a commonly used password; choose another"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn short_common_and_overlong_passwords_are_refused() {
        assert!(check("password", "short", "u").is_err());
        assert!(check("password", "Password1234", "u").is_err(), "a common one");
        assert!(check("password", &"x".repeat(129), "u").is_err());
        assert!(check("password", "a river of quiet stones", "u").is_ok());
    }
}
