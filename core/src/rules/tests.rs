//! The rules' lookup: specificity, readings, trailing slashes, case.

use super::*;

fn rule(index: usize, matcher: Matcher, methods: Option<&[&str]>, mode: Mode) -> Rule {
    Rule {
        index,
        matcher,
        methods: methods.map(|m| m.iter().map(|s| s.to_string()).collect()),
        mode,
        roles: if mode == Mode::Required {
            default_roles()
        } else {
            Vec::new()
        },
        conditions: None,
        hosts: None,
    }
}

fn exact(p: &str) -> Matcher {
    Matcher::Exact(p.into())
}

fn prefix(p: &str) -> Matcher {
    Matcher::Prefix(p.into())
}

fn sample() -> RuleSet {
    RuleSet::new(
        vec![
            rule(0, prefix("/public"), None, Mode::None),
            rule(1, exact("/login"), None, Mode::None),
            rule(2, prefix("/feed"), None, Mode::Optional),
            rule(3, prefix("/public/private"), None, Mode::Required),
            rule(4, exact("/public/private/open"), None, Mode::None),
            rule(5, prefix("/feed"), Some(&["POST"]), Mode::Required),
            rule(6, prefix("/"), Some(&["OPTIONS"]), Mode::None),
        ],
        Mode::Required,
    )
}

#[test]
fn most_specific_rule_wins_whatever_the_order() {
    let set = sample();
    let cases: &[(&str, &str, Mode, Option<usize>)] = &[
        ("GET", "/public", Mode::None, Some(0)),
        ("GET", "/public/", Mode::None, Some(0)),
        ("GET", "/public/x/y", Mode::None, Some(0)),
        ("GET", "/publicity", Mode::Required, None),
        ("GET", "/public-admin/x", Mode::Required, None),
        ("GET", "/public..", Mode::Required, None),
        ("GET", "/login", Mode::None, Some(1)),
        ("GET", "/login/", Mode::Required, None),
        ("GET", "/login/x", Mode::Required, None),
        ("GET", "/feed/x", Mode::Optional, Some(2)),
        ("POST", "/feed/x", Mode::Required, Some(5)),
        ("GET", "/public/private/x", Mode::Required, Some(3)),
        ("GET", "/public/private/open", Mode::None, Some(4)),
        ("GET", "/public/private/open/x", Mode::Required, Some(3)),
        ("OPTIONS", "/api", Mode::None, Some(6)),
        ("GET", "/api", Mode::Required, None),
        ("GET", "/", Mode::Required, None),
    ];
    for (method, path, mode, rule) in cases {
        let p = set.policy(method.as_bytes(), path);
        assert_eq!((p.mode, p.rule), (*mode, *rule), "{method} {path}");
    }
}

#[test]
fn strictest_reading_wins() {
    let set = sample();
    assert_eq!(
        set.policy_for_readings(b"GET", &Readings::listed("/public/x", &["/admin"]))
            .mode,
        Mode::Required
    );
    assert_eq!(
        set.policy_for_readings(b"GET", &Readings::listed("/public/x", &["/feed/y"]))
            .mode,
        Mode::Optional
    );
}

#[test]
fn a_trailing_slash_is_also_read_without_it() {
    let set = RuleSet::new(
        vec![
            rule(0, exact("/admin"), None, Mode::Required),
            rule(1, exact("/login"), None, Mode::None),
        ],
        Mode::None,
    );
    let mode = |p: &str| {
        set.policy_for_readings(b"GET", &Readings::listed(p, &[]))
            .mode
    };
    assert_eq!(mode("/admin/"), Mode::Required);
    assert_eq!(mode("/admin//"), Mode::None);
    assert_eq!(mode("/"), Mode::None);
    let strict = RuleSet::new(
        vec![rule(0, exact("/login"), None, Mode::None)],
        Mode::Required,
    );
    assert_eq!(
        strict
            .policy_for_readings(b"GET", &Readings::listed("/login/", &[]))
            .mode,
        Mode::Required,
        "never less strict than the literal path"
    );
}

#[test]
fn two_required_readings_allow_only_common_roles() {
    let mut admin_only = rule(0, prefix("/admin"), None, Mode::Required);
    admin_only.roles = vec!["admin".into()];
    let set = RuleSet::new(vec![admin_only], Mode::Required);
    let p = set.policy_for_readings(b"GET", &Readings::listed("/admin/x", &["/other"]));
    assert_eq!(p.roles.to_vec(), vec!["admin".to_string()]);
    assert!(!p.allows_role("user"));
}

fn mode_and_roles(set: &RuleSet, method: &str, path: &str) -> (Mode, Vec<String>) {
    let p = set.policy_for_readings(method.as_bytes(), &Readings::listed(path, &[]));
    (p.mode, p.roles.to_vec())
}

#[test]
fn case_is_a_reading_and_never_loosens() {
    let mut admin = rule(0, prefix("/admin"), None, Mode::Required);
    admin.roles = vec!["admin".into()];
    let set = RuleSet::new(
        vec![
            admin,
            rule(1, prefix("/API"), None, Mode::Required),
            rule(2, exact("/api/health"), None, Mode::None),
            rule(3, prefix("/items"), Some(&["DELETE"]), Mode::Required),
        ],
        Mode::None,
    );
    let admin_only = (Mode::Required, vec!["admin".to_string()]);
    for path in ["/ADMIN/users", "/Admin/", "/aDmIn", "/admin/x"] {
        assert_eq!(mode_and_roles(&set, "GET", path), admin_only, "{path}");
        assert_eq!(mode_and_roles(&set, "DELETE", path), admin_only, "{path}");
    }
    for path in ["/api/orders", "/Api", "/API/x"] {
        assert_eq!(
            mode_and_roles(&set, "GET", path).0,
            Mode::Required,
            "{path}"
        );
    }
    assert_eq!(mode_and_roles(&set, "GET", "/api/HEALTH").0, Mode::None);
    assert_eq!(mode_and_roles(&set, "DELETE", "/ITEMS/1").0, Mode::Required);
    assert_eq!(mode_and_roles(&set, "GET", "/ITEMS/1").0, Mode::None);
    let deny = RuleSet::new(
        vec![rule(0, prefix("/public"), None, Mode::None)],
        Mode::Required,
    );
    assert_eq!(mode_and_roles(&deny, "GET", "/public/x").0, Mode::None);
    assert_eq!(mode_and_roles(&deny, "GET", "/PUBLIC/x").0, Mode::Required);
}

#[test]
fn spellings_that_fold_alike_give_the_strictest() {
    let mut admins = rule(0, prefix("/admin"), None, Mode::Required);
    admins.roles = vec!["admin".into()];
    let set = RuleSet::new(
        vec![admins, rule(1, prefix("/Admin"), None, Mode::Optional)],
        Mode::None,
    );
    for path in ["/admin", "/Admin/x", "/ADMIN"] {
        let p = set.policy_for_readings(b"GET", &Readings::listed(path, &[]));
        assert_eq!(p.roles.to_vec(), ["admin"], "{path}");
    }
}

#[test]
fn letters_outside_ascii_that_fold_onto_ascii() {
    let set = RuleSet::new(
        vec![
            rule(0, prefix("/admin"), None, Mode::Required),
            rule(1, prefix("/keys"), None, Mode::Required),
            rule(2, prefix("/secret"), None, Mode::Required),
            rule(3, prefix("/w%C4%B1ki"), None, Mode::Required),
        ],
        Mode::None,
    );
    for path in [
        "/adm%C4%B1n",
        "/ADM%C4%B0N/x",
        "/%E2%84%AAEYS",
        "/%C5%BFecret",
        "/wiki",
        "/WIKI/x",
        "/w%C4%B0ki",
    ] {
        assert_eq!(
            mode_and_roles(&set, "GET", path).0,
            Mode::Required,
            "{path}"
        );
    }
    assert_eq!(mode_and_roles(&set, "GET", "/adm%C3%AFn").0, Mode::None);
    // A server folding the long s but not the dotless i routes to `/x/s`: every subset of
    // the characters is a reading.
    let partial = RuleSet::new(
        vec![
            rule(0, prefix("/x/s"), None, Mode::Required),
            rule(1, prefix("/x/s/i"), None, Mode::None),
        ],
        Mode::None,
    );
    assert_eq!(
        mode_and_roles(&partial, "GET", "/x/%C5%BF/%C4%B1").0,
        Mode::Required
    );
}

#[test]
fn nothing_to_fold_costs_no_folded_lookup() {
    let set = sample();
    assert!(set.case.readings("/public/x%C3%A9").is_empty());
    assert_eq!(set.case.readings("/Public").len(), 1);
    let capitals = RuleSet::new(vec![rule(0, prefix("/API"), None, Mode::None)], Mode::None);
    assert_eq!(capitals.case.readings("/api").len(), 1);
}

#[test]
fn conflicts() {
    let a = rule(0, prefix("/a"), None, Mode::None);
    let b = rule(1, prefix("/a"), None, Mode::Required);
    let c = rule(2, prefix("/a"), Some(&["GET"]), Mode::Required);
    let d = rule(3, prefix("/a"), Some(&["GET", "POST"]), Mode::None);
    let e = rule(4, exact("/a"), None, Mode::None);
    assert!(a.conflicts_with(&b));
    assert!(!a.conflicts_with(&c));
    assert!(c.conflicts_with(&d));
    assert!(!a.conflicts_with(&e));
}

#[test]
fn root_prefix_matches_everything() {
    let set = RuleSet::new(vec![rule(0, prefix("/"), None, Mode::None)], Mode::Required);
    assert_eq!(set.policy(b"GET", "/anything/x").mode, Mode::None);
    assert!(!set.any_required());
}

#[test]
fn a_format_suffix_is_also_read_without_it() {
    // Rails routes `/admin(.:format)`, Spring MVC before 5.3 `/admin.*`: found by an outside
    // attack on a default-allow configuration.
    let mut admin = rule(0, prefix("/admin"), None, Mode::Required);
    admin.roles = vec!["admin".into()];
    let set = RuleSet::new(
        vec![
            admin,
            rule(1, exact("/api/me"), None, Mode::Required),
            rule(2, exact("/api/me.txt"), None, Mode::None),
            rule(3, exact("/report.v2"), None, Mode::Required),
            rule(4, exact("/.report.v2"), None, Mode::Required),
        ],
        Mode::None,
    );
    let admin_only = (Mode::Required, vec!["admin".to_string()]);
    for path in [
        "/admin.json",
        "/admin.json/",
        "/admin.v1.json",
        "/ADMIN.json",
        "/Admin.JSON/",
        "/admin/users.json",
    ] {
        assert_eq!(mode_and_roles(&set, "GET", path), admin_only, "{path}");
    }
    for path in [
        "/api/me.json",
        "/API/ME.XML/",
        "/report.v2.json",
        "/.report.v2.json",
    ] {
        assert_eq!(
            mode_and_roles(&set, "GET", path).0,
            Mode::Required,
            "{path}"
        );
    }
    // Cut only where something of the segment remains, on segment boundaries, and never
    // where an exact rule names the path as it is.
    for path in [
        "/administrator.json",
        "/.admin",
        "/x/.json",
        "/api/me.txt",
        "/a.b/x",
    ] {
        assert_eq!(mode_and_roles(&set, "GET", path).0, Mode::None, "{path}");
    }
    // The reading only ever makes the mode stricter: a `none` rule opens nothing through it.
    let deny = RuleSet::new(
        vec![
            rule(0, prefix("/public"), None, Mode::None),
            rule(1, exact("/login"), None, Mode::None),
            rule(2, exact("/robots.txt"), None, Mode::None),
        ],
        Mode::Required,
    );
    for path in ["/login.json", "/public.json", "/login.html/"] {
        assert_eq!(
            mode_and_roles(&deny, "GET", path).0,
            Mode::Required,
            "{path}"
        );
    }
    for path in ["/public/app.js", "/robots.txt"] {
        assert_eq!(mode_and_roles(&deny, "GET", path).0, Mode::None, "{path}");
    }
    // An exact rule that checks the dotted path keeps the reading without the suffix: it
    // never drops the roles (or conditions) of `/admin`, which a server serves it as.
    let mut admin = rule(0, prefix("/admin"), None, Mode::Required);
    admin.roles = vec!["admin".into()];
    let checked = RuleSet::new(
        vec![admin, rule(1, exact("/admin.json"), None, Mode::Required)],
        Mode::None,
    );
    assert_eq!(mode_and_roles(&checked, "GET", "/admin.json"), admin_only);
}
