//! Tests of the token headers (`token_headers`) as [`super::extract_with`] reads them.

use std::borrow::Cow;

use super::*;

const AT: Locations<'static> = Locations {
    query_param: "access_token",
    cookie: "access_token",
};

fn sources() -> Vec<TokenHeader> {
    vec![
        TokenHeader {
            name: "x-access-token".into(),
            prefix: None,
        },
        TokenHeader {
            name: "authorization".into(),
            prefix: Some("Token ".into()),
        },
        TokenHeader {
            name: "x-api-token".into(),
            prefix: Some("Key ".into()),
        },
    ]
}

fn run<'a>(
    headers: &'a [(&'a str, &'a [u8])],
    query: Option<&'a str>,
) -> Result<Option<Presented<'a>>, Denial> {
    let sources = sources();
    let view = RequestView::read(headers, |_| false, &sources);
    extract_with(&view, query.map(str::as_bytes), AT, &sources).map(|p| {
        p.map(|p| match p {
            Presented::Bearer { value, source } => Presented::Bearer {
                value: Cow::Owned(value.into_owned()),
                source,
            },
            other => other,
        })
    })
}

fn token(value: &str) -> Result<Option<Presented<'static>>, Denial> {
    Ok(Some(Presented::Bearer {
        value: Cow::Owned(value.into()),
        source: Source::Header,
    }))
}

fn bad(reason: BadCredential) -> Result<Option<Presented<'static>>, Denial> {
    Err(Denial::InvalidCredentials(reason))
}

fn bad_request(reason: BadRequest) -> Result<Option<Presented<'static>>, Denial> {
    Err(Denial::InvalidRequest(reason))
}

#[test]
fn a_token_header_is_a_credential() {
    assert_eq!(
        run(&[("x-access-token", b"abc.def.ghi")], None),
        token("abc.def.ghi")
    );
    assert_eq!(run(&[("x-api-token", b"Key sk_1")], None), token("sk_1"));
    assert_eq!(run(&[("x-api-token", b"kEY  sk_1")], None), token("sk_1"));
    assert_eq!(run(&[("authorization", b"Token abc")], None), token("abc"));
    assert_eq!(run(&[("authorization", b"tOKEN abc")], None), token("abc"));
    assert_eq!(run(&[("authorization", b"Bearer abc")], None), token("abc"));
    assert_eq!(run(&[("x-other", b"abc")], None), Ok(None));
}

#[test]
fn a_token_header_is_read_under_the_rules_of_authorization() {
    let long = "A".repeat(crate::verify::MAX_CREDENTIAL_LEN + 1);
    let long_header = [("x-access-token", long.as_bytes())];
    assert_eq!(run(&long_header, None), bad(BadCredential::TooLong));
    assert_eq!(
        run(&[("x-access-token", b"\xff\xfe")], None),
        bad(BadCredential::BadCharacters)
    );
    assert_eq!(
        run(&[("x-access-token", b"")], None),
        bad(BadCredential::Empty)
    );
    assert_eq!(
        run(&[("x-api-token", b"sk_1")], None),
        bad(BadCredential::MissingPrefix)
    );
    assert_eq!(
        run(&[("x-api-token", b"Ke")], None),
        bad(BadCredential::MissingPrefix)
    );
    assert_eq!(
        run(&[("authorization", b"Basic YWxpY2U=")], None),
        bad(BadCredential::NotBearer)
    );
    assert_eq!(
        run(&[("authorization", b"Token ")], None),
        bad(BadCredential::Empty)
    );
}

#[test]
fn repeats_spellings_and_second_methods_are_refused() {
    let twice: [(&str, &[u8]); 2] = [("x-access-token", b"a"), ("x-access-token", b"a")];
    assert_eq!(
        run(&twice, None),
        bad_request(BadRequest::RepeatedTokenHeader)
    );
    assert_eq!(
        run(&[("x-access-token", b"a, b")], None),
        bad_request(BadRequest::RepeatedTokenHeader)
    );
    for spelling in ["x_access_token", "x.access-token", "X-Access_Token"] {
        let headers: [(&str, &[u8]); 1] = [(spelling, b"a")];
        assert_eq!(
            run(&headers, None),
            bad_request(BadRequest::RepeatedTokenHeader),
            "{spelling}"
        );
    }
    let two: [(&str, &[u8]); 2] = [("x-access-token", b"a"), ("authorization", b"Bearer b")];
    assert_eq!(run(&two, None), bad_request(BadRequest::SeveralMethods));
    let two: [(&str, &[u8]); 2] = [("x-access-token", b"a"), ("x-api-token", b"Key b")];
    assert_eq!(run(&two, None), bad_request(BadRequest::SeveralMethods));
    assert_eq!(
        run(&[("x-access-token", b"a")], Some("access_token=b")),
        bad_request(BadRequest::SeveralMethods)
    );
    assert_eq!(
        run(
            &[("x-access-token", b"a")],
            Some("client_id=c&client_secret=s")
        ),
        bad_request(BadRequest::SeveralMethods)
    );
}

#[test]
fn without_sources_nothing_changes() {
    let headers: [(&str, &[u8]); 1] = [("authorization", b"Token abc")];
    let view = RequestView::new(&headers, |_| false);
    assert!(view.token_headers.is_empty());
    assert_eq!(
        extract(&view, None, AT),
        Err(Denial::InvalidCredentials(BadCredential::NotBearer))
    );
}
