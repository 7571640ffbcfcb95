//! Why a request is refused: the contract's error codes, statuses and fixed messages.

use crate::request::path::PathError;
use crate::verify::token::TokenError;

/// Why a sent credential is not accepted (401 `INVALID_CREDENTIALS`, or `TOKEN_EXPIRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadCredential {
    /// `Authorization` is present but does not use the Bearer scheme.
    NotBearer,
    /// The credential is empty.
    Empty,
    /// The credential is longer than 8 KiB.
    TooLong,
    /// The credential holds bytes that no token or key can hold (including non-UTF-8).
    BadCharacters,
    /// The credential looked like a token and the token is refused.
    Token(TokenError),
    /// Neither a token nor a configured key.
    Unknown,
    /// A `client_id`/`client_secret` pair that does not match (unknown id or wrong secret).
    Client,
}

/// Why a request is malformed (400 `INVALID_REQUEST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequest {
    /// More than one of: `Authorization`, the token query parameter, client credentials.
    SeveralMethods,
    /// Two `Authorization` headers.
    RepeatedAuthorization,
    /// A credential query parameter appears twice.
    RepeatedParameter,
    /// The token cookie appears twice.
    RepeatedCookie,
    /// `client_id` without `client_secret`.
    LoneClientId,
    /// `client_secret` without `client_id`.
    LoneClientSecret,
    /// The path cannot be normalised.
    UnsafePath(PathError),
    /// A credential in a place or spelling the filter does not read, next to one it reads.
    UnreadCredential,
    /// A method override that is not a method, or too many of them.
    MethodOverride,
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
}

impl Denial {
    /// The HTTP status.
    pub fn status(self) -> u32 {
        match self {
            Denial::MissingCredentials | Denial::InvalidCredentials(_) => 401,
            Denial::InvalidRequest(_) => 400,
            Denial::PermissionDenied => 403,
        }
    }

    /// The JSON `code`.
    pub fn code(self) -> &'static str {
        match self {
            Denial::MissingCredentials => "MISSING_CREDENTIALS",
            Denial::InvalidCredentials(BadCredential::Token(TokenError::Expired)) => {
                "TOKEN_EXPIRED"
            }
            Denial::InvalidCredentials(_) => "INVALID_CREDENTIALS",
            Denial::InvalidRequest(_) => "INVALID_REQUEST",
            Denial::PermissionDenied => "PERMISSION_DENIED",
        }
    }

    /// The RFC 6750 `error` attribute of `WWW-Authenticate`; none when no credential was sent.
    pub fn bearer_error(self) -> Option<&'static str> {
        match self {
            Denial::MissingCredentials => None,
            Denial::InvalidCredentials(_) => Some("invalid_token"),
            Denial::InvalidRequest(_) => Some("invalid_request"),
            Denial::PermissionDenied => Some("insufficient_scope"),
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
            },
            Denial::PermissionDenied => "The credential is valid but may not access this resource.",
        }
    }
}

impl From<BadRequest> for Denial {
    fn from(reason: BadRequest) -> Self {
        Denial::InvalidRequest(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Denial> {
        let mut all = vec![Denial::MissingCredentials, Denial::PermissionDenied];
        for c in [
            BadCredential::NotBearer,
            BadCredential::Empty,
            BadCredential::TooLong,
            BadCredential::BadCharacters,
            BadCredential::Unknown,
            BadCredential::Client,
            BadCredential::Token(TokenError::Expired),
            BadCredential::Token(TokenError::BadSignature),
        ] {
            all.push(Denial::InvalidCredentials(c));
        }
        for r in [
            BadRequest::SeveralMethods,
            BadRequest::RepeatedAuthorization,
            BadRequest::RepeatedParameter,
            BadRequest::RepeatedCookie,
            BadRequest::LoneClientId,
            BadRequest::LoneClientSecret,
            BadRequest::UnsafePath(PathError::AboveRoot),
        ] {
            all.push(Denial::InvalidRequest(r));
        }
        all
    }

    #[test]
    fn codes_and_statuses_follow_the_contract() {
        let expect = |d: Denial, status, code, error| {
            assert_eq!(
                (d.status(), d.code(), d.bearer_error()),
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
