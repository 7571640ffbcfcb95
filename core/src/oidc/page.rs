//! The pages a person sees when sign-in cannot go on: fixed text, never a token, code or
//! value from the request.

use crate::response::{LocalResponse, RETRY_AFTER_SECONDS};

fn html(status: u32, title: &str, text: &str) -> LocalResponse {
    LocalResponse {
        status,
        headers: vec![
            ("content-type", "text/html; charset=utf-8".to_owned()),
            ("cache-control", "no-store".to_owned()),
            // The page's URL may be the callback's, with the code and state in it: no link
            // from it sends that URL on as `Referer`.
            ("referrer-policy", "no-referrer".to_owned()),
        ],
        body: format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body><h1>{title}</h1>\n<p>{text}</p>\n<p><a href=\"/\">Start again</a></p></body></html>\n"
        ),
    }
}

/// 503: the provider could not be reached (or answered no tokens), or no random bytes.
pub fn unavailable() -> LocalResponse {
    let mut page = html(
        503,
        "Sign-in is unavailable",
        "The sign-in service did not answer in time. Please try again in a moment.",
    );
    page.headers
        .push(("retry-after", RETRY_AFTER_SECONDS.to_owned()));
    page
}

/// 400: a callback that matches no sign-in under way (expired, or started elsewhere).
pub fn bad_state() -> LocalResponse {
    html(
        400,
        "Sign-in could not be completed",
        "This sign-in link has expired or was not started in this browser. Please start again.",
    )
}

/// 400: an address a server may read as the callback or logout address, not spelled as it.
pub fn not_own_path() -> LocalResponse {
    html(
        400,
        "This address is not in use",
        "This address is spelled unlike the site's sign-in addresses. Please start again.",
    )
}

/// 401: the provider refused the sign-in, or its answer did not pass the checks.
pub fn refused() -> LocalResponse {
    html(
        401,
        "Sign-in was not completed",
        "The identity provider did not confirm the sign-in. Please start again.",
    )
}

/// 403: a sign-out that started on another site.
pub fn logout_elsewhere() -> LocalResponse {
    html(
        403,
        "Sign-out must start on this site",
        "This sign-out link came from another site. Sign out from this site's own pages.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_keeps_its_url_out_of_referer_and_caches() {
        for page in [unavailable(), bad_state(), refused(), logout_elsewhere()] {
            let header = |name: &str| {
                page.headers
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(
                header("referrer-policy"),
                Some("no-referrer"),
                "{}",
                page.status
            );
            assert_eq!(header("cache-control"), Some("no-store"), "{}", page.status);
        }
    }
}
