//! The shipped examples: the docker-compose configuration, the Istio plugin configuration, and every example against the schema.

use super::*;

#[test]
fn the_compose_configuration_is_rendered_from_the_example() {
    let out = std::process::Command::new("bash")
        .arg(support::manifest_dir().join("scripts/render-compose-config.sh"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let committed =
        std::fs::read_to_string(support::manifest_dir().join("envoy/envoy.compose.yaml")).unwrap();
    assert!(
        String::from_utf8(out.stdout).unwrap() == committed,
        "envoy/envoy.compose.yaml is stale: run `make compose-config`"
    );
}

#[test]
fn the_compose_configuration_validates_and_serves() {
    let (ok, output) = support::validate_config(
        &support::manifest_dir().join("envoy/envoy.compose.yaml"),
        ENV,
    );
    assert!(ok && output.contains("OK"), "{output}");
    let (ok, output) = support::validate_config(
        &support::manifest_dir().join("envoy/envoy.compose.yaml"),
        &ENV[..1],
    );
    assert!(!ok, "validated without the API key variable: {output}");

    let signin = support::SignIn::start(SECRET, HOST);
    let envoy = support::example_envoy("envoy.compose.yaml", signin.port, ENV)
        .unwrap_or_else(|r| panic!("compose configuration refused:\n{}", r.log));
    let good = token("lUpa", "access", now(), 600);
    let r = envoy.send(&get("/api/orders").bearer(&good));
    assert_eq!(r.upstream_header("x-auth-user").as_deref(), Some("lUpa"));
    assert_eq!(
        envoy.send(&get("/api/orders")).code().as_deref(),
        Some("MISSING_CREDENTIALS")
    );
    let r = envoy.send(
        &Request::new("POST", "/login")
            .host(HOST)
            .header("Content-Type", "application/json")
            .body_text(r#"{"username":"demo","password":"demo-password"}"#),
    );
    assert_eq!(r.json().unwrap()["data"]["user"]["id"], "lUpa");
}

#[test]
fn the_compose_file_matches_its_envoy_configuration() {
    let compose = support::yaml_file("docker-compose.yml");
    let config = support::yaml_file("envoy/envoy.compose.yaml");
    let makefile = std::fs::read_to_string(support::manifest_dir().join("Makefile")).unwrap();
    let version = makefile
        .lines()
        .find_map(|l| l.strip_prefix("ENVOY_VERSION := "))
        .unwrap()
        .trim();

    let envoy = &compose["services"]["envoy"];
    assert_eq!(
        envoy["image"],
        format!("envoyproxy/envoy:v{version}").as_str()
    );
    let command: Vec<&str> = envoy["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let config_arg = command[command.iter().position(|a| *a == "-c").unwrap() + 1];
    assert_eq!(config_arg, "envoy/envoy.compose.yaml");
    let workdir = envoy["working_dir"].as_str().unwrap();
    let volumes: Vec<&str> = envoy["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        volumes.contains(&format!("./envoy:{workdir}/envoy:ro").as_str()),
        "{volumes:?}"
    );
    let module = "target/wasm32-wasip1/release/tollgate.wasm";
    assert!(
        volumes.contains(&format!("./{module}:{workdir}/{module}:ro").as_str()),
        "{volumes:?}"
    );

    // Every variable the VM reads is given to the container.
    let filter = &config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["http_filters"][0]["typed_config"]["config"];
    assert_eq!(filter["vm_config"]["code"]["local"]["filename"], module);
    let wanted: Vec<&str> = filter["vm_config"]["environment_variables"]["host_env_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let given = envoy["environment"].as_object().unwrap();
    for name in &wanted {
        assert!(given.contains_key(*name), "compose does not pass {name}");
    }

    // The helpers share Envoy's network namespace, on the ports its clusters use.
    let cluster_port = |name: &str| {
        config["static_resources"]["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| {
                c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
                    ["socket_address"]["port_value"]
                    .as_i64()
                    .unwrap()
            })
            .unwrap()
    };
    for service in ["echo", "signin"] {
        assert_eq!(
            compose["services"][service]["network_mode"],
            "service:envoy"
        );
    }
    let echo_command = compose["services"]["echo"]["command"].to_string();
    assert!(echo_command.contains(&format!("127.0.0.1:{}", cluster_port("echo"))));
    let signin: Value = serde_json::from_str(
        &std::fs::read_to_string(support::manifest_dir().join("demo/signin/signin.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        signin["listen"],
        format!("127.0.0.1:{}", cluster_port("signin")).as_str()
    );

    // And the compose tool itself accepts the file.
    let out = std::process::Command::new("docker-compose")
        .args(["-f", "docker-compose.yml", "config", "-q"])
        .current_dir(support::manifest_dir())
        .envs(ENV.iter().copied())
        .output()
        .unwrap_or_else(|e| {
            panic!("docker-compose is needed to validate docker-compose.yml (make test installs it): {e}")
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_istio_plugin_configuration_runs_in_envoy() {
    let plugin = support::yaml_file("envoy/istio/wasmplugin.yaml");
    assert_eq!(plugin["kind"], "WasmPlugin");
    let spec = &plugin["spec"];
    assert_eq!(spec["phase"], "AUTHN");
    assert_eq!(spec["failStrategy"], "FAIL_CLOSE");
    let env: Vec<&str> = spec["vmConfig"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(
                e["valueFrom"], "HOST",
                "{e}: secrets come from the proxy's environment"
            );
            e["name"].as_str().unwrap()
        })
        .collect();
    let dockerfile =
        std::fs::read_to_string(support::manifest_dir().join("envoy/istio/Dockerfile")).unwrap();
    let steps: Vec<&str> = dockerfile
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(
        steps,
        [
            "FROM scratch",
            "COPY target/wasm32-wasip1/release/tollgate.wasm ./plugin.wasm"
        ]
    );

    // Istio hands the filter pluginConfig as JSON; give the VM the same variables.
    let values = [
        "istio-current-secret-NfVMuakv93xHH8EkWLkm",
        "istio-previous-secret-4TqrxYCoq6TBUrbbswc",
        "sk_live_istio_api_key_Tz8Nc3Vq7Lw2Rm9Kd5",
        "cs_live_istio_reporting_Hs4Pw9Xk2Tq7Vn3R",
    ];
    assert_eq!(env.len(), values.len());
    let mut setup = Setup::new(spec["pluginConfig"].clone());
    for (name, value) in env.iter().zip(values) {
        setup = setup.vm_env(name, value);
    }
    // The revocation feed, at the mesh cluster the example names: with
    // fail_closed_after_seconds, tokens wait for its first good poll.
    let revocation = &spec["pluginConfig"]["revocation"];
    let feed = support::feed::Feed::start();
    setup = setup.cluster(revocation["cluster"].as_str().unwrap(), feed.port);
    let envoy = Envoy::start(setup);
    // Not the first good poll alone: the VM that polled may not be the worker's, which takes
    // the list on its next tick.
    support::feed::first_poll(&envoy);
    assert!(feed.polls() >= 2);
    let signed = |kid: &str, secret: &str| {
        SigningKey::new(Some(kid.into()), secret.as_bytes())
            .sign(claims_for("lUpa", "access", now(), 3600))
            .unwrap()
    };
    assert_eq!(envoy.get("/healthz").status, 200);
    let r = envoy.send(&Request::get("/api").bearer(&signed("2026-11", values[0])));
    assert_eq!(r.upstream_header("x-auth-user").as_deref(), Some("lUpa"));
    let r = envoy.send(&Request::get("/api").bearer(&signed("2026-10", values[1])));
    assert_eq!(r.upstream_header("x-auth-user").as_deref(), Some("lUpa"));
    let r = envoy.send(&Request::get("/admin/x").bearer(values[2]));
    assert_eq!(
        r.upstream_header("x-auth-name").as_deref(),
        Some("billing-backend")
    );
    let r = envoy.get(&format!(
        "/reports/x?client_id=nightly-reports&client_secret={}",
        values[3]
    ));
    assert_eq!(
        r.upstream_header("x-auth-role").as_deref(),
        Some("reporting")
    );
    assert_eq!(envoy.get("/api").status, 401);
    let r = envoy.send(&Request::get("/account").browser());
    assert_eq!(r.status, 302);
    assert!(r.header("location").unwrap().starts_with(
        "https://login.example.com/signin?redirect=http%3A%2F%2Fapi.example.com%2Faccount"
    ));
}

#[test]
fn every_example_configuration_matches_the_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            support::manifest_dir().join("schema/tollgate-config.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    // The JSON examples of the documentation: README.md and every docs/*.md.
    let mut doc_files = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(support::manifest_dir().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    doc_files.extend(docs);
    let mut doc_json: Vec<(String, Value)> = Vec::new();
    for file in &doc_files {
        let text = std::fs::read_to_string(support::manifest_dir().join(file)).unwrap();
        for block in text.split("```json\n").skip(1) {
            let block = block.split("```").next().unwrap();
            let value = serde_json::from_str(block)
                .unwrap_or_else(|e| panic!("{file}: a JSON example that is not JSON ({e})"));
            doc_json.push((file.clone(), value));
        }
    }
    assert!(
        !doc_json.is_empty(),
        "the documentation has JSON examples ({doc_files:?})"
    );
    let mut examples: Vec<(String, Value)> = vec![
        (
            "envoy/envoy.yaml".into(),
            support::plugin_config_of(&support::yaml_file("envoy/envoy.yaml")),
        ),
        (
            "envoy/envoy.compose.yaml".into(),
            support::plugin_config_of(&support::yaml_file("envoy/envoy.compose.yaml")),
        ),
        (
            "envoy/istio/wasmplugin.yaml".into(),
            support::yaml_file("envoy/istio/wasmplugin.yaml")["spec"]["pluginConfig"].clone(),
        ),
    ];
    examples.extend(doc_json);
    for (source, config) in &examples {
        let errors: Vec<String> = validator
            .iter_errors(config)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{source}: {errors:?}");
        // And the filter itself accepts it (secrets given as variables are filled in; cookie
        // keys as `kid:key`, 32 bytes in base64url).
        let parsed = support::Config::parse(config.to_string().as_bytes(), &|name| {
            Some(if name.ends_with("COOKIE_KEYS") {
                "k1:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1-f4CBgoM".to_owned()
            } else {
                format!("test-value-of-{name}-0123456789abcdefghij")
            })
        });
        assert!(parsed.is_ok(), "{source}: {:?}", parsed.err());
    }
    // The schema refuses what the filter refuses for the reasons a schema can see.
    for bad in [
        json!({"secret": []}),
        json!({"rules": [{"prefix": "/a", "mode": "requried"}]}),
        json!({"rules": [{"mode": "none"}]}),
        json!({"rules": [{"prefix": "/a", "mode": "none", "roles": ["admin"]}]}),
        json!({"secrets": [{"key": "short"}]}),
        json!({"secrets": [{"kid": "a"}]}),
        json!({"clock_skew_seconds": 3600}),
        json!({"login_url": "//evil.example/login"}),
        json!({"identity_headers": {"group": "x-g"}}),
        json!({"clients": [{"client_id": "c", "client_secret": "Qm7vX2kP9tR4wZ8nL3cF6hJ5sD1gAy", "role": "admin,user"}]}),
        json!({"api_keys": [{"name": "a", "key": "sk_live.hcV4Xii57k7wCzZN.RLu9qTM4mr"}]}),
        // Issuers: a name, an issuer and exactly one source of keys; asymmetric algorithms.
        json!({"issuers": [{"name": "Corp", "issuer": "https://idp.example", "jwks_uri": "https://idp.example/jwks", "cluster": "idp"}]}),
        json!({"issuers": [{"name": "corp", "jwks_uri": "https://idp.example/jwks", "cluster": "idp"}]}),
        json!({"issuers": [{"name": "corp", "issuer": "https://idp.example"}]}),
        json!({"issuers": [{"name": "corp", "issuer": "https://idp.example", "jwks_uri": "https://idp.example/jwks"}]}),
        json!({"issuers": [{"name": "corp", "issuer": "https://idp.example", "jwks_env": "JWKS", "jwks_uri": "https://idp.example/jwks", "cluster": "idp"}]}),
        json!({"issuers": [{"name": "corp", "issuer": "https://idp.example", "jwks_env": "JWKS", "refresh_seconds": 60}]}),
        json!({"issuers": [{"name": "corp", "issuer": "https://idp.example", "jwks_uri": "https://idp.example/jwks", "cluster": "idp", "refresh_seconds": 1}]}),
        json!({"issuers": [{"name": "corp", "issuer": "https://idp.example", "jwks_uri": "ftp://idp.example/jwks", "cluster": "idp"}]}),
        json!({"issuers": [{"name": "corp", "issuer": "https://idp.example", "jwks_env": "JWKS", "algorithms": ["HS256"]}]}),
        json!({"issuers": [{"name": "corp", "issuer": "https://idp.example", "jwks_env": "JWKS", "audiences": []}]}),
        json!({"issuers": [{"name": "corp", "issuer": "https://idp.example", "jwks_env": "JWKS", "claims_to_headers": [{"claim": "email", "header": "x_email"}]}]}),
        json!({"issuers": [{"name": "corp", "issuer": "https://idp.example", "jwks_env": "JWKS", "role": "admin"}]}),
        // Revocation: a cluster and a path without a query; polls 1 to 300 s.
        json!({"revocation": {"path": "/auth/revocations"}}),
        json!({"revocation": {"cluster": "signin", "path": "auth/revocations"}}),
        json!({"revocation": {"cluster": "signin", "path": "/auth/revocations?x=1"}}),
        json!({"revocation": {"cluster": "signin", "path": "/r", "poll_seconds": 0}}),
        json!({"revocation": {"cluster": "signin", "path": "/r", "url": "http://x"}}),
        // A revocation feed without max_lifetime_seconds.
        json!({"secrets": [{"key": "0123456789abcdefghij0123456789abcdefghij"}], "revocation": {"cluster": "signin", "path": "/r"}}),
    ] {
        assert!(!validator.is_valid(&bad), "the schema accepts {bad}");
        // And the filter refuses it too (its variables given).
        let parsed = support::Config::parse(bad.to_string().as_bytes(), &|name| {
            Some(format!("test-value-of-{name}-0123456789abcdefghij"))
        });
        assert!(parsed.is_err(), "the filter accepts {bad}");
    }
    // What the schema accepts of issuers, the filter accepts.
    for good in [
        json!({"issuers": [{"name": "corp", "issuer": "https://idp.example", "jwks_uri": "https://idp.example/jwks", "cluster": "outbound|443||idp.example"}]}),
        json!({"issuers": [{"name": "corp-sso_2", "issuer": "https://idp.example/", "audiences": ["api"], "jwks_uri": "https://idp.example/jwks", "cluster": "idp", "refresh_seconds": 86400, "algorithms": ["ES256", "EdDSA"], "subject_claim": "email", "roles_claim": "https://example.com/roles", "claims_to_headers": [{"claim": "email", "header": "x-auth-email"}]}]}),
        json!({"issuers": [{"name": "corp", "issuer": "https://idp.example", "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}}]}),
    ] {
        assert!(validator.is_valid(&good), "the schema refuses {good}");
        let parsed = support::Config::parse(good.to_string().as_bytes(), &|_| None);
        assert!(parsed.is_ok(), "{good}: {:?}", parsed.err());
    }
    // Every key of the filter is in the schema.
    let keys: Vec<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "secrets",
        "api_keys",
        "publishable_keys",
        "clients",
        "default_mode",
        "rules",
        "login_url",
        "return_param",
        "clock_skew_seconds",
        "max_lifetime_seconds",
        "token_query_param",
        "token_cookie",
        "identity_headers",
        "forward_credentials",
        "access_log_fields",
        "issuers",
        "revocation",
        "token_headers",
        "payload_header",
        "oidc",
    ] {
        assert!(keys.contains(&key), "{key} is missing from the schema");
    }
    assert_eq!(keys.len(), 20);
}
