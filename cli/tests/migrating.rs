//! The migration guide's policies (docs/migrating/): each cases file runs with `tollgate test`
//! as its first line says (`# tollgate test --config … --jwks … CASES`), and every case
//! passes. One test per policy, so that each one's verdict is its own.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{root, tollgate};

/// Runs the command written on the first line of `docs/migrating/<name>.cases.yaml`.
fn run_policy(name: &str) {
    let cases = format!("docs/migrating/{name}.cases.yaml");
    let text = std::fs::read_to_string(root().join(&cases)).unwrap();
    let first = text.lines().next().unwrap_or_default();
    let command = first
        .strip_prefix("# tollgate ")
        .unwrap_or_else(|| panic!("{cases}: the first line is not `# tollgate test …`"));
    let args: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(args.first(), Some(&"test"), "{cases}: {first}");
    assert_eq!(args.last(), Some(&cases.as_str()), "{cases}: {first}");
    assert!(
        args.contains(&format!("docs/migrating/{name}.json").as_str()),
        "{cases}: runs another configuration: {first}"
    );
    let run = tollgate(&args);
    assert_eq!(run.status, 0, "{cases}:\n{}", run.all());
    assert!(run.stdout.contains(" passed, 0 failed"), "{}", run.all());
}

macro_rules! policies {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(#[test]
        fn $test() {
            run_policy($name);
        })*

        /// Every cases file under docs/migrating has its test above.
        #[test]
        fn every_policy_is_run() {
            let mut listed = vec![$($name),*];
            listed.sort_unstable();
            let mut found: Vec<String> = std::fs::read_dir(root().join("docs/migrating"))
                .unwrap()
                .filter_map(|e| {
                    let name = e.unwrap().file_name().into_string().unwrap();
                    name.strip_suffix(".cases.yaml").map(str::to_owned)
                })
                .collect();
            found.sort_unstable();
            assert_eq!(found, listed);
        }
    };
}

policies! {
    require_jwt => "01-require-jwt",
    per_host_issuers => "02-per-host-issuers",
    all_but_healthz => "03-all-but-healthz",
    deny_admin_without_jwt => "04-deny-admin-without-jwt",
    request_principal => "05-request-principal",
    groups_claim => "06-groups-claim",
    methods_paths_issuer => "07-methods-paths-issuer",
    jwt_authn_requires_any => "08-jwt-authn-requires-any",
    provider_and_audiences => "09-provider-and-audiences",
    token_headers_payload => "10-token-headers-payload",
    params_and_claim_headers => "11-params-and-claim-headers",
    scopes => "12-scopes",
    app_roles => "13-app-roles",
}
