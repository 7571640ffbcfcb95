//! The roles an identity holds, and the role header's value they make.

use std::fmt;
use std::ops::Deref;
use std::rc::Rc;

/// The role names the filter itself assigns.
pub mod role {
    /// Role of a verified access token.
    pub const USER: &str = "user";
    /// Role of an API key, and the default role of a client.
    pub const ADMIN: &str = "admin";
    /// Role of a publishable key and of a request without a credential.
    pub const ANONYMOUS: &str = "anonymous";

    /// Whether `name` can be a role: 1 to 64 lower-case letters, digits, '-' or '_'.
    pub fn is_valid(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    }
}

/// The most roles one token may give.
pub const MAX_ROLES: usize = 32;

/// What separates the names in the role header (a role name never holds one).
const SEPARATOR: char = ',';

thread_local! {
    /// The built-in role names, made once per VM.
    static BUILTIN_ROLES: [Rc<str>; 3] =
        [Rc::from(role::USER), Rc::from(role::ADMIN), Rc::from(role::ANONYMOUS)];
}

/// The roles of an identity: one role (a built-in one or a client's), or the roles an issuer's
/// token names. Held as the role header's value, the names in order joined by `,`, made here
/// once when the identity is made and shared (`Rc`) with every copy; the names are read back
/// from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles(Rc<str>);

impl Roles {
    /// One role; a built-in one (`user`, `admin`, `anonymous`) is shared, made once per VM.
    pub fn one(name: &str) -> Self {
        let shared = BUILTIN_ROLES.with(|roles| roles.iter().find(|r| &***r == name).cloned());
        Roles(shared.unwrap_or_else(|| Rc::from(name)))
    }

    /// The roles a token's roles claim names: the valid role names, each once, in the claim's
    /// order, at most [`MAX_ROLES`]; `user` when none is left.
    pub fn from_claim<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut kept: Vec<&str> = Vec::new();
        for name in names {
            if kept.len() < MAX_ROLES && role::is_valid(name) && !kept.contains(&name) {
                kept.push(name);
            }
        }
        if kept.is_empty() {
            return Roles::one(role::USER);
        }
        let mut joined = String::with_capacity(kept.iter().map(|n| n.len() + 1).sum());
        for name in kept {
            if !joined.is_empty() {
                joined.push(SEPARATOR);
            }
            joined.push_str(name);
        }
        Roles(Rc::from(joined))
    }

    /// Each role name, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.split(SEPARATOR)
    }

    /// Whether `name` is one of these roles.
    pub fn contains(&self, name: &str) -> bool {
        self.names().any(|r| r == name)
    }

    /// The role header's value, shared.
    pub fn header_value(&self) -> Rc<str> {
        Rc::clone(&self.0)
    }

    /// The role header's value: the names joined by `,`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The role header's value, as logged and counted in the cache's size.
impl Deref for Roles {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_role_is_its_name_and_a_builtin_one_is_shared() {
        let user = Roles::one(role::USER);
        assert_eq!(user.as_str(), "user");
        assert_eq!(user.names().collect::<Vec<_>>(), ["user"]);
        assert!(Rc::ptr_eq(
            &user.header_value(),
            &Roles::one("user").header_value()
        ));
        let client = Roles::one("reports");
        assert_eq!(client.header_value().as_ref(), "reports");
        assert!(client.contains("reports") && !client.contains("report"));
    }

    #[test]
    fn a_claim_keeps_valid_names_once_in_order_joined_by_a_comma() {
        let roles = Roles::from_claim(["editor", "Bad", "admin", "editor", "", "a,b", "x y"]);
        assert_eq!(roles.header_value().as_ref(), "editor,admin");
        assert_eq!(roles.to_string(), "editor,admin");
        assert_eq!(&*roles, "editor,admin");
        assert_eq!(roles.names().collect::<Vec<_>>(), ["editor", "admin"]);
        assert!(roles.contains("admin") && roles.contains("editor"));
        assert!(!roles.contains("editor,admin") && !roles.contains("Bad"));
        assert_eq!(Roles::from_claim(["admin"]), Roles::one("admin"));
    }

    #[test]
    fn a_claim_without_a_valid_name_gives_user() {
        for names in [vec![], vec!["Admin", "", "ä"], vec![&*"a".repeat(65)]] {
            let roles = Roles::from_claim(names.iter().copied());
            assert_eq!(roles, Roles::one(role::USER), "{names:?}");
            assert!(Rc::ptr_eq(
                &roles.header_value(),
                &Roles::one(role::USER).header_value()
            ));
        }
    }

    #[test]
    fn a_claim_gives_at_most_max_roles_counting_only_kept_names() {
        let names: Vec<String> = (0..100).map(|i| format!("r{i}")).collect();
        let with_invalid = std::iter::once("Bad").chain(names.iter().map(String::as_str));
        let roles = Roles::from_claim(with_invalid);
        let kept: Vec<&str> = roles.names().collect();
        assert_eq!(kept.len(), MAX_ROLES);
        assert_eq!(kept.first(), Some(&"r0"));
        assert_eq!(
            kept.last().copied(),
            Some(format!("r{}", MAX_ROLES - 1).as_str())
        );
        let twice = names.iter().chain(&names).map(String::as_str);
        assert_eq!(Roles::from_claim(twice), roles);
    }

    #[test]
    fn role_names_are_lower_case_words_of_1_to_64_bytes() {
        for ok in ["user", "a", "read-only", "v2_admin", &"a".repeat(64)] {
            assert!(role::is_valid(ok), "{ok}");
        }
        for bad in ["", "Admin", "a,b", "a b", "é", &"a".repeat(65)] {
            assert!(!role::is_valid(bad), "{bad}");
        }
    }
}
