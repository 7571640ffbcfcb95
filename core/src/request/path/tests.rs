//! The path's normal form and readings, held to what servers and URL parsers read.

use super::*;

/// The literal reading.
fn one(path: &str) -> Result<String, PathError> {
    Ok(readings(path.as_bytes())?.first().to_owned())
}

fn all(path: &str) -> Vec<String> {
    readings(path.as_bytes())
        .unwrap()
        .iter()
        .map(String::from)
        .collect()
}

#[test]
fn split_target_separates_query_and_drops_fragment() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("/a/b", "/a/b", None),
        ("/a?x=1", "/a", Some("x=1")),
        ("/a?", "/a", Some("")),
        ("/a#frag?x", "/a", None),
        ("/a?x=1#f", "/a", Some("x=1")),
        ("/public/?../../admin", "/public/", Some("../../admin")),
        ("", "", None),
    ];
    for (target, path, query) in cases {
        let (p, q) = split_target(target.as_bytes());
        assert_eq!(p, path.as_bytes(), "{target}");
        assert_eq!(q, query.map(str::as_bytes), "{target}");
    }
}

#[test]
fn normal_forms() {
    let cases: &[(&str, &str)] = &[
        ("/", "/"),
        ("/a/b", "/a/b"),
        ("/a/b/", "/a/b/"),
        ("//a//b", "/a/b"),
        ("///admin/users", "/admin/users"),
        ("/./admin/users", "/admin/users"),
        ("/admin/users/.", "/admin/users/"),
        ("/public/..", "/"),
        ("/public/../", "/"),
        ("/public/../admin/users", "/admin/users"),
        ("/public/%2e%2e/admin/users", "/admin/users"),
        ("/public/%2E%2E/admin/users", "/admin/users"),
        ("/public/.%2e/admin/users", "/admin/users"),
        ("/public/%2e./admin/users", "/admin/users"),
        ("/%61dmin/users", "/admin/users"),
        ("/adm%69n/users", "/admin/users"),
        ("/%41DMIN/users", "/ADMIN/users"),
        ("/a%7eb", "/a~b"),
        ("/a%20b", "/a%20b"),
        ("/a%3ab", "/a%3Ab"),
        ("/a:b@c", "/a:b@c"),
        ("/a{b}", "/a%7Bb%7D"),
        ("/a%7Bb", "/a%7Bb"),
        ("/a%25b", "/a%25b"),
        ("/caf%C3%A9", "/caf%C3%A9"),
        ("/admin%20", "/admin%20"),
        ("/a/b/c/../../d", "/a/d"),
    ];
    for (input, expected) in cases {
        assert_eq!(one(input).as_deref(), Ok(*expected), "{input}");
    }
}

#[test]
fn unnormalisable_paths_are_errors() {
    let cases: &[(&[u8], PathError)] = &[
        (b"", PathError::NotAbsolute),
        (b"admin/users", PathError::NotAbsolute),
        (b"*", PathError::NotAbsolute),
        (b"javascript:alert(1)", PathError::NotAbsolute),
        (b"/..", PathError::AboveRoot),
        (b"/../admin", PathError::AboveRoot),
        (b"/a/../..", PathError::AboveRoot),
        (b"/%2e%2e/x", PathError::AboveRoot),
        (b"/a%", PathError::MalformedEscape),
        (b"/a%2", PathError::MalformedEscape),
        (b"/a%zz", PathError::MalformedEscape),
        (b"/a%00b", PathError::ControlCharacter),
        (b"/public/%00/../admin", PathError::ControlCharacter),
        (b"/a%0d%0ab", PathError::ControlCharacter),
        (b"/a\tb", PathError::ControlCharacter),
        (b"/a\x7fb", PathError::ControlCharacter),
        (b"/\xc3\xa4dmin", PathError::NonAscii),
        (b"/\xff", PathError::NonAscii),
        (b"/%c0%af", PathError::InvalidUtf8),
        (b"/public/%c0%ae%c0%ae/admin", PathError::InvalidUtf8),
        (b"/%ff", PathError::InvalidUtf8),
    ];
    for (input, expected) in cases {
        assert_eq!(
            readings(input),
            Err(*expected),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn ambiguous_characters_give_every_reading() {
    let cases: &[(&str, &[&str])] = &[
        ("/admin%2Fusers", &["/admin%2Fusers", "/admin/users"]),
        // Decoded once and parsed as a URL: `//admin/users` has the authority `admin`.
        (
            "/%2Fadmin/users",
            &["/%2Fadmin/users", "/admin/users", "/users"],
        ),
        (
            "/public%2F..%2Fadmin",
            &["/public%2F..%2Fadmin", "/admin", "/public/../admin"],
        ),
        (
            "/public/..%2Fadmin",
            &["/public/..%2Fadmin", "/admin", "/public/../admin"],
        ),
        (
            "/public/..\\admin",
            &["/public/..%5Cadmin", "/admin", "/public/../admin"],
        ),
        (
            "/public\\..\\admin",
            &["/public%5C..%5Cadmin", "/admin", "/public/../admin"],
        ),
        ("/admin;x=1/users", &["/admin;x=1/users", "/admin/users"]),
        (
            "/public/..;/admin",
            &["/public/..;/admin", "/admin", "/public/../admin"],
        ),
        (
            "/public;/../admin",
            &["/admin", "/public;/../admin", "/public/../admin"],
        ),
        // Slashes merged before or after resolving `..`, or dots left alone.
        (
            "/admin//..//public/x",
            &["/public/x", "/admin/public/x", "/admin/../public/x"],
        ),
        ("/admin/../public/x", &["/public/x", "/admin/../public/x"]),
        ("/a//..", &["/", "/a/", "/a/.."]),
        // Decoded once or twice.
        ("/a%252Fb", &["/a%252Fb", "/a%2Fb", "/a/b"]),
        (
            "/public%252F..%252Fadmin",
            &[
                "/public%252F..%252Fadmin",
                "/public%2F..%2Fadmin",
                "/admin",
                "/public/../admin",
            ],
        ),
        ("/100%25", &["/100%25"]),
    ];
    for (input, expected) in cases {
        let got = all(input);
        assert_eq!(got.len(), expected.len(), "{input}: {got:?}");
        for e in *expected {
            assert!(got.iter().any(|g| g == e), "{input}: {got:?} lacks {e}");
        }
    }
}

#[test]
fn readings_of_url_parsers_and_decoding_chains() {
    // Each path is also read as the second reading shows (found by the path differential
    // and an outside attack).
    let cases: &[(&str, &str)] = &[
        ("//public/admin", "/admin"),
        ("/\\public/admin", "/admin"),
        ("//admin", "/"),
        ("/admin%20", "/admin"),
        ("/public/%25%32%65%25%32%65/admin", "/admin"),
        ("/public/%252e%252e/admin", "/admin"),
        ("/%2561dmin", "/admin"),
        ("/adm%2569n", "/admin"),
        ("/admin%3F/../public", "/admin"),
        ("/admin%23/../public", "/admin"),
        ("/admin%3Bx", "/admin"),
        ("///x/admin", "/admin"),
        ("/\\/x/admin", "/admin"),
        ("/////x/admin", "/admin"),
        ("/admin.", "/admin"),
        ("/admin./x", "/admin/x"),
        ("/admin%2e", "/admin"),
        ("/admin%2E%2E%2E", "/admin"),
        ("/admin%20/x", "/admin/x"),
        ("/admin . /x", "/admin/x"),
        // Found by a third outside attack: an authority that appears only once the path
        // is decoded, or once its dot segments are resolved.
        ("/%2Fx/admin/x", "/admin/x"),
        ("/%5Cx/admin/x", "/admin/x"),
        ("/%2F%5Cx/admin/x", "/admin/x"),
        ("//x%5Cadmin/x", "/admin/x"),
        ("/%252Fx/admin/x", "/admin/x"),
        ("/.//x/admin/x", "/admin/x"),
        ("/x/..//x/admin/x", "/admin/x"),
        ("/%2e//x/admin/x", "/admin/x"),
        // Found by a fourth: a first segment that a server reads as nothing.
        ("/;/x/admin/x", "/admin/x"),
        ("/;jsessionid=1/x/admin/x", "/admin/x"),
        ("/%3B/x/admin/x", "/admin/x"),
        ("/%253B/x/admin/x", "/admin/x"),
        ("/;;//x/admin", "/admin"),
        ("/;%2F/x/admin", "/admin"),
        ("/%20/x/admin/y", "/admin/y"),
        ("/.%20/x/admin", "/admin"),
    ];
    for (path, reading) in cases {
        let got = all(path);
        assert!(got.iter().any(|g| g == reading), "{path}: {got:?}");
    }
}

#[test]
fn long_ambiguous_paths_are_refused_not_read_at_length() {
    let unit = "/x%2Fy;p=1//z/..";
    let long = unit.repeat(60 * 1024 / unit.len());
    assert_eq!(readings(long.as_bytes()), Err(PathError::TooAmbiguous));
    let short = unit.repeat(1024 / unit.len());
    assert!(readings(short.as_bytes()).is_ok());
}

#[test]
fn a_derived_path_equal_to_its_source_is_not_read_again() {
    // Found by the path fuzz target: decoding changed nothing, and the path was read
    // again and again until the stack overflowed.
    assert!(readings(b"//50%25..").is_ok());
}

#[test]
fn decoding_twice_can_reveal_what_is_refused() {
    assert_eq!(readings(b"/a%2500"), Err(PathError::ControlCharacter));
    assert_eq!(
        readings(b"/a/%252e%252e/%252e%252e/.."),
        Err(PathError::AboveRoot)
    );
}

#[test]
fn readings_are_closed_under_reading_again() {
    // Literally `/a/admin%2Fx`; a server that decodes `%2F` after another normalised
    // literally reads `/a/admin/x`, which the raw path's own split reading never shows.
    let raw = "/a/b%2F../../admin%2Fx";
    let found = all(raw);
    for reading in &found {
        for again in all(reading) {
            assert!(found.contains(&again), "{again} missing from {found:?}");
        }
    }
    assert!(found.contains(&"/a/admin/x".to_owned()), "{found:?}");
    let many = "/x%2F;a\\".repeat(12);
    let count = readings(many.as_bytes()).map_or(0, |r| r.iter().count());
    assert!((2..=MAX_READINGS).contains(&count), "{count}");
}

#[test]
fn a_reading_that_climbs_above_the_root_refuses_the_path() {
    assert_eq!(
        readings(b"/a%2F..%2F..%2Fb"),
        Err(PathError::AboveRoot),
        "the separator reading climbs above the root"
    );
}

#[test]
fn normalisation_is_idempotent() {
    for input in [
        "/a/./b/../c//d/",
        "/%61%2fb",
        "/x%7b%7D",
        "/public/..;/admin",
        "/a\\b",
    ] {
        for once in all(input) {
            let twice = all(&once);
            assert!(twice.contains(&once), "{input}: {once} -> {twice:?}");
        }
    }
}

#[test]
fn plain_paths_are_borrowed_and_already_normal() {
    for plain in [
        "/",
        "/a",
        "/a/b/",
        "/a:b@c/d-e_f.g~h",
        "/a..b/.c/d.e",
        "/x!$&'()*+,=",
    ] {
        assert!(
            matches!(
                readings(plain.as_bytes()),
                Ok(Readings { first: Cow::Borrowed(_), ref others }) if others.is_empty()
            ),
            "{plain}"
        );
        assert_eq!(normalize(plain.as_bytes()).as_deref(), Ok(plain), "{plain}");
    }
    for not_plain in [
        "//a", "/a//b", "/./a", "/a/.", "/a/..", "/a/../b", "/%61", "/a;b", "/a\\b", "/a b", "/a{b",
    ] {
        assert!(
            already_normal(not_plain.as_bytes()).is_none(),
            "{not_plain}"
        );
    }
}

#[test]
fn long_traversal_path_is_linear() {
    let mut path = String::from("/");
    for _ in 0..4_000 {
        path.push_str("a/../");
    }
    assert_eq!(one(&path).as_deref(), Ok("/"));
}
