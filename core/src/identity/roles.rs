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

    /// Whether `name` is a lower-case word of 1 to 64 letters, digits, '-' or '_' (the shape
    /// of an issuer's name).
    pub fn is_word(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    }

    /// Whether `name` can be a role, kept as spelled: see [`super::RoleDrop::of`].
    pub fn is_valid(name: &str) -> bool {
        super::RoleDrop::of(name).is_none()
    }
}

/// The longest role name carried.
pub const MAX_ROLE_LEN: usize = 128;

/// Why a value of a token's roles claim cannot be carried in the role header (logged, never
/// the value itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleDrop {
    Empty,
    TooLong,
    /// A comma: the role header's separator.
    Comma,
    /// A space, a control character or a byte beyond ASCII (look-alikes such as `А`).
    NotPrintableAscii,
    /// Not a string (a number, an object).
    NotAString,
    /// Beyond [`MAX_ROLES`].
    TooMany,
}

impl RoleDrop {
    /// Why `name` cannot be a role; `None` when it can: 1 to [`MAX_ROLE_LEN`] printable
    /// ASCII characters (no space) without a comma, compared exactly (`Orders.Read`,
    /// `Admin`, `urn:acme:ops`).
    pub fn of(name: &str) -> Option<RoleDrop> {
        if name.is_empty() {
            Some(RoleDrop::Empty)
        } else if name.len() > MAX_ROLE_LEN {
            Some(RoleDrop::TooLong)
        } else if !name.bytes().all(|b| b.is_ascii_graphic()) {
            Some(RoleDrop::NotPrintableAscii)
        } else if name.contains(SEPARATOR) {
            Some(RoleDrop::Comma)
        } else {
            None
        }
    }

    /// The reason, for the log.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleDrop::Empty => "an empty role",
            RoleDrop::TooLong => "a role longer than 128 bytes",
            RoleDrop::Comma => "a role holding a comma",
            RoleDrop::NotPrintableAscii => {
                "a role holding a space, a control character or a non-ASCII character"
            }
            RoleDrop::NotAString => "a role that is not a string",
            RoleDrop::TooMany => "more than 32 roles",
        }
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

    /// The roles a token's roles claim names (`None`: a value that is not a string): each
    /// carriable name once, as spelled, in the claim's order, at most [`MAX_ROLES`]; and why
    /// the first value left out was. `user` when the claim names nothing; no role at all when
    /// every value it names is left out (never `user`: a rule with `roles` refuses it).
    pub fn from_claim<'a>(
        names: impl IntoIterator<Item = Option<&'a str>>,
    ) -> (Self, Option<RoleDrop>) {
        let mut kept: Vec<&str> = Vec::new();
        let (mut named, mut dropped) = (false, None);
        for name in names {
            named = true;
            let why = match name {
                None => Some(RoleDrop::NotAString),
                Some(name) if kept.contains(&name) => continue,
                Some(name) => {
                    RoleDrop::of(name).or((kept.len() >= MAX_ROLES).then_some(RoleDrop::TooMany))
                }
            };
            match (why, name) {
                (Some(why), _) => dropped = dropped.or(Some(why)),
                (None, Some(name)) => kept.push(name),
                (None, None) => {}
            }
        }
        if kept.is_empty() {
            let roles = if named {
                Roles::none()
            } else {
                Roles::one(role::USER)
            };
            return (roles, dropped);
        }
        let mut joined = String::with_capacity(kept.iter().map(|n| n.len() + 1).sum());
        for name in kept {
            if !joined.is_empty() {
                joined.push(SEPARATOR);
            }
            joined.push_str(name);
        }
        (Roles(Rc::from(joined)), dropped)
    }

    /// No role: a token whose roles claim named only values that cannot be carried. Its role
    /// header is not set, and a rule with `roles` refuses it.
    pub fn none() -> Self {
        Roles(Rc::from(""))
    }

    /// Whether there is no role.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each role name, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.split(SEPARATOR).filter(|name| !name.is_empty())
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

    fn claim(names: &[&str]) -> (Roles, Option<RoleDrop>) {
        Roles::from_claim(names.iter().map(|n| Some(*n)))
    }

    #[test]
    fn a_claim_keeps_carriable_names_as_spelled_once_in_order() {
        let (roles, dropped) = claim(&["editor", "Admin", "admin", "editor", "Orders.Read"]);
        assert_eq!(
            roles.header_value().as_ref(),
            "editor,Admin,admin,Orders.Read"
        );
        assert_eq!(dropped, None);
        assert_eq!(&*roles, roles.to_string());
        assert!(roles.contains("Admin") && roles.contains("admin"));
        assert!(!roles.contains("ADMIN") && !roles.contains("editor,Admin"));
        assert_eq!(claim(&["admin"]).0, Roles::one("admin"));
        let (roles, _) = claim(&["urn:acme:ops", "a,b", "x y", "\u{410}dmin"]);
        assert_eq!(roles.as_str(), "urn:acme:ops");
    }

    #[test]
    fn uncarriable_values_are_dropped_with_the_first_reason() {
        let cyrillic = "\u{410}dmin";
        let long = "a".repeat(MAX_ROLE_LEN + 1);
        let cases: [(&[&str], RoleDrop); 6] = [
            (&["admin,user"], RoleDrop::Comma),
            (&["x y", "a,b"], RoleDrop::NotPrintableAscii),
            (&[cyrillic], RoleDrop::NotPrintableAscii),
            (&["ok\r\nx"], RoleDrop::NotPrintableAscii),
            (&[""], RoleDrop::Empty),
            (&[&long], RoleDrop::TooLong),
        ];
        for (names, why) in cases {
            let (roles, dropped) = claim(names);
            assert_eq!(dropped, Some(why), "{names:?}");
            assert!(
                roles.is_empty() && roles.names().next().is_none(),
                "{names:?}"
            );
            assert!(!roles.contains("user") && !roles.contains(""), "never user");
        }
        let (roles, dropped) = Roles::from_claim([None, Some("ops")]);
        assert_eq!(
            (roles.as_str(), dropped),
            ("ops", Some(RoleDrop::NotAString))
        );
    }

    #[test]
    fn a_claim_naming_nothing_gives_user() {
        let (roles, dropped) = claim(&[]);
        assert_eq!((roles, dropped), (Roles::one(role::USER), None));
    }

    #[test]
    fn a_claim_gives_at_most_max_roles_counting_only_kept_names() {
        let names: Vec<String> = (0..100).map(|i| format!("r{i}")).collect();
        let with_invalid = std::iter::once("a b").chain(names.iter().map(String::as_str));
        let (roles, dropped) = Roles::from_claim(with_invalid.map(Some));
        assert_eq!(dropped, Some(RoleDrop::NotPrintableAscii));
        let kept: Vec<&str> = roles.names().collect();
        assert_eq!(kept.len(), MAX_ROLES);
        assert_eq!(kept.first(), Some(&"r0"));
        assert_eq!(
            kept.last().copied(),
            Some(format!("r{}", MAX_ROLES - 1).as_str())
        );
        let twice = names.iter().chain(&names).map(|n| Some(n.as_str()));
        let (again, dropped) = Roles::from_claim(twice);
        assert_eq!((again, dropped), (roles, Some(RoleDrop::TooMany)));
        let exactly: Vec<&str> = names.iter().take(MAX_ROLES).map(String::as_str).collect();
        assert_eq!(claim(&exactly).1, None);
    }

    #[test]
    fn role_names_are_printable_ascii_without_commas() {
        for ok in [
            "user",
            "Admin",
            "Orders.Read",
            "urn:acme:ops",
            &"a".repeat(128),
        ] {
            assert!(role::is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "a,b",
            "a b",
            "\u{e9}",
            "\u{410}",
            "a\tb",
            &"a".repeat(129),
        ] {
            assert!(!role::is_valid(bad), "{bad}");
        }
        assert!(role::is_word("read-only") && !role::is_word("Admin"));
    }
}
