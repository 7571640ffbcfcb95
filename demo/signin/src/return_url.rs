//! Where a browser may be sent back after signing in: never an open redirect.

/// `requested` when it is a same-site path or an http(s) URL on a trusted host, else `/`.
pub fn safe_return(requested: &str, trusted_hosts: &[String]) -> String {
    if is_safe(requested, trusted_hosts) {
        requested.to_owned()
    } else {
        "/".to_owned()
    }
}

fn is_safe(url: &str, trusted_hosts: &[String]) -> bool {
    if url.is_empty()
        || url.len() > 4096
        || !url.bytes().all(|b| b.is_ascii_graphic())
        || url.contains('\\')
    {
        return false;
    }
    if url.starts_with('/') {
        return !url.starts_with("//");
    }
    let rest = match url.split_once("://") {
        Some(("http", rest)) | Some(("https", rest)) => rest,
        _ => return false,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    !authority.contains('@')
        && trusted_hosts
            .iter()
            .any(|host| host.eq_ignore_ascii_case(authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_site_paths_and_trusted_hosts() {
        let trusted = vec!["127.0.0.1:10000".to_string(), "app.example.com".to_string()];
        let ok = [
            "/",
            "/app?x=1",
            "http://127.0.0.1:10000/app",
            "https://app.example.com/a/b?c=d",
            "https://APP.example.com",
        ];
        for url in ok {
            assert_eq!(safe_return(url, &trusted), url, "{url}");
        }
        let refused = [
            "",
            "//evil.example/x",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example/",
            "https://app.example.com.evil.example/",
            "https://app.example.com@evil.example/",
            "https://evil.example#@app.example.com",
            "javascript:alert(1)",
            "data:text/html,<script>",
            "http://127.0.0.1:10001/",
            "/a\r\nSet-Cookie: x=y",
            "/a b",
            "ftp://app.example.com/",
        ];
        for url in refused {
            assert_eq!(safe_return(url, &trusted), "/", "{url:?}");
        }
    }
}
