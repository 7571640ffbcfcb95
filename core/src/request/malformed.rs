//! Why a request is malformed: what the filter refuses before any credential is checked.

use super::form::FormError;
use super::path::PathError;

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
    /// Rules are limited to hosts and the request's host is not one plain host name.
    UnclearHost,
    /// A form body that names a credential, or that cannot be read with certainty.
    FormBody(FormError),
    /// A token header (`token_headers`) repeated, or one in a spelling that is not read.
    RepeatedTokenHeader,
}
