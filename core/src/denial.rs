//! Why a request is refused: the contract's error codes, statuses and fixed messages.

use std::fmt;

pub use crate::request::form::FormError;
pub use crate::request::BadRequest;
use crate::rules::conditions::ConditionKind;
use crate::verify::token::TokenError;
pub use crate::verify::BadCredential;

/// The contract's error codes: the JSON `code` of a refusal, and the counter
/// `tollgate.denied.<code>` that counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    MissingCredentials,
    InvalidCredentials,
    TokenExpired,
    InvalidRequest,
    PermissionDenied,
    KeysUnavailable,
    TokenRevoked,
    RevocationUnavailable,
}

impl Code {
    /// Every code, in the order their counters are defined.
    pub const ALL: [Code; 8] = [
        Code::MissingCredentials,
        Code::InvalidCredentials,
        Code::TokenExpired,
        Code::InvalidRequest,
        Code::PermissionDenied,
        Code::KeysUnavailable,
        Code::TokenRevoked,
        Code::RevocationUnavailable,
    ];

    /// The code as the JSON body spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::MissingCredentials => "MISSING_CREDENTIALS",
            Code::InvalidCredentials => "INVALID_CREDENTIALS",
            Code::TokenExpired => "TOKEN_EXPIRED",
            Code::InvalidRequest => "INVALID_REQUEST",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::KeysUnavailable => "KEYS_UNAVAILABLE",
            Code::TokenRevoked => "TOKEN_REVOKED",
            Code::RevocationUnavailable => "REVOCATION_UNAVAILABLE",
        }
    }

    /// The position of this code in [`Code::ALL`].
    pub fn index(self) -> usize {
        match self {
            Code::MissingCredentials => 0,
            Code::InvalidCredentials => 1,
            Code::TokenExpired => 2,
            Code::InvalidRequest => 3,
            Code::PermissionDenied => 4,
            Code::KeysUnavailable => 5,
            Code::TokenRevoked => 6,
            Code::RevocationUnavailable => 7,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal, answered by the filter itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// A `required` path and no credential.
    MissingCredentials,
    /// A credential was sent and is not accepted.
    InvalidCredentials(BadCredential),
    /// A malformed request.
    InvalidRequest(BadRequest),
    /// A valid credential whose role this path does not allow.
    PermissionDenied,
    /// A valid credential that fails a condition of the path's rules (403).
    ConditionFailed(ConditionKind),
    /// A token of an issuer whose keys have never been fetched (503, with `Retry-After`).
    KeysUnavailable,
    /// A valid token that was revoked (itself, or every token of its subject).
    TokenRevoked,
    /// A token while the revocation list is older than `fail_closed_after_seconds` (503).
    RevocationUnavailable,
}

impl Denial {
    /// The HTTP status.
    pub fn status(self) -> u32 {
        match self {
            Denial::MissingCredentials | Denial::InvalidCredentials(_) => 401,
            Denial::InvalidRequest(_) => 400,
            Denial::PermissionDenied | Denial::ConditionFailed(_) => 403,
            Denial::TokenRevoked => 401,
            Denial::KeysUnavailable | Denial::RevocationUnavailable => 503,
        }
    }

    /// The error code.
    pub fn code(self) -> Code {
        match self {
            Denial::MissingCredentials => Code::MissingCredentials,
            Denial::InvalidCredentials(BadCredential::Token(TokenError::Expired)) => {
                Code::TokenExpired
            }
            Denial::InvalidCredentials(_) => Code::InvalidCredentials,
            Denial::InvalidRequest(_) => Code::InvalidRequest,
            Denial::PermissionDenied | Denial::ConditionFailed(_) => Code::PermissionDenied,
            Denial::KeysUnavailable => Code::KeysUnavailable,
            Denial::TokenRevoked => Code::TokenRevoked,
            Denial::RevocationUnavailable => Code::RevocationUnavailable,
        }
    }

    /// The RFC 6750 `error` attribute of `WWW-Authenticate`; none when no credential was sent.
    pub(crate) fn bearer_error(self) -> Option<&'static str> {
        match self {
            Denial::MissingCredentials
            | Denial::KeysUnavailable
            | Denial::RevocationUnavailable => None,
            Denial::InvalidCredentials(_) | Denial::TokenRevoked => Some("invalid_token"),
            Denial::InvalidRequest(_) => Some("invalid_request"),
            Denial::PermissionDenied | Denial::ConditionFailed(_) => Some("insufficient_scope"),
        }
    }

    /// A fixed human message: safe in a JSON body and in a quoted header parameter.
    pub fn message(self) -> &'static str {
        match self {
            Denial::MissingCredentials => {
                "Authentication is required: send a credential as 'Authorization: Bearer <credential>'."
            }
            Denial::InvalidCredentials(reason) => match reason {
                BadCredential::NotBearer => "The Authorization header must use the Bearer scheme.",
                BadCredential::Empty => "The credential is empty.",
                BadCredential::TooLong => "The credential is longer than 8192 bytes.",
                BadCredential::BadCharacters => {
                    "The credential holds characters that no token or key can hold."
                }
                BadCredential::Token(e) => e.message(),
                BadCredential::Unknown => "The credential is not a valid access token or key.",
                BadCredential::Client => "The client credentials are not valid.",
                BadCredential::MissingPrefix => "The token header lacks its prefix.",
            },
            Denial::InvalidRequest(reason) => match reason {
                BadRequest::SeveralMethods => {
                    "Send one credential per request: the Authorization header, the token query parameter or client credentials."
                }
                BadRequest::RepeatedAuthorization => "The Authorization header is repeated.",
                BadRequest::RepeatedParameter => "A credential query parameter is repeated.",
                BadRequest::RepeatedCookie => "The token cookie is repeated.",
                BadRequest::LoneClientId => "client_id must come with client_secret.",
                BadRequest::LoneClientSecret => "client_secret must come with client_id.",
                BadRequest::UnsafePath(_) => "The request path is not acceptable.",
                BadRequest::UnreadCredential => {
                    "Send one credential, once: another sits in a place or spelling that is not read (such as ACCESS_TOKEN, access_token[], a path parameter or a second cookie)."
                }
                BadRequest::MethodOverride => "The method override is not acceptable.",
                BadRequest::UnclearHost => "The request host is not acceptable.",
                BadRequest::FormBody(reason) => form_message(reason),
                BadRequest::RepeatedTokenHeader => {
                    "A token header is repeated, or sent in a spelling that is not read."
                }
            },
            Denial::PermissionDenied => "The credential is valid but may not access this resource.",
            Denial::ConditionFailed(kind) => condition_message(kind),
            Denial::KeysUnavailable => {
                "The keys of the token's issuer are not available yet; retry shortly."
            }
            Denial::TokenRevoked => "The access token was revoked; sign in again.",
            Denial::RevocationUnavailable => {
                "The list of revoked tokens is out of date; retry shortly."
            }
        }
    }
}

/// Why a valid credential fails a rule's condition: the kind only, never a claim's value.
fn condition_message(kind: ConditionKind) -> &'static str {
    match kind {
        ConditionKind::Issuer => "The access token's issuer may not access this resource.",
        ConditionKind::Credential => "This type of credential may not access this resource.",
        ConditionKind::Audience => {
            "The access token's audience (aud) may not access this resource."
        }
        ConditionKind::Scope => "The access token lacks a scope this resource requires.",
        ConditionKind::Claim => "The credential lacks a claim this resource requires.",
    }
}

/// Why a form body is refused: the body is a place the filter does not read.
fn form_message(reason: FormError) -> &'static str {
    match reason {
        FormError::CredentialField => {
            "A field of the form body is named like a credential; the body is not read: send the credential in the Authorization header."
        }
        FormError::SeveralContentTypes => {
            "The request has several content types; send one Content-Type header."
        }
        FormError::Encoded => {
            "A form body must not be compressed (Content-Encoding); its fields are checked for credentials."
        }
        FormError::NoBoundary => "The multipart body has no usable boundary.",
        FormError::Charset => {
            "The form body's charset is not ASCII-compatible; send it as UTF-8."
        }
        FormError::PartHeaderTooLong => "A part header of the multipart body is too long.",
        FormError::BareLineEnd => {
            "A part header of the multipart body holds a CR or LF outside a CRLF."
        }
        FormError::NameCharset => {
            "A field name of the multipart body is in another charset than UTF-8 or holds a control character."
        }
        FormError::UnclearContentType => {
            "The Content-Type names a form but is no clean media type."
        }
        FormError::AmbiguousParameters => {
            "The form's Content-Type parameters can be read several ways (a starred parameter, a second boundary or a comma)."
        }
    }
}

impl From<BadRequest> for Denial {
    fn from(reason: BadRequest) -> Self {
        Denial::InvalidRequest(reason)
    }
}

impl fmt::Display for Denial {
    /// `CODE: message`, as a log line or an error chain shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for Denial {}

impl From<BadCredential> for Denial {
    fn from(reason: BadCredential) -> Self {
        Denial::InvalidCredentials(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::path::PathError;

    fn all() -> Vec<Denial> {
        let mut all = vec![Denial::MissingCredentials, Denial::PermissionDenied];
        for c in [
            BadCredential::NotBearer,
            BadCredential::Empty,
            BadCredential::TooLong,
            BadCredential::BadCharacters,
            BadCredential::Unknown,
            BadCredential::Client,
            BadCredential::MissingPrefix,
            BadCredential::Token(TokenError::Expired),
            BadCredential::Token(TokenError::BadSignature),
        ] {
            all.push(Denial::InvalidCredentials(c));
        }
        for r in [
            BadRequest::SeveralMethods,
            BadRequest::RepeatedAuthorization,
            BadRequest::RepeatedTokenHeader,
            BadRequest::RepeatedParameter,
            BadRequest::RepeatedCookie,
            BadRequest::LoneClientId,
            BadRequest::LoneClientSecret,
            BadRequest::UnsafePath(PathError::AboveRoot),
            BadRequest::UnclearHost,
            BadRequest::FormBody(FormError::CredentialField),
            BadRequest::FormBody(FormError::SeveralContentTypes),
            BadRequest::FormBody(FormError::Encoded),
            BadRequest::FormBody(FormError::NoBoundary),
            BadRequest::FormBody(FormError::Charset),
            BadRequest::FormBody(FormError::PartHeaderTooLong),
            BadRequest::FormBody(FormError::BareLineEnd),
            BadRequest::FormBody(FormError::NameCharset),
            BadRequest::FormBody(FormError::UnclearContentType),
            BadRequest::FormBody(FormError::AmbiguousParameters),
        ] {
            all.push(Denial::InvalidRequest(r));
        }
        all
    }

    #[test]
    fn codes_and_statuses_follow_the_contract() {
        let expect = |d: Denial, status, code, error| {
            assert_eq!(
                (d.status(), d.code().as_str(), d.bearer_error()),
                (status, code, error)
            )
        };
        expect(Denial::MissingCredentials, 401, "MISSING_CREDENTIALS", None);
        expect(
            Denial::InvalidCredentials(BadCredential::NotBearer),
            401,
            "INVALID_CREDENTIALS",
            Some("invalid_token"),
        );
        expect(
            Denial::InvalidCredentials(BadCredential::Token(TokenError::Expired)),
            401,
            "TOKEN_EXPIRED",
            Some("invalid_token"),
        );
        expect(
            Denial::InvalidRequest(BadRequest::SeveralMethods),
            400,
            "INVALID_REQUEST",
            Some("invalid_request"),
        );
        expect(
            Denial::PermissionDenied,
            403,
            "PERMISSION_DENIED",
            Some("insufficient_scope"),
        );
    }

    #[test]
    fn messages_are_safe_in_a_quoted_header_parameter() {
        for d in all() {
            let m = d.message();
            assert!(!m.is_empty());
            assert!(
                m.bytes()
                    .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'),
                "{m}"
            );
        }
    }

    #[test]
    fn expiry_message_says_to_refresh() {
        let m = Denial::InvalidCredentials(BadCredential::Token(TokenError::Expired)).message();
        assert!(m.contains("refresh"));
    }
}
