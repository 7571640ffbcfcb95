//! The HTML of the login page.

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The sign-in form; `redirect` and the CSRF token go back in hidden fields, `error` above
/// the form; with `demo_hint`, the demo user's name and password below it.
pub fn login(redirect: &str, error: Option<&str>, csrf_token: &str, demo_hint: bool) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"error\">{}</p>\n", escape(e)))
        .unwrap_or_default();
    let hint = if demo_hint {
        "<p>Demo user: <code>demo</code> / <code>demo-password</code></p>\n"
    } else {
        ""
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in</title>
<style>body{{font-family:sans-serif;max-width:24rem;margin:4rem auto}}label,input{{display:block;width:100%;margin:.4rem 0}}.error{{color:#b00}}</style>
</head>
<body>
<h1>Sign in</h1>
{error}<form method="post" action="/login">
<label for="username">Username</label><input id="username" name="username" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<input type="hidden" name="redirect" value="{redirect}">
<input type="hidden" name="{csrf_field}" value="{csrf_token}">
<button id="submit" type="submit">Sign in</button>
</form>
{hint}</body>
</html>
"#,
        redirect = escape(redirect),
        csrf_field = crate::csrf::FIELD,
        csrf_token = escape(csrf_token),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        let page = login("\"><script>alert(1)</script>", Some("<b>"), "t\"", false);
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&quot;&gt;&lt;script&gt;"));
        assert!(page.contains("&lt;b&gt;"));
        assert!(page.contains("value=\"t&quot;\""));
        assert!(!page.contains("demo-password"));
        assert!(login("/", None, "t", true).contains("demo-password"));
    }
}
