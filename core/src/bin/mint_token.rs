//! Mints HS256 tokens signed with a master key, for local work and demos.
//!
//! The secret is read from an environment variable (default `TOLLGATE_SECRET`) or a file,
//! never from the command line, so it stays out of shell history and process lists.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use tollgate_core::verify::token::{claims_for, SigningKey};

const USAGE: &str = "\
usage: mint-token --sub SUBJECT [options]

  --sub SUBJECT          the user the token names (sub claim)
  --ttl DURATION         lifetime, e.g. 90s, 15m, 2h, 7d (default 1h)
  --type TYPE            token_type claim: access or refresh (default access)
  --kid KID              key id put in the token header
  --issued-ago DURATION  backdate iat/nbf (with a short --ttl, mints an expired token)
  --not-before-in DURATION
                         nbf in the future (mints a token that is not valid yet)
  --secret-env NAME      environment variable holding the secret (default TOLLGATE_SECRET)
  --secret-file PATH     read the secret from a file instead (one trailing newline ignored)
  --count N              mint N tokens, one per line, for subjects SUBJECT-1 ... SUBJECT-N
";

fn fail(message: &str) -> ! {
    eprintln!("mint-token: {message}\n\n{USAGE}");
    std::process::exit(2);
}

/// Parses `90`, `90s`, `15m`, `2h` or `7d` into seconds.
fn parse_duration(text: &str) -> Option<u64> {
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (text.get(..i)?, c),
        _ => (text, 's'),
    };
    let n: u64 = number.parse().ok()?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => return None,
    };
    n.checked_mul(scale)
}

#[derive(Default)]
struct Options {
    sub: Option<String>,
    ttl: Option<u64>,
    token_type: Option<String>,
    kid: Option<String>,
    issued_ago: u64,
    not_before_in: u64,
    secret_env: Option<String>,
    secret_file: Option<String>,
    count: Option<u64>,
}

fn parse_args() -> Options {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            print!("{USAGE}");
            std::process::exit(0);
        }
        let Some(value) = args.next() else {
            fail(&format!("{flag} needs a value"));
        };
        let duration =
            |v: &str| parse_duration(v).unwrap_or_else(|| fail(&format!("bad duration {v:?}")));
        match flag.as_str() {
            "--sub" => options.sub = Some(value),
            "--ttl" => options.ttl = Some(duration(&value)),
            "--type" => options.token_type = Some(value),
            "--kid" => options.kid = Some(value),
            "--issued-ago" => options.issued_ago = duration(&value),
            "--not-before-in" => options.not_before_in = duration(&value),
            "--secret-env" => options.secret_env = Some(value),
            "--secret-file" => options.secret_file = Some(value),
            "--count" => {
                options.count = Some(value.parse().unwrap_or_else(|_| fail("bad --count")))
            }
            _ => fail(&format!("unknown option {flag}")),
        }
    }
    options
}

fn read_secret(options: &Options) -> String {
    if let Some(path) = &options.secret_file {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| fail(&format!("cannot read {path}: {e}")));
        let text = text.strip_suffix('\n').unwrap_or(&text);
        return text.strip_suffix('\r').unwrap_or(text).to_string();
    }
    let name = options.secret_env.as_deref().unwrap_or("TOLLGATE_SECRET");
    std::env::var(name).unwrap_or_else(|_| fail(&format!("environment variable {name} is not set")))
}

fn main() {
    let options = parse_args();
    let Some(sub) = options.sub.as_deref() else {
        fail("--sub is required");
    };
    let token_type = options.token_type.as_deref().unwrap_or("access");
    if token_type != "access" && token_type != "refresh" {
        fail("--type is access or refresh");
    }
    let secret = read_secret(&options);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let issued = now.saturating_sub(options.issued_ago);
    let key = SigningKey::new(options.kid.clone(), secret.as_bytes());
    let mint = |subject: &str| {
        let mut claims = claims_for(subject, token_type, issued, options.ttl.unwrap_or(3600));
        if options.not_before_in > 0 {
            claims.invalid_before = Some(jwt_simple::prelude::UnixTimeStamp::from_secs(
                now + options.not_before_in,
            ));
        }
        key.sign(claims).unwrap_or_else(|e| {
            eprintln!("mint-token: cannot sign: {e}");
            std::process::exit(1);
        })
    };
    match options.count {
        None => println!("{}", mint(sub)),
        Some(count) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for i in 1..=count {
                let _ = writeln!(out, "{}", mint(&format!("{sub}-{i}")));
            }
        }
    }
}
