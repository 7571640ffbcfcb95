//! Mints HS256 tokens signed with a master key, for local work and demos, and asymmetric
//! tokens (RS*, PS*, ES256/384, EdDSA) signed with a private key in a PEM file, as an
//! identity provider ("issuer") would (for the benchmark and local tests).
//!
//! The secret is read from an environment variable (default `TOLLGATE_SECRET`) or a file,
//! never from the command line, so it stays out of shell history and process lists. The
//! asymmetric signing code lives here, in the tool, not in the library: the filter never signs.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use jwt_simple::prelude::*;
use tollgate_core::verify::token::{claims_for, AccessClaims, SigningKey};

const USAGE: &str = "\
usage: mint-token --sub SUBJECT [options]
       mint-token --alg ALG --key-file PEM [--kid KID] --print-jwks

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
  --iss ISSUER           iss claim (an issuer's tokens must name it)
  --aud AUDIENCE         aud claim (repeat for several audiences)
  --alg ALG              HS256 (default: the secret) or RS256, RS384, RS512, PS256, PS384,
                         PS512, ES256, ES384, EdDSA (the private key of --key-file)
  --key-file PATH        the PKCS#8 PEM private key of an asymmetric --alg
  --print-jwks           print the key's public JWKS ({\"keys\": [...]}, with --kid) and exit
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
    iss: Option<String>,
    aud: Vec<String>,
    alg: Option<String>,
    key_file: Option<String>,
    print_jwks: bool,
}

/// An asymmetric signing key, typed by its algorithm.
enum PrivateKey {
    RS256(RS256KeyPair),
    RS384(RS384KeyPair),
    RS512(RS512KeyPair),
    PS256(PS256KeyPair),
    PS384(PS384KeyPair),
    PS512(PS512KeyPair),
    ES256(ES256KeyPair),
    ES384(ES384KeyPair),
    EdDSA(Ed25519KeyPair),
}

impl PrivateKey {
    /// The key of PKCS#8 PEM `pem` for `alg` (an asymmetric JWS algorithm name), with `kid`.
    fn from_pem(alg: &str, pem: &str, kid: Option<&str>) -> Result<PrivateKey, String> {
        fn load<K>(
            key: Result<K, jwt_simple::Error>,
            kid: Option<&str>,
            with_kid: fn(K, &str) -> K,
        ) -> Result<K, String> {
            let key = key.map_err(|e| format!("cannot read the key: {e}"))?;
            Ok(match kid {
                Some(kid) => with_kid(key, kid),
                None => key,
            })
        }
        Ok(match alg {
            "RS256" => Self::RS256(load(
                RS256KeyPair::from_pem(pem),
                kid,
                RS256KeyPair::with_key_id,
            )?),
            "RS384" => Self::RS384(load(
                RS384KeyPair::from_pem(pem),
                kid,
                RS384KeyPair::with_key_id,
            )?),
            "RS512" => Self::RS512(load(
                RS512KeyPair::from_pem(pem),
                kid,
                RS512KeyPair::with_key_id,
            )?),
            "PS256" => Self::PS256(load(
                PS256KeyPair::from_pem(pem),
                kid,
                PS256KeyPair::with_key_id,
            )?),
            "PS384" => Self::PS384(load(
                PS384KeyPair::from_pem(pem),
                kid,
                PS384KeyPair::with_key_id,
            )?),
            "PS512" => Self::PS512(load(
                PS512KeyPair::from_pem(pem),
                kid,
                PS512KeyPair::with_key_id,
            )?),
            "ES256" => Self::ES256(load(
                ES256KeyPair::from_pem(pem),
                kid,
                ES256KeyPair::with_key_id,
            )?),
            "ES384" => Self::ES384(load(
                ES384KeyPair::from_pem(pem),
                kid,
                ES384KeyPair::with_key_id,
            )?),
            "EdDSA" => Self::EdDSA(load(
                Ed25519KeyPair::from_pem(pem),
                kid,
                Ed25519KeyPair::with_key_id,
            )?),
            _ => return Err(format!("unknown --alg {alg:?}")),
        })
    }

    fn sign(&self, claims: JWTClaims<AccessClaims>) -> Result<String, jwt_simple::Error> {
        match self {
            Self::RS256(k) => k.sign(claims),
            Self::RS384(k) => k.sign(claims),
            Self::RS512(k) => k.sign(claims),
            Self::PS256(k) => k.sign(claims),
            Self::PS384(k) => k.sign(claims),
            Self::PS512(k) => k.sign(claims),
            Self::ES256(k) => k.sign(claims),
            Self::ES384(k) => k.sign(claims),
            Self::EdDSA(k) => k.sign(claims),
        }
    }

    /// The public key as one JWK (JSON text, with the kid).
    fn public_jwk(&self) -> String {
        match self {
            Self::RS256(k) => k.public_key().to_jwk(),
            Self::RS384(k) => k.public_key().to_jwk(),
            Self::RS512(k) => k.public_key().to_jwk(),
            Self::PS256(k) => k.public_key().to_jwk(),
            Self::PS384(k) => k.public_key().to_jwk(),
            Self::PS512(k) => k.public_key().to_jwk(),
            Self::ES256(k) => k.public_key().to_jwk(),
            Self::ES384(k) => k.public_key().to_jwk(),
            Self::EdDSA(k) => k.public_key().to_jwk(),
        }
    }
}

/// `{"keys": [jwk]}`; the kid is set (or replaced) to `kid` when given.
fn jwks_document(jwk: &str, kid: Option<&str>) -> Result<String, String> {
    let mut key: serde_json::Value =
        serde_json::from_str(jwk).map_err(|e| format!("bad JWK from jwt-simple: {e}"))?;
    if let (Some(kid), Some(object)) = (kid, key.as_object_mut()) {
        object.insert("kid".into(), kid.into());
    }
    Ok(serde_json::json!({ "keys": [key] }).to_string())
}

/// `claims` with the issuer and audiences given.
fn with_issuer(
    mut claims: JWTClaims<AccessClaims>,
    iss: Option<&str>,
    aud: &[String],
) -> JWTClaims<AccessClaims> {
    claims.issuer = iss.map(str::to_owned);
    claims.audiences = match aud {
        [] => None,
        [one] => Some(Audiences::AsString(one.clone())),
        many => Some(Audiences::AsSet(many.iter().cloned().collect())),
    };
    claims
}

fn parse_args() -> Options {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            print!("{USAGE}");
            std::process::exit(0);
        }
        if flag == "--print-jwks" {
            options.print_jwks = true;
            continue;
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
            "--iss" => options.iss = Some(value),
            "--aud" => options.aud.push(value),
            "--alg" => options.alg = Some(value),
            "--key-file" => options.key_file = Some(value),
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

/// How tokens are signed: the HS256 secret, or an issuer's private key (one per run: its size
/// does not matter).
#[allow(clippy::large_enum_variant)]
enum Signer {
    Secret(SigningKey),
    Private(PrivateKey),
}

/// The private key `--alg` and `--key-file` name, or `None` for HS256.
fn private_key(options: &Options) -> Option<PrivateKey> {
    let alg = options.alg.as_deref().unwrap_or("HS256");
    if alg == "HS256" {
        if options.key_file.is_some() {
            fail("--key-file goes with an asymmetric --alg");
        }
        return None;
    }
    let Some(path) = &options.key_file else {
        fail(&format!("--alg {alg} needs --key-file"));
    };
    let pem =
        std::fs::read_to_string(path).unwrap_or_else(|e| fail(&format!("cannot read {path}: {e}")));
    Some(PrivateKey::from_pem(alg, &pem, options.kid.as_deref()).unwrap_or_else(|e| fail(&e)))
}

fn main() {
    let options = parse_args();
    let private = private_key(&options);
    if options.print_jwks {
        let Some(key) = &private else {
            fail("--print-jwks needs an asymmetric --alg and --key-file (an HS256 secret is not published)");
        };
        match jwks_document(&key.public_jwk(), options.kid.as_deref()) {
            Ok(text) => println!("{text}"),
            Err(e) => fail(&e),
        }
        return;
    }
    let Some(sub) = options.sub.as_deref() else {
        fail("--sub is required");
    };
    let token_type = options.token_type.as_deref().unwrap_or("access");
    if token_type != "access" && token_type != "refresh" {
        fail("--type is access or refresh");
    }
    let signer = match private {
        Some(key) => Signer::Private(key),
        None => Signer::Secret(SigningKey::new(
            options.kid.clone(),
            read_secret(&options).as_bytes(),
        )),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let issued = now.saturating_sub(options.issued_ago);
    let mint = |subject: &str| {
        let mut claims = claims_for(subject, token_type, issued, options.ttl.unwrap_or(3600));
        if options.not_before_in > 0 {
            claims.invalid_before = Some(UnixTimeStamp::from_secs(now + options.not_before_in));
        }
        let claims = with_issuer(claims, options.iss.as_deref(), &options.aud);
        let signed = match &signer {
            Signer::Secret(key) => key.sign(claims),
            Signer::Private(key) => key.sign(claims),
        };
        signed.unwrap_or_else(|e| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_core::verify::jwks::{Algorithm, KeySet};

    const NOW: u64 = 1_800_000_000;

    fn pem(name: &str) -> String {
        let path = format!(
            "{}/../tests/data/issuer-keys/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The printed JWKS is public only, carries the kid, loads into the filter's key set for
    /// exactly the minted algorithm, and verifies the minted token with its iss and aud.
    #[test]
    fn every_algorithm_mints_a_token_its_printed_jwks_verifies() {
        let cases = [
            ("RS256", "rsa-2048.pem"),
            ("RS384", "rsa-2048.pem"),
            ("RS512", "rsa-2048.pem"),
            ("PS256", "rsa-2048.pem"),
            ("PS384", "rsa-2048.pem"),
            ("PS512", "rsa-2048.pem"),
            ("ES256", "ec-p256.pem"),
            ("ES384", "ec-p384.pem"),
            ("EdDSA", "ed25519.pem"),
        ];
        for (alg, file) in cases {
            let key = PrivateKey::from_pem(alg, &pem(file), Some("k1")).expect("key loads");
            let jwks = jwks_document(&key.public_jwk(), Some("k1")).expect("jwks");
            let document: serde_json::Value = serde_json::from_str(&jwks).expect("json");
            let keys = document["keys"].as_array().expect("keys");
            assert_eq!(keys.len(), 1, "{alg}: {jwks}");
            assert_eq!(keys[0]["kid"], "k1", "{alg}: {jwks}");
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(keys[0].get(private).is_none(), "{alg}: {private} in {jwks}");
            }
            let algorithm = Algorithm::parse(alg).expect("algorithm");
            let set = KeySet::parse(jwks.as_bytes(), &Algorithm::ALL).expect("the filter loads it");
            assert!(set.has_kid(algorithm, "k1"), "{alg}");
            let claims = with_issuer(
                claims_for("alice", "access", NOW, 600),
                Some("https://idp.test"),
                &["api://a".to_owned()],
            );
            let token = key.sign(claims).expect("signs");
            let payload = token.split('.').nth(1).expect("payload");
            let payload = Base64UrlSafeNoPadding::decode_to_vec(payload, None).expect("base64");
            let payload: serde_json::Value = serde_json::from_slice(&payload).expect("claims");
            assert_eq!(payload["iss"], "https://idp.test");
            assert_eq!(payload["aud"], "api://a");
            assert_eq!(payload["sub"], "alice");
            assert!(
                set.candidates(algorithm, Some("k1"))
                    .any(|k| k.verifies(&token)),
                "{alg}: the printed key verifies the token"
            );
            let other = if alg.starts_with('E') {
                "RS256"
            } else {
                "ES256"
            };
            let other = Algorithm::parse(other).expect("algorithm");
            assert!(set.candidates(other, Some("k1")).next().is_none(), "{alg}");
        }
    }

    #[test]
    fn a_key_of_another_family_or_an_unknown_algorithm_is_refused() {
        assert!(PrivateKey::from_pem("ES256", &pem("rsa-2048.pem"), None).is_err());
        assert!(PrivateKey::from_pem("RS256", &pem("ec-p256.pem"), None).is_err());
        assert!(PrivateKey::from_pem("HS512", &pem("rsa-2048.pem"), None).is_err());
    }

    #[test]
    fn audiences_are_a_string_for_one_and_a_list_for_several() {
        let claims = |aud: &[String]| {
            let claims = with_issuer(claims_for("a", "access", NOW, 60), None, aud);
            serde_json::to_value(&claims).expect("json")
        };
        assert!(claims(&[]).get("aud").is_none());
        assert!(claims(&[]).get("iss").is_none());
        assert_eq!(claims(&["x".into()])["aud"], "x");
        let many = claims(&["x".into(), "y".into()]);
        let mut list: Vec<&str> = many["aud"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        list.sort_unstable();
        assert_eq!(list, ["x", "y"]);
    }

    #[test]
    fn the_kid_replaces_whatever_the_jwk_said() {
        let text = jwks_document(
            r#"{"kty":"OKP","crv":"Ed25519","x":"AA","kid":"old"}"#,
            Some("new"),
        )
        .expect("jwks");
        assert_eq!(
            text,
            r#"{"keys":[{"crv":"Ed25519","kid":"new","kty":"OKP","x":"AA"}]}"#
        );
    }
}
