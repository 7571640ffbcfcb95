//! The form scanner: every spelling, every chunk split, multipart edge cases. Its cost per
//! byte is measured by `make cost-growth` (instruction counts, not time).

use super::*;
use crate::credential::spellings::{loosely_named, CredentialNames};
use crate::credential::Locations;

const AT: Locations<'static> = Locations {
    query_param: "access_token",
    cookie: "session",
};

fn names() -> CredentialNames<'static> {
    CredentialNames::new(AT)
}

fn multipart() -> FormKind {
    FormKind::Multipart {
        boundary: b"XyZ".to_vec(),
    }
}

/// The verdict on `body` given in chunks of the sizes `splits` cut it at.
fn scan_split(kind: &FormKind, body: &[u8], cuts: &[usize]) -> Result<(), FormError> {
    let mut scanner = FormScanner::new(kind);
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&body.len())) {
        scanner.push(names(), &body[start..cut])?;
        start = cut;
    }
    scanner.end(names())
}

fn scan(kind: &FormKind, body: &[u8]) -> Result<(), FormError> {
    scan_split(kind, body, &[])
}

/// The verdict is the same whole and split in two at every byte, and in one-byte chunks.
fn verdict(kind: &FormKind, body: &[u8]) -> Result<(), FormError> {
    let whole = scan(kind, body);
    for cut in 0..=body.len() {
        assert_eq!(
            scan_split(kind, body, &[cut]),
            whole,
            "{body:?} cut at {cut}"
        );
    }
    let bytes: Vec<usize> = (1..body.len()).collect();
    assert_eq!(
        scan_split(kind, body, &bytes),
        whole,
        "{body:?} byte by byte"
    );
    whole
}

#[test]
fn a_name_streamed_reads_as_the_query_check_reads_it() {
    let alphabet = b"acesotkn_ACESTOKN%25fF0+.-[ \0&=";
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut samples: Vec<Vec<u8>> = [
        "access_token",
        "%61ccess_token",
        "ACCESS_TOKEN",
        "access_token[]",
        "access%255ftoken",
        "+access_token",
        "access_token+",
        "access.token",
        "access[token",
        "access_tokens",
        "client_secret",
        "client.id",
        "SESSION",
        "%",
        "%2",
        "%%61ccess_token",
        "access_token%",
        "%2access_token",
        "access_token%00x",
        "%%2561ccess_token",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    for _ in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 16) as usize;
        let mut name = b"access_token".to_vec();
        for k in 0..len {
            let pick = alphabet[((seed >> (k * 3 % 40)) as usize + k) % alphabet.len()];
            let at = ((seed >> 20) as usize + k) % (name.len() + 1);
            name.insert(at, pick);
        }
        samples.push(name);
    }
    let all = credential_names(names());
    for name in samples {
        let expected = all
            .iter()
            .any(|n| loosely_named(&name, std::str::from_utf8(n).unwrap()));
        assert_eq!(names_a_credential(&all, &name), expected, "{name:?}");
    }
}

#[test]
fn urlencoded_fields_named_like_a_credential_are_found() {
    let url = FormKind::Urlencoded;
    for body in [
        "access_token=t",
        "a=1&access_token=t",
        "a=1;access_token=t",
        "a=1&ACCESS_TOKEN=t",
        "access_token[]=t",
        "access.token=t",
        "access+token=t",
        "%61ccess_token=t",
        "access%255Ftoken=t",
        "+access_token=t",
        "client_id=c&client_secret=s",
        "x=1&client_secret",
        "session=t",
        "a=1&access_token",
    ] {
        assert_eq!(
            verdict(&url, body.as_bytes()),
            Err(FormError::CredentialField),
            "{body}"
        );
    }
    for body in [
        "",
        "a=1&b=2",
        "q=access_token&x=access_token%3Dt",
        "access_tokens=1",
        "token=t",
        "a=1&&=&b",
        "name=access_token&value=client_secret",
    ] {
        assert_eq!(verdict(&url, body.as_bytes()), Ok(()), "{body}");
    }
    let padded = format!("{}access_token=t", "%20".repeat(100_000));
    assert_eq!(
        scan(&url, padded.as_bytes()),
        Err(FormError::CredentialField)
    );
}

fn part(disposition: &str, content: &str) -> String {
    format!("--XyZ\r\nContent-Disposition: {disposition}\r\n\r\n{content}\r\n")
}

#[test]
fn multipart_field_names_are_found_however_written() {
    let form = multipart();
    let with = |disposition: &str| {
        format!(
            "{}{}--XyZ--\r\n",
            part("form-data; name=\"a\"", "1"),
            part(disposition, "t")
        )
    };
    for disposition in [
        "form-data; name=\"access_token\"",
        "form-data; name=access_token",
        "form-data; NAME=\"ACCESS_TOKEN\"",
        "form-data; name = \"access_token\"",
        "form-data; name=\"access_token[]\"",
        "form-data; name*=UTF-8''access%5Ftoken",
        "form-data; name*0=\"access\"; name*1=\"_token\"",
        "form-data; filename=\"x\"; name=\"client_secret\"",
        "form-data; name=\"=?utf-8?q?access=5Ftoken?=\"",
        "form-data; filename=\"a;name=access_token\"",
        "form-data; name=\"acc\\ess_token\"",
    ] {
        assert_eq!(
            verdict(&form, with(disposition).as_bytes()),
            Err(FormError::CredentialField),
            "{disposition}"
        );
    }
    let folded =
        "--XyZ\r\ncontent-disposition: form-data;\r\n name=\"access_token\"\r\n\r\nt\r\n--XyZ--";
    assert_eq!(
        verdict(&form, folded.as_bytes()),
        Err(FormError::CredentialField)
    );
    // Header lines end with CRLF only: a lone LF or CR there is refused.
    let bare_lf = "--XyZ\nContent-Disposition: form-data; name=a\n\nt\n--XyZ--\n";
    assert_eq!(
        verdict(&form, bare_lf.as_bytes()),
        Err(FormError::BareLineEnd)
    );
    let bare_cr = "pre\r--XyZ\rContent-Disposition: form-data; name=a\r\rt\r--XyZ--";
    assert_eq!(
        verdict(&form, bare_cr.as_bytes()),
        Err(FormError::BareLineEnd)
    );
    let preamble = "hello\r\n--XyZ\r\nContent-Disposition: form-data; name=client_id\r\n\r\nc";
    assert_eq!(
        verdict(&form, preamble.as_bytes()),
        Err(FormError::CredentialField)
    );
}

#[test]
fn multipart_content_is_no_name() {
    let form = multipart();
    let body = format!(
        "{}{}--XyZ--\r\nepilogue access_token=x",
        part(
            "form-data; name=\"a\"",
            "Content-Disposition: form-data; name=access_token"
        ),
        part(
            "form-data; name=\"file\"; filename=\"access_token\"",
            "access_token=t\r\n\r\n"
        )
    );
    assert_eq!(verdict(&form, body.as_bytes()), Ok(()));
    // A look-alike boundary inside content is no delimiter.
    let body = format!(
        "{}--XyZ--",
        part("form-data; name=\"a\"", "--XyW\r\nname=access_token")
    );
    assert_eq!(verdict(&form, body.as_bytes()), Ok(()));
    let long = format!(
        "--XyZ\r\nX-Long: {}\r\n\r\n",
        "a".repeat(MAX_PART_HEADER_FOR_TEST)
    );
    assert_eq!(
        scan(&form, long.as_bytes()),
        Err(FormError::PartHeaderTooLong)
    );
}

const MAX_PART_HEADER_FOR_TEST: usize = crate::request::form::MAX_PART_HEADER + 1;

#[test]
fn a_refusal_stays() {
    let mut scanner = FormScanner::new(&FormKind::Urlencoded);
    assert!(scanner.push(names(), b"access_token=").is_err());
    assert!(scanner.push(names(), b"a=1").is_err());
    assert!(scanner.end(names()).is_err());
}

#[test]
fn a_part_header_of_any_name_is_judged() {
    for header in [
        "Content-Disposition : form-data; name=access_token",
        "Content_Disposition: form-data; name=access_token",
        "X-Other: name=\"client_secret\"",
    ] {
        let body = format!("--XyZ\r\n{header}\r\n\r\nt\r\n--XyZ--");
        assert_eq!(
            verdict(&multipart(), body.as_bytes()),
            Err(FormError::CredentialField),
            "{header}"
        );
    }
}

/// Bodies that Django or Werkzeug read a credential field from: each is refused.
fn refused_as_django_reads(boundary: &str, bodies: &[&str]) {
    let form = FormKind::Multipart {
        boundary: boundary.as_bytes().to_vec(),
    };
    for body in bodies {
        assert!(verdict(&form, body.as_bytes()).is_err(), "{body:?}");
    }
}

#[test]
fn a_delimiter_anywhere_in_a_line_is_a_delimiter() {
    refused_as_django_reads(
        "XX",
        &[
            "junk--XX\r\nContent-Disposition: form-data; name=\"access_token\"\r\n\r\nSECRET\r\n--XX--\r\n",
            "--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nfoo--XX\r\nContent-Disposition: form-data; name=\"access_token\"\r\n\r\nSECRET\r\n--XX--\r\n",
            // What follows a delimiter on its line is a header line to Django.
            "--XXContent-Disposition: form-data; name=\"access_token\"\r\n\r\nSECRET\r\n--XX--\r\n",
            // A closing delimiter ends nothing to Django: what follows is read as a part.
            "--XX--\r\nContent-Disposition: form-data; name=\"access_token\"\r\n\r\nSECRET\r\n--XX--\r\n",
            // A delimiter inside a header cuts it where Django cuts it.
            "--XX\r\nContent-Disposition: form-data; name=access_token--XX\r\n\r\nSECRET\r\n--XX--\r\n",
        ],
    );
}

#[test]
fn a_lone_cr_or_lf_in_a_part_header_is_refused() {
    refused_as_django_reads(
        "XX",
        &[
            "--XX\r\nContent-Disposition: form-data; name=\"x\"\n; name=\"access_token\"\r\n\r\nSECRET\r\n--XX--\r\n",
            "--XX\r\nContent-Disposition: form-data; name=\"x\"\r; name=\"access_token\"\r\n\r\nSECRET\r\n--XX--\r\n",
        ],
    );
}

#[test]
fn an_extended_name_in_another_charset_is_refused() {
    refused_as_django_reads(
        "XX",
        &[
            "--XX\r\nContent-Disposition: form-data; name*=utf-16le''a%00c%00c%00e%00s%00s%00_%00t%00o%00k%00e%00n%00\r\n\r\nSECRET\r\n--XX--\r\n",
            "--XX\r\nContent-Disposition: form-data; name*=UTF-8''a%01ccess_token\r\n\r\nSECRET\r\n--XX--\r\n",
        ],
    );
}
