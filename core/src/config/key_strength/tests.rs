use super::estimate::milli_log2;
use super::*;

#[test]
fn logarithms_of_every_alphabet() {
    for mask in 1u32..16 {
        let sizes = [26, 26, 10, 33];
        let alphabet: u32 = (0..4)
            .filter(|b| mask & (1 << b) != 0)
            .map(|b| sizes[b])
            .sum();
        let exact = (f64::from(alphabet).log2() * 1000.0).round() as u32;
        assert!(milli_log2(alphabet).abs_diff(exact) <= 1, "{alphabet}");
    }
}

#[test]
fn weak_material_is_refused() {
    for weak in [
        "12345678901234567890123456789012",
        "abcdefghabcdefghabcdefghabcdefgh",
        "aaaaaaaaaaaaaaaaaaaaaaaa",
        "0123456789abcdefghijklmnopqrstu",
        "your-super-secret-jwt-token-with-at-least-32-characters-long",
        "abababababababababababababababab",
        "xyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyz",
        // Found by an outside attack on the first version of these rules.
        "secretkeysecretkeysecretkeysecretkey1",
        "mysecretkeymysecretkeymysecretkeyX",
        "changemechangemechangemechangeme12",
        "Password1Password2Password3Password4",
        "your-256-bit-secret-key-here-make-it-secure",
        "your-256-bit-secret-min-32-chars-long-change-this",
        "your-256-bit-secret-your-256-bit!",
        "super-secret-jwt-token-with-at-least-32-characters-long!",
        "5367566B59703373367639792F423F4528482B4D6251655468576D5A71347437",
        "404E635266556A586E3272357538782F413F4428472B4B6250645367566B5970",
        "acegikmoqsuwy02468bdfhjlnprtvxz13579",
        // Found by a third outside attack, and by the attack on the sign-in service.
        "this-is-a-generic-HS256-secret-key-and-you-should-really-change-it",
        "SkVYp3s6v9y/B?E(H+MbQeThWmZq4t7w1",
        "cGFzc3dvcmQxMjNwYXNzd29yZDEyMw==",
        "aeimquyCGKOSW048<@DHLPTX`dhlptx|",
        "the quick brown fox jumps over the lazy dog",
        "Lorem ipsum dolor sit amet, consectetur adipiscing",
        "correct horse battery staple correct",
        // Found by a fourth: prose, interleaved steps, keyboard walks.
        "To be, or not to be, that is the question:",
        "It was the best of times, it was the worst of times",
        "Four score and seven years ago our fathers brought forth",
        "All work and no play makes Jack a dull boy.",
        "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8",
        "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
        "zaq12wsxcde34rfvbgt56yhnmju78ik,lo9",
    ] {
        assert!(check_strength(weak).is_err(), "{weak}");
    }
}

#[test]
fn random_material_passes() {
    for strong in [
        "q7Fz-2mLx9Rv_T4kWp1Nc8Hs3Bd6Yg0J",
        "sk_live_9fK2mQx7Lr4Tz8Wc1Vb6Nh3Pd5",
        "Zr4Qm8Vn2Lp6Xw1Ty9Hs3Kd7Bf5Gj0Ae",
        "Vb3xK9qL2mW7pR4tY8nZ1cF6hJ5sD0gA",
    ] {
        assert_eq!(check_strength(strong), Ok(()), "{strong}");
    }
}

#[test]
fn periods() {
    assert_eq!(shortest_period(b"abcabcabc"), 3);
    assert_eq!(shortest_period(b"abcabcab"), 8);
    assert_eq!(shortest_period(b"aaaa"), 1);
    assert_eq!(shortest_period(b"abcd"), 4);
    assert_eq!(shortest_period(b""), 0);
}

#[test]
fn overlaps() {
    let a: &[u8] = b"first-key-material-0123";
    let b: &[u8] = b"xx-first-key-material-0123-yy";
    let c: &[u8] = b"unrelated-material-9876";
    assert_eq!(
        first_overlap(&[("secrets[0]", a), ("api_keys[0]", c)]),
        None
    );
    assert_eq!(
        first_overlap(&[("secrets[0]", a), ("api_keys[0]", c), ("clients[0]", b)]),
        Some(("clients[0]", "secrets[0]"))
    );
    assert_eq!(
        first_overlap(&[("secrets[0]", a), ("publishable_keys[0]", a)]),
        Some(("publishable_keys[0]", "secrets[0]"))
    );
}
