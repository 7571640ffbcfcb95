//! Reading `application/x-www-form-urlencoded` bodies and cookies.

/// Decodes one form component: `+` is a space, `%XX` a byte; `None` when malformed.
pub fn decode(component: &str) -> Option<String> {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = component.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The value of field `name` in a form body or query string.
pub fn field(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key)? == name).then(|| decode(value)).flatten()
    })
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie(header: &str, name: &str) -> Option<String> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then(|| value.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields() {
        let body = "username=demo&password=p%40ss+word&redirect=http%3A%2F%2Fh%2Fa%3Fb%3D1";
        assert_eq!(field(body, "username").as_deref(), Some("demo"));
        assert_eq!(field(body, "password").as_deref(), Some("p@ss word"));
        assert_eq!(field(body, "redirect").as_deref(), Some("http://h/a?b=1"));
        assert_eq!(field(body, "missing"), None);
        assert_eq!(field("a=%zz", "a"), None);
        assert_eq!(field("a=%e9", "a"), None);
    }

    #[test]
    fn cookies() {
        assert_eq!(
            cookie("a=1; refresh_token=xyz; b=2", "refresh_token").as_deref(),
            Some("xyz")
        );
        assert_eq!(cookie("a=1", "refresh_token"), None);
    }
}
